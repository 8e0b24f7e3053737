//! ARPG's tools, native only: what trains, scores and times the models that the `arpg` library
//! runs. The library itself (the root package) never depends on this crate; the `arpg` command
//! (`crates/cli`) is a thin shell over it.
//!
//! Reading order: `data` (Fashion-MNIST from Debian's package), `emoji` (the emoji colour dataset
//! from three pinned npm packages), `augment` (class-keeping variants of the pictures), `train`
//! (the tokenizer and the generators, with exact resume), `eval` (the classifier, Fréchet distance, memorisation and editing tasks), `bench` (speed,
//! memory and FLOPs of the four decoders).

pub mod augment;
pub mod bench;
pub mod data;
pub mod emoji;
pub mod eval;
pub mod import;
pub mod train;
