//! `arpg`: generate, inpaint, outpaint and expand Fashion-MNIST-sized images
//! with an ARPG checkpoint; inspect, quantize and initialise checkpoints; train
//! the tokenizer and the generators on Fashion-MNIST. (The web app's server is `arpg-serve`, crates/serve.)

mod bench;
mod checkpoints;
mod cli;
mod evaluate;
mod soak;
mod train;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use arpg::config::Arch;
use arpg::engine::Engine;
use arpg::image::{GrayImage, MASK_THRESHOLD, grid};
use arpg::sampler::StepEvent;
use arpg::tasks::Sides;
use burn::tensor::Device;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use cli::{Cli, Command, ExpandArgs, GenerateArgs, InpaintArgs, Mode, ModelArgs, OutpaintArgs, SampleArgs};

/// Images sampled together in one call of `Engine::generate`.
const BATCH: usize = 64;

/// Most images one `generate` may write (they are all held in memory for the grid).
const MAX_COUNT: usize = 100_000;

fn main() -> ExitCode {
    let cli = Cli::parse();
    default_sigpipe();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so `println!` to a closed pipe (`arpg inspect x | head -3`) panics. Restore
/// the default, as other Unix tools have it: the process ends quietly when its reader has gone.
fn default_sigpipe() {
    #[cfg(unix)]
    {
        unsafe extern "C" {
            fn signal(signum: i32, handler: usize) -> usize;
        }
        const SIGPIPE: i32 = 13;
        const SIG_DFL: usize = 0;
        // SAFETY: sets one signal's disposition to its default, at start-up, before other threads.
        unsafe { signal(SIGPIPE, SIG_DFL) };
    }
}

/// The error and its causes on one line, "cannot read x: No such file", leaving out a cause
/// whose text the message before it already ends with (errors that print their source).
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Generate(a) => generate(a),
        Command::Inpaint(a) => inpaint(a),
        Command::Outpaint(a) => outpaint(a),
        Command::Expand(a) => expand(a),
        Command::Inspect { checkpoint } => checkpoints::inspect(&checkpoint),
        Command::Quantize { input, output, group_size } => checkpoints::quantize(&input, &output, group_size),
        Command::Init(a) => checkpoints::init(&a),
        Command::Eval(a) => evaluate::eval(a),
        Command::TrainClassifier(a) => evaluate::train_classifier(a),
        Command::TrainTokenizer(a) => train::train_tokenizer(a),
        Command::Train(a) => train::train(a),
        Command::Bench(a) => bench::run(a),
        Command::Soak(a) => soak::run(a),
    }
}

/// A loaded checkpoint.
struct Loaded {
    engine: Engine,
    arch: Arch,
    path: PathBuf,
}

fn load_engine(args: &ModelArgs) -> Result<Loaded> {
    let path = match &args.checkpoint {
        Some(p) => p.clone(),
        None => args.mode.unwrap_or(Mode::Arpg).default_checkpoint(),
    };
    let bytes = fs::read(&path).with_context(|| {
        let hint = if args.checkpoint.is_none() {
            " (pass --checkpoint, or write a random one with `arpg init --out FILE`)"
        } else {
            ""
        };
        format!("cannot read checkpoint {}{hint}", path.display())
    })?;
    let engine = Engine::from_bytes(&bytes, &Device::flex())
        .with_context(|| format!("cannot load checkpoint {}", path.display()))?;
    let arch = engine.model_config().arch;
    if let Some(mode) = args.mode {
        ensure!(
            mode.accepts(arch),
            "--mode {} does not match checkpoint {}, which holds a {} model (use --mode {} or another --checkpoint)",
            mode.name(),
            path.display(),
            arch.name(),
            Mode::of(arch).name()
        );
    }
    Ok(Loaded { engine, arch, path })
}

/// A class id or name (case-insensitive; punctuation ignored, and either half of
/// a name such as "T-shirt/top" or "Ankle boot" matches when only one class has it).
fn resolve_class(spec: &str, engine: &Engine) -> Result<usize> {
    find_class(spec, engine.model_config().n_classes, &engine.meta.class_names)
}

fn find_class(spec: &str, n: usize, names: &[String]) -> Result<usize> {
    let spec = spec.trim();
    if let Ok(id) = spec.parse::<usize>() {
        ensure!(id < n, "class {id} is out of range: the checkpoint has {n} classes (0..={})", n - 1);
        return Ok(id);
    }
    let norm =
        |s: &str| s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>();
    let wanted = norm(spec);
    let by_word: Vec<usize> =
        (0..names.len()).filter(|&i| names[i].split(['/', ' ']).any(|word| norm(word) == wanted)).collect();
    let found = names
        .iter()
        .position(|c| c.eq_ignore_ascii_case(spec))
        .or_else(|| names.iter().position(|c| norm(c) == wanted))
        .or(if by_word.len() == 1 { Some(by_word[0]) } else { None });
    match found {
        Some(id) if id < n => Ok(id),
        _ if names.is_empty() => {
            bail!("unknown class {spec:?}: the checkpoint has no class names, use an id 0..={}", n - 1)
        }
        _ => bail!("unknown class {spec:?}; use an id 0..={} or one of: {}", n - 1, names.join(", ")),
    }
}

fn class_label(class: usize, engine: &Engine) -> String {
    match engine.meta.class_names.get(class) {
        Some(name) => format!("{class} ({name})"),
        None => class.to_string(),
    }
}

/// A progress bar over sampling steps; its length follows the engine's step events.
fn step_bar(label: &'static str) -> ProgressBar {
    let style = ProgressStyle::with_template("{msg:>9} [{bar:32}] {pos}/{len} steps, {elapsed}")
        .expect("valid template")
        .progress_chars("=> ");
    ProgressBar::new(0).with_style(style).with_message(label)
}

/// The step callback for call `call` of `calls`: sizes the bar and advances it.
fn on_step(bar: &ProgressBar, call: usize, calls: usize) -> impl FnMut(&StepEvent) + '_ {
    move |ev: &StepEvent| {
        let total = (calls * ev.steps) as u64;
        if bar.length() != Some(total) {
            bar.set_length(total);
            bar.set_position((call * ev.steps) as u64);
        }
        bar.inc(1);
    }
}

fn read_png(path: &Path) -> Result<GrayImage> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    GrayImage::from_png(&bytes).with_context(|| format!("cannot load {}", path.display()))
}

fn write_png(path: &Path, image: &GrayImage, texts: &[(&str, &str)]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let bytes =
        image.try_to_png_with_text(texts).with_context(|| format!("cannot encode {}", path.display()))?;
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// PNG text chunks recording how an image was made.
fn provenance(what: String, ckpt: &Path, sample: &SampleArgs) -> [(&'static str, String); 3] {
    [
        ("Software", format!("arpg {}", env!("CARGO_PKG_VERSION"))),
        ("Source", ckpt.display().to_string()),
        ("Description", format!("{what} {}", sample.describe())),
    ]
}

fn write_with(path: &Path, image: &GrayImage, texts: &[(&'static str, String)]) -> Result<()> {
    let texts: Vec<(&str, &str)> = texts.iter().map(|(k, v)| (*k, v.as_str())).collect();
    write_png(path, image, &texts)
}

fn generate(args: GenerateArgs) -> Result<()> {
    ensure!(args.count >= 1, "--count must be at least 1");
    ensure!(args.count <= MAX_COUNT, "--count must be at most {MAX_COUNT}, got {}", args.count);
    let Loaded { engine, arch, path } = load_engine(&args.model)?;
    let n = engine.model_config().n_classes;
    let classes: Vec<usize> = match &args.class {
        Some(c) => vec![resolve_class(c, &engine)?; args.count],
        None => (0..args.count).map(|i| i % n).collect(),
    };
    args.sample.to_options()?;
    fs::create_dir_all(&args.out_dir).with_context(|| format!("cannot create {}", args.out_dir.display()))?;

    let start = Instant::now();
    let bar = step_bar("generate");
    let calls = classes.len().div_ceil(BATCH);
    let mut images = Vec::with_capacity(classes.len());
    for (call, batch) in classes.chunks(BATCH).enumerate() {
        let mut opts = args.sample.to_options()?;
        // Each batch gets its own seed so that batches never repeat each other.
        opts.seed = args.sample.seed.wrapping_add(call as u64);
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
        write_with(&file, image, &provenance(what, &path, &args.sample))?;
    }
    let cols = (images.len() as f64).sqrt().ceil() as usize;
    let sheet = grid(&images, cols, 2);
    let what = format!("grid of {} mode={}", images.len(), arch.name());
    write_with(&args.out_dir.join("grid.png"), &sheet, &provenance(what, &path, &args.sample))?;
    println!(
        "wrote {} image{} and grid.png to {} in {secs:.2}s ({:.1} images/s)",
        images.len(),
        if images.len() == 1 { "" } else { "s" },
        args.out_dir.display(),
        images.len() as f64 / secs.max(1e-9)
    );
    Ok(())
}

fn inpaint(args: InpaintArgs) -> Result<()> {
    let image = read_png(&args.image)?;
    let mask = read_png(&args.mask)?;
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
    let Loaded { engine, arch, path } = load_engine(&args.model)?;
    let class = resolve_class(&args.class, &engine)?;
    let opts = args.sample.to_options()?;
    let bar = step_bar("inpaint");
    let out = pollster::block_on(engine.inpaint(&image, &mask, class, &opts, &mut on_step(&bar, 0, 1)))?;
    bar.finish_and_clear();
    let what = format!("inpaint class={} mode={}", class_label(class, &engine), arch.name());
    write_with(&args.out, &out, &provenance(what, &path, &args.sample))?;
    println!("wrote {}x{} image to {}", out.width, out.height, args.out.display());
    Ok(())
}

fn outpaint(args: OutpaintArgs) -> Result<()> {
    let sides = Sides { left: args.left, right: args.right, top: args.top, bottom: args.bottom };
    ensure!(
        sides != Sides::default(),
        "nothing to outpaint: give --left, --right, --top and/or --bottom (in tokens)"
    );
    let image = read_png(&args.image)?;
    let Loaded { mut engine, arch, path } = load_engine(&args.model)?;
    engine.rope_mode = args.rope.into();
    let class = resolve_class(&args.class, &engine)?;
    let opts = args.sample.to_options()?;
    let bar = step_bar("outpaint");
    let out = pollster::block_on(engine.outpaint(&image, sides, class, &opts, &mut on_step(&bar, 0, 1)))?;
    bar.finish_and_clear();
    let what = format!("outpaint {sides:?} class={} mode={}", class_label(class, &engine), arch.name());
    write_with(&args.out, &out, &provenance(what, &path, &args.sample))?;
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

fn expand(args: ExpandArgs) -> Result<()> {
    ensure!(args.factor >= 2, "--factor must be at least 2");
    let image = args.image.as_deref().map(read_png).transpose()?;
    let Loaded { mut engine, arch, path } = load_engine(&args.model)?;
    engine.rope_mode = args.rope.into();
    let class = resolve_class(&args.class, &engine)?;
    let opts = args.sample.to_options()?;

    let bar = step_bar("expand");
    let out = pollster::block_on(engine.expand(
        image.as_ref(),
        args.factor,
        class,
        &opts,
        &mut on_step(&bar, 0, 1),
    ))?;
    bar.finish_and_clear();
    let what = format!("expand x{} class={} mode={}", args.factor, class_label(class, &engine), arch.name());
    write_with(&args.out, &out, &provenance(what, &path, &args.sample))?;
    println!("wrote {}x{} image to {}", out.width, out.height, args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_by_id_or_name() {
        let names: Vec<String> = ["T-shirt/top", "Trouser", "Shirt", "Ankle boot", "Sneaker"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let find = |s: &str| find_class(s, names.len(), &names).ok();
        assert_eq!(find("4"), Some(4));
        assert_eq!(find("5"), None);
        assert_eq!(find("sneaker"), Some(4));
        assert_eq!(find("SHIRT"), Some(2));
        assert_eq!(find("t-shirt/top"), Some(0));
        assert_eq!(find("tshirt"), Some(0));
        assert_eq!(find("top"), Some(0));
        assert_eq!(find("boot"), Some(3));
        assert_eq!(find("ankle boot"), Some(3));
        assert_eq!(find("dress"), None);
        assert_eq!(find_class("1", 3, &[]).ok(), Some(1));
        assert!(find_class("bag", 3, &[]).is_err());
    }

    #[test]
    fn error_line_skips_repeated_causes() {
        #[derive(Debug)]
        struct Inner;
        impl std::fmt::Display for Inner {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bad magic")
            }
        }
        impl std::error::Error for Inner {}
        #[derive(Debug)]
        struct Outer(Inner);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "checkpoint: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Outer(Inner)).context("cannot load m.arpg");
        assert_eq!(one_line(&e), "cannot load m.arpg: checkpoint: bad magic");
        let io = anyhow::Error::new(std::io::Error::other("gone")).context("cannot read x");
        assert_eq!(one_line(&io), "cannot read x: gone");
    }
}
