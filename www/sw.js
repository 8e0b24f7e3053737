// Service worker: precache the app shell, the wasm runtime and the checkpoint so that the app
// works offline after the first visit.
//
// Strategy: the checkpoint is fetched as /models/<file>?v=<sha256>, so a URL names one exact
// file: cache-first. Everything else (HTML, JS, CSS, /pkg/, the manifest) is network-first with
// the cache as the fallback, so a rebuilt pkg/ is picked up at once and arpg.js never runs with a
// stale arpg_bg.wasm; offline, the cached copies answer.

const CACHE = "arpg-v4";
const SHELL = [
  "/", "/index.html", "/paint.html", "/style.css",
  "/app.js", "/paint.js", "/common.js", "/client.js", "/worker.js", "/store.js",
  // The CPU runtime always (it is also the fallback); pkg/gpu/ is cached when first used.
  "/pkg/cpu/arpg.js", "/pkg/cpu/arpg_bg.wasm",
  // The paint tool's bundled samples (Fashion-MNIST test images, 10 files of < 1 KB).
  ...["0-t-shirt", "1-trouser", "2-pullover", "3-dress", "4-coat", "5-sandal", "6-shirt", "7-sneaker",
    "8-bag", "9-ankle-boot"].map((s) => `/samples/${s}.png`),
];

async function precache() {
  const cache = await caches.open(CACHE);
  await cache.addAll(SHELL);
  // The model: optional at install time (a missing model must not break the shell).
  try {
    const res = await fetch("/models/manifest.json", { cache: "no-cache" });
    if (!res.ok) return;
    const manifest = await res.clone().json();
    await cache.put("/models/manifest.json", res);
    await cache.add(`/models/${manifest.file}?v=${manifest.sha256 || ""}`);
  } catch (e) {
    console.warn("sw: model not precached:", e);
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

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(request);
  if (hit) return hit;
  const res = await fetch(request);
  if (res.ok) {
    // One checkpoint version at a time.
    for (const key of await cache.keys()) {
      const u = new URL(key.url);
      if (u.pathname.startsWith("/models/") && u.search && key.url !== request.url) await cache.delete(key);
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

self.addEventListener("fetch", (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/models/") && url.searchParams.has("v")) {
    event.respondWith(cacheFirst(request));
  } else {
    event.respondWith(networkFirst(request));
  }
});
