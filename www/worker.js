// The Web Worker that owns the model. The page talks to it through client.js; one job at a time.
// Cancelling = the page terminates this worker and starts another (see client.js).
//
// in:  {type: "load", backend: "auto" | "webgpu" | "cpu"}
//      {type: "run", id, op: "generate" | "inpaint" | "outpaint" | "expand", args}
// out: {type: "progress", text} | {type: "ready", info, loadMs, patches} | {type: "load-error", message}
//      {type: "step", id, ev, ms} | {type: "done", id, result, ms, stepMs, tokens}
//      {type: "error", id, message, deviceLost}

// Two builds of the runtime: pkg/cpu (CPU backend only, small) and pkg/gpu (WebGPU + CPU, large).
// The GPU one is fetched only when it will be used: WebGPU forced, or "auto" with a hardware
// adapter (the runtime itself also prefers the CPU to a software adapter).
async function hardwareAdapter() {
  try {
    const a = await navigator.gpu?.requestAdapter();
    return !!a && !a.info?.isFallbackAdapter && !/swiftshader/i.test(a.info?.architecture || "");
  } catch {
    return false;
  }
}

async function runtime(backend) {
  const gpu = backend === "webgpu" || (backend === "auto" && await hardwareAdapter());
  const mod = await import(gpu ? "/pkg/gpu/arpg.js" : "/pkg/cpu/arpg.js");
  await mod.default();
  return mod;
}

let engine = null;
let queue = Promise.resolve();

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

async function load(backend) {
  const t0 = performance.now();
  post({ type: "progress", text: "loading the wasm runtime…" });
  const { WebEngine } = await runtime(backend);
  post({ type: "progress", text: "fetching the model…" });
  const manifest = await (await fetchOk("/models/manifest.json", "model manifest")).json();
  if (!manifest || typeof manifest.file !== "string" || !/^[\w.-]+$/.test(manifest.file)) {
    throw new Error("the model manifest names no valid file");
  }
  const sha = typeof manifest.sha256 === "string" ? manifest.sha256 : "";
  const bytes = new Uint8Array(
    await (await fetchOk(`/models/${manifest.file}?v=${sha}`, "checkpoint")).arrayBuffer(),
  );
  post({ type: "progress", text: `starting the model (${backend})…` });
  engine = await WebEngine.load(bytes, sha, backend);
  const info = engine.info();
  // Preview patches (one per code) let the page paint the grid while it is decoded. Skipped on
  // a software WebGPU adapter, where every GPU call is slow.
  let patches = null;
  const software = info.adapter && (info.adapter.isFallbackAdapter || /swiftshader/i.test(info.adapter.architecture));
  if (!(info.backend === "webgpu" && software)) patches = await engine.patches();
  post({ type: "ready", info, patches, loadMs: performance.now() - t0 });
}

async function run({ id, op, args }) {
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
  };
  const o = args.options || {};
  let result;
  switch (op) {
    case "generate":
      result = await engine.generate(Uint32Array.from(args.classes), o, onStep);
      break;
    case "inpaint":
      result = await engine.inpaint(args.image, args.mask, args.class, o, onStep);
      break;
    case "outpaint":
      result = await engine.outpaint(args.image, args.sides, args.class, o, onStep);
      break;
    case "expand":
      result = await engine.expand(args.image || null, args.factor || 2, args.class, o, onStep);
      break;
    default:
      throw new Error(`unknown operation ${op}`);
  }
  post({ type: "done", id, result, tokens, stepMs, ms: performance.now() - t0 });
}

self.onmessage = ({ data }) => {
  if (data.type === "load") {
    queue = queue.then(() => load(data.backend).catch((e) => post({ type: "load-error", message: text(e) })));
  } else if (data.type === "run") {
    queue = queue.then(async () => {
      try {
        if (!engine) throw new Error("the model is not loaded");
        await run(data);
      } catch (e) {
        post({ type: "error", id: data.id, message: text(e), deviceLost: !!(engine && engine.deviceLost()) });
      }
    });
  }
};
