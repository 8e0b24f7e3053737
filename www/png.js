// Grey 8-bit PNG encoding with tEXt chunks (class, seed, steps, model hash...), using the
// browser's own zlib (CompressionStream "deflate"). No dependencies.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

async function zlib(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A PNG Blob of a grey image {width, height, pixels}; `texts`: {keyword: value} as tEXt chunks. */
export async function encodeGrayPng(image, texts = {}) {
  const { width, height, pixels } = image;
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // colour type: grey
  const raw = new Uint8Array((width + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width + 1)] = 0; // filter: none
    raw.set(pixels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  }
  const latin1 = (s) => Uint8Array.from(String(s), (ch) => ch.charCodeAt(0) & 0xff);
  const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr)];
  for (const [k, val] of Object.entries(texts)) {
    const key = latin1(k).subarray(0, 79);
    const value = latin1(val);
    const data = new Uint8Array(key.length + 1 + value.length);
    data.set(key, 0);
    data.set(value, key.length + 1);
    parts.push(chunk("tEXt", data));
  }
  parts.push(chunk("IDAT", await zlib(raw)), chunk("IEND", new Uint8Array()));
  return new Blob(parts, { type: "image/png" });
}

/** Save a Blob under `name` through a temporary object URL. */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
