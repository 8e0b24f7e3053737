// Placeholder front-end: loads the wasm runtime built into /pkg/ and says whether it worked.
// The server (`arpg serve`) maps /pkg/ to the repo's pkg/ (wasm-bindgen output of `make wasm`).
const status = document.getElementById("status");

function show(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

try {
  // Dynamic import, so that a missing pkg/ (not built yet) shows up as a visible error too.
  const runtime = await import("/pkg/arpg.js");
  await runtime.default();
  show("ok", "wasm runtime loaded");
} catch (err) {
  console.error(err);
  show("error", `could not load the wasm runtime: ${err && err.message ? err.message : err}\n` +
    "Build it with `make wasm` (or `make run`), then reload.");
}
