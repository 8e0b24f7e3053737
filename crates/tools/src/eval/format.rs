//! The classifier's file: the project's one [container](arpg::checkpoint::container) (magic
//! b"ARPGCLSF", version 2) with these fields, little-endian, and no metadata:
//!
//! ```text
//! offset  size  field
//!     15    24  u32 x 6: channels, side, conv1, conv2, hidden, n_classes
//!     39     4  f32 test accuracy measured when saved (NaN = not measured)
//!     43     8  u64 training seed
//!     51     4  u32 training epochs
//!     55     4  u32 training images
//! ```
//!
//! Version 1 (until 2026-12-04, 28x28 grey only) had neither the image's channels and side nor
//! the container's metadata length: a v1 file becomes v2 by setting the version to 2, inserting
//! four zero bytes at offset 55 and then `1u32, 28u32` at offset 15, and recomputing the SHA-256
//! at the end.

use arpg::checkpoint::container::{self, Reader, Writer};
use arpg::checkpoint::{DType, Kind};
use arpg::weights;

use super::ClassifierError;
use super::classifier::{Classifier, ClassifierConfig};

pub const KIND: Kind = Kind { magic: b"ARPGCLSF", version: 2, fields_len: 44, name: "classifier file" };

/// What the file records besides the weights.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ClassifierMeta {
    /// Accuracy on the Fashion-MNIST test split, measured with the stored (possibly int8) weights.
    pub test_accuracy: Option<f32>,
    pub seed: u64,
    pub epochs: u32,
    pub train_images: u32,
}

type Result<T> = std::result::Result<T, ClassifierError>;

/// Serialise `classifier`; `group_size` is used for int8 only. A NaN or infinite weight is
/// refused.
pub fn to_bytes(
    classifier: &Classifier,
    meta: &ClassifierMeta,
    dtype: DType,
    group_size: usize,
) -> Result<Vec<u8>> {
    let c = &classifier.config;
    let mut w = Writer::default();
    let sizes = [
        (c.channels, "channels"),
        (c.side, "side"),
        (c.conv1, "conv1"),
        (c.conv2, "conv2"),
        (c.hidden, "hidden"),
        (c.n_classes, "n_classes"),
    ];
    for (v, what) in sizes {
        w.size(v, what);
    }
    w.f32(meta.test_accuracy.unwrap_or(f32::NAN));
    w.u64(meta.seed);
    w.u32(meta.epochs);
    w.u32(meta.train_images);
    let tensors = weights::export(classifier, "");
    Ok(container::write(&KIND, dtype, group_size, &w.0, &[], &tensors)?)
}

/// Parse and verify a classifier file; the weights land on `device`.
pub fn from_bytes(bytes: &[u8], device: &burn::tensor::Device) -> Result<(Classifier, ClassifierMeta)> {
    let parsed = container::read(&KIND, bytes)?;
    let mut r = Reader::new(parsed.fields, "header");
    let config = ClassifierConfig {
        channels: r.size()?,
        side: r.size()?,
        conv1: r.size()?,
        conv2: r.size()?,
        hidden: r.size()?,
        n_classes: r.size()?,
    };
    let accuracy = r.f32()?;
    let meta = ClassifierMeta {
        test_accuracy: accuracy.is_finite().then_some(accuracy),
        seed: r.u64()?,
        epochs: r.u32()?,
        train_images: r.u32()?,
    };
    r.finish()?;
    config.validate()?;
    Reader::new(parsed.meta, "metadata").finish()?;
    let classifier = weights::import(config.init(device), &mut parsed.tensors()?, "", device)?;
    Ok((classifier, meta))
}
