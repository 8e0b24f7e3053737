// A model the user opens from their own file: the paper's layout at a test size (`arpg init
// --preset arpg-test`: 1000 ImageNet classes, 16x16 tokens of a 256x256 image, VQGAN), opened
// through the file input, kept in the origin-private file system, used offline after a reload,
// painted on at 256x256, and removed. Files that are not checkpoints, truncated ones and a full
// quota get a plain notice and leave nothing stored. One browser profile for the whole file: the
// tests follow each other (open, paint, refuse, remove).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { after, before, test } from "node:test";
import * as h from "./harness.mjs";

const { waitRun, clickAndWait } = h;

let root;
let server;
let browser; // {context, close}
let w; // requests and console errors (h.watch)
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "arpg-e2e-local-"));
const file = (name) => path.join(tmp, name);
let model; // {path, sha256, bytes}

before(async () => {
  root = h.makeRoot();
  const init = (out, seed) => execFileSync(h.BIN, ["init", "--preset", "arpg-test", "--dtype", "int8", "--seed", String(seed), "--out", out], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  init(file("imagenet-test.arpg"), 1);
  init(file("other.arpg"), 2);
  const bytes = fs.readFileSync(file("imagenet-test.arpg"));
  model = { path: file("imagenet-test.arpg"), sha256: crypto.createHash("sha256").update(bytes).digest("hex"), bytes: bytes.length };
  fs.writeFileSync(file("truncated.arpg"), bytes.subarray(0, Math.floor(bytes.length / 2)));
  fs.writeFileSync(file("random.arpg"), crypto.randomBytes(100_000));
  fs.writeFileSync(file("photo.png"), png(320, 240));
  server = await h.serve(root.dir);
  browser = await h.launch();
  w = h.watch(browser.context, server.origin);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (root) fs.rmSync(root.dir, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A w x h RGB PNG of smooth colours (a stand-in for a user's photo). */
function png(width, height) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      raw.set([(x * 255) / width, (y * 255) / height, ((x + y) * 97) % 256], y * (width * 3 + 1) + 1 + x * 3);
    }
  }
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, "ascii");
    data.copy(out, 8);
    out.writeUInt32BE(crc(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr),
    chunk("IDAT", zlib.deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

/** The files in the OPFS models/ directory, and the origin's storage use. */
const stored = (page) => page.evaluate(async () => {
  const root = await navigator.storage.getDirectory();
  const dir = await root.getDirectoryHandle("models", { create: true });
  const names = [];
  for await (const n of dir.keys()) names.push(n);
  return { names: names.sort(), usage: (await navigator.storage.estimate()).usage };
});

const noticeText = (page) => page.locator("#notice").textContent();
const clearNotice = () => Object.assign(document.querySelector("#notice"), { hidden: true }).removeAttribute("data-kind");

/** Wait until `test` (run in the page) holds: a model loaded and ready, say. */
const readyWith = (page, test) => page.waitForFunction(test, null, { timeout: 120_000 });

test("a model file opened through the file input is checked, kept in the browser, and generates a class found by typing part of its name; after a reload offline it loads from storage and generates the same image; screenshot", { timeout: 600_000 }, async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.origin}/?backend=cpu&batch=1&steps=4&seed=7&auto=0`);
  await page.waitForFunction(() => window.__arpg.client.info, null, { timeout: 60_000 });
  await page.setInputFiles("#model-file", model.path);
  await readyWith(page, () => window.__arpg.client.model?.local && window.__arpg.client.info);
  const id = `local-${model.sha256.slice(0, 12)}`;
  const info = await page.evaluate(() => {
    const { client } = window.__arpg;
    return { id: client.model.id, n: client.info.nClasses, size: client.info.imageSize, grid: [client.info.gridH, client.info.gridW], factor: client.info.factor };
  });
  assert.deepEqual(info, { id, n: 1000, size: 256, grid: [16, 16], factor: 16 });
  assert.match(await noticeText(page), /never leaves this machine/);
  assert.match(page.url(), new RegExp(`model=${id}`));
  assert.deepEqual((await stored(page)).names, [`${model.sha256}.arpg`, `${model.sha256}.json`]);
  const option = await page.locator(`#model option[value="${id}"]`).textContent();
  assert.equal(option, `imagenet-test · ${(model.bytes / 1e6).toFixed(1)} MB`);
  assert.match(await page.locator(`#model option[value="${id}"]`).getAttribute("title"), /1000 classes, 256x256, .*opened from imagenet-test\.arpg, \d{4}-\d\d-\d\d/);

  // The class by part of its name: "golden retr" is ImageNet's class 207.
  await page.fill("#class-search", "golden retr");
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => new URL(location.href).searchParams.get("class") === "207");
  await clickAndWait(page, "#generate", 300_000);
  const first = await page.evaluate(() => {
    const { last } = window.__arpg;
    const [img] = last.images;
    return { class: last.class, tokens: last.tokens, size: [img.width, img.height, img.channels], pixels: Array.from(img.pixels) };
  });
  assert.equal(first.class, 207);
  assert.deepEqual(first.size, [256, 256, 3]);
  assert.equal(first.tokens.length, 256);
  assert.ok(h.nonBlank(first.pixels), "a blank image");
  await page.screenshot({ path: path.join(h.screenshotsDir(), "screenshot-imported-generate.png") });

  // Offline: the shell from the service worker, the model from the OPFS.
  await page.evaluate(() => navigator.serviceWorker.ready);
  await browser.context.setOffline(true);
  try {
    const t0 = Date.now();
    await page.reload();
    await readyWith(page, () => window.__arpg.client.model?.local && window.__arpg.client.info);
    console.log(`# offline reload of the stored model: ready after ${Date.now() - t0} ms`);
    await clickAndWait(page, "#generate", 300_000);
    const again = await page.evaluate(() => ({ class: window.__arpg.last.class, tokens: window.__arpg.last.tokens }));
    assert.deepEqual(again, { class: 207, tokens: first.tokens }, "the stored model drew other tokens");
  } finally {
    await browser.context.setOffline(false);
  }
  await page.close();
});

test("the painting tool at the stored model's 256x256 frame: a user's photo is fitted and centre-cropped, in-painting keeps every pixel outside the masked tokens; screenshot", { timeout: 600_000 }, async () => {
  const page = await browser.context.newPage();
  const id = `local-${model.sha256.slice(0, 12)}`;
  await page.goto(`${server.origin}/paint.html?model=${id}&backend=cpu&seed=3&steps=4&class=1`);
  await waitRun(page, 300_000); // the page's own first image of the model
  await page.setInputFiles("#file", file("photo.png"));
  await page.waitForFunction(() => document.querySelector("#notice").dataset.kind === "fitted");
  assert.match(await noticeText(page), /"photo\.png" is 320x240: scaled to 341x256 and centre-cropped to the model's 256x256 frame/);
  assert.equal(await page.evaluate(() => document.body.dataset.image), "256x256");
  // A stroke over the middle of the picture.
  const box = await page.locator("#view").boundingBox();
  await page.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.4);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.55, { steps: 8 });
  await page.mouse.up();
  const cells = Number(await page.evaluate(() => document.body.dataset.maskCells));
  assert.ok(cells > 0 && cells < 64, `painted ${cells} tokens`);
  const photo = await page.evaluate(() => Array.from(window.__arpg.image.pixels));
  await clickAndWait(page, "#inpaint", 300_000);
  const r = await page.evaluate(() => ({ after: Array.from(window.__arpg.image.pixels), mask: Array.from(window.__arpg.mask) }));
  assert.equal(r.after.length, 256 * 256 * 3);
  let [kept, inside] = [0, 0];
  for (let i = 0; i < 256 * 256; i++) {
    const cell = Math.floor(Math.floor(i / 256) / 16) * 16 + Math.floor((i % 256) / 16);
    if (r.mask[cell]) {
      inside++;
      continue;
    }
    for (let c = 0; c < 3; c++) assert.equal(r.after[i * 3 + c], photo[i * 3 + c], `pixel ${i} outside the mask changed`);
    kept++;
  }
  assert.equal(kept, (256 - cells) * 256);
  assert.ok(inside > 0);
  await page.screenshot({ path: path.join(h.screenshotsDir(), "screenshot-imported-paint.png") });
  await page.close();
});

test("a file that is not a checkpoint, a truncated checkpoint and a model over the storage quota each get a plain notice and leave nothing stored", { timeout: 300_000 }, async () => {
  const page = await browser.context.newPage();
  await page.goto(`${server.origin}/?backend=cpu&auto=0`);
  await page.waitForFunction(() => window.__arpg.client.info, null, { timeout: 60_000 });
  const before = (await stored(page)).names;
  const shown = await page.evaluate(() => window.__arpg.client.model.id);
  const refused = async (name, pattern) => {
    await page.evaluate(clearNotice);
    await page.setInputFiles("#model-file", file(name));
    await page.waitForFunction(() => document.querySelector("#notice").dataset.kind === "import-error", null, { timeout: 60_000 });
    const text = await noticeText(page);
    assert.match(text, pattern, name);
    assert.ok(!text.includes("\n") && text.length < 300, `not one plain line: ${text}`);
    assert.deepEqual((await stored(page)).names, before, `${name} left something stored`);
  };
  await refused("random.arpg", /"random\.arpg" is not a model file this app can open: not an ARPG checkpoint/);
  // A file dropped on the page takes the same way.
  await page.evaluate(clearNotice);
  await page.evaluate((bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], "dropped.arpg"));
    document.querySelector("main").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, [...crypto.randomBytes(1000)]);
  await page.waitForFunction(() => document.querySelector("#notice").dataset.kind === "import-error", null, { timeout: 60_000 });
  assert.match(await noticeText(page), /"dropped\.arpg" is not a model file this app can open/);
  await refused("truncated.arpg", /"truncated\.arpg" is not a model file this app can open/);
  const cdp = await browser.context.newCDPSession(page);
  await cdp.send("Storage.overrideQuotaForOrigin", { origin: server.origin, quotaSize: 1_000_000 });
  try {
    await refused("other.arpg", /"other\.arpg" \(\d+(\.\d)? MB\) does not fit in this browser's storage/);
  } finally {
    await cdp.send("Storage.overrideQuotaForOrigin", { origin: server.origin });
  }
  assert.equal(await page.evaluate(() => window.__arpg.client.model.id), shown, "the model shown changed");
  await page.close();
});

test("removing the stored model frees its storage and returns to a shipped model; the shipped model's page generates as before", { timeout: 300_000 }, async () => {
  const page = await browser.context.newPage();
  const id = `local-${model.sha256.slice(0, 12)}`;
  await page.goto(`${server.origin}/?model=${id}&backend=cpu&batch=1&steps=4&auto=0`);
  await readyWith(page, () => window.__arpg.client.model?.local && window.__arpg.client.info);
  const full = await stored(page);
  await page.click("#model-remove");
  await readyWith(page, () => !window.__arpg.client.model?.local && window.__arpg.client.info);
  const empty = await stored(page);
  assert.deepEqual(empty.names, []);
  assert.ok(full.usage - empty.usage >= model.bytes * 0.9, `freed ${full.usage - empty.usage} bytes of ${model.bytes}`);
  assert.match(await noticeText(page), /removed from this browser: \d+(\.\d)? MB of storage freed/);
  assert.equal(await page.locator(`#model option[value="${id}"]`).count(), 0);
  assert.ok(!page.url().includes(id));
  await clickAndWait(page, "#generate", 120_000);
  assert.equal(await page.evaluate(() => window.__arpg.client.model.id), root.model.id);
  h.clean(w);
  await page.close();
});
