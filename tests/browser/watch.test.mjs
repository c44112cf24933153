// The watch page plays the sample in headless Chromium with native HLS, hls.js, dash.js and
// Shaka (HLS and DASH); through an edge too when an `edge` binary is there; under a
// throttled network hls.js and dash.js drop to the lowest rendition; and with content
// steering over two edges, hls.js and dash.js carry on from the other edge when theirs is
// killed.
//
// Needs `npm ci` here, Debian's Chromium (CHROMIUM_BIN, default /usr/bin/chromium) and a
// built `origin`: ORIGIN_BIN, else $CARGO_TARGET_DIR/release, ../../target/release, then
// ../../target/debug. The edge is found the same way (EDGE_BIN). Screenshots go to
// RESULTS_DIR (default ./results).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { rmSync, mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  binary, checkPlayback, here, launchChromium, openPage, results, sleep, startServer, stop, stopAll, waitFor,
} from "./harness.mjs";

// Long enough to play 6 s, ramp up, then be throttled down, without reaching the end.
const SAMPLE_SECONDS = Number(process.env.SAMPLE_SECONDS || 40);

let base; // the origin, http://127.0.0.1:PORT
let browser;
let library;

// The origin on a free port; it builds the small sample into a fresh library first.
function startOrigin() {
  library = mkdtempSync(join(tmpdir(), "rivulet-browser-"));
  return startServer(binary("origin"), [
    "--library", library, "--listen", "127.0.0.1:0",
    "--web-libs", join(here, "node_modules"),
    "--sample-ladder", "small", "--sample-duration", String(SAMPLE_SECONDS),
  ], 180);
}

before(async () => {
  base = (await startOrigin()).url;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stopAll();
  if (library) rmSync(library, { recursive: true, force: true });
});

function openWatchPage(engine, query = "", server = base, watch = "watch/sample") {
  return openPage(browser, `${server}/${watch}?engine=${engine}${query}`);
}

const ENGINES = ["native", "hlsjs", "dashjs", "shaka-hls", "shaka-dash"];

for (const engine of ENGINES) {
  test(`plays with ${engine}`, { timeout: 90_000 }, async () => {
    const { page, problems } = await openWatchPage(engine);
    try {
      await checkPlayback(engine, page, problems, `play-${engine}.png`);
    } finally {
      await page.close();
    }
  });
}

// The page uses relative URLs only, so it plays through an edge in front of the origin.
test("plays with hls.js and dash.js through an edge", { timeout: 120_000 }, async () => {
  const { url: edge } = await startServer(binary("edge"), ["--origin", base, "--listen", "127.0.0.1:0"], 30);
  for (const engine of ["hlsjs", "dashjs"]) {
    const { page, problems } = await openWatchPage(engine, "", edge);
    const cacheStatus = [];
    page.on("response", (r) => {
      if (r.url().endsWith(".m4s")) cacheStatus.push(r.headers()["cache-status"]);
    });
    try {
      await checkPlayback(engine, page, problems, `edge-${engine}.png`);
      assert.ok(cacheStatus.length > 0 && cacheStatus.every(Boolean), `segments came through the edge: ${JSON.stringify(cacheStatus.slice(0, 5))}`);
    } finally {
      await page.close();
    }
  }
});

// The origin's default live channel loops the sample on the wall clock.
for (const engine of ["hlsjs", "dashjs"]) {
  test(`plays the live channel with ${engine}`, { timeout: 90_000 }, async () => {
    const { page, problems } = await openWatchPage(engine, "", base, "watch/live/live");
    try {
      await checkPlayback(engine, page, problems, `live-${engine}.png`);
    } finally {
      await page.close();
    }
  });
}

for (const engine of ["hlsjs", "dashjs"]) {
  test(`${engine} drops to the lowest rendition at 600 kbit/s`, { timeout: 120_000 }, async () => {
    // A short forward buffer so the player feels the network within seconds.
    const { page } = await openWatchPage(engine, "&buffer=6");
    try {
      const up = await waitFor(page, "a rendition above the lowest on loopback",
        (s) => s.rendition && s.lowest && s.rendition.id !== s.lowest.id && s.currentTime > 1, 30);
      const cdp = await page.context().newCDPSession(page);
      await cdp.send("Network.enable");
      const bytesPerSecond = (600 * 1000) / 8;
      await cdp.send("Network.emulateNetworkConditions", {
        offline: false, latency: 40, downloadThroughput: bytesPerSecond, uploadThroughput: bytesPerSecond,
      });
      // The player reports the lowest rendition and the decoded frames are its size.
      const down = await waitFor(page, "the lowest rendition",
        (s) => s.rendition && s.lowest && s.rendition.id === s.lowest.id && s.videoHeight === s.lowest.height, 45);
      assert.ok(down.switches >= 1, `switched down from ${JSON.stringify(up.rendition)} (switches: ${down.switches})`);
      await page.screenshot({ path: join(results, `throttled-${engine}.png`) });
    } finally {
      await page.close();
    }
  });
}

// A free loopback port (the edges' addresses go into the origin's flags before they start).
function freePort() {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePromise(port));
    });
  });
}

// A second origin over the suite's library that steers players to two edges in front of
// it (short TTL and probe interval, so a dead edge is left within about two seconds).
async function startSteeredCluster() {
  const ports = [await freePort(), await freePort()];
  const edges = ports.map((port, i) => ({ name: `e${i + 1}`, host: `127.0.0.1:${port}` }));
  const origin = await startServer(binary("origin"), [
    "--library", library, "--no-sample", "--listen", "127.0.0.1:0",
    "--web-libs", join(here, "node_modules"),
    ...edges.flatMap((e) => ["--edge", `${e.name}=http://${e.host}`]),
    "--steering-ttl", "2", "--edge-probe-interval", "250ms",
  ], 30);
  for (const e of edges) {
    e.child = (await startServer(binary("edge"), ["--origin", origin.url, "--listen", e.host, "--name", e.name], 30)).child;
  }
  return { origin, edges, stop: () => Promise.all([origin.child, ...edges.map((e) => e.child)].map(stop)) };
}

// hls.js (native content steering and pathway fail-over) and dash.js (ContentSteering,
// `streaming.applyContentSteering`, on by default) play from the edge the origin steers
// them to; that edge is killed; they carry on from the other one without a long stall.
for (const engine of ["hlsjs", "dashjs"]) {
  test(`${engine} moves to the other edge when its edge dies (content steering)`, { timeout: 120_000 }, async () => {
    const cluster = await startSteeredCluster();
    try {
      // A short forward buffer: the player must fetch from the other edge within seconds.
      const { page, problems } = await openWatchPage(engine, "&buffer=6", cluster.origin.url);
      const segments = []; // { host, at, status } of every media segment response
      page.on("response", (r) => {
        if (r.url().endsWith(".m4s")) segments.push({ host: new URL(r.url()).host, at: Date.now(), status: r.status() });
      });
      try {
        await waitFor(page, "playback from an edge", (s) => s.currentTime > 2 && !s.paused && segments.length > 0, 30);
        const serving = segments[segments.length - 1].host;
        const victim = cluster.edges.find((e) => e.host === serving);
        const other = cluster.edges.find((e) => e !== victim);
        assert.ok(victim, `segments come from an edge: ${serving} not in ${cluster.edges.map((e) => e.host)}`);

        const before = await page.evaluate(() => window.rivulet.stats());
        const killedAt = Date.now();
        process.kill(victim.child.pid, "SIGKILL");

        // currentTime must reach 6 s past the kill, and 2 s past what was buffered then (so
        // what plays came from the other edge); the longest time it stands still is the stall.
        const target = before.currentTime + Math.max(6, before.bufferAhead + 2);
        let last = { at: Date.now(), time: before.currentTime };
        let longestStall = 0;
        let stats = before;
        while (Date.now() < killedAt + 30_000 && stats.currentTime < target) {
          await sleep(100);
          stats = await page.evaluate(() => window.rivulet.stats());
          if (stats.fatal) assert.fail(`fatal player error after the kill: ${stats.fatal}`);
          if (stats.currentTime > last.time + 0.01) last = { at: Date.now(), time: stats.currentTime };
          longestStall = Math.max(longestStall, Date.now() - last.at);
        }
        const after = segments.filter((s) => s.at > killedAt);
        const report = `killed ${victim.name} at ${before.currentTime.toFixed(1)} s (${before.bufferAhead.toFixed(1)} s buffered); ` +
          `now ${stats.currentTime.toFixed(1)} s; ` +
          `longest stall ${longestStall} ms; segments after: ${JSON.stringify(after.map((s) => `${s.host} ${s.status}`).slice(0, 8))}; ` +
          `errors: ${JSON.stringify(stats.errors)}`;
        assert.ok(stats.currentTime >= target, `playback went on to ${target.toFixed(1)} s: ${report}`);
        assert.ok(longestStall <= 3000, `no stall over 3 s: ${report}`);
        assert.ok(after.some((s) => s.host === other.host && s.status === 200), `${other.name} served segments after the kill: ${report}`);
        assert.deepEqual(problems, []);
        console.log(`# ${engine}: ${report}`);
        await page.screenshot({ path: join(results, `steering-${engine}.png`) });
      } finally {
        await page.close();
      }
    } finally {
      await cluster.stop();
    }
  });
}
