//! The ARPG two-pass decoder (and the Llama-style blocks the baselines reuse).
//!
//! Pass 1, the content decoder: causal self-attention over `[class, tokens in generation order]`,
//! then ONE shared K/V projection of its output. Pass 2, the query decoder: `[MASK]` queries that
//! carry only a target position (RoPE on q), cross-attending to that shared K/V. Pass-2 layers own
//! no K/V projection and no cache (unless `Arch::ArpgNoSharedKv`, the paper's memory ablation).
//!
//! Both passes go through one `KvCache`: training feeds the whole sequence once with a causal mask,
//! sampling feeds one block of new tokens per step with no mask inside the block.
//!
//! (ours) With `config.pos_embed`, a learned embedding of each cell of the training grid is added
//! to the content and query inputs. RoPE alone only tells attention how far apart two slots are,
//! so without it the model is blind to where the image frame is (the class slot has no position):
//! it learns garments at any shift and crops them. Fashion-MNIST is centred in its frame.

use burn::module::Module;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig, RmsNorm,
    RmsNormConfig,
};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use crate::config::{Arch, ModelConfig};
use crate::kv_cache::{Kv, KvCache};
use crate::rope::{self, Pos, Rope, RopeTables};

/// Which grid a cell is on. Every model reads the full grid (its training grid, e.g. the 16x16
/// tokens of a 64x64 picture). A multi-scale model (`config.multi_scale`) also reads the half
/// grid: the tokens of the same picture rendered at half the size (8x8 tokens of its 32x32
/// version), each covering 2x2 cells of the full grid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Level {
    #[default]
    Full,
    Half,
}

/// A grid cell `(row, col)` on a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub row: usize,
    pub col: usize,
    pub level: Level,
}

impl Cell {
    /// The cell of raster index `i` on a grid `w` cells wide.
    pub fn at(i: usize, w: usize, level: Level) -> Self {
        Self { row: i / w, col: i % w, level }
    }

    /// RoPE coordinates, in cells of the full grid: a half-grid cell sits at the centre of the
    /// 2x2 full cells it covers, so both levels share one geometry.
    pub fn pos(self) -> (f32, f32) {
        match self.level {
            Level::Full => (self.row as f32, self.col as f32),
            Level::Half => (2.0 * self.row as f32 + 0.5, 2.0 * self.col as f32 + 0.5),
        }
    }
}

/// A slot of a pass-1 or pass-2 call: the class (`None`) or a cell.
pub type Slot = Option<Cell>;

/// `tokens` (raster order on a grid `w` wide, at `level`) in the order `order`: a training
/// sequence for [`Arpg::forward_train`].
pub fn in_order(tokens: &[u32], order: &[usize], w: usize, level: Level) -> Vec<(Cell, u32)> {
    order.iter().map(|&p| (Cell::at(p, w, level), tokens[p])).collect()
}

/// How a cell of the sampling grid maps onto the position table (the "frame"): a full cell
/// `(r, c)` -> `((r - top) / div, (c - left) / div)`, clamped into the training grid; a half cell
/// the same on the half-size table, with the offsets halved. The identity on the training grid;
/// out-painting puts the frame on the source image, expansion divides by the growth factor.
/// RoPE still sees the plain grid coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub top: usize,
    pub left: usize,
    pub div: usize,
}

impl Default for Frame {
    fn default() -> Self {
        Self { top: 0, left: 0, div: 1 }
    }
}

impl Frame {
    /// The row of the position table for `slot`: the full grid's `h * w` rows, then (multi-scale
    /// models) the half grid's, then the class slot's, the last (`config.pos_rows() - 1`).
    pub fn row(&self, slot: Slot, config: &ModelConfig) -> usize {
        let (h, w) = (config.grid_h, config.grid_w);
        let place = |r: usize, c: usize, top: usize, left: usize, h: usize, w: usize| {
            let r = (r.saturating_sub(top) / self.div).min(h - 1);
            let c = (c.saturating_sub(left) / self.div).min(w - 1);
            r * w + c
        };
        match slot {
            None => config.pos_rows() - 1,
            Some(Cell { row, col, level: Level::Full }) => place(row, col, self.top, self.left, h, w),
            Some(Cell { row, col, level: Level::Half }) => {
                h * w + place(row, col, self.top / 2, self.left / 2, h / 2, w / 2)
            }
        }
    }
}

/// Where the slots of one pass-1 or pass-2 call sit: RoPE tables `[b or 1, 1, t, dh]` and rows of
/// the position table `[b or 1, t]`.
#[derive(Clone, Debug)]
pub struct Slots {
    pub rope: RopeTables,
    pub rows: Tensor<2, Int>,
}

const NORM_EPS: f64 = 1e-5;

pub(crate) fn linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out).with_bias(false).init(device)
}

pub(crate) fn norm(d: usize, device: &Device) -> RmsNorm {
    RmsNormConfig::new(d).with_epsilon(NORM_EPS).init(device)
}

/// `[b, t, heads * dh]` -> `[b, heads, t, dh]`
fn split_heads(x: Tensor<3>, heads: usize) -> Tensor<4> {
    let [b, t, d] = x.dims();
    x.reshape([b, t, heads, d / heads]).swap_dims(1, 2)
}

/// `[b, heads, t, dh]` -> `[b, t, heads * dh]`
fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, h, t, dh] = x.dims();
    x.swap_dims(1, 2).reshape([b, t, h * dh])
}

/// Scaled dot-product attention. `mask` `[1, 1, tq, tk]`, true = may NOT attend.
pub fn attend(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, mask: Option<&Tensor<4, Bool>>) -> Tensor<4> {
    let dh = q.dims()[3];
    let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (dh as f64).sqrt()); // [b, h, tq, tk]
    let scores = match mask {
        Some(m) => {
            let dims = scores.dims();
            scores.mask_fill(m.clone().expand(dims), -1.0e9)
        }
        None => scores,
    };
    softmax(scores, 3).matmul(v) // [b, h, tq, dh]
}

/// A host-built attention mask `[1, 1, tq, tk]` from `blocked(query, key)`.
pub fn mask_from(
    tq: usize,
    tk: usize,
    device: &Device,
    blocked: impl Fn(usize, usize) -> bool,
) -> Tensor<4, Bool> {
    let cells: Vec<bool> = (0..tq * tk).map(|i| blocked(i / tk, i % tk)).collect();
    Tensor::from_data(TensorData::new(cells, [1, 1, tq, tk]), device)
}

/// The training mask: slot `i` sees slots `0..=i`.
pub fn causal_mask(t: usize, device: &Device) -> Tensor<4, Bool> {
    mask_from(t, t, device, |q, k| k > q)
}

/// The second half of every block: `x + dropout(SwiGLU(RMSNorm(x)))`.
#[derive(Module, Debug)]
pub struct FeedForward {
    pub norm: RmsNorm,
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
    pub drop: Dropout,
}

impl FeedForward {
    pub fn new(c: &ModelConfig, device: &Device) -> Self {
        let (d, hidden) = (c.d_model, c.mlp_hidden);
        Self {
            norm: norm(d, device),
            gate: linear(d, hidden, device),
            up: linear(d, hidden, device),
            down: linear(hidden, d, device),
            drop: DropoutConfig::new(c.dropout as f64).init(),
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.norm.forward(x.clone());
        x + self.drop.forward(self.down.forward(silu(self.gate.forward(h.clone())) * self.up.forward(h)))
    }
}

/// A K/V projection: pass 2's shared one (or, in the ablation, one per pass-2 layer).
#[derive(Module, Debug)]
pub struct KvProj {
    pub k: Linear,
    pub v: Linear,
}

impl KvProj {
    pub fn new(d: usize, device: &Device) -> Self {
        Self { k: linear(d, d, device), v: linear(d, d, device) }
    }

    /// `h` `[b, t, d]` -> K (RoPE-rotated with the content positions) and V, `[b, heads, t, dh]`.
    pub fn forward(&self, h: Tensor<3>, heads: usize, rope: &RopeTables) -> (Tensor<4>, Tensor<4>) {
        let k = rope::apply(split_heads(self.k.forward(h.clone()), heads), rope);
        (k, split_heads(self.v.forward(h), heads))
    }
}

/// Pre-norm transformer block with self-attention: ARPG pass 1 and both baselines.
#[derive(Module, Debug)]
pub struct Block {
    pub norm_attn: RmsNorm,
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub drop: Dropout,
    pub ff: FeedForward,
    #[module(skip)]
    pub heads: usize,
}

impl Block {
    pub fn new(c: &ModelConfig, device: &Device) -> Self {
        let d = c.d_model;
        Self {
            norm_attn: norm(d, device),
            q: linear(d, d, device),
            k: linear(d, d, device),
            v: linear(d, d, device),
            o: linear(d, d, device),
            drop: DropoutConfig::new(c.dropout as f64).init(),
            ff: FeedForward::new(c, device),
            heads: c.n_heads,
        }
    }

    /// `x` `[b, t_new, d]`; the new slots attend to everything in `cache` plus themselves
    /// (except where `mask` `[1, 1, t_new, t_total]` blocks). Appends their K/V to `cache`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        rope: &RopeTables,
        mask: Option<&Tensor<4, Bool>>,
        cache: &mut Kv,
    ) -> Tensor<3> {
        let h = self.norm_attn.forward(x.clone());
        let q = rope::apply(split_heads(self.q.forward(h.clone()), self.heads), rope);
        let k = rope::apply(split_heads(self.k.forward(h.clone()), self.heads), rope);
        let v = split_heads(self.v.forward(h), self.heads);
        let (k, v) = cache.append(k, v);
        let a = merge_heads(attend(q, k, v, mask));
        self.ff.forward(x + self.drop.forward(self.o.forward(a)))
    }
}

/// Pass-2 block: `[MASK]` queries cross-attend to the K/V made by pass 1. No K/V of its own
/// unless `own_kv` is set (the no-shared-KV ablation).
#[derive(Module, Debug)]
pub struct QueryBlock {
    pub norm_attn: RmsNorm,
    pub q: Linear,
    pub o: Linear,
    pub own_kv: Option<KvProj>,
    pub drop: Dropout,
    pub ff: FeedForward,
    #[module(skip)]
    pub heads: usize,
}

impl QueryBlock {
    pub fn new(c: &ModelConfig, own_kv: bool, device: &Device) -> Self {
        let d = c.d_model;
        Self {
            norm_attn: norm(d, device),
            q: linear(d, d, device),
            o: linear(d, d, device),
            own_kv: own_kv.then(|| KvProj::new(d, device)),
            drop: DropoutConfig::new(c.dropout as f64).init(),
            ff: FeedForward::new(c, device),
            heads: c.n_heads,
        }
    }

    /// `x` `[b, tq, d]`, `rope_q` at the TARGET positions, K/V `[b, heads, tk, dh]`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        rope_q: &RopeTables,
        k: Tensor<4>,
        v: Tensor<4>,
        mask: Option<&Tensor<4, Bool>>,
    ) -> Tensor<3> {
        let h = self.norm_attn.forward(x.clone());
        let q = rope::apply(split_heads(self.q.forward(h), self.heads), rope_q);
        let a = merge_heads(attend(q, k, v, mask));
        self.ff.forward(x + self.drop.forward(self.o.forward(a)))
    }
}

/// The embedding table (codes, `[MASK]`, classes, null) and the zero-initialised head.
pub(crate) fn embedding(c: &ModelConfig, device: &Device) -> Embedding {
    table(c.n_embeddings(), c.d_model, device)
}

/// A learned table of `rows` vectors, initialised N(0, 0.02) as in the official code.
fn table(rows: usize, d: usize, device: &Device) -> Embedding {
    EmbeddingConfig::new(rows, d).with_initializer(Initializer::Normal { mean: 0.0, std: 0.02 }).init(device)
}

pub(crate) fn head(c: &ModelConfig, device: &Device) -> Linear {
    LinearConfig::new(c.d_model, c.vocab_size)
        .with_bias(false)
        .with_initializer(Initializer::Zeros)
        .init(device)
}

#[derive(Module, Debug)]
pub struct Arpg {
    pub embed: Embedding,
    /// `[config.pos_rows(), d]`: one learned vector per cell of the training grid (and of the half
    /// grid, multi-scale), then one for the class slot (absent unless `config.pos_embed`).
    pub pos: Option<Embedding>,
    pub content: Vec<Block>,
    pub content_norm: RmsNorm,
    /// The ONE K/V projection pass 2 reads (absent in the no-shared-KV ablation).
    pub shared_kv: Option<KvProj>,
    pub queries: Vec<QueryBlock>,
    pub out_norm: RmsNorm,
    pub head: Linear,
    pub drop: Dropout,
    #[module(skip)]
    pub config: ModelConfig,
}

impl Arpg {
    /// `config.arch` must be `Arpg` or `ArpgNoSharedKv`.
    pub fn new(config: &ModelConfig, device: &Device) -> Self {
        let (n_content, n_query) = config.arpg_split();
        let shared = config.arch != Arch::ArpgNoSharedKv;
        Self {
            embed: embedding(config, device),
            pos: config.pos_embed.then(|| table(config.pos_rows(), config.d_model, device)),
            content: (0..n_content).map(|_| Block::new(config, device)).collect(),
            content_norm: norm(config.d_model, device),
            shared_kv: shared.then(|| KvProj::new(config.d_model, device)),
            queries: (0..n_query).map(|_| QueryBlock::new(config, !shared, device)).collect(),
            out_norm: norm(config.d_model, device),
            head: head(config, device),
            drop: DropoutConfig::new(config.dropout as f64).init(),
            config: config.clone(),
        }
    }

    pub fn rope(&self, ntk_scale: f32) -> Rope {
        Rope { ntk_scale, ..Rope::new(self.config.head_dim(), self.config.rope_base) }
    }

    /// Slots at `positions` (per image, all of one length; one list = shared by the batch), their
    /// position-table rows mapped through `frame`.
    pub fn slots(&self, rope: &Rope, positions: &[&[Slot]], frame: Frame, device: &Device) -> Slots {
        let t = positions.first().map_or(0, |p| p.len());
        let rows: Vec<i64> =
            positions.iter().flat_map(|seq| seq.iter().map(|&p| frame.row(p, &self.config) as i64)).collect();
        let pos: Vec<Vec<Pos>> =
            positions.iter().map(|seq| seq.iter().map(|p| p.map(Cell::pos)).collect()).collect();
        let pos: Vec<&[Pos]> = pos.iter().map(Vec::as_slice).collect();
        Slots {
            rope: rope.batch_tables(&pos, device),
            rows: Tensor::from_data(TensorData::new(rows, [positions.len(), t]), device),
        }
    }

    /// `x` `[b, t, d]` plus the position embedding of `at`'s rows (if the model has one).
    fn add_pos(&self, x: Tensor<3>, at: &Slots) -> Tensor<3> {
        match &self.pos {
            Some(pos) => x + pos.forward(at.rows.clone()), // [b or 1, t, d] broadcasts over b
            None => x,
        }
    }

    /// An empty run state: one cache per pass-1 layer, plus one shared memory (or one per
    /// pass-2 layer without sharing).
    pub fn new_cache(&self) -> KvCache {
        let memory = if self.shared_kv.is_some() { 1 } else { self.queries.len() };
        KvCache::new(self.content.len(), memory)
    }

    /// Pass 1 on new content slots `ids` `[b, t_new]` (embedding ids: class or code) at `at`;
    /// appends to every pass-1 cache and to pass 2's memory.
    pub fn feed(&self, ids: Tensor<2, Int>, at: &Slots, mask: Option<&Tensor<4, Bool>>, cache: &mut KvCache) {
        let rope = &at.rope;
        let mut x = self.drop.forward(self.add_pos(self.embed.forward(ids), at)); // [b, t_new, d]
        for (block, kv) in self.content.iter().zip(&mut cache.layers) {
            x = block.forward(x, rope, mask, kv);
        }
        let h = self.content_norm.forward(x);
        let heads = self.config.n_heads;
        match &self.shared_kv {
            Some(proj) => {
                let (k, v) = proj.forward(h, heads, rope);
                cache.memory[0].append(k, v);
            }
            None => {
                for (q, kv) in self.queries.iter().zip(&mut cache.memory) {
                    let proj = q.own_kv.as_ref().expect("no-shared-KV layers own a K/V projection");
                    let (k, v) = proj.forward(h.clone(), heads, rope);
                    kv.append(k, v);
                }
            }
        }
    }

    /// Pass 2: `b` x `tq` `[MASK]` queries at the target positions `at` (`tq` slots), against
    /// everything in `cache` (except where `mask` `[1, 1, tq, t_mem]` blocks).
    /// Returns logits `[b, tq, vocab]`.
    pub fn query(&self, b: usize, at: &Slots, mask: Option<&Tensor<4, Bool>>, cache: &KvCache) -> Tensor<3> {
        let tq = at.rows.dims()[1];
        let device = at.rows.device();
        let mask_ids = Tensor::<2, Int>::full([b, tq], self.config.mask_id() as i64, &device);
        let mut x = self.add_pos(self.embed.forward(mask_ids), at); // [b, tq, d], no dropout on queries
        for (i, block) in self.queries.iter().enumerate() {
            let mem = &cache.memory[i.min(cache.memory.len() - 1)];
            let (k, v) = (mem.k.clone().expect("fed before query"), mem.v.clone().expect("fed before query"));
            x = block.forward(x, &at.rope, k, v, mask);
        }
        self.head.forward(self.out_norm.forward(x))
    }

    /// The training forward. `classes[i]` is an embedding id (class or null), `seqs[i]` the
    /// sample's cells and codes in generation order (all of one length; see [`in_order`]).
    /// Returns logits `[b, T, vocab]` where slot `j` predicts the code of `seqs[i][j]`, seeing
    /// only the class and the `j` tokens before it.
    pub fn forward_train(&self, classes: &[usize], seqs: &[Vec<(Cell, u32)>], device: &Device) -> Tensor<3> {
        let b = classes.len();
        let t = seqs[0].len();
        let mut ids = Vec::with_capacity(b * t);
        let mut content_pos: Vec<Vec<Slot>> = Vec::with_capacity(b);
        let mut query_pos: Vec<Vec<Slot>> = Vec::with_capacity(b);
        for (class, seq) in classes.iter().zip(seqs) {
            // content: [class, x_0, ..., x_(T-2)]; queries: the cells of x_0 .. x_(T-1)
            ids.push(*class as i64);
            ids.extend(seq[..t - 1].iter().map(|&(_, code)| code as i64));
            content_pos.push(
                std::iter::once(None).chain(seq[..t - 1].iter().map(|&(cell, _)| Some(cell))).collect(),
            );
            query_pos.push(seq.iter().map(|&(cell, _)| Some(cell)).collect());
        }
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [b, t]), device);
        let rope = self.rope(1.0);
        let content_refs: Vec<&[Slot]> = content_pos.iter().map(Vec::as_slice).collect();
        let query_refs: Vec<&[Slot]> = query_pos.iter().map(Vec::as_slice).collect();
        let content = self.slots(&rope, &content_refs, Frame::default(), device);
        let queries = self.slots(&rope, &query_refs, Frame::default(), device);
        let mask = causal_mask(t, device);
        let mut cache = self.new_cache();
        self.feed(ids, &content, Some(&mask), &mut cache);
        self.query(b, &queries, Some(&mask), &cache)
    }
}
