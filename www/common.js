// Shared by both pages: backend choice, the badge and notices, drawing grey images and the
// token reveal, PNG downloads, and the service worker registration (offline use).

import { EngineClient } from "/client.js";

/** Fashion-MNIST's classes, used when the checkpoint carries no names. */
export const FASHION_CLASSES = [
  "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
];

export function classNames(info) {
  const n = info.nClasses;
  return Array.from({ length: n }, (_, i) => info.classNames[i] || FASHION_CLASSES[i] || `class ${i}`);
}

export const $ = (sel) => document.querySelector(sel);

/** The backend asked for: ?backend=auto|webgpu|cpu, else the last choice, else auto. */
export function initialBackend() {
  const q = new URLSearchParams(location.search).get("backend");
  const saved = localStorage.getItem("arpg.backend");
  const pick = q || saved || "auto";
  return ["auto", "webgpu", "cpu"].includes(pick) ? pick : "auto";
}

/** A client wired to the page's badge (#backend), backend menu (#backend-choice), status line
 * (#status) and notice box (#notice, with a Retry button on load failures). */
export function startClient() {
  const client = new EngineClient(initialBackend());
  const badge = $("#backend");
  const choice = $("#backend-choice");
  const status = $("#status");
  choice.value = client.backend;
  choice.addEventListener("change", () => {
    localStorage.setItem("arpg.backend", choice.value);
    clearNotice();
    client.start(choice.value);
  });
  client.addEventListener("status", ({ detail }) => {
    status.textContent = detail.text;
    status.dataset.state = detail.state;
    document.body.dataset.engine = detail.state;
    if (detail.done && noticeKind() === "job") clearNotice(); // a job ran since the cancel
    if (detail.state === "error") {
      notice(`Could not start the model: ${detail.text}`, () => client.start(client.backend), "load-error");
      badge.textContent = "no model";
      badge.dataset.backend = "none";
    }
    if (detail.state === "loading") {
      badge.textContent = "loading…";
      badge.dataset.backend = "loading";
    }
  });
  client.addEventListener("ready", ({ detail: info }) => {
    badge.textContent = info.backend === "webgpu" ? "WebGPU" : "CPU";
    badge.dataset.backend = info.backend;
    const a = info.adapter;
    const adapter = a ? [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(" ") : "none";
    badge.title = `${info.reason}\nadapter: ${adapter}${a && a.software ? " (software)" : ""}\nmodel sha256: ${info.checksum}`;
    $("#backend-detail").textContent = info.reason;
    // A recovery notice stays: it says why the model now runs elsewhere.
    if (noticeKind() === "recovery") return;
    if (info.requested === "auto" && info.backend === "cpu") notice(`Running on the CPU: ${info.reason}.`, null, "info");
    else clearNotice();
  });
  client.addEventListener("notice", ({ detail }) => notice(detail.text, null, detail.kind));
  client.start();
  return client;
}

/** Show `text` (with a Retry button calling `retry`, if given). `kind`: "load-error", "info",
 * "job" (a job cancelled: cleared once another job is done) or "recovery" (the model restarted:
 * kept until the user picks a backend). */
export function notice(text, retry, kind = "info") {
  const box = $("#notice");
  box.hidden = false;
  box.dataset.kind = kind;
  box.replaceChildren(document.createTextNode(text));
  if (retry) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = "Retry";
    b.addEventListener("click", retry);
    box.append(" ", b);
  }
}

export function clearNotice() {
  const box = $("#notice");
  box.hidden = true;
  delete box.dataset.kind;
  box.replaceChildren();
}

function noticeKind() {
  const box = $("#notice");
  return box.hidden ? null : box.dataset.kind;
}

/** Draw a grey image at (x, y) of a 2D context. */
export function putGray(ctx, image, x = 0, y = 0) {
  const { width, height, pixels } = image;
  const data = ctx.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const v = pixels[i];
    data.data.set([v, v, v, 255], i * 4);
  }
  ctx.putImageData(data, x, y);
}

/** The grid decoded so far: decoded cells as their code's preview patch (or grey without
 * patches), cells decoded this step outlined, the rest dark. */
export function drawReveal(ctx, ev, factor, patches, x0 = 0, y0 = 0) {
  const { gridH, gridW, tokens, positions } = ev;
  const f = factor;
  const img = ctx.createImageData(gridW * f, gridH * f);
  const fresh = new Set(positions);
  for (let cell = 0; cell < gridH * gridW; cell++) {
    const code = tokens[cell];
    const cy = Math.floor(cell / gridW) * f;
    const cx = (cell % gridW) * f;
    for (let dy = 0; dy < f; dy++) {
      for (let dx = 0; dx < f; dx++) {
        let rgb;
        if (code < 0) rgb = [24, 28, 40];
        else {
          const v = patches ? patches[code * f * f + dy * f + dx] : 160;
          const edge = dx === 0 || dy === 0 || dx === f - 1 || dy === f - 1;
          rgb = fresh.has(cell) && edge ? [255, 170, 0] : [v, v, v];
        }
        img.data.set([...rgb, 255], ((cy + dy) * gridW * f + cx + dx) * 4);
      }
    }
  }
  ctx.putImageData(img, x0, y0);
}

// ---- downloads: PNG bytes come from the wasm runtime (`encodePng`, the library's PNG writer).

/** The CPU build of the runtime, loaded on this page at the first download. It is the small one
 * (the service worker precaches it), needs no model, and does not wait for the model's worker,
 * which may be busy, loading or restarting. */
let pngRuntime = null;

/** Save `image` ({width, height, pixels}, grey) as a PNG named `name`, with `texts` ({keyword:
 * text}) as text chunks. */
export async function downloadPng(image, texts, name) {
  pngRuntime ??= import("/pkg/cpu/arpg.js").then(async (mod) => (await mod.default(), mod));
  let runtime;
  try {
    runtime = await pngRuntime;
  } catch (e) {
    pngRuntime = null; // try again at the next download
    throw e;
  }
  saveBlob(new Blob([runtime.encodePng(image, texts)], { type: "image/png" }), name);
}

/** Save a Blob under `name` through a temporary object URL. */
function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Keep the app (shell, wasm, checkpoint) available offline. */
export function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return Promise.resolve(null);
  return navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((e) => {
    console.warn("service worker registration failed:", e);
    return null;
  });
}
