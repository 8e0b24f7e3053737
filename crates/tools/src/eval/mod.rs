//! Evaluation of a generator with an independent classifier (native only).
//!
//! * **Generation**: `n` class-conditional samples, balanced over the classes, cropped from the
//!   engine's 32x32 frame back to Fashion-MNIST's 28x28; class accuracy (the classifier agrees
//!   with the requested class) and the Fréchet distance of the classifier's features against the
//!   test split. The floor of that distance at the same `n` is a real training subset of `n`
//!   images against the same test split.
//! * **Reconstruction**: `n` test images through the VQ tokenizer alone (encode, decode), scored
//!   like samples: what the tokenizer loses, and so the best the generator can reach.
//! * **Memorisation**: the L2 distance of samples to their nearest training image, next to the
//!   same distance for real test images (a copied training image would be ~0).
//! * **In-painting**: half of each of `n` test images masked (right and top half, alternating),
//!   re-generated with the true label; class accuracy of the results, and the count of pixels
//!   outside the masked tokens that changed (must be 0).
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
pub use tasks::{InpaintReport, TaskSheets, evaluate_inpainting, task_sheets};
pub use train::{ClassifierStep, ClassifierTraining, train_classifier};

/// Images generated together in one call of `Engine::generate`.
pub const BATCH: usize = 64;
/// Samples (and test images) checked against every training image for memorisation.
pub const NN_PROBES: usize = 200;

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
    /// 28x28 training images (the nearest-neighbour pool and the floor's subset).
    pub train: Dataset,
    /// 28x28 test images (the Fréchet reference and the in-painting inputs).
    pub test: Dataset,
    /// The classifier's accuracy on `test`.
    pub classifier_accuracy: f64,
    /// Feature statistics of `test`.
    pub test_stats: Stats,
}

/// What real images score: the floor of the Fréchet distance at `n` and the typical
/// nearest-neighbour distance.
#[derive(Clone, Debug, Serialize)]
pub struct RealReport {
    pub n: usize,
    /// `n` training images (a seeded subset) against the test split.
    pub fd_floor: f64,
    /// The classifier's accuracy on those `n` training images.
    pub train_accuracy: f64,
    /// Median distance of a test image to its nearest training image.
    pub nn_median: f64,
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
    /// Median and smallest distance of a sample to its nearest training image.
    pub nn_median: f64,
    pub nn_min: f64,
    pub nn_probes: usize,
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
    /// Score the test split. Both data sets must hold 28x28 images.
    pub fn new(classifier: Classifier, train: Dataset, test: Dataset) -> Result<Self, EvalError> {
        for (what, d) in [("training", &train), ("test", &test)] {
            if (d.width, d.height) != (SIDE, SIDE) || d.len() < 2 {
                return Err(EvalError::Options(format!(
                    "the {what} set must hold at least two 28x28 images, it holds {} of {}x{}",
                    d.len(),
                    d.width,
                    d.height
                )));
            }
        }
        let scores = classifier.score(&test.pixels);
        let hits = scores.labels.iter().zip(&test.labels).filter(|(a, b)| **a == **b as usize).count();
        let test_stats = Stats::from_features(&scores.features, scores.dim).expect("two or more rows");
        Ok(Self { classifier_accuracy: hits as f64 / test.len() as f64, classifier, train, test, test_stats })
    }

    /// The floor: `n` training images drawn with `seed`, scored like samples.
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
        let probes = NN_PROBES.min(n).min(self.test.len());
        let queries = &self.test.pixels[..probes * SIDE * SIDE];
        let nn = nearest::nearest_distances(queries, &self.train.pixels, SIDE * SIDE);
        Ok(RealReport {
            n: idx.len(),
            fd_floor: frechet_distance(&stats, &self.test_stats),
            train_accuracy: hits as f64 / idx.len() as f64,
            nn_median: nearest::median(&nn),
            nn_probes: probes,
        })
    }
}

/// A generated image in the classifier's 28x28 frame: the centre of a larger one (the engine's
/// 32x32 frame, offset 2), a smaller one centred on black.
pub fn to_side(image: &Image) -> Image {
    let (padded, _) = image.pad_to(SIDE, SIDE);
    padded.crop((padded.width - SIDE) / 2, (padded.height - SIDE) / 2, SIDE, SIDE)
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
    let (frame, f) = (engine.tokenizer.config.image_size, engine.tokenizer.config.factor());
    let mut pixels = Vec::with_capacity(n * SIDE * SIDE);
    for i in 0..n {
        let image =
            Image { channels: 1, width: SIDE, height: SIDE, pixels: reference.test.image(i).to_vec() };
        let (framed, _) = image.pad_to(frame, frame).0.pad_to_multiple(f);
        let (codes, h, w) = pollster::block_on(engine.encode(&framed))?;
        let decoded = pollster::block_on(engine.decode(&[codes], h, w))?;
        pixels.extend(to_side(&decoded[0]).pixels);
    }
    let originals = &reference.test.pixels[..n * SIDE * SIDE];
    let mse =
        pixels.iter().zip(originals).map(|(&a, &b)| ((a as f64 - b as f64) / 255.0).powi(2)).sum::<f64>()
            / pixels.len() as f64;
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

/// `n` samples (class `i % classes` for sample `i`) with `opts` (`opts.seed + k` for batch `k`),
/// scored against `reference`. Returns the report and the 28x28 samples.
pub fn evaluate_generation(
    engine: &Engine,
    reference: &Reference,
    n: usize,
    opts: &SampleOptions,
) -> Result<(GenReport, Vec<Image>), EvalError> {
    check_fits(engine, reference)?;
    if n < 2 {
        return Err(EvalError::Options("n must be at least 2 for a covariance".into()));
    }
    let start = Instant::now();
    let n_classes = engine.model_config().n_classes;
    let classes: Vec<usize> = (0..n).map(|i| i % n_classes).collect();
    let mut images = Vec::with_capacity(n);
    let mut steps = 0;
    for (k, batch) in classes.chunks(BATCH).enumerate() {
        let opts = SampleOptions { seed: opts.seed.wrapping_add(k as u64), ..opts.clone() };
        let mut count = |ev: &arpg::decode::StepEvent| steps = ev.steps;
        let out = pollster::block_on(engine.generate(batch, &opts, &mut count))?;
        images.extend(out.iter().map(to_side));
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
    let probes = NN_PROBES.min(n);
    let nn =
        nearest::nearest_distances(&pixels[..probes * SIDE * SIDE], &reference.train.pixels, SIDE * SIDE);
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
        nn_probes: probes,
        gen_seconds,
        images_per_second: n as f64 / gen_seconds.max(1e-9),
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((report, images))
}

/// Up to `per_class` samples of each class, one row per class (samples in the order of
/// [`evaluate_generation`]: sample `i` is of class `i % classes`).
pub fn sample_sheet(images: &[Image], n_classes: usize, per_class: usize) -> Image {
    let mut cells = Vec::new();
    for class in 0..n_classes {
        let row: Vec<&Image> = images.iter().skip(class).step_by(n_classes.max(1)).take(per_class).collect();
        cells.extend(row.iter().map(|&im| im.clone()));
        cells.extend((row.len()..per_class).map(|_| Image::new(SIDE, SIDE, 1)));
    }
    grid(&cells, per_class, 2)
}
