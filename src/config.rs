//! Configurations that travel with a checkpoint: the generator, the VQ tokenizer
//! and the training metadata. Plain data, no tensors.

use serde::{Deserialize, Serialize};

use crate::choice::Choice;

/// Which network a checkpoint holds. All four share the same blocks, width and depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arch {
    /// Two-pass ARPG decoder with ONE shared K/V for pass 2 (the product).
    Arpg,
    /// ARPG whose pass-2 layers each own a K/V projection (the paper's memory ablation).
    ArpgNoSharedKv,
    /// LlamaGen-style raster-order causal stack, one token per step.
    Raster,
    /// MaskGIT-style bidirectional stack with confidence re-masking.
    MaskGit,
}

impl Arch {
    pub const ALL: [Arch; 4] = [Arch::Arpg, Arch::ArpgNoSharedKv, Arch::Raster, Arch::MaskGit];

    pub fn id(self) -> u16 {
        match self {
            Arch::Arpg => 0,
            Arch::ArpgNoSharedKv => 1,
            Arch::Raster => 2,
            Arch::MaskGit => 3,
        }
    }

    pub fn from_id(id: u16) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.id() == id)
    }

    /// The two-pass decoder (with or without sharing).
    pub fn is_arpg(self) -> bool {
        matches!(self, Arch::Arpg | Arch::ArpgNoSharedKv)
    }
}

impl Choice for Arch {
    const ALL: &'static [Self] = &Arch::ALL;
    const WHAT: &'static str = "architecture";
    fn name(self) -> &'static str {
        match self {
            Arch::Arpg => "arpg",
            Arch::ArpgNoSharedKv => "arpg-no-shared-kv",
            Arch::Raster => "raster",
            Arch::MaskGit => "maskgit",
        }
    }
}

crate::from_str_by_name!(Arch);

/// The generator. `n_layers` is the total depth: ARPG splits it in half
/// (pass 1 = content decoder, pass 2 = query decoder); the baselines use one
/// stack of `n_layers`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub arch: Arch,
    /// Image codes `0..vocab_size`; the embedding table adds `[MASK]`, the classes and a null class.
    pub vocab_size: usize,
    pub n_classes: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_layers: usize,
    /// SwiGLU hidden width.
    pub mlp_hidden: usize,
    /// The training grid (tokens). Sampling works on any grid; RoPE positions are grid coordinates.
    pub grid_h: usize,
    pub grid_w: usize,
    pub rope_base: f32,
    /// Dropout on residual / MLP / content embeddings during training (not on queries).
    pub dropout: f32,
    /// ARPG only (ours): a learned embedding per training-grid cell added to content and query
    /// inputs, so the model knows where the frame is (see `model.rs`). The checkpoint records it
    /// as the presence of the `pos.weight` tensor.
    #[serde(default)]
    pub pos_embed: bool,
    /// ARPG with a position table only (ours): the model also reads and writes the half grid
    /// (`model::Level::Half`: the picture at half the size, `grid_h/2 x grid_w/2` tokens), with
    /// rows of its own in the position table and RoPE at the same place in the picture. It trains
    /// on either grid alone and on the half grid followed by the full one, so expansion 2x from a
    /// half-size picture is a task it has seen. The checkpoint records it as the position table's
    /// row count.
    #[serde(default)]
    pub multi_scale: bool,
}

impl ModelConfig {
    /// The model we train and ship (Fashion-MNIST, 8x8 tokens): about 2.6M parameters, sized for
    /// training on 2 CPU cores.
    pub fn tiny(vocab_size: usize, n_classes: usize) -> Self {
        Self {
            arch: Arch::Arpg,
            vocab_size,
            n_classes,
            d_model: 192,
            n_heads: 3,
            n_layers: 6,
            mlp_hidden: 512,
            grid_h: 8,
            grid_w: 8,
            rope_base: 10_000.0,
            dropout: 0.1,
            pos_embed: true,
            multi_scale: false,
        }
    }

    /// A few thousand parameters: used by the tests.
    pub fn test(vocab_size: usize, n_classes: usize) -> Self {
        Self {
            arch: Arch::Arpg,
            vocab_size,
            n_classes,
            d_model: 32,
            n_heads: 2,
            n_layers: 4,
            mlp_hidden: 64,
            grid_h: 4,
            grid_w: 4,
            rope_base: 10_000.0,
            dropout: 0.0,
            pos_embed: true,
            multi_scale: false,
        }
    }

    /// The paper's sizes (ImageNet 256px, VQ-16: 16384 codes, 16x16 tokens, 1000 classes).
    pub fn paper(size: &str) -> Option<Self> {
        let (n_layers, d_model) = match size {
            "L" => (24, 1024),
            "XL" => (36, 1280),
            "XXL" => (48, 1536),
            _ => return None,
        };
        let base = Self {
            arch: Arch::Arpg,
            vocab_size: 16384,
            n_classes: 1000,
            n_layers,
            grid_h: 16,
            grid_w: 16,
            pos_embed: false,
            ..Self::tiny(0, 0)
        };
        // LlamaGen rounds the SwiGLU width to a multiple of 256.
        Some(base.with_width(d_model, 256))
    }

    /// Another width with the sizing rules every preset follows: heads of 64 dims (at least one)
    /// and LLaMA's SwiGLU width, 2/3 of 4 d, rounded up to a multiple of `multiple_of`.
    pub fn with_width(self, d_model: usize, multiple_of: usize) -> Self {
        Self {
            d_model,
            n_heads: (d_model / 64).max(1),
            mlp_hidden: (8 * d_model / 3).div_ceil(multiple_of) * multiple_of,
            ..self
        }
    }

    /// The same shape for another network (the baselines have no position table).
    pub fn with_arch(mut self, arch: Arch) -> Self {
        self.arch = arch;
        self.pos_embed &= arch.is_arpg();
        self.multi_scale &= arch.is_arpg();
        self
    }

    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    pub fn seq_len(&self) -> usize {
        self.grid_h * self.grid_w
    }

    /// Rows of the position table: the full grid's cells, the half grid's (multi-scale), the
    /// class slot. Saturating: a checkpoint's config is read before its grid is checked.
    pub fn pos_rows(&self) -> usize {
        let cells = |h: usize, w: usize| h.saturating_mul(w);
        let half = if self.multi_scale { cells(self.grid_h / 2, self.grid_w / 2) } else { 0 };
        cells(self.grid_h, self.grid_w).saturating_add(half).saturating_add(1)
    }

    /// Embedding rows: codes, `[MASK]`, classes, null class.
    pub fn n_embeddings(&self) -> usize {
        self.vocab_size + 1 + self.n_classes + 1
    }

    pub fn mask_id(&self) -> usize {
        self.vocab_size
    }

    pub fn class_id(&self, class: usize) -> usize {
        self.vocab_size + 1 + class
    }

    pub fn null_id(&self) -> usize {
        self.vocab_size + 1 + self.n_classes
    }

    /// Layers in pass 1 (content) and pass 2 (queries) for ARPG.
    pub fn arpg_split(&self) -> (usize, usize) {
        let content = self.n_layers / 2;
        (content, self.n_layers - content)
    }

    /// A config problem in words, if any: checked before any tensor is built.
    pub fn validate(&self) -> Result<(), String> {
        let hd = self.d_model.checked_div(self.n_heads).unwrap_or(0);
        if self.vocab_size == 0 || self.n_classes == 0 {
            return Err("vocab_size and n_classes must be > 0".into());
        }
        if self.n_heads == 0 || !self.d_model.is_multiple_of(self.n_heads) {
            return Err(format!("d_model {} is not a multiple of n_heads {}", self.d_model, self.n_heads));
        }
        if !hd.is_multiple_of(4) {
            return Err(format!("head dim {hd} must be a multiple of 4 (2D RoPE on adjacent pairs)"));
        }
        if self.n_layers < 2 || self.mlp_hidden == 0 || self.grid_h == 0 || self.grid_w == 0 {
            return Err("n_layers >= 2, mlp_hidden > 0 and a non-empty grid are required".into());
        }
        if self.pos_embed && !self.arch.is_arpg() {
            return Err(format!("pos_embed is for ARPG only, not {}", self.arch.name()));
        }
        let even = self.grid_h.is_multiple_of(2) && self.grid_w.is_multiple_of(2);
        if self.multi_scale && !(self.pos_embed && even) {
            return Err("multi_scale needs the position table and an even grid".into());
        }
        if !self.rope_base.is_finite() || self.rope_base <= 1.0 || !(0.0..1.0).contains(&self.dropout) {
            return Err("rope_base must be finite and > 1, and dropout in [0, 1)".into());
        }
        Ok(())
    }
}

/// Which tokenizer a checkpoint holds, with its sizes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenizerConfig {
    /// Our small VQ (`tokenizer::VqTokenizer`), trained here.
    Vq(VqConfig),
    /// LlamaGen's VQGAN (`vqgan::Vqgan`), imported: the paper's VQ-16.
    Vqgan(VqganConfig),
}

impl TokenizerConfig {
    pub fn codebook_size(&self) -> usize {
        match self {
            TokenizerConfig::Vq(c) => c.codebook_size,
            TokenizerConfig::Vqgan(c) => c.codebook_size,
        }
    }

    /// Pixels per token side.
    pub fn factor(&self) -> usize {
        match self {
            TokenizerConfig::Vq(c) => c.factor(),
            TokenizerConfig::Vqgan(c) => c.factor(),
        }
    }

    /// 1 (grey) or 3 (RGB).
    pub fn image_channels(&self) -> usize {
        match self {
            TokenizerConfig::Vq(c) => c.image_channels,
            TokenizerConfig::Vqgan(c) => c.image_channels,
        }
    }

    /// The side of the pictures it was trained on.
    pub fn image_size(&self) -> usize {
        match self {
            TokenizerConfig::Vq(c) => c.image_size,
            TokenizerConfig::Vqgan(c) => c.image_size,
        }
    }

    /// Our small VQ's sizes (the trainers' tokenizer), if that is what this is.
    pub fn as_vq(&self) -> Option<&VqConfig> {
        match self {
            TokenizerConfig::Vq(c) => Some(c),
            TokenizerConfig::Vqgan(_) => None,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        match self {
            TokenizerConfig::Vq(c) => c.validate(),
            TokenizerConfig::Vqgan(c) => c.validate(),
        }
    }
}

impl From<VqConfig> for TokenizerConfig {
    fn from(c: VqConfig) -> Self {
        TokenizerConfig::Vq(c)
    }
}

impl From<VqganConfig> for TokenizerConfig {
    fn from(c: VqganConfig) -> Self {
        TokenizerConfig::Vqgan(c)
    }
}

/// Our small VQ tokenizer: conv encoder (`downsample` stride-2 stages), an
/// l2-normalised codebook, conv decoder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VqConfig {
    pub codebook_size: usize,
    pub code_dim: usize,
    /// Channels of the image: 1 (grey) or 3 (RGB).
    pub image_channels: usize,
    /// Feature channels at full resolution; each downsampling stage doubles them.
    pub channels: usize,
    /// Number of stride-2 stages: the token grid is the image size / 2^downsample.
    pub downsample: usize,
    /// Image side the tokenizer was trained on (Fashion-MNIST: 28 padded to 32).
    pub image_size: usize,
    /// Weight of the commitment loss.
    pub beta: f32,
}

impl VqConfig {
    pub fn tiny() -> Self {
        Self {
            codebook_size: 256,
            code_dim: 8,
            image_channels: 1,
            channels: 32,
            downsample: 2,
            image_size: 32,
            beta: 0.25,
        }
    }

    pub fn test() -> Self {
        Self {
            codebook_size: 16,
            code_dim: 4,
            image_channels: 1,
            channels: 4,
            downsample: 2,
            image_size: 16,
            beta: 0.25,
        }
    }

    /// Pixels per token side (the patch size): `2^downsample`.
    pub fn factor(&self) -> usize {
        1 << self.downsample
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.codebook_size == 0 || self.code_dim == 0 || self.channels == 0 {
            return Err("tokenizer sizes must be > 0".into());
        }
        if !matches!(self.image_channels, 1 | 3) {
            return Err(format!("images have 1 or 3 channels, not {}", self.image_channels));
        }
        if self.downsample > 4 || !self.image_size.is_multiple_of(self.factor()) {
            return Err(format!("image_size {} is not a multiple of 2^{}", self.image_size, self.downsample));
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            // A v2 header cannot hold a non-finite value (JSON has none), so it must not load one.
            return Err(format!("beta must be a finite number >= 0, got {}", self.beta));
        }
        Ok(())
    }
}

/// GroupNorm groups in every VQGAN norm: the widths are multiples of it.
pub const VQGAN_GROUPS: usize = 32;

/// LlamaGen's VQGAN tokenizer (`vqgan::Vqgan`). Serialised into the checkpoint as it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VqganConfig {
    pub codebook_size: usize,
    pub code_dim: usize,
    pub image_channels: usize,
    /// Channels at full resolution (`ch`); level `i` has `channels * ch_mult[i]`.
    pub channels: usize,
    /// One entry per level; every level but the last halves the resolution.
    pub ch_mult: Vec<usize>,
    pub z_channels: usize,
    pub encoder_blocks: usize,
    pub decoder_blocks: usize,
    /// The picture side the tokenizer was trained at (a frame of `image_size / factor` tokens).
    pub image_size: usize,
}

impl VqganConfig {
    /// LlamaGen's VQ-16, as the paper uses it: 72M parameters.
    pub fn vq16() -> Self {
        Self {
            codebook_size: 16384,
            code_dim: 8,
            image_channels: 3,
            channels: 128,
            ch_mult: vec![1, 1, 2, 2, 4],
            z_channels: 256,
            encoder_blocks: 2,
            decoder_blocks: 3,
            image_size: 256,
        }
    }

    /// Pixels per token side: 2 to the number of levels minus one.
    pub fn factor(&self) -> usize {
        1 << self.ch_mult.len().saturating_sub(1)
    }

    pub fn width(&self, level: usize) -> usize {
        self.channels * self.ch_mult[level]
    }

    pub fn validate(&self) -> Result<(), String> {
        let widths_ok =
            self.ch_mult.iter().all(|&m| m > 0 && (self.channels * m).is_multiple_of(VQGAN_GROUPS));
        if self.channels == 0 || !widths_ok || !(1..=6).contains(&self.ch_mult.len()) {
            return Err(format!(
                "VQGAN widths must be multiples of {VQGAN_GROUPS} (channels {} x ch_mult {:?}, 1 to 6 levels)",
                self.channels, self.ch_mult
            ));
        }
        if self.codebook_size == 0 || self.code_dim == 0 || self.z_channels == 0 {
            return Err("VQGAN codebook, code and z sizes must be > 0".into());
        }
        if !matches!(self.image_channels, 1 | 3) || self.encoder_blocks == 0 || self.decoder_blocks == 0 {
            return Err("VQGAN images have 1 or 3 channels and every level a residual block".into());
        }
        if self.image_size == 0 || !self.image_size.is_multiple_of(self.factor()) {
            return Err(format!("image_size {} is not a multiple of {}", self.image_size, self.factor()));
        }
        Ok(())
    }
}

/// What training left behind, for the model card and `arpg inspect`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainMeta {
    pub dataset: String,
    pub steps: u64,
    pub batch_size: u32,
    pub seed: u64,
    pub final_loss: f32,
    pub train_seconds: f32,
    /// Class names in class-id order.
    pub class_names: Vec<String>,
    /// The colour the training pictures sit on, one value per image channel (Fashion-MNIST
    /// black, the emoji white): what a picture smaller than the frame is padded with. Empty
    /// means black (files that do not record it).
    #[serde(default)]
    pub background: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rope_base_must_be_finite_and_above_one() {
        assert!(ModelConfig::tiny(256, 10).validate().is_ok());
        for bad in [f32::INFINITY, f32::NAN, 1.0, -5.0] {
            let c = ModelConfig { rope_base: bad, ..ModelConfig::tiny(256, 10) };
            assert!(c.validate().unwrap_err().contains("rope_base"), "{bad} accepted");
        }
    }

    #[test]
    fn vq_beta_must_be_finite_and_not_negative() {
        assert!(VqConfig::tiny().validate().is_ok());
        for bad in [f32::INFINITY, f32::NAN, -0.25] {
            let c = VqConfig { beta: bad, ..VqConfig::tiny() };
            assert!(c.validate().unwrap_err().contains("beta"), "{bad} accepted");
        }
    }
}
