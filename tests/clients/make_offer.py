#!/usr/bin/env python3
"""Print real aiortc SDP offers for HTTP-level tests.

  --kind whip         sendonly video (VP8) + audio (Opus)   (a valid WHIP offer)
  --kind whep         recvonly video + audio                (a valid WHEP offer; unusable for WHIP)
  --kind datachannel  only an m=application section         (no audio/video: unusable for both)
With --count N (N > 1 or --json) prints a JSON array of N independent offers on one line,
otherwise the raw SDP of one offer. With --pool "whip=3,whep=2,datachannel=1" prints one JSON
object {kind: [offers]} (one process, so one aiortc start-up for a whole test binary).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import common as c


async def one(kind: str) -> str:
    pc = c.new_pc()
    try:
        if kind == "whip":
            t = pc.addTransceiver(c.MovingStripesTrack(), direction="sendonly")
            c.prefer_codec(t, "video", "vp8")
            pc.addTransceiver(c.SineAudioTrack(), direction="sendonly")
        elif kind == "whep":
            pc.addTransceiver("video", direction="recvonly")
            pc.addTransceiver("audio", direction="recvonly")
        else:
            pc.createDataChannel("x")
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await c.close_pc(pc)


async def run(args) -> list[str]:
    return [await one(args.kind) for _ in range(args.count)]


def main() -> None:
    c.setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=["whip", "whep", "datachannel"])
    p.add_argument("--pool", help='e.g. "whip=3,whep=2,datachannel=1"')
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    c.install_hard_timeout(20, {"client": "make_offer"})
    if args.pool:
        async def pool() -> dict:
            out: dict = {}
            for item in args.pool.split(","):
                kind, _, n = item.partition("=")
                if kind not in ("whip", "whep", "datachannel"):
                    raise ValueError(f"unknown kind {kind}")
                out[kind] = [await one(kind) for _ in range(int(n or 1))]
            return out
        try:
            res = asyncio.run(pool())
        except Exception as e:  # noqa: BLE001
            c.finish({"ok": False, "error": f"{type(e).__name__}: {e}"}, 1)
            return
        c.finish(res, 0)
        return
    if not args.kind:
        p.error("--kind or --pool is required")
    try:
        offers = asyncio.run(run(args))
    except Exception as e:  # noqa: BLE001
        c.finish({"ok": False, "error": f"{type(e).__name__}: {e}"}, 1)
        return
    if args.json or args.count > 1:
        sys.stdout.write(json.dumps(offers) + "\n")
    else:
        sys.stdout.write(offers[0])
    sys.stdout.flush()
    c.os._exit(0)


if __name__ == "__main__":
    main()
