//! ARPG — autoregressive image generation with randomized parallel decoding — as a small Rust
//! library that runs natively and in the browser (wasm32 + WebGPU, with a CPU fallback).
//!
//! Reading order: `config` (what a model is), `rope` and `model` (the two-pass decoder),
//! `kv_cache` (run state), `sampling` (how a token is drawn), `decode` (the parallel decoding
//! loop), `tasks` (in/out-painting, expansion), `tokenizer` (our small VQ, and the enum of both
//! tokenizers), `vqgan` (LlamaGen's VQ-16, the paper's), `baselines` (raster AR,
//! MaskGIT), `checkpoint` (the file format), `engine` (everything together), `web` (the browser
//! edge). Training, evaluation and benchmarks are tools, in `crates/tools`; the `arpg` command is
//! `crates/cli`. docs/ARCHITECTURE.md draws the whole picture.

// Without the default feature `runtime` (no burn) only `checkpoint`, `choice`, `config`, `error`,
// `image`, `rng` and `sampling` are built: what the fuzz targets in `fuzz/` need.
#[cfg(feature = "runtime")]
pub mod baselines;
pub mod checkpoint;
pub mod choice;
pub mod config;
#[cfg(feature = "runtime")]
pub mod decode;
#[cfg(feature = "runtime")]
pub mod engine;
pub mod error;
pub mod image;
#[cfg(feature = "runtime")]
pub mod kv_cache;
#[cfg(feature = "runtime")]
pub mod model;
pub mod rng;
#[cfg(feature = "runtime")]
pub mod rope;
pub mod sampling;
#[cfg(feature = "runtime")]
pub mod tasks;
#[cfg(feature = "runtime")]
pub mod tokenizer;
#[cfg(feature = "runtime")]
pub mod vqgan;
#[cfg(feature = "runtime")]
pub mod weights;

#[cfg(all(feature = "runtime", target_arch = "wasm32"))]
mod web;

#[cfg(feature = "runtime")]
pub use engine::Engine;
pub use error::Error;
