//! Class-keeping variants of the training pictures, for a small dataset (the emoji's 5924).
//!
//! A variant is the picture shifted by one token (`unit` pixels: the tokenizer's patch, so the
//! token grid stays aligned with the content) in one of the four directions, or not shifted, and
//! mirrored left-right where the class allows it. A shift is used only when nothing but
//! background leaves the frame, so no variant crops a picture: the frame fills with background.
//! Variants are chosen on one size of the pictures and applied to every size of them
//! ([`apply`]), so that the 32x32 and 64x64 renders of a variant are one picture.

use crate::data::Dataset;

/// One variant of picture `image`: shifted by `(dx, dy)` units (each -1, 0 or 1), then mirrored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    pub image: usize,
    pub dx: i8,
    pub dy: i8,
    pub mirror: bool,
}

const SHIFTS: [(i8, i8); 5] = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)];

/// Every usable variant of every picture of `data`, picture after picture (the unchanged
/// picture first). `mirror_ok(label)`: whether a mirrored picture keeps its class.
pub fn variants(
    data: &Dataset,
    unit: usize,
    background: &[u8],
    mirror_ok: impl Fn(u8) -> bool,
) -> Vec<Variant> {
    let mut out = Vec::new();
    for image in 0..data.len() {
        let mirrors: &[bool] = if mirror_ok(data.labels[image]) { &[false, true] } else { &[false] };
        for &mirror in mirrors {
            for &(dx, dy) in &SHIFTS {
                if only_background_leaves(data, image, dx, dy, unit, background) {
                    out.push(Variant { image, dx, dy, mirror });
                }
            }
        }
    }
    out
}

/// Whether shifting picture `image` by `(dx, dy) * unit` pixels moves only background pixels out.
fn only_background_leaves(
    data: &Dataset,
    image: usize,
    dx: i8,
    dy: i8,
    unit: usize,
    background: &[u8],
) -> bool {
    let (w, h, c) = (data.width, data.height, data.channels);
    let pixels = data.image(image);
    let leaves = |x: usize, y: usize| {
        (dx > 0 && x >= w - unit) || (dx < 0 && x < unit) || (dy > 0 && y >= h - unit) || (dy < 0 && y < unit)
    };
    (0..w * h).all(|i| !leaves(i % w, i / w) || pixels[i * c..(i + 1) * c] == background[..c])
}

/// The pictures of `variants`, made from `data` with one unit = `unit` pixels (the same variants
/// apply to every render size: a unit of 4 pixels at 64x64 is 2 pixels at 32x32).
pub fn apply(data: &Dataset, variants: &[Variant], unit: usize, background: &[u8]) -> Dataset {
    let (w, h, c) = (data.width, data.height, data.channels);
    let mut pixels = Vec::with_capacity(variants.len() * w * h * c);
    for v in variants {
        let src = data.image(v.image);
        for y in 0..h {
            for x in 0..w {
                // The output pixel (x, y) shows the source pixel it came from, if any.
                let x = if v.mirror { w - 1 - x } else { x };
                let sx = x as isize - v.dx as isize * unit as isize;
                let sy = y as isize - v.dy as isize * unit as isize;
                let inside = (0..w as isize).contains(&sx) && (0..h as isize).contains(&sy);
                match inside {
                    true => {
                        let i = (sy as usize * w + sx as usize) * c;
                        pixels.extend_from_slice(&src[i..i + c]);
                    }
                    false => pixels.extend_from_slice(&background[..c]),
                }
            }
        }
    }
    let labels = variants.iter().map(|v| data.labels[v.image]).collect();
    Dataset { width: w, height: h, channels: c, pixels, labels }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4x4 grey picture with one bright pixel at `(x, y)` on a background of 0.
    fn dot(x: usize, y: usize, label: u8) -> Dataset {
        let mut pixels = vec![0u8; 16];
        pixels[y * 4 + x] = 9;
        Dataset { width: 4, height: 4, channels: 1, pixels, labels: vec![label] }
    }

    #[test]
    fn a_shift_that_would_crop_the_picture_is_not_used() {
        // The dot sits in the rightmost column: shifting right would push it out.
        let v = variants(&dot(3, 1, 0), 1, &[0], |_| false);
        let shifts: Vec<(i8, i8)> = v.iter().map(|v| (v.dx, v.dy)).collect();
        assert_eq!(shifts, vec![(0, 0), (-1, 0), (0, 1), (0, -1)]);
    }

    #[test]
    fn mirrors_come_only_where_the_class_allows() {
        let data = dot(1, 1, 5);
        assert!(variants(&data, 1, &[0], |l| l != 5).iter().all(|v| !v.mirror));
        assert_eq!(variants(&data, 1, &[0], |_| true).iter().filter(|v| v.mirror).count(), 5);
    }

    #[test]
    fn a_variant_moves_and_mirrors_the_pixels_and_fills_with_background() {
        let data = dot(1, 2, 3);
        let out = apply(&data, &[Variant { image: 0, dx: 1, dy: -1, mirror: true }], 1, &[7]);
        // Shifted to (2, 1), then mirrored to (1, 1); the column and row that came in are 7.
        let mut expected = vec![0u8; 16];
        expected[4 + 1] = 9;
        for i in 0..4 {
            expected[3 * 4 + i] = 7; // the bottom row came in (shift up)
            expected[i * 4 + 3] = 7; // the left column came in, now on the right (mirrored)
        }
        assert_eq!(out.pixels, expected);
        assert_eq!(out.labels, vec![3]);
    }

    #[test]
    fn one_unit_at_two_sizes_is_one_picture() {
        // A 2x2 block at 4x4 and its 1-pixel version at 2x2 move together.
        let mut big = Dataset { width: 4, height: 4, channels: 1, pixels: vec![0; 16], labels: vec![0] };
        for (x, y) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            big.pixels[y * 4 + x] = 9;
        }
        let small = Dataset { width: 2, height: 2, channels: 1, pixels: vec![9, 0, 0, 0], labels: vec![0] };
        let v = variants(&big, 2, &[0], |_| false);
        assert_eq!(v.len(), 3); // unchanged, right, down
        let (big, small) = (apply(&big, &v, 2, &[0]), apply(&small, &v, 1, &[0]));
        for i in 0..3 {
            let block: Vec<u8> = (0..4).map(|j| big.image(i)[(j / 2) * 4 * 2 + (j % 2) * 2]).collect();
            assert_eq!(block, small.image(i), "variant {i}");
        }
    }
}
