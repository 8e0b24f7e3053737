//! `arpg init`: write a randomly initialised checkpoint (for tests before a trained one exists).

use std::path::PathBuf;

use anyhow::{Result, anyhow, ensure};
use arpg::checkpoint::DType;
use arpg::choice::Choice;
use arpg::config::{Arch, ModelConfig, TokenizerConfig};
use arpg::engine::Engine;
use burn::tensor::Device;

use crate::args::{Preset, choice, write_file};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Network to build.
    #[arg(long, value_parser = choice::<Arch>(), default_value = Arch::Arpg.name())]
    pub arch: Arch,
    /// Model and tokenizer sizes.
    #[arg(long, value_enum, default_value_t = Preset::Tiny)]
    pub preset: Preset,
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

pub fn run(args: Args) -> Result<()> {
    let n_classes = arpg_tools::data::CLASS_NAMES.len();
    let (tok, model) = match args.preset {
        Preset::Tiny => {
            let tok = TokenizerConfig::tiny();
            let model = ModelConfig::tiny(tok.codebook_size, n_classes);
            (tok, model)
        }
        Preset::Test => {
            let tok = TokenizerConfig::test();
            let model = ModelConfig::test(tok.codebook_size, n_classes);
            (tok, model)
        }
    };
    let model = ModelConfig { multi_scale: args.multi_scale, ..model }.with_arch(args.arch);
    let tok = TokenizerConfig { image_channels: args.image_channels, ..tok };
    model.validate().map_err(|e| anyhow!("invalid model config: {e}"))?;
    tok.validate().map_err(|e| anyhow!("invalid tokenizer config: {e}"))?;
    ensure!(args.group_size >= 1, "--group-size must be at least 1");

    let arch = model.arch;
    let device = Device::flex();
    device.seed(args.seed);
    let engine = Engine::new(&model, &tok, &device);
    let mut ckpt = engine.to_checkpoint();
    ckpt.meta.dataset = "random-init".into();
    ckpt.meta.seed = args.seed;
    ckpt.meta.class_names = arpg_tools::data::CLASS_NAMES.iter().map(|s| s.to_string()).collect();
    let dtype = args.dtype;
    let bytes = ckpt.to_bytes(dtype, args.group_size)?;
    write_file(&args.out, &bytes)?;
    let params = ckpt.num_params();
    println!(
        "wrote {} ({} {}, {params} parameters, {}, {} bytes)",
        args.out.display(),
        arch.name(),
        format!("{:?}", args.preset).to_lowercase(),
        dtype,
        bytes.len()
    );
    Ok(())
}
