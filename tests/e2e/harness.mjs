// Shared by the browser tests: a served copy of the app with a checkpoint, Debian's chromium
// through playwright-core, and the watchers for foreign requests and console errors.

import { spawn, execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

export const ROOT = process.env.ARPG_ROOT || path.resolve(import.meta.dirname, "../..");
export const BIN = process.env.ARPG_BIN || path.join(os.homedir(), ".cache/arpg/target/release/arpg");
export const SERVE_BIN = process.env.ARPG_SERVE_BIN || path.join(path.dirname(BIN), "arpg-serve");
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const MODEL = "arpg-fmnist-int8.arpg";

/** Where tests write screenshots: a temporary directory, or docs/ for `make screenshots`
 * (ARPG_SCREENSHOTS_DIR), so that a test run leaves the tree as it was. */
export function screenshotsDir() {
  screenshotsDir.dir ??= process.env.ARPG_SCREENSHOTS_DIR || fs.mkdtempSync(path.join(os.tmpdir(), "arpg-e2e-shots-"));
  fs.mkdirSync(screenshotsDir.dir, { recursive: true });
  return screenshotsDir.dir;
}

function copyDir(src, dst) {
  fs.mkdirSync(dst, { recursive: true });
  for (const e of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, e.name);
    const d = path.join(dst, e.name);
    if (e.isDirectory()) copyDir(s, d);
    else if (e.isFile()) {
      try {
        fs.linkSync(s, d);
      } catch {
        fs.copyFileSync(s, d);
      }
    }
  }
}

/** A temporary serving root: www/ and pkg/ of the repo, and the checkpoints in www/models/ — the
 * repo's own when www/models/manifest.json exists, else an untrained one made by `arpg init`
 * (its images are noise, but every code path runs). `preset` (e.g. "test": 4x4 tokens, 16 codes)
 * always serves an untrained checkpoint of that preset instead, as the only model: small enough
 * for the software WebGPU adapter. Returns {dir, models: [manifest entry], model: the first
 * (the pages' default)}. The files are hard links into the repo: replace them (`replaceFile`),
 * never write into them. */
export function makeRoot({ preset = null } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "arpg-e2e-root-"));
  if (!fs.existsSync(path.join(ROOT, "pkg/cpu/arpg.js"))) throw new Error(`${ROOT}/pkg is not built (make wasm)`);
  copyDir(path.join(ROOT, "www"), path.join(dir, "www"));
  copyDir(path.join(ROOT, "pkg"), path.join(dir, "pkg"));
  const models = path.join(dir, "www/models");
  const manifestPath = path.join(models, "manifest.json");
  if (preset || !fs.existsSync(manifestPath)) {
    fs.mkdirSync(models, { recursive: true });
    const file = preset ? `arpg-${preset}-init.arpg` : MODEL;
    const out = path.join(models, file);
    execFileSync(BIN, ["init", "--out", out, "--arch", "arpg", "--preset", preset || "tiny", "--dtype", "int8", "--seed", "2"], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    const sha256 = crypto.createHash("sha256").update(fs.readFileSync(out)).digest("hex");
    writeManifest(manifestPath, { file, sha256 });
  }
  const entries = JSON.parse(fs.readFileSync(manifestPath, "utf8")).models;
  return { dir, models: entries, model: entries[0] };
}

/** The sampling defaults of app model `id` for `task`, as the pages pass options: from the file
 * its checkpoint was written with (`arpg quantize --sampling models/sampling/<id>.json`), which
 * the engine then reads back from the checkpoint (`info().sampling`). */
export function samplingDefaults(id, task) {
  const d = JSON.parse(fs.readFileSync(path.join(ROOT, `models/sampling/${id}.json`), "utf8"));
  const t = d.tasks?.[task] ?? {};
  return {
    steps: d.steps,
    cfg: t.cfg ?? d.cfg,
    cfgSchedule: t.cfg_schedule ?? d.cfg_schedule,
    temperature: t.temperature ?? d.temperature,
    schedule: d.schedule,
  };
}

/** A manifest of one model, `entry` ({file, sha256, ...}) with a test id and name. */
export function writeManifest(file, entry) {
  replaceFile(file, JSON.stringify({ models: [{ id: "test", name: "test model", ...entry }] }, null, 2));
}

/** Give `file` new contents without touching the inode it may share with the repo (a hard link). */
export function replaceFile(file, contents) {
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, contents);
}

/** `arpg-serve --port 0` on `root`: {origin, stop()}. */
export async function serve(root) {
  const child = spawn(SERVE_BIN, ["--port", "0", "--root", root], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const origin = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`arpg-serve did not start: ${stderr}`)), 15_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/serving (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`arpg-serve exited (${code}): ${stderr}`)));
  });
  return {
    origin,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", resolve);
      child.kill("SIGTERM");
    }),
  };
}

/** GET `urlPath` from `origin` as a client accepting `encodings`: [bytes on the wire, the response's
 * Content-Encoding ("identity" when it has none)]. */
export function fetchEncoded(origin, urlPath, encodings) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${origin}${urlPath}`, { headers: { "accept-encoding": encodings } }, (res) => {
      let n = 0;
      res.on("data", (d) => (n += d.length));
      res.on("end", () => (res.statusCode === 200 ? resolve([n, res.headers["content-encoding"] || "identity"]) : reject(new Error(`${urlPath}: ${res.statusCode}`))));
    });
    req.on("error", reject);
  });
}

/** Debian chromium, headless, with a fresh profile. */
export async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "arpg-e2e-profile-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 760 },
    args: [
      "--no-sandbox", "--enable-unsafe-webgpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ...(process.env.ARPG_E2E_BROWSER_ARGS ? process.env.ARPG_E2E_BROWSER_ARGS.split(" ") : []),
    ],
  });
  if (!launch.printed) {
    // Which browser this run tests: Debian's chromium differs between machines.
    const page = context.pages()[0] || (await context.newPage());
    const { product } = await (await context.newCDPSession(page)).send("Browser.getVersion");
    console.log(`# browser: ${product} (${CHROMIUM})`);
    launch.printed = true;
  }
  const close = async () => {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

/** Record requests that leave `origin` and console errors (pages, workers, service worker). */
export function watch(context, origin) {
  const foreign = [];
  const errors = [];
  const onRequest = (req) => {
    const u = req.url();
    if (!(u.startsWith(origin + "/") || u.startsWith("data:") || u.startsWith("blob:"))) foreign.push(u);
  };
  context.on("request", onRequest);
  const hook = (page) => {
    page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
    page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
    page.on("request", onRequest);
  };
  context.pages().forEach(hook);
  context.on("page", hook);
  context.on("serviceworker", (w) => w.on("console", (m) => m.type() === "error" && errors.push(`sw: ${m.text()}`)));
  return { foreign, errors };
}

/** Assert that no request left the origin and that every console error matches one of `allow`
 * (regular expressions: the errors a test provokes on purpose). Returns the allowed errors. */
export function assertClean(w, allow = []) {
  if (w.foreign.length) throw new Error(`requests left the page's origin:\n${w.foreign.join("\n")}`);
  const unexpected = w.errors.filter((e) => !allow.some((re) => re.test(e)));
  if (unexpected.length) throw new Error(`unexpected console errors:\n${unexpected.join("\n")}`);
  return w.errors.filter((e) => !unexpected.includes(e));
}

/** Click `selector` on `page` and return the file it downloads: {name, bytes}. */
export async function download(page, selector) {
  const [file] = await Promise.all([page.waitForEvent("download", { timeout: 30_000 }), page.click(selector)]);
  const failure = await file.failure();
  if (failure) throw new Error(`the download of ${file.suggestedFilename()} failed: ${failure}`);
  return { name: file.suggestedFilename(), bytes: fs.readFileSync(await file.path()) };
}

const PNG_SIGNATURE = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);

/** A PNG file's header and text chunks, checked: the signature, every chunk's CRC, IHDR first, IEND
 * last, at least one IDAT. Returns {width, height, bitDepth, colorType, texts: {keyword: text}}
 * (tEXt, and uncompressed iTXt). The pixels are the browser's to decode (`decodePng`). */
export function readPng(bytes) {
  if (!bytes.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error("not a PNG (bad signature)");
  const chunks = [];
  for (let at = 8; at < bytes.length;) {
    if (at + 12 > bytes.length) throw new Error(`truncated chunk at byte ${at}`);
    const len = bytes.readUInt32BE(at);
    const type = bytes.toString("latin1", at + 4, at + 8);
    if (at + 12 + len > bytes.length) throw new Error(`truncated ${type} chunk at byte ${at}`);
    if (zlib.crc32(bytes.subarray(at + 4, at + 8 + len)) !== bytes.readUInt32BE(at + 8 + len)) {
      throw new Error(`bad CRC in the ${type} chunk at byte ${at}`);
    }
    chunks.push({ type, data: bytes.subarray(at + 8, at + 8 + len) });
    at += 12 + len;
  }
  const types = chunks.map((c) => c.type);
  if (types[0] !== "IHDR" || types.at(-1) !== "IEND" || !types.includes("IDAT")) {
    throw new Error(`chunks out of order: ${types.join(" ")}`);
  }
  const ihdr = chunks[0].data;
  const texts = {};
  for (const { type, data } of chunks) {
    const nul = data.indexOf(0);
    if (type === "tEXt") texts[data.toString("latin1", 0, nul)] = data.toString("latin1", nul + 1);
    if (type === "iTXt" && data[nul + 1] === 0) {
      // keyword \0 flag method language \0 translated keyword \0 text (UTF-8)
      const lang = data.indexOf(0, nul + 3);
      const translated = data.indexOf(0, lang + 1);
      texts[data.toString("latin1", 0, nul)] = data.toString("utf8", translated + 1);
    }
  }
  return { width: ihdr.readUInt32BE(0), height: ihdr.readUInt32BE(4), bitDepth: ihdr[8], colorType: ihdr[9], texts };
}

/** PNG bytes decoded by the browser on `page` (createImageBitmap): {width, height, rgb, grey,
 * rgbEqual, opaque}: the R, G, B values, the red channel alone, whether every pixel has R = G = B,
 * and whether every pixel is fully opaque. */
export function decodePng(page, bytes) {
  return page.evaluate(async (b64) => {
    const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([data], { type: "image/png" }));
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    const [rgb, grey] = [[], []];
    let [rgbEqual, opaque] = [true, true];
    for (let i = 0; i < rgba.length; i += 4) {
      rgb.push(rgba[i], rgba[i + 1], rgba[i + 2]);
      grey.push(rgba[i]);
      if (rgba[i + 1] !== rgba[i] || rgba[i + 2] !== rgba[i]) rgbEqual = false;
      if (rgba[i + 3] !== 255) opaque = false;
    }
    return { width: bitmap.width, height: bitmap.height, rgb, grey, rgbEqual, opaque };
  }, bytes.toString("base64"));
}

/** Non-blank: not all pixels equal. */
export function nonBlank(pixels) {
  const a = pixels[0];
  return Array.prototype.some.call(pixels, (v) => v !== a);
}

export function root() {
  return path.resolve(ROOT);
}

// ---------------------------------------------------------------- the pages

/** Wait until the page's current job ends ("done"; "error" fails with the page's message). */
export async function waitRun(page, timeout) {
  await page.waitForFunction(
    () => ["done", "error"].includes(document.body.dataset.run) || document.body.dataset.engine === "error",
    null,
    { timeout },
  );
  const state = await page.evaluate(() => ({
    run: document.body.dataset.run,
    stats: document.querySelector("#stats").textContent,
    status: document.querySelector("#status").textContent,
  }));
  assert.equal(state.run, "done", `the job failed: ${state.stats} / ${state.status}`);
  return state;
}

export async function clickAndWait(page, selector, timeout = 120_000) {
  await page.evaluate(() => (document.body.dataset.run = ""));
  await page.click(selector);
  return waitRun(page, timeout);
}

export function clean(w) {
  assert.deepEqual(w.foreign, [], "requests left the page's origin");
  assert.deepEqual(w.errors, [], "console errors");
}

/** The URLs of the WebGPU runtime build that `context` requested (the worker's imports too). */
export function gpuBuildRequests(context) {
  const urls = [];
  context.on("request", (r) => r.url().includes("/pkg/gpu/") && urls.push(r.url()));
  return urls;
}

/** Download the page's PNG (#download) and check it: a valid 8-bit PNG named `name`, grey
 * (`channels` 1) or RGB (3), of `width` x `height`, with exactly `texts` as text chunks, whose
 * pixels the browser decodes to `pixels` (`channels` values per pixel). */
export async function checkDownload(page, { name, width, height, channels = 1, texts, pixels }) {
  const file = await download(page, "#download");
  assert.equal(file.name, name);
  const png = readPng(file.bytes);
  assert.deepEqual(
    { width: png.width, height: png.height, bitDepth: png.bitDepth, colorType: png.colorType },
    { width, height, bitDepth: 8, colorType: channels === 3 ? 2 : 0 },
    "the PNG header",
  );
  assert.deepEqual(png.texts, texts, "the PNG text chunks");
  const decoded = await decodePng(page, file.bytes);
  assert.deepEqual([decoded.width, decoded.height, decoded.opaque], [width, height, true], "the decoded PNG");
  if (channels === 1) assert.ok(decoded.rgbEqual, "a grey PNG decoded to colours");
  assert.deepEqual(channels === 3 ? decoded.rgb : decoded.grey, pixels, "the PNG's pixels are not the page's image");
  console.log(`# download ${name}: ${file.bytes.length} bytes, ${width}x${height}, ${Object.keys(texts).length} text chunks`);
}
