// PNG encoding for downloads, timed once (docs/performance.md, "Browser: PNG downloads"): the
// wasm's `encodePng` (the library's PNG writer, what the pages use) against the JS encoder it
// replaced (www/png.js: CompressionStream "deflate", read from git at REV, where it still exists),
// on grey 64x64 and 256x256 images with the class page's seven text chunks, on the main thread of
// Debian's chromium headless, as the pages call them. Prints figures; asserts only that both made a
// PNG.
//
//   cd tests/e2e && ARPG_SERVE_BIN=... node png-timing.mjs [REV]     (REV defaults to 7f64beb)
//
// Needs pkg/ (make wasm) and arpg-serve, as the browser tests; no model.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as h from "./harness.mjs";

const REV = process.argv[2] || "7f64beb";
const RUNS = 50;
const BATCH = 10;
const COLD = 3;
const oldEncoder = execFileSync("git", ["-C", h.ROOT, "show", `${REV}:www/png.js`], { encoding: "utf8" });

const server = await h.serve(h.ROOT);
const { context, close } = await h.launch();
try {
  await context.route(`${server.origin}/png-timing.html`, (r) =>
    r.fulfill({ contentType: "text/html", body: "<!doctype html><title>PNG timing</title>" }));
  await context.route(`${server.origin}/png-old.js`, (r) => r.fulfill({ contentType: "text/javascript", body: oldEncoder }));

  /** In a fresh page: the first encode of a 64x64 image, with loading the encoder ("cold"); `warm`:
   * then RUNS samples of BATCH encodes of each size, after 5 untimed ones. Both end in a Blob. */
  const measure = async (which, warm) => {
    const page = await context.newPage();
    await page.goto(`${server.origin}/png-timing.html`);
    // As on the pages, the runtime files are already in the HTTP cache (the worker fetched them).
    if (which === "wasm") await page.evaluate(() => Promise.all(["/pkg/cpu/arpg.js", "/pkg/cpu/arpg_bg.wasm"].map((u) => fetch(u).then((r) => r.arrayBuffer()))));
    const out = await page.evaluate(async ({ which, warm, RUNS, BATCH }) => {
      const image = (n) => {
        // A smooth pattern with a little noise: neither flat nor pure noise, like a generated image.
        const pixels = new Uint8Array(n * n);
        let s = 1;
        for (let i = 0; i < n * n; i++) {
          s = (Math.imul(s, 1103515245) + 12345) >>> 0;
          const v = 128 + 100 * Math.sin((i % n) / 7) * Math.cos(Math.floor(i / n) / 5) + ((s >>> 24) & 15);
          pixels[i] = Math.max(0, Math.min(255, Math.round(v)));
        }
        return { width: n, height: n, pixels };
      };
      const texts = {
        Software: "arpg (browser)", Class: "7 Sneaker", Seed: "7", Steps: "8", CFG: "3", Order: "random", Model: "0".repeat(64),
      };
      const t0 = performance.now();
      let encode;
      if (which === "wasm") {
        const mod = await import("/pkg/cpu/arpg.js");
        await mod.default();
        encode = async (img) => new Blob([mod.encodePng(img, texts)], { type: "image/png" });
      } else {
        const mod = await import("/png-old.js");
        encode = (img) => mod.encodeGrayPng(img, texts);
      }
      const first = await encode(image(64));
      const cold = performance.now() - t0;
      const result = { cold, firstBytes: first.size, sizes: {} };
      if (!warm) return result;
      for (const n of [64, 256]) {
        const img = image(n);
        for (let i = 0; i < 5; i++) await encode(img);
        // performance.now() is coarse (100 us) on a page that is not cross-origin isolated: each
        // sample is the mean of BATCH encodes.
        const ms = [];
        let bytes = 0;
        for (let i = 0; i < RUNS; i++) {
          const t = performance.now();
          for (let k = 0; k < BATCH; k++) bytes = (await encode(img)).size;
          ms.push((performance.now() - t) / BATCH);
        }
        ms.sort((a, b) => a - b);
        result.sizes[n] = { median: ms[Math.floor(ms.length / 2)], min: ms[0], max: ms.at(-1), bytes };
      }
      return result;
    }, { which, warm, RUNS, BATCH });
    await page.close();
    return out;
  };

  const { product } = await (await context.newCDPSession(await context.newPage())).send("Browser.getVersion");
  console.log(`# ${product}; JS encoder from ${REV}:www/png.js; ${RUNS} samples of ${BATCH} encodes per size, main thread`);
  for (const which of ["js", "wasm"]) {
    const colds = [];
    for (let i = 0; i < COLD; i++) colds.push((await measure(which, false)).cold.toFixed(1));
    const r = await measure(which, true);
    assert.ok(r.firstBytes > 0, `${which}: no PNG`);
    console.log(`# ${which}: first encode with loading the encoder (fresh pages): ${colds.join(", ")} ms`);
    for (const [n, s] of Object.entries(r.sizes)) {
      console.log(`# ${which} ${n}x${n}: median ${s.median.toFixed(3)} ms (min ${s.min.toFixed(3)}, max ${s.max.toFixed(3)}), ${s.bytes} bytes`);
    }
  }
} finally {
  await close();
  await server.stop();
}
