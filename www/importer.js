// The worker that keeps a model file the user opened (local.js has the storage layout). It lives
// for one file: the page starts it, posts {file}, and ends it after the answer.
//
// in:  {file}: a File (structured-cloned: the page's handle, not a copy of its bytes)
// out: {type: "progress", phase: "checking" | "storing", bytes, total}
//      {type: "done", entry, existed}: `entry` as local.js stores it; `existed`: it was there already
//      {type: "error", message}: one plain line; nothing of the file is left stored
//
// Order: the runtime verifies the file first (checksum, header, configs: `inspectCheckpoint`,
// one pass over it), and only a valid checkpoint is copied into the OPFS, with the quota checked
// before and a failed write removed.

import init, { inspectCheckpoint } from "/pkg/cpu/arpg.js";
import { mb, modelsDir, storageUse } from "/local.js";

const post = (msg) => self.postMessage(msg);

self.onmessage = async ({ data: { file } }) => {
  try {
    post({ type: "done", ...(await keep(file)) });
  } catch (e) {
    post({ type: "error", message: e.message || String(e) });
  }
};

async function keep(file) {
  const name = JSON.stringify(file.name);
  await init();
  let info;
  try {
    info = inspectCheckpoint(file, (bytes) => post({ type: "progress", phase: "checking", bytes, total: file.size }));
  } catch (e) {
    throw new Error(`${name} is not a model file this app can open: ${e.message || e}`);
  }
  const dir = await modelsDir();
  if (!dir) throw new Error("this browser cannot store files for a page (no origin-private file system)");
  const existing = await dir.getFileHandle(`${info.sha256}.json`).then((h) => h.getFile()).catch(() => null);
  if (existing) return { entry: JSON.parse(await existing.text()), existed: true };
  const use = await storageUse();
  if (use && use.quota - use.usage < file.size) {
    throw new Error(`${name} (${mb(file.size)}) does not fit in this browser's storage for the app: ` +
      `${mb(Math.max(0, use.quota - use.usage))} free of a quota of ${mb(use.quota)}`);
  }
  const entry = {
    name: file.name.replace(/\.arpg$/i, "") || "model",
    file: `${info.sha256}.arpg`,
    bytes: file.size,
    sha256: info.sha256,
    classes: info.nClasses,
    imageSize: info.imageSize,
    channels: info.channels,
    arch: info.arch,
    dtype: info.dtype,
    params: info.params,
    source: `opened from ${file.name}, ${new Date().toISOString().slice(0, 10)}`,
    addedAt: new Date().toISOString(),
  };
  try {
    // The entry is written while the checkpoint's handle is still open: until then its open
    // handle keeps `listLocal` (another tab's, say) from removing it as a leftover.
    await copy(file, await dir.getFileHandle(entry.file, { create: true }), () => writeEntry(dir, entry));
  } catch (e) {
    for (const f of [entry.file, `${info.sha256}.json`]) await dir.removeEntry(f).catch(() => {});
    if (e.name === "QuotaExceededError") {
      throw new Error(`${name} (${mb(file.size)}) does not fit in this browser's storage for the app`);
    }
    throw new Error(`could not store ${name}: ${e.message}`);
  }
  return { entry, existed: false };
}

/** Copy `file` into the OPFS file `handle`, a chunk at a time, then run `done()` before the
 * handle is closed. */
async function copy(file, handle, done) {
  const access = await handle.createSyncAccessHandle();
  try {
    access.truncate(0);
    let [at, shown] = [0, 0];
    const reader = file.stream().getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      if (access.write(r.value, { at }) !== r.value.length) throw new Error("a short write");
      at += r.value.length;
      if (at - shown >= 8e6 || at === file.size) {
        shown = at;
        post({ type: "progress", phase: "storing", bytes: at, total: file.size });
      }
    }
    access.flush();
    await done();
  } finally {
    access.close();
  }
}

/** `<sha256>.json`, the entry that lists a stored checkpoint (local.js). */
async function writeEntry(dir, entry) {
  const access = await (await dir.getFileHandle(`${entry.sha256}.json`, { create: true })).createSyncAccessHandle();
  try {
    access.truncate(0);
    access.write(new TextEncoder().encode(JSON.stringify(entry)), { at: 0 });
    access.flush();
  } finally {
    access.close();
  }
}
