//! `arpg quantize`: convert a checkpoint to int8 with per-group scales and report the error;
//! optionally record the model's sampling defaults (format v2 whatever version was read).

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, ensure};
use arpg::checkpoint::{Checkpoint, DType, quantization_error};
use arpg::sampling::SampleDefaults;

use crate::args::{read_file, write_file};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint to read (f32 or int8).
    pub input: PathBuf,
    /// Int8 checkpoint to write.
    pub output: PathBuf,
    /// Weights that share one scale.
    #[arg(long, default_value_t = 64)]
    pub group_size: usize,
    /// The model's sampling defaults, a JSON file: {"steps", "cfg", "cfg_schedule", "schedule",
    /// "temperature", "step_rule", "tasks": {"inpaint" | "outpaint" | "expand": {"cfg",
    /// "cfg_schedule", "temperature"}}} (`tasks` and its keys optional) [default: the input's].
    #[arg(long)]
    pub sampling: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let (input, output, group_size) = (&args.input, &args.output, args.group_size);
    ensure!(group_size >= 1, "--group-size must be at least 1");
    let in_bytes = read_file(input)?;
    let mut ckpt =
        Checkpoint::from_bytes(&in_bytes).with_context(|| format!("cannot load {}", input.display()))?;
    if let Some(path) = &args.sampling {
        let text = read_file(path)?;
        let defaults: SampleDefaults =
            serde_json::from_slice(&text).with_context(|| format!("cannot parse {}", path.display()))?;
        defaults.validate().map_err(|e| anyhow!("{}: {e}", path.display()))?;
        ckpt.sampling = Some(defaults);
    }
    let out_bytes = ckpt.to_bytes(DType::Int8, group_size)?;
    let back = Checkpoint::from_bytes(&out_bytes).context("the int8 checkpoint does not load back")?;

    for t in &ckpt.tensors {
        let q =
            back.tensor(&t.name).ok_or_else(|| anyhow!("tensor {} is missing after quantization", t.name))?;
        ensure!(q.data.len() == t.data.len(), "tensor {} changed size when quantized", t.name);
    }
    let (max_err, mean_err) = quantization_error(&ckpt, &back);
    write_file(output, &out_bytes)?;
    println!("wrote {} (int8, group size {group_size})", output.display());
    println!(
        "size        {} -> {} bytes, ratio {:.3} ({:.2}x smaller)",
        in_bytes.len(),
        out_bytes.len(),
        out_bytes.len() as f64 / in_bytes.len().max(1) as f64,
        in_bytes.len() as f64 / out_bytes.len().max(1) as f64
    );
    println!("abs error   max {max_err:.3e}, mean {mean_err:.3e} over {} weights", ckpt.num_params());
    Ok(())
}
