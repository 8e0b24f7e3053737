// What one forced-WebGPU generation asks of the GPU, phase by phase (load, each step, the decode):
// shader modules compiled (and their WGSL's size), buffer read-backs, queue submits and buffers
// made, counted by wrapping the WebGPU API in the model worker. Not a test: a measurement for
// docs/performance.md ("Build and test times"). In this directory, with the `make e2e` environment
// (ARPG_BIN, ARPG_SERVE_BIN, ARPG_ROOT, CHROMIUM_PATH):
//
//   node webgpu-calls.mjs [grey|colour] [steps]     (defaults: grey 4 steps, colour 2 steps)

import * as h from "./harness.mjs";

const which = process.argv[2] || "grey";
const steps = Number(process.argv[3] || (which === "grey" ? 4 : 2));
const query = which === "grey" ? "seed=7&class=7" : "model=emoji&seed=5&class=0";

/** Runs in the worker before it loads the runtime: log each call of interest with its time. */
function wrapWebGpu() {
  const log = (self.__calls = []);
  const now = () => Math.round(performance.now());
  const wrap = (proto, name, entry) => {
    const original = proto[name];
    proto[name] = function (...args) {
      log.push([...entry(...args), now()]);
      return original.apply(this, args);
    };
  };
  wrap(GPUDevice.prototype, "createShaderModule", (d) => ["module", d.code.length]);
  wrap(GPUDevice.prototype, "createBuffer", (d) => ["buffer", d.size]);
  wrap(GPUBuffer.prototype, "mapAsync", () => ["map", 0]);
  wrap(GPUQueue.prototype, "submit", (b) => ["submit", b.length]);
  const post = self.postMessage.bind(self);
  self.postMessage = (m, ...rest) => {
    if (["ready", "step", "done"].includes(m?.type)) log.push(["phase", m.type, now()]);
    return post(m, ...rest);
  };
}

const root = h.makeRoot();
const server = await h.serve(root.dir);
const { context, close } = await h.launch();
try {
  const page = await context.newPage();
  const workers = [];
  page.on("worker", (w) => workers.push(w.evaluate(wrapWebGpu).then(() => w)));
  await page.goto(`${server.origin}/?${query}&backend=webgpu&batch=1&steps=${steps}`);
  await h.waitRun(page, 900_000);
  console.log(`# ${which}, ${steps} steps: ${await page.textContent("#stats")}`);
  const calls = await (await workers[0]).evaluate(() => self.__calls);
  const empty = () => ({ modules: 0, wgsl: 0, maps: 0, submits: 0, buffers: 0 });
  let phase = empty();
  let start = 0;
  const total = { modules: 0, wgsl: 0 };
  for (const [kind, value, t] of calls) {
    if (kind === "module") {
      phase.modules++;
      phase.wgsl += value;
    } else if (kind === "map") phase.maps++;
    else if (kind === "submit") phase.submits++;
    else if (kind === "buffer") phase.buffers++;
    else {
      console.log(`${value.padEnd(5)} ${((t - start) / 1000).toFixed(1).padStart(6)} s: ${phase.modules} shader modules ` +
        `(${(phase.wgsl / 1e3).toFixed(0)} kB of WGSL), ${phase.maps} read-backs, ${phase.submits} submits, ${phase.buffers} buffers`);
      total.modules += phase.modules;
      total.wgsl += phase.wgsl;
      phase = empty();
      start = t;
    }
  }
  console.log(`# in all: ${total.modules} shader modules, ${(total.wgsl / 1e6).toFixed(2)} MB of WGSL`);
} finally {
  await close();
  await server.stop();
}
