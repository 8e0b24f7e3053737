//! Training the generator, one loop for every architecture:
//!
//! * ARPG (and its no-shared-KV ablation): a random permutation per sample; slot `j` predicts
//!   the `j+1`-th token of the order; mean cross-entropy over all T predictions. A multi-scale
//!   model draws per step which grids the batch shows ([`Grids`]): the full grid, the half grid,
//!   or the half grid followed by the full one (each in its own random order), the expansion it
//!   will be asked for.
//! * Raster AR: slot `j` predicts cell `j`; mean cross-entropy over all T predictions.
//! * MaskGIT: `ceil(T * cos(pi/2 * u))` random cells masked (`u` uniform); cross-entropy on the
//!   masked cells only.
//!
//! In all of them the class is replaced by the null class with probability `label_dropout`.

use std::f64::consts::PI;
use std::time::Instant;

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::state::{StateKind, TrainState};
use super::{Core, HasCore, StepStats, TrainError, TrainOptions, Trainer, optim};
use crate::data::Dataset;
use arpg::checkpoint::{Checkpoint, DType};
use arpg::config::ModelConfig;
use arpg::engine::{Engine, Generator};
use arpg::model::{Cell, Level, in_order};
use arpg::rng::Rng;
use arpg::tokenizer::{Tokenizer, VqTokenizer};

/// `$body` with `$m` bound to the module inside any `Generator`.
macro_rules! each {
    ($g:expr, $m:ident => $body:expr) => {
        match $g {
            Generator::Arpg($m) => $body,
            Generator::Raster($m) => $body,
            Generator::MaskGit($m) => $body,
        }
    };
}

/// A tokenized data set: `h x w` codes per image (raster order) and the class ids; for a
/// multi-scale model also the codes of the same pictures at half the size.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenSet {
    pub grid_h: usize,
    pub grid_w: usize,
    /// `len * grid_h * grid_w` codes.
    pub tokens: Vec<u32>,
    pub labels: Vec<u8>,
    /// `len * (grid_h/2) * (grid_w/2)` codes of the half-size pictures, or none.
    pub half_tokens: Vec<u32>,
}

impl TokenSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn seq_len(&self) -> usize {
        self.grid_h * self.grid_w
    }

    pub fn tokens(&self, i: usize) -> &[u32] {
        let t = self.seq_len();
        &self.tokens[i * t..(i + 1) * t]
    }

    /// Picture `i`'s half-size codes (`None` without them).
    pub fn half(&self, i: usize) -> Option<&[u32]> {
        let t = (self.grid_h / 2) * (self.grid_w / 2);
        self.half_tokens.get(i * t..(i + 1) * t)
    }

    /// The same pictures with their half-size codes from `half` (the same pictures tokenized at
    /// half the size, in the same order).
    pub fn with_half(self, half: TokenSet) -> Result<TokenSet, TrainError> {
        if (half.grid_h * 2, half.grid_w * 2) != (self.grid_h, self.grid_w) || half.labels != self.labels {
            return Err(TrainError::Options("the half-size tokens are not of the same pictures".into()));
        }
        Ok(TokenSet { half_tokens: half.tokens, ..self })
    }
}

/// Which grids a multi-scale model's training batch shows, drawn per step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grids {
    Full,
    Half,
    HalfThenFull,
}

impl Grids {
    /// One draw from `u` uniform in [0, 1): full 40%, half 20%, half then full 40%. The full grid
    /// is what the app generates; half then full is the expansion; the half grid alone makes the
    /// model learn the half-size pictures for themselves, which expansion reads.
    pub fn draw(u: f64) -> Grids {
        match u {
            u if u < 0.4 => Grids::Full,
            u if u < 0.6 => Grids::Half,
            _ => Grids::HalfThenFull,
        }
    }
}

/// Every image of `data` through the tokenizer, `batch` images per call (on the tokenizer's
/// device; use a plain, non-autodiff one). `progress(done, total)` after each batch.
pub fn tokenize(
    tokenizer: &VqTokenizer,
    data: &Dataset,
    batch: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<TokenSet, TrainError> {
    let f = tokenizer.config.factor();
    if !data.width.is_multiple_of(f) || !data.height.is_multiple_of(f) || batch == 0 {
        return Err(TrainError::Options(format!(
            "cannot tokenize {}x{} images with factor {f} in batches of {batch}",
            data.width, data.height
        )));
    }
    if data.channels != tokenizer.config.image_channels {
        return Err(TrainError::Options(format!(
            "the images have {} channels, the tokenizer reads {}",
            data.channels, tokenizer.config.image_channels
        )));
    }
    let device = tokenizer.codebook.val().device();
    let mut tokens = Vec::with_capacity(data.len() * (data.width / f) * (data.height / f));
    let all: Vec<usize> = (0..data.len()).collect();
    for chunk in all.chunks(batch) {
        let codes = tokenizer.encode(super::image_batch(data, chunk, &device)).into_data();
        let codes = codes.convert::<i64>().try_into_vec::<i64>().expect("int codes");
        tokens.extend(codes.into_iter().map(|c| c as u32));
        progress(chunk[chunk.len() - 1] + 1, data.len());
    }
    Ok(TokenSet {
        grid_h: data.height / f,
        grid_w: data.width / f,
        tokens,
        labels: data.labels.clone(),
        half_tokens: vec![],
    })
}

/// Picture `i`'s training sequence for ARPG on `grids`, each grid in a random order.
fn sequence(data: &TokenSet, i: usize, grids: Grids, rng: &mut Rng) -> Vec<(Cell, u32)> {
    let (h, w) = (data.grid_h, data.grid_w);
    let mut seq = Vec::new();
    if grids != Grids::Full {
        let tokens = data.half(i).expect("checked in check_batch");
        seq = in_order(tokens, &rng.permutation(tokens.len()), w / 2, Level::Half);
    }
    if grids != Grids::Half {
        seq.extend(in_order(data.tokens(i), &rng.permutation(h * w), w, Level::Full));
    }
    seq
}

pub struct GeneratorTrainer {
    core: Core,
    /// `None` only inside `step`.
    model: Option<Generator>,
    /// Frozen; travels into every checkpoint.
    tokenizer: VqTokenizer,
}

/// Mean negative log-likelihood of `targets` under `logits` `[b, t, vocab]`, weighted by
/// `weights` (one per slot) when given.
fn cross_entropy(
    logits: Tensor<3>,
    targets: Vec<i64>,
    weights: Option<Vec<f32>>,
    device: &Device,
) -> Tensor<1> {
    let [b, t, _] = logits.dims();
    let targets = Tensor::<3, Int>::from_data(TensorData::new(targets, [b, t, 1]), device);
    let nll = log_softmax(logits, 2).gather(2, targets).reshape([b * t]).neg();
    match weights {
        None => nll.mean(),
        Some(w) => {
            let total = w.iter().sum::<f32>().max(1.0) as f64;
            let w = Tensor::<1>::from_data(TensorData::new(w, [b * t]), device);
            (nll * w).sum() / total
        }
    }
}

impl GeneratorTrainer {
    /// A fresh generator of `config` (initialised from `opts.seed`) on `device` (an autodiff
    /// device). `tokenizer` is only carried into the checkpoints.
    pub fn new(
        config: &ModelConfig,
        tokenizer: VqTokenizer,
        opts: TrainOptions,
        dataset: &str,
        class_names: Vec<String>,
        device: &Device,
    ) -> Result<Self, TrainError> {
        opts.validate()?;
        config.validate().map_err(TrainError::Options)?;
        if config.vocab_size != tokenizer.config.codebook_size || class_names.len() != config.n_classes {
            return Err(TrainError::Options(format!(
                "the model has {} codes and {} classes; the tokenizer has {} codes and the data {} classes",
                config.vocab_size,
                config.n_classes,
                tokenizer.config.codebook_size,
                class_names.len()
            )));
        }
        device.seed(opts.seed);
        let model = Generator::new(config, device);
        let optim = each!(&model, m => optim::adamw(m, opts.weight_decay));
        Ok(Self {
            core: Core::new(opts, optim, dataset.to_string(), class_names, device),
            model: Some(model),
            tokenizer,
        })
    }

    pub fn model(&self) -> &Generator {
        self.model.as_ref().expect("the model is only taken inside step")
    }

    pub fn config(&self) -> &ModelConfig {
        self.model().config()
    }

    fn check_batch(&self, data: &TokenSet, idx: &[usize]) -> Result<(), TrainError> {
        let c = self.config();
        if (data.grid_h, data.grid_w) != (c.grid_h, c.grid_w) {
            return Err(TrainError::Options(format!(
                "the data has {}x{} tokens per image, the model {}x{}",
                data.grid_h, data.grid_w, c.grid_h, c.grid_w
            )));
        }
        if c.multi_scale && data.half(0).is_none() {
            return Err(TrainError::Options("a multi-scale model needs the half-size tokens too".into()));
        }
        for &i in idx {
            let codes = data.tokens(i).iter().chain(data.half(i).unwrap_or_default());
            if data.labels[i] as usize >= c.n_classes
                || codes.into_iter().any(|&x| x as usize >= c.vocab_size)
            {
                return Err(TrainError::Options(format!("example {i} has a class or code out of range")));
            }
        }
        Ok(())
    }

    /// Continue from a saved state, on `device` (an autodiff device).
    pub fn from_state(state: &TrainState, device: &Device) -> Result<Self, TrainError> {
        let h = &state.header;
        if h.kind != StateKind::Generator {
            return Err(TrainError::State("this is a tokenizer's state, not a generator's".into()));
        }
        let engine = Engine::from_checkpoint(Checkpoint::from_bytes(&state.checkpoint)?, device)?;
        let model = match engine.generator {
            Generator::Arpg(m) => Generator::Arpg(optim::restore_ids(m, &h.param_ids)?),
            Generator::Raster(m) => Generator::Raster(optim::restore_ids(m, &h.param_ids)?),
            Generator::MaskGit(m) => Generator::MaskGit(optim::restore_ids(m, &h.param_ids)?),
        };
        let optim = each!(&model, m => optim::adamw(m, h.options.weight_decay));
        Ok(Self {
            core: Core::from_header(h, optim, &state.optimizer, device)?,
            model: Some(model),
            tokenizer: super::small_vq(engine.tokenizer)?,
        })
    }
}

impl HasCore for GeneratorTrainer {
    fn core(&self) -> &Core {
        &self.core
    }
    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }
}

impl Trainer for GeneratorTrainer {
    type Data = TokenSet;

    /// One optimisation step on a batch of `data`.
    fn step(&mut self, data: &Self::Data) -> Result<StepStats, TrainError> {
        let start = Instant::now();
        let idx = self.core.begin(data.len())?;
        self.check_batch(data, &idx)?;
        let lr = self.core.opts.lr_at(self.core.step);
        let c = self.config().clone();
        let (b, t, device) = (idx.len(), c.seq_len(), self.core.device.clone());
        let rng = &mut self.core.rng;
        let drop = self.core.opts.label_dropout as f64;
        let classes: Vec<usize> = idx
            .iter()
            .map(|&i| if rng.next_f64() < drop { c.null_id() } else { c.class_id(data.labels[i] as usize) })
            .collect();
        let tokens: Vec<Vec<u32>> = idx.iter().map(|&i| data.tokens(i).to_vec()).collect();
        let in_order: Vec<i64> = tokens.iter().flatten().map(|&x| x as i64).collect();

        let model = self.model.take().expect("present between steps");
        let (logits, targets, weights) = match &model {
            Generator::Arpg(m) => {
                let grids = if c.multi_scale { Grids::draw(rng.next_f64()) } else { Grids::Full };
                let seqs: Vec<Vec<(Cell, u32)>> =
                    idx.iter().map(|&i| sequence(data, i, grids, rng)).collect();
                let targets = seqs.iter().flatten().map(|&(_, code)| code as i64).collect();
                (m.forward_train(&classes, &seqs, &device), targets, None)
            }
            Generator::Raster(m) => (m.forward_train(&classes, &tokens, &device), in_order, None),
            Generator::MaskGit(m) => {
                let mut weights = vec![0.0f32; b * t];
                let mut cells: Vec<Vec<Option<u32>>> = Vec::with_capacity(b);
                for (i, tk) in tokens.iter().enumerate() {
                    let ratio = (PI / 2.0 * rng.next_f64()).cos();
                    let n = ((ratio * t as f64).ceil() as usize).clamp(1, t);
                    let mut row: Vec<Option<u32>> = tk.iter().map(|&x| Some(x)).collect();
                    for &p in &rng.permutation(t)[..n] {
                        row[p] = None;
                        weights[i * t + p] = 1.0;
                    }
                    cells.push(row);
                }
                let ids: Vec<i64> = classes.iter().map(|&k| k as i64).collect();
                (m.forward(&ids, &cells, &device), in_order, Some(weights))
            }
        };
        let [_, slots, _] = logits.dims();
        let loss = cross_entropy(logits, targets, weights, &device);
        let value = match self.core.check(&loss) {
            Ok(v) => v,
            Err(e) => {
                self.model = Some(model);
                return Err(e);
            }
        };
        let (model, norm) = match model {
            Generator::Arpg(m) => {
                let (m, n) = self.core.update(m, loss, value);
                (Generator::Arpg(m), n)
            }
            Generator::Raster(m) => {
                let (m, n) = self.core.update(m, loss, value);
                (Generator::Raster(m), n)
            }
            Generator::MaskGit(m) => {
                let (m, n) = self.core.update(m, loss, value);
                (Generator::MaskGit(m), n)
            }
        };
        self.model = Some(model);
        let seconds = start.elapsed().as_secs_f64();
        self.core.seconds += seconds;
        Ok(StepStats {
            step: self.core.step,
            loss: value,
            lr,
            grad_norm: norm,
            tokens: b * slots,
            seconds,
            extra: vec![],
        })
    }

    /// Generator and tokenizer as a checkpoint, `TrainMeta` filled.
    fn checkpoint(&self) -> Checkpoint {
        let meta = self.core.meta();
        Engine::from_parts(
            self.model().clone(),
            Tokenizer::Vq(self.tokenizer.clone()),
            meta,
            &self.core.device,
        )
        .to_checkpoint()
    }

    fn to_state(&self) -> Result<TrainState, TrainError> {
        let ids = each!(self.model(), m => optim::ids(m));
        Ok(TrainState {
            header: self.core.header(StateKind::Generator, ids, vec![]),
            checkpoint: self.checkpoint().to_bytes(DType::F32, 0)?,
            optimizer: self.core.optimizer_bytes(),
        })
    }
}
