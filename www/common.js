// Shared by both pages: backend and model choice, the badge and notices, drawing images (grey or
// RGB, as the model makes them) and the token reveal, PNG downloads, and the service worker
// registration (offline use). What a page knows about the model (image size, token grid,
// channels, class names, background) comes from the engine's `info`, and its name, default steps
// and licence from its manifest entry (`client.model`, see models.js), never from constants here.

import { EngineClient } from "/client.js";
import { importModel, mb, progressText, removeLocal, storageUse } from "/local.js";
import { modelUrl } from "/models.js";

/** The checkpoint's class names (`class i` where it has none). */
export function classNames(info) {
  return Array.from({ length: info.nClasses }, (_, i) => info.classNames[i] || `class ${i}`);
}

export const $ = (sel) => document.querySelector(sel);

/** The backend asked for: ?backend=auto|webgpu|cpu, else the last choice, else auto. */
export function initialBackend() {
  const q = new URLSearchParams(location.search).get("backend");
  const saved = localStorage.getItem("arpg.backend");
  const pick = q || saved || "auto";
  return ["auto", "webgpu", "cpu"].includes(pick) ? pick : "auto";
}

/** The model asked for: ?model=<id>, else the last one picked, else null (the manifest's first). */
function initialModel() {
  return new URLSearchParams(location.search).get("model") || localStorage.getItem("arpg.model");
}

const OPEN = "open-file"; // the picker's "Open a model file…" item

/** Fill the model picker (#model) from the model list: the shipped models, then the user's own
 * (local.js), then "Open a model file…". Picking a model switches to it (the running job is
 * cancelled) and records it in the URL and for the next visit. Beside the picker: a button that
 * opens a model file, and one that removes the user's model shown. */
function wireModelPicker(client) {
  const picker = $("#model");
  const file = Object.assign(document.createElement("input"), { type: "file", id: "model-file", accept: ".arpg", hidden: true });
  const open = button("model-open", "Open a model file…", "an .arpg checkpoint from this machine (or drop it on the page); it is kept in this browser and never leaves this machine");
  const remove = button("model-remove", "Remove", "remove this model from this browser and free its storage");
  picker.closest("label").after(open, remove, file);
  const current = () => client.models?.find((m) => m.id === picker.value);
  const showRemove = () => (remove.hidden = !current()?.local);
  client.addEventListener("models", ({ detail: models }) => {
    const option = (m) => Object.assign(new Option(m.local ? `${m.name} · ${mb(m.bytes)}` : m.name, m.id), {
      title: `${m.classes} classes, ${m.imageSize}x${m.imageSize}, ${mb(m.bytes)}${m.local ? `, ${m.source}` : ""}`,
    });
    const own = models.filter((m) => m.local);
    const group = Object.assign(document.createElement("optgroup"), { label: "your model files (kept in this browser)" });
    group.append(...own.map(option));
    picker.replaceChildren(...models.filter((m) => !m.local).map(option), ...(own.length ? [group] : []),
      new Option("Open a model file…", OPEN));
    picker.value = client.model ? client.model.id : "";
    showRemove();
  });
  picker.addEventListener("change", () => {
    if (picker.value === OPEN) {
      picker.value = client.model ? client.model.id : "";
      file.click();
      return;
    }
    showModel(client, picker.value);
    showRemove();
  });
  open.addEventListener("click", () => file.click());
  file.addEventListener("change", () => {
    if (file.files[0]) openModelFile(client, file.files[0]);
    file.value = "";
  });
  remove.addEventListener("click", () => current() && removeModel(client, current()));
  // A model file dropped anywhere on the page (other files are the page's own business: paint.js).
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    const f = [...(e.dataTransfer?.files || [])].find(isModelFile);
    if (!f) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    openModelFile(client, f);
  }, true);
}

const isModelFile = (f) => /\.arpg$/i.test(f.name);

function button(id, text, title) {
  return Object.assign(document.createElement("button"), { type: "button", id, textContent: text, title, className: "model-button" });
}

/** Switch to model `id`, recorded in the URL and for the next visit. */
function showModel(client, id) {
  localStorage.setItem("arpg.model", id);
  const url = new URL(location.href);
  url.searchParams.set("model", id);
  history.replaceState(null, "", url);
  clearNotice();
  client.switchModel(id);
}

/** Imports in flight: the progress bar is theirs until they end (a model's own load shows its
 * progress there otherwise). */
let importing = 0;

/** A model file the user picked or dropped: verified, kept in this browser, then shown. A file
 * that is not a checkpoint, is truncated or does not fit the storage gets a one-line notice, and
 * nothing of it is kept. */
async function openModelFile(client, f) {
  const name = JSON.stringify(f.name);
  notice(`Opening ${name} (${mb(f.size)}): it is checked and kept in this browser; the file never leaves this machine.`, null, "import");
  let phase = null;
  let t0 = 0;
  importing++;
  try {
    const { entry, existed } = await importModel(f, (p) => {
      if (p.phase !== phase) [phase, t0] = [p.phase, performance.now()];
      const what = phase === "checking" ? `checking ${name}` : `storing ${name} in this browser`;
      showProgress(progressText(what, p.bytes, p.total, t0), p.bytes / p.total);
    });
    showProgress(null);
    navigator.storage.persist?.().catch(() => {}); // ask the browser not to evict it (pages only)
    showModel(client, entry.id);
    notice(existed ? `${entry.name} is already kept in this browser.`
      : `${entry.name} (${mb(entry.bytes)}) is kept in this browser, for use offline too; it never leaves this machine.`,
    null, "model");
  } catch (e) {
    showProgress(null);
    notice(e.message, null, "import-error");
  } finally {
    importing--;
  }
}

/** Remove one of the user's models from this browser; says how much storage that freed. */
async function removeModel(client, entry) {
  const before = await storageUse();
  try {
    await removeLocal(entry);
  } catch (e) {
    return notice(`could not remove ${entry.name}: ${e.message}`, null, "import-error");
  }
  const after = await storageUse();
  const freed = before && after ? `: ${mb(Math.max(0, before.usage - after.usage))} of storage freed` : "";
  if (client.model?.id === entry.id) {
    localStorage.removeItem("arpg.model");
    const url = new URL(location.href);
    url.searchParams.delete("model");
    history.replaceState(null, "", url);
    client.switchModel(null);
  } else {
    await client.refreshModels();
  }
  notice(`${entry.name} was removed from this browser${freed}.`, null, "model");
}

/** The progress bar under the status line: `fraction` of the work done, with `text` (null hides it). */
function showProgress(text, fraction) {
  let bar = $("#progress");
  if (!bar) {
    bar = Object.assign(document.createElement("progress"), { id: "progress", max: 1 });
    $("#status").after(bar);
  }
  bar.hidden = text === null;
  if (text === null) return;
  bar.value = fraction;
  $("#status").textContent = text;
}

/** A client wired to the page's badge (#backend), backend menu (#backend-choice), model picker
 * (#model), status line (#status), notice box (#notice, with a Retry button on load failures)
 * and licence line (#licence). */
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
  wireModelPicker(client);
  client.addEventListener("status", ({ detail }) => {
    status.textContent = detail.text;
    if (!importing) showProgress(detail.total ? detail.text : null, detail.bytes / detail.total);
    status.dataset.state = detail.state;
    document.body.dataset.engine = detail.state;
    if (detail.done && noticeKind() === "job") clearNotice(); // a job ran since the cancel
    if (detail.state === "error") {
      notice(`Could not start the model: ${detail.text}`, () => client.open(client.model?.id ?? initialModel()), "load-error");
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
    badge.title = `${info.reason}\nadapter: ${adapter}${a && a.software ? " (software)" : ""}\n` +
      `model: ${client.model.name}, sha256 ${info.checksum}`;
    $("#backend-detail").textContent = info.reason;
    $("#licence").textContent = client.model.licence;
    const cell = `${info.factor}×${info.factor}-pixel cells, ${info.gridW}×${info.gridH} of them`;
    document.querySelectorAll(".cell-size").forEach((e) => (e.textContent = cell));
    keepOffline(modelUrl(client.model));
    // A recovery notice stays: it says why the model now runs elsewhere; so does one about the
    // model asked for.
    if (["recovery", "model", "gpu-build"].includes(noticeKind())) return;
    if ((info.requested === "auto" || info.gpuPending) && info.backend === "cpu") {
      notice(`Running on the CPU: ${info.reason}.`, null, "info");
    }
    else clearNotice();
  });
  client.addEventListener("notice", ({ detail }) => notice(detail.text, null, detail.kind));
  client.open(initialModel());
  return client;
}

/** Show `text` (with a Retry button calling `retry`, if given). `kind`: "load-error", "info",
 * "job" (a job cancelled: cleared once another job is done), "recovery" (the model restarted:
 * kept until the user picks a backend), "gpu-build" (the model moved to the WebGPU build once
 * it was there), "model" (the model asked for is not there, or one was kept or removed: kept
 * until the user picks one), "import-error" (a model file refused) or "fitted" (paint.js). */
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

/** The RGB of pixel `i` of `pixels` with `channels` values per pixel (1 grey, 3 RGB). */
function rgbAt(pixels, channels, i) {
  const at = i * channels;
  return channels === 3 ? [pixels[at], pixels[at + 1], pixels[at + 2]] : [pixels[at], pixels[at], pixels[at]];
}

/** Draw an image ({width, height, channels, pixels}, grey or RGB) at (x, y) of a 2D context. */
export function putImage(ctx, image, x = 0, y = 0) {
  const { width, height, pixels } = image;
  const channels = image.channels || 1;
  const data = ctx.createImageData(width, height);
  for (let i = 0; i < width * height; i++) data.data.set([...rgbAt(pixels, channels, i), 255], i * 4);
  ctx.putImageData(data, x, y);
}

/** An image's pixels in `channels` channels: RGB to grey by the library's luminance
 * ((299 R + 587 G + 114 B) / 1000), grey to RGB repeated. `rgba`: canvas ImageData bytes. */
export function fromRgba(rgba, width, height, channels) {
  const pixels = new Uint8Array(width * height * channels);
  for (let i = 0; i < width * height; i++) {
    const [r, g, b] = [rgba[i * 4], rgba[i * 4 + 1], rgba[i * 4 + 2]];
    if (channels === 3) pixels.set([r, g, b], i * 3);
    else pixels[i] = Math.floor((299 * r + 587 * g + 114 * b) / 1000);
  }
  return { width, height, channels, pixels };
}

/** Copy `src` into `dst` (same channels) with its top-left corner at (x, y). */
export function paste(dst, src, x, y) {
  const c = dst.channels || 1;
  for (let row = 0; row < src.height; row++) {
    const line = src.pixels.subarray(row * src.width * c, (row + 1) * src.width * c);
    dst.pixels.set(line, ((y + row) * dst.width + x) * c);
  }
}

/** The grid decoded so far: decoded cells as their code's preview patch (or grey without
 * patches), cells decoded this step outlined, the rest dark. `info`: the engine's (token size
 * `factor`, `channels` of the patches). */
export function drawReveal(ctx, ev, info, patches, x0 = 0, y0 = 0) {
  const { gridH, gridW, tokens, positions } = ev;
  const f = info.factor;
  const channels = info.channels || 1;
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
          const patch = patches ? rgbAt(patches, channels, code * f * f + dy * f + dx) : [160, 160, 160];
          const edge = dx === 0 || dy === 0 || dx === f - 1 || dy === f - 1;
          rgb = fresh.has(cell) && edge ? [255, 170, 0] : patch;
        }
        img.data.set([...rgb, 255], ((cy + dy) * gridW * f + cx + dx) * 4);
      }
    }
  }
  ctx.putImageData(img, x0, y0);
}

// A running job's progress line, shared by both pages: the step, the time so far and, once a
// step is done, the time left. The ImageNet models take seconds to minutes for a job, where the
// small ones take milliseconds: the line says whether to wait or cancel.

/** `step 12/64 · 3.1 s · about 13 s left` for a step event `ev` ({step, steps}, step counted
 * from 0) at `ms` since the job began. Time left: the mean time per step so far times the
 * steps left (the first step, which warms up, makes it a little high at first). */
export function stepText(ev, ms) {
  const done = ev.step + 1;
  const parts = [`step ${done}/${ev.steps}`, duration(ms)];
  if (done < ev.steps) parts.push(`about ${duration((ms / done) * (ev.steps - done))} left`);
  return parts.join(" · ");
}

/** `0.4 s`, `13 s`, `2 min 05 s`. */
function duration(ms) {
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const whole = Math.round(s);
  return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s`;
}

/** The text chunks that name the model of a download: its name and its file's sha256. */
export function modelTexts(client) {
  return { Model: client.model.name, "Model sha256": client.info.checksum };
}

// ---- downloads: PNG bytes come from the wasm runtime (`encodePng`, the library's PNG writer).

/** The CPU build of the runtime, loaded on this page at the first download. It is the small one
 * (the service worker precaches it), needs no model, and does not wait for the model's worker,
 * which may be busy, loading or restarting. */
let pngRuntime = null;

/** PNG text chunks naming a job's options: the ones it set (the rest are the library's defaults). */
export function optionTexts(o) {
  return {
    Seed: String(o.seed),
    Steps: String(o.steps),
    ...(o.cfg === undefined ? {} : { CFG: [o.cfg, o.cfgSchedule].filter((v) => v !== undefined).join(" ") }),
    ...(o.temperature === undefined ? {} : { Temperature: String(o.temperature) }),
    Order: o.order,
  };
}

/** Save `image` ({width, height, channels, pixels}, grey or RGB) as a PNG named `name`, with
 * `texts` ({keyword: text}) as text chunks. */
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

/** Ask the service worker to keep `url` (a checkpoint) offline: models are cached when first
 * picked, not before (sw.js). */
function keepOffline(url) {
  navigator.serviceWorker?.ready.then((reg) => reg.active?.postMessage({ type: "keep", url }));
}

/** Keep the app (shell, wasm, the checkpoints used) available offline. */
export function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return Promise.resolve(null);
  return navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((e) => {
    console.warn("service worker registration failed:", e);
    return null;
  });
}
