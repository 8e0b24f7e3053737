//! `arpg import`: the official ARPG generator and LlamaGen's VQ-16 tokenizer (`.pt` files) into
//! one checkpoint (see `arpg_tools::import`).

use std::path::PathBuf;

use anyhow::{Result, ensure};
use arpg::checkpoint::DType;
use arpg_tools::import::{self, Options};
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::write_checkpoint;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The official generator: arpg_300m.pt, arpg_700m.pt or arpg_1b.pt (hp-l33/ARPG).
    #[arg(long)]
    pub arpg: PathBuf,
    /// LlamaGen's tokenizer: vq_ds16_c2i.pt.
    #[arg(long)]
    pub vq: PathBuf,
    /// Checkpoint file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Store the weights as int8 with one scale per group (about 4x smaller).
    #[arg(long)]
    pub int8: bool,
    /// Weights per int8 scale (with --int8).
    #[arg(long, default_value_t = 64)]
    pub group_size: usize,
    /// Take the generator's exponential moving average (`ema`) instead of `model`.
    #[arg(long)]
    pub ema: bool,
    /// Attention heads [default: the width / 64, as in every official size].
    #[arg(long)]
    pub heads: Option<usize>,
}

pub fn run(args: Args) -> Result<()> {
    ensure!(args.group_size >= 1, "--group-size must be at least 1");
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "importing {bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
        )
        .expect("a valid template"),
    );
    let opts = Options { ema: args.ema, heads: args.heads };
    let ckpt = import::import(&args.arpg, &args.vq, &opts, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let ckpt = ckpt?;
    let dtype = if args.int8 { DType::Int8 } else { DType::F32 };
    let bytes = write_checkpoint(&args.out, &ckpt, dtype, args.group_size)?;
    let m = &ckpt.model;
    println!(
        "wrote {} (ARPG d_model {}, {} layers, {} classes, {}x{} tokens, VQGAN factor {}; {} parameters, {dtype}, {bytes} bytes)",
        args.out.display(),
        m.d_model,
        m.n_layers,
        m.n_classes,
        m.grid_h,
        m.grid_w,
        ckpt.tokenizer.factor(),
        ckpt.num_params(),
    );
    Ok(())
}
