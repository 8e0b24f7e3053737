//! `arpg import`: the paper's own models, from the official files, into one checkpoint. The
//! generator is a `.pt` of hp-l33/ARPG (`arpg_300m.pt`, ...), the tokenizer LlamaGen's VQ-16
//! (`vq_ds16_c2i.pt`). Both are `torch.save` pickles, read here without PyTorch by
//! `pytorch-reader`, which never runs the pickle: it builds tensors and plain values, and leaves
//! any other Python object as a name. We refuse such a file outright (a pickle that PyTorch
//! would load can run code), except for the `argparse.Namespace` the official training script
//! saves as `args`.
//!
//! Every size comes from the tensors' shapes; the token grid from `args` when the file has it,
//! else the official code's fixed 16x16 (`block_size` 256). Which tensors an official file must
//! hold is derived from our modules of the inferred sizes ([`generator_key`], [`vqgan_key`] map
//! each of our names to its official key): a missing, unexpected or misshapen tensor is an
//! error naming it (the official loader's `strict=False` would ignore it).
//!
//! What changes on the way: PyTorch's Linear weights `[out, in]` become burn's `[in, out]`; the
//! embedding table's last row (the official "drop token for scg", never read) is left out; f16,
//! bf16 and f64 values become f32.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use arpg::checkpoint::{Checkpoint, NamedTensor};
use arpg::config::{Arch, ModelConfig, TrainMeta, VqganConfig};
use arpg::model::Arpg;
use arpg::rng::Rng;
use arpg::sampling::{CfgSchedule, SampleDefaults, Schedule, StepRule};
use arpg::vqgan::Vqgan;
use arpg::weights;
use burn::tensor::Device;
use pytorch_reader::{DType, PickleValue, PytorchReader, Tensor};
use serde::Deserialize;

/// ImageNet-1k's class names, in class-id order (see NOTICE).
const IMAGENET_CLASSES: &str = include_str!("../data/imagenet-classes.json");

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: {message}")]
    Unreadable { file: String, message: String },
    #[error(
        "{file}: the pickle holds a Python object of type {type_name} at '{at}'; only tensors and plain values \
         are read (a pickle can run code when PyTorch loads it)"
    )]
    Unsafe { file: String, type_name: String, at: String },
    #[error("{file}: {message}")]
    Layout { file: String, message: String },
    #[error("{file}: no tensor '{key}', which an official {what} has")]
    Missing { file: String, key: String, what: &'static str },
    #[error("{file}: unexpected tensor '{key}', which an official {what} does not have")]
    Unexpected { file: String, key: String, what: &'static str },
    #[error("{file}: tensor '{key}' has shape {found:?}, expected {expected:?}")]
    Shape { file: String, key: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("the generator's {vocab} codes do not match the tokenizer's codebook of {codebook}")]
    Mismatch { vocab: usize, codebook: usize },
}

/// How to read the files.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Take the generator's `ema` weights instead of `model`.
    pub ema: bool,
    /// Attention heads (default: `dim / 64`, as in every official size).
    pub heads: Option<usize>,
}

/// One official `.pt` file: its state dict's tensors (read lazily) and its `args`, if any.
struct PtFile {
    name: String,
    tensors: HashMap<String, Tensor>,
    args: HashMap<String, PickleValue>,
    steps: Option<i64>,
}

/// Opens `path` and picks its state dict: `ema` when asked for, else `model`, `module` or
/// `state_dict`, else the file itself when it is a bare state dict.
fn open(path: &Path, ema: bool) -> Result<PtFile, ImportError> {
    let name = path.display().to_string();
    let unreadable = |e: pytorch_reader::PytorchError| ImportError::Unreadable {
        file: name.clone(),
        message: e.to_string(),
    };
    let root = PytorchReader::read_pickle_data(path, None).map_err(unreadable)?;
    check_plain(&root, &name, &mut String::new())?;
    let PickleValue::Dict(dict) = root else {
        return Err(ImportError::Layout { file: name, message: "the pickle is not a dictionary".into() });
    };
    let is_tensor = |v: &PickleValue| matches!(v, PickleValue::Unsupported(t) if t == "torch.Tensor");
    let key = if ema {
        if !dict.contains_key("ema") {
            return Err(ImportError::Layout {
                file: name,
                message: "--ema: the file holds no 'ema' weights".into(),
            });
        }
        Some("ema")
    } else {
        ["model", "module", "state_dict"].into_iter().find(|k| dict.contains_key(*k))
    };
    if key.is_none() && !dict.values().all(is_tensor) {
        let keys: BTreeSet<&str> = dict.keys().map(String::as_str).collect();
        return Err(ImportError::Layout {
            file: name,
            message: format!(
                "no 'model', 'module' or 'state_dict' entry, and not a bare state dict (keys: {keys:?})"
            ),
        });
    }
    let reader = match key {
        Some(k) => PytorchReader::with_top_level_key(path, k),
        None => PytorchReader::new(path),
    }
    .map_err(unreadable)?;
    let args = match dict.get("args") {
        Some(PickleValue::Dict(args)) => args.clone(),
        _ => HashMap::new(),
    };
    let steps = match dict.get("steps") {
        Some(PickleValue::Int(s)) => Some(*s),
        _ => None,
    };
    Ok(PtFile { name, tensors: reader.into_tensors(), args, steps })
}

/// Refuses any value that is not a tensor or a plain value, naming where it is.
fn check_plain(v: &PickleValue, file: &str, at: &mut String) -> Result<(), ImportError> {
    let visit = |key: &str, v: &PickleValue, at: &mut String| {
        let len = at.len();
        if !at.is_empty() {
            at.push('.');
        }
        at.push_str(key);
        let r = check_plain(v, file, at);
        at.truncate(len);
        r
    };
    match v {
        PickleValue::Dict(d) => d.iter().try_for_each(|(k, v)| visit(k, v, at)),
        PickleValue::List(l) => l.iter().enumerate().try_for_each(|(i, v)| visit(&i.to_string(), v, at)),
        // The official training script's `args`: its attributes stay unread (the token grid then
        // comes from the official default).
        PickleValue::Unsupported(t) if t == "torch.Tensor" || t == "argparse.Namespace" => Ok(()),
        PickleValue::Unsupported(t) => {
            Err(ImportError::Unsafe { file: file.into(), type_name: t.clone(), at: at.clone() })
        }
        _ => Ok(()),
    }
}

impl PtFile {
    fn shape(&self, key: &str, what: &'static str) -> Result<&[usize], ImportError> {
        self.tensors.get(key).map(Tensor::shape).ok_or_else(|| ImportError::Missing {
            file: self.name.clone(),
            key: key.into(),
            what,
        })
    }

    /// How many `prefix.{i}.` entries the state dict has (layers, blocks).
    fn count(&self, prefix: &str) -> usize {
        (0..).take_while(|i| self.tensors.keys().any(|k| k.starts_with(&format!("{prefix}.{i}.")))).count()
    }

    fn arg(&self, name: &str) -> Option<usize> {
        match self.args.get(name) {
            Some(PickleValue::Int(v)) => usize::try_from(*v).ok(),
            _ => None,
        }
    }

    fn layout_error(&self, message: String) -> ImportError {
        ImportError::Layout { file: self.name.clone(), message }
    }
}

const GENERATOR: &str = "ARPG generator";
const TOKENIZER: &str = "VQGAN tokenizer";

/// The generator's sizes, from its shapes.
fn generator_config(f: &PtFile, heads: Option<usize>) -> Result<ModelConfig, ImportError> {
    if f.tensors.contains_key("encoder.conv_in.weight") {
        return Err(f.layout_error("this is a VQ tokenizer, not an ARPG generator (give it as --vq)".into()));
    }
    let [rows, d] = dims(f.shape("embeddings.weight", GENERATOR)?, f, "embeddings.weight")?;
    let [vocab, _] = dims(f.shape("head.weight", GENERATOR)?, f, "head.weight")?;
    let [hidden, _] =
        dims(f.shape("layers.self_dec.0.ffn.w1.weight", GENERATOR)?, f, "layers.self_dec.0.ffn.w1.weight")?;
    // Embedding rows: codes, [MASK], classes, the unconditional label, one unused.
    let n_classes = rows.checked_sub(vocab.saturating_add(3)).filter(|&c| c > 0).ok_or_else(|| {
        f.layout_error(format!("{rows} embedding rows leave no class beside {vocab} codes"))
    })?;
    let side = match (f.arg("block_size"), f.arg("image_size"), f.arg("downsample_size")) {
        (Some(t), _, _) => (t as f64).sqrt() as usize,
        (None, Some(px), Some(ds)) if ds > 0 => px / ds,
        _ => 16,
    };
    let n_heads = heads.unwrap_or((d / 64).max(1));
    let config = ModelConfig {
        arch: Arch::Arpg,
        vocab_size: vocab,
        n_classes,
        d_model: d,
        n_heads,
        n_layers: f.count("layers.self_dec") + f.count("layers.cross_dec"),
        mlp_hidden: hidden,
        grid_h: side,
        grid_w: side,
        rope_base: 10_000.0,
        dropout: 0.0,
        pos_embed: false,
        multi_scale: false,
    };
    config.validate().map_err(|e| f.layout_error(format!("the shapes make no valid generator: {e}")))?;
    Ok(config)
}

/// The tokenizer's sizes, from its shapes.
fn vqgan_config(f: &PtFile, grid: usize) -> Result<VqganConfig, ImportError> {
    if f.tensors.contains_key("embeddings.weight") {
        return Err(
            f.layout_error("this is an ARPG generator, not a VQ tokenizer (give it as --arpg)".into())
        );
    }
    let conv_in = f.shape("encoder.conv_in.weight", TOKENIZER)?;
    let (channels, image_channels) = (conv_in[0], conv_in.get(1).copied().unwrap_or(0));
    let levels = f.count("encoder.conv_blocks");
    let ch_mult = (0..levels)
        .map(|i| {
            Ok(f.shape(&format!("encoder.conv_blocks.{i}.res.0.conv1.weight"), TOKENIZER)?[0]
                / channels.max(1))
        })
        .collect::<Result<Vec<_>, ImportError>>()?;
    let [codebook_size, code_dim] =
        dims(f.shape("quantize.embedding.weight", TOKENIZER)?, f, "quantize.embedding.weight")?;
    let config = VqganConfig {
        codebook_size,
        code_dim,
        image_channels,
        channels,
        z_channels: f.shape("encoder.conv_out.weight", TOKENIZER)?[0],
        encoder_blocks: f.count("encoder.conv_blocks.0.res"),
        decoder_blocks: f.count("decoder.conv_blocks.0.res"),
        image_size: grid << levels.saturating_sub(1),
        ch_mult,
    };
    config.validate().map_err(|e| f.layout_error(format!("the shapes make no valid VQGAN: {e}")))?;
    Ok(config)
}

fn dims(shape: &[usize], f: &PtFile, key: &str) -> Result<[usize; 2], ImportError> {
    shape
        .try_into()
        .map_err(|_| f.layout_error(format!("tensor '{key}' has shape {shape:?}, expected a matrix")))
}

/// The official key of one of our generator's tensors (`Arpg`, names under `model.`).
pub fn generator_key(ours: &str) -> Option<String> {
    let parts: Vec<&str> = ours.split('.').collect();
    let tail = |rest: &[&str]| -> Option<String> {
        Some(match rest {
            ["norm_attn", "gamma"] => "attn_norm.weight".into(),
            ["ff", "norm", "gamma"] => "ffn_norm.weight".into(),
            ["ff", w, "weight"] => format!("ffn.{}.weight", swiglu(w)?),
            [p @ ("q" | "k" | "v"), "weight"] => format!("attn.to_{p}.weight"),
            ["o", "weight"] => "attn.proj.weight".into(),
            _ => return None,
        })
    };
    match parts.as_slice() {
        ["embed", "weight"] => Some("embeddings.weight".into()),
        ["content", i, rest @ ..] => Some(format!("layers.self_dec.{i}.{}", tail(rest)?)),
        ["queries", i, rest @ ..] => Some(format!("layers.cross_dec.{i}.{}", tail(rest)?)),
        ["content_norm", "gamma"] => Some("layers.norm.weight".into()),
        ["shared_kv", p @ ("k" | "v"), "weight"] => Some(format!("layers.to_{p}.weight")),
        ["out_norm", "gamma"] => Some("norm.weight".into()),
        ["head", "weight"] => Some("head.weight".into()),
        _ => None,
    }
}

fn swiglu(ours: &str) -> Option<&'static str> {
    match ours {
        "gate" => Some("w1"),
        "up" => Some("w3"),
        "down" => Some("w2"),
        _ => None,
    }
}

/// The official key of one of our VQGAN's tensors (`Vqgan`, names under `tokenizer.`).
pub fn vqgan_key(ours: &str) -> String {
    if ours == "codebook" {
        return "quantize.embedding.weight".into();
    }
    let parts: Vec<String> = ours
        .split('.')
        .map(|p| match p {
            "gamma" => "weight".into(),
            "beta" => "bias".into(),
            "mid_res_in" => "mid.0".into(),
            "mid_attn" => "mid.1".into(),
            "mid_res_out" => "mid.2".into(),
            p => p.into(),
        })
        .collect();
    parts.join(".")
}

/// Official state-dict entries that hold no weight of the model.
const BOOKKEEPING: [&str; 1] = ["quantize.codebook_used"];

/// Our tensors `ours` (names and shapes, under a prefix such as `model.`), read from `f` through
/// `official` (our name without the prefix -> the official key): Linear weights (every matrix
/// but the embedding and the codebook) transposed, the embedding's unused last row left out.
/// A tensor of `f` that no name of ours maps to is an error, bookkeeping entries aside.
fn convert(
    f: &PtFile,
    ours: Vec<(String, Vec<usize>)>,
    what: &'static str,
    official: impl Fn(&str) -> Option<String>,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<NamedTensor>, ImportError> {
    let mut used = BTreeSet::new();
    let mut out = Vec::with_capacity(ours.len());
    for (name, shape) in ours {
        let local = name.split_once('.').map_or(name.as_str(), |(_, rest)| rest);
        let key = official(local).unwrap_or_else(|| panic!("no official key for our tensor '{name}'"));
        let t = f.tensors.get(&key).ok_or_else(|| ImportError::Missing {
            file: f.name.clone(),
            key: key.clone(),
            what,
        })?;
        let linear = shape.len() == 2
            && key.ends_with(".weight")
            && key != "embeddings.weight"
            && !key.starts_with("quantize.");
        let rows_dropped = usize::from(key == "embeddings.weight"); // the unused last row
        let expected: Vec<usize> = match (linear, shape.as_slice()) {
            (true, [i, o]) => vec![*o, *i],
            (_, [r, d]) if rows_dropped == 1 => vec![r + 1, *d],
            _ => shape.clone(),
        };
        if t.shape() != expected.as_slice() {
            return Err(ImportError::Shape {
                file: f.name.clone(),
                key,
                expected,
                found: t.shape().to_vec(),
            });
        }
        let mut data = read_f32(t, &f.name)?;
        if linear {
            data = transpose(&data, expected[0], expected[1]);
        }
        data.truncate(shape.iter().product());
        progress(t.byte_len());
        used.insert(key);
        out.push(NamedTensor { name, shape, data });
    }
    if let Some(key) =
        f.tensors.keys().filter(|k| !used.contains(*k) && !BOOKKEEPING.contains(&k.as_str())).min()
    {
        return Err(ImportError::Unexpected { file: f.name.clone(), key: key.clone(), what });
    }
    Ok(out)
}

/// A tensor's values as f32 (f16, bf16 and f64 converted; integers refused).
fn read_f32(t: &Tensor, file: &str) -> Result<Vec<f32>, ImportError> {
    let bytes =
        t.read().map_err(|e| ImportError::Unreadable { file: file.into(), message: e.to_string() })?;
    let values = match t.dtype() {
        DType::F32 => bytes.chunks_exact(4).map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])).collect(),
        DType::F16 => {
            bytes.chunks_exact(2).map(|b| half::f16::from_ne_bytes([b[0], b[1]]).to_f32()).collect()
        }
        DType::BF16 => {
            bytes.chunks_exact(2).map(|b| half::bf16::from_ne_bytes([b[0], b[1]]).to_f32()).collect()
        }
        DType::F64 => {
            bytes.chunks_exact(8).map(|b| f64::from_ne_bytes(b.try_into().expect("8 bytes")) as f32).collect()
        }
        other => {
            return Err(ImportError::Layout {
                file: file.into(),
                message: format!("tensor '{}' holds {other:?} values, not floating point", t.name),
            });
        }
    };
    Ok(values)
}

/// `[rows, cols]` row-major -> `[cols, rows]`.
fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = x[r * cols + c];
        }
    }
    out
}

/// The official FID settings (its GETTING_STARTED: arccos, 64 steps, CFG 5.0 / 6.0 / 7.5 with the
/// linear schedule for L / XL / XXL); other sizes get `generate`'s own defaults (CFG 4).
fn sampling_defaults(c: &ModelConfig) -> SampleDefaults {
    let cfg = match (c.d_model, c.n_layers) {
        (1024, 24) => 5.0,
        (1280, 36) => 6.0,
        (1536, 48) => 7.5,
        _ => 4.0,
    };
    SampleDefaults {
        steps: 64,
        cfg,
        cfg_schedule: CfgSchedule::Linear,
        schedule: Schedule::Arccos,
        temperature: 1.0,
        step_rule: StepRule::Official,
        tasks: Default::default(), // the official code has no other tasks
    }
}

fn class_names(n: usize) -> Vec<String> {
    #[derive(Deserialize)]
    struct Classes {
        classes: Vec<String>,
    }
    let imagenet: Classes = serde_json::from_str(IMAGENET_CLASSES).expect("the committed class list parses");
    match n {
        1000 => imagenet.classes,
        _ => (0..n).map(|i| format!("class {i}")).collect(),
    }
}

/// The paper's model as one checkpoint: the generator of `arpg`, the tokenizer of `vq`.
/// `progress(done, total)` counts the bytes of the two files read so far.
pub fn import(
    arpg: &Path,
    vq: &Path,
    opts: &Options,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Checkpoint, ImportError> {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let total = size(arpg) + size(vq);
    let mut done = 0;
    let mut tick = |bytes: usize| {
        done += bytes as u64;
        progress(done, total);
    };
    let (model, mut tensors, steps) = read_generator(arpg, opts, &mut tick)?;
    let (tokenizer, vq_tensors) = read_vqgan(vq, model.grid_h, &mut tick)?;
    if tokenizer.codebook_size != model.vocab_size {
        return Err(ImportError::Mismatch { vocab: model.vocab_size, codebook: tokenizer.codebook_size });
    }
    tensors.extend(vq_tensors);
    Ok(official_checkpoint(
        model,
        tokenizer,
        tensors,
        "imagenet-1k (official ARPG weights, hp-l33/ARPG)",
        steps,
    ))
}

/// An official generator file: its sizes, its tensors under our names (`model.*`), and the
/// training steps it records (0 if none). `progress(bytes)` after each tensor read.
pub fn read_generator(
    path: &Path,
    opts: &Options,
    progress: &mut dyn FnMut(usize),
) -> Result<(ModelConfig, Vec<NamedTensor>, u64), ImportError> {
    let f = open(path, opts.ema)?;
    let model = generator_config(&f, opts.heads)?;
    let ours = weights::shapes(&Arpg::new(&model, &Device::flex()), "model");
    let tensors = convert(&f, ours, GENERATOR, generator_key, progress)?;
    Ok((model, tensors, f.steps.and_then(|s| u64::try_from(s).ok()).unwrap_or(0)))
}

/// An official VQGAN file for a token grid `grid` cells a side: its sizes and its tensors under
/// our names (`tokenizer.*`). `progress(bytes)` after each tensor read.
pub fn read_vqgan(
    path: &Path,
    grid: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<(VqganConfig, Vec<NamedTensor>), ImportError> {
    let f = open(path, false)?;
    let config = vqgan_config(&f, grid)?;
    let ours = weights::shapes(&Vqgan::new(&config, &Device::flex()), "tokenizer");
    let tensors = convert(&f, ours, TOKENIZER, |k| Some(vqgan_key(k)), progress)?;
    Ok((config, tensors))
}

/// A checkpoint of the paper's family: what `import` records beside the weights (ImageNet's class
/// names for 1000 classes, the official sampling defaults).
fn official_checkpoint(
    model: ModelConfig,
    tokenizer: VqganConfig,
    tensors: Vec<NamedTensor>,
    dataset: &str,
    steps: u64,
) -> Checkpoint {
    let meta = TrainMeta {
        dataset: dataset.into(),
        steps,
        class_names: class_names(model.n_classes),
        ..TrainMeta::default()
    };
    Checkpoint {
        sampling: Some(sampling_defaults(&model)),
        model,
        tokenizer: tokenizer.into(),
        meta,
        tensors,
    }
}

/// The paper's sizes: `"L"`, `"XL"` or `"XXL"` with VQ-16 (ImageNet, 1000 classes, 16x16 tokens).
/// `"test"`: the same layout, frame and classes at a test size (2 layers of width 64, a VQGAN of
/// VQ-16's levels and codebook at a quarter of its widths), for the browser tests.
pub fn official_configs(size: &str) -> Option<(ModelConfig, VqganConfig)> {
    if size == "test" {
        let model = ModelConfig { n_layers: 2, dropout: 0.0, ..ModelConfig::paper("L")? }.with_width(64, 32);
        let vq = VqganConfig {
            channels: 32,
            z_channels: 64,
            encoder_blocks: 1,
            decoder_blocks: 1,
            ..VqganConfig::vq16()
        };
        return Some((model, vq));
    }
    let model = ModelConfig { dropout: 0.0, ..ModelConfig::paper(size)? };
    Some((model, VqganConfig::vq16()))
}

/// Random weights of an official size (`arpg init --preset arpg-l`: tests and benches), drawn on
/// the host from `seed` without building the modules: norms 1, biases 0, every matrix and kernel
/// uniform with std `1/sqrt(fan in)`, the embedding table and the codebook with std 1.
pub fn random_official(size: &str, seed: u64) -> Option<Checkpoint> {
    let (model, tokenizer) = official_configs(size)?;
    let device = Device::flex();
    let shapes = weights::shapes(&Arpg::new(&model, &device), "model")
        .into_iter()
        .chain(weights::shapes(&Vqgan::new(&tokenizer, &device), "tokenizer"));
    let mut rng = Rng::new(seed);
    let tensors = shapes
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let std = match shape.as_slice() {
                _ if name.ends_with("embed.weight") || name.ends_with("codebook") => 1.0,
                [fan_in, _] => 1.0 / (*fan_in as f64).sqrt(),
                [_, c_in, kh, kw] => 1.0 / ((c_in * kh * kw) as f64).sqrt(),
                _ => 0.0, // norm gains 1, biases 0, below
            };
            let base = if name.ends_with("gamma") { 1.0 } else { 0.0 };
            let bound = std * 3f64.sqrt();
            let data = (0..n).map(|_| (base + (rng.next_f64() * 2.0 - 1.0) * bound) as f32).collect();
            NamedTensor { name, shape, data }
        })
        .collect();
    Some(official_checkpoint(model, tokenizer, tensors, "random-init (official shapes)", 0))
}
