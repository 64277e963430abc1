#!/usr/bin/env node
// Headless Chromium driver for Gatehouse's own pages.
//
//   node run_pages.mjs --base http://127.0.0.1:PORT --stream S [--seconds N] [--timeout T]
//                      [--video vp8|vp9|h264|av1] [--ice-restart] [--simulcast]
//                      [--temporal-layers N]
//                      [--ice-restart]
//
// Opens /publish.html?stream=S&autostart=1 and, once the publisher is live (or after a short
// grace period), /play.html?stream=S&autostart=1 in a second page of the same fresh browser
// profile. Polls `window.gatehouse` on both pages for N seconds and prints ONE JSON line:
//   {"ok", "publish_state", "play_state", "frames_decoded", "first_frame_ms", "frames_encoded",
//    "packets_sent", "errors": [...], ...}
// The browser is closed in every case; a hard timeout ends the process (exit 3).
// Exit 0 when the player decoded at least one frame, 1 otherwise (the caller decides pass/fail).
//
// --ice-restart: instead of the fixed N-second watch, wait (bounded) until the player decoded
// > 20 frames, then call window.gatehouse.restartIce() on the player, watch 3 s, then on the
// publisher, watch 3 s more, and add a "restart" object to the JSON (see iceRestart below).
// To read the selected candidate pair, an init script (only with this option) records every
// RTCPeerConnection the page creates in window.__pcs (a subclass calling the original
// constructor: the pages behave the same). Exit 0 then also requires both restarts to resolve.
//
// Flags: exactly the BASE + REC sets of shared/specs/clients.md §1.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { BASE_FLAGS, REC_FLAGS } from "./chromium.mjs";

function parseArgs(argv) {
  const a = {
    base: null, stream: "demo", seconds: 5, timeout: null, chromium: "/usr/bin/chromium",
    iceRestart: false, video: null, simulcast: false, temporalLayers: 0,
  };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === "--base") { a.base = v; i++; }
    else if (k === "--stream") { a.stream = v; i++; }
    else if (k === "--seconds") { a.seconds = Number(v); i++; }
    else if (k === "--timeout") { a.timeout = Number(v); i++; }
    else if (k === "--chromium") { a.chromium = v; i++; }
    else if (k === "--ice-restart") { a.iceRestart = true; }
    else if (k === "--video") { a.video = v; i++; }
    else if (k === "--simulcast") { a.simulcast = true; }
    else if (k === "--temporal-layers") { a.temporalLayers = Number(v); i++; }
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.base) throw new Error("--base URL is required");
  a.base = a.base.replace(/\/+$/, "");
  if (!a.timeout) a.timeout = a.seconds + 40;
  return a;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const since = () => Date.now() - t0;

let printed = false;
function emit(obj) {
  if (printed) return;
  printed = true;
  process.stdout.write(JSON.stringify(obj) + "\n");
}

async function snapshot(page) {
  try {
    return await page.evaluate(() => {
      const g = window.gatehouse;
      if (!g) return null;
      return {
        state: g.state ?? null,
        framesDecoded: g.framesDecoded ?? null,
        videoCodec: g.videoCodec ?? null,
        framesEncoded: g.framesEncoded ?? null,
        packetsSent: g.packetsSent ?? null,
        firstFrameMs: g.firstFrameMs ?? null,
        error: g.error ? String(g.error) : null,
        sessionUrl: g.sessionUrl ?? null,
      };
    });
  } catch (e) {
    return { evalError: String(e).slice(0, 200) };
  }
}

// Read-only hook (--ice-restart only), installed before any page script runs.
function trackPeerConnections() {
  const Orig = window.RTCPeerConnection;
  if (typeof Orig !== "function") return;
  const pcs = [];
  Object.defineProperty(window, "__pcs", { value: pcs, enumerable: false });
  class TrackedRTCPeerConnection extends Orig {
    constructor(...args) {
      super(...args);
      pcs.push(this);
    }
  }
  window.RTCPeerConnection = TrackedRTCPeerConnection;
}

// The selected candidate pair of window.__pcs[0] (transport → pair → remote candidate) and the
// ICE ufrags currently in the local/remote descriptions.
async function selectedPair(page) {
  try {
    return await page.evaluate(async () => {
      const pc = window.__pcs && window.__pcs[0];
      if (!pc) return { error: "no RTCPeerConnection recorded in window.__pcs" };
      const ufrag = (d) => (/^a=ice-ufrag:(.*)$/m.exec((d && d.sdp) || "") || [])[1]?.trim() ?? null;
      const out = {
        remoteUfrag: null, localUfrag: null, pairState: null, remote: null,
        sdpRemoteUfrag: ufrag(pc.remoteDescription), sdpLocalUfrag: ufrag(pc.localDescription),
        pcs: window.__pcs.length,
      };
      const report = await pc.getStats();
      let transport = null;
      report.forEach((s) => { if (s.type === "transport" && s.selectedCandidatePairId) transport = s; });
      if (!transport) return { ...out, error: "no transport with a selectedCandidatePairId" };
      const pair = report.get(transport.selectedCandidatePairId);
      if (!pair) return { ...out, error: `candidate pair ${transport.selectedCandidatePairId} not in the report` };
      const remote = report.get(pair.remoteCandidateId);
      const local = report.get(pair.localCandidateId);
      out.pairState = pair.state ?? null;
      out.remoteUfrag = remote?.usernameFragment ?? null;
      out.localUfrag = local?.usernameFragment ?? null;
      out.remote = remote ? `${remote.address}:${remote.port}/${remote.protocol}` : null;
      return out;
    });
  } catch (e) {
    return { error: `eval: ${String(e).slice(0, 200)}` };
  }
}

// Video RTP counters of window.__pcs[0] (inbound on the player, outbound on the publisher), for
// diagnosing a stall: packets flowing but nothing decodable, or no packets at all.
async function videoRtp(page) {
  try {
    return await page.evaluate(async () => {
      const pc = window.__pcs && window.__pcs[0];
      if (!pc) return null;
      let best = null;
      (await pc.getStats()).forEach((s) => {
        if ((s.type !== "inbound-rtp" && s.type !== "outbound-rtp") || s.kind !== "video") return;
        if (!best || (s.packetsReceived ?? s.packetsSent ?? 0) > (best.packetsReceived ?? best.packetsSent ?? 0)) best = s;
      });
      if (!best) return null;
      const keys = [
        "packetsReceived", "packetsLost", "framesReceived", "framesDecoded", "keyFramesDecoded",
        "framesDropped", "freezeCount", "packetsSent", "framesEncoded", "keyFramesEncoded",
        "framesSent", "pliCount", "firCount", "nackCount", "retransmittedPacketsSent",
      ];
      const out = {};
      for (const k of keys) if (best[k] !== undefined) out[k] = best[k];
      return out;
    });
  } catch (e) {
    return { error: `eval: ${String(e).slice(0, 200)}` };
  }
}

// page.evaluate(restartIce) bounded by `ms`: the new ETag, or throws.
async function callRestartIce(page, ms) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`restartIce() did not resolve within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([
      page.evaluate(async () => {
        const g = window.gatehouse;
        if (!g || typeof g.restartIce !== "function") throw new Error("window.gatehouse.restartIce is missing");
        return await g.restartIce();
      }),
      limit,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const unquote = (etag) => (typeof etag === "string" ? etag.replace(/^"(.*)"$/, "$1") : null);

// Restart the player's ICE, then the publisher's; 3 s of watching after each. Fills
// result.restart:
//   {player,publisher}_etag_after          what restartIce() resolved to (the server's new ETag)
//   {player,publisher}_etag_before         "<ice-ufrag of the remote SDP before the restart>"
//                                          (the server's ETag is "<its ICE ufrag>")
//   {player,publisher}_selected_remote_ufrag[_before]  usernameFragment of the remote candidate
//                                          of the selected pair, 3 s after (just before) restart
//   {player,publisher}_switch_ms           ms after restartIce() resolved when the selected pair's
//                                          remote ufrag was first seen to be the new one
//   {player,publisher}_timeline            [[ms after restartIce() resolved, player frames]...]
//   frames_at_restart, frames_3s_after_player_restart, frames_3s_after_publisher_restart
//                                          the player's framesDecoded
//   state_after_player_restart, state_after (player), publisher_state_after, errors
//   rtp.{before_player_restart,3s_after_player_restart,3s_after_publisher_restart}
//                                          .{player,publisher}: video RTP counters (diagnostics)
async function iceRestart(pub, play, tPlay, args, result) {
  const r = {
    player_etag_before: null, player_etag_after: null, publisher_etag_before: null,
    publisher_etag_after: null, frames_at_restart: null, frames_3s_after_player_restart: null,
    frames_3s_after_publisher_restart: null, state_after_player_restart: null, state_after: null,
    player_selected_remote_ufrag_before: null, player_selected_remote_ufrag: null,
    publisher_selected_remote_ufrag_before: null, publisher_selected_remote_ufrag: null,
    player_switch_ms: null, publisher_switch_ms: null, player_pair: null, publisher_pair: null,
    player_timeline: null, publisher_timeline: null, publisher_state_after: null, rtp: {},
    errors: [],
  };
  result.restart = r;
  const err = (m) => { if (r.errors.length < 20) r.errors.push(String(m).slice(0, 300)); };

  // 1. wait (bounded) for > 20 decoded frames
  const deadline = tPlay + Math.max(args.seconds, 15) * 1000;
  let pl = null;
  while (Date.now() < deadline) {
    pl = await snapshot(play);
    if (pl && pl.framesDecoded > 0 && result.driver_first_frame_ms == null) {
      result.driver_first_frame_ms = Date.now() - tPlay;
    }
    if ((pl?.framesDecoded ?? 0) > 20 || pl?.error) break;
    await sleep(100);
  }
  if (!((pl?.framesDecoded ?? 0) > 20)) {
    err(`player decoded ${pl?.framesDecoded ?? 0} frames before the restart deadline`);
    return;
  }

  // The server's ETag is "<its ICE ufrag>": the one before the restart is in the remote SDP.
  // 3 s after a restart: when the selected pair moved to the new ufrag, and the player's
  // framesDecoded every ~250 ms as [ms since restartIce resolved, frames].
  const watch = async (page, newUfrag, who) => {
    const t = Date.now();
    const timeline = (r[`${who}_timeline`] = []);
    while (Date.now() - t < 3000) {
      const sel = await selectedPair(page);
      if (sel.remoteUfrag === newUfrag && r[`${who}_switch_ms`] == null) {
        r[`${who}_switch_ms`] = Date.now() - t;
      }
      const p = await snapshot(play);
      timeline.push([Date.now() - t, p?.framesDecoded ?? null]);
      await sleep(250);
    }
    return await selectedPair(page);
  };
  const restart = async (who, page) => {
    const before = await selectedPair(page);
    if (before.error) err(`${who} before restart: ${before.error}`);
    r[`${who}_etag_before`] = before.sdpRemoteUfrag != null ? `"${before.sdpRemoteUfrag}"` : null;
    r[`${who}_selected_remote_ufrag_before`] = before.remoteUfrag;
    let etag = null;
    try {
      etag = await callRestartIce(page, 10000);
    } catch (e) {
      err(`${who} restartIce: ${String(e && e.message ? e.message : e).split("\n")[0]}`);
      return null;
    }
    r[`${who}_etag_after`] = etag;
    const sel = await watch(page, unquote(etag), who);
    if (sel.error) err(`${who} after restart: ${sel.error}`);
    r[`${who}_selected_remote_ufrag`] = sel.remoteUfrag;
    r[`${who}_pair`] = sel;
    return etag;
  };

  const rtp = async (when) => {
    r.rtp[when] = { player: await videoRtp(play), publisher: await videoRtp(pub) };
  };
  r.frames_at_restart = pl.framesDecoded;
  await rtp("before_player_restart");
  await restart("player", play);
  await rtp("3s_after_player_restart");
  pl = await snapshot(play);
  r.frames_3s_after_player_restart = pl?.framesDecoded ?? null;
  r.state_after_player_restart = pl?.state ?? null;

  await restart("publisher", pub);
  await rtp("3s_after_publisher_restart");
  pl = await snapshot(play);
  const ps = await snapshot(pub);
  r.frames_3s_after_publisher_restart = pl?.framesDecoded ?? null;
  r.state_after = pl?.state ?? null;
  r.publisher_state_after = ps?.state ?? null;
}

async function main() {
  const args = parseArgs(process.argv);
  const result = {
    ok: false, stream: args.stream, publish_state: null, play_state: null,
    frames_decoded: 0, first_frame_ms: null, frames_encoded: null, packets_sent: null,
    publish_session: null, play_session: null, errors: [],
  };
  const userDataDir = mkdtempSync(join(tmpdir(), "gatehouse-chromium-"));
  let context = null;

  const cleanup = async () => {
    if (context) {
      const c = context;
      context = null;
      await Promise.race([c.close().catch(() => {}), sleep(5000)]);
    }
    try { rmSync(userDataDir, { recursive: true, force: true }); } catch { /* ignore */ }
  };

  const hard = setTimeout(async () => {
    result.errors.push(`hard timeout after ${args.timeout}s`);
    result.ok = false;
    emit(result);
    await Promise.race([cleanup(), sleep(3000)]);
    process.exit(3);
  }, args.timeout * 1000);

  const record = (where) => (msg) => {
    if (result.errors.length < 40) result.errors.push(`${where}: ${msg}`.slice(0, 300));
  };

  // console errors, except the browser's own favicon request
  const consoleError = (where) => (m) => {
    if (m.type() !== "error") return;
    const url = (m.location() && m.location().url) || "";
    if (url.endsWith("/favicon.ico")) return;
    record(where)(url ? `${m.text()} (${url})` : m.text());
  };

  try {
    const tl = since();
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: args.chromium,
      headless: true,
      args: [...BASE_FLAGS, ...REC_FLAGS],
      timeout: 30000,
    });
    result.launch_ms = since() - tl;
    if (args.iceRestart) await context.addInitScript(trackPeerConnections);

    const pub = context.pages()[0] ?? (await context.newPage());
    pub.on("pageerror", (e) => record("publish pageerror")(String(e)));
    pub.on("console", consoleError("publish console"));
    const q = `stream=${encodeURIComponent(args.stream)}&autostart=1`;
    let pq = args.video ? `${q}&video=${encodeURIComponent(args.video)}` : q;
    if (args.simulcast) pq += "&simulcast=1";
    if (args.temporalLayers) pq += `&temporal=${args.temporalLayers}`;
    const r1 = await pub.goto(`${args.base}/publish.html?${pq}`, { timeout: 15000 });
    if (!r1 || !r1.ok()) throw new Error(`publish.html -> HTTP ${r1 ? r1.status() : "no response"}`);

    // Wait (bounded) until the publisher is live before starting the player.
    const pubDeadline = Date.now() + 10000;
    let ps = null;
    while (Date.now() < pubDeadline) {
      ps = await snapshot(pub);
      if (ps && (ps.state === "connected" || (ps.packetsSent ?? 0) > 0)) break;
      if (ps && ps.error) break;
      await sleep(100);
    }
    result.publish_live_ms = since();

    const play = await context.newPage();
    play.on("pageerror", (e) => record("play pageerror")(String(e)));
    play.on("console", consoleError("play console"));
    const tPlay = Date.now();
    const r2 = await play.goto(`${args.base}/play.html?${q}`, { timeout: 15000 });
    if (!r2 || !r2.ok()) throw new Error(`play.html -> HTTP ${r2 ? r2.status() : "no response"}`);

    const end = args.iceRestart ? 0 : tPlay + args.seconds * 1000;
    let pl = null;
    if (args.iceRestart) await iceRestart(pub, play, tPlay, args, result);
    while (Date.now() < end) {
      pl = await snapshot(play);
      if (pl && pl.framesDecoded > 0 && result.driver_first_frame_ms == null) {
        result.driver_first_frame_ms = Date.now() - tPlay; // goto → first poll that saw a frame
      }
      await sleep(200);
    }
    ps = await snapshot(pub);
    pl = await snapshot(play);
    result.publish_state = ps?.state ?? null;
    result.frames_encoded = ps?.framesEncoded ?? null;
    result.packets_sent = ps?.packetsSent ?? null;
    result.publish_session = ps?.sessionUrl ?? null;
    if (ps?.error) result.errors.push(`publish: ${ps.error}`);
    if (ps?.evalError) result.errors.push(`publish eval: ${ps.evalError}`);
    if (ps === null) result.errors.push("publish page has no window.gatehouse");
    result.play_state = pl?.state ?? null;
    result.frames_decoded = pl?.framesDecoded ?? 0;
    result.first_frame_ms = pl?.firstFrameMs ?? null;
    result.video_codec = pl?.videoCodec ?? null;
    result.play_session = pl?.sessionUrl ?? null;
    if (pl?.error) result.errors.push(`play: ${pl.error}`);
    if (pl?.evalError) result.errors.push(`play eval: ${pl.evalError}`);
    if (pl === null) result.errors.push("play page has no window.gatehouse");
    result.ok = result.frames_decoded > 0;
    if (args.iceRestart) {
      const r = result.restart;
      result.ok = result.ok && !!r && r.errors.length === 0
        && !!r.player_etag_after && !!r.publisher_etag_after;
    }
  } catch (e) {
    result.errors.push(`driver: ${String(e && e.message ? e.message : e).split("\n")[0]}`);
    result.ok = false;
  } finally {
    result.total_ms = since();
    await cleanup();
    clearTimeout(hard);
  }
  emit(result);
  process.exit(result.ok ? 0 : 1);
}

main().catch((e) => {
  emit({ ok: false, errors: [`driver: ${String(e)}`] });
  process.exit(1);
});
