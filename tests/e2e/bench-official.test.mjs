// Browser benchmark of the paper's sizes (docs/performance.md, "The paper's models in the
// browser"): random weights of the official shapes (`arpg init --preset arpg-l|arpg-xl|arpg-xxl
// --dtype int8`), opened through the page's file input like a user's file, on the wasm CPU build
// (or ARPG_BENCH_BACKEND=webgpu). Prints figures; asserts only that the work ran. Not in
// `make test`: `npm run bench-official` (ARPG_BENCH_SIZE=l|xl|xxl, default l; ARPG_BENCH_STEPS,
// default "64,16", empty: load only; ARPG_BENCH_FILE: an existing checkpoint instead of a new
// one).
//
// - import: the check (checksum, header) and the copy into the origin-private file system;
// - load: from the stored file to the model ready (its checksum again, then one tensor at a time);
// - per step count: the first image after the load (batch 1), ms per step, and the VQ decode (the
//   job's time after its last step);
// - memory: the worker's wasm memory (it only grows, so it is the peak of the wasm heap) and the
//   peak resident memory of all Chromium processes, sampled every 250 ms.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import * as h from "./harness.mjs";

const SIZE = (process.env.ARPG_BENCH_SIZE || "l").toLowerCase();
const STEPS = (process.env.ARPG_BENCH_STEPS ?? "64,16").split(",").filter(Boolean).map(Number);
const BACKEND = process.env.ARPG_BENCH_BACKEND || "cpu";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "arpg-bench-official-"));
let root;
let server;
let file;

before(async () => {
  root = h.makeRoot();
  file = process.env.ARPG_BENCH_FILE;
  if (!file) {
    file = path.join(tmp, `arpg-${SIZE}-int8.arpg`);
    const t0 = Date.now();
    execFileSync(h.BIN, ["init", "--preset", `arpg-${SIZE}`, "--dtype", "int8", "--out", file], { stdio: ["ignore", "inherit", "inherit"] });
    console.log(`# arpg init --preset arpg-${SIZE} --dtype int8: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  server = await h.serve(root.dir);
});

after(async () => {
  await server?.stop();
  if (root) fs.rmSync(root.dir, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Resident memory (bytes) of every process whose command line names Chromium. */
function chromiumRss() {
  let total = 0;
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (!fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("chromium")) continue;
      const rss = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
      if (rss) total += Number(rss[1]) * 1024;
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}

const gib = (n) => `${(n / 2 ** 30).toFixed(2)} GiB`;
const s = (ms) => `${(ms / 1000).toFixed(1)} s`;

test(`bench: ARPG-${SIZE.toUpperCase()} int8 opened from a file, on the ${BACKEND} backend: import, load, first image, ms/step, VQ decode, memory`, { timeout: 3_600_000 }, async () => {
  const bytes = fs.statSync(file).size;
  console.log(`# file: ${file}, ${(bytes / 1e6).toFixed(1)} MB`);
  const { context, close } = await h.launch();
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, chromiumRss())), 250);
  try {
    const page = await context.newPage();
    page.on("console", (m) => m.type() === "error" && console.log(`# console: ${m.text()}`));
    await page.goto(`${server.origin}/?backend=${BACKEND}&batch=1&seed=1&auto=0`);
    await page.waitForFunction(() => window.__arpg.client.info, null, { timeout: 120_000 });
    const idle = chromiumRss();
    let t0 = Date.now();
    await page.setInputFiles("#model-file", file);
    await page.waitForFunction(() => window.__arpg.client.model?.local, null, { timeout: 1_800_000 });
    const importMs = Date.now() - t0;
    t0 = Date.now();
    await page.waitForFunction(
      () => (window.__arpg.client.model?.local && window.__arpg.client.info) || document.body.dataset.engine === "error",
      null, { timeout: 1_800_000 },
    );
    const loadMs = Date.now() - t0;
    if (await page.evaluate(() => document.body.dataset.engine === "error")) {
      // A size that does not fit (ARPG-XXL on the CPU) is refused: that is the figure.
      console.log(`# load refused after ${s(loadMs)}: ${await page.locator("#status").textContent()}`);
      return;
    }
    const info = await page.evaluate(() => ({ backend: window.__arpg.client.info.backend, reason: window.__arpg.client.info.reason }));
    console.log(`# import (check + store): ${s(importMs)}; load from storage: ${s(loadMs)} (${info.backend}: ${info.reason})`);
    for (const steps of STEPS) {
      await page.evaluate((n) => {
        const el = document.querySelector("#steps");
        el.value = String(n);
        el.dispatchEvent(new Event("input"));
      }, steps);
      t0 = Date.now();
      await h.clickAndWait(page, "#generate", 1_800_000);
      const out = await page.evaluate(() => {
        const { last } = window.__arpg;
        return { tokens: last.tokens.length, pixels: Array.from(last.images[0].pixels.subarray(0, 4096)) };
      });
      const stats = await page.locator("#stats").textContent();
      const timing = await page.evaluate(() => ({ stepMs: window.__arpg.last.stepMs, ms: window.__arpg.last.ms }));
      assert.equal(out.tokens, 256);
      assert.ok(h.nonBlank(out.pixels), "a blank image");
      const stepMs = timing.stepMs.reduce((a, b) => a + b, 0);
      console.log(`# ${steps} steps: image after ${s(Date.now() - t0)}; ${(stepMs / timing.stepMs.length).toFixed(0)} ms/step ` +
        `(the first ${timing.stepMs[0].toFixed(0)} ms); VQ decode ${s(timing.ms - stepMs)} (${stats})`);
    }
    const wasm = await page.workers()[0].evaluate(() => self.__arpg.wasmBytes).catch(() => null);
    peak = Math.max(peak, chromiumRss());
    console.log(`# memory: worker wasm memory ${wasm === null ? "?" : gib(wasm)}; Chromium RSS peak ${gib(peak)} (${gib(idle)} before the import)`);
  } finally {
    clearInterval(sampler);
    await close();
  }
});
