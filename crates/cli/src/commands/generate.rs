//! `arpg generate`: sample images of one class (or of every class in turn).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use arpg::choice::Choice;
use arpg::decode::Plan;
use arpg::image::grid;
use arpg::sampling::{Order, SampleOptions, Task};

use crate::args::{self, Loaded, ModelArgs, SampleArgs, class_label, on_step, provenance, resolve_class};
use crate::codes::{Codes, read_order};

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
    /// Decode the cells in this order (`{"order": [raster indices]}`, shared by every image)
    /// instead of a random one.
    #[arg(long)]
    pub order_file: Option<PathBuf>,
    /// Also write the tokens: `{"images": [{"width", "height", "codes": [raster order]}]}`.
    #[arg(long)]
    pub codes_out: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sample: SampleArgs,
}

pub fn run(args: Args) -> Result<()> {
    ensure!(args.count >= 1, "--count must be at least 1");
    ensure!(args.count <= MAX_COUNT, "--count must be at most {MAX_COUNT}, got {}", args.count);
    let loaded = args.model.load()?;
    let mut options = loaded.options(&args.sample, Task::Generate)?;
    let Loaded { engine, arch, path, .. } = loaded;
    let c = engine.model_config();
    let mut plan = Plan::full(c.grid_h, c.grid_w);
    if let Some(file) = &args.order_file {
        plan.phases = vec![read_order(file, plan.cells())?];
        options.order = Order::Listed;
    }
    let n = c.n_classes;
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
    let mut tokens = Vec::with_capacity(classes.len());
    for (call, batch) in classes.chunks(BATCH).enumerate() {
        // Each batch gets its own seed so that batches never repeat each other.
        let opts = SampleOptions { seed: options.seed.wrapping_add(call as u64), ..options.clone() };
        let sampled =
            pollster::block_on(engine.sample(batch, &plan, &opts, &mut on_step(&bar, call, calls)))?;
        let out = pollster::block_on(engine.decode(&sampled.tokens, plan.grid_h, plan.grid_w))?;
        ensure!(out.len() == batch.len(), "engine returned {} images for {} classes", out.len(), batch.len());
        images.extend(out);
        tokens.extend(sampled.tokens);
    }
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();

    let digits = (args.count - 1).to_string().len().max(2);
    for (i, (image, &class)) in images.iter().zip(&classes).enumerate() {
        let file = args.out_dir.join(format!("{class}-{i:0digits$}.png"));
        let what = format!("generate class={} mode={}", class_label(class, &engine), arch.name());
        args::write_png(&file, image, &provenance(what, &path, &options))?;
    }
    if let Some(file) = &args.codes_out {
        let (width, height) = (plan.grid_w, plan.grid_h);
        let images: Vec<Codes> = tokens.into_iter().map(|codes| Codes { width, height, codes }).collect();
        args::write_file(file, &serde_json::to_vec(&serde_json::json!({ "images": images }))?)?;
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
