// The painting tool: an image (painted on in colour, or grey for a grey model), a token-level mask
// painted over it, and the zero-shot edits (in-paint, out-paint, expand 2x), at a zoom that keeps
// whole pixels. Each model has its own image and mask, kept across reloads (IndexedDB, key
// `paint.<model id>`).

import {
  $, classNames, downloadPng, drawReveal, fromRgba, modelTexts, notice, optionTexts, putImage, registerServiceWorker,
  startClient, stepText,
} from "/common.js";
import { classPicker } from "/classes.js";
import * as store from "/store.js";

const client = startClient();
registerServiceWorker();

const view = $("#view");
const vctx = view.getContext("2d");
const stats = $("#stats");
const picker = classPicker($("#class-picker")); // the class of new images and of the edits

let owner = null; // the id of the model the image belongs to
let image = null; // {width, height, channels, pixels}, in the model's channels
let token = null; // pixels per token side: the model's (saved with the image)
let mask = null; // Uint8Array, one byte per token (1 = regenerate)
let before = null; // the image before the last edit (hold to compare)
let comparing = false;
let undoStack = [];
let redoStack = [];
let reveal = null; // the step being shown while a job runs
let lastOp = null;
let jobs = 0; // job() calls: only the newest one updates the page

// Test and debugging hook (read-only use).
window.__arpg = {
  client,
  get image() { return image; },
  get mask() { return mask; },
  get before() { return before; },
  get lastOp() { return lastOp; },
};

const grid = () => ({ h: image.height / token, w: image.width / token });

/** The model's info (image size, token size, channels, budget), once it is ready. */
const modelInfo = () => client.info ? Promise.resolve(client.info)
  : new Promise((resolve) => client.addEventListener("ready", ({ detail }) => resolve(detail), { once: true }));
const snapshot = () => ({ image, mask: mask && mask.slice(), before });
const restore = (s) => ({ image, mask, before } = s);

function pushHistory() {
  undoStack.push(snapshot());
  if (undoStack.length > 100) undoStack.shift();
  redoStack = [];
}

function setImage(img, { keepMask = false, record = true } = {}) {
  if (record && image) pushHistory();
  const sameSize = image && image.width === img.width && image.height === img.height;
  before = image && record ? image : before;
  image = img;
  if (!(keepMask && sameSize && mask)) mask = new Uint8Array((img.width / token) * (img.height / token));
  changed();
}

function changed() {
  draw();
  persist();
  $("#undo").disabled = undoStack.length === 0;
  $("#redo").disabled = redoStack.length === 0;
  const n = mask ? mask.reduce((a, b) => a + b, 0) : 0;
  document.body.dataset.maskCells = String(n);
  document.body.dataset.image = image ? `${image.width}x${image.height}` : "";
}

let persistTimer = 0;
function persist() {
  clearTimeout(persistTimer);
  persistTimer = setTimeout(() => {
    if (image && owner) store.put(`paint.${owner}`, { image, mask, before, token }).catch((e) => console.warn("IndexedDB:", e));
  }, 150);
}

// ------------------------------------------------------------------ drawing

const scratch = document.createElement("canvas");
const ZOOMS = [1, 2, 3, 4, 6, 8];
/** Screen pixels per image pixel: a whole number, so that every token cell is whole screen
 * pixels and the brush (cellAt) lands on the cell drawn under it. Zoom 1 fits about 384 px. */
function scale() {
  return Math.max(2, Math.floor(384 / Math.max(image.width, image.height))) * Number($("#zoom").value);
}

function zoomBy(step) {
  const z = $("#zoom");
  const i = ZOOMS.indexOf(Number(z.value)) + step;
  if (i >= 0 && i < ZOOMS.length) z.value = String(ZOOMS[i]);
  draw();
}

function draw() {
  if (!image) return;
  const s = scale();
  const shown = comparing && before ? before : image;
  view.width = shown.width * s;
  view.height = shown.height * s;
  scratch.width = shown.width;
  scratch.height = shown.height;
  const sctx = scratch.getContext("2d");
  putImage(sctx, shown);
  if (reveal && !comparing) drawReveal(sctx, reveal, client.info, client.patches);
  vctx.imageSmoothingEnabled = false;
  vctx.drawImage(scratch, 0, 0, view.width, view.height);
  if (comparing || shown !== image) return;
  const { h, w } = grid();
  const cell = token * s;
  vctx.fillStyle = "rgba(255, 40, 60, 0.45)";
  for (let i = 0; i < h * w; i++) if (mask[i]) vctx.fillRect((i % w) * cell, Math.floor(i / w) * cell, cell, cell);
  vctx.strokeStyle = "rgba(120, 160, 255, 0.25)";
  vctx.lineWidth = 1;
  vctx.beginPath();
  for (let x = 0; x <= w; x++) vctx.moveTo(x * cell + 0.5, 0), vctx.lineTo(x * cell + 0.5, view.height);
  for (let y = 0; y <= h; y++) vctx.moveTo(0, y * cell + 0.5), vctx.lineTo(view.width, y * cell + 0.5);
  vctx.stroke();
}

// ------------------------------------------------------------------ mask painting (pointer events)

let stroke = null; // {tool, last: [x, y]} in token units
const tool = () => document.querySelector('input[name="tool"]:checked').value;
const size = () => Number($("#size").value);

function cellAt(ev) {
  const r = view.getBoundingClientRect();
  const { h, w } = grid();
  return [((ev.clientX - r.left) / r.width) * w, ((ev.clientY - r.top) / r.height) * h];
}

/** Paint the colour picker's colour (in the image's channels) on a disc of `size()` tokens. */
function dabColour([x, y]) {
  const hex = $("#colour").value;
  const rgba = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).concat(255);
  const { pixels: value, channels: c } = fromRgba(rgba, 1, 1, image.channels || 1);
  const [px, py, rad] = [x * token, y * token, (size() * token) / 2];
  for (let iy = Math.max(0, Math.floor(py - rad)); iy < Math.min(image.height, Math.ceil(py + rad)); iy++) {
    for (let ix = Math.max(0, Math.floor(px - rad)); ix < Math.min(image.width, Math.ceil(px + rad)); ix++) {
      if ((ix + 0.5 - px) ** 2 + (iy + 0.5 - py) ** 2 <= rad * rad) image.pixels.set(value, (iy * image.width + ix) * c);
    }
  }
}

/** One dab of the current stroke's tool at `p` (token units). */
function dabAt(p) {
  if (stroke.tool === "colour") dabColour(p);
  else dab(p, stroke.tool === "eraser");
}

function dab([x, y], erase) {
  const { h, w } = grid();
  const n = size();
  const rad = n / 2;
  for (let cy = Math.floor(y - rad); cy <= Math.floor(y + rad); cy++) {
    for (let cx = Math.floor(x - rad); cx <= Math.floor(x + rad); cx++) {
      if (cx < 0 || cy < 0 || cx >= w || cy >= h) continue;
      const inside = n === 1 ? cx === Math.floor(x) && cy === Math.floor(y)
        : (cx + 0.5 - x) ** 2 + (cy + 0.5 - y) ** 2 <= rad * rad;
      if (inside) mask[cy * w + cx] = erase ? 0 : 1;
    }
  }
}

view.addEventListener("pointerdown", (ev) => {
  if (!image || ev.button > 0 || comparing) return;
  view.setPointerCapture(ev.pointerId);
  pushHistory();
  const p = cellAt(ev);
  stroke = { tool: ev.button === 5 ? "eraser" : tool(), last: p };
  if (stroke.tool === "colour") image = { ...image, pixels: image.pixels.slice() }; // undo keeps the old pixels
  dabAt(p);
  draw();
});
view.addEventListener("pointermove", (ev) => {
  if (!stroke) return;
  const p = cellAt(ev);
  const [x0, y0] = stroke.last;
  const steps = Math.max(1, Math.ceil(Math.hypot(p[0] - x0, p[1] - y0) * 2));
  for (let i = 1; i <= steps; i++) dabAt([x0 + ((p[0] - x0) * i) / steps, y0 + ((p[1] - y0) * i) / steps]);
  stroke.last = p;
  draw();
});
const endStroke = () => {
  if (!stroke) return;
  stroke = null;
  changed();
};
view.addEventListener("pointerup", endStroke);
view.addEventListener("pointercancel", endStroke);

// ------------------------------------------------------------------ opening images

const MAX_FILE_BYTES = 32 << 20;
const MAX_PIXELS = 4096 * 4096; // the library's image::MAX_PIXELS

/** Width and height from a PNG's IHDR chunk, or null when `bytes` do not start like a PNG. */
function pngSize(bytes) {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (bytes.length < 24 || sig.some((b, i) => bytes[i] !== b)) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  return { width: v.getUint32(16), height: v.getUint32(20) };
}

/** Any image file -> pixels in the model's channels (grey or RGB), transparency composited onto
 * the model's background (the checkpoint's). Sides are kept when they are whole tokens from the
 * model's frame (half of it for a multi-scale model, whose 2x expansion starts there) up to the
 * token budget. Anything else is fitted to the frame: scaled (down or up) keeping its aspect so
 * that its shorter side is the frame's, centred, the overflow of the longer side cropped, and a
 * notice says so. `pad` (the bundled samples): scaled down only, centred and padded with the
 * background instead, as the model's dataset was framed for training (Fashion-MNIST's 28x28 in
 * 32x32). Refused with a message (the current image and mask stay): files over 32 MiB, images
 * over 4096x4096 pixels (a PNG from its header, before decoding), anything the browser cannot
 * decode. */
async function openFile(file, { pad = false } = {}) {
  const info = await modelInfo();
  const name = JSON.stringify(file.name || "the file");
  const bitmap = await decode(file, name);
  const { width, height } = bitmap;
  const [f, frame] = [info.factor, info.imageSize];
  const minSide = info.multiScale ? frame / 2 : frame;
  const maxSide = Math.floor(Math.sqrt(info.maxCells)) * f; // a square within the token budget
  const side = (n) => n % f === 0 && n >= minSide && n <= maxSide;
  const fits = side(width) && side(height);
  const place = fits ? { k: 1, x: 0, y: 0, dw: width, dh: height } : placement(width, height, frame, pad);
  const [cw, ch] = fits ? [width, height] : [frame, frame];
  const c = document.createElement("canvas");
  [c.width, c.height] = [cw, ch];
  const cx = c.getContext("2d");
  const rgb = [0, 1, 2].map((i) => info.background[i] ?? info.background[0]); // grey: one value
  const bg = `rgb(${rgb.join(", ")})`;
  cx.fillStyle = bg;
  cx.fillRect(0, 0, cw, ch);
  cx.imageSmoothingQuality = "high";
  cx.drawImage(bitmap, place.x, place.y, place.dw, place.dh);
  bitmap.close();
  const opened = fromRgba(cx.getImageData(0, 0, cw, ch).data, cw, ch, info.channels);
  before = null;
  token = f;
  setImage(opened);
  if (!fits) notice(fittedText(name, width, height, place, frame, pad && bg), null, "fitted");
}

/** The file's pixels as an ImageBitmap, or an error that names the file and says why not. */
async function decode(file, name) {
  if (file.size > MAX_FILE_BYTES) {
    throw new Error(`cannot open ${name}: ${(file.size / 2 ** 20).toFixed(0)} MiB is more than the limit of 32 MiB`);
  }
  const tooLarge = (w, h) =>
    new Error(`cannot open ${name}: the image is ${w}x${h}, more than the limit of ${MAX_PIXELS} pixels`);
  const header = pngSize(new Uint8Array(await file.slice(0, 24).arrayBuffer()));
  if (header && header.width * header.height > MAX_PIXELS) throw tooLarge(header.width, header.height);
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (e) {
    throw new Error(`cannot open ${name}: not an image this browser can decode (${e.message})`);
  }
  if (bitmap.width * bitmap.height > MAX_PIXELS) {
    bitmap.close();
    throw tooLarge(bitmap.width, bitmap.height);
  }
  return bitmap;
}

/** Where a `width`x`height` image goes in a `frame` square: {k (its scale), x, y, dw, dh}. Scaled
 * to cover the frame (the longer side overflows, centred: cropped), or with `pad` to fit in it,
 * never enlarged (the rest is background). */
function placement(width, height, frame, pad) {
  const k = pad ? Math.min(1, frame / Math.max(width, height)) : frame / Math.min(width, height);
  const [dw, dh] = [Math.max(1, Math.round(width * k)), Math.max(1, Math.round(height * k))];
  return { k, dw, dh, x: Math.floor((frame - dw) / 2), y: Math.floor((frame - dh) / 2) };
}

/** The notice for a fitted image, e.g. `"photo.jpg" is 640x480: scaled to 341x256 and
 * centre-cropped to the model's 256x256 frame.` `bg`: the colour it was padded with (`pad`), else false. */
function fittedText(name, width, height, { k, dw, dh }, frame, bg) {
  const scaled = k === 1 ? [] : [`scaled to ${dw}x${dh}`];
  const to = `the model's ${frame}x${frame} frame`;
  if (bg) return `${name} is ${width}x${height}: ${[...scaled, `centred in ${to}`].join(", ")}, padded with the model's background ${bg}.`;
  if (dw > frame || dh > frame) return `${name} is ${width}x${height}: ${[...scaled, `centre-cropped to ${to}`].join(" and ")}.`;
  return `${name} is ${width}x${height}: ${scaled[0]} to fill ${to}.`;
}

$("#file").addEventListener("change", (e) => e.target.files[0] && openFile(e.target.files[0]).catch(fail));

/** A bundled sample of the model's dataset, `/samples/<class>-<name>.png` (listed in the manifest,
 * precached by the service worker), opened like a file but framed as the dataset was (padded);
 * the class picker follows it. */
async function openSample(value) {
  const res = await fetch(`/samples/${value}.png`);
  if (!res.ok) throw new Error(`cannot load the sample ${value}: HTTP ${res.status}`);
  await openFile(new File([await res.blob()], `${value}.png`, { type: "image/png" }), { pad: true });
  picker.pick(Number(value.split("-")[0]));
}
$("#sample").addEventListener("change", (e) => {
  if (e.target.value) openSample(e.target.value).catch(fail);
  e.target.value = "";
});
const drop = $("#drop");
drop.addEventListener("dragover", (e) => (e.preventDefault(), drop.classList.add("over")));
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const f = e.dataTransfer.files[0];
  if (f) openFile(f).catch(fail);
});

// ------------------------------------------------------------------ edits

/** The options of a paint operation: the model's sampling defaults for it (its checkpoint's) and
 * the page's fields. */
function options(op) {
  let seed = Math.max(0, Math.floor(Number($("#seed").value) || 0));
  if ($("#seed-random").checked) {
    seed = Math.floor(Math.random() * 2 ** 32);
    $("#seed").value = String(seed);
  }
  const sampling = client.info.sampling[op];
  return { ...sampling, steps: Number($("#steps").value) || sampling.steps, order: $("#order").value, seed };
}

function fail(e) {
  if (e.message === "cancelled") stats.textContent = "cancelled";
  else stats.textContent = `error: ${e.message}`;
  document.body.dataset.run = e.message === "cancelled" ? "cancelled" : "error";
}

async function job(op, args, apply) {
  const klass = picker.value;
  const opts = options(op);
  const mine = ++jobs;
  reveal = null; // a replaced job's last step
  document.body.dataset.run = "running";
  $("#cancel").disabled = false;
  stats.textContent = `${op}…`;
  try {
    const out = await client.run(op, { ...args, class: klass, options: opts }, (ev, ms) => {
      if (mine !== jobs) return;
      reveal = image && ev.gridH * token === image.height && ev.gridW * token === image.width ? ev : null;
      draw();
      stats.textContent = `${op}: ${stepText(ev, ms)}`;
    });
    reveal = null;
    lastOp = { op, class: klass, options: opts };
    apply(out.result);
    stats.textContent = `${op}: ${out.stepMs.length} steps in ${out.ms.toFixed(0)} ms`;
    document.body.dataset.run = "done";
  } catch (e) {
    if (mine !== jobs) return; // replaced by a newer job (the notice says so)
    reveal = null;
    draw();
    fail(e);
  } finally {
    if (mine === jobs) $("#cancel").disabled = true;
  }
}

const current = () => ({ width: image.width, height: image.height, channels: image.channels || 1, pixels: image.pixels });

function newImage() {
  return job("generate", { classes: [picker.value] }, (r) => {
    before = null;
    token = client.info.factor;
    setImage(r[0]);
  });
}

function inpaint() {
  if (!image) return;
  const { w } = grid();
  if (!mask.some(Boolean)) return fail(new Error("paint the tokens to regenerate first"));
  const pm = new Uint8Array(image.width * image.height);
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) pm[y * image.width + x] = mask[Math.floor(y / token) * w + Math.floor(x / token)] ? 255 : 0;
  }
  return job("inpaint", { image: current(), mask: pm }, (r) => setImage(r, { keepMask: true }));
}

function outpaint() {
  if (!image) return;
  const sides = {};
  for (const k of ["left", "right", "top", "bottom"]) sides[k] = Math.max(0, Math.floor(Number($(`#${k}`).value) || 0));
  return job("outpaint", { image: current(), sides }, (r) => setImage(r));
}

function expand() {
  if (!image) return;
  return job("expand", { image: current(), factor: 2 }, (r) => setImage(r));
}

function undo() {
  if (!undoStack.length) return;
  redoStack.push(snapshot());
  restore(undoStack.pop());
  changed();
}
function redo() {
  if (!redoStack.length) return;
  undoStack.push(snapshot());
  restore(redoStack.pop());
  changed();
}
function clearMask() {
  if (!image || !mask.some(Boolean)) return;
  pushHistory();
  mask = new Uint8Array(mask.length);
  changed();
}

async function download() {
  if (!image) return;
  const names = client.info ? classNames(client.info) : [];
  const texts = { Software: "arpg (browser paint)" };
  if (lastOp) {
    const klass = `${lastOp.class} ${names[lastOp.class] || ""}`.trim();
    Object.assign(texts, { Operation: lastOp.op, Class: klass, ...optionTexts(lastOp.options) });
  }
  if (client.info) Object.assign(texts, modelTexts(client));
  await downloadPng(image, texts, `arpg-paint-${image.width}x${image.height}.png`).catch((e) => {
    stats.textContent = `download failed: ${e.message}`;
  });
}

function setCompare(on) {
  if (comparing === on) return;
  comparing = on && !!before;
  $("#compare").classList.toggle("active", comparing);
  draw();
}

$("#new").addEventListener("click", newImage);
$("#inpaint").addEventListener("click", inpaint);
$("#outpaint").addEventListener("click", outpaint);
$("#expand").addEventListener("click", expand);
$("#cancel").addEventListener("click", () => client.cancel("edit cancelled"));
$("#undo").addEventListener("click", undo);
$("#redo").addEventListener("click", redo);
$("#clear").addEventListener("click", clearMask);
$("#download").addEventListener("click", download);
$("#size").addEventListener("input", () => ($("#size-out").textContent = $("#size").value));
$("#zoom").addEventListener("change", draw);
const cmp = $("#compare");
cmp.addEventListener("pointerdown", () => setCompare(true));
for (const t of ["pointerup", "pointerleave", "pointercancel"]) cmp.addEventListener(t, () => setCompare(false));

document.addEventListener("keydown", (e) => {
  if (e.target.closest("input[type=number], select, textarea, .class-picker")) return; // their own keys
  const k = e.key.toLowerCase();
  const mod = e.ctrlKey || e.metaKey;
  if (mod && k === "z") (e.shiftKey ? redo() : undo(), e.preventDefault());
  else if (mod && k === "y") (redo(), e.preventDefault());
  else if (mod) return;
  else if (k === "b") document.querySelector('input[name="tool"][value="brush"]').checked = true;
  else if (k === "e") document.querySelector('input[name="tool"][value="eraser"]').checked = true;
  else if (k === "p") document.querySelector('input[name="tool"][value="colour"]').checked = true;
  else if (k === "+" || k === "=" || k === "-") zoomBy(k === "-" ? -1 : 1);
  else if (k === "[" || k === "]") {
    const s = $("#size");
    s.value = String(Math.min(6, Math.max(1, Number(s.value) + (k === "]" ? 1 : -1))));
    $("#size-out").textContent = s.value;
  } else if (k === "m") clearMask();
  else if (k === "i") inpaint();
  else if (k === "o") outpaint();
  else if (k === "x") expand();
  else if (k === "g") newImage();
  else if (k === "d") download();
  else if (k === "c" && !e.repeat) setCompare(true);
  else if (k === "escape") client.cancel("edit cancelled");
});
document.addEventListener("keyup", (e) => e.key.toLowerCase() === "c" && setCompare(false));

// ------------------------------------------------------------------ start

const params = new URLSearchParams(location.search);
if (params.has("seed")) {
  $("#seed").value = params.get("seed");
  $("#seed-random").checked = false;
}
if (params.has("steps")) $("#steps").value = params.get("steps");
if (params.has("order")) $("#order").value = params.get("order");
picker.value = Math.max(0, Math.floor(Number(params.get("class")) || 0));

/** A saved state this model can edit: its token size and channels, whole tokens. */
function editable(saved, info) {
  const img = saved && saved.image;
  return !!img && saved.token === info.factor && (img.channels || 1) === info.channels &&
    img.width % info.factor === 0 && img.height % info.factor === 0;
}

/** The model's saved state. One saved before each model had its own (key `paint`, the grey
 * model's) goes, once, to the first model that can edit it. */
async function savedState(id, info) {
  const own = await store.get(`paint.${id}`).catch(() => null);
  if (own) return own;
  const old = await store.get("paint").catch(() => null);
  if (!editable(old, info)) return null;
  await store.put(`paint.${id}`, old).then(() => store.del("paint")).catch(() => {});
  return old;
}

/** The model's image and mask from IndexedDB, else a new image of the class. */
async function openModelState(info) {
  const id = client.model.id;
  const saved = await savedState(id, info);
  if (client.model.id !== id) return; // another model was picked meanwhile
  if (editable(saved, info)) {
    ({ image, mask, before, token } = saved);
    changed();
  } else if (!client.busy) {
    newImage();
  }
}

/** A new model (first load or picked): drop the other model's image, jobs and history. A
 * restart of the same model (another backend, a recovery) keeps everything. */
client.addEventListener("ready", ({ detail: info }) => {
  picker.setClasses(classNames(info));
  if (picker.value >= info.nClasses) picker.pick(0); // a class this model lacks (and the URL says so)
  const samples = client.model.samples;
  $("#samples").hidden = samples.length === 0;
  $("#sample").replaceChildren(new Option("choose…", ""), ...samples.map((s) => {
    const k = Number(s.split("-")[0]);
    return new Option(classNames(info)[k] || s, s);
  }));
  $("#steps").max = String(info.gridH * info.gridW);
  if (owner === client.model.id) return;
  owner = client.model.id;
  if (!params.has("steps")) $("#steps").value = String(info.sampling.generate.steps);
  jobs++; // results of the other model's jobs are not applied
  image = mask = before = reveal = lastOp = null;
  undoStack = [];
  redoStack = [];
  changed();
  openModelState(info);
});
changed();
