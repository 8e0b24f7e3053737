// Quality against time: Fréchet distance (from `arpg eval --json`) against wall time per image
// (from `arpg bench --json`, batch 1) for ARPG at each step count, raster AR and MaskGIT. The chart
// is an SVG drawn here and rendered to PNG by Debian's chromium (no plotting library needed).
//
//   node tests/e2e/plot.mjs EVAL.json BENCH.json OUT.png [MORE_EVAL.json ...]
//
// Points: every `generation` row of the evals whose weights are int8 (the shipped kind) — or f32
// when a model has no int8 row — matched to the bench row with the same method and step count at
// batch 1. A row without a bench match is left out and said so on stderr. With evals at more
// than one sampling temperature, each (method, temperature) is its own series, labelled "T x";
// a point already given by an earlier file is not drawn again.

import fs from "node:fs";
import { chromium } from "playwright-core";

const [evalPath, benchPath, outPath, ...morePaths] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node plot.mjs EVAL.json BENCH.json OUT.png [MORE_EVAL.json ...]");
  process.exit(2);
}
const read = (p) => JSON.parse(fs.readFileSync(p, "utf8"));
const ev = read(evalPath);
const evals = [ev, ...morePaths.map(read)];
const bench = read(benchPath);
const temp = (e) => Number(e.options.temperature.toPrecision(3)); // f32 in the JSON: 0.8999999761581421
const temperatures = new Set(evals.map(temp));

const COLORS = { arpg: "#1f6feb", raster: "#d1242f", maskgit: "#1a7f37", "arpg-no-shared-kv": "#8250df" };
const LABELS = { arpg: "ARPG", raster: "raster AR", maskgit: "MaskGIT", "arpg-no-shared-kv": "ARPG, no shared KV" };

/** [{method, series, steps, fd, ms}] */
function points() {
  const rows = evals.flatMap((e) => e.generation.map((g) => ({ ...g.report, weights: g.weights, t: temp(e) })));
  const hasInt8 = new Set(rows.filter((r) => r.weights === "int8").map((r) => r.arch));
  const out = [];
  for (const r of rows) {
    if (hasInt8.has(r.arch) && r.weights !== "int8") continue;
    const b = bench.rows.find((x) => x.method === r.arch && x.steps === r.steps && x.batch === 1);
    if (!b) {
      console.error(`no batch-1 bench row for ${r.arch} at ${r.steps} steps: left out`);
      continue;
    }
    const series = temperatures.size > 1 ? `${LABELS[r.arch]}, T ${r.t}` : LABELS[r.arch];
    if (out.some((p) => p.series === series && p.steps === r.steps)) continue; // the first file's wins
    out.push({ method: r.arch, series, steps: r.steps, fd: r.fd, ms: b.ms_per_image });
  }
  return out;
}

function svg(pts, floors) {
  const W = 900, H = 560, L = 80, R = 40, T = 60, B = 70;
  const xs = pts.map((p) => Math.log10(p.ms));
  const x0 = Math.floor(Math.min(...xs)), x1 = Math.ceil(Math.max(...xs));
  const yMax = Math.max(...pts.map((p) => p.fd), ...floors.map((f) => f.fd)) * 1.1;
  const sx = (ms) => L + ((Math.log10(ms) - x0) / (x1 - x0)) * (W - L - R);
  const sy = (fd) => H - B - (fd / yMax) * (H - T - B);
  const parts = [];
  for (let e = x0; e <= x1; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (Math.log10(v) > x1) break;
      const x = sx(v);
      parts.push(`<line x1="${x}" x2="${x}" y1="${T}" y2="${H - B}" stroke="#ddd"/>`);
      parts.push(`<text x="${x}" y="${H - B + 20}" text-anchor="middle">${v >= 1 ? v : v.toFixed(-e)}</text>`);
    }
  }
  const yStep = 10 ** Math.floor(Math.log10(yMax / 2));
  for (let v = 0; v <= yMax; v += yStep * (yMax / yStep > 8 ? 2 : 1)) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${sy(v)}" y2="${sy(v)}" stroke="#ddd"/>`);
    parts.push(`<text x="${L - 8}" y="${sy(v) + 5}" text-anchor="end">${v}</text>`);
  }
  for (const { fd, label } of floors) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${sy(fd)}" y2="${sy(fd)}" stroke="#666" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${W - R - 4}" y="${sy(fd) - 6}" text-anchor="end" fill="#666">${label} ${fd.toFixed(1)}</text>`);
  }
  // One polyline per series, its points labelled with their step counts; a method's later series
  // are dashed, lighter and unlabelled. The legend names every series.
  const seen = {};
  const legend = [];
  for (const series of new Set(pts.map((p) => p.series))) {
    const ps = pts.filter((p) => p.series === series).sort((a, b) => a.ms - b.ms);
    const c = COLORS[ps[0].method];
    const later = (seen[ps[0].method] = (seen[ps[0].method] || 0) + 1) > 1;
    const style = later ? ` stroke-dasharray="5 4" opacity="0.6"` : "";
    if (ps.length > 1) parts.push(`<polyline fill="none" stroke="${c}" stroke-width="2"${style} points="${ps.map((p) => `${sx(p.ms)},${sy(p.fd)}`).join(" ")}"/>`);
    for (const p of ps) {
      parts.push(`<circle cx="${sx(p.ms)}" cy="${sy(p.fd)}" r="6" fill="${c}"${later ? ` opacity="0.6"` : ""}/>`);
      if (!later) parts.push(`<text x="${sx(p.ms) + 9}" y="${sy(p.fd) - 8}" fill="${c}">${p.steps}</text>`);
    }
    const y = T + 22 + 22 * legend.length;
    legend.push(`<line x1="${W - R - 250}" x2="${W - R - 215}" y1="${y - 5}" y2="${y - 5}" stroke="${c}" stroke-width="2"${style}/>` +
      `<text x="${W - R - 205}" y="${y}" fill="${c}">${series}${ps.length > 1 ? " (steps)" : ` (${ps[0].steps} steps)`}</text>`);
  }
  parts.push(...legend);
  const title = `Fréchet distance vs time per image (batch 1, native CPU, int8, N = ${ev.options.n})`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="14">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="30" text-anchor="middle" font-size="18">${title}</text>
${parts.join("\n")}
<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#333"/>
<text x="${(L + W - R) / 2}" y="${H - 20}" text-anchor="middle">ms per image (log scale)</text>
<text transform="translate(22 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">Fréchet distance (lower is better)</text>
</svg>`;
}

const pts = points();
if (!pts.length) throw new Error("no point to plot");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 560 } });
  await page.setContent(`<body style="margin:0">${svg(pts, [
    { fd: ev.real.fd_floor, label: "real training images (floor)" },
    { fd: ev.reconstruction.fd, label: "the tokenizer's reconstructions" },
  ])}</body>`);
  await page.locator("svg").screenshot({ path: outPath });
  for (const p of pts) console.log(`${p.series}\t${p.steps}\t${p.ms.toFixed(1)} ms\tFD ${p.fd.toFixed(1)}`);
  console.log(`wrote ${outPath}`);
} finally {
  await browser.close();
}
