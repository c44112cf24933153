// What the browser tests share: finding the workspace's binaries, starting and stopping
// servers, launching Debian's Chromium, and reading the watch page's player.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, "../..");
export const results = process.env.RESULTS_DIR || join(here, "results");

// A binary of the workspace: $<NAME>_BIN, else the release or debug build.
export function findBinary(name) {
  const candidates = [
    process.env[`${name.toUpperCase()}_BIN`],
    process.env.CARGO_TARGET_DIR && join(resolve(repo, process.env.CARGO_TARGET_DIR), `release/${name}`),
    join(repo, `target/release/${name}`),
    join(repo, `target/debug/${name}`),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  assert.ok(found, `no ${name} binary in ${candidates.join(", ")}: run \`cargo build --release -p ${name}\` or set ${name.toUpperCase()}_BIN`);
  return found;
}

// Starts a server, remembered in `children` (stopped by PID with `stop`); resolves with
// { url, child }: the first URL its banner prints after "listening on", and the process.
export function startServer(children, bin, args, seconds) {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: "warn" } });
  children.push(child);
  let stderr = "";
  child.stderr.on("data", (d) => { stderr = (stderr + d).slice(-4000); });
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`${bin} did not start within ${seconds} s\n${stderr}`)), seconds * 1000);
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s/]+)/);
      if (m) { clearTimeout(timer); resolvePromise({ url: m[1], child }); }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`${bin} exited with ${code}\n${stderr}`)); });
  });
}

// SIGTERM, then SIGKILL after 5 s.
export async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

// Debian's Chromium, headless, with the project's flags (COMMON.md).
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required",
    ],
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls the watch page's stats until `done(stats)` or the deadline; returns the last stats.
export async function waitFor(page, what, done, seconds) {
  const deadline = Date.now() + seconds * 1000;
  let stats;
  while (Date.now() < deadline) {
    stats = await page.evaluate(() => window.rivulet && window.rivulet.stats());
    if (stats && stats.fatal) assert.fail(`fatal player error while waiting for ${what}: ${stats.fatal}`);
    if (stats && done(stats)) return stats;
    await sleep(250);
  }
  assert.fail(`timed out after ${seconds} s waiting for ${what}; last stats: ${JSON.stringify(stats)}`);
}

// Mean luma and the share of non-dark pixels of the frame the video shows.
export function grabFrame(page) {
  return page.evaluate(() => {
    const video = document.getElementById("video");
    const canvas = document.createElement("canvas");
    canvas.width = 160;
    canvas.height = 90;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let sum = 0;
    let bright = 0;
    for (let i = 0; i < data.length; i += 4) {
      const y = 0.2126 * data[i] + 0.7152 * data[i + 1] + 0.0722 * data[i + 2];
      sum += y;
      if (y > 32) bright += 1;
    }
    const n = data.length / 4;
    return { mean: sum / n, brightShare: bright / n };
  });
}
