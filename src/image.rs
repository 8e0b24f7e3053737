//! Images with 1 (grey) or 3 (RGB) channels, PNG in and out, and the pixel <-> token mask
//! mapping.
//!
//! Everything here is plain Rust on `Vec<u8>` so that the native CLI and the wasm runtime share
//! it. Pixels are row-major with the channels of a pixel side by side (`[r, g, b, r, g, b, ...]`),
//! `0` = black, `255` = full intensity. How many channels an image has is the model's business
//! (`VqConfig::image_channels`); [`Image::to_channels`] converts.

use std::io::Cursor;

use thiserror::Error;

/// The most pixels (`width * height`) an input PNG may have. Checked against the
/// header before any image data is decoded.
pub const MAX_PIXELS: usize = 4096 * 4096;

/// Grey used between the tiles of a [`grid`].
pub const GRID_PAD_VALUE: u8 = 128;

/// Pixels at or above this value (in any channel) in a mask image mean "regenerate".
pub const MASK_THRESHOLD: u8 = 128;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ImageError {
    #[error("not a PNG file (bad signature)")]
    NotPng,
    #[error("cannot decode PNG: {0}")]
    Decode(String),
    #[error("cannot encode PNG: {0}")]
    Encode(String),
    #[error("image is {width}x{height}, more than the limit of {max} pixels")]
    TooLarge { width: usize, height: usize, max: usize },
    #[error("a {width}x{height} {} image cannot have {len} values", if *channels == 3 { "RGB" } else { "grey" })]
    SizeMismatch { width: usize, height: usize, channels: usize, len: usize },
    #[error("an image has 1 (grey) or 3 (RGB) channels, not {0}")]
    Channels(usize),
    #[error("image has no pixels")]
    Empty,
}

/// An 8-bit image with 1 (grey) or 3 (RGB) channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    /// Row-major, `width * height * channels` values, a pixel's channels side by side.
    pub pixels: Vec<u8>,
}

const PNG_SIGNATURE: [u8; 8] = [137, 80, 78, 71, 13, 10, 26, 10];

/// ITU-R BT.601 luma, integer arithmetic: `(299 R + 587 G + 114 B) / 1000`.
fn luminance(r: u8, g: u8, b: u8) -> u8 {
    ((299 * r as u32 + 587 * g as u32 + 114 * b as u32) / 1000) as u8
}

/// `v` at coverage `a` composited onto an opaque `b`: `round((v a + b (255 - a)) / 255)`, which is
/// what Pillow's `alpha_composite` onto an opaque image gives.
pub fn over(v: u8, a: u8, b: u8) -> u8 {
    ((v as u32 * a as u32 + b as u32 * (255 - a as u32) + 127) / 255) as u8
}

fn check_channels(channels: usize) -> Result<(), ImageError> {
    if matches!(channels, 1 | 3) { Ok(()) } else { Err(ImageError::Channels(channels)) }
}

impl Image {
    /// A black `width` x `height` image.
    pub fn new(width: usize, height: usize, channels: usize) -> Self {
        Self::filled(width, height, channels, 0)
    }

    /// A `width` x `height` image with every value set to `value`.
    pub fn filled(width: usize, height: usize, channels: usize, value: u8) -> Self {
        Self { width, height, channels, pixels: vec![value; width * height * channels] }
    }

    /// A `width` x `height` image of one colour (`colour.len()` channels).
    pub fn solid(width: usize, height: usize, colour: &[u8]) -> Self {
        Self { width, height, channels: colour.len(), pixels: colour.repeat(width * height) }
    }

    /// Wraps row-major pixels, checking the channel count and that there are exactly
    /// `width * height * channels` values.
    pub fn from_raw(
        width: usize,
        height: usize,
        channels: usize,
        pixels: Vec<u8>,
    ) -> Result<Self, ImageError> {
        let image = Self { width, height, channels, pixels };
        image.check()?;
        Ok(image)
    }

    /// 1 or 3 channels, and exactly `width * height * channels` values.
    fn check(&self) -> Result<(), ImageError> {
        check_channels(self.channels)?;
        let (width, height, channels, len) = (self.width, self.height, self.channels, self.pixels.len());
        if width.checked_mul(height).and_then(|n| n.checked_mul(channels)) != Some(len) {
            return Err(ImageError::SizeMismatch { width, height, channels, len });
        }
        Ok(())
    }

    /// The values of the pixel at column `x`, row `y`. Panics when out of bounds.
    pub fn get(&self, x: usize, y: usize) -> &[u8] {
        assert!(x < self.width && y < self.height, "pixel ({x}, {y}) outside {}x{}", self.width, self.height);
        let i = (y * self.width + x) * self.channels;
        &self.pixels[i..i + self.channels]
    }

    /// Sets every channel of the pixel at column `x`, row `y` to `value`. Panics when out of
    /// bounds.
    pub fn set(&mut self, x: usize, y: usize, value: u8) {
        assert!(x < self.width && y < self.height, "pixel ({x}, {y}) outside {}x{}", self.width, self.height);
        let i = (y * self.width + x) * self.channels;
        self.pixels[i..i + self.channels].fill(value);
    }

    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// Values per row.
    fn stride(&self) -> usize {
        self.width * self.channels
    }

    /// The same picture with `channels` channels: RGB to grey by luminance
    /// (`(299 R + 587 G + 114 B) / 1000`), grey to RGB by repeating the value.
    pub fn to_channels(&self, channels: usize) -> Result<Image, ImageError> {
        check_channels(channels)?;
        let pixels = match (self.channels, channels) {
            (a, b) if a == b => self.pixels.clone(),
            (3, 1) => self.pixels.chunks_exact(3).map(|p| luminance(p[0], p[1], p[2])).collect(),
            (1, 3) => self.pixels.iter().flat_map(|&v| [v; 3]).collect(),
            (a, _) => return Err(ImageError::Channels(a)),
        };
        Ok(Image { width: self.width, height: self.height, channels, pixels })
    }

    /// Decodes a PNG of any colour type and bit depth to an image of `channels` channels, alpha
    /// composited over black ([`Image::from_png_over`]).
    pub fn from_png(bytes: &[u8], channels: usize) -> Result<Self, ImageError> {
        check_channels(channels)?;
        Self::from_png_over(bytes, &[0; 3][..channels])
    }

    /// Decodes a PNG of any colour type and bit depth to an image with one channel per value of
    /// `background` (1 or 3), alpha (including `tRNS` transparency) composited onto it ([`over`]).
    ///
    /// Palette and low bit depths are expanded and 16-bit samples keep their high byte. For one
    /// channel, colour becomes `(299 R + 587 G + 114 B) / 1000` (before the alpha); for three,
    /// grey is repeated. The header is checked against [`MAX_PIXELS`] before the frame is
    /// decoded. For an animated PNG the default image is read.
    pub fn from_png_over(bytes: &[u8], background: &[u8]) -> Result<Self, ImageError> {
        let channels = background.len();
        check_channels(channels)?;
        if bytes.len() < PNG_SIGNATURE.len() || bytes[..PNG_SIGNATURE.len()] != PNG_SIGNATURE {
            return Err(ImageError::NotPng);
        }
        let (frame, buf) = decode_frame(bytes)?;
        let (fw, fh) = (frame.width as usize, frame.height as usize);
        let samples = frame.color_type.samples();
        let mut pixels = Vec::with_capacity(fw * fh * channels);
        for row in buf.chunks_exact(frame.line_size).take(fh) {
            let row = &row[..fw * samples];
            match (frame.color_type, channels) {
                (png::ColorType::Grayscale, 1) | (png::ColorType::Rgb, 3) => pixels.extend_from_slice(row),
                (png::ColorType::Grayscale, _) => pixels.extend(row.iter().flat_map(|&v| [v; 3])),
                (png::ColorType::GrayscaleAlpha, _) => pixels.extend(
                    row.chunks_exact(2).flat_map(|p| background.iter().map(|&b| over(p[0], p[1], b))),
                ),
                (png::ColorType::Rgb, _) => {
                    pixels.extend(row.chunks_exact(3).map(|p| luminance(p[0], p[1], p[2])))
                }
                (png::ColorType::Rgba, 1) => pixels.extend(
                    row.chunks_exact(4).map(|p| over(luminance(p[0], p[1], p[2]), p[3], background[0])),
                ),
                (png::ColorType::Rgba, _) => pixels.extend(
                    row.chunks_exact(4).flat_map(|p| [0, 1, 2].map(|c| over(p[c], p[3], background[c]))),
                ),
                (png::ColorType::Indexed, _) => {
                    return Err(ImageError::Decode("palette was not expanded".into()));
                }
            }
        }
        Self::from_raw(fw, fh, channels, pixels)
    }

    /// Encodes as an 8-bit grey or RGB PNG.
    ///
    /// Panics if the image has a zero side or the wrong number of values (see
    /// [`Image::try_to_png`] for the fallible form).
    pub fn to_png(&self) -> Vec<u8> {
        self.to_png_with_text(&[])
    }

    /// Like [`Image::to_png`], with one text chunk per `(keyword, text)` pair:
    /// `tEXt` when the text is Latin-1, `iTXt` (UTF-8) otherwise. A pair whose keyword
    /// is not 1-79 Latin-1 characters cannot be stored and is left out.
    pub fn to_png_with_text(&self, texts: &[(&str, &str)]) -> Vec<u8> {
        let valid: Vec<(&str, &str)> = texts.iter().copied().filter(|(k, _)| valid_keyword(k)).collect();
        match self.try_to_png_with_text(&valid) {
            Ok(bytes) => bytes,
            Err(e) => panic!("cannot encode {}x{} image as PNG: {e}", self.width, self.height),
        }
    }

    /// Encodes as an 8-bit grey or RGB PNG, reporting problems instead of panicking.
    pub fn try_to_png(&self) -> Result<Vec<u8>, ImageError> {
        self.try_to_png_with_text(&[])
    }

    /// Fallible [`Image::to_png_with_text`]: an invalid keyword is an [`ImageError::Encode`].
    pub fn try_to_png_with_text(&self, texts: &[(&str, &str)]) -> Result<Vec<u8>, ImageError> {
        self.check()?;
        if self.is_empty() {
            return Err(ImageError::Empty);
        }
        let (w, h) = match (u32::try_from(self.width), u32::try_from(self.height)) {
            (Ok(w), Ok(h)) => (w, h),
            _ => return Err(ImageError::Encode("image side exceeds u32".into())),
        };
        if let Some((k, _)) = texts.iter().find(|(k, _)| !valid_keyword(k)) {
            return Err(ImageError::Encode(format!("invalid text keyword {k:?} (1-79 Latin-1 characters)")));
        }
        let enc_err = |e: png::EncodingError| ImageError::Encode(e.to_string());

        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(if self.channels == 3 { png::ColorType::Rgb } else { png::ColorType::Grayscale });
        encoder.set_depth(png::BitDepth::Eight);
        for &(keyword, text) in texts {
            if is_latin1(text) {
                encoder.add_text_chunk(keyword.to_string(), text.to_string()).map_err(enc_err)?;
            } else {
                encoder.add_itxt_chunk(keyword.to_string(), text.to_string()).map_err(enc_err)?;
            }
        }
        let mut writer = encoder.write_header().map_err(enc_err)?;
        writer.write_image_data(&self.pixels).map_err(enc_err)?;
        writer.finish().map_err(enc_err)?;
        Ok(out)
    }

    /// A copy at least `width` x `height` (never smaller than `self`), with `self`
    /// centred on black; the left / top margin gets the smaller half of an odd
    /// difference. Returns the copy and the offset of `self` inside it.
    pub fn pad_to(&self, width: usize, height: usize) -> (Image, (usize, usize)) {
        let (width, height) = (width.max(self.width), height.max(self.height));
        let off = ((width - self.width) / 2, (height - self.height) / 2);
        let mut out = Image::new(width, height, self.channels);
        out.paste(self, off.0, off.1);
        (out, off)
    }

    /// Pads with black, centred, so both sides are multiples of `m` (`m = 0` acts as 1).
    /// Returns the padded image and the offset `(x, y)` of `self` inside it; crop
    /// back with `padded.crop(x, y, self.width, self.height)`.
    pub fn pad_to_multiple(&self, m: usize) -> (Image, (usize, usize)) {
        let m = m.max(1);
        self.pad_to(self.width.div_ceil(m) * m, self.height.div_ceil(m) * m)
    }

    /// The `w` x `h` region whose top-left corner is `(x, y)`. Always `w` x `h`:
    /// any part of the region outside `self` is black.
    pub fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> Image {
        let mut out = Image::new(w, h, self.channels);
        let x_end = x.saturating_add(w).min(self.width);
        if x >= x_end {
            return out;
        }
        let (c, span) = (self.channels, (x_end - x) * self.channels);
        for row in 0..h {
            let sy = y.saturating_add(row);
            if sy >= self.height {
                break;
            }
            let src = sy * self.stride() + x * c;
            out.pixels[row * w * c..row * w * c + span].copy_from_slice(&self.pixels[src..src + span]);
        }
        out
    }

    /// Copies `src` (of the same channel count) into `self` with its top-left corner at
    /// `(x, y)`, clipping at the edges.
    pub fn paste(&mut self, src: &Image, x: usize, y: usize) {
        assert_eq!(src.channels, self.channels, "pasting {} channels into {}", src.channels, self.channels);
        if x >= self.width || y >= self.height {
            return;
        }
        let span = src.width.min(self.width - x) * self.channels;
        for row in 0..src.height.min(self.height - y) {
            let d = (y + row) * self.stride() + x * self.channels;
            let s = row * src.stride();
            self.pixels[d..d + span].copy_from_slice(&src.pixels[s..s + span]);
        }
    }
}

/// The PNG's header checks, then its first frame at 8 bits per sample (palette expanded).
fn decode_frame(bytes: &[u8]) -> Result<(png::OutputInfo, Vec<u8>), ImageError> {
    let decode_err = |e: png::DecodingError| ImageError::Decode(e.to_string());
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let header = decoder.read_header_info().map_err(decode_err)?;
    let (width, height) = (header.width as usize, header.height as usize);
    if width == 0 || height == 0 {
        return Err(ImageError::Empty);
    }
    match width.checked_mul(height) {
        Some(n) if n <= MAX_PIXELS => {}
        _ => return Err(ImageError::TooLarge { width, height, max: MAX_PIXELS }),
    }
    let mut reader = decoder.read_info().map_err(decode_err)?;
    // png 0.18.1 accepts a PLTE whose length is not a multiple of 3 and then panics expanding
    // it (image-rs/image-png#694, found by fuzz/). The spec says 3 bytes per entry.
    if let Some(palette) = reader.info().palette.as_deref().filter(|p| p.len() % 3 != 0) {
        return Err(ImageError::Decode(format!(
            "PLTE chunk of {} bytes, not a whole number of RGB entries",
            palette.len()
        )));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| ImageError::Decode("frame does not fit in memory".into()))?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(decode_err)?;
    if frame.bit_depth != png::BitDepth::Eight {
        return Err(ImageError::Decode(format!("unexpected output bit depth {:?}", frame.bit_depth)));
    }
    Ok((frame, buf))
}

fn is_latin1(s: &str) -> bool {
    s.chars().all(|c| (c as u32) < 256)
}

fn valid_keyword(k: &str) -> bool {
    let n = k.chars().count();
    (1..=79).contains(&n) && is_latin1(k)
}

/// Tiles `images` (all of one channel count) left to right, top to bottom, `cols` per row, with
/// `pad` pixels of grey ([`GRID_PAD_VALUE`]) between tiles (none around the outside).
///
/// Every cell is as large as the largest image; a smaller image sits centred in
/// its cell on grey, and missing cells of the last row are grey. `cols` is
/// clamped to `1..=images.len()`, so a short list makes a single row exactly as
/// wide as it needs. No images give an empty `0 x 0` grey image.
pub fn grid(images: &[Image], cols: usize, pad: usize) -> Image {
    let Some(first) = images.first() else { return Image::new(0, 0, 1) };
    let cols = cols.clamp(1, images.len());
    let rows = images.len().div_ceil(cols);
    let cw = images.iter().map(|i| i.width).max().unwrap_or(0);
    let ch = images.iter().map(|i| i.height).max().unwrap_or(0);
    let width = cols * cw + (cols - 1) * pad;
    let height = rows * ch + (rows - 1) * pad;
    let mut out = Image::filled(width, height, first.channels, GRID_PAD_VALUE);
    for (i, img) in images.iter().enumerate() {
        let (c, r) = (i % cols, i / cols);
        let x = c * (cw + pad) + (cw - img.width) / 2;
        let y = r * (ch + pad) + (ch - img.height) / 2;
        out.paste(img, x, y);
    }
    out
}

/// Which tokens of an `h` x `w` token grid to regenerate (`true`), row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenMask {
    pub h: usize,
    pub w: usize,
    pub cells: Vec<bool>,
}

impl TokenMask {
    /// Nothing to regenerate.
    pub fn empty(h: usize, w: usize) -> Self {
        Self { h, w, cells: vec![false; h * w] }
    }

    /// Regenerate every token.
    pub fn full(h: usize, w: usize) -> Self {
        Self { h, w, cells: vec![true; h * w] }
    }

    /// Maps a pixel mask (white = regenerate) to tokens of `factor` x `factor`
    /// pixels: a token is regenerated when ANY value of ANY of its pixels is >= 128.
    ///
    /// A mask whose sides are not multiples of `factor` is first padded exactly
    /// like [`Image::pad_to_multiple`] (centred, black = keep), so it lines up
    /// with an image padded the same way; the grid is then
    /// `ceil(height / factor)` x `ceil(width / factor)`. `factor = 0` acts as 1.
    pub fn from_pixel_mask(mask: &Image, factor: usize) -> TokenMask {
        let factor = factor.max(1);
        let (mask, _) = mask.pad_to_multiple(factor);
        let (h, w) = (mask.height / factor, mask.width / factor);
        let mut out = TokenMask::empty(h, w);
        for (i, pixel) in mask.pixels.chunks_exact(mask.channels).enumerate() {
            if pixel.iter().any(|&v| v >= MASK_THRESHOLD) {
                let (x, y) = (i % mask.width, i / mask.width);
                out.cells[(y / factor) * w + x / factor] = true;
            }
        }
        out
    }

    /// How many tokens are regenerated.
    pub fn count(&self) -> usize {
        self.cells.iter().filter(|&&c| c).count()
    }

    pub fn get(&self, row: usize, col: usize) -> bool {
        self.cells[row * self.w + col]
    }

    pub fn set(&mut self, row: usize, col: usize, value: bool) {
        self.cells[row * self.w + col] = value;
    }

    /// A `w * factor` x `h * factor` image, white where tokens are regenerated,
    /// black elsewhere (for overlays and for round trips through a pixel mask).
    pub fn to_image(&self, factor: usize) -> Image {
        let factor = factor.max(1);
        let (width, height) = (self.w * factor, self.h * factor);
        let mut out = Image::new(width, height, 1);
        for y in 0..height {
            for x in 0..width {
                if self.cells[(y / factor) * self.w + x / factor] {
                    out.pixels[y * width + x] = 255;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(w: u32, h: u32, color: png::ColorType, depth: png::BitDepth, data: &[u8]) -> Vec<u8> {
        encode_with(w, h, color, depth, data, |_| {})
    }

    fn encode_with(
        w: u32,
        h: u32,
        color: png::ColorType,
        depth: png::BitDepth,
        data: &[u8],
        setup: impl FnOnce(&mut png::Encoder<'_, &mut Vec<u8>>),
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        setup(&mut enc);
        let mut wr = enc.write_header().unwrap();
        wr.write_image_data(data).unwrap();
        wr.finish().unwrap();
        out
    }

    fn ramp(w: usize, h: usize) -> Image {
        let pixels = (0..w * h).map(|i| (i * 37 % 256) as u8).collect();
        Image::from_raw(w, h, 1, pixels).unwrap()
    }

    #[test]
    fn png_round_trip_keeps_every_pixel() {
        let img = ramp(13, 7);
        let back = Image::from_png(&img.to_png(), 1).unwrap();
        assert_eq!(back, img);
    }

    #[test]
    fn text_chunks_are_written() {
        let img = ramp(4, 4);
        let bytes =
            img.to_png_with_text(&[("Software", "arpg"), ("Comment", "class=Sneaker ✓"), ("", "dropped")]);
        let mut reader = png::Decoder::new(Cursor::new(&bytes[..])).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        reader.finish().unwrap();
        let info = reader.info();
        let latin1: Vec<(&str, &str)> =
            info.uncompressed_latin1_text.iter().map(|t| (t.keyword.as_str(), t.text.as_str())).collect();
        assert_eq!(latin1, [("Software", "arpg")]);
        assert_eq!(info.utf8_text.len(), 1);
        assert_eq!(info.utf8_text[0].keyword, "Comment");
        assert_eq!(info.utf8_text[0].get_text().unwrap(), "class=Sneaker ✓");
        assert_eq!(Image::from_png(&bytes, 1).unwrap(), img);
    }

    #[test]
    fn try_to_png_reports_problems() {
        assert_eq!(Image::new(0, 3, 1).try_to_png(), Err(ImageError::Empty));
        let bad = Image { channels: 1, width: 2, height: 2, pixels: vec![0; 3] };
        assert_eq!(
            bad.try_to_png(),
            Err(ImageError::SizeMismatch { width: 2, height: 2, channels: 1, len: 3 })
        );
        assert!(matches!(ramp(2, 2).try_to_png_with_text(&[("", "x")]), Err(ImageError::Encode(_))));
    }

    #[test]
    fn from_raw_checks_length() {
        assert!(Image::from_raw(3, 2, 1, vec![0; 6]).is_ok());
        assert_eq!(
            Image::from_raw(3, 2, 1, vec![0; 5]),
            Err(ImageError::SizeMismatch { width: 3, height: 2, channels: 1, len: 5 })
        );
    }

    #[test]
    fn rgb_and_rgba_become_luminance() {
        use png::{BitDepth::Eight, ColorType::*};
        let rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255];
        let img = Image::from_png(&encode(4, 1, Rgb, Eight, &rgb), 1).unwrap();
        assert_eq!(img.pixels, [76, 149, 29, 255]);

        // Alpha composited over black: white at half coverage, red opaque, anything transparent.
        let rgba = [255, 255, 255, 128, 255, 0, 0, 255, 200, 100, 50, 0, 0, 255, 0, 255];
        let img = Image::from_png(&encode(2, 2, Rgba, Eight, &rgba), 1).unwrap();
        assert_eq!((img.width, img.height), (2, 2));
        assert_eq!(img.pixels, [128, 76, 0, 149]);
    }

    #[test]
    fn grey_alpha_and_16_bit() {
        use png::{BitDepth::*, ColorType::*};
        let ga = [200, 255, 200, 0, 100, 51];
        let img = Image::from_png(&encode(3, 1, GrayscaleAlpha, Eight, &ga), 1).unwrap();
        assert_eq!(img.pixels, [200, 0, 20]);

        // 16-bit grey, big endian: the high byte survives.
        let g16 = [0x12, 0x34, 0xff, 0xff, 0x80, 0x01];
        let img = Image::from_png(&encode(3, 1, Grayscale, Sixteen, &g16), 1).unwrap();
        assert_eq!(img.pixels, [0x12, 0xff, 0x80]);

        // 16-bit RGBA: opaque pure green.
        let rgba16 = [0, 0, 0xff, 0xff, 0, 0, 0xff, 0xff];
        let img = Image::from_png(&encode(1, 1, Rgba, Sixteen, &rgba16), 1).unwrap();
        assert_eq!(img.pixels, [149]);
    }

    #[test]
    fn low_bit_grey_is_scaled_to_8_bit() {
        use png::{BitDepth::One, ColorType::Grayscale};
        // 1-bit: 0b1010_0000 -> white, black, white, black.
        let img = Image::from_png(&encode(4, 1, Grayscale, One, &[0b1010_0000]), 1).unwrap();
        assert_eq!(img.pixels, [255, 0, 255, 0]);
    }

    #[test]
    fn indexed_with_transparency() {
        use png::{BitDepth::Two, ColorType::Indexed};
        // Palette: 0 = red, 1 = white, 2 = white but fully transparent via tRNS.
        let png = encode_with(3, 1, Indexed, Two, &[0b0001_1000], |e| {
            e.set_palette(vec![255, 0, 0, 255, 255, 255, 255, 255, 255]);
            e.set_trns(vec![255, 255, 0]);
        });
        let img = Image::from_png(&png, 1).unwrap();
        assert_eq!(img.pixels, [76, 255, 0]);
    }

    #[test]
    fn garbage_and_truncation_are_typed_errors() {
        assert_eq!(Image::from_png(b"GIF89a....", 1), Err(ImageError::NotPng));
        assert_eq!(Image::from_png(&[], 1), Err(ImageError::NotPng));
        let good = ramp(16, 16).to_png();
        for cut in [8, 20, 40, good.len() - 20] {
            assert!(
                matches!(Image::from_png(&good[..cut], 1), Err(ImageError::Decode(_))),
                "cut at {cut} should be a decode error"
            );
        }
    }

    #[test]
    fn grid_layout_and_padding() {
        let a = Image::filled(2, 2, 1, 10);
        let b = Image::filled(2, 2, 1, 20);
        let c = Image::filled(2, 2, 1, 30);
        let g = grid(&[a, b, c], 2, 1);
        assert_eq!((g.width, g.height), (5, 5));
        #[rustfmt::skip]
        let expected = [
            10, 10, 128, 20, 20,
            10, 10, 128, 20, 20,
            128, 128, 128, 128, 128,
            30, 30, 128, 128, 128,
            30, 30, 128, 128, 128,
        ];
        assert_eq!(g.pixels, expected);

        // More columns than images: one row, no trailing cells.
        let g = grid(&vec![Image::new(3, 2, 1); 2], 8, 2);
        assert_eq!((g.width, g.height), (8, 2));
        assert_eq!(grid(&[], 4, 2), Image::new(0, 0, 1));
    }

    #[test]
    fn grid_centres_small_images() {
        let big = Image::filled(3, 3, 1, 0);
        let small = Image::filled(1, 1, 1, 255);
        let g = grid(&[big, small], 2, 0);
        assert_eq!((g.width, g.height), (6, 3));
        assert_eq!(g.get(4, 1)[0], 255);
        assert_eq!(g.get(3, 0)[0], GRID_PAD_VALUE);
        assert_eq!(g.get(0, 0)[0], 0);
    }

    #[test]
    fn pad_to_multiple_centres_on_black_and_crop_undoes_it() {
        let img = Image::filled(5, 3, 1, 200);
        let (p, (x, y)) = img.pad_to_multiple(4);
        assert_eq!((p.width, p.height), (8, 4));
        assert_eq!((x, y), (1, 0));
        assert_eq!(p.pixels.iter().filter(|&&v| v == 200).count(), 15);
        assert_eq!(p.get(0, 0)[0], 0);
        assert_eq!(p.get(1, 0)[0], 200);
        assert_eq!(p.get(6, 0)[0], 0);
        assert_eq!(p.get(1, 3)[0], 0);
        assert_eq!(p.crop(x, y, 5, 3), img);

        let r = ramp(8, 8);
        assert_eq!(r.pad_to_multiple(4), (r.clone(), (0, 0)));
        assert_eq!(r.pad_to_multiple(0).0, r);
    }

    #[test]
    fn crop_takes_the_region_and_blacks_out_the_outside() {
        let r = ramp(6, 5);
        let c = r.crop(2, 1, 3, 2);
        assert_eq!(
            c.pixels,
            [r.get(2, 1)[0], r.get(3, 1)[0], r.get(4, 1)[0], r.get(2, 2)[0], r.get(3, 2)[0], r.get(4, 2)[0]]
        );
        let edge = r.crop(5, 4, 2, 2);
        assert_eq!(edge.pixels, [r.get(5, 4)[0], 0, 0, 0]);
        assert_eq!(r.crop(10, 10, 2, 2), Image::new(2, 2, 1));
    }

    #[test]
    fn single_white_pixel_marks_exactly_one_token() {
        for (x, y) in [(0, 0), (5, 2), (31, 31), (12, 27)] {
            let mut mask = Image::new(32, 32, 1);
            mask.set(x, y, 255);
            let tm = TokenMask::from_pixel_mask(&mask, 4);
            assert_eq!((tm.h, tm.w), (8, 8));
            assert_eq!(tm.count(), 1);
            assert!(tm.get(y / 4, x / 4), "pixel ({x}, {y})");
        }
    }

    #[test]
    fn mask_threshold_is_128() {
        let mut mask = Image::new(8, 4, 1);
        mask.set(1, 1, 127);
        mask.set(6, 3, 128);
        let tm = TokenMask::from_pixel_mask(&mask, 4);
        assert_eq!(tm.cells, [false, true]);
    }

    #[test]
    fn mask_off_multiple_is_padded_like_the_image() {
        // 6x6 mask, factor 4: padded centred to 8x8 with offset (1, 1).
        let mut mask = Image::new(6, 6, 1);
        mask.set(2, 2, 255); // -> padded (3, 3) -> token (0, 0)
        mask.set(3, 3, 255); // -> padded (4, 4) -> token (1, 1)
        let tm = TokenMask::from_pixel_mask(&mask, 4);
        assert_eq!((tm.h, tm.w), (2, 2));
        assert_eq!(tm.cells, [true, false, false, true]);
    }

    #[test]
    fn token_mask_full_count_and_image() {
        assert_eq!(TokenMask::full(3, 5).count(), 15);
        assert_eq!(TokenMask::empty(3, 5).count(), 0);
        let mut tm = TokenMask::empty(2, 3);
        tm.set(1, 2, true);
        let img = tm.to_image(4);
        assert_eq!((img.width, img.height), (12, 8));
        assert_eq!(img.pixels.iter().filter(|&&v| v == 255).count(), 16);
        assert_eq!(img.get(8, 4)[0], 255);
        assert_eq!(img.get(7, 4)[0], 0);
        // to_image and from_pixel_mask are inverse.
        assert_eq!(TokenMask::from_pixel_mask(&img, 4), tm);
    }

    fn colours(w: usize, h: usize) -> Image {
        let pixels = (0..w * h * 3).map(|i| (i * 53 % 256) as u8).collect();
        Image::from_raw(w, h, 3, pixels).unwrap()
    }

    #[test]
    fn a_colour_png_round_trips_with_every_channel() {
        let img = colours(5, 3);
        let png = img.to_png();
        assert_eq!(Image::from_png(&png, 3).unwrap(), img);
        // Read as grey, the same file gives each pixel's luminance.
        assert_eq!(Image::from_png(&png, 1).unwrap(), img.to_channels(1).unwrap());
    }

    #[test]
    fn colour_reads_keep_rgb_and_composite_alpha_per_channel() {
        use png::{BitDepth::Eight, ColorType::*};
        let rgba = [255, 255, 255, 128, 255, 0, 0, 255, 200, 100, 50, 0, 0, 255, 0, 255];
        let img = Image::from_png(&encode(2, 2, Rgba, Eight, &rgba), 3).unwrap();
        assert_eq!(img.pixels, [128, 128, 128, 255, 0, 0, 0, 0, 0, 0, 255, 0]);
        // Grey and grey+alpha files become RGB with equal channels.
        let img = Image::from_png(&encode(2, 1, GrayscaleAlpha, Eight, &[200, 255, 100, 51]), 3).unwrap();
        assert_eq!(img.pixels, [200, 200, 200, 20, 20, 20]);
    }

    #[test]
    fn alpha_is_composited_onto_the_background_given() {
        use png::{BitDepth::Eight, ColorType::*};
        // White at half coverage, red opaque, anything transparent, green opaque.
        let rgba =
            encode(2, 2, Rgba, Eight, &[255, 255, 255, 128, 255, 0, 0, 255, 200, 100, 50, 0, 0, 255, 0, 255]);
        let on_blue = Image::from_png_over(&rgba, &[0, 0, 255]).unwrap();
        assert_eq!(on_blue.pixels, [128, 128, 255, 255, 0, 0, 0, 0, 255, 0, 255, 0]);
        let on_grey = Image::from_png_over(&rgba, &[100]).unwrap();
        assert_eq!(on_grey.pixels, [178, 76, 100, 149]);
        let grey_alpha = encode(2, 1, GrayscaleAlpha, Eight, &[200, 255, 100, 51]);
        let on_white = Image::from_png_over(&grey_alpha, &[255, 255, 255]).unwrap();
        assert_eq!(on_white.pixels, [200, 200, 200, 224, 224, 224]);
        assert_eq!(Image::from_png_over(&rgba, &[0, 0]), Err(ImageError::Channels(2)));
    }

    #[test]
    fn grey_and_colour_convert_both_ways() {
        let grey = ramp(4, 3);
        let rgb = grey.to_channels(3).unwrap();
        assert_eq!(rgb.pixels.len(), 36);
        assert!(rgb.pixels.chunks(3).zip(&grey.pixels).all(|(p, &v)| p == [v, v, v]));
        assert_eq!(rgb.to_channels(1).unwrap(), grey, "equal channels keep their value through luminance");
        assert_eq!(grey.to_channels(2), Err(ImageError::Channels(2)));
        assert_eq!(Image::from_raw(1, 1, 4, vec![0; 4]), Err(ImageError::Channels(4)));
    }

    #[test]
    fn colour_crop_pad_paste_and_grid_move_whole_pixels() {
        let img = colours(5, 3);
        let (p, (x, y)) = img.pad_to_multiple(4);
        assert_eq!((p.width, p.height, p.channels, x, y), (8, 4, 3, 1, 0));
        assert_eq!(p.get(0, 0), [0, 0, 0]);
        assert_eq!(p.get(1, 0), img.get(0, 0));
        assert_eq!(p.crop(x, y, 5, 3), img);
        let g = grid(&[img.clone(), img.clone()], 2, 1);
        assert_eq!((g.width, g.height, g.channels), (11, 3, 3));
        assert_eq!(g.get(5, 1), [GRID_PAD_VALUE; 3]);
        assert_eq!(g.get(6, 2), img.get(0, 2));
    }

    #[test]
    fn a_colour_mask_regenerates_where_any_channel_is_bright() {
        let mut mask = Image::new(8, 4, 3);
        mask.pixels[(8 + 6) * 3 + 2] = 200; // pixel (6, 1): blue only, in token (0, 1)
        assert_eq!(TokenMask::from_pixel_mask(&mask, 4).cells, [false, true]);
    }
}
