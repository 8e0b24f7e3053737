//! PNG decoding (`Image::from_png`) and the pixel mask -> token mask mapping
//! (`TokenMask::from_pixel_mask`) that in-painting applies to a decoded mask image.
//!
//! Each input is tried as it is and, when that differs, with every chunk's CRC recomputed (the
//! decoder checks them, so a mutation inside a chunk would otherwise rarely reach its parser).
//! Besides never panicking: a decoded image (read as grey and as RGB) is non-empty, within
//! `MAX_PIXELS` and consistent; writing it as PNG and decoding that gives the same pixels; and as
//! a mask, for token sizes 1, 4 (the shipped one) and 7, a token is set exactly when one of its
//! pixels (after the centred padding to whole tokens) is at least `MASK_THRESHOLD`, and
//! `to_image` maps the token mask back to itself.
#![no_main]

use arpg::image::{Image, MASK_THRESHOLD, MAX_PIXELS, TokenMask};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(fixed) = with_correct_crcs(data).filter(|fixed| fixed != data) {
        check(&fixed);
    }
});

/// The input with each complete chunk's CRC-32 (over its type and data) recomputed.
fn with_correct_crcs(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = data.get(..8)?.to_vec();
    let mut rest = &data[8..];
    while rest.len() >= 12 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let Some(kind_and_data) = len.checked_add(8).and_then(|end| rest.get(4..end)) else { break };
        out.extend_from_slice(&rest[..4]);
        out.extend_from_slice(kind_and_data);
        out.extend_from_slice(&crc32fast::hash(kind_and_data).to_be_bytes());
        rest = &rest[(len + 12).min(rest.len())..];
    }
    out.extend_from_slice(rest);
    Some(out)
}

fn check(data: &[u8]) {
    let Ok(img) = Image::from_png(data, 1) else { return };
    assert!(!img.is_empty() && img.width * img.height <= MAX_PIXELS, "{}x{}", img.width, img.height);
    assert_eq!(img.pixels.len(), img.width * img.height);
    assert_eq!(Image::from_png(&img.to_png(), 1).as_ref(), Ok(&img), "PNG round trip");
    let rgb = Image::from_png(data, 3).expect("a file that reads as grey reads as RGB");
    assert_eq!((rgb.width, rgb.height, rgb.pixels.len()), (img.width, img.height, 3 * img.pixels.len()));
    assert_eq!(Image::from_png(&rgb.to_png(), 3).as_ref(), Ok(&rgb), "RGB PNG round trip");

    for factor in [1, 4, 7] {
        let mask = TokenMask::from_pixel_mask(&img, factor);
        assert_eq!((mask.h, mask.w), (img.height.div_ceil(factor), img.width.div_ceil(factor)));
        assert_eq!(mask.cells.len(), mask.h * mask.w);
        assert_eq!(TokenMask::from_pixel_mask(&mask.to_image(factor), factor), mask);
        let any_white = img.pixels.iter().any(|&p| p >= MASK_THRESHOLD);
        assert_eq!(mask.count() > 0, any_white);
        // Token by token, from the padded image (bounded: one crop per token).
        if img.pixels.len() <= 1 << 16 {
            let (padded, _) = img.pad_to_multiple(factor);
            for row in 0..mask.h {
                for col in 0..mask.w {
                    let cell = padded.crop(col * factor, row * factor, factor, factor);
                    let white = cell.pixels.iter().any(|&p| p >= MASK_THRESHOLD);
                    assert_eq!(mask.get(row, col), white, "token ({row}, {col}), factor {factor}");
                }
            }
        }
    }
}
