//! Evaluation of a generator with an independent classifier (native only).
//!
//! Every image is scored in the classifier's frame (its side and channels: Fashion-MNIST's 28x28
//! grey, the emoji's 64x64 RGB); a generated image is cropped from the engine's frame to it
//! (Fashion-MNIST's 32x32 frame back to 28x28).
//!
//! * **Generation**: `n` class-conditional samples, their classes in the test split's proportions
//!   ([`class_mix`]; Fashion-MNIST's split is balanced, the emoji's is not), so that both sides of
//!   the Fréchet distance have the same class mix and the accuracy is weighted like the
//!   classifier's own on the test split; class accuracy (the classifier agrees with the requested
//!   class) and the Fréchet distance of the classifier's features against the test split. The
//!   floor of that distance at the same `n` is a real training subset of `n` images against the
//!   same test split.
//! * **Reconstruction**: `n` test images through the VQ tokenizer alone (encode, decode), scored
//!   like samples: what the tokenizer loses, and so the best the generator can reach.
//! * **Memorisation**: the distance (per-value RMSE) of every sample to its nearest training
//!   image, at the pool's side (the emoji: 32x32, samples box-filtered down), and the share of
//!   samples within [`nearest::COPY_RMSE`] of one, next to the same share for real test images (a
//!   few different emoji are near-identical pictures, so that share is not zero).
//! * **In-painting**: half of each of `n` test images masked (right and top half, alternating),
//!   re-generated with the true label; class accuracy of the results, and the count of pixels
//!   outside the masked tokens that changed (must be 0).
//! * **Expansion** (data with half-size test images, the emoji): each test image's half-size
//!   version expanded 2x by the model and by bicubic upscaling, both scored against the real
//!   full-size test images.
//! * **Sheets**: grids of samples, in-paintings, out-paintings and expansions.

pub mod classifier;
pub mod format;
pub mod frechet;
pub mod nearest;
mod tasks;
pub mod train;

use std::time::Instant;

use serde::Serialize;

use crate::data::Dataset;
use arpg::checkpoint::CheckpointError;
use arpg::choice::Choice;
use arpg::engine::Engine;
use arpg::image::{Image, grid};
use arpg::rng::Rng;
use arpg::sampling::SampleOptions;

pub use classifier::{Classifier, ClassifierConfig, SIDE, Scores};
pub use format::ClassifierMeta;
pub use frechet::{Stats, frechet_distance};
pub use nearest::COPY_RMSE;
pub use tasks::{
    ExpandReport, InpaintReport, TaskSheets, evaluate_expansion, evaluate_inpainting, task_sheets, upscale,
};
pub use train::{ClassifierStep, ClassifierTraining, train_classifier};

/// Images generated together in one call of `Engine::generate`.
pub const BATCH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    #[error("invalid classifier config: {0}")]
    InvalidConfig(String),
    /// The file (its container) or the weights in it.
    #[error(transparent)]
    File(#[from] CheckpointError),
    #[error("invalid classifier training option: {0}")]
    Options(String),
    #[error("the classifier's loss stopped being finite at step {step} (try a lower learning rate)")]
    Diverged { step: usize },
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Engine(#[from] arpg::Error),
    #[error("invalid evaluation option: {0}")]
    Options(String),
}

/// The real images every evaluation is compared with, scored once.
pub struct Reference {
    pub classifier: Classifier,
    /// Training images in the classifier's frame (the floor's subset).
    pub train: Dataset,
    /// Test images in the classifier's frame (the Fréchet reference and the in-painting inputs).
    pub test: Dataset,
    /// The nearest-neighbour pool: the training images at the side memorisation is judged at
    /// (a divisor of the classifier's side; images are box-filtered down to it).
    pub pool: Dataset,
    /// The test images at half the side, when the data has them: the expansion inputs.
    pub half_test: Option<Dataset>,
    /// The classifier's accuracy on `test`.
    pub classifier_accuracy: f64,
    /// Feature statistics of `test`.
    pub test_stats: Stats,
}

/// What real images score: the floor of the Fréchet distance at `n` and the nearest-neighbour
/// distances of real test images.
#[derive(Clone, Debug, Serialize)]
pub struct RealReport {
    pub n: usize,
    /// `n` training images (a seeded subset) against the test split.
    pub fd_floor: f64,
    /// The classifier's accuracy on those `n` training images.
    pub train_accuracy: f64,
    /// Median RMSE of a test image to its nearest training image, and the share within
    /// [`COPY_RMSE`].
    pub nn_median: f64,
    pub copies: f64,
    pub nn_probes: usize,
}

/// What the tokenizer alone loses: test images encoded and decoded, scored like samples.
#[derive(Clone, Debug, Serialize)]
pub struct ReconReport {
    pub n: usize,
    /// The classifier's accuracy on the reconstructions (against the true labels), and on the
    /// same test images as they are.
    pub accuracy: f64,
    pub original_accuracy: f64,
    /// Fréchet distance of the reconstructions' features to the whole test split's.
    pub fd: f64,
    /// Mean squared pixel error, pixels in 0..=1.
    pub mse: f64,
}

/// What one generation configuration scored.
#[derive(Clone, Debug, Serialize)]
pub struct GenReport {
    pub arch: String,
    /// Decoding steps actually taken (raster AR: one per token).
    pub steps: usize,
    pub n: usize,
    pub cfg: f32,
    /// Fraction of samples the classifier assigns to the requested class.
    pub accuracy: f64,
    pub class_accuracy: Vec<f64>,
    /// Fréchet distance of the samples' features to the test split's.
    pub fd: f64,
    /// Median and smallest RMSE of a sample to its nearest training image, and the share of
    /// samples within [`COPY_RMSE`] of one.
    pub nn_median: f64,
    pub nn_min: f64,
    pub copies: f64,
    /// Generation time alone, and the whole evaluation of this configuration.
    pub gen_seconds: f64,
    pub images_per_second: f64,
    pub seconds: f64,
}

fn check_fits(engine: &Engine, reference: &Reference) -> Result<(), EvalError> {
    let (n_model, n_cls) = (engine.model_config().n_classes, reference.classifier.config.n_classes);
    if n_model > n_cls {
        return Err(EvalError::Options(format!(
            "the model has {n_model} classes, the classifier only {n_cls}"
        )));
    }
    Ok(())
}

impl Reference {
    /// Score the test split. `train` and `test` hold images of the classifier's side and
    /// channels; `pool` the training images at a divisor of that side.
    pub fn new(
        classifier: Classifier,
        train: Dataset,
        test: Dataset,
        pool: Dataset,
        half_test: Option<Dataset>,
    ) -> Result<Self, EvalError> {
        let (side, channels) = (classifier.config.side, classifier.config.channels);
        for (what, d) in [("training", &train), ("test", &test)] {
            if (d.width, d.height, d.channels) != (side, side, channels) || d.len() < 2 {
                return Err(EvalError::Options(format!(
                    "the {what} set must hold at least two {side}x{side} images of {channels} channels, \
                     it holds {} of {}x{}x{}",
                    d.len(),
                    d.width,
                    d.height,
                    d.channels
                )));
            }
        }
        let pool_ok = pool.width == pool.height && pool.width > 0 && side.is_multiple_of(pool.width);
        if !pool_ok || pool.channels != channels || pool.is_empty() {
            return Err(EvalError::Options(format!(
                "the nearest-neighbour pool's {}x{} images do not divide the {side}x{side} frame",
                pool.width, pool.height
            )));
        }
        let scores = classifier.score(&test.pixels);
        let hits = scores.labels.iter().zip(&test.labels).filter(|(a, b)| **a == **b as usize).count();
        let test_stats = Stats::from_features(&scores.features, scores.dim).expect("two or more rows");
        Ok(Self {
            classifier_accuracy: hits as f64 / test.len() as f64,
            classifier,
            train,
            test,
            pool,
            half_test,
            test_stats,
        })
    }

    /// Values per image in the classifier's frame.
    pub fn image_len(&self) -> usize {
        self.classifier.config.image_len()
    }

    /// Each of `images` (in the classifier's frame, back to back): its RMSE to the nearest pool
    /// image, at the pool's side.
    pub fn nearest(&self, images: &[u8]) -> Vec<f64> {
        let (side, channels) = (self.classifier.config.side, self.classifier.config.channels);
        let small = nearest::shrink(images, side, channels, side / self.pool.width);
        nearest::nearest_distances(&small, &self.pool.pixels, self.pool.width * self.pool.width * channels)
    }

    /// The floor: `n` training images drawn with `seed`, scored like samples; and the nearest
    /// training images of the first `n` test images.
    pub fn real(&self, n: usize, seed: u64) -> Result<RealReport, EvalError> {
        if n < 2 {
            return Err(EvalError::Options("n must be at least 2 for a covariance".into()));
        }
        let pick = Rng::new(seed).permutation(self.train.len());
        let idx = &pick[..n.min(self.train.len())];
        let pixels: Vec<u8> = idx.iter().flat_map(|&i| self.train.image(i).iter().copied()).collect();
        let scores = self.classifier.score(&pixels);
        let hits =
            idx.iter().zip(&scores.labels).filter(|(i, l)| self.train.labels[**i] as usize == **l).count();
        let stats = Stats::from_features(&scores.features, scores.dim).expect("two or more rows");
        let probes = n.min(self.test.len());
        let nn = self.nearest(&self.test.pixels[..probes * self.image_len()]);
        Ok(RealReport {
            n: idx.len(),
            fd_floor: frechet_distance(&stats, &self.test_stats),
            train_accuracy: hits as f64 / idx.len() as f64,
            nn_median: nearest::median(&nn),
            copies: nearest::copies(&nn),
            nn_probes: probes,
        })
    }

    /// `image` in the classifier's frame: the centre of a larger one (the Fashion-MNIST engine's
    /// 32x32 frame, offset 2), a smaller one centred on black.
    pub fn to_frame(&self, image: &Image) -> Image {
        let side = self.classifier.config.side;
        let (padded, _) = image.pad_to(side, side);
        padded.crop((padded.width - side) / 2, (padded.height - side) / 2, side, side)
    }

    /// Test image `i` as an [`Image`].
    pub fn test_image(&self, i: usize) -> Image {
        self.test.to_image(i)
    }
}

/// The first `n` test images through the engine's tokenizer (centred in its frame, cropped back).
pub fn evaluate_reconstruction(
    engine: &Engine,
    reference: &Reference,
    n: usize,
) -> Result<ReconReport, EvalError> {
    check_fits(engine, reference)?;
    let n = n.min(reference.test.len());
    if n < 2 {
        return Err(EvalError::Options("n must be at least 2 for a covariance".into()));
    }
    let (frame, f) = (engine.image_size(), engine.factor());
    let mut pixels = Vec::with_capacity(n * reference.image_len());
    for i in 0..n {
        let (framed, _) = reference.test_image(i).pad_to(frame, frame).0.pad_to_multiple(f);
        let (codes, h, w) = pollster::block_on(engine.encode(&framed))?;
        let decoded = pollster::block_on(engine.decode(&[codes], h, w))?;
        pixels.extend(reference.to_frame(&decoded[0]).pixels);
    }
    let originals = &reference.test.pixels[..n * reference.image_len()];
    let mse = mean_squared_error(&pixels, originals);
    let labels = &reference.test.labels[..n];
    let accuracy = |scores: &Scores| {
        scores.labels.iter().zip(labels).filter(|(got, want)| **got == **want as usize).count() as f64
            / n as f64
    };
    let scores = reference.classifier.score(&pixels);
    let stats = Stats::from_features(&scores.features, scores.dim).expect("two or more rows");
    Ok(ReconReport {
        n,
        accuracy: accuracy(&scores),
        original_accuracy: accuracy(&reference.classifier.score(originals)),
        fd: frechet_distance(&stats, &reference.test_stats),
        mse,
    })
}

/// The mean squared difference of two equally long pixel buffers, values scaled to [0, 1].
fn mean_squared_error(a: &[u8], b: &[u8]) -> f64 {
    let sum: f64 = a.iter().zip(b).map(|(&x, &y)| ((x as f64 - y as f64) / 255.0).powi(2)).sum();
    sum / a.len() as f64
}

/// The classes of `n` samples in proportion to `counts` (images per class), interleaved so that
/// every prefix holds about each class's share (smooth weighted round robin): equal counts give
/// class `i % counts.len()` for sample `i`. All-zero counts are taken as equal.
pub fn class_mix(counts: &[usize], n: usize) -> Vec<usize> {
    let equal = counts.iter().all(|&c| c == 0);
    let weights: Vec<i64> = counts.iter().map(|&c| if equal { 1 } else { c as i64 }).collect();
    let total: i64 = weights.iter().sum();
    let mut credit = vec![0i64; weights.len()];
    (0..n)
        .map(|_| {
            credit.iter_mut().zip(&weights).for_each(|(c, w)| *c += w);
            // The first class with the most credit: ties go to the lower class.
            let pick = (1..credit.len()).fold(0, |best, k| if credit[k] > credit[best] { k } else { best });
            credit[pick] -= total;
            pick
        })
        .collect()
}

/// Generated images in the classifier's frame, and the class each was asked for.
pub struct Samples {
    pub classes: Vec<usize>,
    pub images: Vec<Image>,
}

impl Samples {
    /// Up to `per_class` samples of each class, one row per class (blank cells where a class has
    /// fewer).
    pub fn sheet(&self, n_classes: usize, per_class: usize) -> Image {
        let blank = self
            .images
            .first()
            .map_or_else(|| Image::new(SIDE, SIDE, 1), |im| Image::new(im.width, im.height, im.channels));
        let mut cells = Vec::new();
        for class in 0..n_classes {
            let row = self.classes.iter().zip(&self.images).filter(|(c, _)| **c == class);
            let row: Vec<Image> = row.map(|(_, im)| im.clone()).take(per_class).collect();
            let blanks = per_class - row.len();
            cells.extend(row);
            cells.extend(std::iter::repeat_n(blank.clone(), blanks));
        }
        grid(&cells, per_class, 2)
    }
}

/// `n` samples, their classes in the test split's mix ([`class_mix`]), with `opts`
/// (`opts.seed + k` for batch `k`), scored against `reference`.
pub fn evaluate_generation(
    engine: &Engine,
    reference: &Reference,
    n: usize,
    opts: &SampleOptions,
) -> Result<(GenReport, Samples), EvalError> {
    check_fits(engine, reference)?;
    if n < 2 {
        return Err(EvalError::Options("n must be at least 2 for a covariance".into()));
    }
    let start = Instant::now();
    let n_classes = engine.model_config().n_classes;
    let classes = class_mix(&reference.test.class_counts(n_classes), n);
    let mut images = Vec::with_capacity(n);
    let mut steps = 0;
    for (k, batch) in classes.chunks(BATCH).enumerate() {
        let opts = SampleOptions { seed: opts.seed.wrapping_add(k as u64), ..opts.clone() };
        let mut count = |ev: &arpg::decode::StepEvent| steps = ev.steps;
        let out = pollster::block_on(engine.generate(batch, &opts, &mut count))?;
        images.extend(out.iter().map(|im| reference.to_frame(im)));
    }
    let gen_seconds = start.elapsed().as_secs_f64();

    let pixels: Vec<u8> = images.iter().flat_map(|im| im.pixels.iter().copied()).collect();
    let scores = reference.classifier.score(&pixels);
    let mut hits = vec![(0usize, 0usize); n_classes];
    for (&want, &got) in classes.iter().zip(&scores.labels) {
        hits[want].1 += 1;
        hits[want].0 += usize::from(want == got);
    }
    let correct: usize = hits.iter().map(|h| h.0).sum();
    let stats = Stats::from_features(&scores.features, scores.dim).expect("two or more rows");
    let nn = reference.nearest(&pixels);
    let report = GenReport {
        arch: engine.model_config().arch.name().to_string(),
        steps,
        n,
        cfg: opts.cfg,
        accuracy: correct as f64 / n as f64,
        class_accuracy: hits.iter().map(|&(c, t)| c as f64 / t.max(1) as f64).collect(),
        fd: frechet_distance(&stats, &reference.test_stats),
        nn_median: nearest::median(&nn),
        nn_min: nn.iter().copied().fold(f64::INFINITY, f64::min),
        copies: nearest::copies(&nn),
        gen_seconds,
        images_per_second: n as f64 / gen_seconds.max(1e-9),
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((report, Samples { classes, images }))
}
