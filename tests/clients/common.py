"""Shared pieces of the aiortc test clients.

Rules every client follows (see shared/specs/clients.md, section 2):
- no STUN/TURN servers (``RTCConfiguration(iceServers=[])``), so nothing leaves the host;
- aioice is patched to gather 127.0.0.1 only;
- a hard overall timeout (SIGALRM) so a stuck client never hangs a test;
- exactly ONE JSON line on stdout (result or error); logs go to stderr.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import logging
import math
import os
import re
import secrets
import signal
import string
import sys
import time
from typing import Any
from urllib.parse import urljoin

import aioice.ice

# Must happen before any RTCPeerConnection is created.
aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]  # type: ignore[assignment]

import aiohttp  # noqa: E402
from aiortc import (  # noqa: E402
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack, VideoStreamTrack  # noqa: E402
from av import AudioFrame, VideoFrame  # noqa: E402

log = logging.getLogger("client")

_printed = False


def setup_logging() -> None:
    level = logging.DEBUG if os.environ.get("CLIENT_DEBUG") else logging.WARNING
    logging.basicConfig(
        stream=sys.stderr,
        level=level,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    log.setLevel(logging.DEBUG if os.environ.get("CLIENT_DEBUG") else logging.INFO)


def emit(obj: dict[str, Any]) -> None:
    """Print the one result line (only the first call prints)."""
    global _printed
    if _printed:
        return
    _printed = True
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def finish(obj: dict[str, Any], code: int) -> None:
    """Print the result and leave at once (decoder threads must not keep us alive)."""
    emit(obj)
    sys.stderr.flush()
    os._exit(code)


def install_hard_timeout(seconds: float, partial: dict[str, Any]) -> None:
    """After `seconds`, print an error JSON (with what was measured so far) and exit 3."""

    def on_alarm(_signum: int, _frame: Any) -> None:
        out = dict(partial)
        out["ok"] = False
        out["error"] = f"hard timeout after {seconds:.0f}s (phase: {partial.get('phase', '?')})"
        finish(out, 3)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(max(1, int(math.ceil(seconds))))


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def now_ms() -> float:
    return time.monotonic() * 1000.0


# --------------------------------------------------------------------------------------
# SDP helpers
# --------------------------------------------------------------------------------------

def strip_candidates(sdp: str) -> tuple[str, list[str]]:
    """Turn a gathered offer into a trickle-style one: no a=candidate / a=end-of-candidates lines,
    m= port 9 and c=IN IP4 0.0.0.0. Returns (sdp, candidate lines of the first m-section)."""
    out: list[str] = []
    first_mid_cands: list[str] = []
    section = -1
    for line in sdp.splitlines():
        if line.startswith("m="):
            section += 1
            # as a trickling browser sends it: placeholder port, no address yet
            parts = line.split(" ")
            parts[1] = "9"
            line = " ".join(parts)
        if line.startswith("c=IN IP4 "):
            line = "c=IN IP4 0.0.0.0"
        if line.startswith("a=candidate:"):
            if section == 0:
                first_mid_cands.append(line)
            continue
        if line.startswith("a=end-of-candidates"):
            continue
        out.append(line)
    return "\r\n".join(out) + "\r\n", first_mid_cands


def first_section(sdp: str) -> dict[str, Any]:
    """Facts of the first m-section (bundle tag): m= line, mid, ufrag, pwd; plus session-level values."""
    session: dict[str, str] = {}
    media: dict[str, Any] = {}
    section = -1
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            section += 1
            if section == 0:
                media["m"] = line
            continue
        target = session if section < 0 else (media if section == 0 else None)
        if target is None:
            continue
        for key in ("ice-ufrag", "ice-pwd", "mid", "ice-options", "group"):
            if line.startswith(f"a={key}:"):
                target.setdefault(key, line.split(":", 1)[1])
        if line.startswith("a=candidate:"):
            target.setdefault("candidates", []).append(line)
    res = {
        "m": media.get("m"),
        "mid": media.get("mid"),
        "ice-ufrag": media.get("ice-ufrag") or session.get("ice-ufrag"),
        "ice-pwd": media.get("ice-pwd") or session.get("ice-pwd"),
        "group": session.get("group"),
        "ice-options": media.get("ice-options") or session.get("ice-options"),
        "candidates": media.get("candidates", []),
    }
    return res


def parse_sdpfrag(frag: str) -> dict[str, Any]:
    ufrag = pwd = None
    cands: list[str] = []
    for line in frag.splitlines():
        line = line.strip()
        if line.startswith("a=ice-ufrag:"):
            ufrag = ufrag or line.split(":", 1)[1]
        elif line.startswith("a=ice-pwd:"):
            pwd = pwd or line.split(":", 1)[1]
        elif line.startswith("a=candidate:"):
            cands.append(line)
    return {"ice-ufrag": ufrag, "ice-pwd": pwd, "candidates": cands}


def build_sdpfrag(offer_sdp: str, ufrag: str, pwd: str, candidates: list[str], end: bool = True) -> str:
    """An RFC 8840 fragment for the first (bundle-tag) m-section, as WHIP/WHEP clients send it."""
    info = first_section(offer_sdp)
    m_line = info["m"] or "m=audio 9 UDP/TLS/RTP/SAVPF 0"
    # m= port of a fragment is a placeholder; keep kind, proto and formats.
    parts = m_line.split(" ")
    if len(parts) >= 2:
        parts[1] = "9"
    lines = []
    if info.get("ice-options"):
        lines.append(f"a=ice-options:{info['ice-options']}")
    if info.get("group"):
        lines.append(f"a=group:{info['group']}")
    lines.append(" ".join(parts))
    if info.get("mid") is not None:
        lines.append(f"a=mid:{info['mid']}")
    lines.append(f"a=ice-ufrag:{ufrag}")
    lines.append(f"a=ice-pwd:{pwd}")
    lines.extend(candidates)
    if end:
        lines.append("a=end-of-candidates")
    return "\r\n".join(lines) + "\r\n"


async def trickle_patch(session, location: str, offer: str, cands: list[str], res: dict) -> bool:
    """Sends the offer's held-back candidates in one RFC 8840 PATCH (If-Match: the 201's ETag).

    Records `patch_status` / `patch_candidates` in `res`; on a non-2xx sets `res["error"]` and
    returns False.
    """
    info = first_section(offer)
    frag = build_sdpfrag(offer, info["ice-ufrag"], info["ice-pwd"], cands)
    headers = {"Content-Type": "application/trickle-ice-sdpfrag"}
    if res.get("etag"):
        headers["If-Match"] = res["etag"]
    async with session.patch(location, data=frag.encode(), headers=headers) as r:
        res["patch_status"] = r.status
        res["patch_candidates"] = len(cands)
        text = await r.text()
        if r.status // 100 != 2:
            res["error"] = f"trickle PATCH -> {r.status}: {text[:300]}"
            return False
    return True


def random_ice_ufrag() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(8))


def random_ice_pwd() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))


def codecs_in(sdp: str, kind: str) -> list[str]:
    """Codec names of the first m-section of `kind` in an SDP (rtpmap order)."""
    names: list[str] = []
    in_kind = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            in_kind = line.startswith(f"m={kind} ")
            continue
        if in_kind:
            m = re.match(r"a=rtpmap:\d+ ([^/]+)/", line)
            if m:
                names.append(m.group(1))
    return names


def video_ssrcs(sdp: str) -> dict[str, int]:
    """The video section's primary and RTX SSRCs from its `a=ssrc-group:FID <primary> <rtx>`."""
    in_video = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        elif in_video and line.startswith("a=ssrc-group:FID "):
            primary, rtx = line.split()[1:3]
            return {"primary": int(primary), "rtx": int(rtx)}
    return {}


def prefer_codec(transceiver: Any, kind: str, codec: str) -> None:
    """Keep only `codec` (plus rtx) on a transceiver."""
    caps = RTCRtpSender.getCapabilities(kind).codecs
    wanted = [c for c in caps if c.mimeType.lower() == f"{kind}/{codec}".lower()]
    if not wanted:
        raise RuntimeError(f"aiortc has no {kind} codec {codec}")
    rtx = [c for c in caps if c.mimeType.lower() == f"{kind}/rtx"]
    transceiver.setCodecPreferences(wanted + rtx)


# --------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------

def http_session() -> aiohttp.ClientSession:
    # trust_env=False: never use a proxy from the environment, talk to 127.0.0.1 directly.
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=10),
        trust_env=False,
    )


def offer_request(args: Any) -> tuple[dict[str, str], int]:
    """(headers, expected status) of the offer POST for the chosen signaling."""
    if args.runner365_close:
        return {"Content-Type": "text/plain;charset=utf-8"}, 200
    return {"Content-Type": "application/sdp"}, 201


def uses_session_resource(args: Any) -> bool:
    return not (args.no_session_resource or args.runner365_close)


async def runner365_close(session, args: Any, res: dict) -> None:
    """POSTs the runner365 unpublish/unsubscribe URL; records its status and JSON reply."""
    try:
        async with session.post(args.runner365_close) as r:
            res["close_status"] = r.status
            res["close_reply"] = await r.text()
    except Exception as e:  # noqa: BLE001
        res["close_error"] = repr(e)


def absolute(base_url: str, location: str) -> str:
    return urljoin(base_url, location)


# --------------------------------------------------------------------------------------
# Synthetic media
# --------------------------------------------------------------------------------------

class MovingStripesTrack(VideoStreamTrack):
    """640x480 I420 at 30 fps: vertical luma stripes moving 8 px/frame, chroma drifting, so consecutive frames differ."""

    def __init__(self, width: int = 640, height: int = 480) -> None:
        super().__init__()
        self.width = width
        self.height = height
        self.frames = 0
        period = 64
        self._period = period
        # two copies of a period so any `width`-long window is a slice
        reps = width // period + 2
        self._pattern = bytes(
            (16 + (200 * ((x % period) < period // 2))) for x in range(period * reps)
        )

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self.width, height=self.height, format="yuv420p")
        shift = (self.frames * 8) % self._period
        y_plane = frame.planes[0]
        row = self._pattern[shift : shift + self.width]
        pad = y_plane.line_size - self.width
        if pad:
            row = row + bytes(pad)
        y_plane.update(row * self.height)
        c = (self.frames * 3) % 256
        for idx, val in ((1, c), (2, 255 - c)):
            p = frame.planes[idx]
            p.update(bytes([val]) * p.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        self.frames += 1
        return frame


class SineAudioTrack(MediaStreamTrack):
    """440 Hz sine, 48 kHz mono s16, 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self, freq: float = 440.0, rate: int = 48000) -> None:
        super().__init__()
        self.rate = rate
        self.samples = int(0.020 * rate)
        self.frames = 0
        # one second holds an integral number of 440 Hz periods: loop it
        amp = 8000
        buf = bytearray()
        for n in range(rate):
            v = int(amp * math.sin(2 * math.pi * freq * n / rate))
            buf += v.to_bytes(2, "little", signed=True)
        self._second = bytes(buf)
        self._start: float | None = None
        self._timestamp = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
            self._timestamp = 0
        else:
            self._timestamp += self.samples
            wait = self._start + self._timestamp / self.rate - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = AudioFrame(format="s16", layout="mono", samples=self.samples)
        off = (self._timestamp % self.rate) * 2
        chunk = self._second[off : off + self.samples * 2]
        if len(chunk) < self.samples * 2:
            chunk += self._second[: self.samples * 2 - len(chunk)]
        frame.planes[0].update(chunk)
        frame.pts = self._timestamp
        frame.sample_rate = self.rate
        frame.time_base = fractions.Fraction(1, self.rate)
        self.frames += 1
        return frame


def count_rembs(sender: Any, res: dict[str, Any]) -> None:
    """Counts the REMBs (bitrate caps) `sender` gets into res["remb_received"] and keeps the
    last one's bitrate in res["remb_bitrate"]; aiortc's encoder still obeys them. PLIs are
    noted too, as `time.monotonic()` values in res["pli_at"]."""
    from aiortc.rtp import RTCP_PSFB_APP, RTCP_PSFB_PLI, RtcpPsfbPacket, unpack_remb_fci

    handle_rtcp = sender._handle_rtcp_packet
    res.setdefault("pli_at", [])

    async def counted_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
            res["pli_at"].append(time.monotonic())
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, _ = unpack_remb_fci(packet.fci)
                res["remb_received"] = res.get("remb_received", 0) + 1
                res["remb_bitrate"] = bitrate
            except ValueError:
                pass
        await handle_rtcp(packet)

    sender._handle_rtcp_packet = counted_rtcp


def encoder_target_bitrate(sender: Any) -> Any:
    """The bitrate aiortc's video encoder aims at (None before it encoded anything)."""
    encoder = getattr(sender, "_RTCRtpSender__encoder", None) if sender else None
    return getattr(encoder, "target_bitrate", None)


async def wait_connected(pc: RTCPeerConnection, timeout: float) -> bool:
    """Wait until connectionState == connected; False on failed/closed/timeout."""
    done = asyncio.get_running_loop().create_future()

    def check() -> None:
        st = pc.connectionState
        if done.done():
            return
        if st == "connected":
            done.set_result(True)
        elif st in ("failed", "closed"):
            done.set_result(False)

    pc.on("connectionstatechange", check)
    check()
    try:
        return await asyncio.wait_for(done, timeout)
    except asyncio.TimeoutError:
        return False


async def close_pc(pc: RTCPeerConnection) -> None:
    try:
        await asyncio.wait_for(pc.close(), 5)
    except Exception as e:  # noqa: BLE001
        log.warning("pc.close: %r", e)


def ice_connection_of(pc: RTCPeerConnection) -> Any:
    """The aioice Connection behind the (bundled) transport of a peer connection."""
    for t in pc.getTransceivers():
        dtls = t.receiver.transport or t.sender.transport
        if dtls is not None:
            return dtls.transport._connection
    raise RuntimeError("no ICE transport")


def run_client(name: str, args: Any, run: Any) -> None:
    """Runs a client's `run(args, res)` under the hard timeout and prints its one JSON line;
    the exit code is 0 only when it returned 0 and recorded no error."""
    res: dict[str, Any] = {"client": name, "url": args.url, "phase": "start"}
    install_hard_timeout(args.timeout or args.seconds + 30, res)
    try:
        code = asyncio.run(run(args, res))
    except Exception as e:  # noqa: BLE001
        res["error"] = f"{type(e).__name__}: {e}"
        code = 1
    res.pop("_answer", None)
    if "error" in res:
        code = code or 1
    res["ok"] = code == 0
    if code == 0:
        res.pop("phase", None)
    finish(res, code)


def common_args(parser: Any, default_seconds: float) -> None:
    parser.add_argument("--url", required=True, help="WHIP/WHEP endpoint URL")
    parser.add_argument("--seconds", type=float, default=default_seconds)
    parser.add_argument("--trickle", action="store_true",
                        help="send the offer without candidates and PATCH them afterwards")
    parser.add_argument("--timeout", type=float, default=None,
                        help="hard overall timeout (default: seconds + 30)")
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    parser.add_argument("--no-session-resource", action="store_true",
                        help="the API answers 201 without a Location (go-live's rooms API)")
    parser.add_argument("--runner365-close", default=None, metavar="URL",
                        help="runner365 signaling: POST the offer as text/plain, expect 200 with "
                             "the answer, and POST to URL (unpublish/unsubscribe) at the end")
