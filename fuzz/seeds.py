#!/usr/bin/env python3
"""Seed inputs for the two fuzz targets, from real files.

    python3 fuzz/seeds.py ARPG_BIN OUT_DIR

writes OUT_DIR/checkpoint/ (checkpoints from `arpg init` and `arpg quantize`, cut down to their
small tensors, each also without its trailing SHA-256, which the target appends itself; the whole
200 KB files made every execution ~10x slower and filled the corpus with 200 KB mutants that
differ only in loop counts) and OUT_DIR/image/ (PNGs of every colour
type and bit depth, with transparency, interlacing, text chunks and split image data, plus a PNG
that `arpg generate` wrote). `cargo fuzz cmin` then keeps the inputs that add coverage; that
minimized set is what fuzz/corpus/ holds.
"""
import hashlib
import math
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

# ---------------------------------------------------------------- PNG writer

CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pack_row(samples, depth):
    """Samples (ints below 2**depth) -> bytes, big-endian, rows padded to whole bytes."""
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    if depth == 8:
        return bytes(samples)
    per = 8 // depth
    out = bytearray()
    for i in range(0, len(samples), per):
        group = samples[i : i + per] + [0] * (per - len(samples[i : i + per]))
        b = 0
        for s in group:
            b = (b << depth) | s
        out.append(b)
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def filtered(rows, bpp):
    """Each row prefixed with a filter type, cycling through None, Sub, Up, Average, Paeth."""
    out, prev = bytearray(), bytes(len(rows[0]) if rows else 0)
    for i, row in enumerate(rows):
        kind = i % 5
        enc = bytearray()
        for x, v in enumerate(row):
            a = row[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
            enc.append((v - pred) & 0xFF)
        out += bytes([kind]) + enc
        prev = row
    return bytes(out)


def png(w, h, color, depth, interlace=False, extra=(), idat_parts=1):
    """A w x h PNG whose samples are a deterministic pattern."""
    n, top = CHANNELS[color], (1 << depth) - 1
    if color == 3:
        top = min(top, 15)  # palette of 16 entries
    sample = lambda x, y, c: ((x * 37 + y * 11 + c * 97) * 2654435761 >> 7) % (top + 1)
    bpp = max(1, n * depth // 8)
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    raw = b""
    for x0, y0, dx, dy in passes:
        xs, ys = range(x0, w, dx), range(y0, h, dy)
        if not xs or not ys:
            continue
        rows = [pack_row([sample(x, y, c) for x in xs for c in range(n)], depth) for y in ys]
        raw += filtered(rows, bpp)
    data = zlib.compress(raw, 9)
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, int(interlace)))
    for kind, payload in extra:
        body += chunk(kind, payload)
    step = -(-len(data) // idat_parts)
    for i in range(0, len(data), step):
        body += chunk(b"IDAT", data[i : i + step])
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


PALETTE = (b"PLTE", bytes(v for i in range(16) for v in (i * 16, 255 - i * 16, i * 7)))


def images():
    out = {}
    for depth in (1, 2, 4, 8, 16):
        out[f"grey{depth}"] = png(16, 16, 0, depth)
    for depth in (1, 2, 4, 8):
        out[f"palette{depth}"] = png(16, 16, 3, depth, extra=[PALETTE])
    for depth in (8, 16):
        out[f"grey-alpha{depth}"] = png(16, 16, 4, depth)
        out[f"rgb{depth}"] = png(16, 16, 2, depth)
        out[f"rgba{depth}"] = png(16, 16, 6, depth)
    out["grey8-trns"] = png(16, 16, 0, 8, extra=[(b"tRNS", struct.pack(">H", 0))])
    out["rgb8-trns"] = png(16, 16, 2, 8, extra=[(b"tRNS", struct.pack(">HHH", 0, 0, 0))])
    out["palette4-trns"] = png(16, 16, 3, 4, extra=[PALETTE, (b"tRNS", bytes(range(0, 256, 16)))])
    out["grey8-interlaced"] = png(13, 11, 0, 8, interlace=True)
    out["rgba16-interlaced"] = png(9, 7, 6, 16, interlace=True)
    out["grey8-odd-size"] = png(5, 3, 0, 8)
    out["grey8-1x1"] = png(1, 1, 0, 8)
    text = [(b"tEXt", b"Comment\0hello"), (b"zTXt", b"Title\0\0" + zlib.compress(b"x" * 40)),
            (b"iTXt", b"Author\0\0\0\0\0caf\xc3\xa9"), (b"gAMA", struct.pack(">I", 45455))]
    out["grey8-text"] = png(16, 16, 0, 8, extra=text)
    out["grey8-split-idat"] = png(32, 32, 0, 8, idat_parts=4)
    return out


# ---------------------------------------------------------------- checkpoints


def small_tensors_only(data, max_values=300):
    """The same checkpoint (format v1, see src/checkpoint.rs) with only its tensors of at most
    `max_values` values, checksum recomputed: every section still real, a few KB instead of 200."""
    body = data[:-32]
    dtype, group = body[10], struct.unpack_from("<I", body, 11)[0]
    count, meta_len = struct.unpack_from("<II", body, 109)
    pos, entries = 117 + meta_len, []
    for _ in range(count):
        start = pos
        pos += 2 + struct.unpack_from("<H", body, pos)[0]
        rank = body[pos]
        values = math.prod(struct.unpack_from(f"<{rank}I", body, pos + 1))
        pos += 1 + 4 * rank
        entries.append((body[start:pos], values))
    table, payload, kept = b"", b"", 0
    for entry, values in entries:
        size = 4 * values if dtype == 0 else 4 * -(-values // group) + values
        if values <= max_values:
            table, payload, kept = table + entry, payload + body[pos : pos + size], kept + 1
        pos += size
    assert pos == len(body)
    new = body[:109] + struct.pack("<II", kept, meta_len) + body[117 : 117 + meta_len] + table + payload
    return new + hashlib.sha256(new).digest()


# ---------------------------------------------------------------- main


def main():
    arpg, out = Path(sys.argv[1]), Path(sys.argv[2])
    (out / "checkpoint").mkdir(parents=True, exist_ok=True)
    (out / "image").mkdir(parents=True, exist_ok=True)
    run = lambda *args: subprocess.run([str(arpg), *map(str, args)], check=True, stdout=subprocess.DEVNULL)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run("init", "--out", tmp / "f32.arpg", "--preset", "test", "--seed", "1")
        run("quantize", tmp / "f32.arpg", tmp / "int8-g64.arpg", "--group-size", "64")
        run("quantize", tmp / "f32.arpg", tmp / "int8-g7.arpg", "--group-size", "7")
        run("init", "--out", tmp / "raster.arpg", "--arch", "raster", "--preset", "test", "--dtype", "int8")
        for f in sorted(tmp.glob("*.arpg")):
            data = small_tensors_only(f.read_bytes())
            (out / "checkpoint" / f.stem).write_bytes(data)
            (out / "checkpoint" / f"{f.stem}-unsealed").write_bytes(data[:-32])
        run("generate", "--checkpoint", tmp / "f32.arpg", "--class", "0", "--count", "1", "--steps", "2",
            "--seed", "1", "--out-dir", tmp / "gen")
        (out / "image" / "arpg-generate").write_bytes((tmp / "gen" / "0-00.png").read_bytes())

    for name, data in images().items():
        (out / "image" / name).write_bytes(data)


if __name__ == "__main__":
    main()
