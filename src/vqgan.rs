//! LlamaGen's VQGAN tokenizer (the paper's VQ-16): a convolutional encoder and decoder of
//! GroupNorm + swish residual blocks, single-head attention at the lowest resolution and in the
//! middle, and an l2-normalised codebook. Every size comes from [`VqganConfig`]; VQ-16 is
//! [`VqganConfig::vq16`] (256x256 px <-> 16x16 tokens of 16384 codes).
//!
//! Conventions copied from the official code (LlamaGen `vq_model.py`, as hp-l33/ARPG ships it):
//! - GroupNorm of 32 groups, eps 1e-6; swish `x * sigmoid(x)`;
//! - the encoder has `encoder_blocks` residual blocks per level, the decoder `decoder_blocks`
//!   (2 and 3 in VQ-16: its `ModelArgs.num_res_blocks = 4` is never passed on);
//! - downsampling pads one zero row and column at the bottom and right, then a 3x3 stride-2
//!   convolution; upsampling is nearest x2, then a 3x3 convolution;
//! - the codebook is stored as trained and l2-normalised at use, like the encoder's output;
//!   the nearest code is the first one of least distance;
//! - pixels in as `(p / 255 - 0.5) / 0.5`, out as `clamp(127.5 x + 128, 0, 255)` truncated
//!   ([`to_unit`], [`from_unit`]: this module works on `[0, 1]` pictures like `tokenizer`).
//!
//! Module paths mirror the official state dict's keys (`encoder.conv_blocks.0.res.1.conv2`),
//! except GroupNorm's `gamma`/`beta` (PyTorch: `weight`/`bias`) and the middle blocks
//! (`mid_res_in`, `mid_attn`, `mid_res_out`; PyTorch: `mid.0`, `mid.1`, `mid.2`).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Distribution, Int, Tensor};

use crate::config::{VQGAN_GROUPS as GROUPS, VqganConfig};
use crate::model::attend;
use crate::tokenizer::l2_normalize;

fn conv(c_in: usize, c_out: usize, k: usize, device: &Device) -> Conv2d {
    let pad = k / 2;
    Conv2dConfig::new([c_in, c_out], [k, k])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .init(device)
}

fn group_norm(c: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new(GROUPS, c).with_epsilon(1e-6).init(device)
}

fn swish(x: Tensor<4>) -> Tensor<4> {
    x.clone() * sigmoid(x)
}

#[derive(Module, Debug)]
pub struct ResBlock {
    pub norm1: GroupNorm,
    pub conv1: Conv2d,
    pub norm2: GroupNorm,
    pub conv2: Conv2d,
    /// A 1x1 convolution where the width changes.
    pub nin_shortcut: Option<Conv2d>,
}

impl ResBlock {
    fn new(c_in: usize, c_out: usize, device: &Device) -> Self {
        Self {
            norm1: group_norm(c_in, device),
            conv1: conv(c_in, c_out, 3, device),
            norm2: group_norm(c_out, device),
            conv2: conv(c_out, c_out, 3, device),
            nin_shortcut: (c_in != c_out).then(|| conv(c_in, c_out, 1, device)),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = self.conv1.forward(swish(self.norm1.forward(x.clone())));
        let h = self.conv2.forward(swish(self.norm2.forward(h)));
        let x = match &self.nin_shortcut {
            Some(shortcut) => shortcut.forward(x),
            None => x,
        };
        x + h
    }
}

/// Single-head self-attention over the pixels, projections as 1x1 convolutions.
#[derive(Module, Debug)]
pub struct AttnBlock {
    pub norm: GroupNorm,
    pub q: Conv2d,
    pub k: Conv2d,
    pub v: Conv2d,
    pub proj_out: Conv2d,
}

impl AttnBlock {
    fn new(c: usize, device: &Device) -> Self {
        Self {
            norm: group_norm(c, device),
            q: conv(c, c, 1, device),
            k: conv(c, c, 1, device),
            v: conv(c, c, 1, device),
            proj_out: conv(c, c, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let n = self.norm.forward(x.clone());
        // [b, c, h, w] -> [b, 1, h*w, c]: one head of c dims
        let seq = |t: Tensor<4>| t.reshape([b, c, h * w]).swap_dims(1, 2).reshape([b, 1, h * w, c]);
        let (q, k, v) =
            (seq(self.q.forward(n.clone())), seq(self.k.forward(n.clone())), seq(self.v.forward(n)));
        let a = attend(q, k, v, None).reshape([b, h * w, c]).swap_dims(1, 2).reshape([b, c, h, w]);
        x + self.proj_out.forward(a)
    }
}

/// A stride-2 3x3 convolution after one zero row and column at the bottom and right.
#[derive(Module, Debug)]
pub struct Downsample {
    pub conv: Conv2d,
}

/// Nearest x2, then a 3x3 convolution.
#[derive(Module, Debug)]
pub struct Upsample {
    pub conv: Conv2d,
}

/// One resolution of the encoder or decoder.
#[derive(Module, Debug)]
pub struct Level {
    pub res: Vec<ResBlock>,
    /// One after each residual block, at the lowest resolution only.
    pub attn: Vec<AttnBlock>,
    pub downsample: Option<Downsample>,
    pub upsample: Option<Upsample>,
}

impl Level {
    /// `blocks` residual blocks from `c_in` to `c_out` channels, each followed by attention at the
    /// lowest resolution (`attention`); no resampling.
    fn new(c_in: usize, c_out: usize, blocks: usize, attention: bool, device: &Device) -> Self {
        let width = |j: usize| if j == 0 { c_in } else { c_out };
        Self {
            res: (0..blocks).map(|j| ResBlock::new(width(j), c_out, device)).collect(),
            attn: (0..blocks).filter(|_| attention).map(|_| AttnBlock::new(c_out, device)).collect(),
            downsample: None,
            upsample: None,
        }
    }

    fn forward(&self, mut h: Tensor<4>) -> Tensor<4> {
        for (i, res) in self.res.iter().enumerate() {
            h = res.forward(h);
            if let Some(attn) = self.attn.get(i) {
                h = attn.forward(h);
            }
        }
        if let Some(down) = &self.downsample {
            h = down.conv.forward(h); // padded bottom and right by its padding config
        }
        if let Some(up) = &self.upsample {
            let [b, c, hh, ww] = h.dims();
            let doubled: Tensor<6> = h.reshape([b, c, hh, 1, ww, 1]).expand([b, c, hh, 2, ww, 2]);
            h = up.conv.forward(doubled.reshape([b, c, 2 * hh, 2 * ww]));
        }
        h
    }
}

#[derive(Module, Debug)]
pub struct Coder {
    pub conv_in: Conv2d,
    /// The encoder's levels from full resolution down; the decoder's from the lowest up.
    pub conv_blocks: Vec<Level>,
    pub mid_res_in: ResBlock,
    pub mid_attn: AttnBlock,
    pub mid_res_out: ResBlock,
    pub norm_out: GroupNorm,
    pub conv_out: Conv2d,
}

impl Coder {
    fn encoder(c: &VqganConfig, device: &Device) -> Self {
        let last = c.ch_mult.len() - 1;
        let mut c_in = c.channels;
        let conv_blocks = (0..=last)
            .map(|i| {
                let c_out = c.width(i);
                let level = Level::new(c_in, c_out, c.encoder_blocks, i == last, device);
                c_in = c_out;
                let downsample = (i != last).then(|| Downsample {
                    conv: Conv2dConfig::new([c_out, c_out], [3, 3])
                        .with_stride([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(0, 0, 1, 1))
                        .init(device),
                });
                Level { downsample, ..level }
            })
            .collect();
        let top = c.width(last);
        Self::new(
            conv(c.image_channels, c.channels, 3, device),
            conv_blocks,
            top,
            top,
            conv(top, c.z_channels, 3, device),
            device,
        )
    }

    fn decoder(c: &VqganConfig, device: &Device) -> Self {
        let last = c.ch_mult.len() - 1;
        let top = c.width(last);
        let mut c_in = top;
        let conv_blocks = (0..=last)
            .rev()
            .map(|i| {
                let c_out = c.width(i);
                let level = Level::new(c_in, c_out, c.decoder_blocks, i == last, device);
                c_in = c_out;
                let upsample = (i != 0).then(|| Upsample { conv: conv(c_out, c_out, 3, device) });
                Level { upsample, ..level }
            })
            .collect();
        let bottom = c.width(0);
        Self::new(
            conv(c.z_channels, top, 3, device),
            conv_blocks,
            top,
            bottom,
            conv(bottom, c.image_channels, 3, device),
            device,
        )
    }

    /// The parts around the levels: the middle blocks at width `mid`, the last norm at `out`.
    fn new(
        conv_in: Conv2d,
        conv_blocks: Vec<Level>,
        mid: usize,
        out: usize,
        conv_out: Conv2d,
        device: &Device,
    ) -> Self {
        Self {
            conv_in,
            conv_blocks,
            mid_res_in: ResBlock::new(mid, mid, device),
            mid_attn: AttnBlock::new(mid, device),
            mid_res_out: ResBlock::new(mid, mid, device),
            norm_out: group_norm(out, device),
            conv_out,
        }
    }

    fn mid(&self, h: Tensor<4>) -> Tensor<4> {
        self.mid_res_out.forward(self.mid_attn.forward(self.mid_res_in.forward(h)))
    }

    fn finish(&self, h: Tensor<4>) -> Tensor<4> {
        self.conv_out.forward(swish(self.norm_out.forward(h)))
    }

    /// Encoder order: the levels, then the middle.
    fn encode(&self, x: Tensor<4>) -> Tensor<4> {
        let h = self.conv_blocks.iter().fold(self.conv_in.forward(x), |h, level| level.forward(h));
        self.finish(self.mid(h))
    }

    /// Decoder order: the middle, then the levels.
    fn decode(&self, z: Tensor<4>) -> Tensor<4> {
        let h = self.mid(self.conv_in.forward(z));
        self.finish(self.conv_blocks.iter().fold(h, |h, level| level.forward(h)))
    }
}

#[derive(Module, Debug)]
pub struct Vqgan {
    pub encoder: Coder,
    pub decoder: Coder,
    pub quant_conv: Conv2d,
    pub post_quant_conv: Conv2d,
    /// `[codebook_size, code_dim]` as trained; l2-normalised at use.
    pub codebook: Param<Tensor<2>>,
    #[module(skip)]
    pub config: VqganConfig,
}

/// `F.normalize`'s eps.
const NORM_EPS: f32 = 1e-12;

/// `[0, 1]` pictures to the VQGAN's `[-1, 1]`: `(p/255 - 0.5) / 0.5` for p = 255 x.
pub fn to_unit(images: Tensor<4>) -> Tensor<4> {
    (images - 0.5) / 0.5
}

/// The VQGAN's output to `[0, 1]` pictures that quantize to the official bytes:
/// `trunc(clamp(127.5 x + 128, 0, 255)) / 255`.
pub fn from_unit(x: Tensor<4>) -> Tensor<4> {
    (x * 127.5 + 128.0).clamp(0.0, 255.0).floor() / 255.0
}

impl Vqgan {
    pub fn new(c: &VqganConfig, device: &Device) -> Self {
        Self {
            encoder: Coder::encoder(c, device),
            decoder: Coder::decoder(c, device),
            quant_conv: conv(c.z_channels, c.code_dim, 1, device),
            post_quant_conv: conv(c.code_dim, c.z_channels, 1, device),
            codebook: Param::from_tensor(Tensor::random(
                [c.codebook_size, c.code_dim],
                Distribution::Normal(0.0, 1.0),
                device,
            )),
            config: c.clone(),
        }
    }

    /// Pictures `[b, channels, H, W]` in `[0, 1]` -> codes `[b, (H/f) * (W/f)]`, raster order.
    pub fn encode(&self, images: Tensor<4>) -> Tensor<2, Int> {
        let z = self.quant_conv.forward(self.encoder.encode(to_unit(images))); // [b, code_dim, h, w]
        let [b, c, h, w] = z.dims();
        let z = l2_normalize(z.permute([0, 2, 3, 1]).reshape([b * h * w, c]), NORM_EPS);
        let codes = l2_normalize(self.codebook.val(), NORM_EPS);
        // |z - e|^2 = |z|^2 + |e|^2 - 2 z.e, summed in the official order so that ties break alike
        let zz = z.clone().powf_scalar(2.0).sum_dim(1); // [n, 1]
        let ee = codes.clone().powf_scalar(2.0).sum_dim(1).transpose(); // [1, K]
        let d = zz + ee - z.matmul(codes.transpose()) * 2.0; // [n, K]
        d.argmin(1).reshape([b, h * w])
    }

    /// Codes `[b, h*w]` (raster order) -> pictures `[b, channels, h*f, w*f]` in `[0, 1]`.
    pub fn decode(&self, codes: Tensor<2, Int>, h: usize, w: usize) -> Tensor<4> {
        let [b, n] = codes.dims();
        let c = self.config.code_dim;
        let z = l2_normalize(self.codebook.val(), NORM_EPS).select(0, codes.reshape([b * n])); // [b*h*w, c]
        let z = z.reshape([b, h, w, c]).permute([0, 3, 1, 2]);
        from_unit(self.decoder.decode(self.post_quant_conv.forward(z)))
    }
}
