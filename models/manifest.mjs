// Writes each model's `bytes` and `sha256` into www/models/manifest.json from the file itself
// (`make manifest`): run it whenever a checkpoint in www/models/ changes. With `--check` it
// writes nothing and fails when the manifest does not match the files (`make test` runs that).
// The other fields (name, classes, imageSize, ...) are written by hand: www/models.js says
// what each one means.

import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

const dir = path.resolve(import.meta.dirname, "../www/models");
const file = path.join(dir, "manifest.json");
const check = process.argv.includes("--check");
const manifest = JSON.parse(fs.readFileSync(file, "utf8"));
const stale = [];
for (const m of manifest.models) {
  const bytes = fs.readFileSync(path.join(dir, m.file));
  const sha256 = crypto.createHash("sha256").update(bytes).digest("hex");
  if (m.bytes !== bytes.length || m.sha256 !== sha256) stale.push(m.file);
  Object.assign(m, { bytes: bytes.length, sha256 });
}
if (check) {
  if (stale.length) {
    console.error(`error: ${file} does not match ${stale.join(", ")}: run make manifest`);
    process.exit(1);
  }
  console.log(`${file}: bytes and sha256 match all ${manifest.models.length} models`);
} else {
  fs.writeFileSync(file, JSON.stringify(manifest, null, 2) + "\n");
  console.log(`${file}: ${stale.length ? `updated ${stale.join(", ")}` : "unchanged"}`);
}
