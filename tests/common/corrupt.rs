//! Byte-level surgery for the bad-input tests: checkpoints edited with a valid checksum, and PNGs
//! built by hand (a header declaring any size, every colour type and bit depth).

use arpg::checkpoint::{CHECKSUM_LEN, HEADER_LEN, META_LEN_AT};
use sha2::{Digest, Sha256};

/// Where the tensor count is written (the `u32` before the metadata length).
pub const TENSOR_COUNT_AT: usize = META_LEN_AT - 4;

/// `body` (a checkpoint without its checksum) with a correct checksum appended.
pub fn rechecksum(mut body: Vec<u8>) -> Vec<u8> {
    let sum = Sha256::digest(&body);
    body.extend_from_slice(&sum);
    body
}

/// The checkpoint with `patch` written at `offset` and a correct checksum.
pub fn patched(bytes: &[u8], offset: usize, patch: &[u8]) -> Vec<u8> {
    let mut body = bytes[..bytes.len() - CHECKSUM_LEN].to_vec();
    body[offset..offset + patch.len()].copy_from_slice(patch);
    rechecksum(body)
}

/// Offset of the tensor table: the fixed header, then the metadata section.
pub fn table_start(bytes: &[u8]) -> usize {
    HEADER_LEN + u32::from_le_bytes(bytes[META_LEN_AT..HEADER_LEN].try_into().unwrap()) as usize
}

/// The checkpoint with its header (the metadata section's JSON) changed by `edit`, the lengths
/// and the checksum fixed: a config that another writer might have written.
pub fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let table = table_start(bytes);
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[HEADER_LEN..table]).unwrap();
    edit(&mut header);
    let meta = serde_json::to_vec(&header).unwrap();
    let mut body = bytes[..META_LEN_AT].to_vec();
    body.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    body.extend_from_slice(&meta);
    body.extend_from_slice(&bytes[table..bytes.len() - CHECKSUM_LEN]);
    rechecksum(body)
}

/// Offset of the first tensor's rank byte (its dims follow, 4 bytes each).
pub fn first_rank_at(bytes: &[u8]) -> usize {
    let t = table_start(bytes);
    t + 2 + u16::from_le_bytes(bytes[t..t + 2].try_into().unwrap()) as usize
}

/// The checkpoint whose first tensor (a matrix) claims 2^20 x 2^20 = 2^40 values.
pub fn with_2_pow_40_values(bytes: &[u8]) -> Vec<u8> {
    let rank_at = first_rank_at(bytes);
    assert_eq!(bytes[rank_at], 2, "the first tensor is a matrix");
    let dims = [(1u32 << 20).to_le_bytes(), (1u32 << 20).to_le_bytes()].concat();
    patched(bytes, rank_at + 1, &dims)
}

/// A PNG chunk: length, type, data and CRC-32 (the PNG polynomial, over type and data).
pub fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = 0xffff_ffffu32;
    for &b in kind.iter().chain(data) {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&(!crc).to_be_bytes());
    out
}

/// A PNG whose header declares `w x h` 8-bit grey pixels, with image data that cannot be decoded:
/// refusing it by size proves the header was checked before any decoding.
pub fn header_only_png(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut png = vec![137, 80, 78, 71, 13, 10, 26, 10];
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &[0x78, 0x9c]));
    png.extend(chunk(b"IEND", &[]));
    png
}

/// A PNG of raw samples `data`; `grey_palette` sets a 256-entry palette where index `v` is grey `v`.
pub fn encode_png(
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    grey_palette: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(color);
    enc.set_depth(depth);
    if grey_palette {
        enc.set_palette((0..=255u8).flat_map(|v| [v, v, v]).collect::<Vec<u8>>());
    }
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(data).unwrap();
    writer.finish().unwrap();
    out
}
