//! Command-line arguments (clap derive) and their conversion to library types.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use arpg::config::Arch;
use arpg::sampler::{CfgSchedule, Order, SampleOptions, Schedule};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "arpg",
    version,
    about = "ARPG: autoregressive image generation in random parallel order (Fashion-MNIST)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Sample new images; writes <class>-<index>.png per image and grid.png.
    Generate(GenerateArgs),
    /// Regenerate the parts of an image that are white in a mask.
    Inpaint(InpaintArgs),
    /// Extend an image by whole tokens on any side.
    Outpaint(OutpaintArgs),
    /// Grow an image (or a fresh sample) to a larger canvas, filling the new tokens.
    Expand(ExpandArgs),
    /// Print a checkpoint's configuration, parameter counts, storage and checksum.
    Inspect {
        /// The .arpg checkpoint file.
        checkpoint: PathBuf,
    },
    /// Convert a checkpoint to int8 with per-group scales and report the weight error.
    Quantize {
        /// Checkpoint to read (f32 or int8).
        input: PathBuf,
        /// Int8 checkpoint to write.
        output: PathBuf,
        /// Weights that share one scale.
        #[arg(long, default_value_t = 64)]
        group_size: usize,
    },
    /// Write a randomly initialised checkpoint (for tests before a trained one exists).
    Init(InitArgs),
    /// Quality of a checkpoint: class accuracy, Fréchet distance, memorisation, in-painting.
    Eval(crate::evaluate::EvalArgs),
    /// Train the small CNN classifier `arpg eval` scores samples with.
    TrainClassifier(crate::evaluate::TrainClassifierArgs),
    /// Train the VQ tokenizer on Fashion-MNIST (writes a checkpoint holding it).
    TrainTokenizer(crate::train::TrainTokenizerArgs),
    /// Train a generator (ARPG or a baseline) on Fashion-MNIST tokens.
    Train(crate::train::TrainArgs),
    /// Speed, memory and FLOPs of ARPG vs raster AR, MaskGIT and no-shared-KV on one checkpoint.
    Bench(crate::bench::BenchArgs),
    /// Many generations in a row at batch 1, checking that the resident memory stays flat.
    Soak(crate::soak::SoakArgs),
}

/// Decoding modes: the checkpoint's architecture must match.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Arpg,
    Raster,
    Maskgit,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Arpg => "arpg",
            Mode::Raster => "raster",
            Mode::Maskgit => "maskgit",
        }
    }

    /// The checkpoint used when `--checkpoint` is not given: the app's model for ARPG, the
    /// baselines beside the evaluation classifier (the app does not load them).
    pub fn default_checkpoint(self) -> PathBuf {
        let dir = if self == Mode::Arpg { "www/models" } else { "models/baselines" };
        PathBuf::from(format!("{dir}/{}-fmnist-int8.arpg", self.name()))
    }

    /// Whether a checkpoint of this architecture decodes in this mode.
    pub fn accepts(self, arch: Arch) -> bool {
        matches!(
            (self, arch),
            (Mode::Arpg, Arch::Arpg | Arch::ArpgNoSharedKv)
                | (Mode::Raster, Arch::Raster)
                | (Mode::Maskgit, Arch::MaskGit)
        )
    }

    pub fn of(arch: Arch) -> Mode {
        match arch {
            Arch::Arpg | Arch::ArpgNoSharedKv => Mode::Arpg,
            Arch::Raster => Mode::Raster,
            Arch::MaskGit => Mode::Maskgit,
        }
    }
}

/// Which checkpoint to load.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// Checkpoint file [default: www/models/arpg-fmnist-int8.arpg, or for a baseline
    /// models/baselines/<mode>-fmnist-int8.arpg].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Decoding mode; picks the default checkpoint and must match the checkpoint's architecture
    /// [default: the checkpoint's own, else arpg].
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleArg {
    Arccos,
    Cosine,
    Linear,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderArg {
    Random,
    Confidence,
}

impl From<OrderArg> for Order {
    fn from(arg: OrderArg) -> Self {
        match arg {
            OrderArg::Random => Order::Random,
            OrderArg::Confidence => Order::Confidence,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CfgScheduleArg {
    Linear,
    Constant,
}

impl From<ScheduleArg> for Schedule {
    fn from(arg: ScheduleArg) -> Self {
        match arg {
            ScheduleArg::Arccos => Schedule::Arccos,
            ScheduleArg::Cosine => Schedule::Cosine,
            ScheduleArg::Linear => Schedule::Linear,
        }
    }
}

impl From<CfgScheduleArg> for CfgSchedule {
    fn from(arg: CfgScheduleArg) -> Self {
        match arg {
            CfgScheduleArg::Linear => CfgSchedule::Linear,
            CfgScheduleArg::Constant => CfgSchedule::Constant,
        }
    }
}

/// Sampling options shared by every generating command.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Decoding steps (ARPG / MaskGIT; raster always decodes one token per step).
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    /// Classifier-free guidance scale (1 = no guidance).
    #[arg(long, default_value_t = 3.0)]
    pub cfg: f32,
    /// How the guidance scale evolves over the steps.
    #[arg(long, value_enum, default_value_t = CfgScheduleArg::Linear)]
    pub cfg_schedule: CfgScheduleArg,
    /// Softmax temperature.
    #[arg(long, default_value_t = SampleOptions::default().temperature)]
    pub temperature: f32,
    /// Keep only the k most likely codes (0 = off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Nucleus sampling mass (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// How many tokens each step decodes.
    #[arg(long, value_enum, default_value_t = ScheduleArg::Cosine)]
    pub schedule: ScheduleArg,
    /// ARPG's decoding order: the paper's random one, or each image's most confident cells first
    /// (queries every open cell at every step).
    #[arg(long, value_enum, default_value_t = OrderArg::Random)]
    pub order: OrderArg,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SampleArgs {
    /// The library options (checked here for friendlier messages; the engine checks again).
    pub fn to_options(&self) -> Result<SampleOptions> {
        ensure!(self.steps >= 1, "--steps must be at least 1");
        ensure!(self.cfg.is_finite() && self.cfg >= 0.0, "--cfg must be a finite number >= 0");
        ensure!(self.temperature.is_finite() && self.temperature > 0.0, "--temperature must be > 0");
        ensure!(self.top_p > 0.0 && self.top_p <= 1.0, "--top-p must be in (0, 1]");
        Ok(SampleOptions {
            steps: self.steps,
            cfg: self.cfg,
            cfg_schedule: self.cfg_schedule.into(),
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            schedule: self.schedule.into(),
            order: self.order.into(),
            seed: self.seed,
        })
    }

    /// One line for the PNG metadata.
    pub fn describe(&self) -> String {
        format!(
            "steps={} cfg={} cfg_schedule={:?} temperature={} top_k={} top_p={} schedule={:?} order={:?} seed={}",
            self.steps,
            self.cfg,
            self.cfg_schedule,
            self.temperature,
            self.top_k,
            self.top_p,
            self.schedule,
            self.order,
            self.seed
        )
        .to_lowercase()
    }
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Class id or name (case-insensitive) [default: cycle through all classes].
    #[arg(long)]
    pub class: Option<String>,
    /// How many images.
    #[arg(long, default_value_t = 8)]
    pub count: usize,
    /// Directory for the PNGs (created if missing).
    #[arg(long, default_value = "out")]
    pub out_dir: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sample: SampleArgs,
}

#[derive(Args, Debug)]
pub struct InpaintArgs {
    /// Image to edit (any PNG; converted to grey).
    #[arg(long)]
    pub image: PathBuf,
    /// Same size as the image; white (>= 128) = regenerate.
    #[arg(long)]
    pub mask: PathBuf,
    /// Class id or name (case-insensitive) to condition on.
    #[arg(long)]
    pub class: String,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sample: SampleArgs,
}

#[derive(Args, Debug)]
pub struct OutpaintArgs {
    /// Image to extend (any PNG; converted to grey).
    #[arg(long)]
    pub image: PathBuf,
    /// Tokens to add on the left.
    #[arg(long, default_value_t = 0)]
    pub left: usize,
    /// Tokens to add on the right.
    #[arg(long, default_value_t = 0)]
    pub right: usize,
    /// Tokens to add on top.
    #[arg(long, default_value_t = 0)]
    pub top: usize,
    /// Tokens to add at the bottom.
    #[arg(long, default_value_t = 0)]
    pub bottom: usize,
    /// Class id or name (case-insensitive) to condition on.
    #[arg(long)]
    pub class: String,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
    /// RoPE for grid cells beyond the training grid: plain extrapolation or NTK-scaled frequencies.
    #[arg(long, value_enum, default_value_t = RopeArg::Extrapolate)]
    pub rope: RopeArg,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sample: SampleArgs,
}

#[derive(Args, Debug)]
pub struct ExpandArgs {
    /// Image to expand [default: sample one of --class first].
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Class id or name (case-insensitive) to condition on.
    #[arg(long)]
    pub class: String,
    /// Side growth factor.
    #[arg(long, default_value_t = 2)]
    pub factor: usize,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
    /// RoPE for grid cells beyond the training grid: plain extrapolation or NTK-scaled frequencies.
    #[arg(long, value_enum, default_value_t = RopeArg::Extrapolate)]
    pub rope: RopeArg,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sample: SampleArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeArg {
    Extrapolate,
    Ntk,
}

impl From<RopeArg> for arpg::tasks::RopeMode {
    fn from(r: RopeArg) -> Self {
        match r {
            RopeArg::Extrapolate => arpg::tasks::RopeMode::Extrapolate,
            RopeArg::Ntk => arpg::tasks::RopeMode::Ntk,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchArg {
    Arpg,
    ArpgNoSharedKv,
    Raster,
    Maskgit,
}

impl From<ArchArg> for Arch {
    fn from(a: ArchArg) -> Arch {
        match a {
            ArchArg::Arpg => Arch::Arpg,
            ArchArg::ArpgNoSharedKv => Arch::ArpgNoSharedKv,
            ArchArg::Raster => Arch::Raster,
            ArchArg::Maskgit => Arch::MaskGit,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// The shipped size (d_model 192, 6 layers, 8x8 tokens of a 32x32 image).
    Tiny,
    /// A few thousand parameters (4x4 tokens of a 16x16 image).
    Test,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DTypeArg {
    F32,
    Int8,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Checkpoint file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Network to build.
    #[arg(long, value_enum, default_value_t = ArchArg::Arpg)]
    pub arch: ArchArg,
    /// Model and tokenizer sizes.
    #[arg(long, value_enum, default_value_t = Preset::Tiny)]
    pub preset: Preset,
    /// Initialisation seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Storage of the weights.
    #[arg(long, value_enum, default_value_t = DTypeArg::F32)]
    pub dtype: DTypeArg,
    /// Weights per int8 scale (with --dtype int8).
    #[arg(long, default_value_t = 64)]
    pub group_size: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sample_defaults() {
        let cli = Cli::try_parse_from(["arpg", "generate", "--class", "sneaker"]).unwrap();
        let Command::Generate(g) = cli.command else { panic!("not generate") };
        let o = g.sample.to_options().unwrap();
        assert_eq!((o.steps, o.cfg, o.temperature, o.top_k, o.top_p, o.seed), (8, 3.0, 0.9, 0, 1.0, 0));
        assert!(matches!(o.schedule, Schedule::Cosine));
        assert!(matches!(o.cfg_schedule, CfgSchedule::Linear));
        assert_eq!(g.count, 8);
        assert_eq!(g.model.mode, None);
    }

    #[test]
    fn sample_flags_and_validation() {
        let args = "arpg inpaint --image a.png --mask m.png --class bag --out o.png --steps 4 --top-k 5 \
                    --top-p 0.9 --schedule cosine --cfg-schedule constant --mode maskgit";
        let cli = Cli::try_parse_from(args.split_whitespace()).unwrap();
        let Command::Inpaint(a) = cli.command else { panic!("not inpaint") };
        let o = a.sample.to_options().unwrap();
        assert_eq!((o.steps, o.top_k, o.top_p), (4, 5, 0.9));
        assert!(matches!(o.schedule, Schedule::Cosine));
        assert!(matches!(o.cfg_schedule, CfgSchedule::Constant));
        assert_eq!(a.model.mode, Some(Mode::Maskgit));
        assert_eq!(a.class, "bag");
        // Edits need a class: the model has no unconditional mode.
        assert!(
            Cli::try_parse_from("arpg inpaint --image a.png --mask m.png --out o.png".split(' ')).is_err()
        );

        let cli = Cli::try_parse_from(["arpg", "generate", "--steps", "0"]).unwrap();
        let Command::Generate(g) = cli.command else { panic!("not generate") };
        assert!(g.sample.to_options().is_err());
        assert!(Cli::try_parse_from(["arpg", "generate", "--schedule", "quadratic"]).is_err());
    }

    #[test]
    fn modes_match_architectures() {
        assert!(Mode::Arpg.accepts(Arch::ArpgNoSharedKv));
        assert!(!Mode::Arpg.accepts(Arch::Raster));
        assert!(!Mode::Raster.accepts(Arch::MaskGit));
        for arch in Arch::ALL {
            assert!(Mode::of(arch).accepts(arch));
        }
        assert_eq!(Mode::Arpg.default_checkpoint(), PathBuf::from("www/models/arpg-fmnist-int8.arpg"));
        assert_eq!(
            Mode::Maskgit.default_checkpoint(),
            PathBuf::from("models/baselines/maskgit-fmnist-int8.arpg")
        );
    }
}
