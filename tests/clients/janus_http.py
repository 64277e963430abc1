#!/usr/bin/env python3
"""An aiortc VideoRoom client over Janus's HTTP long-poll API (the requests janus.js sends).

  janus_http.py --url http://127.0.0.1:PORT/janus --room 1234 --publish --seconds 6
  janus_http.py --url http://127.0.0.1:PORT/janus --room 1234 --play [--feed ID] --seconds 4

--publish: create the room unless it exists, join as publisher with joinandconfigure and a synthetic VP8 + Opus offer, stream,
leave. --play: pick --feed (default: the first participant with publisher:true, waiting for
one), join as subscriber with `streams:[{feed}]`, answer the server's offer, `start`, count
decoded frames, leave. Prints one JSON line: {"ok", "feed", "participants", "video_frames",
"width", "height", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time

import aiohttp

import common as c
from whep_play import Counter


class Janus:
    """One session with one VideoRoom handle; events come from a background long poll."""

    def __init__(self, http, url: str) -> None:
        self.http, self.url = http, url.rstrip("/")
        self.session = self.handle = None
        self.events: asyncio.Queue = asyncio.Queue()
        self.poller: asyncio.Task | None = None
        self.slowlinks: list[dict] = []
        self.media_events: list[dict] = []

    async def post(self, path: str, body: dict) -> dict:
        body = {"transaction": secrets.token_hex(6), **body}
        async with self.http.post(self.url + path, json=body) as r:
            reply = await r.json(content_type=None)
        if reply.get("janus") == "error":
            raise RuntimeError(f"{body['janus']}: {reply['error']}")
        return reply

    async def start(self) -> None:
        self.session = (await self.post("", {"janus": "create"}))["data"]["id"]
        attach = {"janus": "attach", "plugin": "janus.plugin.videoroom"}
        self.handle = (await self.post(f"/{self.session}", attach))["data"]["id"]
        self.poller = asyncio.create_task(self.poll())

    async def poll(self) -> None:
        # The server holds a poll up to 30 s: longer than the session's default timeout.
        hold = aiohttp.ClientTimeout(total=45)
        while True:
            async with self.http.get(f"{self.url}/{self.session}?maxev=10", timeout=hold) as r:
                events = await r.json(content_type=None)
            for event in events if isinstance(events, list) else [events]:
                if event.get("janus") == "slowlink":
                    self.slowlinks.append({k: event.get(k) for k in ("mid", "media", "uplink", "lost")})
                elif event.get("janus") == "media":
                    self.media_events.append({"at": time.monotonic(), **{
                        k: event.get(k) for k in ("mid", "type", "receiving", "seconds")}})
                elif event.get("janus") != "keepalive":
                    await self.events.put(event)

    async def request(self, body: dict, jsep: dict | None = None) -> dict:
        """A sync request's data, or an async one's event (data, with its jsep under `_jsep`)."""
        message = {"janus": "message", "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        reply = await self.post(f"/{self.session}/{self.handle}", message)
        if reply["janus"] == "success":
            return reply["plugindata"]["data"]
        while True:
            event = await asyncio.wait_for(self.events.get(), 15)
            if event.get("janus") == "event" and event.get("transaction") == reply["transaction"]:
                data = event["plugindata"]["data"]
                if "error_code" in data:
                    raise RuntimeError(f"{body['request']}: {data}")
                return {**data, "_jsep": event.get("jsep")}

    async def close(self) -> None:
        if self.poller is not None:
            self.poller.cancel()
        if self.session is not None:
            try:
                await self.post(f"/{self.session}", {"janus": "destroy"})
            except Exception:  # noqa: BLE001
                pass


async def publish(args, res: dict, janus: Janus) -> int:
    pc = c.new_pc()
    try:
        vt = None
        if args.add_video_at is None:
            vt = add_video(pc, args, res)
        pc.addTransceiver(c.SineAudioTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        exists = await janus.request({"request": "exists", "room": args.room})
        if not exists.get("exists"):
            await janus.request({"request": "create", "room": args.room})
        offer = {"type": "offer", "sdp": pc.localDescription.sdp}
        if args.configure_first:
            # join, a configure without jsep, then publish: Janus keeps what the configure said.
            joined = await janus.request(
                {"request": "join", "ptype": "publisher", "room": args.room,
                 "display": args.display, **json.loads(args.join_extra)})
            res["configured_first"] = await janus.request(
                {"request": "configure", **json.loads(args.configure_first)})
            published = await janus.request({"request": "publish"}, offer)
            joined["_jsep"] = published.get("_jsep")
        else:
            joined = await janus.request(
                {"request": "joinandconfigure", "ptype": "publisher", "room": args.room,
                 "display": args.display, **json.loads(args.join_extra)}, offer)
        res["feed"] = joined.get("id")
        res["joined"] = {k: v for k, v in joined.items() if k != "_jsep"}
        await pc.setRemoteDescription(c.RTCSessionDescription(**joined["_jsep"]))
        if not await c.wait_connected(pc, args.connect_timeout):
            res["error"] = "publisher never connected"
            return 1
        if args.video_off:
            # The publisher's own configure: video off from A to B seconds after connecting.
            start, _, end = args.video_off.partition(":")
            await asyncio.sleep(float(start))
            res["video_off"] = await janus.request({"request": "configure", "video": False})
            await asyncio.sleep(float(end) - float(start))
            res["video_on"] = await janus.request({"request": "configure", "video": True})
            await asyncio.sleep(max(0.0, args.seconds - float(end)))
        elif args.bitrate_at:
            # The publisher's own cap, T seconds after connecting.
            at, _, bitrate = args.bitrate_at.partition(":")
            await asyncio.sleep(float(at))
            res["bitrate_set"] = await janus.request({"request": "configure",
                                                      "bitrate": int(bitrate)})
            await asyncio.sleep(max(0.0, args.seconds - float(at)))
        elif args.pause_video:
            # The camera stops sending (no RTP at all) from A to B seconds after connecting.
            start, _, end = args.pause_video.partition(":")
            await asyncio.sleep(float(start))
            res["video_paused_at"] = time.monotonic()
            vt.sender.replaceTrack(None)
            await asyncio.sleep(float(end) - float(start))
            res["video_resumed_at"] = time.monotonic()
            vt.sender.replaceTrack(c.MovingStripesTrack(640, 480))
            await asyncio.sleep(max(0.0, args.seconds - float(end)))
        elif args.idle_video_at is not None:
            # Video no longer sent: a new offer with its section inactive.
            await asyncio.sleep(args.idle_video_at)
            vt.direction = "inactive"
            await pc.setLocalDescription(await pc.createOffer())
            renegotiated = await janus.request(
                {"request": "configure"}, {"type": "offer", "sdp": pc.localDescription.sdp})
            res["renegotiated"] = {k: v for k, v in renegotiated.items() if k != "_jsep"}
            res["renegotiated_answer_video"] = [
                l for l in renegotiated["_jsep"]["sdp"].splitlines()
                if l.startswith("m=video") or l in ("a=inactive", "a=recvonly", "a=sendonly")]
            await pc.setRemoteDescription(c.RTCSessionDescription(**renegotiated["_jsep"]))
            await asyncio.sleep(max(0.0, args.seconds - args.idle_video_at))
        elif args.add_video_at is not None:
            # Audio first; video added later by a new offer on the same PeerConnection.
            await asyncio.sleep(args.add_video_at)
            vt = add_video(pc, args, res)
            await pc.setLocalDescription(await pc.createOffer())
            renegotiated = await janus.request(
                {"request": "configure"}, {"type": "offer", "sdp": pc.localDescription.sdp})
            res["renegotiated"] = {k: v for k, v in renegotiated.items() if k != "_jsep"}
            await pc.setRemoteDescription(c.RTCSessionDescription(**renegotiated["_jsep"]))
            await asyncio.sleep(max(0.0, args.seconds - args.add_video_at))
        elif args.keyframe_at is not None:
            # The publisher's own keyframe request, T seconds after connecting.
            await asyncio.sleep(args.keyframe_at)
            res["keyframe_asked_at"] = time.monotonic()
            res["keyframe_asked"] = await janus.request({"request": "configure",
                                                         "keyframe": True})
            await asyncio.sleep(max(0.0, args.seconds - args.keyframe_at))
        else:
            await asyncio.sleep(args.seconds)
        res["ended_at"] = time.monotonic()
        # Read before leaving: the encoder goes with the transport.
        if vt is not None:
            res["encoder_target_bitrate"] = c.encoder_target_bitrate(vt.sender)
        await janus.request({"request": "leave"})
        return 0
    finally:
        await c.close_pc(pc)


def add_video(pc, args, res: dict):
    vt = pc.addTransceiver(c.MovingStripesTrack(640, 480), direction="sendonly")
    if args.video_codec != "any":
        c.prefer_codec(vt, "video", args.video_codec)
    c.count_rembs(vt.sender, res)
    return vt


async def pick_feed(args, res: dict, janus: Janus) -> int | None:
    for _ in range(50):
        listed = await janus.request({"request": "listparticipants", "room": args.room})
        res["participants"] = listed.get("participants")
        live = [p["id"] for p in listed.get("participants", []) if p.get("publisher")]
        if live:
            return live[0]
        await asyncio.sleep(0.2)
    return None


async def pick_feeds(args, res: dict, janus: Janus) -> list[int]:
    """Every publisher of the room, once at least --min-feeds publish (bounded wait)."""
    live: list[int] = []
    for _ in range(75):
        listed = await janus.request({"request": "listparticipants", "room": args.room})
        res["participants"] = listed.get("participants")
        live = [p["id"] for p in listed.get("participants", []) if p.get("publisher")]
        if len(live) >= args.min_feeds:
            break
        await asyncio.sleep(0.2)
    return live


async def play(args, res: dict, janus: Janus) -> int:
    if args.min_feeds > 1:
        feeds = await pick_feeds(args, res, janus)
    else:
        feed = args.feed or await pick_feed(args, res, janus)
        feeds = [feed] if feed is not None else []
    if len(feeds) < args.min_feeds or not feeds:
        res["error"] = f"{len(feeds)} publishers in the room, wanted {args.min_feeds}"
        return 1
    res["feed"] = feeds[0]
    pc = c.new_pc()
    counter = Counter(c.now_ms())
    counter.threshold = args.min_video_frames
    # Each video track's own count too: one PeerConnection may carry several feeds.
    per_track: dict[str, Counter] = {}

    def on_track(track) -> None:
        if track.kind == "video" and args.min_feeds > 1:
            mine = per_track.setdefault(track.id, Counter(c.now_ms()))
            asyncio.ensure_future(mine.consume(track))
            return
        asyncio.ensure_future(counter.consume(track))

    pc.on("track", on_track)
    try:
        attached = await janus.request(
            {"request": "join", "ptype": "subscriber", "room": args.room,
             "streams": [{"feed": f} for f in feeds]})
        res["attached_streams"] = attached.get("streams")
        res["attached"] = [s.get("type") for s in attached.get("streams", [])]
        await pc.setRemoteDescription(c.RTCSessionDescription(**attached["_jsep"]))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = {"type": "answer", "sdp": pc.localDescription.sdp}
        started = await janus.request({"request": "start"}, answer)
        res["started"] = started.get("started")
        if args.min_feeds > 1:
            await asyncio.sleep(args.seconds)  # counted per track meanwhile
        else:
            try:
                await asyncio.wait_for(counter.video_event.wait(), args.seconds + 10)
            except asyncio.TimeoutError:
                pass
            await asyncio.sleep(min(args.seconds, 1.0))
        if args.mute_video_for:
            await mute_video(args, res, janus, counter)
        if args.temporal_steps:
            await step_temporal_layers(args, res, janus, counter)
        if args.await_update:
            res["update"] = await answer_update(args, janus, pc)
            before = {k: m.video for k, m in per_track.items()}
            await asyncio.sleep(2.0)
            res["video_growth_after_update"] = sorted(
                m.video - before.get(k, 0) for k, m in per_track.items())
        if per_track:
            res["video_frames_per_track"] = sorted(m.video for m in per_track.values())
            counter.video = min(res["video_frames_per_track"])
        res.update(video_frames=counter.video, audio_frames=counter.audio,
                   width=counter.width, height=counter.height,
                   first_video_ms=counter.first_video_ms)
        await janus.request({"request": "leave"})
        if counter.video < args.min_video_frames:
            res["error"] = f"{counter.video} video frames decoded, wanted {args.min_video_frames}"
            return 1
        return 0
    finally:
        await c.close_pc(pc)


async def answer_update(args, janus: Janus, pc) -> dict:
    """The first unsolicited `updated` event with an offer (Janus `autoupdate`), answered
    with `start`."""
    deadline = time.monotonic() + args.await_update
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return {"error": f"no updated event within {args.await_update}s"}
        try:
            event = await asyncio.wait_for(janus.events.get(), left)
        except asyncio.TimeoutError:
            continue
        data = event.get("plugindata", {}).get("data", {})
        if data.get("videoroom") != "updated" or not event.get("jsep"):
            continue
        await pc.setRemoteDescription(c.RTCSessionDescription(**event["jsep"]))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = {"type": "answer", "sdp": pc.localDescription.sdp}
        started = await janus.request({"request": "start"}, answer)
        return {"streams": data.get("streams"), "started": started.get("started")}


async def frame_rate(counter: Counter, seconds: float) -> float:
    """Video frames decoded per second over the next `seconds`."""
    before = counter.video
    await asyncio.sleep(seconds)
    return round((counter.video - before) / seconds, 1)


async def step_temporal_layers(args, res: dict, janus: Janus, counter: Counter) -> None:
    """The frame rate with every layer, then after each configure {temporal: L} of
    --temporal-steps (a second to settle, then a 3 s window)."""
    steps = [{"temporal": None, "fps": await frame_rate(counter, 3.0)}]
    for layer in (int(x) for x in args.temporal_steps.split(",")):
        await janus.request({"request": "configure", "temporal": layer})
        await asyncio.sleep(1.0)
        steps.append({"temporal": layer, "fps": await frame_rate(counter, 3.0)})
    res["temporal_steps"] = steps


async def mute_video(args, res: dict, janus: Janus, counter: Counter) -> None:
    """configure {video: false} for a while, then {video: true}: video stops, audio goes on."""
    await janus.request({"request": "configure", "video": False})
    await asyncio.sleep(0.5)  # frames already in flight
    video, audio = counter.video, counter.audio
    await asyncio.sleep(args.mute_video_for)
    res["muted"] = {"video_growth": counter.video - video, "audio_growth": counter.audio - audio}
    await janus.request({"request": "configure", "video": True})
    video = counter.video
    await asyncio.sleep(2.0)
    res["muted"]["video_growth_after_unmute"] = counter.video - video


async def run(args, res: dict) -> int:
    http = c.http_session()
    janus = Janus(http, args.url)
    try:
        await janus.start()
        return await (publish(args, res, janus) if args.publish else play(args, res, janus))
    finally:
        res["slowlinks"] = janus.slowlinks
        res["media_events"] = janus.media_events
        await janus.close()
        await http.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="the Janus HTTP API, e.g. http://h:p/janus")
    parser.add_argument("--room", type=int, required=True)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--publish", action="store_true")
    mode.add_argument("--play", action="store_true")
    parser.add_argument("--feed", type=int, default=None)
    parser.add_argument("--display", default="aiortc")
    parser.add_argument("--video-codec", default="VP8",
                        help="--publish: the one video codec offered, or `any` (VP8 and H264)")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--min-video-frames", type=int, default=30)
    parser.add_argument("--min-feeds", type=int, default=1,
                        help="--play: subscribe to every publisher on one PeerConnection, once "
                             "this many publish")
    parser.add_argument("--mute-video-for", type=float, default=0.0,
                        help="--play: configure {video:false} for this many seconds, then true")
    parser.add_argument("--video-off", default=None, metavar="A:B",
                        help="--publish: configure {video:false} A s after connecting, "
                             "{video:true} at B s")
    parser.add_argument("--temporal-steps", default=None, metavar="L,L",
                        help="--play: frame rate with every layer, then after each "
                             "configure {temporal: L}")
    parser.add_argument("--join-extra", default="{}", metavar="JSON",
                        help="--publish: more fields of the joinandconfigure request")
    parser.add_argument("--bitrate-at", default=None, metavar="T:BPS",
                        help="--publish: configure {bitrate: BPS} T s after connecting")
    parser.add_argument("--configure-first", default=None, metavar="JSON",
                        help="--publish: join, send configure {JSON} without jsep, then publish")
    parser.add_argument("--keyframe-at", type=float, default=None, metavar="T",
                        help="--publish: configure {keyframe: true} T s after connecting")
    parser.add_argument("--await-update", type=float, default=0.0, metavar="S",
                        help="--play: wait up to S s for an `updated` event with an offer "
                             "(a publisher stopped), answer it, count 2 s more")
    parser.add_argument("--pause-video", default=None, metavar="A:B",
                        help="--publish: send no video RTP from A s after connecting to B s")
    parser.add_argument("--idle-video-at", type=float, default=None, metavar="T",
                        help="--publish: T s after connecting, a new offer with video inactive")
    parser.add_argument("--add-video-at", type=float, default=None, metavar="T",
                        help="--publish: publish audio only, then add video by a new offer "
                             "(configure + jsep) T s after connecting")
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=None)
    args = parser.parse_args()
    c.run_client("janus_http", args, run)


if __name__ == "__main__":
    main()
