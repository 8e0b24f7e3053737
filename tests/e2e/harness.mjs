// Shared by the browser tests: a served copy of the app with a checkpoint, Debian's chromium
// through playwright-core, and the watchers for foreign requests and console errors.

import { spawn, execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const ROOT = process.env.ARPG_ROOT || path.resolve(import.meta.dirname, "../..");
export const BIN = process.env.ARPG_BIN || path.join(os.homedir(), ".cache/arpg/target/release/arpg");
export const SERVE_BIN = process.env.ARPG_SERVE_BIN || path.join(path.dirname(BIN), "arpg-serve");
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const MODEL = "arpg-fmnist-int8.arpg";

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

/** A temporary serving root: www/ and pkg/ of the repo, and a checkpoint in www/models/ — the
 * repo's own when www/models/manifest.json exists, else an untrained one made by `arpg init`
 * (its images are noise, but every code path runs). `preset` (e.g. "test": 4x4 tokens, 16 codes)
 * always serves an untrained checkpoint of that preset instead: small enough for the software
 * WebGPU adapter. Returns {dir, model: {file, sha256}}. The files are hard links into the repo:
 * replace them (`replaceFile`), never write into them. */
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
    replaceFile(manifestPath, JSON.stringify({ file, sha256 }, null, 2));
  }
  return { dir, model: JSON.parse(fs.readFileSync(manifestPath, "utf8")) };
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

/** Non-blank: not all pixels equal. */
export function nonBlank(pixels) {
  const a = pixels[0];
  return Array.prototype.some.call(pixels, (v) => v !== a);
}

export function root() {
  return path.resolve(ROOT);
}
