//! Reading checkpoint format v1 (written until December 2026; the baselines' checkpoints are v1).
//! After the container prefix come fixed fields, every number little-endian:
//!
//! ```text
//! offset  size  field
//!      0    15  container prefix: magic b"ARPGCKPT", u16 version = 1, u8 dtype, u32 group size
//!     15     2  u16 ModelConfig.arch (Arch::id)
//!     17    32  u32 x 8: vocab_size, n_classes, d_model, n_heads, n_layers, mlp_hidden, grid_h, grid_w
//!     49     8  f32 x 2: rope_base, dropout
//!     57    20  u32 x 5: VqConfig codebook_size, code_dim, channels, downsample, image_size
//!     77     4  f32 VqConfig beta
//!     81     8  u64 TrainMeta steps
//!     89     4  u32 TrainMeta batch_size
//!     93     8  u64 TrainMeta seed
//!    101     8  f32 x 2: TrainMeta final_loss, train_seconds
//!    109     4  u32 tensor count
//!    113     4  u32 metadata section length in bytes
//!    117        end of the fixed header
//! ```
//!
//! The metadata holds the dataset name, a `u16` count of class names and the class names; each
//! string is a `u16` byte length followed by UTF-8. Then, only when the training pictures'
//! background is not black, a `u8` count (the image's channels) and that many values.
//! Three facts are not in the fields but in the tensor table: an ARPG model's learned position
//! table ([`POS_TENSOR`]) sets `ModelConfig::pos_embed` by its presence and `multi_scale` by its
//! row count; the image's channels are the input channels of the tokenizer's first convolution
//! ([`IMAGE_TENSOR`]). Format v2 writes all of them in its header instead.

use super::container::{self, Kind, Reader, Table};
use super::{CheckpointError, Header, MAGIC};
use crate::config::{Arch, ModelConfig, TrainMeta, VqConfig};

type Result<T> = std::result::Result<T, CheckpointError>;

/// The v1 container: 94 bytes of configuration and training fields.
pub const KIND: Kind = Kind { magic: MAGIC, version: 1, fields_len: 94, name: "checkpoint" };
/// The optional tensor whose presence means `ModelConfig::pos_embed`.
pub const POS_TENSOR: &str = "model.pos.weight";
/// The tensor whose second dimension is the image's channel count.
pub const IMAGE_TENSOR: &str = "tokenizer.enc_in.weight";

/// The header of a verified v1 file, and its tensor table.
pub fn header(parsed: &container::Parsed) -> Result<(Header, Table)> {
    let mut r = Reader::new(parsed.fields, "header");
    let arch_id = r.u16()?;
    let arch = Arch::from_id(arch_id).ok_or(CheckpointError::UnknownArch(arch_id))?;
    let model = ModelConfig {
        arch,
        vocab_size: r.size()?,
        n_classes: r.size()?,
        d_model: r.size()?,
        n_heads: r.size()?,
        n_layers: r.size()?,
        mlp_hidden: r.size()?,
        grid_h: r.size()?,
        grid_w: r.size()?,
        rope_base: r.f32()?,
        dropout: r.f32()?,
        pos_embed: false,   // set from the tensor table below
        multi_scale: false, // set from the tensor table below
    };
    let mut tokenizer = VqConfig {
        codebook_size: r.size()?,
        code_dim: r.size()?,
        image_channels: 1, // set from the tensor table below
        channels: r.size()?,
        downsample: r.size()?,
        image_size: r.size()?,
        beta: r.f32()?,
    };
    let mut meta = TrainMeta {
        steps: r.u64()?,
        batch_size: r.u32()?,
        seed: r.u64()?,
        final_loss: r.f32()?,
        train_seconds: r.f32()?,
        ..TrainMeta::default()
    };
    r.finish()?;
    // Checked before the tensor table is trusted with them.
    model.validate().map_err(|e| CheckpointError::InvalidConfig(format!("model: {e}")))?;
    tokenizer.validate().map_err(|e| CheckpointError::InvalidConfig(format!("tokenizer: {e}")))?;

    let mut m = Reader::new(parsed.meta, "metadata");
    meta.dataset = m.str()?;
    for _ in 0..m.u16()? {
        meta.class_names.push(m.str()?);
    }
    if !m.is_empty() {
        let channels = usize::from(m.u8()?);
        meta.background = m.take(channels)?.to_vec();
    }
    m.finish()?;
    let tensors = parsed.table()?;
    let model = with_position_table(model, &tensors);
    if let Some((_, shape)) = tensors.iter().find(|(name, _)| name == IMAGE_TENSOR) {
        tokenizer.image_channels = shape.get(1).copied().unwrap_or(0);
    }
    Ok((Header { model, tokenizer: tokenizer.into(), meta, sampling: None }, tensors))
}

/// `model` with `pos_embed` and `multi_scale` read from the position table: present or not, and
/// its row count (the half grid's rows make a model multi-scale). Any other count is left to the
/// import of the weights, which names the tensor and both shapes.
fn with_position_table(model: ModelConfig, tensors: &[(String, Vec<usize>)]) -> ModelConfig {
    let Some((_, shape)) = tensors.iter().find(|(name, _)| name == POS_TENSOR) else { return model };
    let two = ModelConfig { pos_embed: true, multi_scale: true, ..model };
    let multi_scale = shape.first() == Some(&two.pos_rows()) && two.validate().is_ok();
    ModelConfig { multi_scale, ..two }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_position_table_sets_pos_embed_by_its_presence_and_multi_scale_by_its_rows() {
        let plain = ModelConfig { pos_embed: false, multi_scale: false, ..ModelConfig::tiny(256, 10) };
        let table =
            |rows: usize| vec![("model.x".to_string(), vec![1]), (POS_TENSOR.to_string(), vec![rows, 192])];
        let read = |tensors: &[(String, Vec<usize>)]| {
            let m = with_position_table(plain.clone(), tensors);
            (m.pos_embed, m.multi_scale)
        };
        let rows = |multi_scale| ModelConfig { pos_embed: true, multi_scale, ..plain.clone() }.pos_rows();
        assert_eq!(rows(true) - rows(false), 16, "the 4x4 half grid's rows");
        assert_eq!(read(&table(rows(false))[..1]), (false, false), "no table");
        assert_eq!(read(&table(rows(false))), (true, false), "the 8x8 grid's rows");
        assert_eq!(read(&table(rows(true))), (true, true), "and the half grid's");
        assert_eq!(read(&table(rows(false) - 1)), (true, false), "another count: left to the import");
    }
}
