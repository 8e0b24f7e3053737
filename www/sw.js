// Service worker: precache the app shell, the wasm runtime and the model list so that the app
// works offline after the first visit; each checkpoint is kept from the first time a page uses
// it (the page posts {type: "keep", url}), never before: a model the user never picks is never
// downloaded. The models a user opened from their own files are not here: local.js keeps them in
// the origin-private file system.
//
// Strategy: a checkpoint is fetched as /models/<file>?v=<sha256>, so a URL names one exact
// file: cache-first, one version per file. Everything else (HTML, JS, CSS, /pkg/, the manifest)
// is network-first with the cache as the fallback, so a rebuilt pkg/ is picked up at once and
// arpg.js never runs with a stale arpg_bg.wasm; offline, the cached copies answer.

const CACHE = "arpg-v6";
const SHELL = [
  "/", "/index.html", "/paint.html", "/style.css",
  "/app.js", "/paint.js", "/common.js", "/client.js", "/models.js", "/worker.js", "/store.js",
  "/classes.js", "/local.js", "/importer.js",
  // The CPU runtime always (it is also the fallback); pkg/gpu/ is cached when first used.
  "/pkg/cpu/arpg.js", "/pkg/cpu/arpg_bg.wasm",
];

/** The shell, the manifest and the models' bundled samples (a few KB). */
async function precache() {
  const cache = await caches.open(CACHE);
  await cache.addAll(SHELL);
  try {
    const res = await fetch("/models/manifest.json", { cache: "no-cache" });
    if (!res.ok) return;
    const { models } = await res.clone().json();
    await cache.put("/models/manifest.json", res);
    await cache.addAll(models.flatMap((m) => (m.samples || []).map((s) => `/samples/${s}.png`)));
  } catch (e) {
    console.warn("sw: model list not precached:", e);
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

/** A checkpoint URL (/models/<file>?v=<sha256>) from the cache, else fetched and kept, in place
 * of any other version of the same file. */
async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(request);
  if (hit) return hit;
  const res = await fetch(request);
  if (res.ok) {
    const path = new URL(request.url).pathname;
    for (const key of await cache.keys()) {
      if (new URL(key.url).pathname === path && key.url !== request.url) await cache.delete(key);
    }
    await cache.put(request, res.clone());
  }
  return res;
}

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const res = await fetch(request);
    if (res.ok && res.type === "basic") await cache.put(request, res.clone());
    return res;
  } catch (e) {
    const hit = (await cache.match(request)) ||
      (request.mode === "navigate" && (await cache.match(request, { ignoreSearch: true })));
    if (hit) return hit;
    throw e;
  }
}

const isCheckpoint = (url) => url.origin === self.location.origin && url.pathname.startsWith("/models/") &&
  url.searchParams.has("v");

self.addEventListener("fetch", (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  event.respondWith(isCheckpoint(url) ? cacheFirst(request) : networkFirst(request));
});

// A page used a checkpoint (its worker may have fetched it before this service worker was
// active): keep it, unless it is held already.
self.addEventListener("message", (event) => {
  const { type, url } = event.data || {};
  if (type !== "keep" || !isCheckpoint(new URL(url, self.location.origin))) return;
  event.waitUntil(cacheFirst(new Request(url)).then((res) => res.body?.cancel()).catch((e) => {
    console.warn("sw: model not kept offline:", e);
  }));
});
