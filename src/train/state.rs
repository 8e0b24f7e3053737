//! The training state file: everything `--resume` needs to continue exactly where a run stopped.
//!
//! ```text
//! magic b"ARPGTRST" | u32 version = 1 | u64 n + JSON header (StateHeader)
//! | u64 n + f32 .arpg checkpoint (model and tokenizer weights, their configs)
//! | u64 n + burnpack optimiser record | 32-byte SHA-256 of everything before
//! ```
//!
//! All integers little-endian. The header holds the step, the host RNG state, the options and
//! the parameter ids the optimiser record is keyed by.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{TrainError, TrainOptions};

pub const STATE_MAGIC: &[u8; 8] = b"ARPGTRST";
pub const STATE_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateKind {
    Tokenizer,
    Generator,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateHeader {
    pub kind: StateKind,
    /// Steps done.
    pub step: u64,
    /// State of the host RNG (`Rng::state`) after `step` steps.
    pub rng: u64,
    /// Seconds spent in training steps so far.
    pub seconds: f64,
    pub last_loss: f32,
    pub options: TrainOptions,
    pub dataset: String,
    pub class_names: Vec<String>,
    /// Size of the training set (set by the first step): resuming needs the same data.
    pub data_len: Option<u64>,
    /// `(parameter path, burn ParamId)` of the trained module.
    pub param_ids: Vec<(String, u64)>,
    /// Tokenizer only: the step after which each code was last chosen (dead-code restarts).
    pub code_last_used: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    pub header: StateHeader,
    /// An f32 `.arpg` checkpoint of the weights.
    pub checkpoint: Vec<u8>,
    /// burn's optimiser record (burnpack bytes).
    pub optimizer: Vec<u8>,
}

fn corrupt(what: impl Into<String>) -> TrainError {
    TrainError::State(what.into())
}

impl TrainState {
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("the state header serialises");
        let mut out = Vec::with_capacity(64 + header.len() + self.checkpoint.len() + self.optimizer.len());
        out.extend_from_slice(STATE_MAGIC);
        out.extend_from_slice(&STATE_VERSION.to_le_bytes());
        for section in [&header, &self.checkpoint, &self.optimizer] {
            out.extend_from_slice(&(section.len() as u64).to_le_bytes());
            out.extend_from_slice(section);
        }
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TrainError> {
        if bytes.len() < 12 + 32 || &bytes[..8] != STATE_MAGIC {
            return Err(corrupt("not an ARPG training state file (bad magic or too short)"));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != STATE_VERSION {
            return Err(corrupt(format!("unsupported state version {version} (this build reads 1)")));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != sum {
            return Err(corrupt("checksum mismatch: the state file is truncated or corrupted"));
        }
        let mut rest = &body[12..];
        let mut section = |what: &str| -> Result<Vec<u8>, TrainError> {
            let n = rest.get(..8).ok_or_else(|| corrupt(format!("no length for the {what}")))?;
            let n = u64::from_le_bytes(n.try_into().expect("8 bytes"));
            let n = usize::try_from(n).ok().filter(|&n| n <= rest.len() - 8);
            let n = n.ok_or_else(|| corrupt(format!("the {what} runs past the end of the file")))?;
            let out = rest[8..8 + n].to_vec();
            rest = &rest[8 + n..];
            Ok(out)
        };
        let header = section("header")?;
        let header: StateHeader =
            serde_json::from_slice(&header).map_err(|e| corrupt(format!("bad header: {e}")))?;
        let checkpoint = section("checkpoint")?;
        let optimizer = section("optimizer state")?;
        if !rest.is_empty() {
            return Err(corrupt(format!("{} unexpected bytes after the optimizer state", rest.len())));
        }
        Ok(Self { header, checkpoint, optimizer })
    }

    /// Write to `path` through a temporary file and a rename, so a crash never leaves half a state.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        write_atomic(path, &self.to_bytes())
    }

    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let bytes = std::fs::read(path)
            .map_err(|e| TrainError::Io(format!("cannot read {}: {e}", path.display())))?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            TrainError::State(m) => TrainError::State(format!("{}: {m}", path.display())),
            e => e,
        })
    }
}

/// Write `bytes` to `path` via `path.tmp` and a rename (creating the parent directory).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        TrainError::Io(format!("cannot {what} {}: {e}", p.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("rename to", path, e))
}
