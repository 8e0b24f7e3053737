//! From an emoji file to a square RGB [`Image`]: decode (PNG with the `png` crate, WebP with
//! `image-webp`) to RGBA, composite onto the background at the source size, centre a non-square
//! picture on a square of the background colour, then shrink with Pillow's `Image.BOX` filter.
//!
//! The arithmetic is Pillow's, so that the pixels are the ones the dataset's definition
//! (`emoji-classes.json`, `image_rules.render`) names:
//!
//! - **Compositing** over an opaque background is `round((v a + b (255 - a)) / 255)` per channel
//!   (`Image.alpha_composite` and `paste` with the image as mask both give exactly this).
//! - **Box resize** is separable: a horizontal pass, rounded to 8 bits, then a vertical pass over
//!   its result. Each output value is the mean of the inputs whose centres fall inside its box,
//!   computed with 22-bit fixed-point weights and rounded half up. For an integer ratio `k` that
//!   is the mean of `k` values per pass: the 2D result is the rounded mean of the rounded row
//!   means, which can differ by one level from the rounded mean of all `k x k` values
//!   (`[[0, 1], [0, 0]]` gives 1, not 0). A pass whose size does not change is skipped.

use std::io::Cursor;

use arpg::image::{Image, over};
use thiserror::Error;

/// The most pixels a source file may have, checked before its pixels are decoded.
pub const MAX_PIXELS: usize = 4096 * 4096;

/// Fixed-point precision of the resampling weights (Pillow's `PRECISION_BITS`).
const PRECISION_BITS: u32 = 22;

#[derive(Debug, Error)]
pub enum RenderError {
    #[error("cannot decode PNG: {0}")]
    Png(#[from] png::DecodingError),
    #[error("cannot decode WebP: {0}")]
    Webp(#[from] image_webp::DecodingError),
    #[error("image is {width}x{height}: empty, or more than {MAX_PIXELS} pixels")]
    BadSize { width: usize, height: usize },
    #[error("unexpected PNG output: {0}")]
    Format(String),
}

/// An 8-bit RGBA picture, row-major, `[r, g, b, a]` per pixel, alpha not premultiplied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rgba {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

fn check_size(width: usize, height: usize) -> Result<(), RenderError> {
    match width.checked_mul(height) {
        Some(n) if n > 0 && n <= MAX_PIXELS => Ok(()),
        _ => Err(RenderError::BadSize { width, height }),
    }
}

/// Decodes a PNG of any colour type to RGBA: palette (with `tRNS` alpha) and low bit depths are
/// expanded, 16-bit samples keep their high byte, grey is repeated, no alpha means opaque.
pub fn decode_png(bytes: &[u8]) -> Result<Rgba, RenderError> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let header = decoder.read_header_info()?;
    let (width, height) = (header.width as usize, header.height as usize);
    check_size(width, height)?;
    let mut reader = decoder.read_info()?;
    let size = reader.output_buffer_size().ok_or_else(|| RenderError::Format("frame too large".into()))?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf)?;
    if frame.bit_depth != png::BitDepth::Eight {
        return Err(RenderError::Format(format!("bit depth {:?}", frame.bit_depth)));
    }
    let samples = frame.color_type.samples();
    let mut pixels = Vec::with_capacity(width * height * 4);
    for row in buf.chunks_exact(frame.line_size).take(height) {
        for p in row[..width * samples].chunks_exact(samples) {
            pixels.extend_from_slice(&match *p {
                [v] => [v, v, v, 255],
                [v, a] => [v, v, v, a],
                [r, g, b] => [r, g, b, 255],
                [r, g, b, a] => [r, g, b, a],
                _ => return Err(RenderError::Format(format!("{samples} samples per pixel"))),
            });
        }
    }
    Ok(Rgba { width, height, pixels })
}

/// Decodes a WebP (lossy or lossless, first frame of an animation) to RGBA. Lossy chroma is
/// upsampled bilinearly ("fancy" upsampling, libwebp's default).
pub fn decode_webp(bytes: &[u8]) -> Result<Rgba, RenderError> {
    let mut decoder = image_webp::WebPDecoder::new(Cursor::new(bytes))?;
    let (w, h) = decoder.dimensions();
    let (width, height) = (w as usize, h as usize);
    check_size(width, height)?;
    let mut buf = vec![0u8; decoder.output_buffer_size().ok_or(image_webp::DecodingError::ImageTooLarge)?];
    decoder.read_image(&mut buf)?;
    let pixels = if decoder.has_alpha() {
        buf
    } else {
        buf.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect()
    };
    Ok(Rgba { width, height, pixels })
}

/// `rgba` composited onto an opaque `background` ([`over`]).
pub fn composite(rgba: &Rgba, background: [u8; 3]) -> Image {
    let pixels = rgba
        .pixels
        .chunks_exact(4)
        .flat_map(|p| [0, 1, 2].map(|c| over(p[c], p[3], background[c])))
        .collect();
    Image { width: rgba.width, height: rgba.height, channels: 3, pixels }
}

/// `image` centred on a square of `background` whose side is its longer side (the left / top
/// margin gets the smaller half of an odd difference). A square image is returned as it is.
pub fn square(image: Image, background: [u8; 3]) -> Image {
    let side = image.width.max(image.height);
    if image.width == image.height {
        return image;
    }
    let mut out = Image {
        width: side,
        height: side,
        channels: 3,
        pixels: background.iter().copied().cycle().take(side * side * 3).collect(),
    };
    out.paste(&image, (side - image.width) / 2, (side - image.height) / 2);
    out
}

/// One output position of a box pass: the first input index and the fixed-point weight of each
/// input from there on.
struct Tap {
    first: usize,
    weights: Vec<i64>,
}

/// Pillow's box-filter taps for resampling `input` values to `output` (`output >= 1`): output
/// `i` covers `[i s, (i + 1) s)` with `s = input / output`; the inputs whose centres lie in it
/// (half-open the other way: `(-1/2, 1/2]` in box units) get equal weights summing to one.
fn box_taps(input: usize, output: usize) -> Vec<Tap> {
    let scale = input as f64 / output as f64;
    let filter_scale = scale.max(1.0);
    let support = 0.5 * filter_scale;
    let inv = 1.0 / filter_scale;
    (0..output)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            // C's (int) cast: truncation, the values are positive.
            let first = ((center - support + 0.5) as usize).min(input);
            let end = ((center + support + 0.5) as usize).min(input);
            let inside: Vec<bool> = (first..end)
                .map(|x| {
                    let t = (x as f64 - center + 0.5) * inv;
                    t > -0.5 && t <= 0.5
                })
                .collect();
            let n = inside.iter().filter(|&&b| b).count() as f64;
            let one = (1i64 << PRECISION_BITS) as f64;
            let weights = inside.iter().map(|&b| if b { (0.5 + one / n) as i64 } else { 0 }).collect();
            Tap { first, weights }
        })
        .collect()
}

/// One weighted sum in fixed point, rounded half up and clamped to `0..=255`.
fn tap_value(tap: &Tap, value: impl Fn(usize) -> u8) -> u8 {
    let sum = tap
        .weights
        .iter()
        .enumerate()
        .fold(1i64 << (PRECISION_BITS - 1), |acc, (j, &w)| acc + value(tap.first + j) as i64 * w);
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

fn resize_horizontal(image: &Image, width: usize) -> Image {
    let c = image.channels;
    let taps = box_taps(image.width, width);
    let mut pixels = Vec::with_capacity(width * image.height * c);
    for row in image.pixels.chunks_exact(image.width * c) {
        for tap in &taps {
            pixels.extend((0..c).map(|ch| tap_value(tap, |x| row[x * c + ch])));
        }
    }
    Image { width, height: image.height, channels: c, pixels }
}

fn resize_vertical(image: &Image, height: usize) -> Image {
    let stride = image.width * image.channels;
    let taps = box_taps(image.height, height);
    let mut pixels = Vec::with_capacity(stride * height);
    for tap in &taps {
        pixels.extend((0..stride).map(|i| tap_value(tap, |y| image.pixels[y * stride + i])));
    }
    Image { width: image.width, height, channels: image.channels, pixels }
}

/// `image` resampled to `width` x `height` with Pillow's `Image.BOX` filter: horizontal pass,
/// then vertical, each rounded to 8 bits (see the module doc). Panics on a zero target side.
pub fn resize_box(image: &Image, width: usize, height: usize) -> Image {
    assert!(width > 0 && height > 0, "cannot resize to {width}x{height}");
    let wide = if width == image.width { image.clone() } else { resize_horizontal(image, width) };
    if height == image.height { wide } else { resize_vertical(&wide, height) }
}

/// The whole rule: composite onto `background`, square, box-resize to `size` x `size`.
pub fn render(rgba: &Rgba, background: [u8; 3], size: usize) -> Image {
    resize_box(&square(composite(rgba, background), background), size, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(width: usize, height: usize, values: &[u8]) -> Image {
        Image::from_raw(width, height, 1, values.to_vec()).unwrap()
    }

    #[test]
    fn box_halving_averages_each_pair_rounding_half_up() {
        // Rows [10, 20, 30, 41] -> [15, 36] (35.5 rounds up); the vertical pass then averages
        // [15, 36] with the second row's [0, 0] -> [8, 18].
        let image = grey(4, 2, &[10, 20, 30, 41, 0, 0, 0, 0]);
        assert_eq!(resize_box(&image, 2, 1).pixels, vec![8, 18]);
        assert_eq!(resize_box(&image, 2, 2).pixels, vec![15, 36, 0, 0]);
    }

    #[test]
    fn box_quartering_is_the_mean_of_row_means() {
        // A 4x4 block: row means 1.5 -> 2, 5.5 -> 6, 9.5 -> 10, 13.5 -> 14; their mean 8.
        let image = grey(4, 4, &(0..16).map(|v| v as u8).collect::<Vec<_>>());
        assert_eq!(resize_box(&image, 1, 1).pixels, vec![8]);
        // Constant blocks stay exact, and so does a 256 -> 64 reduction of them.
        let flat = Image::filled(256, 256, 3, 201);
        assert_eq!(resize_box(&flat, 64, 64), Image::filled(64, 64, 3, 201));
    }

    #[test]
    fn box_rounds_per_pass_as_pillow_does() {
        // One 1 in a 2x2 block: the row means are 1 (0.5 rounds up) and 0, their mean 0.5 -> 1,
        // where one rounding of 0.25 would give 0. Pillow 9.4's Image.BOX gives 1.
        assert_eq!(resize_box(&grey(2, 2, &[0, 1, 0, 0]), 1, 1).pixels, vec![1]);
        // 4x4 with one 1: row means 0.25 -> 0, so 0.
        let mut one = vec![0u8; 16];
        one[0] = 1;
        assert_eq!(resize_box(&grey(4, 4, &one), 1, 1).pixels, vec![0]);
    }

    #[test]
    fn box_at_a_fractional_ratio_averages_the_centres_inside_each_box() {
        // 5 -> 2: the boxes are [0, 2.5) and [2.5, 5) but in box units a tap is in when its
        // centre is in (-1/2, 1/2], so the centre 2.5 belongs to the first: taps {0, 1, 2} and
        // {3, 4}, (0 + 30 + 60) / 3 = 30 and (90 + 120) / 2 = 105. Pillow 9.4 gives [30, 105].
        let image = grey(5, 1, &[0, 30, 60, 90, 120]);
        assert_eq!(resize_box(&image, 2, 1).pixels, vec![30, 105]);
        // 3 -> 2: centres 0.5 | 1.5 on the edge -> {0, 1}, {2}. Pillow 9.4 gives [5, 30].
        assert_eq!(resize_box(&grey(3, 1, &[0, 10, 30]), 2, 1).pixels, vec![5, 30]);
    }

    #[test]
    fn resizing_to_the_same_size_changes_nothing() {
        let image = grey(3, 2, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(resize_box(&image, 3, 2), image);
    }

    #[test]
    fn compositing_blends_onto_the_background_by_alpha_with_rounding() {
        let rgba =
            Rgba { width: 3, height: 1, pixels: vec![10, 20, 30, 0, 10, 20, 30, 255, 0, 100, 200, 128] };
        let image = composite(&rgba, [255, 255, 255]);
        // Transparent -> background, opaque -> itself; (0*128 + 255*127)/255 = 127,
        // (100*128 + 255*127)/255 = 177.2 -> 177, (200*128 + 255*127)/255 = 227.4 -> 227.
        assert_eq!(image.pixels, vec![255, 255, 255, 10, 20, 30, 127, 177, 227]);
        let on_black = composite(&rgba, [0, 0, 0]);
        // 100 * 128 / 255 = 50.2 -> 50, 200 * 128 / 255 = 100.4 -> 100.
        assert_eq!(on_black.pixels[6..], [0, 50, 100]);
    }

    #[test]
    fn a_tall_image_is_centred_on_a_square_of_the_background() {
        let tall = Image::from_raw(1, 3, 3, vec![1, 1, 1, 2, 2, 2, 3, 3, 3]).unwrap();
        let sq = square(tall, [9, 8, 7]);
        assert_eq!((sq.width, sq.height), (3, 3));
        assert_eq!(sq.get(0, 1), &[9, 8, 7]);
        assert_eq!(sq.get(1, 0), &[1, 1, 1]);
        assert_eq!(sq.get(1, 2), &[3, 3, 3]);
        assert_eq!(sq.get(2, 2), &[9, 8, 7]);
    }

    #[test]
    fn a_png_with_alpha_decodes_to_straight_rgba() {
        let mut bytes = Vec::new();
        let mut enc = png::Encoder::new(&mut bytes, 2, 1);
        enc.set_color(png::ColorType::GrayscaleAlpha);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header().unwrap().write_image_data(&[50, 0, 200, 255]).unwrap();
        let rgba = decode_png(&bytes).unwrap();
        assert_eq!(rgba.pixels, vec![50, 50, 50, 0, 200, 200, 200, 255]);
        // Rendered: on white [255, 200], centred on a 2x2 white square, then 1x1: the top row's
        // mean 227.5 -> 228, with the white row 241.5 -> 242.
        assert_eq!(render(&rgba, [255, 255, 255], 1).pixels, vec![242, 242, 242]);
        assert!(matches!(decode_png(b"not a png"), Err(RenderError::Png(_))));
    }
}
