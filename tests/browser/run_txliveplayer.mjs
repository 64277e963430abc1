#!/usr/bin/env node
// Tencent's own web LEB player, TXLivePlayer 1.3.5 (npm tcplayer.js@5.3.4), in headless
// Chromium against a gateway (specs/dialects.md §4.6b).
//
//   node run_txliveplayer.mjs --gateway http://127.0.0.1:PORT --stream S [--seconds N]
//                             [--close-without-stop]
//
// The page is the gateway's http://localhost:<port>/healthz with its content replaced, while the
// player signals to 127.0.0.1: another origin, so every call is cross-origin and needs the
// gateway's CORS header on the POST reply. The player is pointed
// at the gateway with `signalDomain: {protocol: 'http', domain, query: false}` and plays
// `webrtc://any.domain/live/S`. Decoded frames are read from the <video> it creates. After N
// seconds it calls stopPlay() (stopstream), or with --close-without-stop closes the page
// without it. Prints ONE JSON line: {"ok", "frames", "first_frame_ms", "stopped", "calls",
// "subscribers_while_playing", "subscribers_after_stop" | "subscribers_after_close",
// "errors"}; "calls" lists the signaling endpoints the page POSTed, their HTTP statuses and
// errcodes; the subscriber counts are the gateway's (`/api/rooms`), asked from outside.
// Exit 0 when at least one frame was decoded.

import { createRequire } from "node:module";
import { launch } from "./chromium.mjs";

const require = createRequire(import.meta.url);
const PLAYER = require.resolve("tcplayer.js/dist/libs/TXLivePlayer-1.3.5.min.js");

function parseArgs(argv) {
  const a = { gateway: null, stream: "demo", seconds: 6, closeWithoutStop: false, chromium: undefined };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === "--gateway") { a.gateway = v; i++; }
    else if (k === "--stream") { a.stream = v; i++; }
    else if (k === "--seconds") { a.seconds = Number(v); i++; }
    else if (k === "--chromium") { a.chromium = v; i++; }
    else if (k === "--close-without-stop") { a.closeWithoutStop = true; }
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.gateway) throw new Error("--gateway URL is required");
  return a;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const args = parseArgs(process.argv);
  const result = { ok: false, frames: 0, first_frame_ms: null, stopped: false, calls: [], errors: [] };
  const hard = setTimeout(() => {
    result.errors.push("hard timeout");
    console.log(JSON.stringify(result));
    process.exit(3);
  }, (args.seconds + 40) * 1000);
  const browser = await launch(args.chromium);
  try {
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.on("pageerror", (e) => result.errors.push(`pageerror: ${e}`.slice(0, 300)));
    page.on("requestfailed", (r) => result.errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`.slice(0, 300)));
    page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") result.errors.push(`console: ${m.text()}`.slice(0, 300)); });
    const bodies = [];
    page.on("response", (r) => {
      const url = r.url();
      if (!url.includes("/webrtc/v1/")) return;
      const call = [url.split("/webrtc/v1/")[1], r.status(), null];
      result.calls.push(call);
      bodies.push(r.text().then((t) => { call[2] = JSON.parse(t).errcode ?? null; }).catch(() => {}));
    });
    // The gateway's own count of the stream's subscribers, asked from outside the page.
    const subscribers = async () => {
      const rooms = await (await fetch(`${args.gateway}/api/rooms`)).json();
      return rooms.find((r) => r.name === args.stream)?.subscribers ?? 0;
    };
    const domain = new URL(args.gateway).host;
    // A real loopback page (Chromium's local-network-access rules refuse loopback fetches
    // from pages it cannot place on the loopback address space).
    await page.goto(`http://localhost:${new URL(args.gateway).port}/healthz`);
    await page.setContent('<!doctype html><div id="view" style="width:640px;height:360px"></div>');
    await page.addScriptTag({ path: PLAYER });
    const started = Date.now();
    await page.evaluate(([domain, stream]) => {
      const player = new window.TXLivePlayer();
      player.setConfig({ signalDomain: { protocol: "http", domain, query: false } });
      player.setPlayerView("view");
      player.startPlay(`webrtc://any.domain/live/${stream}`);
      window.__player = player;
    }, [domain, args.stream]);
    const deadline = started + args.seconds * 1000;
    while (Date.now() < deadline) {
      const frames = await page.evaluate(() => {
        const video = document.querySelector("video");
        return video && video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().totalVideoFrames : 0;
      });
      if (frames > 0 && result.first_frame_ms === null) result.first_frame_ms = Date.now() - started;
      result.frames = frames;
      await sleep(200);
    }
    result.subscribers_while_playing = await subscribers();
    if (args.closeWithoutStop) {
      await page.close();
      result.subscribers_after_close = await subscribers();
    } else {
      await page.evaluate(() => window.__player.stopPlay());
      // Until the gateway has answered stopstream (it ends the session before it answers).
      for (let i = 0; i < 50 && !result.calls.some((c) => c[0] === "stopstream"); i++) await sleep(100);
      await Promise.all(bodies);
      // Still on the page: only stopstream can have ended the session.
      result.subscribers_after_stop = await subscribers();
      result.stopped = true;
    }
    await Promise.all(bodies);
    result.ok = result.frames > 0;
  } catch (e) {
    result.errors.push(String(e).slice(0, 300));
  } finally {
    clearTimeout(hard);
    await browser.close();
  }
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}

main();
