// The models the app offers: `/models/manifest.json`, read and checked here for the pages (the CLI
// reads `id` and `file` too, for `--checkpoint <id>`: crates/cli/src/args.rs). A model's sampling
// defaults are not here but in its checkpoint, which the engine reads (`info().sampling`).
//
// Format: {"models": [entry, ...]}, the first entry the default. An entry:
//   id          short name, in `?model=` and the picker
//   name        what the picker shows
//   file        the checkpoint in /models/ (letters, digits, `.`, `_`, `-`)
//   bytes, sha256   of that file, written by `make manifest` (models/manifest.mjs), never by hand
//   classes, imageSize   the class count and the image side, for the picker before a model loads
//                        (the pages use the checkpoint's own, `info()`; e2e checks they agree)
//   licence     the licence line the pages show
//   samples     optional bundled test images, `/samples/<class>-<name>.png`
// The worker fetches a checkpoint as /models/<file>?v=<sha256> and `WebEngine.load` checks the
// hash; the service worker keeps each one offline from the first time it is picked. The models a
// user opened from their own files (local.js) follow the manifest's in `loadModels`.

import { listLocal } from "/local.js";

const HEX64 = /^[0-9a-f]{64}$/;
const FILE = /^[\w.-]+$/;

/** The manifest's entries, checked: Promise<[entry]> (fails with a message the page shows). */
export async function loadManifest() {
  const url = "/models/manifest.json";
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`cannot fetch the model manifest (${url}): ${e.message}`);
  }
  if (!res.ok) throw new Error(`cannot fetch the model manifest (${url}): HTTP ${res.status}`);
  const manifest = await res.json().catch(() => null);
  const models = Array.isArray(manifest?.models) ? manifest.models : [];
  if (!models.length) throw new Error("the model manifest lists no models");
  return models.map(checked);
}

function checked(m, i) {
  if (typeof m?.file !== "string" || !FILE.test(m.file)) throw new Error("the model manifest names no valid file");
  const sha256 = typeof m.sha256 === "string" ? m.sha256.toLowerCase() : "";
  if (!HEX64.test(sha256)) throw new Error("the model manifest has no valid sha256");
  return {
    ...m,
    id: String(m.id || `model-${i}`),
    name: String(m.name || m.file),
    sha256,
    licence: String(m.licence || ""),
    samples: Array.isArray(m.samples) ? m.samples.filter((s) => FILE.test(s)) : [],
  };
}

/** The manifest's models, then those the user opened and this browser keeps (local.js):
 * Promise<[entry]>. A failure to list the kept ones leaves just the manifest's. */
export async function loadModels() {
  const [shipped, local] = await Promise.all([loadManifest(), listLocal().catch(() => [])]);
  return [...shipped, ...local];
}

/** The URL a checkpoint is fetched and cached under: one URL per exact file. */
export const modelUrl = (m) => `/models/${m.file}?v=${m.sha256}`;
