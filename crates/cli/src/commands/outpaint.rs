//! `arpg outpaint`: extend an image by whole tokens on any side.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use arpg::choice::Choice;
use arpg::sampling::Task;
use arpg::tasks::Sides;

use crate::args::{
    self, Loaded, ModelArgs, RopeArgs, SampleArgs, class_label, on_step, provenance, resolve_class,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Image to extend (any PNG; read in the model's channels: grey or RGB).
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
    #[command(flatten)]
    pub rope: RopeArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sample: SampleArgs,
}

pub fn run(args: Args) -> Result<()> {
    let sides = Sides { left: args.left, right: args.right, top: args.top, bottom: args.bottom };
    ensure!(
        sides != Sides::default(),
        "nothing to outpaint: give --left, --right, --top and/or --bottom (in tokens)"
    );
    let loaded = args.model.load()?;
    let opts = loaded.options(&args.sample, Task::Outpaint)?;
    let Loaded { mut engine, arch, path, .. } = loaded;
    let image = args::read_png(&args.image, &engine.background())?;
    engine.rope_mode = args.rope.rope;
    let class = resolve_class(&args.class, &engine)?;
    let bar = args::step_bar("outpaint");
    let out = pollster::block_on(engine.outpaint(&image, sides, class, &opts, &mut on_step(&bar, 0, 1)))?;
    bar.finish_and_clear();
    let what = format!("outpaint {sides:?} class={} mode={}", class_label(class, &engine), arch.name());
    args::write_png(&args.out, &out, &provenance(what, &path, &opts))?;
    println!(
        "{}x{} -> {}x{}; wrote {}",
        image.width,
        image.height,
        out.width,
        out.height,
        args.out.display()
    );
    Ok(())
}
