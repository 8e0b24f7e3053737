//! Zero-shot tasks as plans over the one ARPG sampler: which cells are known (prefilled into
//! pass 1 at their true positions) and which are decoded, in what phases. Any order works, so
//! none of these needs training of its own.

use crate::choice::Choice;
use crate::decode::Plan;
use crate::image::TokenMask;
use crate::model::Frame;

/// RoPE for grids larger than the training grid.
///
/// Plain extrapolation is the default. NTK scaling rescales EVERY frequency, so even the cells
/// inside the training grid (the known region when out-painting, the coarse cells when expanding)
/// get rotations the model never saw, while extrapolation keeps them exact and only the new
/// positions are out of distribution. On the interim checkpoint (1161 steps) the two gave visually
/// the same out-paintings and equally poor from-scratch expansions (`docs/rope-*-interim.png`);
/// compare again on the trained model (`arpg outpaint|expand --rope extrapolate|ntk`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RopeMode {
    /// Positions beyond the training grid use the same frequencies.
    #[default]
    Extrapolate,
    /// NTK-aware scaling of the frequency base by the grid growth factor.
    Ntk,
}

impl Choice for RopeMode {
    const ALL: &'static [Self] = &[RopeMode::Extrapolate, RopeMode::Ntk];
    const WHAT: &'static str = "RoPE mode";
    fn name(self) -> &'static str {
        match self {
            RopeMode::Extrapolate => "extrapolate",
            RopeMode::Ntk => "ntk",
        }
    }
}

crate::from_str_by_name!(RopeMode);

impl RopeMode {
    /// The `ntk_scale` of a plan on an `h x w` grid for a model trained on `train_h x train_w`.
    pub fn scale(self, h: usize, w: usize, train_h: usize, train_w: usize) -> f32 {
        match self {
            RopeMode::Extrapolate => 1.0,
            RopeMode::Ntk => (h as f32 / train_h as f32).max(w as f32 / train_w as f32).max(1.0),
        }
    }
}

/// Extra cells on each side of the grid, in tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sides {
    pub left: usize,
    pub right: usize,
    pub top: usize,
    pub bottom: usize,
}

/// In-painting (and, with another class, editing): keep every token outside `mask`, decode the rest.
pub fn inpaint(tokens: &[u32], mask: &TokenMask) -> Plan {
    let (keep, redo): (Vec<usize>, Vec<usize>) = (0..tokens.len()).partition(|&p| !mask.cells[p]);
    Plan {
        grid_h: mask.h,
        grid_w: mask.w,
        prefill: keep.into_iter().map(|p| (p, tokens[p])).collect(),
        phases: vec![redo],
        ..Plan::full(mask.h, mask.w)
    }
}

/// Out-painting: the `h x w` source tokens sit at offset `(top, left)` of a larger grid; the new
/// cells are decoded. The source keeps its place in the frame; new cells take the frame's nearest
/// edge.
pub fn outpaint(tokens: &[u32], h: usize, w: usize, sides: Sides) -> Plan {
    let (gh, gw) = (h + sides.top + sides.bottom, w + sides.left + sides.right);
    let src = |p: usize| {
        let (r, c) = (p / gw, p % gw);
        let inside = (sides.top..sides.top + h).contains(&r) && (sides.left..sides.left + w).contains(&c);
        inside.then(|| (r - sides.top) * w + (c - sides.left))
    };
    let (known, new): (Vec<usize>, Vec<usize>) = (0..gh * gw).partition(|&p| src(p).is_some());
    Plan {
        grid_h: gh,
        grid_w: gw,
        prefill: known.into_iter().map(|p| (p, tokens[src(p).unwrap_or(0)])).collect(),
        phases: vec![new],
        frame: Frame { top: sides.top, left: sides.left, div: 1 },
        ..Plan::full(gh, gw)
    }
}

/// Resolution expansion: an `h x w` grid grows to `factor*h x factor*w`. The coarse cells (every
/// `factor`-th row and column) come first, from `tokens` when an image is given or generated in a
/// first phase otherwise; then the remaining cells are filled. Each `factor x factor` block takes
/// the frame cell of its coarse cell.
pub fn expand(tokens: Option<&[u32]>, h: usize, w: usize, factor: usize) -> Plan {
    let (gh, gw) = (h * factor, w * factor);
    let coarse = |p: usize| (p / gw).is_multiple_of(factor) && (p % gw).is_multiple_of(factor);
    let (coarse_cells, fine): (Vec<usize>, Vec<usize>) = (0..gh * gw).partition(|&p| coarse(p));
    let source = |p: usize| (p / gw / factor) * w + (p % gw) / factor;
    let (prefill, phases) = match tokens {
        Some(t) => (coarse_cells.iter().map(|&p| (p, t[source(p)])).collect(), vec![fine]),
        None => (vec![], vec![coarse_cells, fine]),
    };
    Plan {
        grid_h: gh,
        grid_w: gw,
        prefill,
        phases,
        frame: Frame { top: 0, left: 0, div: factor },
        ..Plan::full(gh, gw)
    }
}

/// Resolution expansion on a multi-scale model, the task it trained on: the `h x w` tokens of a
/// picture become the half grid of a `2h x 2w` full grid, which is decoded whole. `div` maps the
/// grid onto the position table (1 when `2h x 2w` is the training grid, 2 beyond it).
pub fn expand_half(tokens: &[u32], h: usize, w: usize, div: usize) -> Plan {
    Plan {
        context: tokens.iter().copied().enumerate().collect(),
        frame: Frame { top: 0, left: 0, div },
        ..Plan::full(2 * h, 2 * w)
    }
}
