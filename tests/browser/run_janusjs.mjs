#!/usr/bin/env node
// Headless Chromium driver running the official janus.js (npm janus-gateway, ES module build,
// with webrtc-adapter) over HTTP long-poll: the VideoRoom flow of the janus.js demo with
// Chromium's fake camera, against any Janus-compatible server (real Janus or Gatehouse).
//
//   node run_janusjs.mjs --server http://HOST:PORT/janus --room N [--seconds 5] [--timeout 90]
//                        [--setup 30] [--debug] [--wire] [--dump-sdp FILE] [--stun-default]
//                        [--chromium PATH] [--ice-restart] [--e2ee] [--playout-delay MIN:MAX]
// --ice-restart: after the watch, both handles restart ICE (publisher re-offer, subscriber
// configure {restart}); `ice_restart` reports the server's ICE ufrags and the subscriber's
// decoded frames before and 3 s after.
// --playout-delay MIN:MAX: after the watch, the subscriber (or with --playout-delay-by
// publisher, the publisher) configures min_delay/max_delay (10 ms units); `playout_delay` reports Chromium's average jitter-buffer target delay (ms)
// over 2 s before and over 3 s from 1 s after.
// --e2ee: end-to-end "encryption" with janus.js insertable streams (a sender transform that
// XORs each frame past its first bytes, a receiver transform undoing it), so janus.js says
// `e2ee` in its jsep; a room the run creates requires it (`require_e2ee`). Frames decode only
// if the server forwarded the transformed frames untouched.
//
// One page (janusjs_page.html, served with janus.js and adapter.js from a throw-away HTTP
// server on 127.0.0.1, a secure context for getUserMedia; the Janus server is reached
// cross-origin) and ONE Janus session with two handles on it:
//   A: attach janus.plugin.videoroom; `exists` room N, `create` it if missing; `join`
//      {ptype:"publisher", display:"chrome"}; on `joined` createOffer (fake audio+video,
//      tracks [{audio,capture,recv:false},{video,capture,recv:false}]) and send
//      `configure {audio:true,video:true}` + offer (as videoroomtest.js); handleRemoteJsep.
//   B: attached after A's webrtcup: `join {ptype:"subscriber", room, streams:[{feed:A}]}`;
//      on the server offer createAnswer (tracks audio/video capture:false recv:true) and
//      `start` + answer. Its inbound video `framesDecoded`/frameWidth/Height come from the
//      PeerConnection's getStats().
// After B's webrtcup (bounded by --setup seconds) the driver watches --seconds, then: B
// `leave`, A `leave`, `destroy` the room (only if this run created it), janus.destroy()
// (janus.js then sends one session-level `destroy`; it detaches its handles locally only).
//
// Prints ONE JSON line:
//   {"ok", "publisher_id", "webrtcup_publisher", "webrtcup_subscriber", "frames_decoded",
//    "width", "height", "events": [...], "error", ...diagnostics}
// ok = frames_decoded >= 30. Diagnostics: "phase" (where setup stopped), "trickle" (candidates
// janus.js trickled per handle and what the server answered), "sdp" (m=/candidate/ice lines
// of the four SDPs), "stats" (subscriber inbound / publisher outbound video), and on failure
// "wire": the last 150 requests/replies exchanged with the server (SDPs shortened; --wire: always).
// Exit 0 when ok, 1 otherwise, 3 on the hard --timeout. The browser is closed in every case.
// Page console errors (and with --debug, janus.js's own log at debug "all") go to stderr.
//
// --dump-sdp FILE: write the four full SDPs (pub_offer, pub_answer, sub_offer, sub_answer) as JSON.
// --stun-default: let janus.js use its default iceServers (stun:stun.l.google.com:19302);
// by default the driver passes iceServers: [] so Chromium makes no outside STUN lookups.

import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "./chromium.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

function parseArgs(argv) {
  const a = {
    server: null, room: null, seconds: 5, timeout: 90, setup: 30, debug: false,
    stunDefault: false, wire: false, dumpSdp: null, chromium: "/usr/bin/chromium",
    iceRestart: false, e2ee: false, playoutDelay: null, playoutDelayBy: "subscriber",
  };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === "--server") { a.server = v; i++; }
    else if (k === "--room") { a.room = Number(v); i++; }
    else if (k === "--seconds") { a.seconds = Number(v); i++; }
    else if (k === "--timeout") { a.timeout = Number(v); i++; }
    else if (k === "--setup") { a.setup = Number(v); i++; }
    else if (k === "--chromium") { a.chromium = v; i++; }
    else if (k === "--debug") { a.debug = true; }
    else if (k === "--stun-default") { a.stunDefault = true; }
    else if (k === "--wire") { a.wire = true; }
    else if (k === "--dump-sdp") { a.dumpSdp = v; i++; }
    else if (k === "--ice-restart") { a.iceRestart = true; }
    else if (k === "--e2ee") { a.e2ee = true; }
    else if (k === "--playout-delay") { a.playoutDelay = v.split(":").map(Number); i++; }
    else if (k === "--playout-delay-by") { a.playoutDelayBy = v; i++; }
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.server || !/^https?:\/\//.test(a.server)) throw new Error("--server http://HOST:PORT/janus is required");
  a.server = a.server.replace(/\/+$/, "");
  if (!Number.isInteger(a.room) || a.room <= 0) throw new Error("--room N (a positive integer) is required");
  return a;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const since = () => Date.now() - t0;
const log = (s) => process.stderr.write(`[run_janusjs ${since()}ms] ${s}\n`);

let printed = false;
function emit(obj) {
  if (printed) return;
  printed = true;
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// The three files of the page, from a throw-away HTTP server on 127.0.0.1.
function startFileServer() {
  const files = {
    "/index.html": [join(here, "janusjs_page.html"), "text/html; charset=utf-8"],
    "/janus.es.js": [require.resolve("janus-gateway"), "text/javascript; charset=utf-8"],
    "/adapter.js": [require.resolve("webrtc-adapter/out/adapter.js"), "text/javascript; charset=utf-8"],
  };
  const server = createServer((req, res) => {
    const f = files[new URL(req.url, "http://x").pathname];
    if (!f) { res.writeHead(req.url === "/favicon.ico" ? 204 : 404).end(); return; }
    res.writeHead(200, { "Content-Type": f[1], "Cache-Control": "no-store" }).end(readFileSync(f[0]));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

// m=, candidate, ice and setup lines of an SDP: enough to see what each side offered.
function sdpSummary(sdp) {
  if (!sdp) return null;
  return sdp.split(/\r?\n/).filter((l) => /^(m=|c=|a=candidate|a=ice-lite|a=ice-options|a=setup|a=mid|a=(sendrecv|sendonly|recvonly|inactive)$|a=end-of-candidates)/.test(l));
}

async function readState(page) {
  try {
    return await page.evaluate(async () => {
      const g = window.gh;
      if (!g) return null;
      let stats = null;
      try { stats = await g.stats(); } catch (e) { stats = { error: String(e) }; }
      return {
        phase: g.phase, error: g.error, finished: g.finished, events: g.events, wire: g.wire,
        wireTotal: g.wireTotal, sessionId: g.sessionId, handles: g.handles,
        publisherId: g.publisherId, roomCreated: g.roomCreated,
        webrtcupPublisher: g.webrtcupPublisher, webrtcupSubscriber: g.webrtcupSubscriber,
        subscribeSentMs: g.subscribeSentMs, webrtcupSubscriberMs: g.webrtcupSubscriberMs,
        trickleSent: g.trickleSent, trickleReplies: g.trickleReplies, trickleReceived: g.trickleReceived,
        sdp: g.sdp, iceState: g.iceState, connState: g.connState, remoteTracks: g.remoteTracks, stats,
        jsepE2ee: g.jsepE2ee,
      };
    });
  } catch (e) {
    return { evalError: String(e).slice(0, 300) };
  }
}

async function main() {
  const args = parseArgs(process.argv);
  const result = {
    ok: false, server: args.server, room: args.room, publisher_id: null,
    webrtcup_publisher: false, webrtcup_subscriber: false, frames_decoded: 0, width: null,
    height: null, events: [], error: null,
  };
  let browser = null;
  let files = null;
  const cleanup = async () => {
    if (browser) { const b = browser; browser = null; await Promise.race([b.close(), sleep(5000)]); }
    if (files) { const f = files; files = null; f.closeAllConnections?.(); f.close(); }
  };

  const hard = setTimeout(async () => {
    result.ok = false;
    result.error = `hard timeout after ${args.timeout}s${result.error ? ` (${result.error})` : ""}`;
    emit(result);
    await Promise.race([cleanup(), sleep(4000)]);
    process.exit(3);
  }, args.timeout * 1000);

  let st = null;
  let lastWire = null;
  const fill = (s) => {
    if (!s || s.evalError) return;
    result.phase = s.phase;
    result.session_id = s.sessionId;
    result.handles = s.handles;
    result.publisher_id = s.publisherId;
    result.room_created = s.roomCreated;
    result.webrtcup_publisher = !!s.webrtcupPublisher;
    result.webrtcup_subscriber = !!s.webrtcupSubscriber;
    if (s.subscribeSentMs != null && s.webrtcupSubscriberMs != null) {
      result.subscriber_setup_ms = s.webrtcupSubscriberMs - s.subscribeSentMs;
    }
    const sub = s.stats && s.stats.sub;
    if (sub) {
      result.frames_decoded = sub.framesDecoded ?? 0;
      result.width = sub.frameWidth ?? result.width;
      result.height = sub.frameHeight ?? result.height;
    }
    result.stats = s.stats;
    result.ice_state = s.iceState;
    result.remote_tracks = s.remoteTracks;
    result.jsep_e2ee = s.jsepE2ee;
    result.events = s.events;
    result.trickle = { sent: s.trickleSent, replies: s.trickleReplies, received_from_server: s.trickleReceived };
    if (args.dumpSdp && s.sdp) {
      try { writeFileSync(args.dumpSdp, JSON.stringify(s.sdp, null, 1)); } catch (e) { log(`--dump-sdp: ${e}`); }
    }
    result.sdp = Object.fromEntries(Object.entries(s.sdp || {}).map(([k, v]) => [k, sdpSummary(v)]));
    result.wire_total = s.wireTotal;
    if (s.error && !result.error) result.error = s.error;
  };

  try {
    files = await startFileServer();
    const origin = `http://127.0.0.1:${files.address().port}`;
    const tl = since();
    browser = await launch(args.chromium);
    result.launch_ms = since() - tl;
    const { context } = browser;
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("pageerror", (e) => log(`pageerror: ${String(e)}`));
    page.on("console", (m) => {
      if (m.type() === "error" || args.debug) {
        const loc = m.location() && m.location().url ? ` (${m.location().url}:${m.location().lineNumber})` : "";
        log(`console.${m.type()}: ${m.text().slice(0, 2000)}${loc}`);
      }
    });
    const r = await page.goto(`${origin}/index.html`, { timeout: 15000 });
    if (!r || !r.ok()) throw new Error(`page -> HTTP ${r ? r.status() : "no response"}`);
    await page.waitForFunction(() => window.gh && window.gh.phase === "ready", null, { timeout: 10000 });

    // Setup runs in the page; the driver polls until B is up or the setup deadline passes.
    await page.evaluate((o) => { window.gh.start(o); }, {
      server: args.server, room: args.room, debug: args.debug ? "all" : false,
      iceServers: args.stunDefault ? undefined : [], setupMs: args.setup * 1000,
      e2ee: args.e2ee,
    });
    const setupDeadline = Date.now() + (args.setup + 2) * 1000;
    while (Date.now() < setupDeadline) {
      st = await readState(page);
      if (!st || st.evalError) break;
      if (st.phase === "media" || st.phase.startsWith("failed") || st.error) break;
      await sleep(200);
    }
    fill(st);
    log(`setup phase=${st && st.phase} error=${st && st.error}`);

    if (st && st.phase === "media") {
      const end = Date.now() + args.seconds * 1000;
      while (Date.now() < end) {
        await sleep(250);
        st = await readState(page);
        fill(st);
      }
    }
    st = await readState(page);
    fill(st);

    if (args.iceRestart && st && st.phase === "media") {
      const before = await page.evaluate(() => window.gh.remoteUfrags());
      const framesBefore = result.frames_decoded ?? 0;
      try {
        await page.evaluate(() => window.gh.restartIce());
        await sleep(3000);
        st = await readState(page);
        fill(st);
        const after = await page.evaluate(() => window.gh.remoteUfrags());
        result.ice_restart = { before, after, frames_before: framesBefore, frames_after: result.frames_decoded ?? 0 };
      } catch (e) {
        result.ice_restart = { before, error: String(e && e.message ? e.message : e).split("\n")[0] };
        if (!result.error) result.error = `ICE restart: ${result.ice_restart.error}`;
      }
    }

    if (args.playoutDelay && st && st.phase === "media") {
      // Average target delay (ms) between two stats snapshots of the subscriber's video.
      const sub = async () => (await page.evaluate(() => window.gh.stats())).sub ?? {};
      const target = (a, b) => {
        const n = (b.jitterBufferEmittedCount ?? 0) - (a.jitterBufferEmittedCount ?? 0);
        const t = (b.jitterBufferTargetDelay ?? 0) - (a.jitterBufferTargetDelay ?? 0);
        return n > 0 ? Math.round((t / n) * 1000) : null;
      };
      try {
        const s0 = await sub();
        await sleep(2000);
        const s1 = await sub();
        const [min, max] = args.playoutDelay;
        await page.evaluate(([lo, hi, who]) => window.gh.playoutDelay(lo, hi, who), [min, max, args.playoutDelayBy]);
        await sleep(1000);
        const s2 = await sub();
        await sleep(3000);
        const s3 = await sub();
        result.playout_delay = { by: args.playoutDelayBy, min, max, before_ms: target(s0, s1), after_ms: target(s2, s3),
          frames_after: (s3.framesDecoded ?? 0) - (s2.framesDecoded ?? 0) };
      } catch (e) {
        result.playout_delay = { error: String(e && e.message ? e.message : e).split("\n")[0] };
        if (!result.error) result.error = `playout delay: ${result.playout_delay.error}`;
      }
    }

    // Teardown through janus.js: leave both, destroy the room (if created here), destroy the session.
    try {
      await Promise.race([
        page.evaluate(() => window.gh.finish()),
        sleep(25000).then(() => { throw new Error("teardown did not finish within 25 s"); }),
      ]);
    } catch (e) {
      result.teardown_error = String(e && e.message ? e.message : e).split("\n")[0];
    }
    const after = await readState(page);
    if (after && !after.evalError) {
      result.events = after.events;
      lastWire = after.wire;
      result.wire_total = after.wireTotal;
      result.trickle = { sent: after.trickleSent, replies: after.trickleReplies, received_from_server: after.trickleReceived };
    }
  } catch (e) {
    const m = String(e && e.message ? e.message : e).split("\n")[0];
    result.error = result.error ? `${result.error}; driver: ${m}` : `driver: ${m}`;
  } finally {
    result.ok = result.frames_decoded >= 30;
    if (!result.ok && !result.error) {
      result.error = `only ${result.frames_decoded} frames decoded (< 30)`;
      const offer = result.sdp && result.sdp.sub_offer;
      if (offer && !offer.some((l) => l.startsWith("m=video"))) result.error += "; the subscriber offer has no video m-line";
    }
    if (!result.ok || args.wire) result.wire = lastWire ?? (st && !st.evalError ? st.wire : null);
    result.total_ms = since();
    await cleanup();
    clearTimeout(hard);
  }
  emit(result);
  process.exit(result.ok ? 0 : 1);
}

main().catch((e) => {
  emit({ ok: false, error: `driver: ${String(e && e.message ? e.message : e)}` });
  process.exit(1);
});
