// Browser benchmark (issue 5): prints figures, asserts only that the work ran. Benchmarks are not
// timed tests: nothing here fails because the machine is slow.
//
// - transfer sizes of the app shell, both runtimes (pkg/cpu, pkg/gpu) and each model: raw, and
//   the bytes `arpg-serve` sends (its precompressed .br / .gz copies) to Chromium and to a
//   gzip-only client, and a first visit's total with one model;
// - ms per image and per step on the CPU backend in wasm, per model (batches in BATCHES, distinct
//   seeds per run, the page's first image as the warm-up), and the first image after picking a
//   model; WebGPU's figures (the software adapter here, so correctness only) are printed by the
//   forced-WebGPU tests in app.test.mjs and colour.test.mjs;
// - the same work natively (`arpg bench`), and the wasm / native ratio.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import * as h from "./harness.mjs";

const STEPS = 8;
const RUNS = Number(process.env.ARPG_BENCH_RUNS || 5);
let root;
let server;

before(async () => {
  root = h.makeRoot();
  server = await h.serve(root.dir);
});

after(async () => {
  await server?.stop();
  if (root) fs.rmSync(root.dir, { recursive: true, force: true });
});

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (n) => (n / 1e6).toFixed(2);

/** GET repo file `file` (www/ is served at /) as a client accepting `encodings`: [bytes, coding]. */
const fetchRaw = (file, encodings) => h.fetchEncoded(server.origin, `/${file.replace(/^www\//, "")}`, encodings);

test("bench: transfer sizes of the runtimes and the checkpoint, as arpg-serve sends them", async () => {
  const shell = fs.readdirSync(path.join(root.dir, "www")).filter((f) => /\.(html|js|css)$/.test(f) && f !== "sw.js");
  const files = {
    "shell (pages, JS, CSS)": [...shell.map((f) => `www/${f}`), "www/models/manifest.json"],
    "pkg/cpu (wasm + js)": ["pkg/cpu/arpg_bg.wasm", "pkg/cpu/arpg.js"],
    "pkg/gpu (wasm + js)": ["pkg/gpu/arpg_bg.wasm", "pkg/gpu/arpg.js"],
    ...Object.fromEntries(root.models.map((m) => [`model ${m.id}`, [`www/models/${m.file}`]])),
  };
  // Chromium's Accept-Encoding (also on http://127.0.0.1), then a client without brotli.
  const clients = { chromium: "gzip, deflate, br, zstd", "gzip only": "gzip" };
  const sizes = {};
  console.log("# transfer sizes (MB): raw / sent to Chromium / sent to a gzip-only client");
  for (const [name, list] of Object.entries(files)) {
    const s = { raw: 0, codings: new Set() };
    for (const f of list) {
      s.raw += fs.statSync(path.join(root.dir, f)).size;
      for (const [client, accept] of Object.entries(clients)) {
        const [bytes, coding] = await fetchRaw(f, accept);
        s[client] = (s[client] || 0) + bytes;
        s.codings.add(`${path.basename(f)} ${client}: ${coding}`);
      }
    }
    sizes[name] = s;
    console.log(`#   ${name.padEnd(22)} ${mb(s.raw)} / ${mb(s.chromium)} / ${mb(s["gzip only"])}  (${[...s.codings].join(", ")})`);
    assert.ok(s.raw > 0 && s.chromium <= s.raw && s["gzip only"] <= s.raw);
  }
  // What a first visit with one model costs: the CPU path, and the WebGPU path (on a hardware
  // adapter), which also gets pkg/cpu (the service worker precaches it as the fallback).
  const paths = { "pkg/cpu": ["pkg/cpu (wasm + js)"], "pkg/cpu + pkg/gpu": ["pkg/cpu (wasm + js)", "pkg/gpu (wasm + js)"] };
  for (const [rt, runtimes] of Object.entries(paths)) {
    for (const m of root.models) {
      const parts = ["shell (pages, JS, CSS)", ...runtimes, `model ${m.id}`];
      const [c, g] = ["chromium", "gzip only"].map((k) => parts.reduce((n, p) => n + sizes[p][k], 0));
      console.log(`#   shell + ${rt} + model ${m.id}: ${mb(c)} MB to Chromium, ${mb(g)} MB gzip only`);
    }
  }
});

/** Open the class page on `backend`, wait for its first image (the warm-up), then run `runs`
 * generations of `batch` images with distinct seeds and classes: [{ms, steps}]. */
async function pageBench(model, backend, batch, runs, timeout) {
  const { context, close } = await h.launch();
  try {
    const page = await context.newPage();
    const t0 = Date.now();
    await page.goto(`${server.origin}/?model=${model.id}&backend=${backend}&batch=1&steps=${STEPS}&seed=1`);
    await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.run), null, { timeout });
    const firstMs = Date.now() - t0;
    assert.equal(await page.evaluate(() => document.body.dataset.run), "done");
    const out = await page.evaluate(async ({ batch, runs, steps }) => {
      const c = window.__arpg.client;
      const res = [];
      for (let r = 0; r < runs; r++) {
        const classes = Array.from({ length: batch }, (_, i) => (r * batch + i) % c.info.nClasses);
        const o = await c.run("generate", { classes, options: { steps, seed: 1000 + r } });
        res.push({ ms: o.ms, steps: o.stepMs.length, images: o.result.length });
      }
      return { res, backend: c.info.backend };
    }, { batch, runs, steps: STEPS });
    assert.equal(out.backend, backend);
    out.res.forEach((r) => assert.equal(r.images, batch));
    return { firstMs, runs: out.res };
  } finally {
    await close();
  }
}

function report(label, batch, { firstMs, runs }) {
  const ms = median(runs.map((r) => r.ms));
  console.log(`# ${label}, batch ${batch}, ${STEPS} steps: ${ms.toFixed(0)} ms per batch, ` +
    `${(ms / batch).toFixed(1)} ms/image, ${(ms / STEPS).toFixed(1)} ms/step (median of ${runs.length}); ` +
    `page load to first image ${firstMs} ms`);
  return ms / batch;
}

/** Native ms per image for the same work as the page's job: `arpg bench` on the same checkpoint,
 * token sampling plus the VQ decode of the images (the bench times them apart). `threads` 1 pins
 * burn-flex's rayon pool to one thread, as the wasm runs on one; otherwise it uses every core. */
function nativeMsPerImage(model, batch, threads) {
  const args = ["bench", "--json", "--checkpoint", path.join(root.dir, "www/models", model.file),
    "--steps", String(STEPS), "--batch", String(batch), "--runs", String(RUNS), "--matmul-n", "64"];
  const env = threads ? { ...process.env, RAYON_NUM_THREADS: String(threads) } : process.env;
  const json = JSON.parse(execFileSync(h.BIN, args, { encoding: "utf8", env, stdio: ["ignore", "pipe", "ignore"] }));
  const row = json.rows.find((r) => r.method === "arpg" && r.steps === STEPS && r.batch === batch);
  assert.ok(row, `arpg bench printed no ARPG row for ${STEPS} steps, batch ${batch}`);
  const decode = json.vq_decode.find((d) => d.batch === batch);
  assert.ok(decode, `arpg bench printed no VQ decode time for batch ${batch}`);
  return { sampling: row.ms_per_image, decode: decode.ms_per_image, total: row.ms_per_image + decode.ms_per_image };
}

// The grey model at batch 1 and 16, the colour one (4x the tokens) at 1 and 8.
const BATCHES = { fmnist: [1, 16], emoji: [1, 8] };

test("bench: wasm CPU vs native on the same work, per model", { timeout: 1_200_000 }, async () => {
  for (const model of root.models) {
    for (const batch of BATCHES[model.id] || [1]) {
      const label = `model ${model.id}: wasm CPU`;
      const wasm = report(label, batch, await pageBench(model, "cpu", batch, batch === 1 ? RUNS : 3, 120_000));
      for (const threads of [0, 1]) {
        const n = nativeMsPerImage(model, batch, threads);
        console.log(`# model ${model.id}: native CPU (${threads ? "1 thread, as the wasm" : "every core"}), batch ${batch}, ${STEPS} ` +
        `steps: ${n.total.toFixed(1)} ms/image (sampling ${n.sampling.toFixed(1)} + VQ decode ` +
        `${n.decode.toFixed(1)}); wasm / native = ${(wasm / n.total).toFixed(2)} (wasm: the page's whole ` +
        `job, worker messages included)`);
      }
    }
  }
});

test("bench: the first image after picking each other model (its bytes fetched, hash checked, first generation)", { timeout: 300_000 }, async () => {
  const { context, close } = await h.launch();
  try {
    const page = await context.newPage();
    const [first, ...others] = root.models;
    await page.goto(`${server.origin}/?model=${first.id}&backend=cpu&batch=1&steps=${STEPS}&seed=1`);
    await h.waitRun(page, 120_000);
    for (const m of others) {
      await page.evaluate(() => (document.body.dataset.run = ""));
      const t0 = Date.now();
      await page.selectOption("#model", m.id);
      await h.waitRun(page, 120_000);
      console.log(`# model ${m.id}: first image ${Date.now() - t0} ms after picking it (CPU, ${STEPS} steps, batch 1)`);
    }
  } finally {
    await close();
  }
});
