//! Training the VQ tokenizer: reconstruction MSE + the VQ loss of `VqTokenizer::forward`, and
//! dead-code restarts (a code unused for `dead_code_steps` steps becomes a random encoder output
//! of the current batch).

use std::time::Instant;

use burn::tensor::Device;

use super::state::{StateKind, TrainState};
use super::{Core, HasCore, StepStats, TrainError, TrainOptions, Trainer, image_batch, optim};
use crate::data::Dataset;
use arpg::checkpoint::{Checkpoint, DType};
use arpg::config::{ModelConfig, VqConfig};
use arpg::engine::{Engine, Generator};
use arpg::tokenizer::{Tokenizer, VqTokenizer};
use arpg::weights;

pub struct TokenizerTrainer {
    core: Core,
    /// `None` only inside `step`.
    tokenizer: Option<VqTokenizer>,
    /// A small random generator (the `test` size) so that the output is a complete `.arpg`
    /// checkpoint; `arpg train` reads only its tokenizer.
    placeholder: Generator,
    /// Per code: the step count after the step that last chose it.
    last_used: Vec<u64>,
}

/// The placeholder generator's config: `test` size on the tokenizer's own grid.
fn placeholder_config(tok: &VqConfig, n_classes: usize) -> ModelConfig {
    let side = tok.image_size / tok.factor();
    ModelConfig { grid_h: side, grid_w: side, ..ModelConfig::test(tok.codebook_size, n_classes) }
}

impl TokenizerTrainer {
    /// A fresh tokenizer, initialised from `opts.seed`, on `device` (an autodiff device).
    pub fn new(
        config: &VqConfig,
        opts: TrainOptions,
        dataset: &str,
        class_names: Vec<String>,
        device: &Device,
    ) -> Result<Self, TrainError> {
        opts.validate()?;
        config.validate().map_err(TrainError::Options)?;
        if class_names.is_empty() {
            return Err(TrainError::Options("at least one class name is needed".into()));
        }
        device.seed(opts.seed);
        let tokenizer = VqTokenizer::new(config, device);
        let placeholder = Generator::new(&placeholder_config(config, class_names.len()), &Device::flex());
        let optim = optim::adamw(&tokenizer, opts.weight_decay);
        Ok(Self {
            core: Core::new(opts, optim, dataset.to_string(), class_names, device),
            tokenizer: Some(tokenizer),
            placeholder,
            last_used: vec![0; config.codebook_size],
        })
    }

    pub fn tokenizer(&self) -> &VqTokenizer {
        self.tokenizer.as_ref().expect("the tokenizer is only taken inside step")
    }

    /// Continue from a saved state, on `device` (an autodiff device).
    pub fn from_state(state: &TrainState, device: &Device) -> Result<Self, TrainError> {
        let h = &state.header;
        if h.kind != StateKind::Tokenizer {
            return Err(TrainError::State("this is a generator's state, not a tokenizer's".into()));
        }
        let ckpt = Checkpoint::from_bytes(&state.checkpoint)?;
        let fresh = super::small_vq(Tokenizer::new(&ckpt.tokenizer, device))?;
        let tok = optim::restore_ids(
            weights::import(fresh, &mut ckpt.tensors.clone(), "tokenizer", device)?,
            &h.param_ids,
        )?;
        if h.code_last_used.len() != ckpt.tokenizer.codebook_size() {
            return Err(TrainError::State("the dead-code counters do not match the codebook".into()));
        }
        let placeholder = Engine::from_checkpoint(ckpt, &Device::flex())?.generator;
        let optim = optim::adamw(&tok, h.options.weight_decay);
        Ok(Self {
            core: Core::from_header(h, optim, &state.optimizer, device)?,
            tokenizer: Some(tok),
            placeholder,
            last_used: h.code_last_used.clone(),
        })
    }
}

impl HasCore for TokenizerTrainer {
    fn core(&self) -> &Core {
        &self.core
    }
    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }
}

impl Trainer for TokenizerTrainer {
    type Data = Dataset;

    /// One optimisation step on a batch of `data` (images of any size that is a multiple of the
    /// downsampling factor).
    fn step(&mut self, data: &Self::Data) -> Result<StepStats, TrainError> {
        let start = Instant::now();
        let f = self.tokenizer().config.factor();
        if !data.width.is_multiple_of(f) || !data.height.is_multiple_of(f) {
            return Err(TrainError::Options(format!(
                "{}x{} images are not a multiple of the tokenizer's factor {f}",
                data.width, data.height
            )));
        }
        if data.channels != self.tokenizer().config.image_channels {
            return Err(TrainError::Options(format!(
                "the images have {} channels, the tokenizer reads {}",
                data.channels,
                self.tokenizer().config.image_channels
            )));
        }
        let idx = self.core.begin(data.len())?;
        let lr = self.core.opts.lr_at(self.core.step);
        let x = image_batch(data, &idx, &self.core.device);
        let tok = self.tokenizer.take().expect("present between steps");
        let out = tok.forward(x.clone());
        let mse = (out.recon - x).powf_scalar(2.0).mean();
        let (mse_value, vq_value) =
            (mse.clone().into_scalar::<f32>(), out.vq_loss.clone().into_scalar::<f32>());
        let loss = mse + out.vq_loss;
        let value = match self.core.check(&loss) {
            Ok(v) => v,
            Err(e) => {
                self.tokenizer = Some(tok);
                return Err(e);
            }
        };
        let (tok, norm) = self.core.update(tok, loss, value);

        let codes = out.indices.into_data().convert::<i64>().try_into_vec::<i64>().expect("int indices");
        let step = self.core.step;
        for &c in &codes {
            self.last_used[c as usize] = step;
        }
        let used = self.last_used.iter().filter(|&&s| s == step).count();
        let patience = self.core.opts.dead_code_steps;
        let dead: Vec<usize> = (0..self.last_used.len())
            .filter(|&k| patience > 0 && step - self.last_used[k] >= patience)
            .collect();
        let tok = if dead.is_empty() {
            tok
        } else {
            let dim = tok.config.code_dim;
            let latents = out.latents.into_data().try_into_vec::<f32>().expect("f32 latents");
            let rows = latents.len() / dim;
            let picks: Vec<Vec<f32>> = dead
                .iter()
                .map(|_| {
                    let r = self.core.rng.below(rows);
                    latents[r * dim..(r + 1) * dim].to_vec()
                })
                .collect();
            dead.iter().for_each(|&k| self.last_used[k] = step);
            tok.restart_codes(&dead, &picks)
        };
        self.tokenizer = Some(tok);

        let seconds = start.elapsed().as_secs_f64();
        self.core.seconds += seconds;
        Ok(StepStats {
            step,
            loss: value,
            lr,
            grad_norm: norm,
            tokens: codes.len(),
            seconds,
            extra: vec![
                ("mse", mse_value as f64),
                ("vq", vq_value as f64),
                ("codes_used", used as f64),
                ("codes_restarted", dead.len() as f64),
            ],
        })
    }

    /// The tokenizer (and the placeholder generator) as a checkpoint, `TrainMeta` filled.
    fn checkpoint(&self) -> Checkpoint {
        let meta = self.core.meta();
        Engine::from_parts(
            self.placeholder.clone(),
            Tokenizer::Vq(self.tokenizer().clone()),
            meta,
            &self.core.device,
        )
        .to_checkpoint()
    }

    fn to_state(&self) -> Result<TrainState, TrainError> {
        Ok(TrainState {
            header: self.core.header(
                StateKind::Tokenizer,
                optim::ids(self.tokenizer()),
                self.last_used.clone(),
            ),
            checkpoint: self.checkpoint().to_bytes(DType::F32, 0)?,
            optimizer: self.core.optimizer_bytes(),
        })
    }
}
