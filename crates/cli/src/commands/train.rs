//! `arpg train`: train a generator (ARPG or a baseline) on the tokens of a trained tokenizer.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use arpg::choice::Choice;
use arpg::config::{Arch, ModelConfig};
use arpg::tokenizer::VqTokenizer;
use arpg_tools::augment;
use arpg_tools::data::{Dataset, Source};
use arpg_tools::train::{
    GeneratorTrainer, TokenSet, TrainOptions, TrainState, Trainer, load_tokenizer, tokenize,
};
use burn::tensor::Device;

use crate::args::{Preset, choice, progress_bar, read_file};
use crate::training::{TrainCommon, device, run_loop};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint whose tokenizer encodes the data (from train-tokenizer); the state holds it
    /// when resuming.
    #[arg(long, required_unless_present = "resume")]
    pub tokenizer: Option<PathBuf>,
    /// Network to train [default: arpg].
    #[arg(long, value_parser = choice::<Arch>())]
    pub mode: Option<Arch>,
    #[command(flatten)]
    pub common: TrainCommon,
    /// Dropout on residual / MLP / content embeddings [default: the preset's, tiny 0.1].
    #[arg(long)]
    pub dropout: Option<f32>,
    /// AdamW weight decay on matrices [default: 0.05].
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Probability of training a sample with the null class (CFG) [default: 0.1].
    #[arg(long)]
    pub label_dropout: Option<f32>,
    /// Layers (ARPG: half content, half query) instead of the preset's.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Model width instead of the preset's; heads of 64 dims, SwiGLU width 8/3 of it.
    #[arg(long)]
    pub d_model: Option<usize>,
    /// ARPG: also train on the pictures at half the size (8x8 tokens of the 32x32 emoji beside
    /// the 16x16 of the 64x64), alone and followed by the full size, so that 2x expansion is a
    /// task the model has seen (`ModelConfig::multi_scale`).
    #[arg(long)]
    pub multi_scale: bool,
    /// Train on class-keeping variants of the pictures: shifts by one token where only
    /// background leaves the frame, mirrors where the class allows (`arpg_tools::augment`).
    #[arg(long)]
    pub augment: bool,
    /// ARPG without the learned position table (RoPE only, as the paper; how the checkpoints
    /// before 2026-11-30 were trained).
    #[arg(long)]
    pub no_pos_embed: bool,
}

pub fn run(args: Args) -> Result<()> {
    let common = &args.common;
    let device = device(common.device);
    let (trainer, tokenizer_bytes, source) = if common.resume {
        let state = TrainState::load(&common.state_path())?;
        let source = common.source(Some(&state.header.dataset))?;
        (Some(resume(&args, &state, &device)?), state.checkpoint, source)
    } else {
        common.check_fresh()?;
        let path = args.tokenizer.as_ref().expect("clap requires --tokenizer without --resume");
        (None, read_file(path)?, common.source(None)?)
    };
    let tokenizer = load_tokenizer(&tokenizer_bytes, &Device::flex()).context("cannot load the tokenizer")?;
    let mut trainer = match trainer {
        Some(t) => t,
        None => {
            let names = source.class_names()?;
            let grid = tokenizer.config.image_size / tokenizer.config.factor();
            let config = config(&args, tokenizer.config.codebook_size, names.len(), (grid, grid));
            let defaults = TrainOptions::generator();
            let opts = TrainOptions {
                weight_decay: args.weight_decay.unwrap_or(defaults.weight_decay),
                label_dropout: args.label_dropout.unwrap_or(defaults.label_dropout),
                augment: args.augment,
                ..common.options(defaults)
            };
            GeneratorTrainer::new(&config, tokenizer.clone(), opts, source.name(), names, &device)?
        }
    };
    let (augment, multi_scale) = (trainer.options().augment, trainer.config().multi_scale);
    let tokens = token_set(&tokenizer, source, common, augment, multi_scale)?;
    let name = trainer.config().arch.name();
    run_loop(&mut trainer, &tokens, common, name)
}

/// The training tokens: the pictures at the tokenizer's size (with their variants when
/// `augment`) and, for a multi-scale model, the same pictures rendered at half the size.
fn token_set(
    tokenizer: &VqTokenizer,
    source: Source,
    common: &TrainCommon,
    augment: bool,
    multi_scale: bool,
) -> Result<TokenSet> {
    let (size, f) = (tokenizer.config.image_size, tokenizer.config.factor());
    let data = common.load_data(source, size)?;
    let (background, mirror) = source.augment_rules()?;
    let variants = augment.then(|| augment::variants(&data, f, &background, |label| mirror[label as usize]));
    if let Some(v) = &variants {
        eprintln!("augment: {} pictures, {} variants", data.len(), v.len());
    }
    let encode = |data: Dataset, unit: usize| -> Result<TokenSet> {
        let data = match &variants {
            Some(v) => augment::apply(&data, v, unit, &background),
            None => data,
        };
        let bar = progress_bar(data.len() as u64, "tokenize", "images");
        let tokens = tokenize(tokenizer, &data, 256, &mut |done, _| bar.set_position(done as u64))?;
        bar.finish_and_clear();
        Ok(tokens)
    };
    let tokens = encode(data, f)?;
    if !multi_scale {
        return Ok(tokens);
    }
    let half = common.load_data(source, size / 2)?;
    Ok(tokens.with_half(encode(half, f / 2)?)?)
}

/// The trainer of a saved run; the options given again must be the run's.
fn resume(args: &Args, state: &TrainState, device: &Device) -> Result<GeneratorTrainer> {
    args.common.check_resumed(&state.header.options)?;
    let mut t = GeneratorTrainer::from_state(state, device)?;
    if let Some(arch) = args.mode {
        ensure!(
            arch == t.config().arch,
            "--mode {} but the state holds a {} model",
            arch.name(),
            t.config().arch.name()
        );
    }
    if let Some(steps) = args.common.steps {
        t.set_steps(steps);
    }
    let saved = &state.header.options;
    ensure!(
        args.weight_decay.is_none_or(|w| w == saved.weight_decay)
            && args.label_dropout.is_none_or(|p| p == saved.label_dropout)
            && args.dropout.is_none_or(|d| d == t.config().dropout)
            && args.layers.is_none_or(|l| l == t.config().n_layers)
            && args.d_model.is_none_or(|d| d == t.config().d_model)
            && !(args.no_pos_embed && t.config().pos_embed)
            && (!args.multi_scale || t.config().multi_scale)
            && (!args.augment || t.options().augment),
        "--weight-decay, --label-dropout, --dropout, --layers, --d-model, --no-pos-embed, --multi-scale \
         and --augment must match the resumed run"
    );
    if args.tokenizer.is_some() {
        eprintln!("note: --tokenizer is ignored with --resume (the state holds the tokenizer)");
    }
    Ok(t)
}

/// A fresh run's model: the preset, sized by the flags, on the tokenizer's grid.
fn config(args: &Args, vocab: usize, n_classes: usize, (grid_h, grid_w): (usize, usize)) -> ModelConfig {
    let base = match args.common.preset {
        Preset::Tiny => ModelConfig::tiny(vocab, n_classes),
        Preset::Test => ModelConfig::test(vocab, n_classes),
    };
    let config = ModelConfig {
        grid_h,
        grid_w,
        dropout: args.dropout.unwrap_or(base.dropout),
        n_layers: args.layers.unwrap_or(base.n_layers),
        pos_embed: base.pos_embed && !args.no_pos_embed,
        multi_scale: args.multi_scale,
        ..base
    }
    .with_arch(args.mode.unwrap_or(Arch::Arpg));
    match args.d_model {
        Some(d) => config.with_width(d, 32),
        None => config,
    }
}
