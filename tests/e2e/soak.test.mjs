// Soak (issue 6): many generations in a row in one page, with the memory that could leak sampled
// as they go: the worker's wasm linear memory, the page's and the worker's JS heaps (after a
// forced GC, through the DevTools protocol) and, on WebGPU, the bytes of live GPU buffers. A leak
// test, not a timing test: it prints start / middle / end and asserts that the figures stay
// within a generous bound of the warmed-up ones. Run: `node --test soak.test.mjs` here.
//
// ARPG_E2E_SOAK_N sets the number of CPU generations (default 100). The WebGPU soak (software
// adapter, tiny checkpoint) is opt-in, ARPG_E2E_WEBGPU_SOAK=N generations: SwiftShader is ~40x
// slower than the CPU backend and compiles kernels for every new shape.

import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";
import * as h from "./harness.mjs";

const N = Number(process.env.ARPG_E2E_SOAK_N || 100);
const GPU_N = Number(process.env.ARPG_E2E_WEBGPU_SOAK || 0);
const MiB = 2 ** 20;

/** The JS heap of the page and of its dedicated worker, after a GC in each, in bytes. */
async function heaps(context, page) {
  const cdp = await context.newCDPSession(page);
  try {
    await cdp.send("HeapProfiler.collectGarbage");
    const pageHeap = (await cdp.send("Runtime.getHeapUsage")).usedSize;
    // The worker: attach to its target and talk to it through the (non-flat) target messages.
    const { targetInfos } = await cdp.send("Target.getTargets");
    const target = targetInfos.find((t) => t.type === "worker" && t.url.endsWith("/worker.js"));
    let workerHeap = null;
    if (target) {
      const { sessionId } = await cdp.send("Target.attachToTarget", { targetId: target.targetId, flatten: false });
      let id = 0;
      const call = (method) => new Promise((resolve, reject) => {
        const mine = ++id;
        const timer = setTimeout(() => reject(new Error(`${method}: no answer`)), 10_000);
        const on = (ev) => {
          if (ev.sessionId !== sessionId) return;
          const msg = JSON.parse(ev.message);
          if (msg.id !== mine) return;
          cdp.off("Target.receivedMessageFromTarget", on);
          clearTimeout(timer);
          msg.error ? reject(new Error(msg.error.message)) : resolve(msg.result);
        };
        cdp.on("Target.receivedMessageFromTarget", on);
        cdp.send("Target.sendMessageToTarget", { sessionId, message: JSON.stringify({ id: mine, method }) });
      });
      try {
        await call("HeapProfiler.collectGarbage");
        workerHeap = (await call("Runtime.getHeapUsage")).usedSize;
      } finally {
        await cdp.send("Target.detachFromTarget", { sessionId }).catch(() => {});
      }
    }
    return { pageHeap, workerHeap };
  } finally {
    await cdp.detach();
  }
}

/** Wrap the worker's GPUDevice.createBuffer / GPUBuffer.destroy: live bytes of the buffers made
 * from now on (burn keeps a memory pool, so these settle once every shape has been seen). */
function trackGpuBuffers(worker) {
  return worker.evaluate(() => {
    const live = new Map();
    self.__gpuBuffers = { live, created: 0 };
    const create = GPUDevice.prototype.createBuffer;
    GPUDevice.prototype.createBuffer = function (desc) {
      const b = create.call(this, desc);
      live.set(b, desc.size);
      self.__gpuBuffers.created++;
      return b;
    };
    const destroy = GPUBuffer.prototype.destroy;
    GPUBuffer.prototype.destroy = function () {
      live.delete(this);
      return destroy.call(this);
    };
  });
}

const gpuBytes = (worker) => worker.evaluate(() => {
  let bytes = 0;
  for (const v of self.__gpuBuffers.live.values()) bytes += v;
  return { bytes, buffers: self.__gpuBuffers.live.size, created: self.__gpuBuffers.created };
});

async function generateOnce(page) {
  await page.evaluate(() => (document.body.dataset.run = ""));
  await page.click("#generate");
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.run), null, { timeout: 600_000, polling: 20 });
  const run = await page.evaluate(() => document.body.dataset.run);
  assert.equal(run, "done", await page.textContent("#stats"));
}

const mib = (b) => (b === null || b === undefined ? "n/a" : (b / MiB).toFixed(2));

/** Run `n` generations, sampling at 0 (after load), 1, 10, n/4, n/2, 3n/4 and n. */
async function soak({ context, page, worker, n, gpu }) {
  const at = new Set([1, Math.min(10, n), Math.round(n / 4), Math.round(n / 2), Math.round((3 * n) / 4), n]);
  const samples = [];
  const sample = async (gen, ms) => {
    const s = { gen, ms, wasm: await worker.evaluate(() => self.__arpg.wasmBytes), ...(await heaps(context, page)) };
    if (gpu) Object.assign(s, { gpu: await gpuBytes(worker) });
    samples.push(s);
    console.log(`# gen ${String(gen).padStart(4)}: wasm memory ${mib(s.wasm)} MiB, page heap ${mib(s.pageHeap)} MiB, ` +
      `worker heap ${mib(s.workerHeap)} MiB${gpu ? `, live GPU buffers ${mib(s.gpu.bytes)} MiB (${s.gpu.buffers})` : ""}` +
      (ms ? `, ${ms.toFixed(0)} ms/generation` : ""));
  };
  await sample(0, null);
  let t0 = Date.now();
  let since = 0;
  for (let gen = 1; gen <= n; gen++) {
    await generateOnce(page);
    if (at.has(gen)) {
      await sample(gen, (Date.now() - t0) / (gen - since));
      t0 = Date.now();
      since = gen;
    }
  }
  assert.equal((await page.evaluate(() => window.__arpg.client.stats)).workers, 1, "the worker was restarted");
  return samples;
}

/** End vs the warmed-up sample (after 10 generations, or the first): within `bound` bytes. */
function assertFlat(samples, key, bound, get = (s) => s[key]) {
  const warm = samples.find((s) => s.gen >= 10) || samples[1];
  const end = samples[samples.length - 1];
  if (get(warm) === null || get(end) === null) return;
  const growth = get(end) - get(warm);
  console.log(`# ${key}: start ${mib(get(samples[0]))} MiB, after ${warm.gen} ${mib(get(warm))} MiB, end ${mib(get(end))} MiB (${growth >= 0 ? "+" : ""}${(growth / 1024).toFixed(0)} KiB)`);
  assert.ok(growth <= bound, `${key} grew by ${mib(growth)} MiB from generation ${warm.gen} to ${end.gen} (bound ${mib(bound)} MiB)`);
}

test(`soak: ${N} generations on the CPU backend (batch 1, 4 steps), memory flat`, { timeout: 900_000 }, async () => {
  const root = h.makeRoot();
  const server = await h.serve(root.dir);
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const page = await context.newPage();
    await page.goto(`${server.origin}/?backend=cpu&batch=1&steps=4&auto=0`);
    await page.waitForFunction(() => document.body.dataset.engine === "ready", null, { timeout: 60_000 });
    const worker = page.workers()[0];
    const samples = await soak({ context, page, worker, n: N, gpu: false });
    assertFlat(samples, "wasm", 4 * MiB);
    assertFlat(samples, "pageHeap", 4 * MiB);
    assertFlat(samples, "workerHeap", 4 * MiB);
    h.assertClean(w);
  } finally {
    await close();
    await server.stop();
    fs.rmSync(root.dir, { recursive: true, force: true });
  }
});

test(`soak: ${GPU_N} generations on forced WebGPU (software adapter, tiny checkpoint), GPU buffers flat`, { skip: GPU_N ? false : "opt-in: ARPG_E2E_WEBGPU_SOAK=N", timeout: 3_600_000 }, async () => {
  const root = h.makeRoot({ preset: "test" });
  const server = await h.serve(root.dir);
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const page = await context.newPage();
    await page.goto(`${server.origin}/?backend=webgpu&batch=1&steps=4&auto=0`);
    await page.waitForFunction(() => document.body.dataset.engine === "ready", null, { timeout: 300_000 });
    assert.equal(await page.textContent("#backend"), "WebGPU");
    const worker = page.workers()[0];
    await trackGpuBuffers(worker);
    const samples = await soak({ context, page, worker, n: GPU_N, gpu: true });
    assert.equal(await page.textContent("#backend"), "WebGPU", "the soak left WebGPU");
    assertFlat(samples, "gpu", MiB, (s) => s.gpu.bytes);
    assertFlat(samples, "wasm", 4 * MiB);
    h.assertClean(w);
  } finally {
    await close();
    await server.stop();
    fs.rmSync(root.dir, { recursive: true, force: true });
  }
});
