#!/usr/bin/env python3
"""An aiortc player speaking Tencent LEB pull signaling, as the Android/iOS LEB SDKs do.

  leb_play.py --url http://127.0.0.1:PORT --stream-url webrtc://domain/live/cam --seconds 6

POST {url}/webrtc/v1/pullstream (JSON as text/plain), play the answer, send reporticestate once
connected, firstframeusetime after the first decoded frame and reportquality every
--report-interval seconds (from its own receive statistics), then stopstream with the svrsig.
Prints one JSON line: {"ok", "pull", "svrsig", "reports": {endpoint: [errcode, ...]},
"stop": reply, "video_frames", "width", "height", ...}.

--srs plays through SRS's JSON form instead (what srs.sdk.js does): POST {url}/rtc/v1/play/
{"sdp", "streamurl"} as application/json, expect {"code": 0, "sdp", "sessionid"}; no reports and
no stop call (SRS sessions end by ICE consent). Prints {"ok", "srs": {"status", "code",
"sessionid"}, "video_frames", "width", "height", "first_frame_ms", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time

import common as c
from whep_play import Counter


async def post(session, url: str, body: dict) -> tuple[int, dict]:
    """POSTs like the SDKs: JSON text with Content-Type text/plain."""
    async with session.post(url, data=json.dumps(body).encode(),
                            headers={"Content-Type": "text/plain;charset=utf-8"}) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, {"raw": text[:300]}


def now_ms_str() -> str:
    return str(int(time.time() * 1000))


class QualityReporter:
    """reportquality every `interval` s with the last interval's receive statistics."""

    def __init__(self, session, base: str, stream_url: str, svrsig: str, pc, counter: Counter,
                 interval: float, res: dict) -> None:
        self.session, self.base, self.stream_url, self.svrsig = session, base, stream_url, svrsig
        self.pc, self.counter, self.interval, self.res = pc, counter, interval, res
        self.last: dict[str, tuple[int, int, int]] = {}
        self.last_frames = counter.video
        self.begin = now_ms_str()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.report()
            except Exception as e:  # noqa: BLE001
                self.res["report_error"] = repr(e)
                return

    async def report(self) -> None:
        now: dict[str, tuple[int, int, int]] = {}
        for s in (await self.pc.getStats()).values():
            if s.type == "inbound-rtp":
                lost = max(getattr(s, "packetsLost", 0) or 0, 0)
                now[s.kind] = (s.packetsReceived, getattr(s, "bytesReceived", 0) or 0, lost)
        delta = {kind: tuple(v - self.last.get(kind, (0, 0, 0))[i] for i, v in enumerate(vals))
                 for kind, vals in now.items()}
        self.last = now
        fps = round((self.counter.video - self.last_frames) / self.interval)
        self.last_frames = self.counter.video
        end = now_ms_str()
        audio = delta.get("audio", (0, 0, 0))
        video = delta.get("video", (0, 0, 0))
        body = {
            "streamurl": self.stream_url, "svrsig": self.svrsig,
            "beginutime": self.begin, "endutime": end,
            "audiossrc": 1, "audiocodec": "opus", "audiopktrecv": audio[0],
            "audiobyterecv": audio[1], "audiopktlost": audio[2],
            "videossrc": 2, "videocodec": "vp8", "videopktrecv": video[0],
            "videobyterecv": video[1], "videopktlost": video[2],
            "videowidth": self.counter.width or 0, "videoheight": self.counter.height or 0,
            "videoframedec": fps, "videoframerecv": fps,
        }
        self.begin = end
        status, reply = await post(self.session, f"{self.base}/webrtc/v1/reportquality", body)
        self.res["reports"]["reportquality"].append(reply.get("errcode", f"HTTP {status}"))


async def switch_layer(args, res: dict, session, base: str, svrsig: str, counter) -> None:
    """LEB's ABR call mid-play (after SECONDS, once 30 frames were decoded): tabrctl to RID,
    recording the decoded widths around it and the errcode."""
    rid, _, after = args.tabrctl.partition("@")
    await asyncio.sleep(float(after or 3))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while counter.video < 30 and loop.time() < deadline:
        await asyncio.sleep(0.05)
    res["width_before_switch"] = counter.width
    res["frames_before_switch"] = counter.video
    _, reply = await post(session, f"{base}/webrtc/v1/tabrctl",
                          {"svrsig": svrsig, "seq": 7, "bitrate_name": rid})
    res["tabrctl"] = {"errcode": reply.get("errcode"), "seq": reply.get("seq")}


async def run(args: argparse.Namespace, res: dict) -> int:
    pc = c.new_pc()
    session = c.http_session()
    base = args.url.rstrip("/")
    t0 = c.now_ms()
    counter = Counter(t0)
    tasks: list[asyncio.Task] = []
    svrsig = None
    res["reports"] = {"reportquality": [], "reporticestate": [], "firstframeusetime": []}

    @pc.on("track")
    def on_track(track) -> None:
        tasks.append(asyncio.ensure_future(counter.consume(track)))

    try:
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        start = now_ms_str()
        res["phase"] = "pullstream"
        status, reply = await post(session, f"{base}/webrtc/v1/pullstream", {
            "streamurl": args.stream_url, "sessionid": secrets.token_hex(8),
            "clientinfo": "aiortc_linux_gatehouse-tests1.0",
            "localsdp": {"type": "offer", "sdp": pc.localDescription.sdp},
        })
        res["pull"] = {"status": status, "errcode": reply.get("errcode"),
                       "errmsg": reply.get("errmsg")}
        if status != 200 or reply.get("errcode") != 0:
            res["error"] = f"pullstream -> {status} {reply}"
            return 1
        svrsig = reply.get("svrsig") or ""
        res["svrsig"] = bool(svrsig)
        answer = (reply.get("remotesdp") or {}).get("sdp", "")
        await pc.setRemoteDescription(c.RTCSessionDescription(sdp=answer, type="answer"))

        res["phase"] = "connect"
        if not await c.wait_connected(pc, args.connect_timeout):
            res["error"] = f"not connected after {args.connect_timeout}s"
            return 1
        _, reply = await post(session, f"{base}/webrtc/v1/reporticestate", {
            "streamurl": args.stream_url, "svrsig": svrsig,
            "iceConnectionState": "connected", "iceGatheringState": "complete"})
        res["reports"]["reporticestate"].append(reply.get("errcode"))
        reporter = QualityReporter(session, base, args.stream_url, svrsig, pc, counter,
                                   args.report_interval, res)
        tasks.append(asyncio.ensure_future(reporter.run()))
        if args.tabrctl:
            tasks.append(asyncio.ensure_future(
                switch_layer(args, res, session, base, svrsig, counter)))

        res["phase"] = "play"
        deadline = asyncio.get_running_loop().time() + args.seconds
        while counter.first_video_ms is None and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if counter.first_video_ms is not None:
            first = str(int(start) + int(counter.first_video_ms))
            _, reply = await post(session, f"{base}/webrtc/v1/firstframeusetime", {
                "streamurl": args.stream_url, "svrsig": svrsig,
                "starttime": start, "firstplaytime": first})
            res["reports"]["firstframeusetime"].append(reply.get("errcode"))
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining > 0:
            await asyncio.sleep(remaining)
        if counter.video < args.min_video_frames:
            res["error"] = f"decoded {counter.video} video frames < {args.min_video_frames}"
            return 1
        return 0
    finally:
        for t in tasks:
            t.cancel()
        res["video_frames"] = counter.video
        res["width"] = counter.width
        res["height"] = counter.height
        res["first_frame_ms"] = counter.first_video_ms
        if svrsig and not args.no_stop:
            _, res["stop"] = await post(session, f"{base}/webrtc/v1/stopstream",
                                        {"streamurl": args.stream_url, "svrsig": svrsig})
        await c.close_pc(pc)
        await session.close()


async def run_srs(args: argparse.Namespace, res: dict) -> int:
    """SRS's JSON play form: one POST, then the same decoding as the LEB pull."""
    pc = c.new_pc()
    session = c.http_session()
    base = args.url.rstrip("/")
    counter = Counter(c.now_ms())
    tasks: list[asyncio.Task] = []

    @pc.on("track")
    def on_track(track) -> None:
        tasks.append(asyncio.ensure_future(counter.consume(track)))

    try:
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        res["phase"] = "play-request"
        counter.t0 = c.now_ms()
        async with session.post(f"{base}/rtc/v1/play/",
                                data=json.dumps({"sdp": pc.localDescription.sdp,
                                                 "streamurl": args.stream_url}).encode(),
                                headers={"Content-Type": "application/json"}) as r:
            status, text = r.status, await r.text()
        try:
            reply = json.loads(text)
        except ValueError:
            reply = {"raw": text[:300]}
        res["srs"] = {"status": status, "code": reply.get("code"),
                      "sessionid": reply.get("sessionid")}
        answer = reply.get("sdp") or ""
        if status != 200 or reply.get("code") != 0 or not answer.startswith("v=0"):
            res["error"] = f"/rtc/v1/play/ -> {status} {reply}"
            return 1
        await pc.setRemoteDescription(c.RTCSessionDescription(sdp=answer, type="answer"))

        res["phase"] = "connect"
        if not await c.wait_connected(pc, args.connect_timeout):
            res["error"] = f"not connected after {args.connect_timeout}s"
            return 1
        res["phase"] = "play"
        await asyncio.sleep(args.seconds)
        if counter.video < args.min_video_frames:
            res["error"] = f"decoded {counter.video} video frames < {args.min_video_frames}"
            return 1
        return 0
    finally:
        for t in tasks:
            t.cancel()
        res["video_frames"] = counter.video
        res["audio_frames"] = counter.audio
        res["width"] = counter.width
        res["height"] = counter.height
        res["first_frame_ms"] = counter.first_video_ms
        await c.close_pc(pc)
        await session.close()


def main() -> None:
    c.setup_logging()
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="the gateway's base URL")
    p.add_argument("--stream-url", required=True, help="webrtc://domain/app/stream[?txSecret=..]")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--min-video-frames", type=int, default=0)
    p.add_argument("--report-interval", type=float, default=2.0)
    p.add_argument("--connect-timeout", type=float, default=10.0)
    p.add_argument("--no-stop", action="store_true", help="leave without stopstream")
    p.add_argument("--tabrctl", default=None, metavar="RID@SECONDS",
                   help="switch to simulcast layer RID with tabrctl after SECONDS (and 30 "
                        "frames); reports width_before_switch and the tabrctl errcode")
    p.add_argument("--srs", action="store_true",
                   help="play through SRS's POST /rtc/v1/play/ {sdp, streamurl} instead")
    p.add_argument("--timeout", type=float, default=None)
    args = p.parse_args()
    c.run_client("leb_play", args, run_srs if args.srs else run)


if __name__ == "__main__":
    main()
