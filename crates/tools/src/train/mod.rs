//! Training (native only, burn autodiff): the VQ tokenizer, then the generator (ARPG, its
//! no-shared-KV ablation, raster AR, MaskGIT) through one loop.
//!
//! Reproducible and exactly resumable: every random draw on the host comes from one
//! [`Rng`] whose state is saved; the backend RNG (dropout) is re-seeded before every step from
//! `(seed, step)`; the data order of epoch `e` is a permutation drawn from `(seed, e)`. A
//! [`TrainState`] holds the step, the weights, the optimiser state, the RNG state and the
//! options, so a run resumed from it takes the same next step as one that never stopped.

mod generator;
pub mod optim;
pub mod state;
mod tokenizer;

use std::f64::consts::PI;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::{DataError, Dataset, Source};
use arpg::checkpoint::{Checkpoint, CheckpointError};
use arpg::config::TrainMeta;
use arpg::rng::Rng;
use arpg::tokenizer::{Tokenizer, VqTokenizer};
use arpg::weights;

pub use generator::{GeneratorTrainer, TokenSet, tokenize};
pub use state::{StateHeader, StateKind, TrainState};
pub use tokenizer::TokenizerTrainer;

/// What both trainers offer a training loop (the CLI drives either through it).
pub trait Trainer: HasCore {
    /// What a step reads: images (tokenizer) or token sequences (generator).
    type Data;

    /// One optimisation step on a batch of `data`.
    fn step(&mut self, data: &Self::Data) -> Result<StepStats, TrainError>;

    /// The weights as a checkpoint, `TrainMeta` filled.
    fn checkpoint(&self) -> Checkpoint;

    /// Everything `--resume` needs to take the same next step.
    fn to_state(&self) -> Result<TrainState, TrainError>;

    /// Steps done.
    fn step_count(&self) -> u64 {
        self.core().step
    }

    fn options(&self) -> &TrainOptions {
        &self.core().opts
    }

    /// Change the total step count (to extend a resumed run; the cosine schedule follows).
    fn set_steps(&mut self, steps: u64) {
        self.core_mut().opts.steps = steps;
    }

    /// Training seconds so far (across resumes).
    fn seconds(&self) -> f64 {
        self.core().seconds
    }
}

mod sealed {
    /// The shared state behind [`super::Trainer`]'s provided methods; private, so that only this
    /// module's trainers implement it.
    pub trait HasCore {
        fn core(&self) -> &super::Core;
        fn core_mut(&mut self) -> &mut super::Core;
    }
}
use sealed::HasCore;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Engine(#[from] arpg::Error),
    #[error("invalid training option: {0}")]
    Options(String),
    #[error("training state: {0}")]
    State(String),
    #[error("{0}")]
    Io(String),
    #[error("the loss became {0} at step {1}: training diverged (try a lower --lr)")]
    Diverged(f32, u64),
}

/// Optimisation and schedule; saved in the training state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Total steps (the cosine schedule ends here).
    pub steps: u64,
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up steps, from `lr / warmup` to `lr`.
    pub warmup: u64,
    /// The cosine decay ends at `lr * min_lr_frac`.
    pub min_lr_frac: f64,
    /// AdamW decoupled weight decay, on parameters of rank >= 2 only.
    pub weight_decay: f32,
    /// Global gradient-norm clip (0 = off).
    pub grad_clip: f32,
    pub seed: u64,
    /// Generator: probability of replacing the class by the null class (CFG).
    pub label_dropout: f32,
    /// Tokenizer: restart a code after this many steps without use (0 = never).
    pub dead_code_steps: u64,
    /// Generator: train on class-keeping variants of the pictures (see `augment`), made before
    /// tokenizing.
    #[serde(default)]
    pub augment: bool,
}

impl TrainOptions {
    /// The VQ tokenizer: no weight decay, no label dropout.
    pub fn tokenizer() -> Self {
        Self {
            steps: 3000,
            batch: 64,
            lr: 1e-3,
            warmup: 100,
            min_lr_frac: 0.1,
            weight_decay: 0.0,
            grad_clip: 1.0,
            seed: 0,
            label_dropout: 0.0,
            dead_code_steps: 20,
            augment: false,
        }
    }

    /// The generator, as in the design note: AdamW (0.9, 0.95), decay 0.05 on matrices, clip
    /// 1.0, warm-up then cosine, CFG label dropout 0.1.
    pub fn generator() -> Self {
        Self {
            steps: 5000,
            batch: 64,
            lr: 6e-4,
            warmup: 200,
            min_lr_frac: 0.1,
            weight_decay: 0.05,
            grad_clip: 1.0,
            seed: 0,
            label_dropout: 0.1,
            dead_code_steps: 0,
            augment: false,
        }
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: &str| Err(TrainError::Options(m.to_string()));
        if self.steps == 0 || self.batch == 0 {
            return bad("steps and batch must be > 0");
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && (0.0..=1.0).contains(&self.min_lr_frac)) {
            return bad("lr must be > 0 and min_lr_frac in [0, 1]");
        }
        let (wd, clip) = (self.weight_decay, self.grad_clip);
        if !(wd >= 0.0 && clip >= 0.0 && (0.0..1.0).contains(&self.label_dropout)) {
            return bad("weight_decay and grad_clip must be >= 0, label_dropout in [0, 1)");
        }
        Ok(())
    }

    /// Learning rate of step `step` (0-based): linear warm-up, then cosine decay to
    /// `lr * min_lr_frac` at `steps`.
    pub fn lr_at(&self, step: u64) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        let span = self.steps.saturating_sub(self.warmup).max(1) as f64;
        let progress = ((step - self.warmup) as f64 / span).min(1.0);
        let min = self.lr * self.min_lr_frac;
        min + (self.lr - min) * 0.5 * (1.0 + (PI * progress).cos())
    }
}

/// What one step did.
#[derive(Clone, Debug, PartialEq)]
pub struct StepStats {
    /// Steps done after this one.
    pub step: u64,
    pub loss: f32,
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// Tokens this step trained on (the tokenizer: tokens its images map to).
    pub tokens: usize,
    /// Wall time of the step.
    pub seconds: f64,
    /// Model-specific numbers (tokenizer: mse, vq, codes used, codes restarted).
    pub extra: Vec<(&'static str, f64)>,
}

impl StepStats {
    pub fn tokens_per_s(&self) -> f64 {
        self.tokens as f64 / self.seconds.max(1e-9)
    }

    /// One JSON line for the metrics log; `elapsed` = training seconds so far.
    pub fn to_json(&self, elapsed: f64) -> String {
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: serde_json::Value| m.insert(k.to_string(), v);
        put("step", self.step.into());
        put("loss", (self.loss as f64).into());
        put("lr", self.lr.into());
        put("grad_norm", (self.grad_norm as f64).into());
        put("tokens_per_s", self.tokens_per_s().into());
        put("step_s", self.seconds.into());
        put("elapsed_s", elapsed.into());
        for (k, v) in &self.extra {
            put(k, (*v).into());
        }
        serde_json::Value::Object(m).to_string()
    }
}

/// A seed derived from `(a, b)`; distinct streams for distinct pairs.
fn mix(a: u64, b: u64) -> u64 {
    Rng::new(a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)).next_u64()
}

/// Which examples step `step` trains on: epoch after epoch, each a permutation drawn from
/// `(seed, epoch)`, so the order depends only on the seed, the batch size and the step.
struct Order {
    seed: u64,
    n: usize,
    epoch: Option<(u64, Vec<usize>)>,
}

impl Order {
    fn batch(&mut self, step: u64, batch: usize) -> Vec<usize> {
        (0..batch as u64).map(|i| self.index(step * batch as u64 + i)).collect()
    }

    fn index(&mut self, global: u64) -> usize {
        let (epoch, at) = (global / self.n as u64, (global % self.n as u64) as usize);
        if self.epoch.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let perm = Rng::new(mix(self.seed, epoch + 1)).permutation(self.n);
            self.epoch = Some((epoch, perm));
        }
        self.epoch.as_ref().expect("just set").1[at]
    }
}

/// What both trainers share: options, optimiser, RNG, counters, data order. Opaque outside this
/// module; [`Trainer`]'s provided methods read it.
pub struct Core {
    opts: TrainOptions,
    optim: ModuleOptimizer,
    rng: Rng,
    step: u64,
    seconds: f64,
    last_loss: f32,
    dataset: String,
    class_names: Vec<String>,
    data_len: Option<u64>,
    device: Device,
    order: Option<Order>,
}

impl Core {
    fn new(
        opts: TrainOptions,
        optim: ModuleOptimizer,
        dataset: String,
        class_names: Vec<String>,
        device: &Device,
    ) -> Self {
        Self {
            rng: Rng::new(mix(opts.seed, 0)),
            opts,
            optim,
            step: 0,
            seconds: 0.0,
            last_loss: 0.0,
            dataset,
            class_names,
            data_len: None,
            device: device.clone(),
            order: None,
        }
    }

    fn from_header(
        h: &StateHeader,
        optim: ModuleOptimizer,
        optim_bytes: &[u8],
        device: &Device,
    ) -> Result<Self, TrainError> {
        let optim = optim
            .from_bytes(Bytes::from_bytes_vec(optim_bytes.to_vec()))
            .map_err(|e| TrainError::State(format!("bad optimizer state: {e:?}")))?;
        Ok(Self {
            opts: h.options.clone(),
            optim,
            rng: Rng::new(h.rng),
            step: h.step,
            seconds: h.seconds,
            last_loss: h.last_loss,
            dataset: h.dataset.clone(),
            class_names: h.class_names.clone(),
            data_len: h.data_len,
            device: device.clone(),
            order: None,
        })
    }

    fn header(
        &self,
        kind: StateKind,
        param_ids: Vec<(String, u64)>,
        code_last_used: Vec<u64>,
    ) -> StateHeader {
        StateHeader {
            kind,
            step: self.step,
            rng: self.rng.state(),
            seconds: self.seconds,
            last_loss: self.last_loss,
            options: self.opts.clone(),
            dataset: self.dataset.clone(),
            class_names: self.class_names.clone(),
            data_len: self.data_len,
            param_ids,
            code_last_used,
        }
    }

    fn optimizer_bytes(&self) -> Vec<u8> {
        self.optim.into_bytes().expect("the optimizer state serialises").to_vec()
    }

    /// Start a step over a data set of `n` examples: seed the backend, pick the batch.
    fn begin(&mut self, n: usize) -> Result<Vec<usize>, TrainError> {
        if n == 0 {
            return Err(TrainError::Options("the training set is empty".into()));
        }
        match self.data_len {
            Some(len) if len != n as u64 => {
                return Err(TrainError::State(format!(
                    "this run trained on {len} examples, now given {n}: resume with the same data"
                )));
            }
            _ => self.data_len = Some(n as u64),
        }
        if self.order.as_ref().is_none_or(|o| o.n != n) {
            self.order = Some(Order { seed: self.opts.seed, n, epoch: None });
        }
        self.device.seed(mix(self.opts.seed, self.step.wrapping_add(1 << 32)));
        Ok(self.order.as_mut().expect("just set").batch(self.step, self.opts.batch))
    }

    /// The loss as a number; an error if it is not finite.
    fn check(&self, loss: &Tensor<1>) -> Result<f32, TrainError> {
        let value = loss.clone().into_scalar::<f32>();
        if value.is_finite() { Ok(value) } else { Err(TrainError::Diverged(value, self.step)) }
    }

    /// Backward, global-norm clip, AdamW step at this step's learning rate. Returns the updated
    /// module and the gradient norm before clipping.
    fn update<M: Module>(&mut self, model: M, loss: Tensor<1>, value: f32) -> (M, f32) {
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        let norm = optim::clip_global_norm(&model, &mut grads, self.opts.grad_clip);
        let model = self.optim.step(self.opts.lr_at(self.step), model, grads);
        self.step += 1;
        self.last_loss = value;
        (model, norm)
    }

    fn meta(&self) -> TrainMeta {
        TrainMeta {
            dataset: self.dataset.clone(),
            steps: self.step,
            batch_size: self.opts.batch as u32,
            seed: self.opts.seed,
            final_loss: self.last_loss,
            train_seconds: self.seconds as f32,
            class_names: self.class_names.clone(),
            // From the dataset's definition, so a run resumed by a newer build records it too; a
            // name the tools do not know (tests make some up) records none.
            background: self
                .dataset
                .parse::<Source>()
                .ok()
                .and_then(|s| s.background().ok())
                .unwrap_or_default(),
        }
    }
}

/// `images` of `data` as a `[b, c, h, w]` tensor in `[0, 1]`.
fn image_batch(data: &Dataset, images: &[usize], device: &Device) -> Tensor<4> {
    let pixels: Vec<f32> =
        images.iter().flat_map(|&i| data.image(i).iter().map(|&p| p as f32 / 255.0)).collect();
    let shape = [images.len(), data.height, data.width, data.channels];
    Tensor::<4>::from_data(TensorData::new(pixels, shape), device).permute([0, 3, 1, 2]) // [b, h, w, c] -> [b, c, h, w]
}

/// The tokenizer of any `.arpg` checkpoint (a `train-tokenizer` output or a full model).
pub fn load_tokenizer(bytes: &[u8], device: &Device) -> Result<VqTokenizer, TrainError> {
    let mut ckpt = Checkpoint::from_bytes(bytes)?;
    let fresh = small_vq(Tokenizer::new(&ckpt.tokenizer, device))?;
    Ok(weights::import(fresh, &mut ckpt.tensors, "tokenizer", device)?)
}

/// Our small VQ out of a tokenizer: the only one the trainers train.
pub fn small_vq(tokenizer: Tokenizer) -> Result<VqTokenizer, TrainError> {
    match tokenizer {
        Tokenizer::Vq(t) => Ok(t),
        Tokenizer::Vqgan(_) => {
            Err(TrainError::Options("training uses our small VQ tokenizer, not a VQGAN".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let o =
            TrainOptions { steps: 110, warmup: 10, lr: 1.0, min_lr_frac: 0.1, ..TrainOptions::generator() };
        assert!((o.lr_at(0) - 0.1).abs() < 1e-12);
        assert!((o.lr_at(9) - 1.0).abs() < 1e-12);
        assert!((o.lr_at(10) - 1.0).abs() < 1e-12);
        assert!((o.lr_at(60) - 0.55).abs() < 1e-12);
        assert!((o.lr_at(110) - 0.1).abs() < 1e-12);
        assert!((o.lr_at(500) - 0.1).abs() < 1e-12);
        assert!((11..110).all(|s| o.lr_at(s) < o.lr_at(s - 1)));
    }

    #[test]
    fn data_order_is_a_permutation_per_epoch_and_depends_on_the_seed() {
        let mut o = Order { seed: 3, n: 10, epoch: None };
        let mut first: Vec<usize> = (0..5).flat_map(|s| o.batch(s, 2)).collect();
        assert_ne!(first, (0..10).collect::<Vec<_>>());
        first.sort();
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        let again: Vec<usize> =
            (0..3).flat_map(|s| Order { seed: 3, n: 10, epoch: None }.batch(s, 4)).collect();
        let once: Vec<usize> = (0..3).flat_map(|s| o.batch(s, 4)).collect();
        assert_eq!(again, once);
        let other: Vec<usize> =
            (0..3).flat_map(|s| Order { seed: 4, n: 10, epoch: None }.batch(s, 4)).collect();
        assert_ne!(other, once);
    }
}
