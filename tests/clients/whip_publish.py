#!/usr/bin/env python3
"""WHIP publisher (aiortc): synthetic 640x480 video + 440 Hz Opus audio.

Prints ONE JSON line:
  {"ok":true,"status":201,"location":...,"etag":...,"connected_ms":...,
   "video_frames_sent":...,"audio_frames_sent":...,"video_codec":...,"delete_status":...,
   "keyframe_requests":..., "remb_received":..., "remb_bitrate":..., "encoder_target_bitrate":...}
Exit code 0 on success, 1 on a failed step (JSON has "error"), 3 on the hard timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import common as c


async def run(args: argparse.Namespace, res: dict) -> int:
    pc = c.new_pc()
    video = c.MovingStripesTrack(args.width, args.height)
    audio = None if args.no_audio else c.SineAudioTrack()
    location = None
    session = c.http_session()
    vt = None
    try:
        vt = pc.addTransceiver(video, direction="sendonly")
        c.prefer_codec(vt, "video", args.video_codec)
        # Count the keyframe requests (PLI/FIR) the gateway relays to this publisher.
        force_keyframe = vt.sender._send_keyframe

        def counted_keyframe_request() -> None:
            res["keyframe_requests"] = res.get("keyframe_requests", 0) + 1
            if not args.ignore_keyframe_requests:
                force_keyframe()

        vt.sender._send_keyframe = counted_keyframe_request
        c.count_rembs(vt.sender, res)
        if audio is not None:
            at = pc.addTransceiver(audio, direction="sendonly")
            c.prefer_codec(at, "audio", "opus")

        res["phase"] = "offer"
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        res["offer_video_ssrcs"] = c.video_ssrcs(offer)
        body = offer
        cands: list[str] = []
        if args.trickle:
            body, cands = c.strip_candidates(offer)

        res["phase"] = "post"
        t0 = c.now_ms()
        headers, expected = c.offer_request(args)
        async with session.post(args.url, data=body.encode(), headers=headers) as r:
            res["status"] = r.status
            text = await r.text()
            if r.status != expected or not text.startswith("v=0"):
                res["error"] = f"POST {args.url} -> {r.status}: {text[:300]}"
                return 1
            res["location"] = r.headers.get("Location")
            res["etag"] = r.headers.get("ETag")
            res["content_type"] = r.headers.get("Content-Type")
        res["post_ms"] = round(c.now_ms() - t0, 1)
        if c.uses_session_resource(args) and res["location"]:
            location = c.absolute(args.url, res["location"])
        elif c.uses_session_resource(args):
            res["error"] = "201 without Location"
            return 1

        res["phase"] = "answer"
        await pc.setRemoteDescription(c.RTCSessionDescription(sdp=text, type="answer"))
        res["video_codec"] = (c.codecs_in(text, "video") or [None])[0]

        if args.trickle:
            res["phase"] = "trickle"
            if not await c.trickle_patch(session, location, offer, cands, res):
                return 1

        res["phase"] = "connect"
        ok = await c.wait_connected(pc, args.connect_timeout)
        if not ok:
            res["error"] = f"not connected after {args.connect_timeout}s (state {pc.connectionState})"
            return 1
        res["connected_ms"] = round(c.now_ms() - t0, 1)

        res["phase"] = "publish"
        await asyncio.sleep(args.seconds)
        res["video_frames_sent"] = video.frames
        res["audio_frames_sent"] = audio.frames if audio else 0
        try:
            stats = await asyncio.wait_for(pc.getStats(), 3)
            for s in stats.values():
                if s.type == "outbound-rtp":
                    res[f"{s.kind}_packets_sent"] = s.packetsSent
        except Exception as e:  # noqa: BLE001
            c.log.warning("getStats: %r", e)
        res["state_at_end"] = pc.connectionState
        if pc.connectionState != "connected":
            res["error"] = f"connection dropped during publishing (state {pc.connectionState})"
            return 1
        return 0
    finally:
        res["encoder_target_bitrate"] = c.encoder_target_bitrate(vt.sender if vt else None)
        res["video_frames_sent"] = video.frames
        res["audio_frames_sent"] = audio.frames if audio else 0
        if location:
            res["phase"] = "delete"
            try:
                async with session.delete(location) as r:
                    res["delete_status"] = r.status
            except Exception as e:  # noqa: BLE001
                res["delete_error"] = repr(e)
        if args.runner365_close and res.get("status") == 200:
            res["phase"] = "close"
            await c.runner365_close(session, args, res)
        await c.close_pc(pc)
        await session.close()


def main() -> None:
    c.setup_logging()
    p = argparse.ArgumentParser(description=__doc__)
    c.common_args(p, default_seconds=5.0)
    p.add_argument("--video-codec", choices=["vp8", "h264"], default="vp8")
    p.add_argument("--no-audio", action="store_true")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--ignore-keyframe-requests", action="store_true",
                   help="count PLI/FIR but never answer them (aiortc then sends one keyframe per 3000 frames)")
    c.run_client("whip_publish", p.parse_args(), run)


if __name__ == "__main__":
    main()
