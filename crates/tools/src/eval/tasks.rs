//! The zero-shot tasks under evaluation: in-painting scored on test images, and sheets of
//! in-paintings, out-paintings and expansions to look at.

use std::time::Instant;

use serde::Serialize;

use super::{EvalError, Reference, Stats, check_fits, frechet_distance, mean_squared_error};
use arpg::engine::Engine;
use arpg::image::{GRID_PAD_VALUE, Image, MASK_THRESHOLD, grid};
use arpg::rng::Rng;
use arpg::sampling::SampleOptions;
use arpg::tasks::Sides;

#[derive(Clone, Debug, Serialize)]
pub struct InpaintReport {
    pub n: usize,
    pub steps: usize,
    /// Fraction of in-painted images the classifier assigns to the original label.
    pub accuracy: f64,
    /// The same for the inputs with the masked half black (what the kept half alone says).
    pub masked_accuracy: f64,
    /// Pixels outside the masked tokens that differ from the original (must be 0).
    pub violations: usize,
    /// Pixels checked for violations.
    pub kept_pixels: usize,
    pub seconds: f64,
}

/// Which half of image `i` (`side` pixels square) is regenerated: the right half for even `i`,
/// the top half for odd.
fn half_mask(i: usize, side: usize) -> Image {
    let mut mask = Image::new(side, side, 1);
    for y in 0..side {
        for x in 0..side {
            let on = if i.is_multiple_of(2) { x >= side / 2 } else { y < side / 2 };
            mask.set(x, y, if on { 255 } else { 0 });
        }
    }
    mask
}

/// For each pixel of a square `mask`, whether its token is regenerated: the engine centres the
/// image in its frame (the tokenizer's image size, or the image rounded up to whole tokens) and
/// regenerates every token a white mask pixel touches.
fn masked_pixels(engine: &Engine, mask: &Image) -> Vec<bool> {
    let side = mask.width;
    let (size, f) = (engine.image_size(), engine.factor());
    let frame = side.max(size).div_ceil(f) * f;
    let (off, cols) = ((frame - side) / 2, frame / f);
    let token = |x: usize, y: usize| ((y + off) / f) * cols + (x + off) / f;
    let mut tokens = vec![false; cols * cols];
    for y in 0..side {
        for x in 0..side {
            if mask.get(x, y)[0] >= MASK_THRESHOLD {
                tokens[token(x, y)] = true;
            }
        }
    }
    (0..side * side).map(|p| tokens[token(p % side, p / side)]).collect()
}

/// `n` test images (a seeded random subset), half masked, re-generated with their true label
/// (`opts.seed + i` for image `i`). Returns the report and up to `keep` rows of
/// (original, masked input, result) for a sheet.
pub fn evaluate_inpainting(
    engine: &Engine,
    reference: &Reference,
    n: usize,
    opts: &SampleOptions,
    keep: usize,
) -> Result<(InpaintReport, Image), EvalError> {
    check_fits(engine, reference)?;
    let test = &reference.test;
    if n == 0 || n > test.len() {
        return Err(EvalError::Options(format!("in-painting n must be in 1..={}", test.len())));
    }
    let n_classes = engine.model_config().n_classes;
    let start = Instant::now();
    let pick: Vec<usize> = Rng::new(opts.seed ^ 0x01A9_A1A7)
        .permutation(test.len())
        .into_iter()
        .filter(|&i| (test.labels[i] as usize) < n_classes)
        .take(n)
        .collect();
    let (mut outputs, mut inputs) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut violations, mut kept_pixels) = (0, 0);
    let mut steps = 0;
    let mut cells = Vec::new();
    for (i, &j) in pick.iter().enumerate() {
        let original = test.to_image(j);
        let mask = half_mask(i, original.width);
        let c = original.channels;
        let opts = SampleOptions { seed: opts.seed.wrapping_add(i as u64), ..opts.clone() };
        let mut count = |ev: &arpg::decode::StepEvent| steps = ev.steps;
        let out =
            pollster::block_on(engine.inpaint(&original, &mask, test.labels[j] as usize, &opts, &mut count))?;
        let regenerated = masked_pixels(engine, &mask);
        let mut blanked = original.clone();
        for (p, &r) in regenerated.iter().enumerate() {
            let values = p * c..(p + 1) * c;
            if r {
                blanked.pixels[values].fill(0);
            } else {
                kept_pixels += 1;
                violations += usize::from(out.pixels.get(values.clone()) != Some(&original.pixels[values]));
            }
        }
        if i < keep {
            let mut shown = original.clone();
            regenerated
                .iter()
                .enumerate()
                .filter(|(_, r)| **r)
                .for_each(|(p, _)| shown.pixels[p * c..(p + 1) * c].fill(GRID_PAD_VALUE));
            cells.extend([original.clone(), shown, out.clone()]);
        }
        outputs.extend(out.pixels);
        inputs.extend(blanked.pixels);
    }
    let labels: Vec<u8> = pick.iter().map(|&j| test.labels[j]).collect();
    let report = InpaintReport {
        n: pick.len(),
        steps,
        accuracy: reference.classifier.accuracy(&outputs, &labels),
        masked_accuracy: reference.classifier.accuracy(&inputs, &labels),
        violations,
        kept_pixels,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((report, grid(&cells, 3, 2)))
}

/// 2x expansion of the half-size test images, by the model and by bicubic upscaling, each scored
/// against the real full-size test images.
#[derive(Clone, Debug, Serialize)]
pub struct ExpandReport {
    pub n: usize,
    pub steps: usize,
    /// The model's expansions: classifier accuracy against the true labels, and Fréchet distance
    /// to the full-size test split.
    pub accuracy: f64,
    pub fd: f64,
    /// Pixel fidelity: the root-mean-square difference to the real full-size image, per value in
    /// [0, 1], averaged over the images. Blur scores well here and badly in FD, invented detail
    /// the other way round: the two together say what the eye sees.
    pub rmse: f64,
    /// The same three for bicubic (Catmull-Rom) upscaling of the same inputs.
    pub bicubic_accuracy: f64,
    pub bicubic_fd: f64,
    pub bicubic_rmse: f64,
    pub seconds: f64,
}

/// `n` half-size test images (`reference.half_test`, evenly spaced through it: all of them when
/// `n` is its size) expanded 2x with their true labels (`opts.seed + i` for image `i`). Returns
/// the report and a sheet of the first `keep`: input (pixels doubled), bicubic, the model's, the
/// real full-size image.
pub fn evaluate_expansion(
    engine: &Engine,
    reference: &Reference,
    n: usize,
    opts: &SampleOptions,
    keep: usize,
) -> Result<(ExpandReport, Image), EvalError> {
    check_fits(engine, reference)?;
    let Some(small) = &reference.half_test else {
        return Err(EvalError::Options("the data has no half-size test images to expand".into()));
    };
    let total = small.len();
    if n < 2 || n > total {
        // Two or more: a Fréchet distance needs a covariance.
        return Err(EvalError::Options(format!("expansion n must be in 2..={total}")));
    }
    let start = Instant::now();
    let side = reference.classifier.config.side;
    let pick: Vec<usize> = (0..n).map(|k| k * total / n).collect();
    let labels: Vec<u8> = pick.iter().map(|&i| small.labels[i]).collect();
    let (mut ours, mut bicubic, mut cells) = (Vec::new(), Vec::new(), Vec::new());
    let (mut rmse, mut bicubic_rmse) = (0.0, 0.0);
    let mut steps = 0;
    for (k, &i) in pick.iter().enumerate() {
        let input = small.to_image(i);
        let opts = SampleOptions { seed: opts.seed.wrapping_add(i as u64), ..opts.clone() };
        let mut count = |ev: &arpg::decode::StepEvent| steps = ev.steps;
        let label = small.labels[i] as usize;
        let out = pollster::block_on(engine.expand(Some(&input), 2, label, &opts, &mut count))?;
        let (out, up, real) = (reference.to_frame(&out), upscale(&input, side), reference.test_image(i));
        rmse += mean_squared_error(&out.pixels, &real.pixels).sqrt() / n as f64;
        bicubic_rmse += mean_squared_error(&up.pixels, &real.pixels).sqrt() / n as f64;
        if k < keep {
            cells.extend([upscale_nearest(&input, side), up.clone(), out.clone(), real]);
        }
        ours.extend(out.pixels);
        bicubic.extend(up.pixels);
    }
    let score = |pixels: &[u8]| {
        let scores = reference.classifier.score(pixels);
        let hits = scores.labels.iter().zip(&labels).filter(|(a, b)| **a == **b as usize).count();
        let stats = Stats::from_features(&scores.features, scores.dim).expect("two or more rows");
        (hits as f64 / n as f64, frechet_distance(&stats, &reference.test_stats))
    };
    let ((accuracy, fd), (bicubic_accuracy, bicubic_fd)) = (score(&ours), score(&bicubic));
    let report = ExpandReport {
        n,
        steps,
        accuracy,
        fd,
        rmse,
        bicubic_accuracy,
        bicubic_fd,
        bicubic_rmse,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((report, grid(&cells, 4, 2)))
}

/// `image` resized to `side x side` with the `image` crate's bicubic (Catmull-Rom) filter.
pub fn upscale(image: &Image, side: usize) -> Image {
    use image::imageops::{FilterType, resize};
    use image::{ImageBuffer, Luma, Rgb};
    let (w, h, s) = (image.width as u32, image.height as u32, side as u32);
    let pixels = match image.channels {
        1 => {
            let src = ImageBuffer::<Luma<u8>, _>::from_raw(w, h, image.pixels.clone()).expect("sizes");
            resize(&src, s, s, FilterType::CatmullRom).into_raw()
        }
        _ => {
            let src = ImageBuffer::<Rgb<u8>, _>::from_raw(w, h, image.pixels.clone()).expect("sizes");
            resize(&src, s, s, FilterType::CatmullRom).into_raw()
        }
    };
    Image::from_raw(side, side, image.channels, pixels).expect("the resize's own size")
}

/// `image` resized to `side x side` by repeating pixels (to show an input at the output's size).
fn upscale_nearest(image: &Image, side: usize) -> Image {
    let k = side / image.width.max(1);
    let source =
        |p: usize| image.get((p % side / k).min(image.width - 1), (p / side / k).min(image.height - 1));
    let pixels = (0..side * side).flat_map(|p| source(p).to_vec()).collect();
    Image::from_raw(side, side, image.channels, pixels).expect("side x side pixels")
}

/// Sheets to look at, one row per class (the first test image of that class).
pub struct TaskSheets {
    /// Original, then out-painted by half the grid width to the right, by half the grid height
    /// at the bottom, and by a quarter on every side.
    pub outpaint: Image,
    /// Original, its 2x expansion, and a 2x expansion from scratch.
    pub expand: Image,
    pub seconds: f64,
}

pub fn task_sheets(
    engine: &Engine,
    reference: &Reference,
    opts: &SampleOptions,
) -> Result<TaskSheets, EvalError> {
    check_fits(engine, reference)?;
    let start = Instant::now();
    let c = engine.model_config();
    let (h, w) = (c.grid_h, c.grid_w);
    let sides = [
        Sides { right: w / 2, ..Sides::default() },
        Sides { bottom: h / 2, ..Sides::default() },
        Sides { left: w / 4, right: w / 4, top: h / 4, bottom: h / 4 },
    ];
    let (mut outpaint, mut expand) = (Vec::new(), Vec::new());
    let mut none = |_: &arpg::decode::StepEvent| {};
    for class in 0..c.n_classes {
        let Some(j) = reference.test.labels.iter().position(|&l| l as usize == class) else { continue };
        let original = reference.test_image(j);
        let opts = SampleOptions { seed: opts.seed.wrapping_add(class as u64), ..opts.clone() };
        outpaint.push(original.clone());
        for s in sides {
            outpaint.push(pollster::block_on(engine.outpaint(&original, s, class, &opts, &mut none))?);
        }
        expand.push(original.clone());
        expand.push(pollster::block_on(engine.expand(Some(&original), 2, class, &opts, &mut none))?);
        expand.push(pollster::block_on(engine.expand(None, 2, class, &opts, &mut none))?);
    }
    Ok(TaskSheets {
        outpaint: grid(&outpaint, 1 + sides.len(), 2),
        expand: grid(&expand, 3, 2),
        seconds: start.elapsed().as_secs_f64(),
    })
}
