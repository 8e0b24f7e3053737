//! `arpg soak`: many generations in a row in one process, watching the resident memory (RSS) for
//! a leak. One image per call (batch 1), a new class and seed each time, as a user would ask.
//!
//! The RSS is read from `/proc/self/status` (`VmRSS`) as it is, without trimming the heap first:
//! what a user's process really holds. The first generations grow it while the allocator and
//! burn's buffer pools warm up, so the growth is measured from the sample after `--warmup`
//! generations to the last one; above `--max-growth-mib` the command fails.

use std::time::Instant;

use anyhow::{Result, bail, ensure};
use arpg::decode::StepEvent;
use arpg::sampling::Task;
use arpg_tools::bench::proc_status_bytes;

use serde::Serialize;

use crate::args::{ModelArgs, SampleArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sample: SampleArgs,
    /// Generations, one image each.
    #[arg(long, default_value_t = 1000)]
    pub n: usize,
    /// Record the RSS after every this many generations.
    #[arg(long, default_value_t = 50)]
    pub every: usize,
    /// Generations before the reference sample (pools and allocator warm-up).
    #[arg(long, default_value_t = 50)]
    pub warmup: usize,
    /// Most RSS growth allowed from the reference sample to the last, in MiB.
    #[arg(long, default_value_t = 16.0)]
    pub max_growth_mib: f64,
    /// Print one JSON object on stdout (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// RSS after `done` generations, and the mean time of the generations since the previous sample.
#[derive(Serialize, Debug)]
struct Sample {
    done: usize,
    rss_bytes: u64,
    ms_per_image: f64,
}

#[derive(Serialize, Debug)]
struct Report {
    checkpoint: String,
    n: usize,
    steps: usize,
    warmup: usize,
    /// RSS before the first generation (model loaded).
    rss_loaded_bytes: u64,
    /// RSS at the reference sample (after `warmup` generations).
    rss_reference_bytes: u64,
    rss_end_bytes: u64,
    rss_max_bytes: u64,
    /// `rss_end_bytes - rss_reference_bytes` (negative when it shrank).
    growth_bytes: i64,
    max_growth_bytes: u64,
    flat: bool,
    seconds: f64,
    samples: Vec<Sample>,
}

fn rss() -> Result<u64> {
    match proc_status_bytes("VmRSS") {
        Some(b) => Ok(b),
        None => bail!("cannot read VmRSS from /proc/self/status (Linux only)"),
    }
}

pub fn run(args: Args) -> Result<()> {
    ensure!(args.n >= 1, "--n must be at least 1");
    ensure!(args.every >= 1, "--every must be at least 1");
    ensure!(args.warmup < args.n, "--warmup ({}) must be less than --n ({})", args.warmup, args.n);
    ensure!(
        args.max_growth_mib.is_finite() && args.max_growth_mib >= 0.0,
        "--max-growth-mib must be a finite number >= 0"
    );
    let loaded = args.model.load()?;
    let engine = &loaded.engine;
    let classes = engine.model_config().n_classes;
    let mut opts = loaded.options(&args.sample, Task::Generate)?;
    let seed = opts.seed;

    let rss_loaded = rss()?;
    let mut samples = vec![Sample { done: 0, rss_bytes: rss_loaded, ms_per_image: 0.0 }];
    let mut reference = None;
    let start = Instant::now();
    let mut since = Instant::now();
    let mut since_done = 0;
    for i in 0..args.n {
        opts.seed = seed.wrapping_add(i as u64);
        let images = pollster::block_on(engine.generate(&[i % classes], &opts, &mut |_: &StepEvent| {}))?;
        ensure!(images.len() == 1, "engine returned {} images for 1 class", images.len());
        let done = i + 1;
        if done == args.warmup || done % args.every == 0 || done == args.n {
            let ms = since.elapsed().as_secs_f64() * 1e3 / (done - since_done) as f64;
            let s = Sample { done, rss_bytes: rss()?, ms_per_image: ms };
            eprintln!("{:>6} generations  RSS {:>8.1} MiB  {:>7.1} ms/image", s.done, mib(s.rss_bytes), ms);
            if done == args.warmup {
                reference = Some(s.rss_bytes);
            }
            samples.push(s);
            (since, since_done) = (Instant::now(), done);
        }
    }
    let rss_reference = reference.unwrap_or(rss_loaded);
    let rss_end = samples.last().map_or(rss_loaded, |s| s.rss_bytes);
    let growth = rss_end as i64 - rss_reference as i64;
    let max_growth = (args.max_growth_mib * 1024.0 * 1024.0) as u64;
    let report = Report {
        checkpoint: loaded.path.display().to_string(),
        n: args.n,
        steps: opts.steps,
        warmup: args.warmup,
        rss_loaded_bytes: rss_loaded,
        rss_reference_bytes: rss_reference,
        rss_end_bytes: rss_end,
        rss_max_bytes: samples.iter().map(|s| s.rss_bytes).max().unwrap_or(rss_loaded),
        growth_bytes: growth,
        max_growth_bytes: max_growth,
        flat: growth <= max_growth as i64,
        seconds: start.elapsed().as_secs_f64(),
        samples,
    };
    eprintln!(
        "RSS: {:.1} MiB loaded, {:.1} after {} generations, {:.1} after {} (max {:.1}): growth {:+.2} MiB",
        mib(report.rss_loaded_bytes),
        mib(rss_reference),
        args.warmup,
        mib(rss_end),
        args.n,
        mib(report.rss_max_bytes),
        growth as f64 / (1024.0 * 1024.0)
    );
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    ensure!(
        report.flat,
        "RSS grew by {:.2} MiB from generation {} to {}, more than --max-growth-mib {}",
        growth as f64 / (1024.0 * 1024.0),
        args.warmup,
        args.n,
        args.max_growth_mib
    );
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
