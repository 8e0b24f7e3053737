//! `arpg expand`: grow an image (or a fresh sample) to a larger canvas, filling the new tokens.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use arpg::choice::Choice;
use arpg::sampling::Task;

use crate::args::{
    self, Loaded, ModelArgs, RopeArgs, SampleArgs, class_label, on_step, provenance, resolve_class,
};

#[derive(clap::Args, Debug)]
pub struct Args {
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
    #[command(flatten)]
    pub rope: RopeArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sample: SampleArgs,
}

pub fn run(args: Args) -> Result<()> {
    ensure!(args.factor >= 2, "--factor must be at least 2");
    let loaded = args.model.load()?;
    let opts = loaded.options(&args.sample, Task::Expand)?;
    let Loaded { mut engine, arch, path, .. } = loaded;
    let image = args.image.as_deref().map(|p| args::read_png(p, &engine.background())).transpose()?;
    engine.rope_mode = args.rope.rope;
    let class = resolve_class(&args.class, &engine)?;
    let bar = args::step_bar("expand");
    let mut on_step = on_step(&bar, 0, 1);
    let out = pollster::block_on(engine.expand(image.as_ref(), args.factor, class, &opts, &mut on_step))?;
    bar.finish_and_clear();
    let what = format!("expand x{} class={} mode={}", args.factor, class_label(class, &engine), arch.name());
    args::write_png(&args.out, &out, &provenance(what, &path, &opts))?;
    println!("wrote {}x{} image to {}", out.width, out.height, args.out.display());
    Ok(())
}
