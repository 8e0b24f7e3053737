//! Checkpoint format v2: one self-describing binary file, in the spirit of llama2.c. It is the
//! [`container`] (shared with the evaluation classifier and the training state) with no fixed
//! fields of its own: the **metadata** section is one JSON document, [`Header`], written from
//! the configs with serde, every key named and typed:
//!
//! ```text
//! {"model": ModelConfig, "tokenizer": {"vq": VqConfig} | {"vqgan": VqganConfig},
//!  "meta": TrainMeta, "sampling": SampleDefaults | null}
//! ```
//!
//! Unknown keys are refused, and the configs are validated before any tensor is read. Then come
//! the container's tensor table (names are module paths: `model.content.0.q.weight`,
//! `tokenizer.encoder.conv_in.weight`), payloads and checksum.
//!
//! Version 1 files (written until December 2026: the baselines' checkpoints are still v1) are
//! read too ([`v1`]): fixed binary fields, with some facts taken from the tensor table.

pub mod container;
mod v1;

use sha2::{Digest, Sha256};
use thiserror::Error;

pub use container::{CHECKSUM_LEN, DType, Kind, MAX_RANK, NamedTensor, TensorSource};
use serde::{Deserialize, Serialize};

use crate::config::{ModelConfig, TokenizerConfig, TrainMeta};
use crate::sampling::SampleDefaults;

pub const MAGIC: &[u8; 8] = b"ARPGCKPT";
pub const VERSION: u16 = 2;
/// The checkpoint's kind of container: the configs are in the metadata, no fixed fields.
pub const KIND: Kind = Kind { magic: MAGIC, version: VERSION, fields_len: 0, name: "checkpoint" };
/// Bytes of magic + version + fixed header.
pub const HEADER_LEN: usize = KIND.header_len();
/// The metadata section's length field (a `u32`): where a file's metadata length is written.
pub const META_LEN_AT: usize = HEADER_LEN - 4;

/// What the metadata section holds (format v2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub model: ModelConfig,
    pub tokenizer: TokenizerConfig,
    pub meta: TrainMeta,
    /// How the model samples unless told otherwise (`None`: the library's defaults).
    pub sampling: Option<SampleDefaults>,
}

/// Everything a checkpoint file holds, with tensors in f32.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub model: ModelConfig,
    pub tokenizer: TokenizerConfig,
    pub meta: TrainMeta,
    pub sampling: Option<SampleDefaults>,
    pub tensors: Vec<NamedTensor>,
}

/// What `inspect` reports without decoding the payloads.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointInfo {
    pub version: u16,
    pub dtype: DType,
    pub group_size: usize,
    /// Size of the whole file.
    pub bytes: usize,
    /// SHA-256 stored at the end of the file (verified), lower-case hex.
    pub checksum_hex: String,
    pub model: ModelConfig,
    pub tokenizer: TokenizerConfig,
    pub meta: TrainMeta,
    pub sampling: Option<SampleDefaults>,
    pub tensors: Vec<(String, Vec<usize>)>,
}

impl CheckpointInfo {
    /// Total number of values over all tensors (u64: more than a 32-bit usize holds for the
    /// paper's largest model in f32 bytes).
    pub fn num_params(&self) -> u64 {
        self.tensors.iter().map(|(_, shape)| shape.iter().map(|&d| d as u64).product::<u64>()).sum()
    }

    /// The largest tensor's name and its size in f32, the form it is computed in (a WebGPU
    /// adapter must hold it in one buffer).
    pub fn largest_tensor(&self) -> Option<(&str, u64)> {
        let bytes = |shape: &[usize]| shape.iter().map(|&d| d as u64).product::<u64>() * 4;
        self.tensors.iter().map(|(name, shape)| (name.as_str(), bytes(shape))).max_by_key(|&(_, b)| b)
    }
}

/// What can be wrong with a container file (a checkpoint, a classifier, a training state).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CheckpointError {
    #[error("{kind} is too short: {len} bytes, a {kind} has at least {min}")]
    TooShort { kind: &'static str, len: usize, min: usize },
    #[error("file is truncated in the {section}: needs {needed} more bytes, {available} left")]
    Truncated { section: &'static str, needed: usize, available: usize },
    #[error("not an ARPG {kind} (bad magic bytes)")]
    BadMagic { kind: &'static str },
    #[error("unsupported {kind} version {found} (this build reads version {reads})")]
    UnsupportedVersion { kind: &'static str, found: u16, reads: u16 },
    #[error("{kind} checksum mismatch: the file is corrupted or truncated")]
    BadChecksum { kind: &'static str },
    #[error("unknown tensor dtype id {0} (expected 0 = f32 or 1 = int8)")]
    BadDType(u8),
    #[error("bad group size {group_size} for dtype {dtype} (int8 needs > 0, f32 needs 0)")]
    BadGroupSize { dtype: DType, group_size: usize },
    #[error("invalid config in checkpoint: {0}")]
    InvalidConfig(String),
    #[error("unknown model architecture id {0}")]
    UnknownArch(u16),
    #[error("invalid UTF-8 in the {section}")]
    BadUtf8 { section: &'static str },
    #[error("tensor '{tensor}' has rank {rank}, at most {MAX_RANK} is supported")]
    RankTooLarge { tensor: String, rank: u8 },
    #[error("the size of {what} overflows")]
    SizeOverflow { what: String },
    #[error("tensors declare {declared} payload bytes but only {available} are present")]
    DeclaredSizeTooLarge { declared: usize, available: usize },
    #[error("tensor '{tensor}' holds a NaN or infinite value or scale")]
    NonFinite { tensor: String },
    #[error("{count} unexpected bytes at the end of the {section}")]
    TrailingBytes { count: usize, section: &'static str },
    #[error("tensor name '{0}' appears twice")]
    DuplicateTensor(String),
    #[error("tensor '{name}' has shape {found:?}, expected {expected:?}")]
    ShapeMismatch { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("checkpoint has no tensor '{0}'")]
    MissingTensor(String),
    #[error("unreadable checkpoint header: {0}")]
    BadHeader(String),
    #[error("cannot read or write the file: {0}")]
    Io(String),
}

type Result<T> = std::result::Result<T, CheckpointError>;

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Checkpoint {
    /// Serialises the checkpoint. `group_size` is used for `DType::Int8` only (an f32 file stores
    /// 0). A NaN or infinite weight is refused.
    ///
    /// # Panics
    /// On values the format cannot hold (see [`container::write`]).
    pub fn to_bytes(&self, dtype: DType, group_size: usize) -> Result<Vec<u8>> {
        container::write(&KIND, dtype, group_size, &[], &self.header_json()?, &self.tensors)
    }

    /// [`Checkpoint::to_bytes`] into `out` as it goes, without a copy of the file in memory.
    pub fn write_to(&self, out: impl std::io::Write, dtype: DType, group_size: usize) -> Result<()> {
        container::write_to(out, &KIND, dtype, group_size, &[], &self.header_json()?, &self.tensors)
    }

    fn header_json(&self) -> Result<Vec<u8>> {
        let header = Header {
            model: self.model.clone(),
            tokenizer: self.tokenizer.clone(),
            meta: self.meta.clone(),
            sampling: self.sampling.clone(),
        };
        serde_json::to_vec(&header).map_err(|e| CheckpointError::BadHeader(e.to_string()))
    }

    /// Parses and verifies a checkpoint, dequantizing int8 payloads to f32.
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint> {
        let parsed = container::read(kind_of(bytes), bytes)?;
        let info = info(&parsed, bytes.len())?;
        let tensors = parsed.tensors()?;
        let CheckpointInfo { model, tokenizer, meta, sampling, .. } = info;
        Ok(Checkpoint { model, tokenizer, meta, sampling, tensors })
    }

    /// [`Checkpoint::from_bytes`] of a file (or any seekable reader) without holding its bytes:
    /// the checksum is verified in a first pass, then the tensors are read one at a time
    /// ([`container::Stream`]). Also returns the file's SHA-256, lower-case hex.
    pub fn read_from(file: impl std::io::Read + std::io::Seek) -> Result<(Checkpoint, String)> {
        let CheckpointFile { info, sha256, mut stream } = CheckpointFile::open(file)?;
        let tensors = stream.tensors()?;
        let CheckpointInfo { model, tokenizer, meta, sampling, .. } = info;
        Ok((Checkpoint { model, tokenizer, meta, sampling, tensors }, sha256))
    }

    pub fn tensor(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Total number of values over all tensors.
    pub fn num_params(&self) -> usize {
        self.tensors.iter().map(|t| t.data.len()).sum()
    }
}

/// Parses the header and tensor table and verifies the checksum, without decoding the payloads.
pub fn inspect(bytes: &[u8]) -> Result<CheckpointInfo> {
    info(&container::read(kind_of(bytes), bytes)?, bytes.len())
}

/// A verified checkpoint file (or any seekable reader) whose tensors are read when asked for, one
/// at a time (its [`TensorSource`]): the checksum pass reads the file once, then only its head
/// is held.
pub struct CheckpointFile<R> {
    /// What [`inspect`] reports.
    pub info: CheckpointInfo,
    /// SHA-256 of the whole file, lower-case hex.
    pub sha256: String,
    stream: container::Stream<R>,
}

impl<R: std::io::Read + std::io::Seek> CheckpointFile<R> {
    pub fn open(file: R) -> Result<Self> {
        let stream = container::Stream::open(file, kind_of)?;
        let info = info(&stream.parsed()?, stream.file_len())?;
        Ok(CheckpointFile { info, sha256: hex(&stream.file_sha256), stream })
    }
}

impl<R: std::io::Read + std::io::Seek> TensorSource for CheckpointFile<R> {
    fn take(&mut self, name: &str) -> Result<Option<NamedTensor>> {
        self.stream.take(name)
    }
}

/// The container kind of a file by its version field: v1's, else this build's (whose reader
/// then reports a wrong magic or an unsupported version).
fn kind_of(bytes: &[u8]) -> &'static Kind {
    if bytes.get(8..10) == Some(&1u16.to_le_bytes()[..]) { &v1::KIND } else { &KIND }
}

/// The configs and metadata of a verified file.
fn info(parsed: &container::Parsed, len: usize) -> Result<CheckpointInfo> {
    let (header, tensors) = match parsed.version {
        1 => v1::header(parsed)?,
        _ => {
            let header: Header =
                serde_json::from_slice(parsed.meta).map_err(|e| CheckpointError::BadHeader(e.to_string()))?;
            (header, parsed.table()?)
        }
    };
    let Header { model, tokenizer, meta, sampling } = header;
    model.validate().map_err(|e| CheckpointError::InvalidConfig(format!("model: {e}")))?;
    tokenizer.validate().map_err(|e| CheckpointError::InvalidConfig(format!("tokenizer: {e}")))?;
    if !meta.background.is_empty() && meta.background.len() != tokenizer.image_channels() {
        return Err(CheckpointError::InvalidConfig(format!(
            "a background of {} values for images of {} channels",
            meta.background.len(),
            tokenizer.image_channels()
        )));
    }
    if let Some(s) = &sampling {
        s.validate().map_err(|e| CheckpointError::InvalidConfig(format!("sampling: {e}")))?;
    }
    if !(meta.final_loss.is_finite() && meta.train_seconds.is_finite()) {
        // A v1 field the v2 header cannot hold (JSON has no NaN).
        return Err(CheckpointError::InvalidConfig("training: a loss or time that is not finite".into()));
    }
    Ok(CheckpointInfo {
        version: parsed.version,
        dtype: parsed.dtype,
        group_size: parsed.group_size,
        bytes: len,
        checksum_hex: hex(parsed.checksum),
        model,
        tokenizer,
        meta,
        sampling,
        tensors,
    })
}

/// `(max, mean)` absolute difference between the values of tensors with the same
/// name in `a` and `b` (e.g. an f32 checkpoint and its int8 round trip).
pub fn quantization_error(a: &Checkpoint, b: &Checkpoint) -> (f32, f32) {
    let (mut max, mut sum, mut count) = (0.0f32, 0.0f64, 0usize);
    for ta in &a.tensors {
        let Some(tb) = b.tensor(&ta.name) else { continue };
        for (x, y) in ta.data.iter().zip(&tb.data) {
            let d = (x - y).abs();
            max = max.max(d);
            sum += f64::from(d);
            count += 1;
        }
    }
    let mean = if count == 0 { 0.0 } else { (sum / count as f64) as f32 };
    (max, mean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VqConfig;

    /// xorshift64: deterministic test randomness.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    /// Deterministic values in [-amp, amp].
    fn values(n: usize, seed: u64, amp: f32) -> Vec<f32> {
        let mut next = rng(seed);
        (0..n).map(|_| ((next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp).collect()
    }

    fn tensor(name: &str, shape: &[usize], seed: u64, amp: f32) -> NamedTensor {
        let n = shape.iter().product();
        NamedTensor { name: name.into(), shape: shape.to_vec(), data: values(n, seed, amp) }
    }

    fn meta() -> TrainMeta {
        TrainMeta {
            dataset: "fashion-mnist".into(),
            steps: 1234,
            batch_size: 64,
            seed: 42,
            final_loss: 2.5,
            train_seconds: 99.5,
            class_names: vec!["t-shirt".into(), "trouser".into(), "pullover ✓".into()],
            background: vec![],
        }
    }

    /// A few thousand parameters, odd shapes included (scalar, empty, zeros).
    fn sample() -> Checkpoint {
        let model = ModelConfig::test(16, 3);
        let d = model.d_model;
        let mut zeros = tensor("zeros", &[3, 5], 0, 1.0);
        zeros.data.fill(0.0);
        Checkpoint {
            tensors: vec![
                tensor("tok_emb", &[model.n_embeddings(), d], 1, 0.02),
                tensor("model.pos.weight", &[model.seq_len() + 1, d], 8, 0.02),
                tensor("blocks.0.attn.wq", &[d, d], 2, 0.5),
                tensor("blocks.0.mlp.w1", &[model.mlp_hidden, d], 3, 3.0),
                tensor("norm.weight", &[d], 4, 1.0),
                tensor("conv", &[4, 1, 3, 3], 5, 0.1),
                tensor("scalar", &[], 6, 7.0),
                tensor("empty", &[0, 4], 7, 1.0),
                zeros,
            ],
            model,
            tokenizer: VqConfig::test().into(),
            meta: meta(),
            sampling: None,
        }
    }

    /// Two tensors: "a" [2, 3] and "b" [1, 1, 1, 2].
    fn small() -> Checkpoint {
        Checkpoint {
            model: ModelConfig { pos_embed: false, ..ModelConfig::test(16, 3) },
            tokenizer: VqConfig::test().into(),
            meta: TrainMeta { dataset: "d".into(), class_names: vec!["x".into()], ..TrainMeta::default() },
            sampling: None,
            tensors: vec![tensor("a", &[2, 3], 1, 1.0), tensor("b", &[1, 1, 1, 2], 2, 1.0)],
        }
    }

    /// Replaces the checksum of a (possibly edited) file with a correct one.
    fn rechecksum(mut body: Vec<u8>) -> Vec<u8> {
        let sum = Sha256::digest(&body);
        body.extend_from_slice(&sum);
        body
    }

    /// Writes `patch` at `offset` and fixes the checksum.
    fn patched(bytes: &[u8], offset: usize, patch: &[u8]) -> Vec<u8> {
        let mut body = bytes[..bytes.len() - CHECKSUM_LEN].to_vec();
        body[offset..offset + patch.len()].copy_from_slice(patch);
        rechecksum(body)
    }

    /// Offset of the tensor table (after the metadata section).
    fn table_start(bytes: &[u8]) -> usize {
        HEADER_LEN + u32::from_le_bytes(bytes[META_LEN_AT..HEADER_LEN].try_into().unwrap()) as usize
    }

    #[test]
    fn the_header_round_trips_every_config_and_the_sampling_defaults() {
        use crate::sampling::{Task, TaskDefaults};
        let mut ckpt = sample();
        ckpt.meta.background = vec![200];
        ckpt.sampling = Some(crate::sampling::SampleDefaults {
            steps: 64,
            cfg: 5.0,
            cfg_schedule: crate::sampling::CfgSchedule::Linear,
            schedule: crate::sampling::Schedule::Arccos,
            temperature: 1.0,
            step_rule: crate::sampling::StepRule::Official,
            tasks: [(Task::Expand, TaskDefaults { temperature: Some(0.05), ..TaskDefaults::default() })]
                .into(),
        });
        let bytes = ckpt.to_bytes(DType::F32, 64).unwrap();
        assert_eq!(Checkpoint::from_bytes(&bytes), Ok(ckpt.clone()));
        ckpt.meta.background = vec![];
        let vqgan = Checkpoint { tokenizer: crate::config::VqganConfig::vq16().into(), ..ckpt };
        assert_eq!(inspect(&vqgan.to_bytes(DType::F32, 0).unwrap()).unwrap().tokenizer, vqgan.tokenizer);
    }

    #[test]
    fn a_file_read_in_two_passes_gives_what_its_bytes_give() {
        let read = |bytes: &[u8]| Checkpoint::read_from(std::io::Cursor::new(bytes));
        let mut long = small();
        // A tensor table longer than the head read first.
        for i in 0..400 {
            long.tensors.push(tensor(&format!("t{i}.{}", "x".repeat(200)), &[2], i, 1.0));
        }
        for (ckpt, dtype) in [(sample(), DType::F32), (sample(), DType::Int8), (long, DType::Int8)] {
            let bytes = ckpt.to_bytes(dtype, 64).unwrap();
            assert_eq!(read(&bytes), Ok((Checkpoint::from_bytes(&bytes).unwrap(), sha256_hex(&bytes))));
        }
        // And the same errors, in the same order of checks.
        let bytes = small().to_bytes(DType::Int8, 4).unwrap();
        let mut cases =
            vec![bytes[..5].to_vec(), bytes[..bytes.len() - 1].to_vec(), patched(&bytes, 0, b"X")];
        cases.push(patched(&bytes, 30, &[0xff]));
        cases.push(rechecksum(bytes[..bytes.len() - CHECKSUM_LEN - 3].to_vec()));
        cases.push(rechecksum(bytes[..table_start(&bytes) + 2].to_vec()));
        for case in &cases {
            let want = Checkpoint::from_bytes(case).unwrap_err();
            assert_eq!(read(case), Err(want));
        }
    }

    #[test]
    fn a_file_gives_each_tensor_by_name_in_any_order_as_its_bytes_do() {
        for dtype in [DType::F32, DType::Int8] {
            let bytes = sample().to_bytes(dtype, 4).unwrap();
            let whole = Checkpoint::from_bytes(&bytes).unwrap();
            let mut file = CheckpointFile::open(std::io::Cursor::new(&bytes)).unwrap();
            assert_eq!(
                (&file.info, file.sha256.as_str()),
                (&inspect(&bytes).unwrap(), sha256_hex(&bytes).as_str())
            );
            for t in whole.tensors.iter().rev() {
                assert_eq!(file.take(&t.name), Ok(Some(t.clone())), "{}", t.name);
            }
            assert_eq!(file.take("no.such.tensor"), Ok(None));
            // Tensors in memory give their values once: they are moved out.
            let mut tensors = whole.tensors.clone();
            let first = &whole.tensors[0];
            assert_eq!(tensors.take(&first.name), Ok(Some(first.clone())));
            assert_eq!(tensors.take(&first.name).unwrap().map(|t| t.data), Some(vec![]));
        }
    }

    #[test]
    fn an_unknown_key_or_a_broken_header_is_refused() {
        let bytes = small().to_bytes(DType::F32, 0).unwrap();
        let json = |f: &dyn Fn(&mut serde_json::Value)| {
            let meta_len = table_start(&bytes) - HEADER_LEN;
            let mut v: serde_json::Value =
                serde_json::from_slice(&bytes[HEADER_LEN..HEADER_LEN + meta_len]).unwrap();
            f(&mut v);
            with_meta(&bytes, &serde_json::to_vec(&v).unwrap())
        };
        let extra = json(&|v| v["model"]["surprise"] = 1.into());
        assert!(matches!(inspect(&extra), Err(CheckpointError::BadHeader(m)) if m.contains("surprise")));
        let missing = json(&|v| drop(v.as_object_mut().unwrap().remove("tokenizer")));
        assert!(matches!(inspect(&missing), Err(CheckpointError::BadHeader(m)) if m.contains("tokenizer")));
        let typed = json(&|v| v["model"]["d_model"] = "wide".into());
        assert!(matches!(inspect(&typed), Err(CheckpointError::BadHeader(_))));
        assert!(matches!(inspect(&with_meta(&bytes, b"{\xff")), Err(CheckpointError::BadHeader(_))));
        // JSON holds no infinity; a number past f32's range is refused too.
        for (section, field) in [("model", "rope_base"), ("meta", "final_loss"), ("model", "dropout")] {
            let huge = json(&|v| v[section][field] = 1e39.into());
            assert!(inspect(&huge).is_err(), "{section}.{field}");
        }
    }

    /// `bytes` with another metadata section (lengths and checksum fixed).
    fn with_meta(bytes: &[u8], meta: &[u8]) -> Vec<u8> {
        let t = table_start(bytes);
        let mut body = bytes[..META_LEN_AT].to_vec();
        body.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        body.extend_from_slice(meta);
        body.extend_from_slice(&bytes[t..bytes.len() - CHECKSUM_LEN]);
        rechecksum(body)
    }

    #[test]
    fn a_background_that_does_not_match_the_image_channels_is_invalid() {
        let mut ckpt = sample(); // grey: one channel
        ckpt.meta.background = vec![255, 255, 255];
        let err = Checkpoint::from_bytes(&ckpt.to_bytes(DType::F32, 64).unwrap()).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::InvalidConfig(m) if m.contains("background of 3 values")),
            "{err}"
        );
    }

    #[test]
    fn f32_round_trip_is_exact() {
        let ckpt = sample();
        let bytes = ckpt.to_bytes(DType::F32, 64).unwrap();
        assert_eq!(Checkpoint::from_bytes(&bytes), Ok(ckpt.clone()));
        assert!(bytes.len() - HEADER_LEN - CHECKSUM_LEN > 4 * ckpt.num_params());
    }

    #[test]
    fn inspect_reports_header_and_table() {
        let ckpt = sample();
        let bytes = ckpt.to_bytes(DType::Int8, 32).unwrap();
        let info = inspect(&bytes).unwrap();
        assert_eq!(info.version, VERSION);
        assert_eq!(info.dtype, DType::Int8);
        assert_eq!(info.group_size, 32);
        assert_eq!(info.bytes, bytes.len());
        assert_eq!(info.checksum_hex, sha256_hex(&bytes[..bytes.len() - CHECKSUM_LEN]));
        assert_eq!(info.model, ckpt.model);
        assert_eq!(info.tokenizer, ckpt.tokenizer);
        assert_eq!(info.meta, ckpt.meta);
        let table: Vec<_> = ckpt.tensors.iter().map(|t| (t.name.clone(), t.shape.clone())).collect();
        assert_eq!(info.tensors, table);
        // f32 files record group size 0 whatever was passed.
        assert_eq!(inspect(&ckpt.to_bytes(DType::F32, 64).unwrap()).unwrap().group_size, 0);
    }

    #[test]
    fn int8_round_trip_error_is_at_most_half_a_scale() {
        let ckpt = sample();
        for group_size in [1, 7, 64, 100_000] {
            let back = Checkpoint::from_bytes(&ckpt.to_bytes(DType::Int8, group_size).unwrap()).unwrap();
            assert_eq!(
                (&back.model, &back.tokenizer, &back.meta),
                (&ckpt.model, &ckpt.tokenizer, &ckpt.meta)
            );
            let mut worst = 0.0f32;
            for (a, b) in ckpt.tensors.iter().zip(&back.tensors) {
                assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
                for (ga, gb) in a.data.chunks(group_size).zip(b.data.chunks(group_size)) {
                    let scale = container::group_scale(ga);
                    worst = worst.max(scale / 2.0);
                    for (x, y) in ga.iter().zip(gb) {
                        assert!((x - y).abs() <= scale / 2.0 * (1.0 + 1e-5), "{x} vs {y}, scale {scale}");
                    }
                }
            }
            let (max, mean) = quantization_error(&ckpt, &back);
            assert!(max <= worst * (1.0 + 1e-5) && mean > 0.0 && mean <= max, "{max} {mean}");
            assert_eq!(back.tensor("zeros").unwrap().data, vec![0.0; 15]);
        }
    }

    #[test]
    fn int8_values_near_the_top_of_the_f32_range_restore_finite() {
        // Group maxima just below f32::MAX, some of which made `127 * (max / 127)` infinite.
        let maxima: Vec<f32> =
            std::iter::successors(Some(f32::MAX), |m| Some(m.next_down())).take(64).collect();
        assert!(maxima.iter().any(|m| (m / 127.0 * 127.0).is_infinite()), "no group would have overflowed");
        let mut ckpt = sample();
        let data: Vec<f32> = maxima.iter().flat_map(|&m| [m, -m, m * 0.5, 1.0]).collect();
        ckpt.tensors[0] = NamedTensor { name: "huge".into(), shape: vec![data.len()], data };
        let back =
            Checkpoint::from_bytes(&ckpt.to_bytes(DType::Int8, 4).unwrap()).expect("the int8 file parses");
        for (xs, ys) in ckpt.tensors[0].data.chunks(4).zip(back.tensors[0].data.chunks(4)) {
            let half_step = xs[0] / 127.0 * 0.501;
            for (x, y) in xs.iter().zip(ys) {
                assert!(y.is_finite() && (x - y).abs() <= half_step, "{x} became {y}");
            }
        }
    }

    #[test]
    fn int8_file_is_about_four_times_smaller() {
        let ckpt = sample();
        let f32_len = ckpt.to_bytes(DType::F32, 0).unwrap().len() as f32;
        let int8_len = ckpt.to_bytes(DType::Int8, 64).unwrap().len() as f32;
        let ratio = f32_len / int8_len;
        assert!((3.3..4.0).contains(&ratio), "ratio {ratio}");
    }

    #[test]
    fn tensor_lookup_and_param_count() {
        let ckpt = sample();
        assert_eq!(ckpt.tensor("norm.weight").unwrap().shape, vec![32]);
        assert!(ckpt.tensor("nope").is_none());
        let expected = 21 * 32 + 17 * 32 + 32 * 32 + 64 * 32 + 32 + 36 + 1 + 15;
        assert_eq!(ckpt.num_params(), expected);
        assert_eq!(quantization_error(&ckpt, &ckpt), (0.0, 0.0));
    }

    #[test]
    fn sha256_hex_matches_known_vector() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn truncation_at_every_offset_is_an_error() {
        for dtype in [DType::F32, DType::Int8] {
            let bytes = small().to_bytes(dtype, 4).unwrap();
            for len in 0..bytes.len() {
                assert!(Checkpoint::from_bytes(&bytes[..len]).is_err(), "len {len}");
                assert!(inspect(&bytes[..len]).is_err(), "len {len}");
            }
            // The same cuts with a valid checksum: the parser itself must notice.
            for len in 0..bytes.len() - CHECKSUM_LEN {
                let cut = rechecksum(bytes[..len].to_vec());
                assert!(Checkpoint::from_bytes(&cut).is_err(), "body len {len}");
                assert!(inspect(&cut).is_err(), "body len {len}");
            }
        }
        let bytes = small().to_bytes(DType::F32, 0).unwrap();
        assert_eq!(
            Checkpoint::from_bytes(&bytes[..10]),
            Err(CheckpointError::TooShort { kind: "checkpoint", len: 10, min: HEADER_LEN + CHECKSUM_LEN })
        );
        let cut = rechecksum(bytes[..bytes.len() - CHECKSUM_LEN - 1].to_vec());
        assert!(matches!(Checkpoint::from_bytes(&cut), Err(CheckpointError::DeclaredSizeTooLarge { .. })));
        let cut = rechecksum(bytes[..HEADER_LEN + 3].to_vec());
        let err = Checkpoint::from_bytes(&cut).unwrap_err();
        assert!(matches!(err, CheckpointError::Truncated { section: "metadata", .. }), "{err}");
        assert!(err.to_string().contains("truncated in the metadata"), "{err}");
    }

    #[test]
    fn wrong_magic_is_rejected() {
        let mut bytes = small().to_bytes(DType::F32, 0).unwrap();
        bytes[0] = b'X';
        assert_eq!(Checkpoint::from_bytes(&bytes), Err(CheckpointError::BadMagic { kind: "checkpoint" }));
        assert_eq!(inspect(&[0u8; 200]), Err(CheckpointError::BadMagic { kind: "checkpoint" }));
    }

    #[test]
    fn future_version_is_rejected() {
        let bytes = small().to_bytes(DType::F32, 0).unwrap();
        let v3 = patched(&bytes, 8, &3u16.to_le_bytes());
        assert_eq!(
            Checkpoint::from_bytes(&v3),
            Err(CheckpointError::UnsupportedVersion { kind: "checkpoint", found: 3, reads: 2 })
        );
        let mut raw = bytes.clone();
        raw[8] = 3; // checksum not updated: the version is still reported first
        assert_eq!(
            inspect(&raw),
            Err(CheckpointError::UnsupportedVersion { kind: "checkpoint", found: 3, reads: 2 })
        );
    }

    #[test]
    fn any_flipped_byte_is_a_bad_checksum() {
        let bytes = small().to_bytes(DType::Int8, 4).unwrap();
        for i in 10..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert_eq!(
                Checkpoint::from_bytes(&bad),
                Err(CheckpointError::BadChecksum { kind: "checkpoint" }),
                "byte {i}"
            );
        }
    }

    #[test]
    fn non_finite_values_are_rejected() {
        let nonfinite = |bytes: &[u8]| matches!(Checkpoint::from_bytes(bytes), Err(CheckpointError::NonFinite { tensor }) if tensor == "b");
        let refused = Err(CheckpointError::NonFinite { tensor: "b".into() });
        let mut ckpt = small();
        ckpt.tensors[1].data[1] = f32::NAN;
        assert_eq!(ckpt.to_bytes(DType::F32, 0), refused);
        ckpt.tensors[1].data[1] = f32::INFINITY;
        assert_eq!(ckpt.to_bytes(DType::Int8, 4), refused, "int8 must not silently zero an Inf");
        // A NaN written straight into a valid file's payload, checksum recomputed.
        let bytes = small().to_bytes(DType::F32, 0).unwrap();
        let last_value = bytes.len() - CHECKSUM_LEN - 4;
        assert!(nonfinite(&patched(&bytes, last_value, &f32::NAN.to_le_bytes())));
        // A NaN scale in an int8 file ("b" is one group of 2: scale then 2 bytes).
        let bytes = small().to_bytes(DType::Int8, 4).unwrap();
        let scale = bytes.len() - CHECKSUM_LEN - 2 - 4;
        assert!(nonfinite(&patched(&bytes, scale, &f32::NAN.to_le_bytes())));
        // A finite scale so large that q * scale overflows.
        assert!(nonfinite(&patched(&bytes, scale, &f32::MAX.to_le_bytes())));
    }

    #[test]
    fn absurd_declared_sizes_fail_without_allocating() {
        let bytes = small().to_bytes(DType::F32, 0).unwrap();
        let t = table_start(&bytes);
        // "a" is [2, 3]: its first dim sits after the name (2 + 1 bytes) and the rank.
        let huge_dim = patched(&bytes, t + 4, &(1u32 << 31).to_le_bytes());
        assert!(matches!(
            Checkpoint::from_bytes(&huge_dim),
            Err(CheckpointError::DeclaredSizeTooLarge { declared, .. }) if declared > 1 << 33
        ));
        // "b" has rank 4: four dims of u32::MAX overflow any usize.
        let dims = [u32::MAX.to_le_bytes(); 4].concat();
        let overflow = patched(&bytes, t + 16, &dims);
        assert_eq!(inspect(&overflow), Err(CheckpointError::SizeOverflow { what: "tensor 'b'".into() }),);
        // Four billion tensors: the table runs out of input.
        let count = patched(&bytes, META_LEN_AT - 4, &u32::MAX.to_le_bytes());
        assert!(matches!(inspect(&count), Err(CheckpointError::Truncated { section: "tensor table", .. })));
        // A metadata section longer than the file.
        let meta_len = patched(&bytes, META_LEN_AT, &u32::MAX.to_le_bytes());
        assert!(matches!(inspect(&meta_len), Err(CheckpointError::Truncated { section: "metadata", .. })));
        // Huge group count in an int8 file.
        let int8 = small().to_bytes(DType::Int8, 4).unwrap();
        let t = table_start(&int8);
        let huge = patched(&int8, t + 4, &u32::MAX.to_le_bytes());
        assert!(matches!(Checkpoint::from_bytes(&huge), Err(CheckpointError::DeclaredSizeTooLarge { .. })));
    }

    #[test]
    fn invalid_config_is_rejected() {
        let mut ckpt = small();
        ckpt.model.n_heads = 3;
        let err = Checkpoint::from_bytes(&ckpt.to_bytes(DType::F32, 0).unwrap()).unwrap_err();
        assert!(matches!(&err, CheckpointError::InvalidConfig(msg) if msg.contains("n_heads")), "{err}");
        let mut ckpt = small();
        ckpt.tokenizer = VqConfig { image_size: 15, ..VqConfig::test() }.into();
        let err = inspect(&ckpt.to_bytes(DType::F32, 0).unwrap()).unwrap_err();
        assert!(matches!(&err, CheckpointError::InvalidConfig(msg) if msg.starts_with("tokenizer")), "{err}");
    }

    #[test]
    fn bad_fields_get_their_own_errors() {
        let f32s = small().to_bytes(DType::F32, 0).unwrap();
        let int8 = small().to_bytes(DType::Int8, 4).unwrap();
        let t = table_start(&f32s);
        let cases = [
            (patched(&f32s, 10, &[7]), CheckpointError::BadDType(7)),
            (
                patched(&int8, 11, &0u32.to_le_bytes()),
                CheckpointError::BadGroupSize { dtype: DType::Int8, group_size: 0 },
            ),
            (
                patched(&f32s, 11, &8u32.to_le_bytes()),
                CheckpointError::BadGroupSize { dtype: DType::F32, group_size: 8 },
            ),
            (patched(&f32s, t + 2, &[0xc3]), CheckpointError::BadUtf8 { section: "tensor table" }),
            (patched(&f32s, t + 3, &[5]), CheckpointError::RankTooLarge { tensor: "a".into(), rank: 5 }),
            (patched(&f32s, t + 14, b"a"), CheckpointError::DuplicateTensor("a".into())),
        ];
        for (bytes, expected) in cases {
            assert_eq!(Checkpoint::from_bytes(&bytes), Err(expected.clone()));
            assert!(!expected.to_string().is_empty());
        }
        // One extra byte before the checksum.
        let mut body = f32s[..f32s.len() - CHECKSUM_LEN].to_vec();
        body.push(0);
        assert_eq!(
            Checkpoint::from_bytes(&rechecksum(body)),
            Err(CheckpointError::TrailingBytes { count: 1, section: "tensor payloads" })
        );
        // Metadata section declared one byte longer than its content: it steals the table's
        // first byte, which the JSON parser refuses as trailing.
        let meta_len = (t - HEADER_LEN + 1) as u32;
        let long_meta = patched(&f32s, META_LEN_AT, &meta_len.to_le_bytes());
        assert!(matches!(inspect(&long_meta), Err(CheckpointError::BadHeader(m)) if m.contains("trailing")));
    }

    #[test]
    fn random_corruption_with_valid_checksum_never_panics() {
        let bytes = small().to_bytes(DType::Int8, 4).unwrap();
        let body_len = bytes.len() - CHECKSUM_LEN;
        let mut next = rng(99);
        for i in 0..4000 {
            let mut body = bytes[..body_len].to_vec();
            let offset = 10 + next() as usize % (body_len - 10);
            body[offset] = next() as u8;
            if i % 3 == 0 {
                body.truncate(offset + next() as usize % 8);
            }
            let _ = Checkpoint::from_bytes(&rechecksum(body.clone()));
            let _ = inspect(&rechecksum(body));
        }
    }
}
