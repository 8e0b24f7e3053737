// The page's side of the model worker: start it, run one job at a time, cancel, recover.
//
// Events (EventTarget): "status" {detail: {state, text}}, "models" {detail: [manifest entry]},
// "ready" {detail: info} (the model is `client.model`, its manifest entry), "notice"
// {detail: {text, kind}} with kind "job" (a job cancelled) or "recovery" (the worker restarted).
//
// Models: `open(id)` reads the model list (models.js: the manifest's, then the user's own) and
// starts the model `id` (else the first);
// `switchModel(id)` cancels the running job first, so that no result of one model reaches a page
// that shows another.
//
// One job at a time: a new job while one runs cancels the old one (its promise rejects with
// "cancelled", and a "notice" says so); the new one starts once the worker has stopped the old
// one. Cancelling asks the worker, which stops the job at its next decoding step and keeps the
// model loaded; a worker that does not answer within `cancelGraceMs` (a hung GPU) is terminated
// and restarted. While a job runs on the CPU backend the worker is pinged between steps: one that
// stops answering for `hangLimit()` (closed, stuck) is restarted too: `hangMs`, or three times
// the model's load for a large one, whose single synchronous calls are long (ARPG-L in wasm:
// loaded in 22 s, its VQ decode of one 256x256 image 22 s, no ping answered meanwhile; measured
// in docs/performance.md, "The paper's models in the browser"). Not on WebGPU: there the worker
// can block for tens of seconds on a slow adapter (30 s measured with SwiftShader) without being
// dead. A crashed worker, or a lost WebGPU device (the worker watches `device.lost`), restarts the
// model (on the CPU when it was on WebGPU) and runs the interrupted job again, once.

import { loadModels } from "/models.js";

// What a notice says when the worker fails. Never the browser's own error text (a JS error name,
// "unreachable", a stack): that goes to the console, for whoever debugs it.
const STOPPED = "the model stopped unexpectedly";
const deviceLostText = (why) => `WebGPU device lost (${why})`;

export class EngineClient extends EventTarget {
  constructor(backend = "auto") {
    super();
    this.backend = backend;
    this.models = null; // the model list's entries
    this.model = null; // the entry of the model loaded or loading
    this.opens = 0; // open() calls: only the newest one starts a model
    this.worker = null;
    this.info = null;
    this.patches = null; // preview patches, code-major (grey where not yet made): see addPatches
    this.ready = null; // Promise<info> of the current worker
    this.job = null; // {id, op, args, resolve, reject, onStep, posted, retried}
    this.nextId = 1;
    this.newest = 0; // the newest run() call: older ones still waiting give way to it
    this.loadMs = null;
    this.settling = Promise.resolve(); // resolves once a cancelled job has stopped
    this.ack = null; // {id, stopped()}: the cancelled job the worker has not yet stopped
    this.cancelGraceMs = 5000;
    this.pingMs = 1000;
    this.hangMs = 20000;
    this.gpuWatchMs = 15000;
    this.gpuWatch = 0;
    this.watchdog = 0;
    this.lastPong = 0;
    // Counters (tests, debugging): workers started, models loaded, restarts after a fault,
    // jobs cancelled, restarts because a cancel was not answered in time, and the last
    // cancel's time to the worker's answer.
    this.stats = { workers: 0, loads: 0, recoveries: 0, cancels: 0, forcedRestarts: 0, lastCancelMs: null };
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Read the manifest and start model `id` (null: the first; unknown: the first, with a notice):
   * Promise<info>. */
  open(id) {
    const mine = ++this.opens;
    this.stopWorker();
    this.info = null;
    this.emit("status", { state: "loading", text: "reading the model list…" });
    this.ready = loadModels().then((models) => {
      if (mine !== this.opens) return this.ready;
      this.models = models;
      this.model = models.find((m) => m.id === id) || models[0];
      if (id && this.model.id !== id) {
        this.emit("notice", { kind: "model", text: `There is no model "${id}" here: showing ${this.model.name}.` });
      }
      this.emit("models", models);
      return this.start(this.backend, this.model);
    }, (e) => {
      if (mine === this.opens) this.emit("status", { state: "error", text: e.message });
      throw e;
    });
    this.ready.catch(() => {}); // reported through "status"
    return this.ready;
  }

  /** Read the model list again (a model was added or removed) without restarting the model. */
  async refreshModels() {
    this.models = await loadModels();
    this.emit("models", this.models);
  }

  /** The user picked another model: the running job is cancelled (with a notice), then it loads. */
  switchModel(id) {
    this.cancel("the job was cancelled: another model was picked");
    return this.open(id);
  }

  /** (Re)start the worker with `backend` and load `model` (a manifest entry): Promise<info>. */
  start(backend = this.backend, model = this.model) {
    this.backend = backend;
    this.model = model;
    this.stopWorker();
    this.info = null;
    const worker = new Worker("/worker.js", { type: "module" });
    this.worker = worker;
    this.stats.workers++;
    this.emit("status", { state: "loading", text: "loading…" });
    this.ready = new Promise((resolve, reject) => {
      worker.onmessage = ({ data }) => {
        if (worker !== this.worker) return;
        switch (data.type) {
          case "progress":
            this.emit("status", { state: "loading", text: data.text, bytes: data.bytes, total: data.total });
            break;
          case "ready":
            this.info = data.info;
            this.patches = null;
            this.loadMs = data.loadMs;
            this.stats.loads++;
            this.emit("status", { state: "ready", text: "ready" });
            this.emit("ready", data.info);
            this.watchGpuBuild(data.info.gpuPending);
            resolve(data.info);
            break;
          case "load-error":
            this.watchGpuBuild(data.gpuPending); // the CPU may be why it failed
            this.emit("status", { state: "error", text: data.message });
            reject(new Error(data.message));
            break;
          case "patches":
            this.addPatches(data.codes, data.bytes);
            break;
          case "pong":
            this.lastPong = performance.now();
            break;
          case "device-lost":
            if (this.info && this.info.backend === "webgpu") this.recover(deviceLostText(data.message));
            break;
          case "crashed":
            console.warn(`the model worker crashed: ${data.message}`);
            this.failed(data.deviceLost ? deviceLostText(data.deviceLost) : STOPPED, reject);
            break;
          default:
            this.onJobMessage(data);
        }
      };
      // Errors the worker does not report itself ("crashed"): it failed to start, for one.
      worker.onerror = (ev) => {
        if (worker !== this.worker) return;
        ev.preventDefault();
        console.warn(`the model worker failed: ${ev.message || "it could not start"}`);
        this.failed(STOPPED, reject);
      };
    });
    this.ready.catch(() => {}); // reported through "status"
    worker.postMessage({ type: "load", backend, model });
    return this.ready;
  }

  /** `pending`: the model ran (or failed to load) on the CPU because the WebGPU build is not
   * there yet (`make run` serves before it is done): look for it every `gpuWatchMs`, and once it
   * is there load the model again on it, between jobs. */
  watchGpuBuild(pending) {
    clearInterval(this.gpuWatch);
    if (!pending) return;
    const worker = this.worker;
    this.gpuWatch = setInterval(async () => {
      if (worker !== this.worker) return clearInterval(this.gpuWatch); // restarted meanwhile
      const there = await fetch("/pkg/gpu/arpg_bg.wasm", { method: "HEAD", cache: "no-store" }).then((r) => r.ok, () => false);
      if (!there || this.busy || worker !== this.worker) return;
      clearInterval(this.gpuWatch);
      this.emit("notice", { kind: "gpu-build", text: "The WebGPU build is there now: loading the model on it." });
      this.start(this.backend);
    }, this.gpuWatchMs);
  }

  /** Preview patches of `codes` from the worker (`bytes`: one patch per code, in order) into the
   * table the pages paint from; codes with none yet stay grey. */
  addPatches(codes, bytes) {
    const size = this.info.factor ** 2 * this.info.channels;
    this.patches ??= new Uint8Array(this.info.codebookSize * size).fill(160);
    codes.forEach((c, i) => this.patches.set(bytes.subarray(i * size, (i + 1) * size), c * size));
  }

  /** The worker crashed: while loading, the load fails (Retry); once loaded, recover. */
  failed(message, reject) {
    if (!this.info) {
      this.emit("status", { state: "error", text: message });
      reject(new Error(message));
    } else {
      this.recover(message);
    }
  }

  stopWorker() {
    if (this.worker) this.worker.terminate();
    this.worker = null;
    this.ack?.stopped(); // a fresh worker runs nothing
  }

  /** A crashed or hung worker, or a lost WebGPU device: restart (on the CPU when it ran on
   * WebGPU) and run the interrupted job again there, once; the page's own state is untouched. */
  recover(message) {
    this.unwatch();
    const job = this.job;
    const wasGpu = !!this.info && this.info.backend === "webgpu";
    const again = job && !job.retried;
    this.stats.recoveries++;
    this.emit("notice", {
      kind: "recovery",
      text: `${message} — restarting the model${wasGpu ? " on the CPU" : ""}` +
        (again ? "; the interrupted job runs again" : ""),
    });
    this.start(wasGpu ? "cpu" : this.backend);
    if (!job) return;
    if (!again) {
      this.job = null;
      job.reject(new Error(message));
      return;
    }
    job.retried = true;
    job.posted = false;
    this.ready.then(
      () => this.job === job && this.post(job),
      (e) => this.job === job && (this.job = null, job.reject(e)),
    );
  }

  onJobMessage(data) {
    if (this.ack && data.id === this.ack.id && (data.type === "done" || data.type === "error")) {
      this.ack.stopped();
      return;
    }
    const job = this.job;
    if (!job || data.id !== job.id) return;
    if (data.type === "step") {
      job.onStep?.(data.ev, data.ms);
    } else if (data.type === "done") {
      this.finish();
      this.emit("status", { state: "ready", text: `done in ${data.ms.toFixed(0)} ms`, done: true });
      job.resolve(data);
    } else if (data.type === "error") {
      if (data.deviceLost && this.info && this.info.backend === "webgpu") {
        console.warn(`the job failed on a lost WebGPU device: ${data.message}`);
        this.recover(deviceLostText(data.deviceLost));
        return;
      }
      this.finish();
      this.emit("status", { state: "ready", text: "ready" });
      job.reject(new Error(data.message));
    }
  }

  get busy() {
    return this.job !== null;
  }

  /** Cancel the running job, if any. Its promise rejects with "cancelled" at once; the worker
   * stops it at the next step boundary (or is restarted if it does not within cancelGraceMs).
   * `reason` is the notice shown (null: none). */
  cancel(reason = "cancelled") {
    const job = this.job;
    if (!job) return false;
    this.finish();
    this.stats.cancels++;
    if (reason) this.emit("notice", { kind: "job", text: reason });
    job.reject(new Error("cancelled"));
    if (!job.posted) return true; // waiting for a restarted worker: it never gets the job
    const worker = this.worker;
    const t0 = performance.now();
    worker.postMessage({ type: "cancel", id: job.id });
    this.settling = new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (this.ack?.id !== job.id) return;
        this.stats.forcedRestarts++;
        this.emit("notice", {
          kind: "recovery",
          text: `${reason || "cancelled"}: the model did not stop within ${(this.cancelGraceMs / 1000).toFixed(0)} s and was restarted`,
        });
        this.start(this.backend); // stopWorker() settles this
      }, this.cancelGraceMs);
      this.ack = {
        id: job.id,
        stopped: () => {
          clearTimeout(timer);
          this.ack = null;
          this.stats.lastCancelMs = performance.now() - t0;
          this.idle();
          resolve();
        },
      };
    });
    this.watch();
    return true;
  }

  /** Run `op` with `args`; `onStep(ev, ms)` per decoding step. Resolves to {result, ms, stepMs, tokens}.
   * `quiet`: a job the page started on its own (not the user), replaced without a notice. */
  async run(op, args, onStep, { quiet = false } = {}) {
    const mine = ++this.newest;
    this.replaceJob();
    // Wait until the worker is free and ready (a restart may replace `ready` meanwhile).
    for (let ready = null; ready !== this.ready;) {
      await this.settling;
      ready = this.ready;
      await ready;
    }
    if (mine !== this.newest) {
      // A newer call came while this one waited: it never ran.
      if (!quiet) this.emit("notice", { kind: "job", text: "the previous job was replaced by the new one" });
      throw new Error("cancelled");
    }
    this.replaceJob();
    const id = this.nextId++;
    this.emit("status", { state: "running", text: `${op}…` });
    return new Promise((resolve, reject) => {
      this.post({ id, op, args, resolve, reject, onStep, quiet, posted: false, retried: false });
    });
  }

  /** A new job cancels the running one; the user is told only when they had started it. */
  replaceJob() {
    if (this.job) this.cancel(this.job.quiet ? null : "the previous job was cancelled for the new one");
  }

  post(job) {
    this.job = job;
    job.posted = true;
    this.worker.postMessage({ type: "run", id: job.id, op: job.op, args: job.args });
    this.watch();
  }

  finish() {
    this.job = null;
    this.idle();
  }

  // ---- liveness: ping the worker while it has work; restart it when it stops answering.

  watch() {
    if (this.watchdog || !this.info || this.info.backend !== "cpu") return;
    this.lastPong = performance.now();
    let n = 0;
    this.watchdog = setInterval(() => {
      if (!this.worker) return;
      const limit = this.hangLimit();
      if (performance.now() - this.lastPong > limit) {
        this.recover(`the model worker stopped answering for ${(limit / 1000).toFixed(0)} s`);
        return;
      }
      this.worker.postMessage({ type: "ping", n: ++n });
    }, this.pingMs);
  }

  /** How long a busy worker may leave pings unanswered: a model's longest synchronous call
   * grows with its size, as its load time does. */
  hangLimit() {
    return Math.max(this.hangMs, 3 * (this.loadMs || 0));
  }

  idle() {
    if (!this.job && !this.ack) this.unwatch();
  }

  unwatch() {
    clearInterval(this.watchdog);
    this.watchdog = 0;
  }
}
