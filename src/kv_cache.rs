//! Run state of a decoder: the keys and values seen so far. Kept apart from the weights
//! (which never change during sampling), one cache per sampling run.
//!
//! ARPG keeps one cache per pass-1 layer plus ONE shared K/V that every pass-2 layer reads;
//! the no-shared-KV ablation keeps one K/V per pass-2 layer instead; raster AR keeps one per
//! layer of its single stack.

use burn::tensor::Tensor;

/// Keys and values of one attention, each `[b, heads, t, head_dim]`, growing along `t`.
#[derive(Clone, Debug, Default)]
pub struct Kv {
    pub k: Option<Tensor<4>>,
    pub v: Option<Tensor<4>>,
}

impl Kv {
    /// Append `[b, h, t_new, dh]` keys and values; returns the whole cache `[b, h, t, dh]`.
    pub fn append(&mut self, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let k = match self.k.take() {
            Some(old) => Tensor::cat(vec![old, k], 2),
            None => k,
        };
        let v = match self.v.take() {
            Some(old) => Tensor::cat(vec![old, v], 2),
            None => v,
        };
        self.k = Some(k.clone());
        self.v = Some(v.clone());
        (k, v)
    }

    /// Cached slots.
    pub fn len(&self) -> usize {
        self.k.as_ref().map_or(0, |k| k.dims()[2])
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held (f32 keys and values).
    pub fn bytes(&self) -> usize {
        [&self.k, &self.v].iter().flat_map(|t| t.as_ref()).map(|t| t.shape().num_elements() * 4).sum()
    }
}

/// All caches of one sampling run.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    /// Self-attention caches: pass 1 of ARPG, or every layer of raster AR.
    pub layers: Vec<Kv>,
    /// What pass 2 cross-attends to: one entry for ARPG (shared), one per pass-2 layer without
    /// sharing, none for raster AR.
    pub memory: Vec<Kv>,
}

impl KvCache {
    pub fn new(n_layers: usize, n_memory: usize) -> Self {
        Self { layers: vec![Kv::default(); n_layers], memory: vec![Kv::default(); n_memory] }
    }

    /// Slots cached so far (class token included).
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, Kv::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> usize {
        self.layers.iter().chain(&self.memory).map(Kv::bytes).sum()
    }

    /// The byte count a cache of `n_layers + n_memory` entries holds after `slots` slots at
    /// batch `batch` and width `d_model`: keys and values, f32.
    pub fn expected_bytes(
        n_layers: usize,
        n_memory: usize,
        batch: usize,
        slots: usize,
        d_model: usize,
    ) -> usize {
        (n_layers + n_memory) * 2 * batch * slots * d_model * 4
    }
}
