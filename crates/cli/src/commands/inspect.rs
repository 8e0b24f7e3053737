//! `arpg inspect`: a checkpoint's configuration, parameter counts, storage and checksum.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use arpg::checkpoint::{self, DType, sha256_hex};
use arpg::choice::Choice;
use arpg::config::{Arch, TokenizerConfig};
use arpg::sampling::StepRule;

use crate::args::read_file;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .arpg checkpoint file.
    pub checkpoint: PathBuf,
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

pub fn run(args: Args) -> Result<()> {
    let path = &args.checkpoint;
    let bytes = read_file(path)?;
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
        match (m.pos_embed, m.multi_scale) {
            (true, true) => " + learned cell embedding of the full and the half grid (multi-scale)",
            (true, false) => " + learned cell embedding",
            _ => "",
        },
        m.dropout
    );
    match t {
        TokenizerConfig::Vq(t) => println!(
            "tokenizer   VQ: {} codes x {}, {} image channels, {} feature channels, {} downsamplings \
             (factor {}), {}px images, beta {}",
            t.codebook_size,
            t.code_dim,
            t.image_channels,
            t.channels,
            t.downsample,
            t.factor(),
            t.image_size,
            t.beta
        ),
        TokenizerConfig::Vqgan(t) => println!(
            "tokenizer   VQGAN: {} codes x {}, {} image channels, channels {} x {:?}, z {}, {} encoder and {} \
             decoder blocks a level (factor {}), {}px images",
            t.codebook_size,
            t.code_dim,
            t.image_channels,
            t.channels,
            t.ch_mult,
            t.z_channels,
            t.encoder_blocks,
            t.decoder_blocks,
            t.factor(),
            t.image_size
        ),
    }
    if let Some(s) = &info.sampling {
        println!(
            "sampling    defaults: {} steps ({}, {} steps), CFG {} ({}), temperature {}",
            s.steps,
            s.schedule.name(),
            match s.step_rule {
                StepRule::Spread => "spread",
                StepRule::Official => "the official code's",
            },
            s.cfg,
            s.cfg_schedule.name(),
            s.temperature
        );
        for (task, t) in &s.tasks {
            let mut parts = vec![];
            parts.extend(t.cfg.map(|c| format!("CFG {c}")));
            parts.extend(t.cfg_schedule.map(|c| format!("CFG schedule {}", c.name())));
            parts.extend(t.temperature.map(|c| format!("temperature {c}")));
            println!("            {}: {}", task.name(), parts.join(", "));
        }
    }
    println!(
        "training    dataset {:?}, {} steps, batch {}, seed {}, final loss {:.4}, {:.0}s",
        meta.dataset, meta.steps, meta.batch_size, meta.seed, meta.final_loss, meta.train_seconds
    );
    if !meta.class_names.is_empty() {
        let names: Vec<String> =
            meta.class_names.iter().enumerate().map(|(i, n)| format!("{i} {n}")).collect();
        println!("classes     {}", names.join(", "));
    }
    if !meta.background.is_empty() {
        let values: Vec<String> = meta.background.iter().map(u8::to_string).collect();
        println!("background  {} (what a smaller picture is framed on)", values.join(" "));
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
