//! `arpg inpaint`: regenerate the parts of an image that are white in a mask.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use arpg::choice::Choice;
use arpg::image::MASK_THRESHOLD;
use arpg::sampling::Task;

use crate::args::{self, Loaded, ModelArgs, SampleArgs, class_label, on_step, provenance, resolve_class};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Image to edit (any PNG; read in the model's channels: grey or RGB).
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

pub fn run(args: Args) -> Result<()> {
    let loaded = args.model.load()?;
    let opts = loaded.options(&args.sample, Task::Inpaint)?;
    let Loaded { engine, arch, path, .. } = loaded;
    let image = args::read_png(&args.image, &engine.background())?;
    // A mask is grey: white (>= 128) = regenerate; transparency counts as black (keep).
    let mask = args::read_png(&args.mask, &[0])?;
    ensure!(
        (mask.width, mask.height) == (image.width, image.height),
        "the mask is {}x{} but the image is {}x{}; they must be the same size",
        mask.width,
        mask.height,
        image.width,
        image.height
    );
    ensure!(
        mask.pixels.iter().any(|&p| p >= MASK_THRESHOLD),
        "nothing to regenerate: the mask has no white pixels (white = regenerate)"
    );
    let class = resolve_class(&args.class, &engine)?;
    let bar = args::step_bar("inpaint");
    let out = pollster::block_on(engine.inpaint(&image, &mask, class, &opts, &mut on_step(&bar, 0, 1)))?;
    bar.finish_and_clear();
    let what = format!("inpaint class={} mode={}", class_label(class, &engine), arch.name());
    args::write_png(&args.out, &out, &provenance(what, &path, &opts))?;
    println!("wrote {}x{} image to {}", out.width, out.height, args.out.display());
    Ok(())
}
