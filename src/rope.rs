//! 2D rotary position embedding, with the paper's conventions:
//! - per head, the first half of the dims rotates by the grid row, the second half by the column;
//! - within a half, pair `i` turns at frequency `base^(-2i / (d_head/2))`;
//! - pairs are ADJACENT dims `(2i, 2i+1)`, not a half-split;
//! - the class slot has cos = sin = 0, so its q and k are zero.
//!
//! Tables are built on the host (plain f32 math, identical natively and in wasm) and uploaded once
//! per call.

use burn::tensor::{Device, Tensor, TensorData};

/// A slot's position: grid coordinates `(row, col)` (whole numbers for a cell of the grid, halves
/// between cells: see `model::Cell::pos`), or `None` for the class slot.
pub type Pos = Option<(f32, f32)>;

/// The grid cell of raster index `i` on a grid `w` cells wide.
pub fn cell(i: usize, w: usize) -> Pos {
    Some(((i / w) as f32, (i % w) as f32))
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rope {
    pub head_dim: usize,
    pub base: f32,
    /// NTK-aware scaling for grids larger than the training grid: the base becomes
    /// `base * s^(n / (n - 2))` with `n = head_dim / 2`. 1.0 = plain extrapolation.
    pub ntk_scale: f32,
}

/// cos / sin tables, `[b or 1, 1, t, head_dim]`, broadcast over heads, one value per dim: pair
/// `i` holds `(cos, cos)` in `cos` and `(-sin, sin)` in `sin`, so that [`apply`] is two
/// element-wise products of full-width tensors.
#[derive(Clone, Debug)]
pub struct RopeTables {
    pub cos: Tensor<4>,
    pub sin: Tensor<4>,
}

impl Rope {
    pub fn new(head_dim: usize, base: f32) -> Self {
        Self { head_dim, base, ntk_scale: 1.0 }
    }

    /// The `head_dim / 4` frequencies of one half (row half and column half share them).
    pub fn freqs(&self) -> Vec<f32> {
        let half = self.head_dim / 2;
        let base = if self.ntk_scale > 1.0 {
            let n = half as f64;
            self.base as f64 * (self.ntk_scale as f64).powf(n / (n - 2.0))
        } else {
            self.base as f64
        };
        (0..half / 2).map(|i| base.powf(-2.0 * i as f64 / half as f64) as f32).collect()
    }

    /// The angle of every pair for one slot: `head_dim / 2` values, rows then columns.
    fn angles(&self, pos: Pos, freqs: &[f32], out: &mut Vec<(f32, f32)>) {
        match pos {
            None => out.extend(std::iter::repeat_n((0.0, 0.0), freqs.len() * 2)),
            Some((r, c)) => {
                for coord in [r, c] {
                    out.extend(freqs.iter().map(|f| {
                        let a = coord * f;
                        (a.cos(), a.sin())
                    }));
                }
            }
        }
    }

    /// Host tables for a batch of position lists (all of equal length): `(cos, sin)`, each
    /// `[b * t * head_dim]`, pairs interleaved as in [`RopeTables`].
    pub fn host_tables(&self, positions: &[&[Pos]]) -> (Vec<f32>, Vec<f32>) {
        let freqs = self.freqs();
        let mut pairs = Vec::new();
        for seq in positions {
            for &p in seq.iter() {
                self.angles(p, &freqs, &mut pairs);
            }
        }
        let cos = pairs.iter().flat_map(|&(c, _)| [c, c]).collect();
        let sin = pairs.iter().flat_map(|&(_, s)| [-s, s]).collect();
        (cos, sin)
    }

    /// Tables for one position list shared by the whole batch: `[1, 1, t, head_dim]`.
    pub fn tables(&self, positions: &[Pos], device: &Device) -> RopeTables {
        self.batch_tables(&[positions], device)
    }

    /// Tables for per-sample position lists: `[b, 1, t, head_dim]`.
    pub fn batch_tables(&self, positions: &[&[Pos]], device: &Device) -> RopeTables {
        let b = positions.len();
        let t = positions.first().map_or(0, |p| p.len());
        let (cos, sin) = self.host_tables(positions);
        let shape = [b, 1, t, self.head_dim];
        RopeTables {
            cos: Tensor::from_data(TensorData::new(cos, shape), device),
            sin: Tensor::from_data(TensorData::new(sin, shape), device),
        }
    }
}

/// Rotate adjacent pairs of `x` `[b, h, t, d]` by the tables `[b|1, 1, t, d]`:
/// `(x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin)`, computed as `x * cos + swap(x) * sin` with
/// the pair-swapped `x` and the signed tables. The same f32 results as rotating each half apart
/// (`a + (-b)` is `a - b`, and the sum is commutative), with fewer copies.
pub fn apply(x: Tensor<4>, rope: &RopeTables) -> Tensor<4> {
    let [b, h, t, d] = x.dims();
    let swapped = x.clone().reshape([b, h, t, d / 2, 2]).flip([4]).reshape([b, h, t, d]); // (x1, x0)
    x * rope.cos.clone() + swapped * rope.sin.clone()
}
