//! `arpg generate`: sample images of one class (or of every class in turn).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use arpg::choice::Choice;
use arpg::image::grid;
use arpg::sampling::SampleOptions;

use crate::args::{
    self, Loaded, ModelArgs, SampleArgs, Task, class_label, on_step, provenance, resolve_class,
};

/// Images sampled together in one call of `Engine::generate`.
const BATCH: usize = 64;

/// Most images one `generate` may write (they are all held in memory for the grid).
const MAX_COUNT: usize = 100_000;

#[derive(clap::Args, Debug)]
pub struct Args {
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

pub fn run(args: Args) -> Result<()> {
    ensure!(args.count >= 1, "--count must be at least 1");
    ensure!(args.count <= MAX_COUNT, "--count must be at most {MAX_COUNT}, got {}", args.count);
    let loaded = args.model.load()?;
    let options = loaded.options(&args.sample, Task::Generate)?;
    let Loaded { engine, arch, path, .. } = loaded;
    let n = engine.model_config().n_classes;
    let classes: Vec<usize> = match &args.class {
        Some(c) => vec![resolve_class(c, &engine)?; args.count],
        None => (0..args.count).map(|i| i % n).collect(),
    };
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;

    let start = Instant::now();
    let bar = args::step_bar("generate");
    let calls = classes.len().div_ceil(BATCH);
    let mut images = Vec::with_capacity(classes.len());
    for (call, batch) in classes.chunks(BATCH).enumerate() {
        // Each batch gets its own seed so that batches never repeat each other.
        let opts = SampleOptions { seed: options.seed.wrapping_add(call as u64), ..options.clone() };
        let out = pollster::block_on(engine.generate(batch, &opts, &mut on_step(&bar, call, calls)))?;
        ensure!(out.len() == batch.len(), "engine returned {} images for {} classes", out.len(), batch.len());
        images.extend(out);
    }
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();

    let digits = (args.count - 1).to_string().len().max(2);
    for (i, (image, &class)) in images.iter().zip(&classes).enumerate() {
        let file = args.out_dir.join(format!("{class}-{i:0digits$}.png"));
        let what = format!("generate class={} mode={}", class_label(class, &engine), arch.name());
        args::write_png(&file, image, &provenance(what, &path, &options))?;
    }
    let cols = (images.len() as f64).sqrt().ceil() as usize;
    let sheet = grid(&images, cols, 2);
    let what = format!("grid of {} mode={}", images.len(), arch.name());
    args::write_png(&args.out_dir.join("grid.png"), &sheet, &provenance(what, &path, &options))?;
    println!(
        "wrote {} image{} and grid.png to {} in {secs:.2}s ({:.1} images/s)",
        images.len(),
        if images.len() == 1 { "" } else { "s" },
        args.out_dir.display(),
        images.len() as f64 / secs.max(1e-9)
    );
    Ok(())
}
