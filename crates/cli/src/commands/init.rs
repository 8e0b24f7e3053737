//! `arpg init`: write a randomly initialised checkpoint (for tests before a trained one exists).

use std::path::PathBuf;

use anyhow::{Result, anyhow, ensure};
use arpg::checkpoint::DType;
use arpg::choice::Choice;
use arpg::config::{Arch, ModelConfig, VqConfig};
use arpg::engine::Engine;
use burn::tensor::Device;

use crate::args::{choice, write_checkpoint};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Network to build.
    #[arg(long, value_parser = choice::<Arch>(), default_value = Arch::Arpg.name())]
    pub arch: Arch,
    /// Model and tokenizer sizes: ours, or the paper's (ARPG-L, -XL, -XXL with VQ-16 at 256x256,
    /// 1000 classes: random weights of the official shapes, as `arpg import` lays them out).
    #[arg(long, value_enum, default_value_t = InitPreset::Tiny)]
    pub preset: InitPreset,
    /// Image channels: 1 (grey) or 3 (RGB).
    #[arg(long, default_value_t = 1)]
    pub image_channels: usize,
    /// ARPG that also reads the half-size grid (`arpg train --multi-scale`).
    #[arg(long)]
    pub multi_scale: bool,
    /// Initialisation seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Storage of the weights.
    #[arg(long, value_parser = choice::<DType>(), default_value = DType::F32.name())]
    pub dtype: DType,
    /// Weights per int8 scale (with --dtype int8).
    #[arg(long, default_value_t = 64)]
    pub group_size: usize,
}

/// `--preset`: the trainers' sizes and the paper's.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitPreset {
    /// The shipped size (d_model 192, 6 layers, 8x8 tokens of a 32x32 image).
    Tiny,
    /// A few thousand parameters (4x4 tokens of a 16x16 image).
    Test,
    /// ARPG-L: d_model 1024, 24 layers, 320M parameters, with VQ-16.
    ArpgL,
    /// ARPG-XL: d_model 1280, 36 layers, 719M parameters, with VQ-16.
    ArpgXl,
    /// ARPG-XXL: d_model 1536, 48 layers, 1.3B parameters, with VQ-16.
    ArpgXxl,
    /// The paper's layout, frame and 1000 classes at a test size (d_model 64, 2 layers, a narrow
    /// VQGAN): 5.3M parameters, for browser tests of the official architecture.
    ArpgTest,
}

pub fn run(args: Args) -> Result<()> {
    ensure!(args.group_size >= 1, "--group-size must be at least 1");
    let n_classes = arpg_tools::data::CLASS_NAMES.len();
    let (tok, model) = match args.preset {
        InitPreset::Tiny => {
            let tok = VqConfig::tiny();
            let model = ModelConfig::tiny(tok.codebook_size, n_classes);
            (tok, model)
        }
        InitPreset::Test => {
            let tok = VqConfig::test();
            let model = ModelConfig::test(tok.codebook_size, n_classes);
            (tok, model)
        }
        InitPreset::ArpgL => return official(&args, "L"),
        InitPreset::ArpgXl => return official(&args, "XL"),
        InitPreset::ArpgXxl => return official(&args, "XXL"),
        InitPreset::ArpgTest => return official(&args, "test"),
    };
    let model = ModelConfig { multi_scale: args.multi_scale, ..model }.with_arch(args.arch);
    let tok = VqConfig { image_channels: args.image_channels, ..tok };
    model.validate().map_err(|e| anyhow!("invalid model config: {e}"))?;
    tok.validate().map_err(|e| anyhow!("invalid tokenizer config: {e}"))?;

    let arch = model.arch;
    let device = Device::flex();
    device.seed(args.seed);
    let engine = Engine::new(&model, &tok.into(), &device);
    let mut ckpt = engine.to_checkpoint();
    ckpt.meta.dataset = "random-init".into();
    ckpt.meta.seed = args.seed;
    ckpt.meta.class_names = arpg_tools::data::CLASS_NAMES.iter().map(|s| s.to_string()).collect();
    let bytes = write_checkpoint(&args.out, &ckpt, args.dtype, args.group_size)?;
    let params = ckpt.num_params();
    println!(
        "wrote {} ({} {}, {params} parameters, {}, {bytes} bytes)",
        args.out.display(),
        arch.name(),
        format!("{:?}", args.preset).to_lowercase(),
        args.dtype,
    );
    Ok(())
}

/// The paper's size `size` with VQ-16, random weights drawn on the host (no module is built).
fn official(args: &Args, size: &str) -> Result<()> {
    ensure!(
        args.arch == Arch::Arpg && !args.multi_scale && args.image_channels == 1,
        "--preset arpg-* takes no --arch, --multi-scale or --image-channels"
    );
    let ckpt = arpg_tools::import::random_official(size, args.seed).expect("a known size");
    let bytes = write_checkpoint(&args.out, &ckpt, args.dtype, args.group_size)?;
    println!(
        "wrote {} (ARPG-{size} with VQ-16's layout, random, {} parameters, {}, {bytes} bytes)",
        args.out.display(),
        ckpt.num_params(),
        args.dtype
    );
    Ok(())
}
