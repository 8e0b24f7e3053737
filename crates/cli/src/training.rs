//! What the two training commands share (`arpg train-tokenizer`, `arpg train`): the options,
//! the loop with its progress bar, JSONL metrics log and periodic saves, and resuming.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use arpg::checkpoint::DType;
use arpg::choice::Choice;
use arpg_tools::data::{Dataset, Source};
use arpg_tools::train::state::write_atomic;
use arpg_tools::train::{TrainOptions, Trainer};
use burn::tensor::Device;
use clap::{Args, ValueEnum};

use crate::args::{Preset, choice, progress_bar};

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
    /// The dataset [default: fashion-mnist]; recorded in the checkpoint, and a resumed run
    /// takes its own.
    #[arg(long, value_parser = choice::<Source>())]
    pub data: Option<Source>,
    /// Where the data is [default: /usr/share/datasets/fashion-mnist (Debian package
    /// dataset-fashion-mnist), or ~/.cache/arpg/emoji (`make emoji-data`)].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Train on the first N training images only (0 = all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Minutes between saves of the state file and the checkpoint.
    #[arg(long, default_value_t = 10.0)]
    pub save_every: f64,
    /// Compute device: flex (CPU), or vulkan in a build with `--features vulkan`.
    #[arg(long, value_enum, default_value_t = DeviceArg::Flex)]
    pub device: DeviceArg,
}

impl TrainCommon {
    pub fn state_path(&self) -> PathBuf {
        self.state.clone().unwrap_or_else(|| self.out.with_extension("state"))
    }

    fn log_path(&self) -> PathBuf {
        self.log.clone().unwrap_or_else(|| self.out.with_extension("metrics.jsonl"))
    }

    /// `defaults` with the options given on the command line.
    pub fn options(&self, defaults: TrainOptions) -> TrainOptions {
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
    pub fn check_resumed(&self, saved: &TrainOptions) -> Result<()> {
        let same = |given: Option<String>, saved: String, flag: &str| match given {
            Some(g) if g != saved => bail!("--{flag} {g} differs from the resumed run's {saved}"),
            _ => Ok(()),
        };
        same(self.batch.map(|v| v.to_string()), saved.batch.to_string(), "batch")?;
        same(self.lr.map(|v| v.to_string()), saved.lr.to_string(), "lr")?;
        same(self.warmup.map(|v| v.to_string()), saved.warmup.to_string(), "warmup")?;
        same(self.seed.map(|v| v.to_string()), saved.seed.to_string(), "seed")
    }

    /// The training images of `source` at `size` x `size`, the first `--limit` of them.
    pub fn load_data(&self, source: Source, size: usize) -> Result<Dataset> {
        let dir = self.data_dir.clone().unwrap_or_else(|| source.default_dir());
        Ok(source.train(&dir, size, self.limit)?)
    }

    /// The dataset of a run: the state's when resuming (a different `--data` is a mistake).
    pub fn source(&self, resumed: Option<&str>) -> Result<Source> {
        let Some(saved) = resumed else { return Ok(self.data.unwrap_or(Source::FashionMnist)) };
        let source: Source = saved.parse().map_err(anyhow::Error::msg)?;
        if let Some(given) = self.data.filter(|&d| d != source) {
            bail!("--data {} differs from the resumed run's {saved}", given.name());
        }
        Ok(source)
    }

    /// A fresh run must not overwrite a state it could have resumed.
    pub fn check_fresh(&self) -> Result<()> {
        let state = self.state_path();
        ensure!(
            !state.exists(),
            "{} exists: pass --resume to continue that run, or remove it to start over",
            state.display()
        );
        Ok(())
    }
}

pub fn device(arg: DeviceArg) -> Device {
    match arg {
        DeviceArg::Flex => Device::flex().autodiff(),
        #[cfg(feature = "vulkan")]
        DeviceArg::Vulkan => Device::vulkan(burn::tensor::DeviceKind::DefaultDevice).autodiff(),
    }
}

fn save(trainer: &impl Trainer, args: &TrainCommon) -> Result<()> {
    let state = args.state_path();
    trainer.to_state()?.save(&state).with_context(|| format!("cannot save {}", state.display()))?;
    let bytes = trainer.checkpoint().to_bytes(DType::F32, 0)?;
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

pub fn run_loop<T: Trainer>(trainer: &mut T, data: &T::Data, args: &TrainCommon, what: &str) -> Result<()> {
    let start_step = trainer.step_count();
    let mut log = open_log(&args.log_path(), (start_step > 0).then_some(start_step))?;
    let bar = progress_bar(trainer.options().steps, what, "steps");
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
