//! Checkpoint maintenance: `inspect`, `quantize`, `init`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};
use arpg::checkpoint::{self, Checkpoint, DType, quantization_error, sha256_hex};
use arpg::config::{Arch, ModelConfig, TokenizerConfig};
use arpg::engine::Engine;
use burn::tensor::Device;

use crate::cli::{DTypeArg, InitArgs, Preset};

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn mib(n: usize) -> f64 {
    n as f64 / (1024.0 * 1024.0)
}

/// Parameter count per group: the tensor name up to its `depth`-th '.' (the whole
/// name when it has fewer parts).
fn param_groups<'a>(
    tensors: impl IntoIterator<Item = (&'a str, &'a [usize])>,
    depth: usize,
) -> BTreeMap<String, usize> {
    let mut groups = BTreeMap::new();
    for (name, shape) in tensors {
        let group = name.split('.').take(depth).collect::<Vec<_>>().join(".");
        *groups.entry(group).or_insert(0) += shape.iter().product::<usize>();
    }
    groups
}

pub fn inspect(path: &Path) -> Result<()> {
    let bytes = read(path)?;
    let info =
        checkpoint::inspect(&bytes).with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let (m, t, meta) = (&info.model, &info.tokenizer, &info.meta);

    println!("file        {} ({} bytes, {:.2} MiB)", path.display(), bytes.len(), mib(bytes.len()));
    println!("sha256      {} (file)", sha256_hex(&bytes));
    println!("checksum    {} (stored, verified)", info.checksum_hex);
    match info.dtype {
        DType::Int8 => println!("storage     format v{}, int8, group size {}", info.version, info.group_size),
        d => println!("storage     format v{}, {d}", info.version),
    }
    let depth = match m.arch {
        Arch::Arpg | Arch::ArpgNoSharedKv => {
            let (content, query) = m.arpg_split();
            format!("{} ({content} content + {query} query)", m.n_layers)
        }
        Arch::Raster | Arch::MaskGit => m.n_layers.to_string(),
    };
    println!(
        "model       {}: d_model {}, {} heads (dim {}), {depth} layers, SwiGLU {}, grid {}x{}, \
         vocab {}, {} classes, RoPE base {}{}, dropout {}",
        m.arch.name(),
        m.d_model,
        m.n_heads,
        m.head_dim(),
        m.mlp_hidden,
        m.grid_h,
        m.grid_w,
        m.vocab_size,
        m.n_classes,
        m.rope_base,
        if m.pos_embed { " + learned cell embedding" } else { "" },
        m.dropout
    );
    println!(
        "tokenizer   {} codes x {}, {} channels, {} downsamplings (factor {}), {}px images, beta {}",
        t.codebook_size,
        t.code_dim,
        t.channels,
        t.downsample,
        t.factor(),
        t.image_size,
        t.beta
    );
    println!(
        "training    dataset {:?}, {} steps, batch {}, seed {}, final loss {:.4}, {:.0}s",
        meta.dataset, meta.steps, meta.batch_size, meta.seed, meta.final_loss, meta.train_seconds
    );
    if !meta.class_names.is_empty() {
        let names: Vec<String> =
            meta.class_names.iter().enumerate().map(|(i, n)| format!("{i} {n}")).collect();
        println!("classes     {}", names.join(", "));
    }

    // Top-level groups (name up to the first '.'), each followed by its second-level parts.
    let tensors = || info.tensors.iter().map(|(n, s)| (n.as_str(), s.as_slice()));
    let (groups, parts) = (param_groups(tensors(), 1), param_groups(tensors(), 2));
    let total: usize = groups.values().sum();
    println!("parameters  {total} ({:.3} M) in {} tensors", total as f64 / 1e6, info.tensors.len());
    let width = parts.keys().map(String::len).max().unwrap_or(0) + 2;
    let share = |n: usize| 100.0 * n as f64 / total.max(1) as f64;
    for (group, &count) in &groups {
        println!("  {group:<width$}  {count:>10}  {:5.1}%", share(count));
        let prefix = format!("{group}.");
        for (part, &n) in parts.iter().filter(|(p, _)| p.starts_with(&prefix)) {
            println!("    {part:<w$}  {n:>10}  {:5.1}%", share(n), w = width - 2);
        }
    }
    Ok(())
}

pub fn quantize(input: &Path, output: &Path, group_size: usize) -> Result<()> {
    ensure!(group_size >= 1, "--group-size must be at least 1");
    let in_bytes = read(input)?;
    let ckpt =
        Checkpoint::from_bytes(&in_bytes).with_context(|| format!("cannot load {}", input.display()))?;
    let out_bytes = ckpt.to_bytes(DType::Int8, group_size);
    let back = Checkpoint::from_bytes(&out_bytes).context("the int8 checkpoint does not load back")?;

    for t in &ckpt.tensors {
        let q =
            back.tensor(&t.name).ok_or_else(|| anyhow!("tensor {} is missing after quantization", t.name))?;
        ensure!(q.data.len() == t.data.len(), "tensor {} changed size when quantized", t.name);
    }
    let (max_err, mean_err) = quantization_error(&ckpt, &back);
    write(output, &out_bytes)?;
    println!("wrote {} (int8, group size {group_size})", output.display());
    println!(
        "size        {} -> {} bytes, ratio {:.3} ({:.2}x smaller)",
        in_bytes.len(),
        out_bytes.len(),
        out_bytes.len() as f64 / in_bytes.len().max(1) as f64,
        in_bytes.len() as f64 / out_bytes.len().max(1) as f64
    );
    println!("abs error   max {max_err:.3e}, mean {mean_err:.3e} over {} weights", ckpt.num_params());
    Ok(())
}

pub fn init(args: &InitArgs) -> Result<()> {
    let n_classes = arpg::data::CLASS_NAMES.len();
    let (tok, model) = match args.preset {
        Preset::Tiny => {
            let tok = TokenizerConfig::tiny();
            let model = ModelConfig::tiny(tok.codebook_size, n_classes);
            (tok, model)
        }
        Preset::Test => {
            let tok = TokenizerConfig::test();
            let model = ModelConfig::test(tok.codebook_size, n_classes);
            (tok, model)
        }
    };
    let model = model.with_arch(args.arch.into());
    model.validate().map_err(|e| anyhow!("invalid model config: {e}"))?;
    tok.validate().map_err(|e| anyhow!("invalid tokenizer config: {e}"))?;
    ensure!(args.group_size >= 1, "--group-size must be at least 1");

    let arch = model.arch;
    let device = Device::flex();
    device.seed(args.seed);
    let engine = Engine::new(&model, &tok, &device);
    let mut ckpt = engine.to_checkpoint();
    ckpt.meta.dataset = "random-init".into();
    ckpt.meta.seed = args.seed;
    ckpt.meta.class_names = arpg::data::CLASS_NAMES.iter().map(|s| s.to_string()).collect();
    let dtype = match args.dtype {
        DTypeArg::F32 => DType::F32,
        DTypeArg::Int8 => DType::Int8,
    };
    let bytes = ckpt.to_bytes(dtype, args.group_size);
    write(&args.out, &bytes)?;
    let params = ckpt.num_params();
    println!(
        "wrote {} ({} {}, {params} parameters, {}, {} bytes)",
        args.out.display(),
        arch.name(),
        format!("{:?}", args.preset).to_lowercase(),
        dtype,
        bytes.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_split_at_the_first_dot() {
        let tensors = [
            ("model.embed.weight", &[4usize, 3][..]),
            ("model.head", &[5][..]),
            ("tokenizer.x.y", &[2, 2][..]),
        ];
        let groups: Vec<(String, usize)> = param_groups(tensors, 1).into_iter().collect();
        assert_eq!(groups, [("model".to_string(), 17), ("tokenizer".to_string(), 4)]);
        let parts: Vec<(String, usize)> = param_groups(tensors, 2).into_iter().collect();
        let expected =
            [("model.embed".to_string(), 12), ("model.head".to_string(), 5), ("tokenizer.x".to_string(), 4)];
        assert_eq!(parts, expected);
    }
}
