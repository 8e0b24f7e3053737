// The page's side of the model worker: start it, run one job at a time, cancel by terminating it.
//
// Events (EventTarget): "status" {detail: {state, text}}, "ready" {detail: info}, "notice"
// {detail: text}. A new job while one runs cancels the old one (its promise rejects with
// "cancelled") and says so through "notice".

export class EngineClient extends EventTarget {
  constructor(backend = "auto") {
    super();
    this.backend = backend;
    this.worker = null;
    this.info = null;
    this.patches = null;
    this.ready = null; // Promise<info> of the current worker
    this.job = null; // {id, resolve, reject, onStep}
    this.nextId = 1;
    this.loadMs = null;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** (Re)start the worker with `backend` and load the model: Promise<info>. */
  start(backend = this.backend) {
    this.backend = backend;
    this.stopWorker();
    this.info = null;
    const worker = new Worker("/worker.js", { type: "module" });
    this.worker = worker;
    this.emit("status", { state: "loading", text: "loading…" });
    this.ready = new Promise((resolve, reject) => {
      worker.onmessage = ({ data }) => {
        if (worker !== this.worker) return;
        switch (data.type) {
          case "progress":
            this.emit("status", { state: "loading", text: data.text });
            break;
          case "ready":
            this.info = data.info;
            this.patches = data.patches;
            this.loadMs = data.loadMs;
            this.emit("status", { state: "ready", text: "ready" });
            this.emit("ready", data.info);
            resolve(data.info);
            break;
          case "load-error":
            this.emit("status", { state: "error", text: data.message });
            reject(new Error(data.message));
            break;
          default:
            this.onJobMessage(data);
        }
      };
      worker.onerror = (ev) => {
        if (worker !== this.worker) return;
        ev.preventDefault();
        const message = `the model worker failed: ${ev.message || "unknown error"}`;
        if (!this.info) {
          this.emit("status", { state: "error", text: message });
          reject(new Error(message));
        } else {
          this.recover(message);
        }
      };
    });
    this.ready.catch(() => {}); // reported through "status"
    worker.postMessage({ type: "load", backend });
    return this.ready;
  }

  stopWorker() {
    if (this.worker) this.worker.terminate();
    this.worker = null;
  }

  /** WebGPU trouble (device lost, worker crash): restart on the CPU, keeping the page's state. */
  recover(message) {
    const job = this.job;
    this.job = null;
    const next = this.info && this.info.backend === "webgpu" ? "cpu" : this.backend;
    this.emit("notice", `${message} — restarting on ${next === "cpu" ? "the CPU" : next}`);
    if (job) job.reject(new Error(message));
    this.start(next);
  }

  onJobMessage(data) {
    const job = this.job;
    if (!job || data.id !== job.id) return;
    if (data.type === "step") {
      job.onStep?.(data.ev, data.ms);
    } else if (data.type === "done") {
      this.job = null;
      this.emit("status", { state: "ready", text: `done in ${data.ms.toFixed(0)} ms` });
      job.resolve(data);
    } else if (data.type === "error") {
      this.job = null;
      if (data.deviceLost) this.recover(`WebGPU device lost (${data.message})`);
      else this.emit("status", { state: "ready", text: "ready" });
      job.reject(new Error(data.message));
    }
  }

  get busy() {
    return this.job !== null;
  }

  /** Cancel the running job, if any: terminate the worker and start a fresh one. */
  cancel(reason = "cancelled") {
    if (!this.job) return false;
    const job = this.job;
    this.job = null;
    this.emit("notice", reason);
    job.reject(new Error("cancelled"));
    this.start(this.backend);
    return true;
  }

  /** Run `op` with `args`; `onStep(ev, ms)` per decoding step. Resolves to {result, ms, stepMs, tokens}. */
  async run(op, args, onStep) {
    if (this.job) this.cancel("the previous job was cancelled for the new one");
    await this.ready;
    if (this.job) this.cancel("the previous job was cancelled for the new one");
    const id = this.nextId++;
    this.emit("status", { state: "running", text: `${op}…` });
    return new Promise((resolve, reject) => {
      this.job = { id, resolve, reject, onStep };
      this.worker.postMessage({ type: "run", id, op, args });
    });
  }
}
