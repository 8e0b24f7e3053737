//! `arpg bench`: speed, memory and FLOPs of ARPG and the baselines on one checkpoint. The
//! measuring is `arpg_tools::bench`; this parses the flags and prints a table or one JSON object.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use arpg::checkpoint::Checkpoint;
use arpg::config::Arch;
use arpg::sampling::{self, Task};
use arpg_tools::bench::{self, BenchOptions, Report, Row};
use burn::tensor::Device;

use crate::args::{DecodeArgs, choice, resolve_checkpoint};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint file, or the id of one of the web app's models (`fmnist`, `emoji`); the baselines
    /// are built from the same weights (renamed), or seeded random ones where that is impossible.
    #[arg(long, default_value = "www/models/arpg-fmnist-int8.arpg")]
    pub checkpoint: PathBuf,
    /// ARPG and MaskGIT step counts, comma-separated (the --compare-steps count is always added).
    #[arg(long, value_delimiter = ',', default_value = "4,8,16,32,64")]
    pub steps: Vec<usize>,
    /// Step count at which ARPG, ARPG without shared KV and MaskGIT are compared.
    #[arg(long, default_value_t = 8)]
    pub compare_steps: usize,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub batch: Vec<usize>,
    /// Timed runs per configuration; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Untimed warm-up runs per configuration.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Sampling options; with guidance on (--cfg above 1) every batch runs doubled. The seed is
    /// the first timed run's (each run adds 1).
    #[command(flatten)]
    pub decode: DecodeArgs,
    /// Side of the square f32 matmul that measures the machine's peak GFLOP/s.
    #[arg(long, default_value_t = 1024)]
    pub matmul_n: usize,
    /// Baselines not to measure, comma-separated (arpg-no-shared-kv, raster, maskgit): at the
    /// paper's size MaskGIT alone takes minutes an image, and each baseline holds a copy of the
    /// weights.
    #[arg(long, value_delimiter = ',', value_parser = choice::<Arch>())]
    pub skip: Vec<Arch>,
    /// Print one JSON object on stdout (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    ensure!(args.runs >= 1, "--runs must be at least 1");
    ensure!(!args.batch.is_empty() && args.batch.iter().all(|&b| b >= 1), "--batch sizes must be >= 1");
    ensure!(args.steps.iter().all(|&s| s >= 1) && args.compare_steps >= 1, "--steps must be >= 1");
    ensure!((1..=8192).contains(&args.matmul_n), "--matmul-n must be in 1..=8192");
    let path = resolve_checkpoint(&args.checkpoint)?;
    let file = fs::File::open(&path).with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    // A tensor at a time: the file's bytes are never held beside the weights.
    let (ckpt, sha256) =
        Checkpoint::read_from(file).with_context(|| format!("cannot load checkpoint {}", path.display()))?;
    let defaults = sampling::defaults(ckpt.sampling.as_ref(), Task::Generate);
    let sample = args.decode.options(args.compare_steps, &defaults)?;
    let opts = BenchOptions {
        steps: args.steps.clone(),
        compare_steps: args.compare_steps,
        batches: args.batch.clone(),
        runs: args.runs,
        warmup: args.warmup,
        sample,
        matmul_n: args.matmul_n,
        skip: args.skip.clone(),
    };
    eprintln!("{}", header());
    let report = bench::run(&ckpt, &opts, &Device::flex(), &mut |row| eprintln!("{}", line(row)))?;
    let table = table(&report, &path.display().to_string());
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["checkpoint"] = path.display().to_string().into();
        value["sha256"] = sha256.into();
        eprint!("{table}");
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &value)?;
        writeln!(out)?;
    } else {
        print!("{table}");
    }
    Ok(())
}

fn header() -> String {
    format!(
        "{:<18} {:>5} {:>5} {:>10} {:>9} {:>10} {:>10} {:>8} {:>6} {:>10} {:>9} {:>9}",
        "method",
        "steps",
        "batch",
        "ms/image",
        "images/s",
        "cpu ms/img",
        "MFLOP/img",
        "GFLOP/s",
        "%peak",
        "KV bytes",
        "peak MiB",
        "+RSS MiB"
    )
}

fn line(r: &Row) -> String {
    let mib = |b: Option<u64>| b.map_or("-".to_string(), |b| format!("{:.1}", b as f64 / 1048576.0));
    format!(
        "{:<18} {:>5} {:>5} {:>10.3} {:>9.1} {:>10} {:>10.2} {:>8.2} {:>6.2} {:>10} {:>9} {:>9}",
        r.method,
        r.steps,
        r.batch,
        r.ms_per_image,
        r.images_per_s,
        r.cpu_ms_per_image.map_or("-".to_string(), |c| format!("{c:.3}")),
        r.flops_per_image / 1e6,
        r.gflops,
        100.0 * r.peak_fraction,
        r.kv_bytes,
        mib(r.peak_rss_bytes),
        mib(r.rss_delta_bytes)
    )
}

fn table(r: &Report, checkpoint: &str) -> String {
    let mut s = String::new();
    let m = &r.model;
    s.push_str(&format!(
        "checkpoint {checkpoint}: d_model {}, {} layers, {} tokens, vocab {}; {} threads; CFG {}; \
         median of {} runs after {} warm-up\n",
        m.d_model,
        m.n_layers,
        m.seq_len(),
        m.vocab_size,
        r.threads,
        r.cfg,
        r.runs,
        r.warmup
    ));
    for w in &r.weights {
        s.push_str(&format!("weights    {:<18} {:>9} params, {}\n", w.method, w.params, w.source));
    }
    s.push_str(&format!(
        "matmul     {0}x{0} f32: {1:.1} GFLOP/s (the peak below)\n\n",
        r.matmul_n, r.matmul_gflops
    ));
    s.push_str(&header());
    s.push('\n');
    for row in &r.rows {
        s.push_str(&line(row));
        s.push('\n');
    }
    s.push('\n');
    for d in &r.vq_decode {
        s.push_str(&format!(
            "vq decode  batch {:>3}: {:.3} ms/image (not in the rows)\n",
            d.batch, d.ms_per_image
        ));
    }
    let ratio = |x: Option<f64>| x.map_or("skipped".to_string(), |x| format!("{x:.2}x"));
    s.push_str(&format!(
        "speedup    ARPG {} steps vs raster AR ({} steps): {}; vs MaskGIT {} steps: {} (batch {})\n",
        r.compare_steps,
        m.seq_len(),
        ratio(r.speedup_vs_raster),
        r.compare_steps,
        ratio(r.speedup_vs_maskgit),
        r.speedup_batch
    ));
    if let (Some(raster), Some(maskgit)) = (r.speedup_vs_raster_cpu, r.speedup_vs_maskgit_cpu) {
        s.push_str(&format!(
            "           by CPU time instead: {raster:.2}x vs raster AR, {maskgit:.2}x vs MaskGIT\n"
        ));
    }
    s.push_str(&format!(
        "KV cache   one sequence of {} slots, f32: shared {} B, per-layer {} B (ratio {:.3}), raster {} B\n",
        m.seq_len(),
        r.kv_bytes_shared,
        r.kv_bytes_per_layer,
        r.kv_ratio,
        r.kv_bytes_raster
    ));
    s.push_str(&format!(
        "peak       ARPG {} steps at batch {} reaches {:.1}% of the matmul peak\n",
        r.compare_steps,
        r.peak_fraction_batch,
        100.0 * r.peak_fraction
    ));
    s.push_str("cpu        cpu ms/img = CPU time of all the process's threads per image (wall time counts waits for\n           cores that other processes hold; CPU time does not)\n");
    s.push_str(&format!(
        "memory     peak = RSS high-water mark per configuration ({}); +RSS = peak minus RSS before it\n",
        if r.rss_reset { "reset before each" } else { "NOT reset: process peak so far" }
    ));
    for n in &r.notes {
        s.push_str(&format!("note       {n}\n"));
    }
    s
}
