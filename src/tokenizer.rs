//! Our small VQ tokenizer ([`VqTokenizer`]), and [`Tokenizer`], the tokenizer of an engine (ours or
//! LlamaGen's VQGAN, `vqgan`). Ours: a convolutional encoder, an l2-normalised codebook quantizer and a
//! convolutional decoder. Fully convolutional, so any image whose sides are multiples of
//! `2^downsample` maps to a token grid of that size (32x32 -> 8x8, 32x64 -> 8x16, ...).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::checkpoint::{CheckpointError, NamedTensor, TensorSource};
use crate::config::{TokenizerConfig, VqConfig};
use crate::vqgan::Vqgan;
use crate::weights;

fn conv(c_in: usize, c_out: usize, k: usize, stride: usize, pad: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .init(device)
}

/// Channels after stage `i` (0 = full resolution).
fn width(c: &VqConfig, i: usize) -> usize {
    c.channels << i
}

#[derive(Module, Debug)]
pub struct VqTokenizer {
    pub enc_in: Conv2d,
    /// Stride-2 convolutions, one per downsampling stage.
    pub enc_down: Vec<Conv2d>,
    pub enc_mid: Conv2d,
    pub enc_out: Conv2d,
    /// `[codebook_size, code_dim]`, compared after l2 normalisation.
    pub codebook: Param<Tensor<2>>,
    pub dec_in: Conv2d,
    pub dec_mid: Conv2d,
    /// Stride-2 transposed convolutions, one per stage.
    pub dec_up: Vec<ConvTranspose2d>,
    pub dec_out: Conv2d,
    #[module(skip)]
    pub config: VqConfig,
}

/// What a training step of the tokenizer needs.
#[derive(Debug)]
pub struct VqOutput {
    /// Reconstruction `[b, 1, H, W]` in `[0, 1]`.
    pub recon: Tensor<4>,
    /// Codebook + beta * commitment loss (scalar).
    pub vq_loss: Tensor<1>,
    /// Chosen codes `[b * h * w]`.
    pub indices: Tensor<1, Int>,
    /// Normalised encoder outputs `[b * h * w, code_dim]` (for restarting dead codes).
    pub latents: Tensor<2>,
}

/// The smallest norm [`l2_normalize`] divides by in our VQ.
const NORM_EPS: f32 = 1e-6;

/// Rows scaled to unit length; a norm below `eps` divides as `eps` (ours [`NORM_EPS`], LlamaGen's
/// `F.normalize` 1e-12).
pub(crate) fn l2_normalize(x: Tensor<2>, eps: f32) -> Tensor<2> {
    let n = x.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(eps); // [n, 1]
    x / n
}

impl VqTokenizer {
    pub fn new(c: &VqConfig, device: &Device) -> Self {
        let top = width(c, c.downsample);
        Self {
            enc_in: conv(c.image_channels, c.channels, 3, 1, 1, device),
            enc_down: (0..c.downsample)
                .map(|i| conv(width(c, i), width(c, i + 1), 4, 2, 1, device))
                .collect(),
            enc_mid: conv(top, top, 3, 1, 1, device),
            enc_out: conv(top, c.code_dim, 1, 1, 0, device),
            codebook: Param::from_tensor(Tensor::random(
                [c.codebook_size, c.code_dim],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                device,
            )),
            dec_in: conv(c.code_dim, top, 3, 1, 1, device),
            dec_mid: conv(top, top, 3, 1, 1, device),
            dec_up: (0..c.downsample)
                .rev()
                .map(|i| {
                    ConvTranspose2dConfig::new([width(c, i + 1), width(c, i)], [4, 4])
                        .with_stride([2, 2])
                        .with_padding([1, 1])
                        .with_initializer(Initializer::KaimingUniform {
                            gain: 1.0 / 3f64.sqrt(),
                            fan_out_only: false,
                        })
                        .init(device)
                })
                .collect(),
            dec_out: conv(c.channels, c.image_channels, 3, 1, 1, device),
            config: c.clone(),
        }
    }

    /// `[b, 1, H, W]` in `[0, 1]` -> latents `[b, code_dim, H/f, W/f]`.
    pub fn encode_latents(&self, images: Tensor<4>) -> Tensor<4> {
        let mut x = relu(self.enc_in.forward(images * 2.0 - 1.0));
        for down in &self.enc_down {
            x = relu(down.forward(x));
        }
        x = relu(self.enc_mid.forward(x));
        self.enc_out.forward(x)
    }

    /// The l2-normalised codebook `[K, code_dim]`.
    pub fn codes(&self) -> Tensor<2> {
        l2_normalize(self.codebook.val(), NORM_EPS)
    }

    /// Nearest codes (cosine) of latents `[b, c, h, w]`: `(indices [b*h*w], normalised latents [b*h*w, c])`.
    fn nearest(&self, latents: Tensor<4>) -> (Tensor<1, Int>, Tensor<2>) {
        let [b, c, h, w] = latents.dims();
        let z = l2_normalize(latents.permute([0, 2, 3, 1]).reshape([b * h * w, c]), NORM_EPS);
        let sim = z.clone().matmul(self.codes().transpose()); // [n, K]
        (sim.argmax(1).reshape([b * h * w]), z)
    }

    /// Images `[b, 1, H, W]` in `[0, 1]` -> codes `[b, h*w]` in raster order.
    pub fn encode(&self, images: Tensor<4>) -> Tensor<2, Int> {
        let [b, _, hh, ww] = images.dims();
        let f = self.config.factor();
        let (idx, _) = self.nearest(self.encode_latents(images));
        idx.reshape([b, (hh / f) * (ww / f)])
    }

    /// Code vectors `[b, code_dim, h, w]` -> images `[b, 1, h*f, w*f]` in `[0, 1]`.
    pub fn decode_latents(&self, z: Tensor<4>) -> Tensor<4> {
        let mut x = relu(self.dec_in.forward(z));
        x = relu(self.dec_mid.forward(x));
        for up in &self.dec_up {
            x = relu(up.forward(x));
        }
        sigmoid(self.dec_out.forward(x))
    }

    /// Codes `[b, h*w]` -> images `[b, 1, h*f, w*f]` in `[0, 1]`.
    pub fn decode(&self, indices: Tensor<2, Int>, h: usize, w: usize) -> Tensor<4> {
        let [b, n] = indices.dims();
        let z = self.codes().select(0, indices.reshape([n * b])); // [b*h*w, c]
        let c = self.config.code_dim;
        self.decode_latents(z.reshape([b, h, w, c]).permute([0, 3, 1, 2]))
    }

    /// The training forward: quantize with a straight-through estimator.
    pub fn forward(&self, images: Tensor<4>) -> VqOutput {
        let latents = self.encode_latents(images);
        let [b, c, h, w] = latents.dims();
        let (indices, z) = self.nearest(latents);
        let e = self.codes().select(0, indices.clone()); // [n, c]
        let codebook_loss = (z.clone().detach() - e.clone()).powf_scalar(2.0).mean();
        let commit_loss = (z.clone() - e.clone().detach()).powf_scalar(2.0).mean();
        let vq_loss = codebook_loss + commit_loss * self.config.beta as f64;
        let zq = z.clone() + (e - z.clone()).detach(); // straight-through
        let recon = self.decode_latents(zq.reshape([b, h, w, c]).permute([0, 3, 1, 2]));
        VqOutput { recon, vq_loss, indices, latents: z.detach() }
    }

    /// The dead-code remedy: codebook rows listed in `dead` are replaced by the given encoder
    /// outputs (`code_dim` values each), so every code stays in use. Training only (native: it
    /// reads the codebook back synchronously).
    pub fn restart_codes(self, dead: &[usize], replacements: &[Vec<f32>]) -> Self {
        if dead.is_empty() {
            return self;
        }
        let codebook = self.codebook.map(|cb| {
            let (grad, device, dims) = (cb.is_require_grad(), cb.device(), cb.dims());
            let mut rows = cb.into_data().try_into_vec::<f32>().expect("f32 codebook");
            for (&d, r) in dead.iter().zip(replacements) {
                rows[d * dims[1]..(d + 1) * dims[1]].copy_from_slice(r);
            }
            Tensor::from_data(TensorData::new(rows, dims), &device).set_require_grad(grad)
        });
        Self { codebook, ..self }
    }
}

/// An engine's tokenizer: ours, or LlamaGen's VQGAN (the paper's). Both take and give pictures
/// `[b, channels, H, W]` in `[0, 1]` and codes `[b, h*w]` in raster order.
// One tokenizer per engine: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Tokenizer {
    Vq(VqTokenizer),
    Vqgan(Vqgan),
}

impl Tokenizer {
    /// Random weights of `config`'s sizes.
    pub fn new(config: &TokenizerConfig, device: &Device) -> Self {
        match config {
            TokenizerConfig::Vq(c) => Tokenizer::Vq(VqTokenizer::new(c, device)),
            TokenizerConfig::Vqgan(c) => Tokenizer::Vqgan(Vqgan::new(c, device)),
        }
    }

    pub fn config(&self) -> TokenizerConfig {
        match self {
            Tokenizer::Vq(t) => TokenizerConfig::Vq(t.config.clone()),
            Tokenizer::Vqgan(t) => TokenizerConfig::Vqgan(t.config.clone()),
        }
    }

    pub fn encode(&self, images: Tensor<4>) -> Tensor<2, Int> {
        match self {
            Tokenizer::Vq(t) => t.encode(images),
            Tokenizer::Vqgan(t) => t.encode(images),
        }
    }

    pub fn decode(&self, codes: Tensor<2, Int>, h: usize, w: usize) -> Tensor<4> {
        match self {
            Tokenizer::Vq(t) => t.decode(codes, h, w),
            Tokenizer::Vqgan(t) => t.decode(codes, h, w),
        }
    }

    /// The weights from a checkpoint's tensors named `prefix.<module path>` (taken out of them).
    pub fn import(
        self,
        tensors: &mut (impl TensorSource + ?Sized),
        prefix: &str,
        device: &Device,
    ) -> Result<Self, CheckpointError> {
        Ok(match self {
            Tokenizer::Vq(t) => Tokenizer::Vq(weights::import(t, tensors, prefix, device)?),
            Tokenizer::Vqgan(t) => Tokenizer::Vqgan(weights::import(t, tensors, prefix, device)?),
        })
    }

    pub fn export(&self, prefix: &str) -> Vec<NamedTensor> {
        match self {
            Tokenizer::Vq(t) => weights::export(t, prefix),
            Tokenizer::Vqgan(t) => weights::export(t, prefix),
        }
    }
}
