//! Shared helpers for the integration tests: tiny models whose weights come from a seeded host
//! RNG, so every run builds the same models and logits carry information.

#![allow(dead_code)]

pub mod corrupt;

use arpg::baselines::Raster;
use arpg::config::{Arch, ModelConfig, VqConfig};
use arpg::engine::{Engine, Generator};
use arpg::model::{Arpg, Cell, Frame, Level, Slot, Slots};
use arpg::rng::Rng;
use arpg::tokenizer::Tokenizer;
use arpg::weights;
use burn::tensor::Device;

pub const VOCAB: usize = 16;
pub const CLASSES: usize = 3;

pub fn device() -> Device {
    Device::flex()
}

pub fn config(arch: Arch) -> ModelConfig {
    ModelConfig::test(VOCAB, CLASSES).with_arch(arch)
}

/// Replace every weight matrix / kernel of `module` with Kaiming-uniform values from a seeded
/// host RNG (norm gains stay 1). Test models are then identical in every run and every test
/// thread, and the zero-initialised head becomes informative.
pub fn reseed<M: burn::module::Module>(module: M, prefix: &str, seed: u64) -> M {
    let mut rng = Rng::new(seed);
    let mut tensors = weights::export(&module, prefix);
    for t in tensors.iter_mut().filter(|t| t.shape.len() >= 2) {
        let fan_in: usize = if t.shape.len() == 2 { t.shape[0] } else { t.shape[1..].iter().product() };
        let bound = (6.0 / fan_in as f64).sqrt();
        t.data.iter_mut().for_each(|x| *x = ((rng.next_f64() * 2.0 - 1.0) * bound) as f32);
    }
    weights::import(module, &mut tensors, prefix, &device()).unwrap()
}

pub fn arpg(arch: Arch) -> Arpg {
    reseed(Arpg::new(&config(arch), &device()), "model", 1)
}

pub fn raster() -> Raster {
    reseed(Raster::new(&config(Arch::Raster), &device()), "model", 2)
}

/// A test engine (4x4 tokens, 16x16 pixels) with seeded random weights.
pub fn engine(arch: Arch) -> Engine {
    engine_with(arch, VqConfig::test())
}

/// The test engine with RGB images.
pub fn colour_engine() -> Engine {
    engine_with(Arch::Arpg, VqConfig { image_channels: 3, ..VqConfig::test() })
}

/// The RGB test engine with a multi-scale model (a 2x2 half grid beside the 4x4 one).
pub fn multi_scale_engine() -> Engine {
    let config = ModelConfig { multi_scale: true, ..config(Arch::Arpg) };
    engine_of(&config, VqConfig { image_channels: 3, ..VqConfig::test() })
}

fn engine_with(arch: Arch, tokenizer: VqConfig) -> Engine {
    engine_of(&config(arch), tokenizer)
}

fn engine_of(config: &ModelConfig, tokenizer: VqConfig) -> Engine {
    let device = device();
    let mut e = Engine::new(config, &tokenizer.into(), &device);
    e.generator = match e.generator {
        Generator::Arpg(m) => Generator::Arpg(reseed(m, "model", 3)),
        Generator::Raster(m) => Generator::Raster(reseed(m, "model", 4)),
        Generator::MaskGit(m) => Generator::MaskGit(reseed(m, "model", 5)),
    };
    e.tokenizer = match e.tokenizer {
        Tokenizer::Vq(t) => Tokenizer::Vq(reseed(t, "tokenizer", 6)),
        Tokenizer::Vqgan(t) => Tokenizer::Vqgan(reseed(t, "tokenizer", 6)),
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

/// The full-grid cell `(row, col)`.
pub fn at(row: usize, col: usize) -> Slot {
    Some(Cell { row, col, level: Level::Full })
}

/// The full-grid cell of raster index `p` on a grid `w` wide.
pub fn cell(p: usize, w: usize) -> Slot {
    Some(Cell::at(p, w, Level::Full))
}

/// Slots at `pos` (shared by the batch) on the training grid, plain RoPE.
pub fn slots(m: &Arpg, pos: &[Slot]) -> Slots {
    m.slots(&m.rope(1.0), &[pos], Frame::default(), &device())
}
