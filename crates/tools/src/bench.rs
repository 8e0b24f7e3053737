//! Speed, memory and FLOP measurements of the four decoders on one checkpoint (native only: it
//! reads the wall clock and `/proc/self/status`). The CLI's `arpg bench` is a thin shell over
//! [`run`].
//!
//! - **Same weights.** The four architectures share one `ModelConfig` (only `arch` differs), and
//!   their parameter names differ only in layout, so the checkpoint's tensors are renamed into
//!   each of them ([`derive_weights`]): ARPG's pass-1 blocks become the first half of a
//!   baseline's stack, its pass-2 blocks the second half, and the shared K/V projection stands in
//!   for each pass-2 layer's own K/V (in the baselines and in the no-shared-KV ablation). The
//!   derived baselines generate nonsense, but they do exactly the work a trained one would.
//!   Where a tensor cannot be derived, that decoder gets seeded random weights instead, and the
//!   report says so (speed does not depend on the values).
//! - **Timing.** Warm-up runs are excluded; each configuration is timed `runs` times with distinct
//!   inputs (seed and classes change every run) and the median is reported. Only token sampling
//!   is timed; the VQ decoder, the same for every method, is timed on its own.
//! - **Memory.** Before each configuration freed heap memory goes back to the system (glibc's
//!   `malloc_trim`) and the RSS high-water mark is reset (`5` written to `/proc/self/clear_refs`,
//!   Linux >= 4.0); the peak is `VmHWM` after it, the delta is that peak minus `VmRSS` before it. Where the reset is refused, configurations still run in order
//!   of increasing batch, so a new high-water mark is mostly the newest one's.
//! - **FLOPs** are counted analytically ([`flops_per_image`]): the matmuls of attention
//!   projections, attention scores and values, SwiGLU and the head, 2 per multiply-add, for every
//!   token fed and every query (CFG doubles the rows). Norms, RoPE, softmax and sampling are left
//!   out, so it is an estimate, slightly low.

use std::time::Instant;

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Serialize;

use arpg::baselines::{sample_maskgit, sample_raster};
use arpg::checkpoint::{Checkpoint, NamedTensor};
use arpg::choice::Choice;
use arpg::config::{Arch, ModelConfig};
use arpg::decode::{Plan, sample_arpg};
use arpg::engine::Generator;
use arpg::error::Error;
use arpg::kv_cache::KvCache;
use arpg::rng::Rng;
use arpg::sampling::{SampleOptions, Schedule};
use arpg::tokenizer::Tokenizer;
use arpg::weights;

/// What to measure.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchOptions {
    /// ARPG step counts (those above the number of tokens are skipped).
    pub steps: Vec<usize>,
    /// The step count ARPG, ARPG without shared KV and MaskGIT are compared at (always measured).
    pub compare_steps: usize,
    pub batches: Vec<usize>,
    /// Timed runs per configuration (the median is reported).
    pub runs: usize,
    /// Untimed runs before them.
    pub warmup: usize,
    /// Sampling options; `steps` and `seed` are set per run (run `r` uses `seed + r`).
    pub sample: SampleOptions,
    /// Side of the square f32 matmul that measures the machine's peak.
    pub matmul_n: usize,
    /// Baselines not measured (nor built: at the paper's size each holds a copy of the weights).
    /// ARPG always is.
    pub skip: Vec<Arch>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            steps: vec![4, 8, 16, 32, 64],
            compare_steps: 8,
            batches: vec![1, 16],
            runs: 5,
            warmup: 1,
            sample: SampleOptions::default(),
            matmul_n: 1024,
            skip: vec![],
        }
    }
}

/// One decoder at one step count and batch size.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// `arpg`, `arpg-no-shared-kv`, `raster` or `maskgit`.
    pub method: String,
    pub steps: usize,
    pub batch: usize,
    pub runs: usize,
    /// Median wall time of one batch, divided by the batch size.
    pub ms_per_image: f64,
    pub images_per_s: f64,
    pub ms_per_batch_median: f64,
    pub ms_per_batch_min: f64,
    pub ms_per_batch_max: f64,
    /// Median CPU time of one batch (all threads of the process), divided by the batch size: less
    /// sensitive than wall time to other processes sharing the cores.
    pub cpu_ms_per_image: Option<f64>,
    /// Analytic estimate (see the module docs), CFG rows included.
    pub flops_per_image: f64,
    /// `flops_per_image * images_per_s`.
    pub gflops: f64,
    /// `gflops` over the measured matmul peak.
    pub peak_fraction: f64,
    /// K/V bytes held at the end of one batch (f32, CFG rows included), as measured.
    pub kv_bytes: usize,
    /// RSS high-water mark over this configuration (see the module docs).
    pub peak_rss_bytes: Option<u64>,
    /// `peak_rss_bytes` minus the RSS just before this configuration.
    pub rss_delta_bytes: Option<u64>,
}

/// Where one decoder's weights came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WeightsInfo {
    pub method: String,
    pub params: usize,
    /// `checkpoint`, `derived from the <arch> checkpoint` or `seeded random`.
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DecodeTime {
    pub batch: usize,
    pub ms_per_image: f64,
}

/// Everything `arpg bench` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub model: ModelConfig,
    pub threads: usize,
    pub cfg: f32,
    pub runs: usize,
    pub warmup: usize,
    pub compare_steps: usize,
    pub weights: Vec<WeightsInfo>,
    pub matmul_n: usize,
    /// Median GFLOP/s of an `n x n` by `n x n` f32 matmul on the same device.
    pub matmul_gflops: f64,
    /// Whether the RSS high-water mark could be reset between configurations.
    pub rss_reset: bool,
    pub rows: Vec<Row>,
    /// Batch size the two speedups are measured at (1 if measured, else the smallest).
    pub speedup_batch: usize,
    /// Raster AR ms/image over ARPG's at `compare_steps` (`None`: raster AR was skipped).
    pub speedup_vs_raster: Option<f64>,
    /// MaskGIT ms/image over ARPG's, both at `compare_steps` (`None`: skipped).
    pub speedup_vs_maskgit: Option<f64>,
    /// The two speedups from CPU time instead of wall time.
    pub speedup_vs_raster_cpu: Option<f64>,
    pub speedup_vs_maskgit_cpu: Option<f64>,
    /// K/V bytes of one full sequence (T slots, one row, f32): pass-1 layers + ONE shared K/V.
    pub kv_bytes_shared: usize,
    /// The same with one K/V per pass-2 layer (the no-shared-KV ablation).
    pub kv_bytes_per_layer: usize,
    /// The same for raster AR (one K/V per layer).
    pub kv_bytes_raster: usize,
    /// `kv_bytes_shared / kv_bytes_per_layer` = (N/2 + 1) / N.
    pub kv_ratio: f64,
    /// ARPG at `compare_steps` and the largest batch: its share of the matmul peak.
    pub peak_fraction: f64,
    pub peak_fraction_batch: usize,
    /// The VQ decoder (not part of the rows' timings).
    pub vq_decode: Vec<DecodeTime>,
    pub notes: Vec<String>,
}

/// Bytes from a `/proc/self/status` line such as `VmHWM:  1234 kB`.
pub fn proc_status_bytes(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].trim_start_matches(':').split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time of every thread of this process so far, in seconds (the first field of each
/// `/proc/self/task/*/schedstat`, nanoseconds on the CPU); `None` where unavailable.
pub fn process_cpu_seconds() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

/// Reset the RSS high-water mark (Linux >= 4.0); false where refused. Freed heap pages go back
/// to the system first (glibc keeps them otherwise), so that the RSS before a configuration is
/// what is live, and its delta is what that configuration adds.
fn reset_hwm() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            /// glibc: release free memory at the top of the heap and in free chunks.
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only returns free memory to the system; it takes no pointers.
        unsafe { malloc_trim(0) };
    }
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A name without the `model.` prefix, in a layout common to every architecture.
enum Canonical<'a> {
    /// `embed`, `out_norm`, `head`, `content_norm` and their parameters.
    Top(&'a str),
    /// ARPG's shared K/V projection: `k.weight` / `v.weight`.
    SharedKv(&'a str),
    /// Layer `i` of `n_layers` (ARPG: pass 1, then pass 2), parameter path inside the block.
    Layer(usize, &'a str),
}

fn is_stack(arch: Arch) -> bool {
    matches!(arch, Arch::Raster | Arch::MaskGit)
}

fn split_index(s: &str) -> Option<(usize, &str)> {
    let (i, rest) = s.split_once('.')?;
    Some((i.parse().ok()?, rest))
}

fn canonical<'a>(name: &'a str, arch: Arch, n_content: usize) -> Option<Canonical<'a>> {
    if is_stack(arch) {
        let rest = name.strip_prefix("stack.")?;
        return Some(match rest.strip_prefix("blocks.") {
            Some(b) => {
                let (i, p) = split_index(b)?;
                Canonical::Layer(i, p)
            }
            None => Canonical::Top(rest),
        });
    }
    if let Some(b) = name.strip_prefix("content.") {
        let (i, p) = split_index(b)?;
        Some(Canonical::Layer(i, p))
    } else if let Some(b) = name.strip_prefix("queries.") {
        let (j, p) = split_index(b)?;
        Some(Canonical::Layer(n_content + j, p.strip_prefix("own_kv.").unwrap_or(p)))
    } else if let Some(p) = name.strip_prefix("shared_kv.") {
        Some(Canonical::SharedKv(p))
    } else {
        Some(Canonical::Top(name))
    }
}

fn source_name(c: Canonical, arch: Arch, n_content: usize) -> String {
    let is_kv = |p: &str| p.starts_with("k.") || p.starts_with("v.");
    match (c, is_stack(arch)) {
        (Canonical::Top(p), true) => format!("stack.{p}"),
        (Canonical::Top(p), false) => p.to_string(),
        (Canonical::SharedKv(p), true) => format!("stack.blocks.{n_content}.{p}"),
        (Canonical::SharedKv(p), false) if arch == Arch::ArpgNoSharedKv => format!("queries.0.own_kv.{p}"),
        (Canonical::SharedKv(p), false) => format!("shared_kv.{p}"),
        (Canonical::Layer(i, p), true) => format!("stack.blocks.{i}.{p}"),
        (Canonical::Layer(i, p), false) if i < n_content => format!("content.{i}.{p}"),
        (Canonical::Layer(_, p), false) if is_kv(p) && arch == Arch::Arpg => format!("shared_kv.{p}"),
        (Canonical::Layer(i, p), false) if is_kv(p) => format!("queries.{}.own_kv.{p}", i - n_content),
        (Canonical::Layer(i, p), false) => format!("queries.{}.{p}", i - n_content),
    }
}

fn export_generator(g: &Generator) -> Vec<NamedTensor> {
    match g {
        Generator::Arpg(m) => weights::export(m, "model"),
        Generator::Raster(m) => weights::export(m, "model"),
        Generator::MaskGit(m) => weights::export(m, "model"),
    }
}

fn import_generator(g: Generator, tensors: &mut [NamedTensor], device: &Device) -> Result<Generator, Error> {
    Ok(match g {
        Generator::Arpg(m) => Generator::Arpg(weights::import(m, tensors, "model", device)?),
        Generator::Raster(m) => Generator::Raster(weights::import(m, tensors, "model", device)?),
        Generator::MaskGit(m) => Generator::MaskGit(weights::import(m, tensors, "model", device)?),
    })
}

/// The generator tensors (`model.*`) of a `from` checkpoint renamed into architecture `to` of the
/// same config, or `None` if some matrix has no counterpart. `fresh` lists the target's tensors
/// (names and shapes); a missing 1-D tensor (a norm gain: `content_norm` when deriving ARPG from
/// a baseline) keeps its fresh value.
pub fn derive_weights(
    source: &[NamedTensor],
    from: Arch,
    to: Arch,
    config: &ModelConfig,
    fresh: &[NamedTensor],
) -> Option<Vec<NamedTensor>> {
    let (n_content, _) = config.arpg_split();
    fresh
        .iter()
        .map(|t| {
            let name = t.name.strip_prefix("model.")?;
            let wanted = format!("model.{}", source_name(canonical(name, to, n_content)?, from, n_content));
            match source.iter().find(|s| s.name == wanted && s.shape == t.shape) {
                Some(s) => Some(NamedTensor { name: t.name.clone(), ..s.clone() }),
                None if t.shape.len() == 1 => Some(t.clone()),
                None => None,
            }
        })
        .collect()
}

/// Every matrix of `tensors` filled with Kaiming-uniform values from `seed` (gains untouched).
fn seeded_random(mut tensors: Vec<NamedTensor>, seed: u64) -> Vec<NamedTensor> {
    let mut rng = Rng::new(seed);
    for t in tensors.iter_mut().filter(|t| t.shape.len() >= 2) {
        let fan_in: usize = t.shape[1..].iter().product::<usize>().max(1);
        let bound = (6.0 / fan_in as f64).sqrt();
        t.data.iter_mut().for_each(|x| *x = ((rng.next_f64() * 2.0 - 1.0) * bound) as f32);
    }
    tensors
}

/// The checkpoint's generator as architecture `arch` (same config), with where its weights came
/// from.
pub fn build_generator(ckpt: &Checkpoint, arch: Arch, device: &Device) -> Result<(Generator, String), Error> {
    let config = ckpt.model.clone().with_arch(arch);
    let fresh = Generator::new(&config, device);
    let names = export_generator(&fresh);
    let from = ckpt.model.arch;
    if let Some(mut tensors) = derive_weights(&ckpt.tensors, from, arch, &config, &names)
        && let Ok(g) = import_generator(Generator::new(&config, device), &mut tensors, device)
    {
        let source = if from == arch {
            "checkpoint".to_string()
        } else {
            format!("derived from the {} checkpoint", from.name())
        };
        return Ok((g, source));
    }
    let g = import_generator(fresh, &mut seeded_random(names, 0x5EED + arch.id() as u64), device)?;
    Ok((g, "seeded random".to_string()))
}

/// Analytic FLOPs to sample one image (see the module docs). `guided` doubles the rows.
pub fn flops_per_image(
    config: &ModelConfig,
    arch: Arch,
    steps: usize,
    schedule: Schedule,
    guided: bool,
) -> f64 {
    let (d, hidden, vocab, t) =
        (config.d_model as f64, config.mlp_hidden as f64, config.vocab_size as f64, config.seq_len());
    let (n_content, n_query) = config.arpg_split();
    let (nc, nq, nl) = (n_content as f64, n_query as f64, config.n_layers as f64);
    let mlp = 6.0 * d * hidden;
    // One token through a self-attention block that sees `keys` keys: q, k, v, o, scores, values, MLP.
    let block = |keys: f64| 8.0 * d * d + 4.0 * d * keys + mlp;
    // One query through a pass-2 block: q, o, scores, values, MLP.
    let query_block = |keys: f64| 4.0 * d * d + 4.0 * d * keys + mlp;
    let head = 2.0 * d * vocab;
    let flops = match arch {
        Arch::Arpg | Arch::ArpgNoSharedKv => {
            let kv_projs = if arch == Arch::Arpg { 1.0 } else { nq };
            let feed = |n: f64, keys: f64| n * (nc * block(keys) + kv_projs * 4.0 * d * d);
            let sizes = schedule.step_sizes(t, steps);
            let mut total = feed(1.0, 1.0);
            let mut cached = 1.0; // the class token
            for (s, &k) in sizes.iter().enumerate() {
                let k = k as f64;
                total += k * (nq * query_block(cached) + head);
                if s + 1 < sizes.len() {
                    total += feed(k, cached + k);
                    cached += k;
                }
            }
            total
        }
        Arch::Raster => (0..t).map(|p| nl * block((p + 1) as f64) + head).sum(),
        Arch::MaskGit => {
            let slots = (t + 1) as f64;
            steps as f64 * slots * (nl * block(slots) + head)
        }
    };
    if guided { 2.0 * flops } else { flops }
}

/// Median GFLOP/s of an `n x n` by `n x n` f32 matmul on `device` (one warm-up, then `runs`).
pub fn matmul_gflops(n: usize, runs: usize, device: &Device) -> f64 {
    let mut rng = Rng::new(7);
    let mut matrix = || {
        let values: Vec<f32> = (0..n * n).map(|_| rng.next_f64() as f32 - 0.5).collect();
        Tensor::<2>::from_data(TensorData::new(values, [n, n]), device)
    };
    let (a, b) = (matrix(), matrix());
    let mut times = Vec::new();
    for i in 0..runs.max(1) + 1 {
        let start = Instant::now();
        let c = a.clone().matmul(b.clone());
        let _ = c.slice([0..1, 0..1]).into_data(); // wait for it, read back one value
        if i > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    2.0 * (n as f64).powi(3) / median(&mut times) / 1e9
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// One sampling call of `g` (tokens only); returns the K/V bytes held at the end.
fn sample_once(g: &Generator, classes: &[usize], opts: &SampleOptions) -> Result<usize, Error> {
    let noop = &mut |_: &arpg::decode::StepEvent| {};
    let c = g.config();
    let sampled = match g {
        Generator::Arpg(m) => {
            pollster::block_on(sample_arpg(m, classes, &Plan::full(c.grid_h, c.grid_w), opts, noop))
        }
        Generator::Raster(m) => pollster::block_on(sample_raster(m, classes, opts, noop)),
        Generator::MaskGit(m) => pollster::block_on(sample_maskgit(m, classes, opts, noop)),
    }?;
    Ok(sampled.kv_bytes)
}

/// Classes for run `run` at batch `b`: a different set every run.
fn classes_for(run: usize, b: usize, n_classes: usize) -> Vec<usize> {
    (0..b).map(|i| (run * b + run + i) % n_classes).collect()
}

/// Wall and CPU seconds of each timed call.
struct Timings {
    wall: Vec<f64>,
    cpu: Option<Vec<f64>>,
}

impl Timings {
    /// Median wall, min wall, max wall, median CPU.
    fn summary(&self) -> (f64, f64, f64, Option<f64>) {
        let mut wall = self.wall.clone();
        let med = median(&mut wall);
        let cpu = self.cpu.clone().map(|mut c| median(&mut c));
        (med, wall[0], wall[wall.len() - 1], cpu)
    }
}

/// Time `runs` calls of `call(run)` after `warmup` untimed ones.
fn time_runs(
    warmup: usize,
    runs: usize,
    mut call: impl FnMut(usize) -> Result<(), Error>,
) -> Result<Timings, Error> {
    for w in 0..warmup {
        call(runs + w)?; // warm-up inputs differ from the timed ones
    }
    let mut t = Timings { wall: vec![], cpu: Some(vec![]) };
    for r in 0..runs.max(1) {
        let cpu = process_cpu_seconds();
        let start = Instant::now();
        call(r)?;
        t.wall.push(start.elapsed().as_secs_f64());
        t.cpu = match (t.cpu.take(), cpu, process_cpu_seconds()) {
            (Some(mut v), Some(a), Some(b)) => {
                v.push(b - a);
                Some(v)
            }
            _ => None,
        };
    }
    Ok(t)
}

/// Measure everything in `opts` on checkpoint `ckpt`. `progress` sees each row as it is done.
pub fn run(
    ckpt: &Checkpoint,
    opts: &BenchOptions,
    device: &Device,
    progress: &mut dyn FnMut(&Row),
) -> Result<Report, Error> {
    let config = ckpt.model.clone();
    config.validate().map_err(Error::Options)?;
    let t = config.seq_len();
    let compare = opts.compare_steps.clamp(1, t);
    let Cases { steps, batches, mut notes } = cases(opts, t, compare)?;
    if opts.skip.contains(&Arch::Arpg) {
        return Err(Error::Options("the bench always measures ARPG (skip only baselines)".into()));
    }
    let methods: Vec<Arch> = [Arch::Arpg, Arch::ArpgNoSharedKv, Arch::Raster, Arch::MaskGit]
        .into_iter()
        .filter(|arch| !opts.skip.contains(arch))
        .collect();
    let mut generators = Vec::new();
    let mut weights = Vec::new();
    for &arch in &methods {
        let (g, source) = build_generator(ckpt, arch, device)?;
        let params = export_generator(&g).iter().map(|t| t.data.len()).sum();
        weights.push(WeightsInfo { method: arch.name().into(), params, source });
        generators.push((arch, g));
    }
    let generator = |arch: Arch| &generators.iter().find(|(a, _)| *a == arch).expect("built above").1;

    let matmul = matmul_gflops(opts.matmul_n, opts.runs.max(3), device);
    let rss_reset = reset_hwm();
    let mut rows = Vec::new();
    for &batch in &batches {
        // ARPG and MaskGIT at every step count, the ablation at the comparison one, raster AR at T.
        let mut cases: Vec<(Arch, usize)> = steps.iter().map(|&s| (Arch::Arpg, s)).collect();
        cases.extend(steps.iter().map(|&s| (Arch::MaskGit, s)));
        cases.extend([(Arch::ArpgNoSharedKv, compare), (Arch::Raster, t)]);
        for (arch, s) in cases.into_iter().filter(|(arch, _)| methods.contains(arch)) {
            let row = measure(generator(arch), arch, s, batch, &config, opts, matmul)?;
            progress(&row);
            rows.push(row);
        }
    }
    let vq_decode = time_vq_decode(ckpt, &batches, opts, device)?;

    notes.push(format!(
        "ms/image times token sampling only (CFG {} {}); the VQ decoder is timed apart",
        opts.sample.cfg,
        if opts.sample.guided() { "on: rows doubled" } else { "off" }
    ));
    notes.push("flops_per_image: analytic matmul count, an estimate (norms, RoPE, softmax left out)".into());
    if !rss_reset {
        notes.push(
            "the RSS high-water mark could not be reset: configurations ran in order of increasing \
             batch, and peak_rss_bytes is the process's peak so far"
                .into(),
        );
    }
    let measured = Measured { compare, batches, weights, matmul, rss_reset, vq_decode, notes, rows };
    Ok(report(config, opts, measured))
}

/// The ARPG step counts (with `compare`) and batch sizes to measure, and a note on the skipped.
struct Cases {
    steps: Vec<usize>,
    batches: Vec<usize>,
    notes: Vec<String>,
}

fn cases(opts: &BenchOptions, t: usize, compare: usize) -> Result<Cases, Error> {
    let mut steps: Vec<usize> = opts.steps.iter().copied().filter(|&s| s >= 1 && s <= t).collect();
    steps.push(compare);
    steps.sort_unstable();
    steps.dedup();
    let mut batches: Vec<usize> = opts.batches.iter().copied().filter(|&b| b >= 1).collect();
    batches.sort_unstable();
    batches.dedup();
    if batches.is_empty() {
        return Err(Error::Options("at least one batch size >= 1 is needed".into()));
    }
    let mut notes = Vec::new();
    let skipped: Vec<usize> = opts.steps.iter().copied().filter(|&s| s == 0 || s > t).collect();
    if !skipped.is_empty() {
        notes.push(format!("ARPG step counts {skipped:?} skipped: the model decodes {t} tokens"));
    }
    Ok(Cases { steps, batches, notes })
}

/// One row: `arch` at `s` steps and batch `batch`, timed over `opts.runs` runs.
fn measure(
    g: &Generator,
    arch: Arch,
    s: usize,
    batch: usize,
    config: &ModelConfig,
    opts: &BenchOptions,
    matmul: f64,
) -> Result<Row, Error> {
    let sample = SampleOptions { steps: s, ..opts.sample.clone() };
    reset_hwm();
    let rss_before = proc_status_bytes("VmRSS");
    let mut kv_bytes = 0;
    let times = time_runs(opts.warmup, opts.runs, |r| {
        let o = SampleOptions { seed: sample.seed.wrapping_add(r as u64), ..sample.clone() };
        kv_bytes = sample_once(g, &classes_for(r, batch, config.n_classes), &o)?;
        Ok(())
    })?;
    let peak = proc_status_bytes("VmHWM");
    let (secs, min, max, cpu) = times.summary();
    let flops = flops_per_image(config, arch, s, sample.schedule, sample.guided());
    let images_per_s = batch as f64 / secs;
    let gflops = flops * images_per_s / 1e9;
    Ok(Row {
        method: arch.name().into(),
        steps: s,
        batch,
        runs: times.wall.len(),
        ms_per_image: secs * 1e3 / batch as f64,
        images_per_s,
        ms_per_batch_median: secs * 1e3,
        ms_per_batch_min: min * 1e3,
        ms_per_batch_max: max * 1e3,
        cpu_ms_per_image: cpu.map(|c| c * 1e3 / batch as f64),
        flops_per_image: flops,
        gflops,
        peak_fraction: gflops / matmul,
        kv_bytes,
        peak_rss_bytes: peak,
        rss_delta_bytes: peak.zip(rss_before).map(|(p, b)| p.saturating_sub(b)),
    })
}

/// The VQ decoder on its own, on random codes, at each batch size.
fn time_vq_decode(
    ckpt: &Checkpoint,
    batches: &[usize],
    opts: &BenchOptions,
    device: &Device,
) -> Result<Vec<DecodeTime>, Error> {
    let config = &ckpt.model;
    let t = config.seq_len();
    let tokenizer =
        Tokenizer::new(&ckpt.tokenizer, device).import(&mut ckpt.tensors.clone(), "tokenizer", device)?;
    let mut out = Vec::new();
    for &batch in batches {
        let times = time_runs(opts.warmup, opts.runs, |r| {
            let mut rng = Rng::new(opts.sample.seed.wrapping_add(r as u64));
            let ids: Vec<i64> = (0..batch * t).map(|_| rng.below(config.vocab_size) as i64).collect();
            let idx = Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, t]), device);
            let images = tokenizer.decode(idx, config.grid_h, config.grid_w);
            images.into_data().try_into_vec::<f32>().map_err(|e| Error::Tensor(format!("{e:?}")))?;
            Ok(())
        })?;
        out.push(DecodeTime { batch, ms_per_image: times.summary().0 * 1e3 / batch as f64 });
    }
    Ok(out)
}

/// What [`run`] measured, before the ratios are taken.
struct Measured {
    compare: usize,
    batches: Vec<usize>,
    weights: Vec<WeightsInfo>,
    matmul: f64,
    rss_reset: bool,
    vq_decode: Vec<DecodeTime>,
    notes: Vec<String>,
    rows: Vec<Row>,
}

/// The report: the rows, and ARPG's speed-ups and KV sizes against the baselines.
fn report(config: ModelConfig, opts: &BenchOptions, m: Measured) -> Report {
    let t = config.seq_len();
    let Measured { compare, batches, weights: weights_info, matmul, rss_reset, vq_decode, notes, rows } = m;
    // `None` for a skipped baseline.
    let find = |arch: Arch, s: usize, b: usize| {
        rows.iter().find(|r| r.method == arch.name() && r.steps == s && r.batch == b)
    };
    let speedup_batch = if batches.contains(&1) { 1 } else { batches[0] };
    let arpg_ref = find(Arch::Arpg, compare, speedup_batch).expect("ARPG is always measured");
    let speedup = |other: Option<&Row>| other.map(|o| o.ms_per_image / arpg_ref.ms_per_image);
    let cpu_ratio = |other: Option<&Row>| Some(other?.cpu_ms_per_image? / arpg_ref.cpu_ms_per_image?);
    let (raster_ref, maskgit_ref) =
        (find(Arch::Raster, t, speedup_batch), find(Arch::MaskGit, compare, speedup_batch));
    let peak_fraction_batch = batches[batches.len() - 1];
    let (n_content, n_query) = config.arpg_split();
    let kv = |layers, memory| KvCache::expected_bytes(layers, memory, 1, t, config.d_model);
    let (kv_bytes_shared, kv_bytes_per_layer) = (kv(n_content, 1), kv(n_content, n_query));
    Report {
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cfg: opts.sample.cfg,
        runs: opts.runs.max(1),
        warmup: opts.warmup,
        compare_steps: compare,
        weights: weights_info,
        matmul_n: opts.matmul_n,
        matmul_gflops: matmul,
        rss_reset,
        speedup_batch,
        speedup_vs_raster: speedup(raster_ref),
        speedup_vs_maskgit: speedup(maskgit_ref),
        speedup_vs_raster_cpu: cpu_ratio(raster_ref),
        speedup_vs_maskgit_cpu: cpu_ratio(maskgit_ref),
        kv_bytes_shared,
        kv_bytes_per_layer,
        kv_bytes_raster: kv(config.n_layers, 0),
        kv_ratio: kv_bytes_shared as f64 / kv_bytes_per_layer as f64,
        peak_fraction: find(Arch::Arpg, compare, peak_fraction_batch).expect("measured").peak_fraction,
        peak_fraction_batch,
        vq_decode,
        notes,
        model: config,
        rows,
    }
}
