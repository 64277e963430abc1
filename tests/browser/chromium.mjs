// Chromium as every browser test launches it: Debian's binary, a fresh profile, and exactly the
// BASE + REC flag sets of shared/specs/clients.md §1.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const BASE_FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
];
export const REC_FLAGS = [
  "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
];

/// Launches Chromium with a throw-away profile; `close()` also removes the profile.
export async function launch(executablePath = "/usr/bin/chromium") {
  const profile = mkdtempSync(join(tmpdir(), "gatehouse-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [...BASE_FLAGS, ...REC_FLAGS],
  });
  return {
    context,
    async close() {
      try { await context.close(); } catch { /* already gone */ }
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
