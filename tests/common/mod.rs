//! Shared helpers for the integration tests: tiny models with a random (non-zero) head, so that
//! logits carry information and comparisons can fail.

#![allow(dead_code)]

use arpg::baselines::Raster;
use arpg::config::{Arch, ModelConfig, TokenizerConfig};
use arpg::engine::{Engine, Generator};
use arpg::model::Arpg;
use burn::nn::LinearConfig;
use burn::tensor::Device;

pub const VOCAB: usize = 16;
pub const CLASSES: usize = 3;

pub fn device() -> Device {
    Device::flex()
}

pub fn config(arch: Arch) -> ModelConfig {
    ModelConfig::test(VOCAB, CLASSES).with_arch(arch)
}

fn random_head(c: &ModelConfig, device: &Device) -> burn::nn::Linear {
    LinearConfig::new(c.d_model, c.vocab_size).with_bias(false).init(device)
}

pub fn arpg(arch: Arch) -> Arpg {
    let device = device();
    let c = config(arch);
    let mut m = Arpg::new(&c, &device);
    m.head = random_head(&c, &device);
    m
}

pub fn raster() -> Raster {
    let device = device();
    let c = config(Arch::Raster);
    let mut m = Raster::new(&c, &device);
    m.stack.head = random_head(&c, &device);
    m
}

/// A test engine (4x4 tokens, 16x16 pixels) with a random head.
pub fn engine(arch: Arch) -> Engine {
    let device = device();
    let c = config(arch);
    let mut e = Engine::new(&c, &TokenizerConfig::test(), &device);
    e.generator = match e.generator {
        Generator::Arpg(mut m) => {
            m.head = random_head(&c, &device);
            Generator::Arpg(m)
        }
        Generator::Raster(mut m) => {
            m.stack.head = random_head(&c, &device);
            Generator::Raster(m)
        }
        Generator::MaskGit(mut m) => {
            m.stack.head = random_head(&c, &device);
            Generator::MaskGit(m)
        }
    };
    e
}

pub fn to_vec(t: burn::tensor::Tensor<3>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
