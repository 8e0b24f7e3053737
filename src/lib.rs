//! ARPG — autoregressive image generation with randomized parallel decoding — as a small Rust
//! library that runs natively and in the browser (wasm32 + WebGPU, with a CPU fallback).
//!
//! Reading order: `config` (what a model is), `rope` and `model` (the two-pass decoder),
//! `kv_cache` (run state), `sampler` (parallel decoding), `tasks` (in/out-painting, expansion),
//! `tokenizer` (VQ), `baselines` (raster AR, MaskGIT), `checkpoint` (file format), `engine`
//! (everything together). Native only: `data` (Fashion-MNIST), `train` (training) and `bench`
//! (speed, memory and FLOPs of the four decoders).

pub mod baselines;
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod checkpoint;
pub mod config;
#[cfg(not(target_arch = "wasm32"))]
pub mod data;
pub mod engine;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;
pub mod image;
pub mod kv_cache;
pub mod model;
pub mod rng;
pub mod rope;
pub mod sampler;
pub mod tasks;
pub mod tokenizer;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;
pub mod weights;

#[cfg(target_arch = "wasm32")]
mod web;

pub use engine::Engine;
pub use error::Error;
