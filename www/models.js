// The models the app offers: `/models/manifest.json`, read and checked here for the pages (the CLI
// reads `id`, `file`, `steps`, `sampling` and `taskSampling` too, for `--checkpoint <id>`:
// crates/cli/src/args.rs, `AppModel`).
//
// Format: {"models": [entry, ...]}, the first entry the default. An entry:
//   id          short name, in `?model=` and the picker
//   name        what the picker shows
//   file        the checkpoint in /models/ (letters, digits, `.`, `_`, `-`)
//   bytes, sha256   of that file, written by `make manifest` (models/manifest.mjs), never by hand
//   classes, imageSize   the class count and the image side, for the picker before a model loads
//                        (the pages use the checkpoint's own, `info()`; e2e checks they agree)
//   steps       the pages' default number of decoding steps
//   sampling    optional: the pages' sampling options for this model where they are not the
//               library's defaults, {cfg, cfgSchedule, temperature} (chosen by `arpg eval`:
//               docs/quality.md)
//   taskSampling  optional: {inpaint | outpaint | expand: options}, the same keys, replacing
//               `sampling`'s for that paint operation (expansion wants a lower temperature than
//               generation: docs/quality.md)
//   licence     the licence line the pages show
//   samples     optional bundled test images, `/samples/<class>-<name>.png`
// The worker fetches a checkpoint as /models/<file>?v=<sha256> and `WebEngine.load` checks the
// hash; the service worker keeps each one offline from the first time it is picked.

const HEX64 = /^[0-9a-f]{64}$/;
const SAMPLING = { cfg: "number", cfgSchedule: "string", temperature: "number" };
const TASKS = ["inpaint", "outpaint", "expand"];
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
    steps: Number.isInteger(m.steps) && m.steps > 0 ? m.steps : 8,
    sampling: samplingOptions(m.sampling),
    taskSampling: Object.fromEntries(TASKS.map((op) => [op, samplingOptions(m.taskSampling?.[op])])),
    licence: String(m.licence || ""),
    samples: Array.isArray(m.samples) ? m.samples.filter((s) => FILE.test(s)) : [],
  };
}

/** The known sampling options of a manifest object, checked by type (anything else: none). */
function samplingOptions(s) {
  const entries = s && typeof s === "object" ? Object.entries(s) : [];
  return Object.fromEntries(entries.filter(([k, v]) => typeof v === SAMPLING[k]));
}

/** The URL a checkpoint is fetched and cached under: one URL per exact file. */
export const modelUrl = (m) => `/models/${m.file}?v=${m.sha256}`;
