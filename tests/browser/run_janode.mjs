#!/usr/bin/env node
// Janode 1.8.0 (Meetecho's Node client for the Janus API, WebSocket transport) driving a
// VideoRoom scenario against a Janus-compatible server, with aiortc media peers
// (tests/clients/jsep_peer.py, one Python process per PeerConnection).
//
//   node run_janode.mjs --url ws://HOST:PORT[/path] --python PY --peer PATH/jsep_peer.py
//                       [--room 1234] [--timeout 90] [--peer-ice-addresses LIST] [--janode-log=info]
//
// --peer-ice-addresses is handed to every jsep_peer (--ice-addresses; default there 127.0.0.1).
// Against the real Janus pass `127.0.0.1,nic`: Janus never gathers loopback and libnice pins
// its sockets to the NIC, so only a NIC host candidate on the peer side connects (see
// tests/janus/janus-config/janus.jcfg). The peers' SDPs carry all candidates, so every jsep
// sent to the server says `trickle: false` (as janus.js does without trickle).
//
// Scenario (steps a..i, keys of "steps" in the result):
//   a_room          session + manager handle; create room R (publishers 6); exists; list has R
//   b_alice         alice: joinConfigurePublisher with a 640x480 VP8 + Opus offer; feed id;
//                   core `webrtcup` on her handle within 15 s
//   c_bob           bob: same at 320x240
//   d_participants  listParticipants until both are publisher:true (<= ~5 s)
//   e_s1_alice      S1: joinSubscriber streams:[{feed: alice}] (server offer) -> start(answer);
//                   > 30 decoded frames, width 640
//   f_s1_switch     S1: switch video to bob (streams:[{feed, mid, sub_mid}]); width 320 within ~5 s
//   g_s1_pause      S1: pause -> frame count stops; start (no jsep) -> it grows again
//   h_s2_legacy     S2: joinSubscriber with the legacy `feed: alice` -> start -> > 30 frames
//   h2_s1_update    S1 (on bob): update {subscribe:[alice]} -> `updated` + offer -> start with the
//                   answer: a 640 and a 320 video track both decode; update {unsubscribe:[alice]}
//                   -> offer -> start: the 640 track stops, the 320 one goes on
//   i_teardown      S1/S2 leave; alice unpublish + leave; destroy R; exists -> false
// Bob's video mid comes from the `publishers` notification alice's handle receives when bob
// goes live (Janode's joinConfigurePublisher result drops the publisher's own `streams`).
//
// Output: progress on stderr (Janode's own logging too: it writes with console.info, which is
// redirected); exactly ONE JSON line on stdout:
//   {"ok":bool,"steps":{...},"events":{handle:[event names]},"peers":{name:final stats},"error":...}
// Exit 0 when every step passed, 1 on a failed step, 2 on bad arguments, 3 on the hard timeout
// (--timeout, whole run), 130 on a signal. Every jsep_peer child is killed on exit, whatever the
// cause; after a timeout/signal the room is destroyed on a best-effort basis (2 s).

import { spawn } from "node:child_process";
import readline from "node:readline";
import util from "node:util";
import Janode from "janode";
import VideoRoomPlugin from "janode/plugins/videoroom";

// stdout carries only the result line: Janode logs via console.info/console.debug.
for (const fn of ["log", "info", "debug"]) {
  console[fn] = (...a) => process.stderr.write(util.format(...a) + "\n");
}
if (!process.argv.some((a) => a.startsWith("--janode-log"))) Janode.Logger.setLevel("warn");

const MIN_FRAMES = 30;          // decoded video frames a subscriber must reach
const FRAME_WAIT_MS = 15000;    // time allowed to reach them (ICE + DTLS + first keyframe)
const SWITCH_WAIT_MS = 5000;    // time allowed for the decoded width to follow a switch
const PAUSE_SETTLE_MS = 700;    // frames already in flight when the pause is acked
const PAUSE_WATCH_MS = 2000;    // window in which a paused subscriber must not grow
const PAUSE_SLACK = 5;          // frames tolerated in that window
const RESUME_FRAMES = 15;       // growth required after start (no jsep)
const PARTICIPANTS_WAIT_MS = 5000;
const REQUEST_MS = 10000;       // one jsep_peer command (Janode requests: bounded by --timeout)

const result = { ok: false, steps: {}, events: {}, peers: {} };
const children = new Set();
let currentStep = "init";
let finished = false;
let aborting = false;
let liveCtx = null;             // the running scenario, for abort()

function log(...a) {
  process.stderr.write(`[run_janode] ${util.format(...a)}\n`);
}

function parseArgs(argv) {
  const a = { url: null, python: null, peer: null, room: 1234, timeout: 90, peerIce: null };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === "--url") { a.url = v; i++; }
    else if (k === "--python") { a.python = v; i++; }
    else if (k === "--peer") { a.peer = v; i++; }
    else if (k === "--room") { a.room = Number(v); i++; }
    else if (k === "--timeout") { a.timeout = Number(v); i++; }
    else if (k === "--peer-ice-addresses") { a.peerIce = v; i++; }
    else if (k.startsWith("--janode-log")) { /* read by Janode itself */ }
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.url || !a.python || !a.peer) throw new Error("--url, --python and --peer are required");
  if (!Number.isInteger(a.room) || a.room <= 0) throw new Error("--room must be a positive integer");
  return a;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// Rejects with `what` timed out if `promise` takes longer than `ms`.
function bounded(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no reply within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ------------------------------------------------------------------------------------------
// Process lifetime: one result line, children always killed.
// ------------------------------------------------------------------------------------------

function killChildren() {
  for (const child of children) {
    try { child.kill("SIGKILL"); } catch { /* already gone */ }
  }
  children.clear();
}

function finish(code) {
  if (finished) return;
  finished = true;
  killChildren();
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}

function fail(code, message) {
  result.ok = false;
  result.error = result.error ?? message;
  finish(code);
}

/// Timeout, signal or crash: kill the peers at once, try briefly to destroy the room (so a
/// re-run against the same server can create it again), then print the result.
async function abort(code, message) {
  result.ok = false;
  result.error = result.error ?? message;
  if (aborting) { finish(code); return; }
  aborting = true;
  killChildren();
  const manager = liveCtx?.handles.manager;
  if (liveCtx?.roomCreated && manager) {
    try {
      await bounded(manager.destroy({ room: liveCtx.args.room }), 2000, "destroy");
      liveCtx.roomCreated = false;
    } catch (e) { log(`abort: destroy: ${e.message}`); }
  }
  finish(code);
}

process.on("exit", killChildren);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => abort(130, `${sig} during step ${currentStep}`));
}
process.on("uncaughtException", (e) => abort(1, `uncaught: ${e?.stack ?? e}`));
process.on("unhandledRejection", (e) => abort(1, `unhandled rejection: ${e?.stack ?? e}`));

// ------------------------------------------------------------------------------------------
// jsep_peer.py children: one JSON command per line, one JSON reply per command, in order.
// ------------------------------------------------------------------------------------------

class JsepPeer {
  constructor(name, args) {
    this.name = name;
    this.pending = [];
    this.exit = null;
    // the peer's own hard timeout outlives ours, so ours reports first
    const argv = [args.peer, "--timeout", String(args.timeout + 15)];
    if (args.peerIce) argv.push("--ice-addresses", args.peerIce);
    this.child = spawn(args.python, argv, { stdio: ["pipe", "pipe", "pipe"] });
    children.add(this.child);
    readline.createInterface({ input: this.child.stdout }).on("line", (l) => this.onLine(l));
    readline.createInterface({ input: this.child.stderr }).on("line", (l) => log(`${name}: ${l}`));
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code, signal) => {
        children.delete(this.child);
        this.exit = { code, signal };
        this.rejectAll(new Error(`${name} exited (code ${code}, signal ${signal})`));
        resolve(this.exit);
      });
    });
    this.child.on("error", (e) => this.rejectAll(new Error(`${name}: ${e.message}`)));
    this.child.stdin.on("error", () => { /* the exit handler reports it */ });
  }

  onLine(line) {
    let msg;
    try { msg = JSON.parse(line); } catch { log(`${this.name}: non-JSON stdout: ${line}`); return; }
    const waiter = this.pending.shift();
    if (!waiter) { log(`${this.name}: unsolicited ${line.slice(0, 200)}`); return; }
    if (msg.event === "error") waiter.reject(new Error(`${this.name}: ${msg.error}`));
    else waiter.resolve(msg);
  }

  rejectAll(err) {
    for (const w of this.pending.splice(0)) w.reject(err);
  }

  request(cmd, ms = REQUEST_MS) {
    if (this.exit) return Promise.reject(new Error(`${this.name} already exited`));
    const reply = new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
    this.child.stdin.write(JSON.stringify(cmd) + "\n");
    return bounded(reply, ms, `${this.name} ${cmd.cmd}`);
  }

  async publishOffer(width, height, codec) {
    const r = await this.request({ cmd: "publish", width, height, codec });
    return { type: "offer", sdp: r.sdp, trickle: false };
  }

  async setAnswer(jsep) {
    await this.request({ cmd: "answer", sdp: jsep.sdp });
  }

  async answerOffer(jsep) {
    const r = await this.request({ cmd: "subscribe_offer", sdp: jsep.sdp });
    return { type: "answer", sdp: r.sdp, trickle: false };
  }

  stats() {
    return this.request({ cmd: "stats" });
  }

  /// Final stats (closes the PC); kills the process if it does not leave on its own.
  async close() {
    if (this.exit) return null;
    let final = null;
    try { final = await this.request({ cmd: "close" }, 5000); } catch (e) { log(`${this.name} close: ${e.message}`); }
    this.child.stdin.end();
    const gone = await Promise.race([this.exited, sleep(3000).then(() => null)]);
    if (!gone) this.child.kill("SIGKILL");
    return final;
  }
}

/// Polls the peer's stats until `pred(stats)` holds; returns the last stats and the elapsed ms.
async function waitStats(peer, pred, ms, what) {
  const t0 = Date.now();
  let s = await peer.stats();
  while (!pred(s)) {
    if (Date.now() - t0 > ms) {
      throw new Error(`${what} not reached within ${ms} ms (video_frames ${s.video_frames}, ` +
        `width ${s.width}, connection ${s.connection})`);
    }
    await sleep(200);
    s = await peer.stats();
  }
  return { stats: s, ms: Date.now() - t0 };
}

// ------------------------------------------------------------------------------------------
// Janode handles: every emitted event is recorded by name (result.events[handle name]).
// ------------------------------------------------------------------------------------------

const CORE_EVENTS = ["HANDLE_WEBRTCUP", "HANDLE_MEDIA", "HANDLE_HANGUP", "HANDLE_DETACHED",
  "HANDLE_ICE_FAILED", "HANDLE_SLOWLINK", "HANDLE_TRICKLE"];

/// "event" or "event:who" (who = the display name of the feed(s) it is about, when known).
function eventLabel(ctx, event, data) {
  const who = (feed) => ctx.feedNames[feed] ?? feed;
  if (Array.isArray(data?.publishers)) return `${event}:${data.publishers.map((p) => who(p.feed)).join(",")}`;
  if (data?.feed !== undefined && data?.feed !== null) return `${event}:${who(data.feed)}`;
  return event;
}

function recordEvents(ctx, handle, name) {
  const seen = (result.events[name] = []);
  handle.eventLog = [];
  const on = (event) => handle.on(event, (data) => {
    seen.push(eventLabel(ctx, event, data));
    handle.eventLog.push({ event, data, at: Date.now() });
  });
  for (const key of CORE_EVENTS) on(Janode.EVENT[key]);
  for (const event of Object.values(VideoRoomPlugin.EVENT)) on(event);
}

/// Resolves with the first recorded event `name` (past or future) whose data satisfies `pred`.
async function waitEvent(handle, name, pred, ms) {
  const t0 = Date.now();
  for (;;) {
    const hit = handle.eventLog.find((e) => e.event === name && pred(e.data));
    if (hit) return hit;
    if (Date.now() - t0 > ms) return null;
    await sleep(100);
  }
}

async function attach(ctx, name) {
  const handle = await ctx.session.attach(VideoRoomPlugin);
  recordEvents(ctx, handle, name);
  ctx.handles[name] = handle;
  return handle;
}

const videoStream = (streams) => (streams ?? []).find((s) => s.type === "video");

// ------------------------------------------------------------------------------------------
// Steps
// ------------------------------------------------------------------------------------------

async function step(name, fn) {
  currentStep = name;
  const t0 = Date.now();
  const rec = (result.steps[name] = { ok: false });
  log(`step ${name}`);
  try {
    Object.assign(rec, await fn(rec));
    rec.ok = true;
  } catch (e) {
    rec.error = e.message;
    throw new Error(`${name}: ${e.message}`);
  } finally {
    rec.ms = Date.now() - t0;
  }
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

async function stepRoom(ctx, rec) {
  const { room } = ctx.args;
  ctx.connection = await Janode.connect({ address: { url: ctx.args.url }, max_retries: 1, retry_time_secs: 1 });
  ctx.session = await ctx.connection.create();
  const manager = await attach(ctx, "manager");
  const created = await manager.create({ room, max_publishers: 6, description: "gatehouse test" });
  ctx.roomCreated = true;
  check(created.room === room, `created room ${created.room} != ${room}`);
  const exists = await manager.exists({ room });
  check(exists.exists === true, `exists -> ${exists.exists}`);
  const list = await manager.list();
  const entry = (list.list ?? []).find((r) => r.room === room);
  check(entry, `room ${room} missing from list (${(list.list ?? []).map((r) => r.room)})`);
  return { created, exists: exists.exists, listed: entry };
}

/// A publisher handle + its peer: joinConfigurePublisher with the peer's offer.
async function publisher(ctx, name, width, height) {
  const t0 = Date.now();
  const handle = await attach(ctx, name);
  const peer = (ctx.peers[name] = new JsepPeer(name, ctx.args));
  const offer = await peer.publishOffer(width, height, "VP8");
  const joined = await handle.joinConfigurePublisher({ room: ctx.args.room, display: name, jsep: offer });
  check(joined.jsep && joined.jsep.type === "answer", `joined without a jsep answer (${JSON.stringify(joined.jsep?.type)})`);
  check(joined.feed, "joined without a feed id");
  ctx.feedNames[joined.feed] = name;
  await peer.setAnswer(joined.jsep);
  // janus.js and Janode apps treat the core `webrtcup` event as "the PeerConnection is up"
  const up = await waitEvent(handle, Janode.EVENT.HANDLE_WEBRTCUP, () => true, FRAME_WAIT_MS);
  if (!up) {
    const s = await peer.stats();
    throw new Error(`no webrtcup within ${FRAME_WAIT_MS} ms (peer connection ${s.connection})`);
  }
  return {
    handle, peer, feed: joined.feed,
    rec: {
      feed: joined.feed, display: joined.display, room: joined.room, private_id: joined.private_id,
      publishers_at_join: joined.publishers.map((p) => ({ feed: p.feed, display: p.display, streams: p.streams })),
      webrtcup_ms: up.at - t0,
    },
  };
}

async function stepPublisher(ctx, name, width, height) {
  const p = await publisher(ctx, name, width, height);
  ctx[name] = p;
  return p.rec;
}

async function stepParticipants(ctx) {
  const t0 = Date.now();
  const feeds = [ctx.alice.feed, ctx.bob.feed];
  let last;
  for (;;) {
    last = await ctx.handles.manager.listParticipants({ room: ctx.args.room });
    const publishing = feeds.every((f) => last.participants.some((p) => p.feed === f && p.publisher === true));
    if (publishing) break;
    check(Date.now() - t0 < PARTICIPANTS_WAIT_MS,
      `not both publisher:true after ${PARTICIPANTS_WAIT_MS} ms: ${JSON.stringify(last.participants)}`);
    await sleep(250);
  }
  return { participants: last.participants, waited_ms: Date.now() - t0 };
}

/// Subscriber handle + peer: join (server offer) -> answer -> start -> > MIN_FRAMES decoded.
async function subscriber(ctx, name, joinParams) {
  const handle = await attach(ctx, name);
  const peer = (ctx.peers[name] = new JsepPeer(name, ctx.args));
  const attached = await handle.joinSubscriber({ room: ctx.args.room, ...joinParams });
  check(attached.jsep && attached.jsep.type === "offer", "attached without a jsep offer");
  const answer = await peer.answerOffer(attached.jsep);
  const started = await handle.start({ jsep: answer });
  const t0 = Date.now();
  const { stats } = await waitStats(peer, (s) => s.video_frames > MIN_FRAMES, FRAME_WAIT_MS, `${MIN_FRAMES} frames`);
  return {
    handle, peer, attached,
    rec: {
      attached: { feed: attached.feed, display: attached.display, streams: attached.streams },
      started: started.started,
      first_frames_ms: Date.now() - t0,
      video_frames: stats.video_frames, audio_frames: stats.audio_frames,
      width: stats.width, height: stats.height,
    },
  };
}

async function stepS1(ctx) {
  const s1 = (ctx.s1 = await subscriber(ctx, "s1", { streams: [{ feed: ctx.alice.feed }] }));
  check(s1.rec.width === 640, `decoded width ${s1.rec.width}, expected 640 (alice)`);
  return s1.rec;
}

/// Bob's video mid, from the `publishers` event alice's handle got when bob went live.
async function bobVideoMid(ctx) {
  const hasBob = (d) => (d.publishers ?? []).some((p) => p.feed === ctx.bob.feed && videoStream(p.streams));
  const ev = await waitEvent(ctx.alice.handle, VideoRoomPlugin.EVENT.VIDEOROOM_PUB_LIST, hasBob, 5000);
  check(ev, "alice's handle got no videoroom_publisher_list event with bob's streams");
  return videoStream(ev.data.publishers.find((p) => p.feed === ctx.bob.feed).streams).mid;
}

async function stepSwitch(ctx) {
  const { handle, peer, attached } = ctx.s1;
  const bobMid = await bobVideoMid(ctx);
  const subMid = videoStream(attached.streams)?.mid;
  check(subMid !== undefined, `no video stream in S1's attached streams ${JSON.stringify(attached.streams)}`);
  const before = await peer.stats();
  const streams = [{ feed: ctx.bob.feed, mid: bobMid, sub_mid: subMid }];
  const switched = await handle.switch({ streams });
  const { stats, ms } = await waitStats(peer, (s) => s.width === 320 && s.video_frames > before.video_frames,
    SWITCH_WAIT_MS, "decoded width 320 after switch");
  return {
    request_streams: streams, switched: switched.switched, streams: switched.streams,
    frames_before: before.video_frames, width_before: before.width,
    frames_after: stats.video_frames, width_after: stats.width, height_after: stats.height, width_320_ms: ms,
  };
}

async function stepPause(ctx) {
  const { handle, peer } = ctx.s1;
  const paused = await handle.pause();
  await sleep(PAUSE_SETTLE_MS);
  const a = await peer.stats();
  await sleep(PAUSE_WATCH_MS);
  const b = await peer.stats();
  const growth = b.video_frames - a.video_frames;
  check(growth <= PAUSE_SLACK, `paused subscriber still decoded ${growth} frames in ${PAUSE_WATCH_MS} ms`);
  const started = await handle.start({});
  const { stats, ms } = await waitStats(peer, (s) => s.video_frames >= b.video_frames + RESUME_FRAMES,
    FRAME_WAIT_MS, `${RESUME_FRAMES} more frames after start`);
  return {
    paused: paused.paused, growth_while_paused: growth, frames_paused: b.video_frames,
    started: started.started, frames_resumed: stats.video_frames, resume_ms: ms, width: stats.width,
  };
}

async function stepS2(ctx) {
  const s2 = (ctx.s2 = await subscriber(ctx, "s2", { feed: ctx.alice.feed }));
  check(s2.rec.width === 640, `decoded width ${s2.rec.width}, expected 640 (alice)`);
  // legacy join: Janus 1.1.2 adds "id" (the feed) and "display" to `attached`; Janode keeps them
  s2.rec.attached_feed_is_alice = s2.attached.feed === ctx.alice.feed;
  return s2.rec;
}

/// The video tracks of a peer's stats at `width`.
const videoTracksAt = (stats, width) =>
  (stats.tracks ?? []).filter((t) => t.kind === "video" && t.width === width);
const framesAt = (stats, width) => videoTracksAt(stats, width).reduce((n, t) => n + t.frames, 0);

/// Renegotiates S1 with `update`, answers the server's new offer with `start`.
async function updateS1(ctx, params) {
  const { handle, peer } = ctx.s1;
  const updated = await handle.update(params);
  check(updated.jsep && updated.jsep.type === "offer", `updated without a jsep offer: ${JSON.stringify(updated)}`);
  const answer = await peer.answerOffer(updated.jsep);
  const started = await handle.start({ jsep: answer });
  return { streams: updated.streams, started: started.started };
}

async function stepUpdate(ctx) {
  const { peer } = ctx.s1;
  const added = await updateS1(ctx, { subscribe: [{ feed: ctx.alice.feed }] });
  const before = await peer.stats();
  const both = (s) => framesAt(s, 640) > 20 && framesAt(s, 320) > framesAt(before, 320) + 20;
  const { stats, ms } = await waitStats(peer, both, FRAME_WAIT_MS, "alice (640) and bob (320) both decoding");
  const removed = await updateS1(ctx, { unsubscribe: [{ feed: ctx.alice.feed }] });
  await sleep(PAUSE_SETTLE_MS);
  const a = await peer.stats();
  await sleep(PAUSE_WATCH_MS);
  const b = await peer.stats();
  const alice_growth = framesAt(b, 640) - framesAt(a, 640);
  const bob_growth = framesAt(b, 320) - framesAt(a, 320);
  check(alice_growth <= PAUSE_SLACK, `alice's track still decoded ${alice_growth} frames after unsubscribe`);
  check(bob_growth >= RESUME_FRAMES, `bob's track decoded only ${bob_growth} frames after unsubscribe`);
  return {
    subscribed_streams: added.streams, both_decoding_ms: ms,
    frames_640: framesAt(stats, 640), frames_320: framesAt(stats, 320),
    unsubscribed_streams: removed.streams, alice_growth_after_unsubscribe: alice_growth,
    bob_growth_after_unsubscribe: bob_growth,
  };
}

/// S3 asks for bob while its first offer (alice) is unanswered: the request is answered with
/// `updating` (no jsep); the offer with both feeds follows `start`, unsolicited.
async function stepQueuedUpdate(ctx) {
  const handle = await attach(ctx, "s3");
  const peer = (ctx.peers.s3 = new JsepPeer("s3", ctx.args));
  const attached = await handle.joinSubscriber({ room: ctx.args.room, streams: [{ feed: ctx.alice.feed }] });
  check(attached.jsep && attached.jsep.type === "offer", "attached without a jsep offer");
  const queued = await handle.update({ subscribe: [{ feed: ctx.bob.feed }] });
  check(!queued.jsep, `an offer came while the first was unanswered: ${JSON.stringify(queued.streams)}`);
  const started = await handle.start({ jsep: await peer.answerOffer(attached.jsep) });
  const withOffer = (d) => d.jsep && d.jsep.type === "offer";
  const next = await waitEvent(handle, VideoRoomPlugin.EVENT.VIDEOROOM_UPDATED, withOffer, 5000);
  check(next, "no updated event with an offer after start");
  const restarted = await handle.start({ jsep: await peer.answerOffer(next.data.jsep) });
  const both = (s) => framesAt(s, 640) > 10 && framesAt(s, 320) > 10;
  const { stats, ms } = await waitStats(peer, both, FRAME_WAIT_MS, "alice (640) and bob (320) both decoding");
  const left = await handle.leave();
  return {
    queued_reply_has_jsep: Boolean(queued.jsep), started: started.started, started_again: restarted.started,
    offered_streams: (next.data.streams ?? []).map((s) => ({ type: s.type, feed: ctx.feedNames[s.feed_id] ?? null })),
    both_decoding_ms: ms, frames_640: framesAt(stats, 640), frames_320: framesAt(stats, 320),
    left: Boolean(left),
  };
}

/// Bob renames himself: alice (a participant of the room) is told; listparticipants shows it.
async function stepDisplay(ctx) {
  const configured = await ctx.bob.handle.configure({ display: "bobby" });
  const renamed = (d) => d.feed === ctx.bob.feed && d.display === "bobby";
  const ev = await waitEvent(ctx.alice.handle, VideoRoomPlugin.EVENT.VIDEOROOM_DISPLAY, renamed, 3000);
  check(ev, "alice's handle got no videoroom_display event for bob");
  const list = await ctx.handles.manager.listParticipants({ room: ctx.args.room });
  const bob = list.participants.find((p) => p.feed === ctx.bob.feed);
  check(bob?.display === "bobby", `listparticipants shows bob as ${JSON.stringify(bob?.display)}`);
  return { configured: configured.configured, event: ev.data, listed_display: bob.display };
}

async function stepTeardown(ctx) {
  const { room } = ctx.args;
  const manager = ctx.handles.manager;
  const rec = {};
  // Janode's `feed` in these replies is the handle's remembered feed (null for a multistream
  // subscriber, the legacy `feed` for S2): recorded as a display name
  const feedOf = (evtdata) => ctx.feedNames[evtdata.feed] ?? evtdata.feed ?? null;
  rec.s1_leave = { feed: feedOf(await ctx.s1.handle.leave()) };
  rec.s2_leave = { feed: feedOf(await ctx.s2.handle.leave()) };
  rec.alice_unpublish = { feed: feedOf(await ctx.alice.handle.unpublish()) };
  rec.alice_leave = { feed: feedOf(await ctx.alice.handle.leave()) };
  const destroyed = await manager.destroy({ room });
  ctx.roomCreated = false;
  rec.destroyed = { room: destroyed.room };
  const exists = await manager.exists({ room });
  check(exists.exists === false, `exists after destroy -> ${exists.exists}`);
  rec.exists_after = exists.exists;
  // bob never left: the plugin tells his handle the room is gone
  const gone = await waitEvent(ctx.bob.handle, VideoRoomPlugin.EVENT.VIDEOROOM_DESTROYED, () => true, 2000);
  rec.bob_got_destroyed_event = Boolean(gone);
  return rec;
}

// ------------------------------------------------------------------------------------------
// Cleanup: peers' final stats, room (if a step failed before destroy), session, connection.
// ------------------------------------------------------------------------------------------

async function cleanup(ctx) {
  for (const [name, peer] of Object.entries(ctx.peers)) {
    result.peers[name] = await peer.close();
  }
  if (ctx.roomCreated && ctx.handles.manager) {
    try { await bounded(ctx.handles.manager.destroy({ room: ctx.args.room }), 3000, "destroy"); }
    catch (e) { log(`cleanup destroy: ${e.message}`); }
  }
  if (ctx.session) {
    try { await bounded(ctx.session.destroy(), 3000, "session destroy"); }
    catch (e) { log(`cleanup session: ${e.message}`); }
  }
  if (ctx.connection) {
    try { await bounded(ctx.connection.close(), 3000, "connection close"); }
    catch (e) { log(`cleanup connection: ${e.message}`); }
  }
}

async function main() {
  let args;
  try { args = parseArgs(process.argv); } catch (e) { fail(2, e.message); return; }
  const hard = setTimeout(() => abort(3, `hard timeout after ${args.timeout}s (step ${currentStep})`), args.timeout * 1000);
  const ctx = (liveCtx = { args, peers: {}, handles: {}, feedNames: {} });
  try {
    await step("a_room", () => stepRoom(ctx));
    await step("b_alice", () => stepPublisher(ctx, "alice", 640, 480));
    await step("c_bob", () => stepPublisher(ctx, "bob", 320, 240));
    await step("d_participants", () => stepParticipants(ctx));
    await step("e_s1_alice", () => stepS1(ctx));
    await step("f_s1_switch", () => stepSwitch(ctx));
    await step("g_s1_pause", () => stepPause(ctx));
    await step("h_s2_legacy", () => stepS2(ctx));
    await step("h2_s1_update", () => stepUpdate(ctx));
    await step("h3_queued_update", () => stepQueuedUpdate(ctx));
    await step("h4_display", () => stepDisplay(ctx));
    await step("i_teardown", () => stepTeardown(ctx));
    result.ok = true;
  } catch (e) {
    result.error = result.error ?? e.message;
    log(`FAILED ${e.message}`);
  }
  if (aborting) return; // abort() prints the result
  currentStep = "cleanup";
  await cleanup(ctx);
  clearTimeout(hard);
  if (!aborting) finish(result.ok ? 0 : 1);
}

main();
