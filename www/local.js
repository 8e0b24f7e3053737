// Models the user opened from their own files, kept in the origin-private file system (OPFS) so
// that they are there offline and after a reload. Nothing here leaves the machine.
//
// Layout: the directory `models/` of the origin's OPFS root holds, per model,
//   <sha256>.arpg   the checkpoint, byte for byte as opened
//   <sha256>.json   its entry: {name, file, bytes, sha256, classes, imageSize, channels, arch,
//                   dtype, params, source, addedAt} (importer.js writes it)
// The JSON is written last, so a model is listed only once its file is whole; anything else in
// the directory (the checkpoint of an import that was interrupted) is removed by `listLocal`
// (not one being written: its open access handle keeps it).
//
// An entry is used like a manifest entry (models.js) with `local: true` and `id` "local-" plus
// the first 12 hex digits of its sha256; the worker reads the file with `localFile`.

const DIR = "models";
const HEX64 = /^[0-9a-f]{64}$/;

const localId = (sha256) => `local-${sha256.slice(0, 12)}`;

/** The `models/` directory handle, created if missing; null where the browser has no OPFS. */
export async function modelsDir() {
  if (!navigator.storage?.getDirectory) return null;
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(DIR, { create: true });
}

/** A stored entry as the pages use it. */
function entry(meta) {
  return {
    ...meta,
    id: localId(meta.sha256),
    local: true,
    licence: `Your own file (${meta.source}); it is kept in this browser and never leaves this machine.`,
    samples: [],
  };
}

/** The stored models, oldest first: Promise<[entry]> ([] without OPFS). Leftovers of an import
 * that did not finish are removed. */
export async function listLocal() {
  const dir = await modelsDir().catch(() => null);
  if (!dir) return [];
  const names = [];
  for await (const name of dir.keys()) names.push(name);
  const models = [];
  for (const name of names) {
    const [sha, ext] = name.split(".");
    const whole = HEX64.test(sha) && names.includes(`${sha}.json`) && names.includes(`${sha}.arpg`);
    if (!whole) {
      await dir.removeEntry(name).catch(() => {});
      continue;
    }
    if (ext !== "json") continue;
    const meta = await readJson(dir, name);
    if (meta?.sha256 === sha) models.push(entry(meta));
  }
  return models.sort((a, b) => a.addedAt.localeCompare(b.addedAt));
}

async function readJson(dir, name) {
  try {
    return JSON.parse(await (await (await dir.getFileHandle(name)).getFile()).text());
  } catch {
    return null;
  }
}

/** The stored checkpoint of `entry` as a File (read a slice at a time by the runtime). */
export async function localFile(entry) {
  const dir = await modelsDir();
  if (!dir) throw new Error("this browser has no origin-private file system");
  return (await dir.getFileHandle(`${entry.sha256}.arpg`)).getFile();
}

/** Remove a stored model (its file and entry); its storage is freed. */
export async function removeLocal(entry) {
  const dir = await modelsDir();
  if (!dir) return;
  for (const name of [`${entry.sha256}.json`, `${entry.sha256}.arpg`]) {
    await dir.removeEntry(name).catch((e) => {
      if (e.name !== "NotFoundError") throw e;
    });
  }
}

/** Bytes used and the quota of this origin's storage ({usage, quota}, null when unknown). */
export async function storageUse() {
  const e = await navigator.storage?.estimate?.().catch(() => null);
  return e ? { usage: e.usage, quota: e.quota } : null;
}

export const mb = (bytes) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;

/** Progress of reading `done` of `total` bytes since `t0` (performance.now()): text with the
 * rate and the time left. */
export function progressText(what, read, total, t0) {
  const done = Math.min(read, total); // the reader's first look at the head is read twice
  const s = (performance.now() - t0) / 1000;
  const rate = s > 0 ? done / s : 0;
  const left = rate > 0 ? (total - done) / rate : null;
  const eta = left === null || done === 0 ? "" : ` · ${left < 1 ? "under 1" : left.toFixed(0)} s left`;
  return `${what}: ${mb(done)} of ${mb(total)} · ${mb(rate)}/s${eta}`;
}

/** Verify `file` and keep it (importer.js, a worker of its own, so the model's worker goes on):
 * Promise<{entry, existed}>, rejecting with one plain line; `onProgress({phase, bytes, total})`. */
export function importModel(file, onProgress) {
  const worker = new Worker("/importer.js", { type: "module" });
  return new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => {
      if (data.type === "progress") return onProgress?.(data);
      worker.terminate();
      if (data.type === "done") resolve({ entry: entry(data.entry), existed: data.existed });
      else reject(new Error(data.message));
    };
    worker.onerror = (ev) => {
      ev.preventDefault();
      worker.terminate();
      reject(new Error(`the import stopped unexpectedly (${ev.message || "the worker could not start"})`));
    };
    worker.postMessage({ file });
  });
}
