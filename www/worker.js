// The Web Worker that owns the model. The page talks to it through client.js; one job at a time.
//
// in:  {type: "load", backend: "auto" | "webgpu" | "cpu", model}: `model` a manifest entry (models.js)
//      or a model the user opened (local.js, `local: true`: read from the OPFS a slice at a time)
//      {type: "run", id, op: "generate" | "inpaint" | "outpaint" | "expand", args}
//      {type: "cancel", id}: stop job `id` at its next step boundary (or before it starts)
//      {type: "ping", n}: answered at once with {type: "pong", n} (the page's liveness check)
// out: {type: "progress", text, bytes?, total?} | {type: "ready", info, loadMs}
//      {type: "load-error", message, gpuPending}
//      (`gpuPending`, `info.gpuPending`: the CPU ran because the WebGPU build is not there yet)
//      {type: "step", id, ev, ms} | {type: "done", id, result, ms, stepMs, tokens}
//      {type: "patches", codes, bytes}: preview patches of codes a job has just decoded, each
//      `factor * factor * channels` bytes, in `codes` order (see `previewPatches`)
//      {type: "error", id, message, cancelled, deviceLost} | {type: "device-lost", message}
//      {type: "crashed", message, deviceLost}: an uncaught error (a Rust panic traps the wasm
//      module, which then cannot run anything): the page restarts the worker
//      `deviceLost` is null, or why the WebGPU device is gone (then the page restarts on the CPU).
//
// Jobs yield to this worker's event loop between decoding steps (src/web/scheduler.rs), so a
// "cancel" is handled while a job runs: the job stops at the next step boundary and answers
// "cancelled", and the model stays loaded. The page restarts the worker only when it does not
// answer in time. (Downloads do not come here: the pages encode PNGs with their own copy of the
// CPU runtime, common.js `downloadPng`.)

import { localFile, progressText } from "/local.js";
import { modelUrl } from "/models.js";

// ---- the WebGPU device: whether it is lost is decided here, and only here.

// The GPUDevice wgpu gets, recorded so that this worker notices a lost device itself (even when
// the job in flight never returns), and for tests (`self.__arpg.gpu.devices`).
const gpu = { devices: [], lost: null };
const lostText = (info) => `${info.reason}: ${info.message}`;
if (self.GPUAdapter && GPUAdapter.prototype.requestDevice) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    gpu.devices.push(device);
    device.lost.then((info) => {
      gpu.lost = lostText(info);
      post({ type: "device-lost", message: gpu.lost });
    });
    return device;
  };
}

// How long a device may take to answer the probe below before it counts as lost.
const PROBE_MS = 10_000;
const after = (ms, value) => new Promise((resolve) => setTimeout(() => resolve(value), ms));

/** Null while this worker's GPU device works (or it has none), else why it does not: asked after
 * a job failed or the wasm trapped. A lost device is often not yet reported when the failure it
 * causes arrives: its pending buffer maps fail at once, and cubecl-wgpu 0.11.3 panics on a failed
 * map (`compute/timings.rs`, `stop_profile`: `.expect("Failed to map buffer")`, a timing
 * read-back), while `device.lost` resolves only when the GPU process answers. Measured
 * after `device.destroy()` mid-job on SwiftShader: 26 ms later in Chromium 156, 7.5 s later in
 * Chromium 150 (busy with the job's kernels). So this asks and waits: `device.lost`, or a fresh
 * 4-byte buffer's map (it succeeds on a working device, fails on a lost one); a device that
 * answers neither within PROBE_MS counts as lost too. */
async function deviceLoss() {
  const device = gpu.devices.at(-1);
  if (gpu.lost || !device) return gpu.lost;
  const lost = device.lost.then(lostText);
  const buffer = device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ });
  const probe = buffer.mapAsync(GPUMapMode.READ).then(
    () => null,
    (e) => Promise.race([lost, after(1000, `a read-back failed: ${text(e)}`)]),
  );
  const answer = await Promise.race([lost, probe, after(PROBE_MS, `no answer within ${PROBE_MS / 1000} s`)]);
  buffer.destroy();
  return answer;
}

// An uncaught error, or a trap (a Rust panic, e.g. when the GPU device goes away under a job: the
// wasm module cannot run anything after it), ends this worker: reported once as "crashed", saying
// whether the device was lost. The page shows a plain notice; the raw message is for its console.
let crashed = false;
function crash(message) {
  if (crashed) return;
  crashed = true;
  deviceLoss().then((deviceLost) => post({ type: "crashed", message, deviceLost }));
}
/** A trap caught as an exception (a panic in a synchronous call) is a crash too. */
function crashOnTrap(e) {
  if (!(e instanceof WebAssembly.RuntimeError)) return false;
  crash(`${e.name}: ${e.message}`);
  return true;
}
self.addEventListener("error", (ev) => {
  ev.preventDefault();
  crash(ev.message || "unknown error");
});

// Two builds of the runtime: pkg/cpu (CPU backend only, small, precached as the fallback) and
// pkg/gpu (WebGPU + CPU, large). The GPU one is fetched only when it will be used: WebGPU forced,
// or "auto" with an adapter the runtime does not count as software. The CPU build's
// `detectAdapter()` says which (its `software` flag is the one definition, which the runtime's
// own "auto" uses too), so the two never disagree.
//
// `make run` serves before the WebGPU build is done (it goes on beside the server): until
// pkg/gpu is there, "auto" and "webgpu" run on the CPU and say why (`gpuPending`), and the page
// loads the model again once it appears (client.js).
let wasm = null; // the module's exports (its linear memory: wasm.memory)
let gpuPending = false;
const GPU_PENDING = "the WebGPU build (pkg/gpu) is not there yet: make run is still building it, and " +
  "the page switches to it once it is there";

async function runtime(backend) {
  let mod = null;
  if (backend !== "webgpu") {
    mod = await import("/pkg/cpu/arpg.js");
    wasm = await mod.default();
    if (backend === "cpu") return mod;
    const adapter = await mod.detectAdapter().catch(() => null);
    if (!adapter || adapter.software) return mod;
  }
  const cpu = mod;
  try {
    mod = await import("/pkg/gpu/arpg.js");
  } catch (e) {
    const missing = await fetch("/pkg/gpu/arpg_bg.wasm", { method: "HEAD" }).then((r) => r.status === 404, () => false);
    if (!missing) throw e;
    gpuPending = true;
    mod = cpu ?? (await import("/pkg/cpu/arpg.js"));
    wasm = await mod.default();
    return mod;
  }
  wasm = await mod.default();
  return mod;
}

let engine = null;
let patched = null; // per code: 1 once its preview patch was asked for; null: no previews
let queue = Promise.resolve();
let current = null; // the running job: {id, controller}
let lastStarted = 0; // ids grow: a cancel for an id above this is for a job still queued
const cancelled = new Set(); // ids cancelled before they started
const stats = { loads: 0, started: 0, finished: 0, cancelled: 0, running: 0, maxRunning: 0 };

// Read-only view for tests and debugging (Playwright: page.workers()[0].evaluate(...)).
self.__arpg = { gpu, stats, get wasmBytes() { return wasm ? wasm.memory.buffer.byteLength : 0; } };

const post = (msg, transfer = []) => self.postMessage(msg, transfer);
const text = (e) => (e && e.message ? e.message : String(e));

async function fetchOk(url, what) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`cannot fetch the ${what} (${url}): ${text(e)}`);
  }
  if (!res.ok) throw new Error(`cannot fetch the ${what} (${url}): HTTP ${res.status}`);
  return res;
}

async function load(backend, model) {
  const t0 = performance.now();
  post({ type: "progress", text: "loading the wasm runtime…" });
  const { WebEngine } = await runtime(backend);
  const use = gpuPending ? "cpu" : backend;
  // The hash is required: the engine refuses a file that does not match it.
  if (model.local) {
    engine = await openLocal(WebEngine, use, model);
  } else {
    post({ type: "progress", text: `fetching the model ${model.name}…` });
    const bytes = new Uint8Array(await (await fetchOk(modelUrl(model), "checkpoint")).arrayBuffer());
    post({ type: "progress", text: `starting the model (${use})…` });
    engine = await WebEngine.load(bytes, model.sha256, use);
  }
  const info = engine.info();
  if (gpuPending) Object.assign(info, { gpuPending, requested: backend, reason: GPU_PENDING });
  // Previews are skipped on a software WebGPU adapter, where every GPU call is slow.
  patched = info.backend === "webgpu" && info.adapter?.software ? null : new Uint8Array(info.codebookSize);
  stats.loads++;
  post({ type: "ready", info, loadMs: performance.now() - t0 });
}

/** A model the user opened, from the OPFS: checked (checksum) and loaded a slice at a time, so
 * the tab holds the weights and one tensor, never the file. The runtime reads it twice (the
 * checksum, then the tensors); progress counts both. */
async function openLocal(WebEngine, backend, model) {
  const file = await localFile(model).catch((e) => {
    throw new Error(`the model ${model.name} is no longer stored in this browser (${text(e)})`);
  });
  const total = 2 * file.size;
  const t0 = performance.now();
  const progress = (bytes) => post({ type: "progress", text: progressText(`reading ${model.name}`, bytes, total, t0), bytes, total });
  progress(0);
  return WebEngine.open(file, model.sha256, backend, progress);
}

/** Preview patches let the page paint the grid while it is decoded: one small picture per code.
 * They are made when a code is first decoded, not for the whole codebook at load (a large
 * codebook would take long to preview, and a job uses few of its codes); they run between the
 * job's steps and reach the page about one step later. */
function previewPatches(tokens) {
  if (!patched) return;
  const codes = [...new Set(tokens)].filter((c) => c >= 0 && !patched[c]);
  if (!codes.length) return;
  codes.forEach((c) => (patched[c] = 1));
  engine.patches(codes).then(
    (bytes) => post({ type: "patches", codes, bytes }, [bytes.buffer]),
    () => codes.forEach((c) => (patched[c] = 0)), // asked again at the next step
  );
}

async function run({ id, op, args }, signal) {
  const t0 = performance.now();
  let last = t0;
  let tokens = null;
  const stepMs = [];
  const onStep = (ev) => {
    const now = performance.now();
    stepMs.push(now - last);
    last = now;
    tokens = ev.tokens;
    post({ type: "step", id, ev, ms: now - t0 });
    previewPatches(ev.tokens);
  };
  const o = args.options || {};
  let result;
  switch (op) {
    case "generate":
      result = await engine.generate(args.classes, o, onStep, signal);
      break;
    case "inpaint":
      result = await engine.inpaint(args.image, args.mask, args.class, o, onStep, signal);
      break;
    case "outpaint":
      result = await engine.outpaint(args.image, args.sides, args.class, o, onStep, signal);
      break;
    case "expand":
      result = await engine.expand(args.image || null, args.factor || 2, args.class, o, onStep, signal);
      break;
    default:
      throw new Error(`unknown operation ${op}`);
  }
  post({ type: "done", id, result, tokens, stepMs, ms: performance.now() - t0 });
}

async function job(data) {
  if (cancelled.delete(data.id)) {
    stats.cancelled++;
    return post({ type: "error", id: data.id, message: "cancelled", cancelled: true, deviceLost: null });
  }
  lastStarted = data.id;
  current = { id: data.id, controller: new AbortController() };
  stats.started++;
  stats.maxRunning = Math.max(stats.maxRunning, ++stats.running);
  try {
    if (!engine) throw new Error("the model is not loaded");
    await run(data, current.controller.signal);
    stats.finished++;
  } catch (e) {
    if (crashOnTrap(e)) return;
    const message = text(e);
    const cancelled = message === "cancelled";
    if (cancelled) stats.cancelled++;
    post({ type: "error", id: data.id, message, cancelled, deviceLost: cancelled ? null : await deviceLoss() });
  } finally {
    stats.running--;
    current = null;
  }
}

self.onmessage = ({ data }) => {
  switch (data.type) {
    case "load":
      queue = queue.then(() => load(data.backend, data.model).catch((e) => {
        if (!crashOnTrap(e)) post({ type: "load-error", message: text(e), gpuPending });
      }));
      break;
    case "run":
      queue = queue.then(() => job(data));
      break;
    case "cancel":
      if (current && current.id === data.id) current.controller.abort();
      else if (data.id > lastStarted) cancelled.add(data.id);
      break;
    case "ping":
      post({ type: "pong", n: data.n });
      break;
  }
};
