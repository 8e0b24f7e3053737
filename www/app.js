// The class-picker page: pick a class, steps, CFG, seed and batch; watch the random-order reveal.

import {
  $, classNames, downloadPng, drawReveal, modelTexts, optionTexts, paste, putImage, registerServiceWorker,
  startClient, stepText,
} from "/common.js";
import { classPicker } from "/classes.js";

const t0 = performance.now();
const client = startClient();
registerServiceWorker();

const canvas = $("#canvas");
const ctx = canvas.getContext("2d");
const stats = $("#stats");
let klass = 0; // the class to generate: the picker's, or the URL's even when the model lacks it (an error says so)
let shown = null; // the id of the model whose images the page shows
let last = null; // {images, tokens, class, options, cols, size, model, stepMs, ms}: `model` the download's texts
let firstImageMs = null;
let runs = 0; // generate() calls: only the newest one updates the page

// Test and debugging hook (read-only use): the last result and timings.
window.__arpg = { client, get last() { return last; }, get firstImageMs() { return firstImageMs; } };

// Settings from the URL (links and tests): ?class=&steps=&cfg=&order=&batch=&seed=&auto=0
const params = new URLSearchParams(location.search);
for (const key of ["steps", "cfg", "order", "batch"]) if (params.has(key)) $(`#${key}`).value = params.get(key);
if (params.has("seed")) {
  $("#seed").value = params.get("seed");
  document.querySelector('input[name="seed-mode"][value="fixed"]').checked = true;
}
if (params.has("class")) klass = Math.max(0, Math.floor(Number(params.get("class")) || 0));
const autoRun = params.get("auto") !== "0";

const picker = classPicker($("#class-picker"), { onPick: (i) => (klass = i) });
picker.value = klass;

for (const [input, out] of [["#steps", "#steps-out"], ["#batch", "#batch-out"]]) {
  const show = () => ($(out).textContent = $(input).value);
  $(input).addEventListener("input", show);
  show();
}

client.addEventListener("ready", ({ detail: info }) => {
  picker.setClasses(classNames(info));
  if (shown !== client.model.id) {
    if (shown !== null) {
      // Another model was picked: the other one's images (and a class it lacks) go.
      runs++;
      last = null;
      $("#download").disabled = true;
      stats.textContent = "";
      if (klass >= info.nClasses) picker.pick(0); // and the URL says so
    }
    shown = client.model.id;
    // The model's own defaults (its checkpoint's), unless the URL sets them.
    if (!params.has("steps")) $("#steps").value = String(info.sampling.generate.steps);
    if (!params.has("cfg")) $("#cfg").value = String(info.sampling.generate.cfg);
    $("#steps-out").textContent = $("#steps").value;
  }
  picker.value = klass;
  $("#steps").max = String(info.gridH * info.gridW);
  $("#generate").disabled = false;
  // First visit: show something right away.
  if (autoRun && !last && !client.busy) generate({ quiet: true });
});

function seedValue() {
  const mode = document.querySelector('input[name="seed-mode"]:checked').value;
  if (mode === "random") {
    const s = Math.floor(Math.random() * 2 ** 32);
    $("#seed").value = String(s);
    return s;
  }
  return Math.max(0, Math.floor(Number($("#seed").value) || 0));
}

function layout(n, size) {
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  canvas.width = cols * size;
  canvas.height = rows * size;
  canvas.dataset.cols = String(cols);
  return cols;
}

/** Generate a batch; `quiet`: the page's own first run, which a click replaces without a notice. */
async function generate({ quiet = false } = {}) {
  const info = client.info;
  if (!info) return;
  const n = Number($("#batch").value);
  const options = {
    ...info.sampling.generate,
    steps: Number($("#steps").value),
    cfg: Number($("#cfg").value),
    order: $("#order").value,
    seed: seedValue(),
  };
  const size = info.gridW * info.factor;
  const mine = ++runs;
  const cols = layout(n, size);
  ctx.fillStyle = "#181c28";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  document.body.dataset.run = "running";
  $("#cancel").disabled = false;
  $("#download").disabled = true;
  stats.textContent = "";
  try {
    const out = await client.run(
      "generate",
      { classes: Array(n).fill(klass), options },
      (ev, ms) => {
        if (mine !== runs) return;
        drawReveal(ctx, ev, info, client.patches);
        stats.textContent = stepText(ev, ms);
      },
      { quiet },
    );
    out.result.forEach((img, i) => putImage(ctx, img, (i % cols) * size, Math.floor(i / cols) * size));
    const perStep = out.stepMs.reduce((a, b) => a + b, 0) / Math.max(1, out.stepMs.length);
    if (firstImageMs === null) firstImageMs = performance.now() - t0;
    stats.textContent = `${out.stepMs.length} steps · ${perStep.toFixed(1)} ms/step · total ${out.ms.toFixed(0)} ms` +
      ` · ${info.backend === "webgpu" ? "WebGPU" : "CPU"} · first image ${firstImageMs.toFixed(0)} ms after page load`;
    last = {
      images: out.result, tokens: out.tokens, class: klass, options, cols, size, model: modelTexts(client),
      stepMs: out.stepMs, ms: out.ms,
    };
    canvas.dataset.tokens = JSON.stringify(out.tokens);
    $("#download").disabled = false;
    document.body.dataset.run = "done";
  } catch (e) {
    if (mine !== runs) return; // replaced by a newer run (the notice says so)
    document.body.dataset.run = e.message === "cancelled" ? "cancelled" : "error";
    stats.textContent = e.message === "cancelled" ? "cancelled" : `error: ${e.message}`;
  } finally {
    if (mine === runs) $("#cancel").disabled = true;
  }
}

async function download() {
  if (!last) return;
  const { images, cols, size } = last;
  const rows = Math.ceil(images.length / cols);
  const channels = images[0].channels || 1;
  const [width, height] = [cols * size, rows * size];
  const grid = { width, height, channels, pixels: new Uint8Array(width * height * channels) };
  images.forEach((img, i) => paste(grid, img, (i % cols) * size, Math.floor(i / cols) * size));
  const names = classNames(client.info);
  const texts = {
    Software: "arpg (browser)",
    Class: `${last.class} ${names[last.class]}`,
    ...optionTexts(last.options),
    ...last.model,
  };
  await downloadPng(grid, texts, `arpg-${last.class}-seed${last.options.seed}.png`).catch((e) => {
    stats.textContent = `download failed: ${e.message}`;
  });
}

$("#generate").addEventListener("click", () => generate());
$("#cancel").addEventListener("click", () => client.cancel("generation cancelled"));
$("#download").addEventListener("click", download);
document.addEventListener("keydown", (e) => {
  if (e.target.closest("input, select, textarea, .class-picker")) return; // their own keys
  if (e.key === "Enter" || e.key === "g") generate();
  if (e.key === "Escape") client.cancel("generation cancelled");
});
