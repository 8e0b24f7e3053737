//! The training state file: everything `--resume` needs to continue exactly where a run stopped.
//! It is the project's one [container](arpg::checkpoint::container) (magic b"ARPGTRST", version
//! 2, no fields, no tensors) whose metadata holds three byte strings (`u64` length + bytes): the
//! JSON header ([`StateHeader`]: the step, the host RNG state, the options, the parameter ids the
//! optimiser record is keyed by), an f32 `.arpg` checkpoint (model and tokenizer weights and
//! configs) and burn's optimiser record (burnpack). Version 1 (before 2026-12-04) had its own
//! framing; a run saved by it resumes with the build that wrote it.

use std::path::Path;

use arpg::checkpoint::container::{self, Reader, Writer};
use arpg::checkpoint::{CheckpointError, DType, Kind};
use serde::{Deserialize, Serialize};

use super::{TrainError, TrainOptions};

pub const KIND: Kind = Kind { magic: b"ARPGTRST", version: 2, fields_len: 0, name: "training state" };

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
        let mut meta = Writer::default();
        for section in [&header, &self.checkpoint, &self.optimizer] {
            meta.blob(section);
        }
        container::write(&KIND, DType::F32, 0, &[], &meta.0, &[]).expect("a state holds no tensors")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TrainError> {
        let corrupt = |e: CheckpointError| corrupt(e.to_string());
        let parsed = container::read(&KIND, bytes).map_err(corrupt)?;
        let mut r = Reader::new(parsed.meta, "metadata");
        let header = r.blob().map_err(corrupt)?;
        let header: StateHeader =
            serde_json::from_slice(header).map_err(|e| self::corrupt(format!("bad header: {e}")))?;
        let checkpoint = r.blob().map_err(corrupt)?.to_vec();
        let optimizer = r.blob().map_err(corrupt)?.to_vec();
        r.finish().map_err(corrupt)?;
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
