// Faults and bad inputs in the browser (issue 6): cancel, double requests, a crashed or closed
// worker, a lost WebGPU device, bad checkpoints, and out-of-range options and files through the
// wasm API and the UI. After each: a readable message, no page crash, the app still generates,
// and the paint tool's image and mask are kept. Run: `node --test faults.test.mjs` here (with
// ARPG_ROOT, ARPG_BIN and CHROMIUM_PATH as for `npm test`).

import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { after, before, test } from "node:test";
import * as h from "./harness.mjs";

let root; // the repo's model (or the harness's stand-in), CPU tests
let server;

before(async () => {
  root = h.makeRoot();
  server = await h.serve(root.dir);
  console.log(`# serving ${root.dir} at ${server.origin}; model ${root.model.file}`);
});

after(async () => {
  await server?.stop();
  if (root) fs.rmSync(root.dir, { recursive: true, force: true });
});

// ------------------------------------------------------------------ helpers

/** Wait until the current job ends; returns {run, stats, notice}. */
async function settled(page, timeout = 120_000) {
  await page.waitForFunction(() => ["done", "error", "cancelled"].includes(document.body.dataset.run), null, { timeout });
  return page.evaluate(() => ({
    run: document.body.dataset.run,
    stats: document.querySelector("#stats").textContent,
    notice: document.querySelector("#notice").hidden ? "" : document.querySelector("#notice").textContent,
  }));
}

async function expectDone(page, timeout) {
  const s = await settled(page, timeout);
  assert.equal(s.run, "done", `the job did not finish: ${s.stats} / ${s.notice}`);
  return s;
}

/** Start a job with `start()` and wait until its first decoding step has reached the page. */
async function startJob(page, start) {
  await page.evaluate(() => (document.body.dataset.run = ""));
  await start();
  await page.waitForFunction(() => / step \d+\/\d+|^step \d+\/\d+/.test(document.querySelector("#stats").textContent), null, {
    timeout: 60_000, polling: 10,
  });
}

/** Make the worker busy-wait `ms` after each step it reports (0: not at all), by wrapping its
 * `postMessage`: a job then takes at least its steps times `ms`. */
async function holdSteps(worker, ms) {
  await worker.evaluate((ms) => {
    self.__unheldPost ??= self.postMessage.bind(self);
    self.postMessage = (msg, transfer) => {
      self.__unheldPost(msg, transfer);
      if (msg?.type === "step") for (const end = performance.now() + ms; performance.now() < end;);
    };
  }, ms);
}

/** The page's one model worker, once it answers (after a restart the old one may linger briefly). */
async function modelWorker(page) {
  for (let i = 0; i < 200; i++) {
    const ws = page.workers();
    if (ws.length === 1) {
      const ok = await ws[0].evaluate(() => !!self.__arpg).catch(() => false);
      if (ok) return ws[0];
    }
    await page.waitForTimeout(50);
  }
  throw new Error(`no single model worker: ${page.workers().length}`);
}

const clientStats = (page) => page.evaluate(() => ({ ...window.__arpg.client.stats }));
const workerStats = (w) => w.evaluate(() => ({ ...self.__arpg.stats }));

/** Record every notice the client emits (job notices are cleared once the next job is done). */
const recordNotices = (page) => page.evaluate(() => {
  window.__notices = [];
  window.__arpg.client.addEventListener("notice", ({ detail }) => window.__notices.push(detail.text));
});
const notices = (page) => page.evaluate(() => window.__notices);

async function classPage(context, query) {
  const page = await context.newPage();
  await page.goto(`${server.origin}/?auto=0&${query}`);
  await page.waitForFunction(() => document.body.dataset.engine === "ready", null, { timeout: 60_000 });
  await recordNotices(page);
  return page;
}

async function lastImage(page) {
  return page.evaluate(() => Array.from(window.__arpg.last.images[0].pixels));
}

/** The paint tool's image and mask, in the page and in IndexedDB (after the debounced write). */
async function paintState(page) {
  await page.waitForTimeout(400);
  return page.evaluate(async () => {
    const store = await import("/store.js");
    const saved = await store.get(`paint.${window.__arpg.client.model.id}`);
    const a = window.__arpg;
    return {
      size: [a.image.width, a.image.height],
      image: Array.from(a.image.pixels),
      mask: Array.from(a.mask),
      saved: { size: [saved.image.width, saved.image.height], image: Array.from(saved.image.pixels), mask: Array.from(saved.mask) },
    };
  });
}

function assertKept(state, ref, what) {
  assert.deepEqual(state.size, ref.size, `${what}: image size`);
  assert.deepEqual(state.mask, ref.mask, `${what}: mask`);
  assert.deepEqual(state.image, ref.image, `${what}: image`);
  assert.deepEqual(state.saved, { size: ref.size, image: ref.image, mask: ref.mask }, `${what}: IndexedDB copy`);
}

/** Pixels outside the masked tokens are those of `ref`, and the mask is unchanged. */
function assertInpainted(state, ref, what) {
  assert.deepEqual(state.size, ref.size, `${what}: image size`);
  assert.deepEqual(state.mask, ref.mask, `${what}: mask`);
  const [w] = state.size;
  const gw = w / 4;
  let kept = 0;
  for (let i = 0; i < state.image.length; i++) {
    const cell = Math.floor(Math.floor(i / w) / 4) * gw + Math.floor((i % w) / 4);
    if (!ref.mask[cell]) {
      kept++;
      assert.equal(state.image[i], ref.image[i], `${what}: pixel ${i} outside the mask changed`);
    }
  }
  assert.ok(kept > 0, `${what}: the mask covers everything`);
  assert.deepEqual(state.saved, { size: state.size, image: state.image, mask: state.mask }, `${what}: IndexedDB copy`);
}

/** A notice in the user's words: no JS error name, "Uncaught", wasm trap text or stack frame. */
function assertPlain(text) {
  assert.doesNotMatch(text, /\b[A-Z]\w*Error\b|Uncaught|unreachable|\n\s*at\s|\w+\.m?js:\d+/, `raw error text in "${text}"`);
}

/** Paint the mask with the mouse: brush size `size`, one stroke per [x0, y0, x1, y1] (0..1). */
async function paintMask(page, strokes, size = 2) {
  await page.evaluate((n) => {
    const s = document.querySelector("#size");
    s.value = String(n);
    s.dispatchEvent(new Event("input"));
  }, size);
  const box = await page.locator("#view").boundingBox();
  for (const [x0, y0, x1, y1] of strokes) {
    await page.mouse.move(box.x + box.width * x0, box.y + box.height * y0);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * x1, box.y + box.height * y1, { steps: 10 });
    await page.mouse.up();
  }
}

// ------------------------------------------------------------------ cancel and double requests

test("cancel stops the job at a step boundary and keeps the worker and its model; a double click runs one job at a time", async () => {
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const page = await classPage(context, "backend=cpu&batch=16&steps=64&seed=1");
    const worker = await modelWorker(page);

    await startJob(page, () => page.click("#generate"));
    const t0 = Date.now();
    await page.click("#cancel");
    const s = await settled(page, 10_000);
    const wall = Date.now() - t0;
    assert.equal(s.run, "cancelled");
    assert.equal(s.stats, "cancelled");
    assert.equal(s.notice, "generation cancelled");
    await page.waitForFunction(() => window.__arpg.client.stats.lastCancelMs !== null, null, { timeout: 10_000 });
    let c = await clientStats(page);
    let ws = await workerStats(worker);
    console.log(`# cancel: the worker stopped the job ${c.lastCancelMs.toFixed(0)} ms after the cancel message (${wall} ms click to "cancelled" in the page)`);
    assert.deepEqual([c.workers, c.loads, c.cancels, c.forcedRestarts, c.recoveries], [1, 1, 1, 0, 0], "the worker was restarted");
    assert.deepEqual([ws.loads, ws.started, ws.cancelled, ws.finished], [1, 1, 1, 0]);
    assert.ok(c.lastCancelMs < 2000, `the cancel took ${c.lastCancelMs} ms`);

    // The same worker and model generate again.
    await page.evaluate(() => (document.body.dataset.run = ""));
    await page.click("#generate");
    await expectDone(page);
    assert.ok(h.nonBlank(await lastImage(page)), "blank image after the cancel");
    assert.equal(page.workers()[0], worker, "another worker");

    // Double click: the first job is cancelled (and said so), the second runs; never two at once.
    await page.evaluate(() => (document.body.dataset.run = ""));
    await page.dblclick("#generate");
    await expectDone(page);
    c = await clientStats(page);
    ws = await workerStats(worker);
    assert.ok((await notices(page)).includes("the previous job was cancelled for the new one"), `notices: ${await notices(page)}`);
    assert.deepEqual([c.workers, c.loads, c.cancels, c.forcedRestarts], [1, 1, 2, 0]);
    // The older job may be stopped before or after its first step: started 3 or 4.
    assert.deepEqual([ws.loads, ws.cancelled, ws.finished, ws.maxRunning], [1, 2, 2, 1]);
    assert.ok([3, 4].includes(ws.started), `started ${ws.started}`);
    assert.equal(await page.locator("#cancel").isDisabled(), true);
    assert.equal(await page.locator("#notice").isHidden(), true, "the cancel notice outlived the next job");
    h.assertClean(w);
  } finally {
    await close();
  }
});

test("a click while the class page's own first job runs replaces it without a notice", async () => {
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const page = await context.newPage();
    await page.goto(`${server.origin}/?backend=cpu&batch=16&steps=64&seed=5`);
    await page.waitForFunction(() => / step \d+\/\d+|^step \d+\/\d+/.test(document.querySelector("#stats").textContent), null, {
      timeout: 60_000, polling: 10,
    });
    await recordNotices(page);
    await page.evaluate(() => (document.body.dataset.run = ""));
    await page.click("#generate");
    await expectDone(page);
    assert.deepEqual(await notices(page), []);
    assert.equal(await page.locator("#notice").isHidden(), true);
    const c = await clientStats(page);
    assert.deepEqual([c.workers, c.cancels], [1, 1], "the page's own job was not the one replaced");
    h.assertClean(w);
  } finally {
    await close();
  }
});

// ------------------------------------------------------------------ crashed and closed workers

test("a worker that crashes or closes mid-generation is restarted, the job runs again, and the page generates on", async () => {
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const page = await classPage(context, "backend=cpu&batch=16&steps=64&seed=2");

    // An uncaught error in the worker.
    await startJob(page, () => page.click("#generate"));
    let t0 = Date.now();
    await (await modelWorker(page)).evaluate(() => setTimeout(() => { throw new Error("injected fault"); }, 0));
    let s = await expectDone(page);
    console.log(`# worker crash: the re-run job's image ${Date.now() - t0} ms after the fault`);
    assert.equal(s.notice, "the model stopped unexpectedly — restarting the model; the interrupted job runs again");
    assert.ok(h.nonBlank(await lastImage(page)));
    let c = await clientStats(page);
    assert.deepEqual([c.workers, c.loads, c.recoveries], [2, 2, 1]);

    // A worker that closes itself sends nothing: the liveness check (pings between steps) notices.
    await page.evaluate(() => Object.assign(window.__arpg.client, { hangMs: 3000, loadMs: 0 })); // limit: 3 s
    await startJob(page, () => page.click("#generate"));
    t0 = Date.now();
    await (await modelWorker(page)).evaluate(() => setTimeout(() => self.close(), 0));
    s = await expectDone(page);
    console.log(`# closed worker: the re-run job's image ${Date.now() - t0} ms after the close (liveness limit 3 s)`);
    assert.match(s.notice, /^the model worker stopped answering for 3 s — restarting the model; the interrupted job runs again$/);
    c = await clientStats(page);
    assert.deepEqual([c.workers, c.loads, c.recoveries], [3, 3, 2]);

    // And it generates on, with no further restart.
    await page.evaluate(() => (window.__arpg.client.hangMs = 20_000, document.body.dataset.run = ""));
    await page.click("#generate");
    await expectDone(page);
    assert.ok(h.nonBlank(await lastImage(page)));
    assert.equal((await clientStats(page)).workers, 3);
    h.assertClean(w);
  } finally {
    await close();
  }
});

// Each way the worker can fail while a job runs, as the page reports it: the notice says what
// happened and what happens next, never the browser's error text (that goes to the console).
const FAULTS = {
  "an uncaught Error": () => setTimeout(() => { throw new Error("injected fault"); }, 0),
  "an uncaught TypeError": () => setTimeout(() => null.x, 0),
  "a thrown string": () => setTimeout(() => { throw "injected string"; }, 0),
  // A real wasm trap ("RuntimeError: unreachable", what a Rust panic gives): a 1-function module.
  "a wasm trap": () => {
    const bytes = [0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 5, 1, 3, 0, 0, 11];
    const trap = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(bytes))).exports.f;
    setTimeout(trap, 0);
  },
};

test("every worker crash reads as a plain notice: no JS error name, trap text or stack", async () => {
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const page = await classPage(context, "backend=cpu&batch=16&steps=64&seed=2");
    for (const [name, fault] of Object.entries(FAULTS)) {
      await startJob(page, () => page.click("#generate"));
      await (await modelWorker(page)).evaluate(fault);
      const s = await expectDone(page);
      assert.equal(s.notice, "the model stopped unexpectedly — restarting the model; the interrupted job runs again", name);
      assertPlain(s.notice);
      assertPlain(s.stats);
    }
    // The hang: a worker that closes itself.
    await page.evaluate(() => Object.assign(window.__arpg.client, { hangMs: 3000, loadMs: 0 })); // limit: 3 s
    await startJob(page, () => page.click("#generate"));
    await (await modelWorker(page)).evaluate(() => setTimeout(() => self.close(), 0));
    assertPlain((await expectDone(page)).notice);
    assert.equal((await clientStats(page)).recoveries, Object.keys(FAULTS).length + 1);
    h.assertClean(w);
  } finally {
    await close();
  }
});

test("paint tool: the image and mask survive a cancel, a double request, a worker crash and a reload", async () => {
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const page = await context.newPage();
    await page.goto(`${server.origin}/paint.html?backend=cpu&seed=5&steps=64&class=3`);
    await expectDone(page, 60_000); // the first image is generated on its own
    await recordNotices(page);
    // Most of the image: a long in-painting job (one token per step).
    await paintMask(page, [[0.05, 0.35, 0.95, 0.35]], 6);
    let ref = await paintState(page);
    const cells = ref.mask.reduce((a, b) => a + b, 0);
    assert.ok(cells > 24 && cells < 64, `painted ${cells} tokens`);
    const worker = await modelWorker(page);

    // Cancel (Esc) mid-job: nothing changes. The job is short (one token a step, at most 64
    // steps of batch 1), so each step is held 100 ms in the worker: the key then arrives while it
    // runs, however loaded the machine (unheld, a busy machine finished it first).
    await holdSteps(worker, 100);
    await startJob(page, () => page.keyboard.press("i"));
    await page.keyboard.press("Escape");
    let s = await settled(page);
    await holdSteps(worker, 0);
    assert.equal(s.run, "cancelled");
    assert.equal(s.notice, "edit cancelled");
    assertKept(await paintState(page), ref, "after a cancel");

    // Two in-paint requests at once: the first is cancelled, the second applies.
    await page.evaluate(() => (document.body.dataset.run = ""));
    await page.keyboard.press("i");
    await page.keyboard.press("i");
    await expectDone(page);
    assert.ok((await notices(page)).includes("the previous job was cancelled for the new one"));
    const once = await paintState(page);
    assertInpainted(once, ref, "after a double request");
    assert.notDeepEqual(once.image, ref.image, "the in-painting changed nothing");
    assert.equal(page.workers()[0], worker, "the worker was restarted");
    assert.deepEqual((await workerStats(worker)).maxRunning, 1);
    ref = once;

    // A crash during a job: the worker restarts, the job runs again (unless it was just done:
    // an injected JS error does not stop the wasm, a panic would) and applies; the mask is kept.
    await startJob(page, () => page.keyboard.press("i"));
    await worker.evaluate(() => setTimeout(() => { throw new Error("injected fault"); }, 0));
    await page.waitForFunction(() => window.__arpg.client.stats.recoveries === 1, null, { timeout: 30_000 });
    s = await expectDone(page);
    assert.match(s.notice, /^the model stopped unexpectedly — restarting the model(; the interrupted job runs again)?$/);
    console.log(`# paint tool, crash: ${s.notice}`);
    const crashed = await paintState(page);
    assertInpainted(crashed, ref, "after a crash");

    // And the state survives a reload.
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.engine === "ready" && window.__arpg.image, null, { timeout: 60_000 });
    assertKept(await paintState(page), crashed, "after a reload");
    h.assertClean(w);
  } finally {
    await close();
  }
});

// ------------------------------------------------------------------ WebGPU device lost

// The tiny `arpg init --preset test` checkpoint keeps the software adapter's start short; the device
// is destroyed while the first in-painting job is in the worker, before its first step is done
// (docs/reliability.md has the measured times).
test("WebGPU device lost mid-job (tiny checkpoint): the model restarts on the CPU with a notice, the job completes, image and mask kept", { timeout: 300_000 }, async () => {
  const tiny = h.makeRoot({ preset: "test" });
  const own = await h.serve(tiny.dir);
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, own.origin);
    const page = await context.newPage();
    // An image and a mask, made on the CPU.
    await page.goto(`${own.origin}/paint.html?backend=cpu&seed=4&steps=16&class=1`);
    await expectDone(page, 60_000);
    await paintMask(page, [[0.1, 0.2, 0.9, 0.3]], 2);
    const ref = await paintState(page);
    assert.deepEqual(ref.size, [16, 16]);

    // The same state on forced WebGPU.
    const t0 = Date.now();
    await page.goto(`${own.origin}/paint.html?backend=webgpu&seed=4&steps=16&class=1`);
    await page.waitForFunction(() => document.body.dataset.engine === "ready" || document.body.dataset.engine === "error", null, { timeout: 120_000 });
    assert.equal(await page.textContent("#backend"), "WebGPU", await page.textContent("#status"));
    console.log(`# forced WebGPU (software adapter, tiny checkpoint): ready ${Date.now() - t0} ms after navigation`);
    assertKept(await paintState(page), ref, "restored on WebGPU");
    await recordNotices(page);
    const worker = await modelWorker(page);
    assert.equal(await worker.evaluate(() => self.__arpg.gpu.devices.length), 1);

    // Destroy the device at the worker's first free moment once the job has started.
    await worker.evaluate(() => {
      const timer = setInterval(() => {
        if (!self.__arpg.stats.running) return;
        clearInterval(timer);
        self.__arpg.gpu.devices[0].destroy();
        self.postMessage({ type: "test-destroyed" });
      }, 1);
    });
    await page.evaluate(() => {
      document.body.dataset.run = "";
      window.__arpg.client.worker.addEventListener("message", ({ data }) => {
        if (data.type === "test-destroyed") window.__destroyedAt = performance.now();
      });
    });
    const t1 = Date.now();
    await page.keyboard.press("i");
    const s = await expectDone(page, 120_000);
    const after = await page.evaluate(() => performance.now() - window.__destroyedAt);
    console.log(`# device lost: the job's result on the CPU ${Date.now() - t1} ms after the job was sent, ${after.toFixed(0)} ms after device.destroy()`);
    assert.match(s.notice, /^WebGPU device lost \(.+\) — restarting the model on the CPU; the interrupted job runs again$/);
    assertPlain(s.notice);
    assert.equal(await page.textContent("#backend"), "CPU");
    const c = await clientStats(page);
    assert.deepEqual([c.workers, c.recoveries], [2, 1]);
    assertInpainted(await paintState(page), ref, "after the device loss");
    // The notice stays (it says why the model now runs on the CPU), and the page works on.
    await page.evaluate(() => (document.body.dataset.run = ""));
    await page.keyboard.press("i");
    await expectDone(page);
    assert.match(await page.textContent("#notice"), /WebGPU device lost/);
    // The panic the lost device causes in the worker (burn reads a GPU buffer back and fails).
    const allowed = h.assertClean(w, [/^console: panicked at .*\n(Failed to map buffer|.*device.*(lost|destroyed))/i]);
    if (allowed.length) console.log(`# console errors allowed (device lost): ${allowed.length}, e.g. ${allowed[0].slice(0, 160)}`);
  } finally {
    await close();
    await own.stop();
    fs.rmSync(tiny.dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ bad checkpoints

test("bad checkpoints (wrong or no hash, corrupt, truncated, missing, an HTML page): a clear message and Retry, then the fixed model generates", async () => {
  const bad = h.makeRoot({ preset: "test" });
  const own = await h.serve(bad.dir);
  const models = path.join(bad.dir, "www/models");
  const manifest = path.join(models, "manifest.json");
  const good = fs.readFileSync(path.join(models, bad.model.file));
  const sha = (b) => crypto.createHash("sha256").update(b).digest("hex");
  const serveModel = (file, bytes, hash = sha(bytes)) => {
    if (bytes) h.replaceFile(path.join(models, file), bytes);
    h.writeManifest(manifest, { file, sha256: hash });
  };
  const corrupt = Buffer.from(good);
  corrupt[corrupt.length - 100] ^= 0x40;
  const html = fs.readFileSync(path.join(bad.dir, "www/index.html")); // a server's fallback page
  const cases = [
    ["wrong hash", () => serveModel(bad.model.file, null, "0".repeat(64)),
      /^Could not start the model: checkpoint hash mismatch: expected 0{64}, got [0-9a-f]{64} Retry$/],
    ["no hash in the manifest", () => h.writeManifest(manifest, { file: bad.model.file }),
      /^Could not start the model: the model manifest has no valid sha256 Retry$/],
    ["corrupt bytes", () => serveModel("corrupt.arpg", corrupt),
      /^Could not start the model: checkpoint checksum mismatch: the file is corrupted or truncated Retry$/],
    ["truncated", () => serveModel("cut.arpg", good.subarray(0, 20)),
      /^Could not start the model: checkpoint is too short: 20 bytes, a checkpoint has at least \d+ Retry$/],
    ["missing", () => serveModel("gone.arpg", null, "1".repeat(64)),
      /^Could not start the model: cannot fetch the checkpoint \(\/models\/gone\.arpg\?v=1{64}\): HTTP 404 Retry$/],
    ["an HTML page", () => serveModel("page.arpg", html),
      /^Could not start the model: not an ARPG checkpoint \(bad magic bytes\) Retry$/],
  ];
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, own.origin);
    const page = await context.newPage();
    for (const [name, breakIt, message] of cases) {
      breakIt();
      await page.goto(`${own.origin}/?backend=cpu&batch=1&steps=4&seed=3`);
      await page.waitForFunction(() => document.body.dataset.engine === "error", null, { timeout: 60_000 });
      const text = await page.textContent("#notice");
      console.log(`# ${name}: ${text}`);
      assert.match(text, message, name);
      assert.equal(await page.textContent("#backend"), "no model");
      // Fix it, press Retry: the model loads and the first image comes.
      serveModel(bad.model.file, null, bad.model.sha256);
      await page.evaluate(() => (document.body.dataset.run = ""));
      await page.click("#notice button");
      await expectDone(page, 60_000);
      assert.equal(await page.locator("#notice").isHidden(), true, `${name}: the error notice stayed`);
      assert.ok(h.nonBlank(await lastImage(page)), name);
    }
    h.assertClean(w, [/status of 404/]);
  } finally {
    await close();
    await own.stop();
    fs.rmSync(bad.dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ bad options and files

test("options out of range through the wasm API and the UI: readable errors, no crash, the app generates on", async () => {
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const page = await classPage(context, "backend=cpu&batch=1&steps=4&seed=1");
    const info = await page.evaluate(() => window.__arpg.client.info);
    const T = info.gridH * info.gridW;
    const n = info.nClasses;
    const side = info.gridW * info.factor;
    // [what, op, args, expected message]; `img` is a valid image, `cls` the class of the edits.
    const cases = [
      ["steps 0", "generate", { classes: [0], options: { steps: 0 } }, `invalid option: steps must be between 1 and ${T}, got 0`],
      [`steps T+1 (${T + 1})`, "generate", { classes: [0], options: { steps: T + 1 } }, `invalid option: steps must be between 1 and ${T}, got ${T + 1}`],
      ["steps -1", "generate", { classes: [0], options: { steps: -1 } }, "steps must be an integer in 0..=2^32-1, got -1"],
      ["steps 1.5", "generate", { classes: [0], options: { steps: 1.5 } }, "steps must be an integer in 0..=2^32-1, got 1.5"],
      ["steps 2^40", "generate", { classes: [0], options: { steps: 2 ** 40 } }, "steps must be an integer in 0..=2^32-1, got 1099511627776"],
      ["top-k -3", "generate", { classes: [0], options: { topK: -3 } }, "topK must be an integer in 0..=2^32-1, got -3"],
      ["cfg 'abc'", "generate", { classes: [0], options: { cfg: "abc" } }, 'options: invalid type: string "abc", expected f32'],
      ["cfg NaN", "generate", { classes: [0], options: { cfg: NaN } }, "invalid option: cfg must be a finite number >= 0, got NaN"],
      ["cfg -1", "generate", { classes: [0], options: { cfg: -1 } }, "invalid option: cfg must be a finite number >= 0, got -1"],
      ["temperature -1", "generate", { classes: [0], options: { temperature: -1 } }, "invalid option: temperature must be >= 0 (0: the most likely code), got -1"],
      ["top-p 1.5", "generate", { classes: [0], options: { topP: 1.5 } }, "invalid option: top_p must be in (0, 1], got 1.5"],
      ["schedule 'fast'", "generate", { classes: [0], options: { schedule: "fast" } }, "unknown schedule 'fast' (arccos, cosine, linear)"],
      ["order 'sideways'", "generate", { classes: [0], options: { order: "sideways" } }, "unknown order 'sideways' (random, confidence, listed)"],
      ["out-paint side -1", "outpaint", { image: "img", sides: { left: -1 }, class: 0 }, /^sides: invalid type: floating point `-1(\.0)?`, expected usize$/],
      ["seed 2^53", "generate", { classes: [0], options: { seed: 2 ** 53 } }, "seed must be an integer in 0..=2^53-1, got 9007199254740992"],
      ["seed -1", "generate", { classes: [0], options: { seed: -1 } }, "seed must be an integer in 0..=2^53-1, got -1"],
      ["seed 1.5", "generate", { classes: [0], options: { seed: 1.5 } }, "seed must be an integer in 0..=2^53-1, got 1.5"],
      [`class ${n}`, "generate", { classes: [n] }, `invalid option: class ${n} out of range (0..${n})`],
      ["class -1", "generate", { classes: [-1] }, "class must be a non-negative integer, got -1"],
      ["class 2^32 (no longer wraps to 0)", "generate", { classes: [2 ** 32] }, "class must be a non-negative integer, got 4294967296"],
      ["class 1.5", "generate", { classes: [1.5] }, "class must be a non-negative integer, got 1.5"],
      ["class 'Coat'", "generate", { classes: ["Coat"] }, "class must be a non-negative integer, got NaN"],
      ["no classes", "generate", { classes: [] }, "invalid option: at least one image is needed"],
      ["65 images", "generate", { classes: Array(65).fill(0) }, "at most 64 images per call, got 65"],
      ["classes not an array", "generate", { classes: 3 }, "classes must be an array of class ids"],
      ["in-paint class out of range", "inpaint", { image: "img", mask: "full", class: n }, `invalid option: class ${n} out of range (0..${n})`],
      ["image 200x200 (over the token budget)", "inpaint", { image: { width: 200, height: 200, pixels: "fill" }, mask: "full", class: 0 },
        "invalid input: a 200x200 image needs more than the budget of 1024 tokens"],
      ["image 5000 wide", "inpaint", { image: { width: 5000, height: 4, pixels: "fill" }, mask: "full", class: 0 }, "image: 'width' must be an integer in 1..=4096"],
      ["pixels too short", "inpaint", { image: { width: side, height: side, pixels: [1, 2, 3] }, mask: "full", class: 0 }, /^image: /],
      ["mask of another size", "inpaint", { image: "img", mask: { width: 8, height: 8, pixels: "fill" }, class: 0 }, `invalid input: the mask is 8x8 but the image is ${side}x${side}`],
      ["empty mask", "inpaint", { image: "img", mask: "empty", class: 0 }, "invalid input: the mask is empty: nothing to regenerate"],
      ["out-paint 1000 tokens", "outpaint", { image: "img", sides: { right: 1000 }, class: 0 }, /^invalid option: out-painting: a \d+x\d+ token grid exceeds the budget of 1024 tokens$/],
      ["out-paint no side", "outpaint", { image: "img", sides: {}, class: 0 }, "invalid option: out-painting needs at least one side to extend"],
      ["expand x5", "expand", { image: "img", factor: 5, class: 0 }, "invalid option: expansion factor must be 2, 3 or 4, got 5"],
      ["unknown operation", "explode", { classes: [0] }, "unknown operation explode"],
    ];
    const results = await page.evaluate(async ({ cases, side }) => {
      const fill = (wd, ht, v) => ({ width: wd, height: ht, pixels: new Uint8Array(wd * ht).fill(v) });
      const img = fill(side, side, 90);
      const out = [];
      for (const [what, op, args] of cases) {
        const a = structuredClone(args);
        if (a.image === "img") a.image = img;
        else if (a.image && a.image.pixels === "fill") a.image = fill(a.image.width, a.image.height, 90);
        if (a.mask === "full") a.mask = fill(a.image.width, a.image.height, 255);
        else if (a.mask === "empty") a.mask = fill(side, side, 0);
        else if (a.mask && a.mask.pixels === "fill") a.mask = fill(a.mask.width, a.mask.height, 255);
        a.options = { steps: 4, ...(a.options || {}) };
        out.push([what, await window.__arpg.client.run(op, a).then(() => "accepted", (e) => e.message)]);
      }
      return out;
    }, { cases: cases.map(([what, op, args]) => [what, op, args]), side });
    for (const [i, [what, message]] of results.entries()) {
      console.log(`# [wasm API] ${what}: ${message}`);
      const expected = cases[i][3];
      if (expected instanceof RegExp) assert.match(message, expected, what);
      else assert.equal(message, expected, what);
    }
    let c = await clientStats(page);
    assert.deepEqual([c.workers, c.recoveries], [1, 0], "a bad input crashed the worker");

    // The UI: bad values in the URL's settings, then a good run on the same page.
    for (const [query, message] of [
      [`seed=${2 ** 53}`, "error: seed must be an integer in 0..=2^53-1, got 9007199254740992"],
      [`class=${n + 2}`, `error: invalid option: class ${n + 2} out of range (0..${n})`],
    ]) {
      await page.goto(`${server.origin}/?backend=cpu&batch=1&steps=4&${query}`);
      const s = await settled(page, 60_000);
      console.log(`# [UI] ?${query}: ${s.stats}`);
      assert.equal(s.run, "error");
      assert.equal(s.stats, message);
      await page.click("#class-search"); // opens the class list
      await page.click('#class-list [data-class="2"]');
      await page.fill("#seed", "12");
      await page.evaluate(() => (document.body.dataset.run = ""));
      await page.click("#generate");
      await expectDone(page);
    }
    // Range inputs clamp what the URL asks for.
    await page.goto(`${server.origin}/?backend=cpu&batch=1000&steps=0&seed=3`);
    await expectDone(page, 60_000);
    c = await page.evaluate(() => ({ steps: window.__arpg.last.options.steps, n: window.__arpg.last.images.length }));
    assert.deepEqual(c, { steps: 1, n: 16 });
    h.assertClean(w);
  } finally {
    await close();
  }
});

test("PNG writer through the wasm API (encodePng): the text chunks as given, iTXt beyond Latin-1; bad images and texts refused with a message", async () => {
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const page = await classPage(context, "backend=cpu");
    const out = await page.evaluate(async () => {
      const m = await import("/pkg/cpu/arpg.js");
      await m.default();
      const img = { width: 3, height: 2, pixels: new Uint8Array([0, 50, 100, 150, 200, 255]) };
      const run = (f) => {
        try {
          return `accepted: ${f().length} bytes`;
        } catch (e) {
          return e.message;
        }
      };
      const bytes = m.encodePng(img, { Title: "grey", Comment: "café", Note: "☕ UTF-8" });
      return {
        png: btoa(String.fromCharCode(...bytes)),
        plain: run(() => m.encodePng({ width: 2, height: 1, pixels: [7, 9] })),
        errors: [
          run(() => m.encodePng(null, {})),
          run(() => m.encodePng({ width: 0, height: 2, pixels: [] }, {})),
          run(() => m.encodePng({ width: 2, height: 2, pixels: [1, 2, 3] }, {})),
          run(() => m.encodePng({ width: 2, height: 2 }, {})),
          run(() => m.encodePng(img, ["Title", "grey"])),
          run(() => m.encodePng(img, { Seed: 3 })),
          run(() => m.encodePng(img, { "": "no keyword" })),
          run(() => m.encodePng(img, { ["k".repeat(80)]: "too long" })),
        ],
      };
    });
    const bytes = Buffer.from(out.png, "base64");
    const png = h.readPng(bytes);
    assert.deepEqual([png.width, png.height, png.bitDepth, png.colorType], [3, 2, 8, 0]);
    assert.deepEqual(Object.entries(png.texts), [["Title", "grey"], ["Comment", "café"], ["Note", "☕ UTF-8"]]);
    assert.ok(bytes.includes("iTXtNote"), "the non-Latin-1 text is not an iTXt chunk");
    assert.deepEqual((await h.decodePng(page, bytes)).grey, [0, 50, 100, 150, 200, 255]);
    assert.match(out.plain, /^accepted: \d+ bytes$/, "texts are optional");
    assert.deepEqual(out.errors, [
      "image must be an object {width, height, pixels}",
      "image: 'width' must be an integer in 1..=4096",
      "image: a 2x2 grey image cannot have 3 values",
      "image: no pixels",
      "texts must be an object {keyword: text}",
      "texts: the text of 'Seed' must be a string",
      'cannot encode PNG: invalid text keyword "" (1-79 Latin-1 characters)',
      `cannot encode PNG: invalid text keyword "${"k".repeat(80)}" (1-79 Latin-1 characters)`,
    ]);
    h.assertClean(w);
  } finally {
    await close();
  }
});

/** A grey PNG of `width` x `height` (all pixels 0: small even when huge). */
function greyPng(width, height) {
  const crc = (buf) => {
    let c = ~0;
    for (const b of buf) {
      c ^= b;
      for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
    }
    return ~c >>> 0;
  };
  const chunk = (type, data) => {
    const t = Buffer.concat([Buffer.from(type), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(t));
    return Buffer.concat([len, t, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth; colour type 0 (grey)
  const raw = Buffer.alloc((width + 1) * Math.min(height, 64)); // the first rows only: enough for the header test
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", ihdr),
    chunk("IDAT", zlib.deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

test("paint tool: a file that is not an image, and a 10000x10000 PNG, are refused with a message; the image and mask stay", async () => {
  const { context, close } = await h.launch();
  try {
    const w = h.watch(context, server.origin);
    const page = await context.newPage();
    await page.goto(`${server.origin}/paint.html?backend=cpu&seed=6&steps=4&class=0`);
    await expectDone(page, 60_000);
    await paintMask(page, [[0.3, 0.3, 0.6, 0.6]], 2);
    const ref = await paintState(page);
    const files = [
      ["notes.png", Buffer.from("these are not pixels\n"), /^error: cannot open "notes\.png": not an image this browser can decode \(.+\)$/],
      ["huge.png", greyPng(10000, 10000), /^error: cannot open "huge\.png": the image is 10000x10000, more than the limit of 16777216 pixels$/],
      ["empty.png", Buffer.alloc(0), /^error: cannot open "empty\.png": not an image this browser can decode/],
    ];
    for (const [name, buffer, message] of files) {
      await page.evaluate(() => (document.body.dataset.run = ""));
      await page.setInputFiles("#file", { name, mimeType: "image/png", buffer });
      const s = await settled(page, 30_000);
      console.log(`# [UI] open ${name} (${buffer.length} bytes): ${s.stats}`);
      assert.equal(s.run, "error");
      assert.match(s.stats, message);
      assertKept(await paintState(page), ref, `after opening ${name}`);
    }
    // A good PNG opens (64x32: kept, a multiple of the token size), and in-painting works on it.
    await page.setInputFiles("#file", { name: "ok.png", mimeType: "image/png", buffer: greyPng(64, 32) });
    await page.waitForFunction(() => document.body.dataset.image === "64x32", null, { timeout: 30_000 });
    await paintMask(page, [[0.3, 0.3, 0.6, 0.6]], 2);
    await page.evaluate(() => (document.body.dataset.run = ""));
    await page.keyboard.press("i");
    await expectDone(page);
    h.assertClean(w);
  } finally {
    await close();
  }
});

test("before the WebGPU build is there (make run serves first), WebGPU runs on the CPU with a notice that says why; once pkg/gpu appears the page loads the model on it", { timeout: 300_000 }, async () => {
  const own = h.makeRoot({ preset: "test" });
  fs.rmSync(path.join(own.dir, "pkg/gpu"), { recursive: true });
  const ownServer = await h.serve(own.dir);
  const { context, close } = await h.launch();
  try {
    const page = await context.newPage();
    await page.goto(`${ownServer.origin}/?backend=webgpu&auto=0`);
    await page.waitForFunction(() => window.__arpg.client.info, null, { timeout: 60_000 });
    const info = await page.evaluate(() => window.__arpg.client.info);
    assert.deepEqual([info.backend, info.gpuPending], ["cpu", true]);
    assert.match(await page.locator("#notice").textContent(), /Running on the CPU: the WebGPU build \(pkg\/gpu\) is not there yet/);
    await page.evaluate(() => (window.__arpg.client.gpuWatchMs = 500, window.__arpg.client.watchGpuBuild(true)));
    fs.cpSync(path.join(h.ROOT, "pkg/gpu"), path.join(own.dir, "pkg/gpu"), { recursive: true });
    await page.waitForFunction(() => window.__arpg.client.info?.backend === "webgpu", null, { timeout: 120_000 });
    assert.match(await page.locator("#notice").textContent(), /The WebGPU build is there now/);
  } finally {
    await close();
    await ownServer.stop();
    fs.rmSync(own.dir, { recursive: true, force: true });
  }
});
