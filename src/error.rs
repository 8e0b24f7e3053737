//! The library's one error type. Binaries wrap it in `anyhow`; the web edge turns it into `JsError`.

use crate::checkpoint::CheckpointError;
use crate::image::ImageError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("invalid option: {0}")]
    Options(String),
    #[error("tensor read-back failed: {0}")]
    Tensor(String),
}
