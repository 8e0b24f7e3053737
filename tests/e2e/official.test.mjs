// The paper's architecture in the browser: the parity fixtures' random model of the official
// layout (ARPG and a narrow LlamaGen VQGAN, tests/fixtures/official/), imported with `arpg
// import`, generates in the page on the wasm CPU backend and on forced WebGPU (the software
// adapter) the tokens the native CLI draws for the same seed and options (the checkpoint's own:
// the official step rule, arccos, linear CFG), and the VQGAN decodes them to an image of the
// model's frame. Preview patches are made for the codes a job decodes.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import * as h from "./harness.mjs";

const { waitRun, clean } = h;

const FIXTURES = path.join(h.ROOT, "tests/fixtures/official");
const FILE = "official-random.arpg";
let root;
let server;
let native; // the CLI's tokens: {width, height, codes}

before(async () => {
  root = h.makeRoot();
  const models = path.join(root.dir, "www/models");
  const ckpt = path.join(models, FILE);
  const run = (args) => execFileSync(h.BIN, args, { stdio: ["ignore", "ignore", "inherit"] });
  run(["import", "--arpg", path.join(FIXTURES, "arpg.pt"), "--vq", path.join(FIXTURES, "vq.pt"), "--out", ckpt]);
  const sha256 = crypto.createHash("sha256").update(fs.readFileSync(ckpt)).digest("hex");
  h.writeManifest(path.join(models, "manifest.json"), { file: FILE, sha256 });
  const codes = path.join(root.dir, "codes.json");
  run(["generate", "--checkpoint", ckpt, "--class", "1", "--count", "1", "--steps", "4", "--seed", "5",
    "--codes-out", codes, "--out-dir", path.join(root.dir, "native")]);
  native = JSON.parse(fs.readFileSync(codes, "utf8")).images[0];
  server = await h.serve(root.dir);
});

after(async () => {
  await server?.stop();
  if (root) fs.rmSync(root.dir, { recursive: true, force: true });
});

test("a model of the official layout (ARPG + VQGAN) draws the native CLI's tokens on the CPU backend and on forced WebGPU (software adapter); preview patches come for each code decoded", { timeout: 600_000 }, async () => {
  for (const backend of ["cpu", "webgpu"]) {
    const { context, close } = await h.launch();
    try {
      const w = h.watch(context, server.origin);
      const page = await context.newPage();
      const t0 = Date.now();
      await page.goto(`${server.origin}/?backend=${backend}&batch=1&steps=4&seed=5&class=1`);
      await waitRun(page, 540_000);
      console.log(`# official layout, ${backend}: first image after ${Date.now() - t0} ms`);
      const out = await page.evaluate(() => {
        const { last, client } = window.__arpg;
        const [img] = last.images;
        return {
          backend: client.info.backend, tokens: last.tokens, size: [img.width, img.height, img.channels],
          pixels: Array.from(img.pixels), frame: client.info.imageSize, sampling: client.info.sampling.generate,
        };
      });
      assert.equal(out.backend, backend);
      assert.deepEqual(out.sampling, { steps: 64, cfg: 4, cfgSchedule: "linear", temperature: 1, schedule: "arccos" },
        "the defaults `arpg import` records");
      assert.deepEqual(out.tokens, native.codes, `${backend}: not the native CLI's tokens`);
      assert.deepEqual(out.size, [out.frame, out.frame, 3]);
      assert.ok(h.nonBlank(out.pixels), `${backend}: a blank image`);
      // Preview patches come per code as a job decodes it (none on a software adapter).
      if (backend === "cpu") {
        await page.waitForFunction(() => {
          const { client, last } = window.__arpg;
          const size = client.info.factor ** 2 * client.info.channels;
          const made = (c) => client.patches?.subarray(c * size, (c + 1) * size).some((v) => v !== 160);
          return last.tokens.every(made);
        }, null, { timeout: 30_000 });
      } else {
        assert.equal(await page.evaluate(() => window.__arpg.client.patches), null, "patches on a software adapter");
      }
      clean(w);
    } finally {
      await close();
    }
  }
});
