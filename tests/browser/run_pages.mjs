#!/usr/bin/env node
// Headless Chromium driver for Gatehouse's own pages.
//
//   node run_pages.mjs --base http://127.0.0.1:PORT --stream S [--seconds N] [--timeout T]
//
// Opens /publish.html?stream=S&autostart=1 and, once the publisher is live (or after a short
// grace period), /play.html?stream=S&autostart=1 in a second page of the same fresh browser
// profile. Polls `window.gatehouse` on both pages for N seconds and prints ONE JSON line:
//   {"ok", "publish_state", "play_state", "frames_decoded", "first_frame_ms", "frames_encoded",
//    "packets_sent", "errors": [...], ...}
// The browser is closed in every case; a hard timeout ends the process (exit 3).
// Exit 0 when the player decoded at least one frame, 1 otherwise (the caller decides pass/fail).
//
// Flags: exactly the BASE + REC sets of shared/specs/clients.md §1.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE_FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
];
const REC_FLAGS = [
  "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
];

function parseArgs(argv) {
  const a = { base: null, stream: "demo", seconds: 5, timeout: null, chromium: "/usr/bin/chromium" };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === "--base") { a.base = v; i++; }
    else if (k === "--stream") { a.stream = v; i++; }
    else if (k === "--seconds") { a.seconds = Number(v); i++; }
    else if (k === "--timeout") { a.timeout = Number(v); i++; }
    else if (k === "--chromium") { a.chromium = v; i++; }
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

    const pub = context.pages()[0] ?? (await context.newPage());
    pub.on("pageerror", (e) => record("publish pageerror")(String(e)));
    pub.on("console", consoleError("publish console"));
    const q = `stream=${encodeURIComponent(args.stream)}&autostart=1`;
    const r1 = await pub.goto(`${args.base}/publish.html?${q}`, { timeout: 15000 });
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

    const end = tPlay + args.seconds * 1000;
    let pl = null;
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
    result.play_session = pl?.sessionUrl ?? null;
    if (pl?.error) result.errors.push(`play: ${pl.error}`);
    if (pl?.evalError) result.errors.push(`play eval: ${pl.evalError}`);
    if (pl === null) result.errors.push("play page has no window.gatehouse");
    result.ok = result.frames_decoded > 0;
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
