//! The classifier's file: a small versioned container of its own (the `.arpg` checkpoint header is
//! the generator's configuration, which a classifier does not have). Little-endian:
//!
//! ```text
//! offset  size  field
//!      0     8  magic b"ARPGCLSF"
//!      8     2  u16 version = 1
//!     10     1  u8  dtype (0 = f32, 1 = int8)
//!     11     4  u32 group size (int8: values per scale, > 0; f32: 0)
//!     15    16  u32 x 4: conv1, conv2, hidden, n_classes
//!     31     4  f32 test accuracy measured when saved (NaN = not measured)
//!     35     8  u64 training seed
//!     43     4  u32 training epochs
//!     47     4  u32 training images
//!     51     4  u32 tensor count
//!     55        tensor table: name (u16 length + UTF-8), rank (u8, <= 4), dims (u32 each)
//!               payloads in table order: f32 values, or per group of `group size` values one
//!               f32 scale (max |x| / 127) then the group's i8 values (value = q * scale)
//!       end-32  SHA-256 of everything before it
//! ```
//!
//! The loader takes bytes, checks magic, version and checksum first, and never allocates more
//! than the input could hold.

use sha2::{Digest, Sha256};

use super::ClassifierError;
use super::classifier::{Classifier, ClassifierConfig};
use crate::checkpoint::{DType, NamedTensor};
use crate::weights;

pub const MAGIC: &[u8; 8] = b"ARPGCLSF";
pub const VERSION: u16 = 1;
const CHECKSUM_LEN: usize = 32;
const MAX_RANK: usize = 4;

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

/// Serialise `classifier`; `group_size` is used for int8 only.
///
/// # Panics
/// On `DType::Int8` with `group_size == 0`, or a size that does not fit the format's u32.
pub fn to_bytes(classifier: &Classifier, meta: &ClassifierMeta, dtype: DType, group_size: usize) -> Vec<u8> {
    let group_size = match dtype {
        DType::F32 => 0,
        DType::Int8 => {
            assert!(group_size > 0, "int8 group size must be > 0");
            group_size
        }
    };
    let u32_of = |v: usize| u32::try_from(v).expect("size fits in u32");
    let c = &classifier.config;
    let tensors = weights::export(classifier, "");
    let mut w = Vec::new();
    w.extend_from_slice(MAGIC);
    w.extend_from_slice(&VERSION.to_le_bytes());
    w.push(dtype.id());
    for v in [group_size, c.conv1, c.conv2, c.hidden, c.n_classes] {
        w.extend_from_slice(&u32_of(v).to_le_bytes());
    }
    w.extend_from_slice(&meta.test_accuracy.unwrap_or(f32::NAN).to_le_bytes());
    w.extend_from_slice(&meta.seed.to_le_bytes());
    w.extend_from_slice(&meta.epochs.to_le_bytes());
    w.extend_from_slice(&meta.train_images.to_le_bytes());
    w.extend_from_slice(&u32_of(tensors.len()).to_le_bytes());
    for t in &tensors {
        w.extend_from_slice(&u16::try_from(t.name.len()).expect("short name").to_le_bytes());
        w.extend_from_slice(t.name.as_bytes());
        w.push(t.shape.len() as u8);
        for &d in &t.shape {
            w.extend_from_slice(&u32_of(d).to_le_bytes());
        }
    }
    for t in &tensors {
        match dtype {
            DType::F32 => t.data.iter().for_each(|x| w.extend_from_slice(&x.to_le_bytes())),
            DType::Int8 => {
                for group in t.data.chunks(group_size) {
                    let scale = group.iter().fold(0.0f32, |m, x| m.max(x.abs())) / 127.0;
                    w.extend_from_slice(&scale.to_le_bytes());
                    w.extend(group.iter().map(|&x| {
                        if scale > 0.0 { (x / scale).round().clamp(-127.0, 127.0) as i8 as u8 } else { 0 }
                    }));
                }
            }
        }
    }
    let checksum = Sha256::digest(&w);
    w.extend_from_slice(&checksum);
    w
}

/// Bounds-checked little-endian reads.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(ClassifierError::Truncated)?;
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }
    fn u32(&mut self) -> Result<usize> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array()?))
    }
}

/// Parse and verify a classifier file; the weights land on `device`.
pub fn from_bytes(bytes: &[u8], device: &burn::tensor::Device) -> Result<(Classifier, ClassifierMeta)> {
    if !bytes.starts_with(MAGIC) {
        return Err(ClassifierError::BadMagic);
    }
    if bytes.len() < MAGIC.len() + 2 + CHECKSUM_LEN {
        return Err(ClassifierError::Truncated);
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != VERSION {
        return Err(ClassifierError::UnsupportedVersion(version));
    }
    let (body, stored) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if Sha256::digest(body).as_slice() != stored {
        return Err(ClassifierError::BadChecksum);
    }
    let mut r = Reader(&body[10..]);
    let dtype_id = r.array::<1>()?[0];
    let dtype = DType::from_id(dtype_id).ok_or(ClassifierError::BadDType(dtype_id))?;
    let group_size = r.u32()?;
    if (dtype == DType::Int8) != (group_size > 0) {
        return Err(ClassifierError::BadGroupSize(group_size));
    }
    let config = ClassifierConfig { conv1: r.u32()?, conv2: r.u32()?, hidden: r.u32()?, n_classes: r.u32()? };
    config.validate()?;
    let accuracy = r.f32()?;
    let meta = ClassifierMeta {
        test_accuracy: accuracy.is_finite().then_some(accuracy),
        seed: u64::from_le_bytes(r.array()?),
        epochs: u32::from_le_bytes(r.array()?),
        train_images: u32::from_le_bytes(r.array()?),
    };
    let count = r.u32()?;
    let mut table = Vec::new();
    for _ in 0..count {
        let len = u16::from_le_bytes(r.array()?) as usize;
        let name = std::str::from_utf8(r.take(len)?).map_err(|_| ClassifierError::BadUtf8)?.to_string();
        let rank = r.array::<1>()?[0] as usize;
        if rank > MAX_RANK {
            return Err(ClassifierError::RankTooLarge { name, rank });
        }
        let shape = (0..rank).map(|_| r.u32()).collect::<Result<Vec<usize>>>()?;
        table.push((name, shape));
    }
    let mut tensors = Vec::with_capacity(table.len());
    for (name, shape) in table {
        let numel =
            shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or(ClassifierError::Truncated)?;
        // Each value takes at least one input byte: a bogus shape fails here, before allocating.
        if numel > r.0.len() {
            return Err(ClassifierError::Truncated);
        }
        let mut data = Vec::with_capacity(numel);
        match dtype {
            DType::F32 => {
                for _ in 0..numel {
                    data.push(r.f32()?);
                }
            }
            DType::Int8 => {
                while data.len() < numel {
                    let scale = r.f32()?;
                    let n = group_size.min(numel - data.len());
                    data.extend(r.take(n)?.iter().map(|&q| f32::from(q as i8) * scale));
                }
            }
        }
        if data.iter().any(|x| !x.is_finite()) {
            return Err(ClassifierError::NonFinite(name));
        }
        tensors.push(NamedTensor { name, shape, data });
    }
    if !r.0.is_empty() {
        return Err(ClassifierError::TrailingBytes(r.0.len()));
    }
    let classifier = weights::import(config.init(device), &tensors, "", device)?;
    Ok((classifier, meta))
}
