#!/usr/bin/env python3
"""WHEP player (aiortc): recvonly video + audio, counts DECODED frames.

Prints ONE JSON line:
  {"ok":true,"status":201,"location":...,"video_frames":...,"audio_frames":...,
   "first_frame_ms":...,"width":...,"height":..., ["restart":{...}], ["delete_status":...]}
`first_frame_ms` = ms from the start of the POST to the first decoded video frame.
Exit code 0 on success, 1 on a failed step or too few frames (JSON has "error"), 3 on the hard timeout.

ICE restart (--ice-restart): aiortc cannot restart ICE itself. After the first decoded frames the
client PATCHes a fragment with a fresh ice-ufrag/ice-pwd (If-Match: "*"), checks the 200 answer
(content type, new server ufrag/pwd, new ETag), then swaps the new credentials into aiortc's aioice
connection in place and sends a nominating Binding request with them, and keeps counting decoded
frames. `restart.media_checked` says whether media continuity after the restart was measured.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import common as c


class Counter:
    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.video = 0
        self.audio = 0
        self.first_video_ms: float | None = None
        self.first_audio_ms: float | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.video_event = asyncio.Event()
        self.threshold = 0

    async def consume(self, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except c.MediaStreamError:
                return
            except Exception as e:  # noqa: BLE001
                c.log.warning("recv on %s: %r", track.kind, e)
                return
            if track.kind == "video":
                self.video += 1
                if self.first_video_ms is None:
                    self.first_video_ms = round(c.now_ms() - self.t0, 1)
                self.width, self.height = frame.width, frame.height
                if self.video >= self.threshold:
                    self.video_event.set()
            else:
                self.audio += 1
                if self.first_audio_ms is None:
                    self.first_audio_ms = round(c.now_ms() - self.t0, 1)


async def wait_frames(counter: Counter, n: int, timeout: float) -> bool:
    counter.threshold = n
    counter.video_event.clear()
    if counter.video >= n:
        return True
    try:
        await asyncio.wait_for(counter.video_event.wait(), timeout)
        return True
    except asyncio.TimeoutError:
        return False


async def ice_restart(args, res, session, pc, location, offer_sdp, counter, deadline) -> None:
    r_out: dict = {"method": "emulated: PATCH with new ufrag/pwd, then aioice credentials swapped "
                             "in place + nominating Binding request (aiortc has no native ICE restart)",
                   "media_checked": False}
    res["restart"] = r_out
    loop = asyncio.get_running_loop()
    got = await wait_frames(counter, 10, max(0.5, deadline - loop.time()))
    r_out["frames_before"] = counter.video
    if not got:
        r_out["error"] = "no decoded frames before the restart"
    new_ufrag, new_pwd = c.random_ice_ufrag(), c.random_ice_pwd()
    local_cands = c.first_section(pc.localDescription.sdp)["candidates"]
    frag = c.build_sdpfrag(offer_sdp, new_ufrag, new_pwd, local_cands)
    headers = {"Content-Type": "application/trickle-ice-sdpfrag", "If-Match": args.restart_if_match}
    c.log.debug("ice restart: PATCH %s", location)
    async with session.patch(location, data=frag.encode(), headers=headers) as r:
        body = await r.text()
        c.log.debug("ice restart: PATCH answered %s", r.status)
        r_out["status"] = r.status
        r_out["content_type"] = r.headers.get("Content-Type")
        r_out["etag_before"] = res.get("etag")
        r_out["etag_after"] = r.headers.get("ETag")
    if r_out["status"] != 200:
        r_out["error"] = f"restart PATCH -> {r_out['status']}: {body[:300]}"
        return
    srv = c.parse_sdpfrag(body)
    old = c.first_section(res["_answer"])
    r_out["server_ufrag_before"] = old["ice-ufrag"]
    r_out["server_ufrag_after"] = srv["ice-ufrag"]
    r_out["server_pwd_changed"] = bool(srv["ice-pwd"]) and srv["ice-pwd"] != old["ice-pwd"]
    r_out["server_candidates"] = len(srv["candidates"])
    r_out["new_credentials"] = (bool(srv["ice-ufrag"]) and srv["ice-ufrag"] != old["ice-ufrag"]
                                and r_out["server_pwd_changed"])
    r_out["new_etag"] = bool(r_out["etag_after"]) and r_out["etag_after"] != r_out["etag_before"]
    if not (srv["ice-ufrag"] and srv["ice-pwd"]):
        r_out["error"] = "restart answer fragment lacks ice-ufrag/ice-pwd"
        return

    # Emulate the client side of the restart inside aioice.
    conn = c.ice_connection_of(pc)
    conn._local_username = new_ufrag
    conn._local_password = new_pwd
    conn.remote_username = srv["ice-ufrag"]
    conn.remote_password = srv["ice-pwd"]
    r_out["frames_at_restart"] = counter.video
    ok_checks = 0
    for pair in list(conn._nominated.values()):
        req = conn.build_request(pair, nominate=True)
        try:
            await asyncio.wait_for(
                pair.protocol.request(req, pair.remote_addr,
                                      integrity_key=srv["ice-pwd"].encode("utf8")), 3)
            ok_checks += 1
        except Exception as e:  # noqa: BLE001
            r_out["check_error"] = repr(e)
    c.log.debug("ice restart: nominating checks done ok=%s", ok_checks)
    r_out["nominating_check_ok"] = ok_checks > 0
    r_out["media_checked"] = True


async def switch_layer(args, res: dict, session, location: str, counter: "Counter") -> None:
    """Switches the simulcast layer mid-play (after SECONDS, and once 30 frames were decoded)
    and records the decoded widths around it."""
    rid, _, after = args.switch_layer.partition("@")
    await asyncio.sleep(float(after or 3))
    await wait_frames(counter, 30, 10)
    res["width_before_switch"] = counter.width
    res["frames_before_switch"] = counter.video
    async with session.post(f"{location}/layer", json={"encodingId": rid}) as r:
        res["switch_status"] = r.status


async def send_plis(receiver, media_ssrc: int, interval: float, res: dict) -> None:
    """Keyframe requests (PLI) on a fixed interval, as an impatient viewer would send them."""
    res["plis_sent"] = 0
    while True:
        await receiver._send_rtcp_pli(media_ssrc)
        res["plis_sent"] += 1
        await asyncio.sleep(interval)


async def run(args: argparse.Namespace, res: dict) -> int:
    loop = asyncio.get_running_loop()
    pc = c.new_pc()
    session = c.http_session()
    location = None
    t0 = c.now_ms()
    counter = Counter(t0)
    tasks: list[asyncio.Task] = []

    @pc.on("track")
    def on_track(track) -> None:
        tasks.append(asyncio.ensure_future(counter.consume(track)))

    try:
        video_transceiver = pc.addTransceiver("video", direction="recvonly")
        if not args.no_audio:
            pc.addTransceiver("audio", direction="recvonly")
        res["phase"] = "offer"
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        body = offer
        cands: list[str] = []
        if args.trickle:
            body, cands = c.strip_candidates(offer)

        res["phase"] = "post"
        t0 = counter.t0 = c.now_ms()
        headers, expected = c.offer_request(args)
        async with session.post(args.url, data=body.encode(), headers=headers) as r:
            res["status"] = r.status
            text = await r.text()
            if r.status != expected or not text.startswith("v=0"):
                res["error"] = f"POST {args.url} -> {r.status}: {text[:300]}"
                return 1
            res["location"] = r.headers.get("Location")
            res["etag"] = r.headers.get("ETag")
        res["post_ms"] = round(c.now_ms() - t0, 1)
        if c.uses_session_resource(args) and res["location"]:
            location = c.absolute(args.url, res["location"])
        elif c.uses_session_resource(args):
            res["error"] = "201 without Location"
            return 1
        res["_answer"] = text
        deadline = loop.time() + args.seconds

        res["phase"] = "answer"
        await pc.setRemoteDescription(c.RTCSessionDescription(sdp=text, type="answer"))
        # the answer may list several codecs; the one used is the publisher's
        res["answer_video_codecs"] = sorted(set(c.codecs_in(text, "video")) - {"rtx"})
        res["answer_video_ssrcs"] = c.video_ssrcs(text)

        if args.trickle:
            res["phase"] = "trickle"
            if not await c.trickle_patch(session, location, offer, cands, res):
                return 1

        res["phase"] = "connect"
        if not await c.wait_connected(pc, args.connect_timeout):
            res["error"] = f"not connected after {args.connect_timeout}s (state {pc.connectionState})"
            return 1
        res["connected_ms"] = round(c.now_ms() - t0, 1)

        if args.pli_interval_ms > 0:
            media_ssrc = res["answer_video_ssrcs"].get("primary", 0)
            tasks.append(asyncio.ensure_future(send_plis(
                video_transceiver.receiver, media_ssrc, args.pli_interval_ms / 1000, res)))

        if args.switch_layer:
            tasks.append(asyncio.ensure_future(switch_layer(args, res, session, location, counter)))

        if args.ice_restart:
            res["phase"] = "ice-restart"
            await ice_restart(args, res, session, pc, location, offer, counter, deadline)

        res["phase"] = "play"
        remaining = deadline - loop.time()
        if remaining > 0:
            await asyncio.sleep(remaining)
        res["state_at_end"] = pc.connectionState
        try:
            stats = await asyncio.wait_for(pc.getStats(), 3)
            for s in stats.values():
                if s.type == "inbound-rtp":
                    res[f"{s.kind}_packets_received"] = s.packetsReceived
        except Exception as e:  # noqa: BLE001
            c.log.warning("getStats: %r", e)

        if args.ice_restart and "restart" in res:
            rr = res["restart"]
            if rr.get("media_checked"):
                rr["frames_after"] = counter.video - rr["frames_at_restart"]
            if rr.get("error"):
                res["error"] = f"ice restart: {rr['error']}"
                return 1
        if counter.video < args.min_video_frames:
            res["error"] = f"decoded {counter.video} video frames < {args.min_video_frames}"
            return 1
        return 0
    finally:
        res["video_frames"] = counter.video
        res["audio_frames"] = counter.audio
        res["first_frame_ms"] = counter.first_video_ms
        res["first_audio_ms"] = counter.first_audio_ms
        res["width"] = counter.width
        res["height"] = counter.height
        res.pop("_answer", None)
        if location and args.delete:
            res["phase"] = "delete"
            try:
                async with session.delete(location) as r:
                    res["delete_status"] = r.status
            except Exception as e:  # noqa: BLE001
                res["delete_error"] = repr(e)
        for t in tasks:
            t.cancel()
        if args.runner365_close and res.get("status") == 200:
            res["phase"] = "close"
            await c.runner365_close(session, args, res)
        await c.close_pc(pc)
        await session.close()


def main() -> None:
    c.setup_logging()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.common_args(p, default_seconds=4.0)
    p.add_argument("--min-video-frames", type=int, default=0,
                   help="fail (exit 1) if fewer video frames were decoded")
    p.add_argument("--ice-restart", action="store_true")
    p.add_argument("--restart-if-match", default='"*"',
                   help='If-Match value of the ICE restart PATCH (default "*", quoted as in the WHIP/WHEP examples)')
    p.add_argument("--delete", action="store_true", help="DELETE the session at the end")
    p.add_argument("--no-audio", action="store_true")
    p.add_argument("--switch-layer", default=None, metavar="RID@SECONDS",
                   help="POST {session}/layer {encodingId: RID} SECONDS after connecting, once "
                        "30 frames were decoded (Live777's layer extension); reports widths "
                        "before and after")
    p.add_argument("--pli-interval-ms", type=int, default=0,
                   help="send a PLI for the video stream every N ms once connected")
    c.run_client("whep_play", p.parse_args(), run)


if __name__ == "__main__":
    main()
