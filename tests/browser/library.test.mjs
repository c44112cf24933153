// The library that takes any file (issue 12 item 4), as a user meets it in a browser: a
// video file made by ffmpeg the way users' files are (x264 High profile with B-frames,
// AAC) is dropped into a running origin's library next to a text file named `.mp4`. The
// index page shows the broken file's error; the watch page, opened while the ladder is
// built, shows the progress and turns into the player, which plays with hls.js and dash.js.
//
// Needs what watch.test.mjs needs, and Debian's ffmpeg.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  binary, checkPlayback, here, launchChromium, openPage, results, sleep, startServer, stopAll,
} from "./harness.mjs";

// The longest the small ladder of the 12 s source may take on a busy machine.
const LADDER_SECONDS = 240;

let base;
let browser;
let work; // the source and the library, removed in after()
let library;

// A 12 s 640x360 moving pattern with a tone, as users' files are encoded.
function makeSource(path) {
  const run = spawnSync("ffmpeg", [
    "-nostdin", "-v", "error", "-y",
    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
    "-t", "12",
    "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-bf", "3",
    "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-b:v", "900k",
    "-c:a", "aac", "-b:a", "128k", "-pix_fmt", "yuv420p", path,
  ], { timeout: 120_000, encoding: "utf8" });
  assert.equal(run.status, 0, `ffmpeg could not make the source: ${run.error ?? run.stderr}`);
}

// Puts `from` into the library as `name` the way a careful copy does: written under a
// hidden name (which the origin ignores), then renamed.
function dropFile(from, name) {
  const aside = join(library, `.${name}.part`);
  copyFileSync(from, aside);
  renameSync(aside, join(library, name));
}

async function libraryStatus() {
  const response = await fetch(`${base}/library/status`);
  assert.equal(response.status, 200);
  return (await response.json()).ingest.sources;
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), "rivulet-library-"));
  library = join(work, "library");
  const source = join(work, "source.mp4");
  makeSource(source);
  ({ url: base } = await startServer(binary("origin"), [
    "--library", library, "--no-sample", "--listen", "127.0.0.1:0",
    "--web-libs", join(here, "node_modules"),
    "--ingest-ladder", "small", "--ingest-poll", "500ms",
  ], 30));
  browser = await launchChromium();
  // Dropped while the origin runs; the broken file is first in name order, so its job
  // runs first and must not stop the other.
  const text = join(work, "notes.txt");
  writeFileSync(text, "not a video, whatever the name says\n".repeat(20));
  dropFile(text, "broken.mp4");
  dropFile(source, "clip.mp4");
});

after(async () => {
  await browser?.close();
  await stopAll();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("a broken file shows its error on the index page", { timeout: 60_000 }, async () => {
  const { page, problems } = await openPage(browser, `${base}/`);
  try {
    const deadline = Date.now() + 45_000;
    let row = "";
    while (Date.now() < deadline) {
      await page.reload();
      row = await page.evaluate(() =>
        [...document.querySelectorAll("tr")].map((r) => r.innerText).find((t) => t.includes("broken.mp4")) || "");
      if (row.includes("failed")) break;
      await sleep(500);
    }
    assert.match(row, /broken\.mp4: not a video file/, `the index page's row: ${JSON.stringify(row)}`);
    // The other file is taken all the same.
    const clip = (await libraryStatus()).find((s) => s.file === "clip.mp4");
    assert.ok(clip && clip.state !== "failed", `clip.mp4 goes on: ${JSON.stringify(clip)}`);
    assert.deepEqual(problems, []);
    await page.screenshot({ path: join(results, "library-index.png") });
  } finally {
    await page.close();
  }
});

// The watch page of an asset being prepared reloads into the player when it is ready.
async function waitForPlayer(page) {
  const deadline = Date.now() + LADDER_SECONDS * 1000;
  let seen = null;
  while (Date.now() < deadline) {
    try {
      const state = await page.evaluate(() => ({
        player: !!(window.rivulet && typeof window.rivulet.stats === "function"),
        preparing: window.rivulet && window.rivulet.preparing,
      }));
      if (state.player) return seen;
      seen = seen || state.preparing;
    } catch {
      // The page reloading between two looks.
    }
    await sleep(250);
  }
  assert.fail(`no player within ${LADDER_SECONDS} s; last status: ${JSON.stringify(await libraryStatus())}`);
}

test("a dropped .mp4 plays with hls.js once its ladder is built", { timeout: (LADDER_SECONDS + 60) * 1000 }, async () => {
  // The page exists as soon as the origin has seen the file.
  const deadline = Date.now() + 30_000;
  while (!(await libraryStatus()).some((s) => s.file === "clip.mp4")) {
    assert.ok(Date.now() < deadline, "the origin never saw clip.mp4");
    await sleep(250);
  }
  const { page, problems } = await openPage(browser, `${base}/watch/clip?engine=hlsjs`);
  try {
    const preparing = await waitForPlayer(page);
    // Unless the ladder was done before the page opened, the page showed its progress.
    if (preparing) assert.ok(["waiting", "queued", "building", "ready"].includes(preparing.state), JSON.stringify(preparing));
    await checkPlayback("hlsjs", page, problems, "library-hlsjs.png");
    const status = (await libraryStatus()).find((s) => s.file === "clip.mp4");
    assert.equal(status.state, "ready");
  } finally {
    await page.close();
  }
});

test("the dropped .mp4 plays with dash.js", { timeout: 90_000 }, async () => {
  const { page, problems } = await openPage(browser, `${base}/watch/clip?engine=dashjs`);
  try {
    await checkPlayback("dashjs", page, problems, "library-dashjs.png");
  } finally {
    await page.close();
  }
});
