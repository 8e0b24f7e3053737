//! ARPG — autoregressive image generation with randomized parallel decoding — as a small Rust
//! library that runs natively and in the browser (wasm32 + WebGPU, with a CPU fallback).
//!
//! Reading order: `config` (what a model is), `rope` and `model` (the two-pass decoder),
//! `kv_cache` (run state), `sampler` (parallel decoding), `tasks` (in/out-painting, expansion),
//! `tokenizer` (VQ), `baselines` (raster AR, MaskGIT), `checkpoint` (file format), `engine`
//! (everything together). Native only: `data` (Fashion-MNIST), `train` (training) and `bench`
//! (speed, memory and FLOPs of the four decoders).

// Without the default feature `runtime` (no burn) only `checkpoint`, `config`, `data`, `error`,
// `image` and `rng` are built: what the fuzz targets in `fuzz/` need.
#[cfg(feature = "runtime")]
pub mod baselines;
#[cfg(all(feature = "runtime", not(target_arch = "wasm32")))]
pub mod bench;
pub mod checkpoint;
pub mod config;
#[cfg(not(target_arch = "wasm32"))]
pub mod data;
#[cfg(feature = "runtime")]
pub mod engine;
pub mod error;
#[cfg(all(feature = "runtime", not(target_arch = "wasm32")))]
pub mod eval;
pub mod image;
#[cfg(feature = "runtime")]
pub mod kv_cache;
#[cfg(feature = "runtime")]
pub mod model;
pub mod rng;
#[cfg(feature = "runtime")]
pub mod rope;
#[cfg(feature = "runtime")]
pub mod sampler;
#[cfg(feature = "runtime")]
pub mod tasks;
#[cfg(feature = "runtime")]
pub mod tokenizer;
#[cfg(all(feature = "runtime", not(target_arch = "wasm32")))]
pub mod train;
#[cfg(feature = "runtime")]
pub mod weights;

#[cfg(all(feature = "runtime", target_arch = "wasm32"))]
mod web;

#[cfg(feature = "runtime")]
pub use engine::Engine;
pub use error::Error;
