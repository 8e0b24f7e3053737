// Browser benchmark (issue 5): prints figures, asserts only that the work ran. Benchmarks are not
// timed tests: nothing here fails because the machine is slow.
//
// - transfer sizes of both runtimes (pkg/cpu, pkg/gpu) and of the checkpoint: raw, gzip -9, brotli;
// - ms per image and per step on the CPU backend in wasm (batch 1 and 16, distinct seeds per run,
//   the page's first image as the warm-up); WebGPU's figures (the software adapter here, so
//   correctness only) are printed by the forced-WebGPU test in app.test.mjs;
// - the same work natively (`arpg bench`), and the wasm / native ratio.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
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

test("bench: transfer sizes of the runtimes and the checkpoint", () => {
  const files = {
    "pkg/cpu (wasm + js)": ["pkg/cpu/arpg_bg.wasm", "pkg/cpu/arpg.js"],
    "pkg/gpu (wasm + js)": ["pkg/gpu/arpg_bg.wasm", "pkg/gpu/arpg.js"],
    checkpoint: [`www/models/${root.model.file}`],
  };
  const sizes = {};
  console.log("# transfer sizes (MB): raw / gzip -9 / brotli q11");
  for (const [name, list] of Object.entries(files)) {
    const s = { raw: 0, gzip: 0, brotli: 0 };
    for (const f of list) {
      const bytes = fs.readFileSync(path.join(root.dir, f));
      s.raw += bytes.length;
      s.gzip += zlib.gzipSync(bytes, { level: 9 }).length;
      s.brotli += zlib.brotliCompressSync(bytes, {
        params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
      }).length;
    }
    sizes[name] = s;
    console.log(`#   ${name.padEnd(22)} ${mb(s.raw)} / ${mb(s.gzip)} / ${mb(s.brotli)}`);
  }
  for (const rt of ["pkg/cpu (wasm + js)", "pkg/gpu (wasm + js)"]) {
    const t = sizes[rt].brotli + sizes.checkpoint.brotli;
    const g = sizes[rt].gzip + sizes.checkpoint.gzip;
    console.log(`#   ${rt.slice(0, 7)} + checkpoint: ${mb(g)} MB gzip, ${mb(t)} MB brotli`);
  }
  assert.ok(sizes.checkpoint.raw > 0 && sizes["pkg/cpu (wasm + js)"].raw > 0);
});

/** Open the class page on `backend`, wait for its first image (the warm-up), then run `runs`
 * generations of `batch` images with distinct seeds and classes: [{ms, steps}]. */
async function pageBench(backend, batch, runs, timeout) {
  const { context, close } = await h.launch();
  try {
    const page = await context.newPage();
    const t0 = Date.now();
    await page.goto(`${server.origin}/?backend=${backend}&batch=1&steps=${STEPS}&seed=1`);
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
function nativeMsPerImage(batch, threads) {
  const args = ["bench", "--json", "--checkpoint", path.join(root.dir, "www/models", root.model.file),
    "--steps", String(STEPS), "--batch", String(batch), "--runs", String(RUNS), "--matmul-n", "64"];
  const env = threads ? { ...process.env, RAYON_NUM_THREADS: String(threads) } : process.env;
  const json = JSON.parse(execFileSync(h.BIN, args, { encoding: "utf8", env, stdio: ["ignore", "pipe", "ignore"] }));
  const row = json.rows.find((r) => r.method === "arpg" && r.steps === STEPS && r.batch === batch);
  assert.ok(row, `arpg bench printed no ARPG row for ${STEPS} steps, batch ${batch}`);
  const decode = json.vq_decode.find((d) => d.batch === batch);
  assert.ok(decode, `arpg bench printed no VQ decode time for batch ${batch}`);
  return { sampling: row.ms_per_image, decode: decode.ms_per_image, total: row.ms_per_image + decode.ms_per_image };
}

test("bench: wasm CPU vs native on the same work", { timeout: 600_000 }, async () => {
  for (const batch of [1, 16]) {
    const wasm = report("wasm CPU", batch, await pageBench("cpu", batch, batch === 1 ? RUNS : 3, 120_000));
    for (const threads of [0, 1]) {
      const n = nativeMsPerImage(batch, threads);
      console.log(`# native CPU (${threads ? "1 thread, as the wasm" : "every core"}), batch ${batch}, ${STEPS} ` +
        `steps: ${n.total.toFixed(1)} ms/image (sampling ${n.sampling.toFixed(1)} + VQ decode ` +
        `${n.decode.toFixed(1)}); wasm / native = ${(wasm / n.total).toFixed(2)} (wasm: the page's whole ` +
        `job, worker messages included)`);
    }
  }
});
