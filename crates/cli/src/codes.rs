//! Token grids as JSON files, the format `encode`, `decode`, `score` and `generate --codes-out`
//! share: `{"width": W, "height": H, "codes": [W*H codes in raster order]}`; and decoding orders,
//! `{"order": [raster indices in generation order]}`.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use serde::{Deserialize, Serialize};

use crate::args::read_file;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Codes {
    pub width: usize,
    pub height: usize,
    pub codes: Vec<u32>,
}

impl Codes {
    /// Reads and checks a grid: `width * height` codes, each below `codebook`.
    pub fn read(path: &Path, codebook: usize) -> Result<Codes> {
        let codes: Codes = serde_json::from_slice(&read_file(path)?).with_context(|| {
            format!("{}: not a token grid {{\"width\", \"height\", \"codes\"}}", path.display())
        })?;
        let cells = codes.width.checked_mul(codes.height);
        ensure!(
            cells == Some(codes.codes.len()) && !codes.codes.is_empty(),
            "{}: {} codes for a {}x{} grid",
            path.display(),
            codes.codes.len(),
            codes.width,
            codes.height
        );
        if let Some(bad) = codes.codes.iter().find(|&&c| c as usize >= codebook) {
            anyhow::bail!("{}: code {bad} is not below the codebook size {codebook}", path.display());
        }
        Ok(codes)
    }
}

/// A decoding order: every cell of a `cells`-cell grid once, as raster indices.
pub fn read_order(path: &Path, cells: usize) -> Result<Vec<usize>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Order {
        order: Vec<usize>,
    }
    let order: Order = serde_json::from_slice(&read_file(path)?)
        .with_context(|| format!("{}: not an order {{\"order\": [...]}}", path.display()))?;
    let mut seen = vec![false; cells];
    let valid = order.order.len() == cells
        && order.order.iter().all(|&p| p < cells && !std::mem::replace(&mut seen[p], true));
    ensure!(valid, "{}: the order must list each of the {cells} cells (0..{cells}) once", path.display());
    Ok(order.order)
}
