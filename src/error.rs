//! The library's one error type. Binaries wrap it in `anyhow`; the web edge turns it into `JsError`.

use crate::checkpoint::CheckpointError;
use crate::image::ImageError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Sampling options or task parameters out of range (steps, guidance, class, sides, factor,
    /// a token grid over the budget).
    #[error("invalid option: {0}")]
    Options(String),
    /// An image or mask the engine cannot work on (empty, too large, mismatched, nothing masked).
    #[error("invalid input: {0}")]
    Input(String),
    #[error("tensor read-back failed: {0}")]
    Tensor(String),
    /// The caller stopped the job between two decoding steps (the browser's Cancel).
    #[error("cancelled")]
    Cancelled,
}
