// End-to-end tests of the web app in Debian's chromium (headless, --enable-unsafe-webgpu, so WebGPU
// has only the SwiftShader software adapter). Run with `npm test` here or `make e2e` at the root.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { after, before, test } from "node:test";
import * as h from "./harness.mjs";

const SHOTS = h.screenshotsDir();
const FIRST_IMAGE_BUDGET_MS = Number(process.env.ARPG_E2E_FIRST_IMAGE_BUDGET_MS || 10_000);
let root;
let server;
let cpuTokens = null;

before(async () => {
  root = h.makeRoot();
  server = await h.serve(root.dir);
  console.log(`# serving ${root.dir} at ${server.origin}; model ${root.model.file} sha256 ${root.model.sha256}; screenshots in ${SHOTS}`);
});

after(async () => {
  await server?.stop();
  if (root) fs.rmSync(root.dir, { recursive: true, force: true });
});

const { waitRun, clickAndWait, clean, gpuBuildRequests, checkDownload } = h;

/** Requests for the JS PNG encoder that the wasm's `encodePng` replaced (www/png.js, removed). */
function pngJsRequests(context) {
  const urls = [];
  context.on("request", (r) => new URL(r.url()).pathname === "/png.js" && urls.push(r.url()));
  return urls;
}

test("class page, automatic backend: first image, timed from page load; no WebGPU build fetched for a CPU run", async () => {
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const gpuBuild = gpuBuildRequests(context);
    const page = await context.newPage();
    const t0 = Date.now();
    await page.goto(`${server.origin}/?batch=1&seed=7`);
    const state = await waitRun(page, 60_000);
    const ms = Date.now() - t0;
    const badge = await page.textContent("#backend");
    console.log(`# first image ${ms} ms after page load (automatic backend: ${badge}); page says: ${state.stats}`);
    assert.ok(ms <= FIRST_IMAGE_BUDGET_MS, `first image after ${ms} ms, budget ${FIRST_IMAGE_BUDGET_MS} ms`);
    // Headless Chromium here has only SwiftShader, which the runtime counts as software.
    const adapter = await page.evaluate(() => window.__arpg.client.info.adapter);
    if (adapter?.software) {
      assert.equal(badge, "CPU");
      assert.deepEqual(gpuBuild, [], "the automatic backend fetched the WebGPU build for a CPU run");
    }
    clean(w);
  } finally {
    await close();
  }
});

test("class page on the forced CPU backend: a non-blank image; screenshot; the download is a PNG of the batch with its settings", async () => {
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const pngJs = pngJsRequests(context);
    const page = await context.newPage();
    await page.goto(`${server.origin}/?backend=cpu&batch=1&steps=4&seed=7&class=7`);
    await waitRun(page, 60_000);
    assert.equal(await page.textContent("#backend"), "CPU");
    const last = await page.evaluate(() => ({ px: Array.from(window.__arpg.last.images[0].pixels), tokens: window.__arpg.last.tokens }));
    assert.equal(last.px.length, 32 * 32);
    assert.ok(h.nonBlank(last.px), "the image is blank");
    assert.equal(last.tokens.length, 64);
    assert.ok(last.tokens.every((t) => t >= 0), "undecoded tokens left");
    cpuTokens = last.tokens;
    // The other decoding order, same seed: every cell decoded, another image.
    await page.selectOption("#order", "confidence");
    await clickAndWait(page, "#generate", 60_000);
    const confident = await page.evaluate(() => ({ px: Array.from(window.__arpg.last.images[0].pixels), tokens: window.__arpg.last.tokens }));
    assert.ok(h.nonBlank(confident.px), "the confidence-order image is blank");
    assert.ok(confident.tokens.length === 64 && confident.tokens.every((t) => t >= 0), "undecoded tokens left");
    assert.notDeepEqual(confident.tokens, cpuTokens, "the order option did not reach the sampler");
    await page.selectOption("#order", "random");
    // A batch for the screenshot.
    await page.fill("#batch", "8").catch(() => {});
    await page.evaluate(() => {
      const b = document.querySelector("#batch");
      b.value = "8";
      b.dispatchEvent(new Event("input"));
    });
    await clickAndWait(page, "#generate", 60_000);
    await page.screenshot({ path: path.join(SHOTS, "screenshot-index.png") });

    // Download: the batch as one grid (3x3 cells of 32x32 for 8 images, the last cell black).
    const batch = await page.evaluate(() => {
      const { images, cols, size, options: { cfg } } = window.__arpg.last;
      const { info } = window.__arpg.client;
      const model = info.sampling.generate; // the checkpoint's defaults for what the page leaves out
      return {
        images: images.map((i) => Array.from(i.pixels)), cols, size, cfg, model, checksum: info.checksum,
        name: info.classNames[7],
      };
    });
    const { images, cols, size } = batch;
    assert.deepEqual([images.length, cols, size], [8, 3, 32]);
    const grid = new Array(cols * size * cols * size).fill(0);
    images.forEach((px, i) => {
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) grid[(Math.floor(i / cols) * size + y) * cols * size + (i % cols) * size + x] = px[y * size + x];
      }
    });
    await checkDownload(page, {
      name: "arpg-7-seed7.png",
      width: cols * size,
      height: cols * size,
      texts: {
        Software: "arpg (browser)", Class: `7 ${batch.name || "Sneaker"}`, Seed: "7", Steps: "4",
        CFG: `${batch.cfg} ${batch.model.cfgSchedule}`, Temperature: String(batch.model.temperature), Order: "random",
        Model: root.model.name, "Model sha256": batch.checksum,
      },
      pixels: grid,
    });
    assert.deepEqual(pngJs, [], "the page requested the removed /png.js");
    clean(w);
  } finally {
    await close();
  }
});

test("class picker: typing filters the list, ArrowDown and Enter pick, the URL keeps the class; Escape closes; the random button picks a class", async () => {
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const page = await context.newPage();
    await page.goto(`${server.origin}/?backend=cpu&batch=1&steps=4&seed=7&class=0`);
    await waitRun(page, 60_000);
    const names = await page.evaluate(() => window.__arpg.client.info.classNames);
    const boot = names.findIndex((n) => /boot/i.test(n)); // Fashion-MNIST's "Ankle boot"
    assert.ok(boot >= 0, `no class named like "boot" in ${names}`);
    const picked = () => page.evaluate(() => Number(document.querySelector("#class-search").dataset.class));
    const urlClass = () => page.evaluate(() => new URLSearchParams(location.search).get("class"));
    const listed = () => page.$$eval("#class-list [data-class]", (els) => els.map((e) => Number(e.dataset.class)));

    // A short list shows every class on focus.
    await page.click("#class-search");
    assert.ok(await page.isVisible("#class-list"), "the list did not open");
    assert.deepEqual(await listed(), names.map((_, i) => i));
    await page.keyboard.type("BOO"); // case-insensitive substring
    assert.deepEqual(await listed(), [boot]);
    await page.keyboard.press("ArrowDown");
    const activeId = await page.getAttribute(`#class-list [data-class="${boot}"]`, "id");
    assert.equal(await page.getAttribute("#class-search", "aria-activedescendant"), activeId);
    await page.keyboard.press("Enter");
    assert.equal(await picked(), boot);
    assert.equal(await page.inputValue("#class-search"), `${boot} ${names[boot]}`);
    assert.ok(await page.isHidden("#class-list"), "the list stayed open");
    assert.equal(await urlClass(), String(boot));
    const { backend, batch, steps, seed } = await page.evaluate(() => Object.fromEntries(new URLSearchParams(location.search)));
    assert.deepEqual({ backend, batch, steps, seed }, { backend: "cpu", batch: "1", steps: "4", seed: "7" }, "the URL's other settings");
    await clickAndWait(page, "#generate", 60_000);
    assert.equal(await page.evaluate(() => window.__arpg.last.class), boot, "generated another class");

    // Nothing matches; Escape closes and keeps the class.
    await page.click("#class-search");
    await page.keyboard.type("zzzz");
    assert.deepEqual(await listed(), []);
    assert.equal(await page.textContent(".class-more"), "no class matches");
    await page.keyboard.press("Escape");
    assert.ok(await page.isHidden("#class-list"), "Escape did not close the list");
    assert.equal(await picked(), boot);

    // The random button: some class, in the URL too; twenty picks are not all the same one.
    const seen = new Set();
    for (let i = 0; i < 20; i++) {
      await page.click("#class-random");
      const k = await picked();
      assert.ok(Number.isInteger(k) && k >= 0 && k < names.length, `random class ${k}`);
      assert.equal(await urlClass(), String(k));
      seen.add(k);
    }
    assert.ok(seen.size > 1, "the random button picked one class only");

    // A reload opens the class in the URL.
    const last = await picked();
    await page.reload();
    await waitRun(page, 60_000);
    assert.equal(await picked(), last);
    assert.equal(await page.evaluate(() => window.__arpg.last.class), last);
    clean(w);
  } finally {
    await close();
  }
});

/** The Content-Encoding with which the server answers a GET of `urlPath` accepting `encodings`. */
const servedEncoding = async (urlPath, encodings) => (await h.fetchEncoded(server.origin, urlPath, encodings))[1];

// The sizes themselves are printed by the browser bench (`make bench`, docs/performance.md).
test("both runtimes are sent brotli-compressed to Chromium and gzip to a gzip-only client; the checkpoint as is", async () => {
  for (const file of ["/pkg/cpu/arpg_bg.wasm", "/pkg/cpu/arpg.js", "/pkg/gpu/arpg_bg.wasm", "/pkg/gpu/arpg.js"]) {
    assert.equal(await servedEncoding(file, "gzip, deflate, br, zstd"), "br", file);
    assert.equal(await servedEncoding(file, "gzip"), "gzip", file);
  }
  assert.equal(await servedEncoding(`/models/${root.model.file}`, "gzip, deflate, br, zstd"), "identity");
});

// WebGPU needs the patched cubek-matmul (vendor/cubek-matmul/PATCH.md): without it the matmul WGSL
// asks for `subgroups`, which wgpu never enables on the web, and the worker panics. The software
// adapter is ~40x slower than the CPU backend and compiles kernels for every new shape: this test
// takes ~40 s (docs/performance.md, "Build and test times").
test("class page on forced WebGPU (software adapter): non-blank, same tokens as the CPU", { timeout: 600_000 }, async () => {
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const page = await context.newPage();
    const t0 = Date.now();
    const gpuBuild = gpuBuildRequests(context);
    await page.goto(`${server.origin}/?backend=webgpu&batch=1&steps=4&seed=7&class=7`);
    await waitRun(page, 540_000);
    assert.ok(gpuBuild.some((u) => u.endsWith("/pkg/gpu/arpg_bg.wasm")), "forced WebGPU did not fetch the WebGPU build");
    console.log(`# forced WebGPU: first image after ${Date.now() - t0} ms`);
    assert.equal(await page.textContent("#backend"), "WebGPU");
    const last = await page.evaluate(() => ({ px: Array.from(window.__arpg.last.images[0].pixels), tokens: window.__arpg.last.tokens }));
    assert.ok(h.nonBlank(last.px), "the image is blank");
    assert.ok(cpuTokens, "the CPU test did not run");
    assert.deepEqual(last.tokens, cpuTokens, "WebGPU and CPU sampled different tokens for the same seed");
    clean(w);
  } finally {
    await close();
  }
});

test("paint tool: in-paint keeps unmasked tokens, out-paint doubles the width, expand doubles both; the download is a PNG of the image; state survives a reload; screenshot", async () => {
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const pngJs = pngJsRequests(context);
    const page = await context.newPage();
    await page.goto(`${server.origin}/paint.html?backend=cpu&seed=3&steps=4&class=0`);
    await waitRun(page, 60_000); // the first image is generated on its own
    assert.equal(await page.evaluate(() => document.body.dataset.image), "32x32");

    // Paint a stroke with the mouse, size 2.
    await page.evaluate(() => {
      const s = document.querySelector("#size");
      s.value = "2";
      s.dispatchEvent(new Event("input"));
    });
    const box = await page.locator("#view").boundingBox();
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.35);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.55, box.y + box.height * 0.45, { steps: 8 });
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.7, { steps: 8 });
    await page.mouse.up();
    const cells = Number(await page.evaluate(() => document.body.dataset.maskCells));
    assert.ok(cells > 0 && cells < 64, `painted ${cells} tokens`);
    // Undo / redo per stroke.
    await page.keyboard.press("Control+z");
    assert.equal(await page.evaluate(() => document.body.dataset.maskCells), "0");
    await page.keyboard.press("Control+y");
    assert.equal(Number(await page.evaluate(() => document.body.dataset.maskCells)), cells);

    await clickAndWait(page, "#inpaint");
    const r = await page.evaluate(() => ({
      before: Array.from(window.__arpg.before.pixels),
      after: Array.from(window.__arpg.image.pixels),
      mask: Array.from(window.__arpg.mask),
      w: window.__arpg.image.width,
    }));
    assert.equal(r.after.length, 32 * 32);
    let outside = 0;
    for (let i = 0; i < r.after.length; i++) {
      const cell = Math.floor(Math.floor(i / r.w) / 4) * 8 + Math.floor((i % r.w) / 4);
      if (!r.mask[cell]) {
        outside++;
        assert.equal(r.after[i], r.before[i], `pixel ${i} outside the mask changed`);
      }
    }
    assert.equal(outside, (64 - cells) * 16);
    await page.screenshot({ path: path.join(SHOTS, "screenshot-paint.png") });

    await clickAndWait(page, "#outpaint"); // right: 8 tokens (the default)
    assert.equal(await page.evaluate(() => document.body.dataset.image), "64x32");
    await clickAndWait(page, "#expand");
    assert.equal(await page.evaluate(() => document.body.dataset.image), "128x64");
    const big = await page.evaluate(() => Array.from(window.__arpg.image.pixels));
    assert.ok(h.nonBlank(big), "the expanded image is blank");
    const model = await page.evaluate(() => {
      const { info } = window.__arpg.client;
      return { checksum: info.checksum, name: info.classNames[0], expand: info.sampling.expand };
    });
    const e = model.expand; // the checkpoint's expansion defaults
    await checkDownload(page, {
      name: "arpg-paint-128x64.png",
      width: 128,
      height: 64,
      texts: {
        Software: "arpg (browser paint)", Operation: "expand", Class: `0 ${model.name || "T-shirt/top"}`, Seed: "3",
        Steps: "4", CFG: `${e.cfg} ${e.cfgSchedule}`, Temperature: String(e.temperature), Order: "random",
        Model: root.model.name, "Model sha256": model.checksum,
      },
      pixels: big,
    });
    assert.deepEqual(pngJs, [], "the page requested the removed /png.js");

    await page.waitForTimeout(400); // the IndexedDB write is debounced
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.image === "128x64", null, { timeout: 30_000 });
    clean(w);
  } finally {
    await close();
  }
});

test("paint tool: a picture saved by an older version (IndexedDB key `paint`) opens with the first model that can edit it, once", async () => {
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const page = await context.newPage();
    await page.goto(`${server.origin}/paint.html?backend=cpu&seed=3&steps=4`);
    await waitRun(page, 60_000);
    // The old format under the old key: a 40x32 grey picture the grey model can edit.
    const pixels = Array.from({ length: 40 * 32 }, (_, i) => (i * 7) % 256);
    await page.evaluate(async (pixels) => {
      const store = await import("/store.js");
      const own = `paint.${window.__arpg.client.model.id}`;
      while ((await store.get(own)) === undefined) await new Promise((r) => setTimeout(r, 50)); // the debounced save
      const image = { width: 40, height: 32, channels: 1, pixels: Uint8Array.from(pixels) };
      await store.put("paint", { image, mask: new Uint8Array(80), before: null, token: 4 });
      await store.del(own);
    }, pixels);
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.image === "40x32", null, { timeout: 30_000 });
    assert.deepEqual(await page.evaluate(() => Array.from(window.__arpg.image.pixels)), pixels);
    const keys = await page.evaluate(async () => {
      const store = await import("/store.js");
      const key = `paint.${window.__arpg.client.model.id}`;
      let own;
      for (let i = 0; i < 100 && (own = await store.get(key)) === undefined; i++) await new Promise((r) => setTimeout(r, 50));
      return { old: (await store.get("paint")) !== undefined, own: own?.image.width };
    });
    assert.deepEqual(keys, { old: false, own: 40 }, "the picture moved to the model's own key");
    clean(w);
  } finally {
    await close();
  }
});

/** Grey pixels of a bundled sample: 8-bit grey PNGs, one IDAT, filter 0 on every row. */
function samplePixels(name) {
  const png = fs.readFileSync(path.join(h.ROOT, "www/samples", `${name}.png`));
  const width = png.readUInt32BE(16);
  const idat = png.indexOf("IDAT");
  const raw = zlib.inflateSync(png.subarray(idat + 4, idat + 4 + png.readUInt32BE(idat - 4)));
  const rows = [];
  for (let y = 0; y < raw.length / (width + 1); y++) rows.push(...raw.subarray(y * (width + 1) + 1, (y + 1) * (width + 1)));
  return { width, pixels: rows };
}

test("paint tool: a bundled sample opens centred in the 32x32 frame and sets the class", async () => {
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const page = await context.newPage();
    await page.goto(`${server.origin}/paint.html?backend=cpu&seed=3&steps=4&class=0`);
    await waitRun(page, 60_000);
    await page.selectOption("#sample", "5-sandal");
    await page.waitForFunction(() => document.querySelector("#class-search").dataset.class === "5", null, { timeout: 10_000 });
    const got = await page.evaluate(() => ({ w: window.__arpg.image.width, px: Array.from(window.__arpg.image.pixels) }));
    const want = samplePixels("5-sandal");
    assert.equal(want.width, 28);
    assert.equal(got.w, 32);
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        const inside = x >= 2 && x < 30 && y >= 2 && y < 30;
        const expect = inside ? want.pixels[(y - 2) * 28 + (x - 2)] : 0;
        assert.equal(got.px[y * 32 + x], expect, `pixel (${x}, ${y})`);
      }
    }
    clean(w);
  } finally {
    await close();
  }
});

test("offline: after a first visit, the app generates with the server gone and the network off", async () => {
  const own = await h.serve(root.dir);
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, own.origin);
    const page = await context.newPage();
    await page.goto(`${own.origin}/?backend=cpu&batch=1&steps=4&seed=11`);
    await waitRun(page, 60_000);
    // Wait for the service worker to hold the shell, the wasm and the checkpoint (in any of its
    // caches: the test does not repeat sw.js's cache name).
    const needed = ["/", "/index.html", "/app.js", "/worker.js", "/pkg/cpu/arpg.js", "/pkg/cpu/arpg_bg.wasm", "/models/manifest.json", `/models/${root.model.file}`];
    let missing = needed;
    for (const t1 = Date.now(); missing.length && Date.now() - t1 < 60_000; await page.waitForTimeout(500)) {
      const held = await page.evaluate(async () => {
        if (!(await navigator.serviceWorker.ready).active) return [];
        const names = await caches.keys();
        const requests = (await Promise.all(names.map(async (n) => (await caches.open(n)).keys()))).flat();
        return requests.map((r) => new URL(r.url).pathname);
      });
      missing = needed.filter((p) => !held.includes(p));
    }
    assert.deepEqual(missing, [], "files the service worker does not hold");
    await own.stop();
    await context.setOffline(true);
    const t0 = Date.now();
    await page.reload();
    await waitRun(page, 60_000);
    console.log(`# offline reload: first image after ${Date.now() - t0} ms`);
    const px = await page.evaluate(() => Array.from(window.__arpg.last.images[0].pixels));
    assert.ok(h.nonBlank(px), "the image is blank");
    clean(w);
  } finally {
    await close();
    await own.stop();
  }
});
