// What the browser tests share: the workspace's binaries started and stopped by PID,
// headless Debian Chromium, and the checks on the watch page's player (its stats and a
// frame of its video).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
export const results = process.env.RESULTS_DIR || join(here, "results");

// A binary of the workspace: $<NAME>_BIN, else the release or debug build.
export function findBinary(name) {
  const candidates = [
    process.env[`${name.toUpperCase()}_BIN`],
    process.env.CARGO_TARGET_DIR && join(resolve(repo, process.env.CARGO_TARGET_DIR), `release/${name}`),
    join(repo, `target/release/${name}`),
    join(repo, `target/debug/${name}`),
  ].filter(Boolean);
  return { found: candidates.find((p) => existsSync(p)), candidates };
}

// The binary `name` (origin, edge), or a failure saying how to build it.
export function binary(name) {
  const { found, candidates } = findBinary(name);
  assert.ok(found, `no ${name} binary in ${candidates.join(", ")}: run \`cargo build --release -p ${name}\` or set ${name.toUpperCase()}_BIN`);
  return found;
}

const children = []; // every process a suite started, stopped by PID in stopAll()


// Starts a server and resolves with { url, child }: the first URL its banner prints after
// "listening on", and the process.
export function startServer(bin, args, seconds) {
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

export async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

// Stops every process this suite started.
export function stopAll() {
  return Promise.all(children.map(stop));
}

// Headless Debian Chromium (CHROMIUM_BIN), never a downloaded browser.
export function launchChromium() {
  mkdirSync(results, { recursive: true });
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

// Polls the page's stats until `done(stats)` or the deadline; returns the last stats.
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

// Mean luma and the share of non-dark pixels of a frame grabbed from the video.
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

// A new page of `browser` at `url`, collecting its script errors in `problems`.
export async function openPage(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  await page.goto(url);
  return { page, problems };
}

// Plays at least 6 s with frames decoded and shown, no fatal error, a frame that is not
// black; saves a screenshot.
export async function checkPlayback(engine, page, problems, shot) {
  if (engine === "native") {
    const can = await page.evaluate(() => document.createElement("video").canPlayType("application/vnd.apple.mpegurl"));
    assert.notEqual(can, "", "this Chromium does not play HLS natively");
  }
  const start = await waitFor(page, "playback to start", (s) => s.currentTime > 0.3 && !s.paused, 30);
  const later = await waitFor(page, "6 s of playback", (s) => s.currentTime >= start.currentTime + 6, 30);
  assert.equal(later.engine, engine);
  assert.equal(later.fatal, null);
  assert.ok(later.totalVideoFrames > start.totalVideoFrames, `frames grew: ${start.totalVideoFrames} → ${later.totalVideoFrames}`);
  const frame = await grabFrame(page);
  assert.ok(frame.mean > 16 && frame.brightShare > 0.05, `the frame is not black: ${JSON.stringify(frame)}`);
  assert.deepEqual(problems, []);
  await page.screenshot({ path: join(results, shot) });
}
