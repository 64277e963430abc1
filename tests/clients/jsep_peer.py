#!/usr/bin/env python3
"""An aiortc PeerConnection remote-controlled by JSON lines, for signaling drivers that are not
Python (e.g. tests/browser/run_janode.mjs drives it through Janode against a Janus API).

One command per stdin line, exactly one JSON reply line per command on stdout (in order);
logs go to stderr. Commands:

  {"cmd":"publish","width":640,"height":480,"codec":"VP8"|"H264"}
      -> {"event":"offer","sdp":...}      sendonly synthetic video (moving stripes) + Opus audio;
                                           the offer is fully gathered (no trickle)
  {"cmd":"answer","sdp":...}             -> {"event":"ok"}          the server's answer to "publish"
  {"cmd":"subscribe_offer","sdp":...}    -> {"event":"answer","sdp":...}
      server-offer flow (also for renegotiation on the same PC); every received track is consumed
      and its frames decoded and counted
  {"cmd":"stats"}                        -> {"event":"stats", ...counters}
  {"cmd":"close"}                        -> {"event":"closed", ...counters}, then exit 0

Counters: video_frames / audio_frames (decoded, all tracks), width / height (last decoded video
frame), connection (RTCPeerConnection.connectionState), sent_video_frames / sent_audio_frames
(publisher), tracks (per received track: kind, mid, frames, width, height).
A failed command answers {"event":"error","cmd":...,"error":...} and the peer keeps running.
EOF on stdin closes the PC and exits 0 (the driver died or is done). After --timeout seconds
the peer prints {"event":"error","error":"hard timeout ..."} and exits 3.

ICE: like every client here (common.py) the peer gathers 127.0.0.1 only, unless
--ice-addresses says otherwise: a comma list of IPv4 addresses, where `nic` stands for the
host's non-loopback IPv4 addresses. The real Janus needs `127.0.0.1,nic`: it never gathers
loopback and libnice pins its sockets to the NIC, so its replies to a 127.0.0.1 peer are lost,
while NIC-to-NIC traffic is delivered locally (nothing leaves the host: no STUN/TURN servers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import sys
from typing import Any

import aioice.ice
import ifaddr

import common as c


def send(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def install_hard_timeout(seconds: float) -> None:
    """A stuck peer must never outlive its test: print an error line and leave."""

    def on_alarm(_signum: int, _frame: Any) -> None:
        send({"event": "error", "error": f"hard timeout after {seconds:.0f}s"})
        sys.stderr.flush()
        os._exit(3)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(max(1, int(math.ceil(seconds))))


def nic_addresses() -> list[str]:
    return [ip.ip for a in ifaddr.get_adapters() for ip in a.ips
            if isinstance(ip.ip, str) and not ip.ip.startswith("127.")]


def set_ice_addresses(spec: str) -> list[str]:
    """Replaces common.py's 127.0.0.1-only host-address patch with the requested list."""
    addrs: list[str] = []
    for token in (t.strip() for t in spec.split(",")):
        for a in (nic_addresses() if token == "nic" else [token] if token else []):
            if a not in addrs:
                addrs.append(a)
    if not addrs:
        raise ValueError(f"--ice-addresses {spec!r} names no address")
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: list(addrs)  # type: ignore[assignment]
    return addrs


class TrackCounter:
    """Decoded-frame counter of one received track."""

    def __init__(self, track: Any, mid: str | None) -> None:
        self.kind = track.kind
        self.mid = mid
        self.frames = 0
        self.width: int | None = None
        self.height: int | None = None

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind, "mid": self.mid, "frames": self.frames,
                "width": self.width, "height": self.height}


class Peer:
    def __init__(self) -> None:
        self.pc = c.new_pc()
        self.video_src: c.MovingStripesTrack | None = None
        self.audio_src: c.SineAudioTrack | None = None
        self.counters: list[TrackCounter] = []
        self.tasks: list[asyncio.Task] = []
        # decoded width/height of the most recent video frame, whichever track it came from
        self.width: int | None = None
        self.height: int | None = None
        self.pc.on("track", self._on_track)

    # ---- receiving ----------------------------------------------------------------------

    def _mid_of(self, track: Any) -> str | None:
        for t in self.pc.getTransceivers():
            if t.receiver.track is track:
                return t.mid
        return None

    def _on_track(self, track: Any) -> None:
        counter = TrackCounter(track, self._mid_of(track))
        self.counters.append(counter)
        c.log.info("track %s mid=%s", track.kind, counter.mid)
        self.tasks.append(asyncio.ensure_future(self._consume(track, counter)))

    async def _consume(self, track: Any, counter: TrackCounter) -> None:
        # track.recv() returns decoded frames (aiortc decodes in its receiver thread)
        while True:
            try:
                frame = await track.recv()
            except c.MediaStreamError:
                return
            except Exception as e:  # noqa: BLE001
                c.log.warning("recv on %s: %r", track.kind, e)
                return
            counter.frames += 1
            if track.kind == "video":
                counter.width, counter.height = frame.width, frame.height
                self.width, self.height = frame.width, frame.height

    # ---- commands -----------------------------------------------------------------------

    async def publish(self, msg: dict[str, Any]) -> dict[str, Any]:
        codec = str(msg.get("codec", "VP8")).upper()
        if codec not in ("VP8", "H264"):
            raise ValueError(f"unsupported codec {codec}")
        self.video_src = c.MovingStripesTrack(int(msg.get("width", 640)), int(msg.get("height", 480)))
        self.audio_src = c.SineAudioTrack()
        vt = self.pc.addTransceiver(self.video_src, direction="sendonly")
        c.prefer_codec(vt, "video", codec)
        at = self.pc.addTransceiver(self.audio_src, direction="sendonly")
        c.prefer_codec(at, "audio", "opus")
        # aiortc gathers inside setLocalDescription: the offer carries every candidate
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return {"event": "offer", "sdp": self.pc.localDescription.sdp}

    async def answer(self, msg: dict[str, Any]) -> dict[str, Any]:
        await self.pc.setRemoteDescription(c.RTCSessionDescription(sdp=msg["sdp"], type="answer"))
        return {"event": "ok"}

    async def subscribe_offer(self, msg: dict[str, Any]) -> dict[str, Any]:
        await self.pc.setRemoteDescription(c.RTCSessionDescription(sdp=msg["sdp"], type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return {"event": "answer", "sdp": self.pc.localDescription.sdp}

    def stats(self, event: str = "stats") -> dict[str, Any]:
        return {
            "event": event,
            "video_frames": sum(k.frames for k in self.counters if k.kind == "video"),
            "audio_frames": sum(k.frames for k in self.counters if k.kind == "audio"),
            "width": self.width,
            "height": self.height,
            "connection": self.pc.connectionState,
            "sent_video_frames": self.video_src.frames if self.video_src else 0,
            "sent_audio_frames": self.audio_src.frames if self.audio_src else 0,
            "tracks": [k.summary() for k in self.counters],
        }

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await c.close_pc(self.pc)


async def read_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 22)  # SDPs are long single lines
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def handle(peer: Peer, msg: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The reply to one command, and whether to stop afterwards."""
    cmd = msg.get("cmd")
    if cmd == "publish":
        return await peer.publish(msg), False
    if cmd == "answer":
        return await peer.answer(msg), False
    if cmd == "subscribe_offer":
        return await peer.subscribe_offer(msg), False
    if cmd == "stats":
        return peer.stats(), False
    if cmd == "close":
        final = peer.stats("closed")
        await peer.close()
        return final, True
    raise ValueError(f"unknown cmd {cmd!r}")


async def run() -> int:
    peer = Peer()
    reader = await read_lines()
    while True:
        line = await reader.readline()
        if not line:
            c.log.info("stdin closed")
            await peer.close()
            return 0
        if not line.strip():
            continue
        cmd = None
        try:
            msg = json.loads(line)
            cmd = msg.get("cmd")
            reply, stop = await handle(peer, msg)
        except Exception as e:  # noqa: BLE001
            send({"event": "error", "cmd": cmd, "error": f"{type(e).__name__}: {e}"})
            continue
        send(reply)
        if stop:
            return 0


def main() -> None:
    c.setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--timeout", type=float, default=60.0, help="hard overall timeout in seconds")
    p.add_argument("--ice-addresses", default="127.0.0.1",
                   help="comma list of host addresses to gather; `nic` = the non-loopback IPv4 ones")
    args = p.parse_args()
    install_hard_timeout(args.timeout)
    try:
        c.log.info("gathering on %s", set_ice_addresses(args.ice_addresses))
    except ValueError as e:
        send({"event": "error", "error": str(e)})
        os._exit(2)
    try:
        code = asyncio.run(run())
    except Exception as e:  # noqa: BLE001
        send({"event": "error", "error": f"{type(e).__name__}: {e}"})
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # decoder threads must not keep the process alive
    os._exit(code)


if __name__ == "__main__":
    main()
