//! `arpg train-tokenizer` and `arpg train`: load Fashion-MNIST, run the library's trainers with a
//! progress bar, a JSONL metrics log and periodic saves, resume from a state file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use arpg::checkpoint::DType;
use arpg::config::{Arch, ModelConfig, TokenizerConfig};
use arpg::data::{self, CLASS_NAMES, DEFAULT_DIR, Dataset, Split};
use arpg::train::state::write_atomic;
use arpg::train::{
    GeneratorTrainer, TokenizerTrainer, TrainOptions, TrainState, Trainer, load_tokenizer, tokenize,
};
use burn::tensor::Device;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{ArchArg, Preset};

const DATASET: &str = "fashion-mnist";

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceArg {
    /// burn-flex on the CPU.
    Flex,
    /// The default GPU through Vulkan (burn-wgpu); only in a build with the `vulkan` feature.
    #[cfg(feature = "vulkan")]
    Vulkan,
}

/// Options of both training commands.
#[derive(Args, Debug)]
pub struct TrainCommon {
    /// Checkpoint to write (f32 .arpg), at every save and at the end.
    #[arg(long)]
    pub out: PathBuf,
    /// Model size: tiny (shipped) or test (seconds-sized; grids follow the data).
    #[arg(long, value_enum, default_value_t = Preset::Tiny)]
    pub preset: Preset,
    /// Total steps [default: 3000 tokenizer, 5000 generator]; with --resume a new total (the
    /// cosine schedule stretches from there, so only the same total continues exactly).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Images per step [default: 64].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Peak learning rate [default: 1e-3 tokenizer, 6e-4 generator].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Save and stop once this step is done, leaving the schedule as it is (an interim checkpoint
    /// that the same command reproduces; `--resume` continues the run).
    #[arg(long)]
    pub stop_at: Option<u64>,
    /// Linear warm-up steps [default: 100 tokenizer, 200 generator].
    #[arg(long)]
    pub warmup: Option<u64>,
    /// Seed of the initialisation, data order, orders, masks and dropout [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Continue exactly from the state file (options come from it).
    #[arg(long)]
    pub resume: bool,
    /// Training state file [default: <out> with extension .state].
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Metrics log, one JSON object per step [default: <out> with extension .metrics.jsonl].
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Directory of the gzipped IDX files (Debian package dataset-fashion-mnist).
    #[arg(long, default_value = DEFAULT_DIR)]
    pub data_dir: PathBuf,
    /// Train on the first N training images only (0 = all 60000).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Minutes between saves of the state file and the checkpoint.
    #[arg(long, default_value_t = 10.0)]
    pub save_every: f64,
    /// Compute device: flex (CPU), or vulkan in a build with `--features vulkan`.
    #[arg(long, value_enum, default_value_t = DeviceArg::Flex)]
    pub device: DeviceArg,
}

#[derive(Args, Debug)]
pub struct TrainTokenizerArgs {
    #[command(flatten)]
    pub common: TrainCommon,
    /// Restart a code unused for this many steps [default: 20; 0 = never].
    #[arg(long)]
    pub dead_code_steps: Option<u64>,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Checkpoint whose tokenizer encodes the data (from train-tokenizer); the state holds it
    /// when resuming.
    #[arg(long, required_unless_present = "resume")]
    pub tokenizer: Option<PathBuf>,
    /// Network to train [default: arpg].
    #[arg(long, value_enum)]
    pub mode: Option<ArchArg>,
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
    /// ARPG without the learned position table (RoPE only, as the paper; how the checkpoints
    /// before 2026-11-30 were trained).
    #[arg(long)]
    pub no_pos_embed: bool,
}

impl TrainCommon {
    fn state_path(&self) -> PathBuf {
        self.state.clone().unwrap_or_else(|| self.out.with_extension("state"))
    }

    fn log_path(&self) -> PathBuf {
        self.log.clone().unwrap_or_else(|| self.out.with_extension("metrics.jsonl"))
    }

    /// `defaults` with the options given on the command line.
    fn options(&self, defaults: TrainOptions) -> TrainOptions {
        TrainOptions {
            steps: self.steps.unwrap_or(defaults.steps),
            batch: self.batch.unwrap_or(defaults.batch),
            lr: self.lr.unwrap_or(defaults.lr),
            warmup: self.warmup.unwrap_or(defaults.warmup),
            seed: self.seed.unwrap_or(defaults.seed),
            ..defaults
        }
    }

    /// On resume the state's options rule; a different value on the command line is a mistake.
    fn check_resumed(&self, saved: &TrainOptions) -> Result<()> {
        let same = |given: Option<String>, saved: String, flag: &str| match given {
            Some(g) if g != saved => bail!("--{flag} {g} differs from the resumed run's {saved}"),
            _ => Ok(()),
        };
        same(self.batch.map(|v| v.to_string()), saved.batch.to_string(), "batch")?;
        same(self.lr.map(|v| v.to_string()), saved.lr.to_string(), "lr")?;
        same(self.warmup.map(|v| v.to_string()), saved.warmup.to_string(), "warmup")?;
        same(self.seed.map(|v| v.to_string()), saved.seed.to_string(), "seed")
    }

    /// The training images padded to `size`, the first `--limit` of them.
    fn load_data(&self, size: usize) -> Result<Dataset> {
        let data = data::load(&self.data_dir, Split::Train)?;
        ensure!(size >= data.width.max(data.height), "the tokenizer's image size {size} is below the data's");
        let data = if self.limit > 0 { data.take(self.limit) } else { data };
        Ok(data.padded(size))
    }

    /// A fresh run must not overwrite a state it could have resumed.
    fn check_fresh(&self) -> Result<()> {
        let state = self.state_path();
        ensure!(
            !state.exists(),
            "{} exists: pass --resume to continue that run, or remove it to start over",
            state.display()
        );
        Ok(())
    }
}

fn class_names() -> Vec<String> {
    CLASS_NAMES.iter().map(|s| s.to_string()).collect()
}

fn device(arg: DeviceArg) -> Device {
    match arg {
        DeviceArg::Flex => Device::flex().autodiff(),
        #[cfg(feature = "vulkan")]
        DeviceArg::Vulkan => Device::vulkan(burn::tensor::DeviceKind::DefaultDevice).autodiff(),
    }
}

fn save(trainer: &impl Trainer, args: &TrainCommon) -> Result<()> {
    let state = args.state_path();
    trainer.to_state().save(&state).with_context(|| format!("cannot save {}", state.display()))?;
    let bytes = trainer.checkpoint().to_bytes(DType::F32, 0);
    write_atomic(&args.out, &bytes).with_context(|| format!("cannot save {}", args.out.display()))?;
    Ok(())
}

/// Open the metrics log: truncated for a fresh run; on resume, lines past `step` (written after
/// the last save) are dropped so that the log and the state agree.
fn open_log(path: &Path, resume_at: Option<u64>) -> Result<fs::File> {
    let kept = match (resume_at, fs::read_to_string(path)) {
        (Some(step), Ok(text)) => text
            .lines()
            .filter(|l| {
                let s = serde_json::from_str::<serde_json::Value>(l).ok().and_then(|v| v["step"].as_u64());
                s.is_some_and(|s| s <= step)
            })
            .map(|l| format!("{l}\n"))
            .collect(),
        _ => String::new(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(path, kept).with_context(|| format!("cannot write {}", path.display()))?;
    fs::OpenOptions::new().append(true).open(path).with_context(|| format!("cannot open {}", path.display()))
}

fn run_loop<T: Trainer>(trainer: &mut T, data: &T::Data, args: &TrainCommon, what: &str) -> Result<()> {
    let start_step = trainer.step_count();
    let mut log = open_log(&args.log_path(), (start_step > 0).then_some(start_step))?;
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
        .expect("valid template")
        .progress_chars("=> ");
    let bar = ProgressBar::new(trainer.options().steps).with_style(style).with_prefix(what.to_string());
    bar.set_position(start_step);
    bar.reset_eta();
    let mut last_save = Instant::now();
    let mut last = None;
    let end = args.stop_at.unwrap_or(u64::MAX).min(trainer.options().steps);
    while trainer.step_count() < end {
        let stats = trainer.step(data)?;
        writeln!(log, "{}", stats.to_json(trainer.seconds())).context("cannot write the metrics log")?;
        bar.set_message(format!(
            "loss {:.4} | {:.0} tok/s | {:.2} s/step | lr {:.2e}",
            stats.loss,
            stats.tokens_per_s(),
            stats.seconds,
            stats.lr
        ));
        bar.set_position(stats.step);
        if last_save.elapsed().as_secs_f64() >= args.save_every * 60.0 {
            save(trainer, args)?;
            bar.println(format!("step {}: loss {:.4}, saved {}", stats.step, stats.loss, args.out.display()));
            last_save = Instant::now();
        }
        last = Some(stats);
    }
    bar.finish_and_clear();
    save(trainer, args)?;
    match last {
        Some(s) => println!(
            "{what}: {} steps ({} this run), last loss {:.4}, {:.1} s of training; wrote {} and {}",
            s.step,
            s.step - start_step,
            s.loss,
            trainer.seconds(),
            args.out.display(),
            args.state_path().display()
        ),
        None => println!("{what}: already at {} steps; wrote {}", trainer.step_count(), args.out.display()),
    }
    Ok(())
}

pub fn train_tokenizer(args: TrainTokenizerArgs) -> Result<()> {
    let common = &args.common;
    let device = device(common.device);
    let mut trainer = if common.resume {
        let state = TrainState::load(&common.state_path())?;
        common.check_resumed(&state.header.options)?;
        ensure!(
            args.dead_code_steps.is_none_or(|d| d == state.header.options.dead_code_steps),
            "--dead-code-steps differs from the resumed run's"
        );
        let mut t = TokenizerTrainer::from_state(&state, &device)?;
        if let Some(steps) = common.steps {
            t.set_steps(steps);
        }
        t
    } else {
        common.check_fresh()?;
        let config = match common.preset {
            Preset::Tiny => TokenizerConfig::tiny(),
            // The test size, on the padded 32x32 Fashion-MNIST frame.
            Preset::Test => TokenizerConfig { image_size: 32, ..TokenizerConfig::test() },
        };
        let defaults = TrainOptions::tokenizer();
        let opts = TrainOptions {
            dead_code_steps: args.dead_code_steps.unwrap_or(defaults.dead_code_steps),
            ..common.options(defaults)
        };
        TokenizerTrainer::new(&config, opts, DATASET, class_names(), &device)?
    };
    let data = common.load_data(trainer.tokenizer().config.image_size)?;
    run_loop(&mut trainer, &data, common, "tokenizer")?;
    Ok(())
}

pub fn train(args: TrainArgs) -> Result<()> {
    let common = &args.common;
    let device = device(common.device);
    let (trainer, tokenizer_bytes) = if common.resume {
        let state = TrainState::load(&common.state_path())?;
        common.check_resumed(&state.header.options)?;
        let mut t = GeneratorTrainer::from_state(&state, &device)?;
        if let Some(mode) = args.mode {
            let arch = Arch::from(mode);
            ensure!(
                arch == t.config().arch,
                "--mode {} but the state holds a {} model",
                arch.name(),
                t.config().arch.name()
            );
        }
        if let Some(steps) = common.steps {
            t.set_steps(steps);
        }
        let saved = &state.header.options;
        ensure!(
            args.weight_decay.is_none_or(|w| w == saved.weight_decay)
                && args.label_dropout.is_none_or(|p| p == saved.label_dropout)
                && args.dropout.is_none_or(|d| d == t.config().dropout)
                && args.layers.is_none_or(|l| l == t.config().n_layers)
                && args.d_model.is_none_or(|d| d == t.config().d_model)
                && !(args.no_pos_embed && t.config().pos_embed),
            "--weight-decay, --label-dropout, --dropout, --layers, --d-model and --no-pos-embed must match \
             the resumed run"
        );
        if args.tokenizer.is_some() {
            eprintln!("note: --tokenizer is ignored with --resume (the state holds the tokenizer)");
        }
        (Some(t), state.checkpoint)
    } else {
        common.check_fresh()?;
        let path = args.tokenizer.as_ref().expect("clap requires --tokenizer without --resume");
        (None, fs::read(path).with_context(|| format!("cannot read {}", path.display()))?)
    };
    let tokenizer = load_tokenizer(&tokenizer_bytes, &Device::flex()).context("cannot load the tokenizer")?;
    let data = common.load_data(tokenizer.config.image_size)?;
    let bar = ProgressBar::new(data.len() as u64).with_style(
        ProgressStyle::with_template("tokenize [{bar:30}] {pos}/{len} {eta}").expect("valid template"),
    );
    let tokens = tokenize(&tokenizer, &data, 256, &mut |done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();

    let mut trainer = match trainer {
        Some(t) => t,
        None => {
            let n_classes = CLASS_NAMES.len();
            let vocab = tokenizer.config.codebook_size;
            let base = match common.preset {
                Preset::Tiny => ModelConfig::tiny(vocab, n_classes),
                Preset::Test => ModelConfig::test(vocab, n_classes),
            };
            let mut config = ModelConfig {
                grid_h: tokens.grid_h,
                grid_w: tokens.grid_w,
                dropout: args.dropout.unwrap_or(base.dropout),
                n_layers: args.layers.unwrap_or(base.n_layers),
                pos_embed: base.pos_embed && !args.no_pos_embed,
                ..base
            }
            .with_arch(args.mode.unwrap_or(ArchArg::Arpg).into());
            if let Some(d) = args.d_model {
                config.d_model = d;
                config.n_heads = (d / 64).max(1);
                config.mlp_hidden = (8 * d / 3).div_ceil(32) * 32;
            }
            let defaults = TrainOptions::generator();
            let opts = TrainOptions {
                weight_decay: args.weight_decay.unwrap_or(defaults.weight_decay),
                label_dropout: args.label_dropout.unwrap_or(defaults.label_dropout),
                ..common.options(defaults)
            };
            GeneratorTrainer::new(&config, tokenizer, opts, DATASET, class_names(), &device)?
        }
    };
    let name = trainer.config().arch.name();
    run_loop(&mut trainer, &tokens, common, name)?;
    Ok(())
}
