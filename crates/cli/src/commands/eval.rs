//! `arpg eval`: the quality numbers of a checkpoint (class accuracy, Fréchet distance,
//! memorisation, in-painting, and for the emoji expansion against bicubic) as a markdown table or
//! JSON, with sheets of samples and tasks as PNGs.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use arpg::checkpoint::{self, Checkpoint, DType};
use arpg::choice::Choice;
use arpg::config::Arch;
use arpg::engine::Engine;
use arpg::image::Image;
use arpg::sampling::SampleOptions;
use arpg_tools::data::{Source, Split};
use arpg_tools::eval::{
    self, COPY_RMSE, ExpandReport, GenReport, InpaintReport, RealReport, ReconReport, Reference, format,
};
use burn::tensor::Device;
use serde_json::json;

use super::train_classifier::DEFAULT_CLASSIFIER;
use crate::args::{DecodeArgs, choice};

/// The emoji's evaluation classifier (64x64 RGB).
const EMOJI_CLASSIFIER: &str = "models/classifier-emoji-64.bin";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The checkpoint to evaluate (as shipped: usually int8).
    #[arg(long, default_value = "www/models/arpg-fmnist-int8.arpg")]
    pub checkpoint: PathBuf,
    /// The f32 checkpoint the int8 one was quantized from, evaluated alongside it.
    #[arg(long = "f32")]
    pub f32_source: Option<PathBuf>,
    /// Baseline checkpoints (raster AR: one step per token; MaskGIT: 8 steps; ARPG without
    /// shared KV: every --steps value). Repeat for several.
    #[arg(long)]
    pub baseline: Vec<PathBuf>,
    /// ARPG step counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4,8,16,32,64")]
    pub steps: Vec<usize>,
    /// Samples per configuration (classes in the test split's mix), and real images for the floor.
    #[arg(long, default_value_t = 1000)]
    pub n: usize,
    /// Test images half masked and in-painted per ARPG model [default: --n, at most the test
    /// split].
    #[arg(long)]
    pub inpaint_n: Option<usize>,
    /// Half-size test images expanded 2x per ARPG model (evenly spaced through the test split;
    /// data with half-size images only) [default: all of them].
    #[arg(long)]
    pub expand_n: Option<usize>,
    /// Decoding steps of in-painting, out-painting and expansion.
    #[arg(long, default_value_t = 8)]
    pub task_steps: usize,
    #[command(flatten)]
    pub decode: DecodeArgs,
    /// The dataset the checkpoint was trained on: its test split is the reference.
    #[arg(long, value_parser = choice::<Source>(), default_value = "fashion-mnist")]
    pub data: Source,
    /// Classifier file (from `arpg train-classifier`) [default: models/classifier.bin for
    /// Fashion-MNIST, models/classifier-emoji-64.bin for the emoji].
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// Where the data is [default: the dataset's: /usr/share/datasets/fashion-mnist,
    /// ~/.cache/arpg/emoji].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where the PNG sheets go.
    #[arg(long, default_value = "docs/eval")]
    pub out_dir: PathBuf,
    /// Print JSON instead of the markdown tables.
    #[arg(long)]
    pub json: bool,
}

/// The sampling options at `steps`: the flags over the library's defaults, not a checkpoint's own
/// (eval compares several checkpoints under one sampling, which every row states in full).
fn decode_options(args: &Args, steps: usize) -> Result<SampleOptions> {
    args.decode.options(steps, &SampleOptions::default())
}

/// One set of weights under evaluation.
struct Candidate {
    file: String,
    weights: String,
    engine: Engine,
}

fn load_candidate(path: &Path) -> Result<(Candidate, Vec<u8>)> {
    let bytes = fs::read(path).with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let info =
        checkpoint::inspect(&bytes).with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let engine = Engine::from_bytes(&bytes, &Device::flex())
        .with_context(|| format!("cannot load {}", path.display()))?;
    let file =
        path.file_name().map_or_else(|| path.display().to_string(), |f| f.to_string_lossy().into_owned());
    Ok((Candidate { file, weights: info.dtype.name().to_string(), engine }, bytes))
}

/// The checkpoint as loaded, plus its other precision: the given f32 source of an int8 file
/// (checked to quantize to exactly that file), or the in-memory int8 quantization of an f32 one.
fn candidates(args: &Args, notes: &mut Vec<String>) -> Result<Vec<Candidate>> {
    let (main, bytes) = load_candidate(&args.checkpoint)?;
    let info = checkpoint::inspect(&bytes)?;
    let mut out = vec![];
    match (info.dtype, &args.f32_source) {
        (DType::Int8, Some(src)) => {
            let (f32c, f32_bytes) = load_candidate(src)?;
            ensure!(f32c.weights == "f32", "--f32 {} holds {} weights, not f32", src.display(), f32c.weights);
            let ckpt = Checkpoint::from_bytes(&f32_bytes)?;
            ensure!(ckpt.model == *main.engine.model_config(), "--f32 {} is another model", src.display());
            let same = ckpt.to_bytes(DType::Int8, info.group_size)? == bytes;
            notes.push(format!(
                "{} {} what `arpg quantize {} --group-size {}` writes.",
                main.file,
                if same { "is exactly" } else { "is NOT" },
                f32c.file,
                info.group_size,
            ));
            out.push(main);
            out.push(f32c);
        }
        (DType::Int8, None) => {
            notes.push(format!(
                "{} is int8 and no f32 source was given (--f32 FILE): the int8 weights alone are evaluated.",
                main.file
            ));
            out.push(main);
        }
        (DType::F32, _) => {
            let group = 64;
            let q = Checkpoint::from_bytes(&bytes)?.to_bytes(DType::Int8, group)?;
            let engine = Engine::from_bytes(&q, &Device::flex())?;
            notes.push(format!(
                "{} is f32; its int8 row is `arpg quantize --group-size {group}` in memory.",
                main.file
            ));
            let weights = format!("int8 (g{group}, in memory)");
            out.push(Candidate { file: main.file.clone(), weights, engine });
            out.insert(0, main);
        }
    }
    Ok(out)
}

/// Step counts for a model: ARPG all of `steps`, raster AR one per token, MaskGIT 8.
fn step_counts(engine: &Engine, steps: &[usize]) -> Vec<usize> {
    let c = engine.model_config();
    let tokens = c.grid_h * c.grid_w;
    match c.arch {
        Arch::Arpg | Arch::ArpgNoSharedKv => steps.to_vec(),
        Arch::Raster => vec![tokens],
        Arch::MaskGit => vec![8.min(tokens)],
    }
}

fn write_png(dir: &Path, name: &str, image: &Image) -> Result<PathBuf> {
    let path = dir.join(name);
    fs::write(&path, image.try_to_png()?).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// A file-name-safe tag: the file stem, then the weights unless the stem already ends with them
/// (`arpg-fmnist-int8.arpg` + `int8` -> `arpg-fmnist-int8`; `arpg.arpg` + `f32` -> `arpg-f32`).
fn tag(c: &Candidate) -> String {
    let stem = c.file.strip_suffix(".arpg").unwrap_or(&c.file);
    let w: String = c.weights.chars().map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' }).collect();
    let w = w.split('-').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("-");
    if stem.ends_with(&format!("-{w}")) { stem.to_string() } else { format!("{stem}-{w}") }
}

pub fn run(args: Args) -> Result<()> {
    ensure!(args.n >= 2, "--n must be at least 2");
    ensure!(
        !args.steps.is_empty() && args.steps.iter().all(|&s| s >= 1),
        "--steps must be a list of counts >= 1"
    );
    // The sampling the tables state (each row's steps are its own).
    let sampling = decode_options(&args, 1)?;
    let start = Instant::now();
    let mut notes = vec![];
    let models = models(&args, &mut notes)?;
    let (reference, cls_meta) = reference(&args)?;
    let (inpaint_n, expand_n) = task_sizes(&args, &reference)?;
    let real = reference.real(args.n, args.decode.seed)?;
    eprintln!("{}: {} test images through the tokenizer alone ...", models[0].file, args.n);
    let recon = eval::evaluate_reconstruction(&models[0].engine, &reference, args.n)?;
    fs::create_dir_all(&args.out_dir).with_context(|| format!("cannot create {}", args.out_dir.display()))?;

    let gen_rows = generation_rows(&args, &models, &reference)?;
    let inpaint_rows = inpaint_rows(&args, &models, &reference, inpaint_n)?;
    let expand_rows = expand_rows(&args, &models, &reference, expand_n)?;
    let main = &models[0];
    eprintln!("{}: out-painting and expansion sheets ...", main.file);
    let sheets = eval::task_sheets(&main.engine, &reference, &decode_options(&args, args.task_steps)?)?;
    write_png(&args.out_dir, "outpaint.png", &sheets.outpaint)?;
    write_png(&args.out_dir, "expand.png", &sheets.expand)?;
    let total = start.elapsed().as_secs_f64();

    if args.json {
        let row =
            |m: &Candidate, r: serde_json::Value| json!({"file": m.file, "weights": m.weights, "report": r});
        let gens: Vec<_> = gen_rows.iter().map(|(m, r)| row(m, json!(r))).collect();
        let inps: Vec<_> = inpaint_rows.iter().map(|(m, r)| row(m, json!(r))).collect();
        let exps: Vec<_> = expand_rows.iter().map(|(m, r)| row(m, json!(r))).collect();
        let d = &sampling;
        let out = json!({
            "data": args.data.name(),
            "classifier": {
                "file": classifier_path(&args).display().to_string(),
                "config": reference.classifier.config,
                "meta": cls_meta,
                "test_accuracy": reference.classifier_accuracy,
            },
            "options": {"n": args.n, "seed": d.seed, "cfg": d.cfg, "cfg_schedule": d.cfg_schedule.name(),
                        "schedule": d.schedule.name(), "order": d.order.name(),
                        "temperature": d.temperature, "task_steps": args.task_steps},
            "real": real,
            "reconstruction": recon,
            "generation": gens,
            "inpainting": inps,
            "expansion": exps,
            "sheets_seconds": sheets.seconds,
            "out_dir": args.out_dir.display().to_string(),
            "notes": notes,
            "seconds": total,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let notes: Vec<String> = std::iter::once(recon_note(&recon)).chain(notes).collect();
        print_markdown(&args, &sampling, &reference, &real, &gen_rows, &notes);
        print_inpainting(&inpaint_rows);
        print_expansion(&expand_rows);
        println!();
        println!("Sheets in `{}`; whole evaluation {total:.0}s.", args.out_dir.display());
    }
    for (m, r) in &inpaint_rows {
        ensure!(
            r.violations == 0,
            "{} ({}): in-painting changed {} kept pixels",
            m.file,
            m.weights,
            r.violations
        );
    }
    Ok(())
}

/// The checkpoint (and its other precision) and the baselines, each checked to have enough tokens
/// for its step counts.
fn models(args: &Args, notes: &mut Vec<String>) -> Result<Vec<Candidate>> {
    let mut models = candidates(args, notes)?;
    for path in &args.baseline {
        models.push(load_candidate(path)?.0);
    }
    for m in &models {
        let c = m.engine.model_config();
        let tokens = c.grid_h * c.grid_w;
        if let Some(&s) = step_counts(&m.engine, &args.steps).iter().find(|&&s| s > tokens) {
            bail!("{} has {tokens} tokens per image: {s} steps is too many", m.file);
        }
    }
    Ok(models)
}

fn classifier_path(args: &Args) -> PathBuf {
    let default = match args.data {
        Source::FashionMnist => DEFAULT_CLASSIFIER,
        Source::Emoji => EMOJI_CLASSIFIER,
    };
    args.classifier.clone().unwrap_or_else(|| PathBuf::from(default))
}

/// The classifier and the real data every score is measured against: the data in the
/// classifier's frame; for the emoji also at half the side, where memorisation is judged (the
/// nearest-neighbour pool) and what expansion starts from.
fn reference(args: &Args) -> Result<(Reference, format::ClassifierMeta)> {
    let path = classifier_path(args);
    let cls_bytes = fs::read(&path).with_context(|| {
        format!("cannot read classifier {} (write one with `arpg train-classifier`)", path.display())
    })?;
    let (classifier, cls_meta) = format::from_bytes(&cls_bytes, &Device::flex())
        .with_context(|| format!("cannot load classifier {}", path.display()))?;
    let (source, side) = (args.data, classifier.config.side);
    let dir = args.data_dir.clone().unwrap_or_else(|| source.default_dir());
    let train = source.split(&dir, Split::Train, side)?;
    let test = source.split(&dir, Split::Test, side)?;
    let (pool, half_test) = match source {
        Source::FashionMnist => (train.clone(), None),
        Source::Emoji => {
            (source.split(&dir, Split::Train, side / 2)?, Some(source.split(&dir, Split::Test, side / 2)?))
        }
    };
    eprintln!("scoring {} test images and {} real training images ...", test.len(), args.n);
    Ok((Reference::new(classifier, train, test, pool, half_test)?, cls_meta))
}

/// How many test images in-painting and expansion take, checked before any sampling: as asked,
/// or by default `--n` at most the test split (in-painting) and every half-size test image
/// (expansion; 0 for data without them).
fn task_sizes(args: &Args, reference: &Reference) -> Result<(usize, usize)> {
    let tests = reference.test.len();
    let inpaint = args.inpaint_n.unwrap_or(args.n.min(tests));
    ensure!((1..=tests).contains(&inpaint), "--inpaint-n must be in 1..={tests}");
    let halves = reference.half_test.as_ref().map_or(0, |d| d.len());
    let expand = args.expand_n.unwrap_or(halves);
    ensure!(halves == 0 || (2..=halves).contains(&expand), "--expand-n must be in 2..={halves}");
    Ok((inpaint, expand))
}

/// Samples of every model at each of its step counts: scores, and one sheet each.
fn generation_rows<'a>(
    args: &Args,
    models: &'a [Candidate],
    reference: &Reference,
) -> Result<Vec<(&'a Candidate, GenReport)>> {
    let mut rows = vec![];
    for m in models {
        for steps in step_counts(&m.engine, &args.steps) {
            eprintln!("{} ({}): {} samples, {steps} steps ...", m.file, m.weights, args.n);
            let opts = decode_options(args, steps)?;
            let (report, samples) = eval::evaluate_generation(&m.engine, reference, args.n, &opts)?;
            let n_classes = m.engine.model_config().n_classes;
            let name = format!("samples-{}-{}steps.png", tag(m), report.steps);
            write_png(&args.out_dir, &name, &samples.sheet(n_classes, 8))?;
            eprintln!(
                "  accuracy {:.1}%, FD {:.3}, {:.1}s",
                100.0 * report.accuracy,
                report.fd,
                report.seconds
            );
            rows.push((m, report));
        }
    }
    Ok(rows)
}

/// Half-masked test images in-painted by every ARPG model.
fn inpaint_rows<'a>(
    args: &Args,
    models: &'a [Candidate],
    reference: &Reference,
    n: usize,
) -> Result<Vec<(&'a Candidate, InpaintReport)>> {
    let opts = decode_options(args, args.task_steps)?;
    let mut rows = vec![];
    for m in models.iter().filter(|m| m.engine.model_config().arch.is_arpg()) {
        eprintln!("{} ({}): in-painting {n} test images ...", m.file, m.weights);
        let (report, sheet) = eval::evaluate_inpainting(&m.engine, reference, n, &opts, 10)?;
        write_png(&args.out_dir, &format!("inpaint-{}.png", tag(m)), &sheet)?;
        rows.push((m, report));
    }
    Ok(rows)
}

/// The half-size test images expanded 2x by every ARPG model, against bicubic upscaling (data
/// with half-size images only).
fn expand_rows<'a>(
    args: &Args,
    models: &'a [Candidate],
    reference: &Reference,
    n: usize,
) -> Result<Vec<(&'a Candidate, ExpandReport)>> {
    if reference.half_test.is_none() {
        return Ok(vec![]);
    }
    let opts = decode_options(args, args.task_steps)?;
    let mut rows = vec![];
    for m in models.iter().filter(|m| m.engine.model_config().arch.is_arpg()) {
        eprintln!("{} ({}): expanding {n} half-size test images ...", m.file, m.weights);
        let (report, sheet) = eval::evaluate_expansion(&m.engine, reference, n, &opts, 12)?;
        write_png(&args.out_dir, &format!("expand-vs-bicubic-{}.png", tag(m)), &sheet)?;
        rows.push((m, report));
    }
    Ok(rows)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn recon_note(recon: &ReconReport) -> String {
    format!(
        "Tokenizer alone ({} test images encoded and decoded by the first model's tokenizer): classifier \
         accuracy {} (the originals: {}), FD {:.3}, pixel MSE {:.5}. No generator can score better than this.",
        recon.n,
        pct(recon.accuracy),
        pct(recon.original_accuracy),
        recon.fd,
        recon.mse
    )
}

fn print_markdown(
    args: &Args,
    sampling: &SampleOptions,
    reference: &Reference,
    real: &RealReport,
    gen_rows: &[(&Candidate, GenReport)],
    notes: &[String],
) {
    println!(
        "Classifier `{}`: {} on the {} test images. N = {} samples per row (classes in the test split's mix), \
         seed {}, CFG {} ({:?} schedule), temperature {}, {:?} step schedule, {:?} order.",
        classifier_path(args).display(),
        pct(reference.classifier_accuracy),
        reference.test.len(),
        args.n,
        sampling.seed,
        sampling.cfg,
        sampling.cfg_schedule,
        sampling.temperature,
        sampling.schedule,
        sampling.order
    );
    let pool = reference.pool.width;
    println!(
        "Real data: FD floor {:.3} ({} training images vs the test split; classifier accuracy on them {}); \
         a test image's nearest training image ({pool}x{pool}) is at RMSE {:.4} (median of {}), and {} of \
         them are within RMSE {COPY_RMSE} of one.",
        real.fd_floor,
        real.n,
        pct(real.train_accuracy),
        real.nn_median,
        real.nn_probes,
        pct(real.copies)
    );
    for n in notes {
        println!("{n}");
    }
    println!();
    println!(
        "| model | file | weights | steps | class acc. | FD | NN RMSE median / min | within {COPY_RMSE} | gen. s | img/s | total s |"
    );
    println!("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (m, r) in gen_rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.3} | {:.4} / {:.4} | {} | {:.1} | {:.1} | {:.1} |",
            r.arch,
            m.file,
            m.weights,
            r.steps,
            pct(r.accuracy),
            r.fd,
            r.nn_median,
            r.nn_min,
            pct(r.copies),
            r.gen_seconds,
            r.images_per_second,
            r.seconds
        );
    }
}

/// A markdown table with a row per model: its architecture, file and weights, then `cells`.
/// `header` names the columns, ` | ` between them.
fn print_table<R>(header: &str, rows: &[(&Candidate, R)], cells: impl Fn(&R) -> Vec<String>) {
    if rows.is_empty() {
        return;
    }
    println!();
    println!("| {header} |");
    let align: Vec<&str> =
        (0..header.split(" | ").count()).map(|i| if i < 3 { "---" } else { "---:" }).collect();
    println!("|{}|", align.join("|"));
    for (m, r) in rows {
        let mut row =
            vec![m.engine.model_config().arch.name().to_string(), m.file.clone(), m.weights.clone()];
        row.extend(cells(r));
        println!("| {} |", row.join(" | "));
    }
}

fn print_expansion(rows: &[(&Candidate, ExpandReport)]) {
    let header = "2x expansion | file | weights | steps | N | class acc. | FD | RMSE | bicubic class acc. | bicubic FD \
         | bicubic RMSE | s";
    print_table(header, rows, |r| {
        vec![
            r.steps.to_string(),
            r.n.to_string(),
            pct(r.accuracy),
            format!("{:.3}", r.fd),
            format!("{:.4}", r.rmse),
            pct(r.bicubic_accuracy),
            format!("{:.3}", r.bicubic_fd),
            format!("{:.4}", r.bicubic_rmse),
            format!("{:.1}", r.seconds),
        ]
    });
}

fn print_inpainting(rows: &[(&Candidate, InpaintReport)]) {
    let header = "in-painting | file | weights | steps | N | class acc. | acc. of the masked input \
                  | changed kept pixels | s";
    print_table(header, rows, |r| {
        vec![
            r.steps.to_string(),
            r.n.to_string(),
            pct(r.accuracy),
            pct(r.masked_accuracy),
            format!("{} of {}", r.violations, r.kept_pixels),
            format!("{:.1}", r.seconds),
        ]
    });
}
