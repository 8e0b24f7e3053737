//! What several commands share: which checkpoint to load, the sampling options, class names,
//! PNG files, progress bars. Sampling defaults come from the checkpoint (`Engine::sample_defaults`:
//! its own for the task, else the library's); every enum is parsed by the library's own names
//! ([`choice`]).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use arpg::checkpoint::{Checkpoint, DType};
use arpg::choice::{self, Choice};
use arpg::config::Arch;
use arpg::decode::StepEvent;
use arpg::engine::Engine;
use arpg::image::Image;
use arpg::sampling::{CfgSchedule, Order, SampleOptions, Schedule, Task};
use arpg::tasks::RopeMode;
use burn::tensor::Device;
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;

/// A clap parser for a library enum: `--help` lists the library's names, and parsing goes
/// through the library (`arpg::choice::parse`).
pub fn choice<T: Choice + Clone>() -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(T::ALL.iter().map(|c| c.name()))
        .map(|name| choice::parse::<T>(&name).expect("clap checked the name against the list"))
}

/// Decoding modes: the checkpoint's architecture must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Arpg,
    Raster,
    Maskgit,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Arpg => "arpg",
            Mode::Raster => "raster",
            Mode::Maskgit => "maskgit",
        }
    }

    /// The checkpoint used when `--checkpoint` is not given: the app's model for ARPG, the
    /// baselines beside the evaluation classifier (the app does not load them).
    pub fn default_checkpoint(self) -> PathBuf {
        let dir = if self == Mode::Arpg { "www/models" } else { "models/baselines" };
        PathBuf::from(format!("{dir}/{}-fmnist-int8.arpg", self.name()))
    }

    /// Whether a checkpoint of this architecture decodes in this mode.
    pub fn accepts(self, arch: Arch) -> bool {
        Mode::of(arch) == self
    }

    pub fn of(arch: Arch) -> Mode {
        match arch {
            Arch::Arpg | Arch::ArpgNoSharedKv => Mode::Arpg,
            Arch::Raster => Mode::Raster,
            Arch::MaskGit => Mode::Maskgit,
        }
    }
}

/// The web app's model list (its fields: `www/models.js`), read from the current directory as the
/// default checkpoint is: `--checkpoint` also takes the id of one of its models.
const APP_MODELS: &str = "www/models/manifest.json";

/// `--checkpoint`: a file, or else the id of one of the app's models (`fmnist`, `emoji`), which
/// [`APP_MODELS`] maps to its file.
pub fn resolve_checkpoint(spec: &Path) -> Result<PathBuf> {
    let file = || spec.to_path_buf();
    let plain_name = spec.components().count() == 1 && spec.extension().is_none();
    if spec.exists() || !plain_name {
        return Ok(file());
    }
    let Ok(text) = fs::read_to_string(APP_MODELS) else { return Ok(file()) };
    /// As far as the CLI reads the manifest: each model's id and file.
    #[derive(Deserialize)]
    struct Manifest {
        models: Vec<AppModel>,
    }
    #[derive(Deserialize)]
    struct AppModel {
        id: String,
        file: String,
    }
    let manifest: Manifest =
        serde_json::from_str(&text).with_context(|| format!("cannot parse {APP_MODELS}"))?;
    match manifest.models.iter().find(|m| Some(m.id.as_str()) == spec.to_str()) {
        Some(m) => Ok(Path::new(APP_MODELS).with_file_name(&m.file)),
        None => {
            let ids: Vec<&str> = manifest.models.iter().map(|m| m.id.as_str()).collect();
            bail!(
                "no checkpoint file {} and no model of that name in {APP_MODELS} ({})",
                spec.display(),
                ids.join(", ")
            )
        }
    }
}

/// Which checkpoint to load.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// Checkpoint file, or the id of one of the web app's models (`fmnist`, `emoji`; see
    /// www/models/manifest.json) [default: www/models/arpg-fmnist-int8.arpg, or for a baseline
    /// models/baselines/<mode>-fmnist-int8.arpg].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Decoding mode; picks the default checkpoint and must match the checkpoint's architecture
    /// [default: the checkpoint's own, else arpg].
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
}

/// A loaded checkpoint.
pub struct Loaded {
    pub engine: Engine,
    pub arch: Arch,
    pub path: PathBuf,
}

impl Loaded {
    /// The sampling options of `task`: the flags given, else the checkpoint's own defaults
    /// (`Engine::sample_defaults`: the library's unless the file records some).
    pub fn options(&self, sample: &SampleArgs, task: Task) -> Result<SampleOptions> {
        sample.options(&self.engine.sample_defaults(task))
    }
}

impl ModelArgs {
    pub fn load(&self) -> Result<Loaded> {
        let path = match &self.checkpoint {
            Some(p) => resolve_checkpoint(p)?,
            None => self.mode.unwrap_or(Mode::Arpg).default_checkpoint(),
        };
        let is_dir = |f: fs::File| match f.metadata()?.is_dir() {
            true => Err(std::io::Error::from(std::io::ErrorKind::IsADirectory)),
            false => Ok(f),
        };
        let file = fs::File::open(&path).and_then(is_dir).with_context(|| {
            let hint = if self.checkpoint.is_none() {
                " (pass --checkpoint, or write a random one with `arpg init --out FILE`)"
            } else {
                ""
            };
            format!("cannot read checkpoint {}{hint}", path.display())
        })?;
        // Read a tensor at a time: a model of a few GB loads in about its own size of memory.
        let engine = Engine::read_from(file, &Device::flex())
            .with_context(|| format!("cannot load checkpoint {}", path.display()))?;
        let arch = engine.model_config().arch;
        if let Some(mode) = self.mode {
            ensure!(
                mode.accepts(arch),
                "--mode {} does not match checkpoint {}, which holds a {} model (use --mode {} or another \
                 --checkpoint)",
                mode.name(),
                path.display(),
                arch.name(),
                Mode::of(arch).name()
            );
        }
        Ok(Loaded { engine, arch, path })
    }
}

/// `--help` for an option whose default a checkpoint may replace (`Engine::sample_defaults`).
fn model_default(what: &str, library: impl std::fmt::Display) -> String {
    format!("{what} [default: the checkpoint's own for the task, else {library}]")
}

/// How to decode, apart from the step count (which `eval` and `bench` take as a list). The
/// options a checkpoint may set are `None` when not given.
#[derive(Args, Debug)]
pub struct DecodeArgs {
    #[arg(long, help = model_default("Classifier-free guidance scale (1 = no guidance)", SampleOptions::default().cfg))]
    pub cfg: Option<f32>,
    #[arg(long, value_parser = choice::<CfgSchedule>(),
          help = model_default("How the guidance scale evolves over the steps", SampleOptions::default().cfg_schedule.name()))]
    pub cfg_schedule: Option<CfgSchedule>,
    #[arg(long, help = model_default("Softmax temperature", SampleOptions::default().temperature))]
    pub temperature: Option<f32>,
    /// Keep only the k most likely codes (0 = off).
    #[arg(long, default_value_t = SampleOptions::default().top_k)]
    pub top_k: usize,
    /// Nucleus sampling mass (1 = off).
    #[arg(long, default_value_t = SampleOptions::default().top_p)]
    pub top_p: f32,
    #[arg(long, value_parser = choice::<Schedule>(),
          help = model_default("How many tokens each step decodes", SampleOptions::default().schedule.name()))]
    pub schedule: Option<Schedule>,
    /// ARPG's decoding order: the paper's random one, or each image's most confident cells first
    /// (queries every open cell at every step).
    #[arg(long, value_parser = choice::<Order>(), default_value = SampleOptions::default().order.name())]
    pub order: Order,
    /// Random seed.
    #[arg(long, default_value_t = SampleOptions::default().seed)]
    pub seed: u64,
}

impl DecodeArgs {
    /// The library options for `steps`, `defaults` where a flag is not given (checked here for
    /// friendlier messages; the engine checks again).
    pub fn options(&self, steps: usize, defaults: &SampleOptions) -> Result<SampleOptions> {
        let cfg = self.cfg.unwrap_or(defaults.cfg);
        let temperature = self.temperature.unwrap_or(defaults.temperature);
        ensure!(steps >= 1, "--steps must be at least 1");
        ensure!(cfg.is_finite() && cfg >= 0.0, "--cfg must be a finite number >= 0");
        ensure!(
            temperature.is_finite() && temperature >= 0.0,
            "--temperature must be >= 0 (0: the most likely code)"
        );
        ensure!(self.top_p > 0.0 && self.top_p <= 1.0, "--top-p must be in (0, 1]");
        Ok(SampleOptions {
            steps,
            cfg,
            cfg_schedule: self.cfg_schedule.unwrap_or(defaults.cfg_schedule),
            temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            schedule: self.schedule.unwrap_or(defaults.schedule),
            order: self.order,
            step_rule: defaults.step_rule,
            seed: self.seed,
        })
    }
}

/// Sampling options of every command that generates.
#[derive(Args, Debug)]
pub struct SampleArgs {
    #[arg(long, help = model_default(
        "Decoding steps (ARPG / MaskGIT; raster always decodes one token per step)",
        SampleOptions::default().steps
    ))]
    pub steps: Option<usize>,
    #[command(flatten)]
    pub decode: DecodeArgs,
}

impl SampleArgs {
    /// The options given, `defaults` for those that are not.
    pub fn options(&self, defaults: &SampleOptions) -> Result<SampleOptions> {
        self.decode.options(self.steps.unwrap_or(defaults.steps), defaults)
    }
}

/// Sampling options as one line of PNG metadata.
fn describe(o: &SampleOptions) -> String {
    format!(
        "steps={} cfg={} cfg_schedule={} temperature={} top_k={} top_p={} schedule={} order={} seed={}",
        o.steps,
        o.cfg,
        o.cfg_schedule.name(),
        o.temperature,
        o.top_k,
        o.top_p,
        o.schedule.name(),
        o.order.name(),
        o.seed
    )
}

/// How RoPE treats grid cells beyond the training grid (out-painting, expansion).
#[derive(Args, Debug)]
pub struct RopeArgs {
    /// RoPE for grid cells beyond the training grid: plain extrapolation or NTK-scaled frequencies.
    #[arg(long, value_parser = choice::<RopeMode>(), default_value = RopeMode::default().name())]
    pub rope: RopeMode,
}

/// A class id or name (case-insensitive, punctuation ignored): a whole name, one of its
/// synonyms (ImageNet's "great white shark, white shark, ...") or either half of a name such as
/// "T-shirt/top" or "Ankle boot" when only one class has it, else the start of one (a prefix
/// naming one class only).
pub fn resolve_class(spec: &str, engine: &Engine) -> Result<usize> {
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
    let names = &names[..names.len().min(n)];
    let matching = |test: &dyn Fn(&str) -> bool, split: &[char]| -> Vec<usize> {
        (0..names.len()).filter(|&i| names[i].split(split).any(|part| test(&norm(part)))).collect()
    };
    let candidates = [
        matching(&|whole| whole == wanted, &[]),
        matching(&|part| part == wanted, &[',', '/']),
        matching(&|word| word == wanted, &[',', '/', ' ']),
        matching(&|part| !wanted.is_empty() && part.starts_with(&wanted), &[',', '/']),
    ];
    let Some(found) = candidates.into_iter().find(|c| !c.is_empty()) else {
        if names.is_empty() {
            bail!("unknown class {spec:?}: the checkpoint has no class names, use an id 0..={}", n - 1)
        }
        let listed =
            if names.len() <= 20 { format!(" or one of: {}", names.join(", ")) } else { String::new() };
        bail!("unknown class {spec:?}; use an id 0..={}{listed}", n - 1);
    };
    if let [id] = found[..] {
        return Ok(id);
    }
    let shown: Vec<String> = found.iter().take(12).map(|&i| format!("{i} ({})", names[i])).collect();
    let more = if found.len() > 12 { format!(" and {} more", found.len() - 12) } else { String::new() };
    bail!(
        "class {spec:?} names {} classes: {}{more}; give more of the name or an id",
        found.len(),
        shown.join("; ")
    )
}

pub fn class_label(class: usize, engine: &Engine) -> String {
    match engine.meta.class_names.get(class) {
        Some(name) => format!("{class} ({name})"),
        None => class.to_string(),
    }
}

/// The one progress-bar style: `label [=====>    ] 12/64 <what> <msg>, 3s`.
pub fn progress_bar(len: u64, label: impl Into<String>, what: &str) -> ProgressBar {
    let template = format!("{{prefix:>10}} [{{bar:32}}] {{pos}}/{{len}} {what} {{msg}} {{elapsed}}");
    let style = ProgressStyle::with_template(&template).expect("valid template").progress_chars("=> ");
    ProgressBar::new(len).with_style(style).with_prefix(label.into())
}

/// A progress bar over sampling steps; its length follows the engine's step events.
pub fn step_bar(label: &'static str) -> ProgressBar {
    progress_bar(0, label, "steps")
}

/// The step callback for call `call` of `calls`: sizes the bar and advances it.
pub fn on_step(bar: &ProgressBar, call: usize, calls: usize) -> impl FnMut(&StepEvent) + '_ {
    move |ev: &StepEvent| {
        let total = (calls * ev.steps) as u64;
        if bar.length() != Some(total) {
            bar.set_length(total);
            bar.set_position((call * ev.steps) as u64);
        }
        bar.inc(1);
    }
}

pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes `bytes` to `path`, creating its directory.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `ckpt` to `path` through a temporary file beside it, renamed into place once complete:
/// an error leaves no file behind. Returns the bytes written.
pub fn write_checkpoint(path: &Path, ckpt: &Checkpoint, dtype: DType, group_size: usize) -> Result<u64> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let written = (|| -> Result<u64> {
        let file = fs::File::create(&tmp)?;
        ckpt.write_to(std::io::BufWriter::new(&file), dtype, group_size)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        Ok(fs::metadata(path)?.len())
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}

/// A picture for the model (PNG, transparency composited onto the model's background, or JPEG),
/// fitted to its frame: a square of the tokenizer's size stays as it is; anything else is
/// centre-cropped to a square and resized to it (Catmull-Rom), as stderr says.
pub fn read_picture(path: &Path, engine: &Engine) -> Result<Image> {
    let bytes = read_file(path)?;
    let channels = engine.image_channels();
    let image = if bytes.starts_with(b"\x89PNG") {
        Image::from_png_over(&bytes, &engine.background())?
    } else {
        let decoded =
            image::load_from_memory(&bytes).with_context(|| format!("cannot load {}", path.display()))?;
        let rgb = decoded.to_rgb8();
        Image::from_raw(rgb.width() as usize, rgb.height() as usize, 3, rgb.into_raw())?
            .to_channels(channels)?
    };
    let size = engine.image_size();
    if (image.width, image.height) == (size, size) {
        return Ok(image);
    }
    let side = image.width.min(image.height);
    let square = image.crop((image.width - side) / 2, (image.height - side) / 2, side, side);
    let filter = image::imageops::FilterType::CatmullRom;
    let resized = match channels {
        1 => image::imageops::resize(
            &image::GrayImage::from_raw(side as u32, side as u32, square.pixels).expect("sizes match"),
            size as u32,
            size as u32,
            filter,
        )
        .into_raw(),
        _ => image::imageops::resize(
            &image::RgbImage::from_raw(side as u32, side as u32, square.pixels).expect("sizes match"),
            size as u32,
            size as u32,
            filter,
        )
        .into_raw(),
    };
    eprintln!(
        "{}: {}x{} centre-cropped to {side}x{side} and resized to the model's {size}x{size}",
        path.display(),
        image.width,
        image.height
    );
    Ok(Image::from_raw(size, size, channels, resized)?)
}

/// A PNG read with one channel per value of `background`, its transparency composited onto it
/// (`Image::from_png_over`): a picture for a model goes onto the model's background, as the
/// training pictures were and as the paint page does it.
pub fn read_png(path: &Path, background: &[u8]) -> Result<Image> {
    Image::from_png_over(&read_file(path)?, background)
        .with_context(|| format!("cannot load {}", path.display()))
}

/// PNG text chunks recording how an image was made.
pub fn provenance(what: String, ckpt: &Path, options: &SampleOptions) -> [(&'static str, String); 3] {
    provenance_plain(format!("{what} {}", describe(options)), ckpt)
}

/// PNG text chunks for an image made without sampling (`decode`).
pub fn provenance_plain(what: String, ckpt: &Path) -> [(&'static str, String); 3] {
    [
        ("Software", format!("arpg {}", env!("CARGO_PKG_VERSION"))),
        ("Source", ckpt.display().to_string()),
        ("Description", what),
    ]
}

pub fn write_png(path: &Path, image: &Image, texts: &[(&'static str, String)]) -> Result<()> {
    let texts: Vec<(&str, &str)> = texts.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bytes =
        image.try_to_png_with_text(&texts).with_context(|| format!("cannot encode {}", path.display()))?;
    write_file(path, &bytes)
}

/// Model and tokenizer sizes of `init` and the trainers.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// The shipped size (d_model 192, 6 layers, 8x8 tokens of a 32x32 image).
    Tiny,
    /// A few thousand parameters (4x4 tokens of a 16x16 image).
    Test,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_given_wins_over_the_model_default() {
        let model =
            SampleOptions { cfg: 4.0, cfg_schedule: CfgSchedule::Constant, ..SampleOptions::default() };
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            sample: SampleArgs,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(["x", "--temperature", "0.5"]).unwrap();
        let o = cli.sample.options(&model).unwrap();
        assert_eq!((o.cfg, o.cfg_schedule, o.temperature), (4.0, CfgSchedule::Constant, 0.5));
        let cli = <Cli as clap::Parser>::try_parse_from(["x", "--cfg", "1", "--steps", "3"]).unwrap();
        let o = cli.sample.options(&model).unwrap();
        assert_eq!((o.cfg, o.steps, o.temperature), (1.0, 3, model.temperature));
    }

    #[test]
    fn classes_are_found_by_id_or_by_name() {
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
        assert_eq!(find("snea"), Some(4), "a prefix of one class");
        assert_eq!(find("s"), None, "a prefix of two classes (Shirt, Sneaker)");
        assert_eq!(find_class("1", 3, &[]).ok(), Some(1));
        let imagenet: Vec<String> = [
            "goldfish, Carassius auratus",
            "great white shark, white shark",
            "golden retriever",
            "crane",
            "crane",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let find = |s: &str| find_class(s, imagenet.len(), &imagenet);
        assert_eq!(find("Golden Retriever").ok(), Some(2));
        assert_eq!(find("white shark").ok(), Some(1), "a synonym");
        assert_eq!(find("golden r").ok(), Some(2), "a unique prefix");
        let gold = find("gold").unwrap_err().to_string();
        assert!(gold.contains("0 (goldfish") && gold.contains("2 (golden retriever)"), "{gold}");
        assert!(find("crane").unwrap_err().to_string().contains("names 2 classes"));
        assert!(find_class("bag", 3, &[]).is_err());
    }

    #[test]
    fn modes_match_architectures() {
        assert!(Mode::Arpg.accepts(Arch::ArpgNoSharedKv));
        assert!(!Mode::Arpg.accepts(Arch::Raster));
        assert!(!Mode::Raster.accepts(Arch::MaskGit));
        for arch in Arch::ALL {
            assert!(Mode::of(arch).accepts(arch));
        }
        assert_eq!(Mode::Arpg.default_checkpoint(), PathBuf::from("www/models/arpg-fmnist-int8.arpg"));
        assert_eq!(
            Mode::Maskgit.default_checkpoint(),
            PathBuf::from("models/baselines/maskgit-fmnist-int8.arpg")
        );
    }
}
