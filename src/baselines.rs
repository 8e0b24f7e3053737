//! The two baselines, built from the same blocks, width and depth as ARPG, for side-by-side
//! numbers: raster-order AR (LlamaGen style, per-layer KV cache, one token per step) and a
//! MaskGIT-style bidirectional stack (confidence re-masking, no KV cache).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, Linear, RmsNorm};
use burn::tensor::{Bool, Device, Int, Tensor};

use crate::config::ModelConfig;
use crate::decode::{self, AfterStep, Sampled, StepEvent, int_tensor, read_logits};
use crate::error::Error;
use crate::kv_cache::KvCache;
use crate::model::{self, Block};
use crate::rng::Rng;
use crate::rope::{self, Pos, Rope, RopeTables};
use crate::sampling::{self, SampleOptions};

/// One stack of blocks between an embedding and a head: the body of both baselines.
#[derive(Module, Debug)]
pub struct Stack {
    pub embed: Embedding,
    pub blocks: Vec<Block>,
    pub out_norm: RmsNorm,
    pub head: Linear,
    pub drop: Dropout,
    #[module(skip)]
    pub config: ModelConfig,
}

impl Stack {
    pub fn new(config: &ModelConfig, device: &Device) -> Self {
        Self {
            embed: model::embedding(config, device),
            blocks: (0..config.n_layers).map(|_| Block::new(config, device)).collect(),
            out_norm: model::norm(config.d_model, device),
            head: model::head(config, device),
            drop: DropoutConfig::new(config.dropout as f64).init(),
            config: config.clone(),
        }
    }

    pub fn rope(&self) -> Rope {
        Rope::new(self.config.head_dim(), self.config.rope_base)
    }

    /// `ids` `[b, t]` -> logits `[b, t, vocab]`, appending to the per-layer caches.
    pub fn forward(
        &self,
        ids: Tensor<2, Int>,
        rope: &RopeTables,
        mask: Option<&Tensor<4, Bool>>,
        cache: &mut KvCache,
    ) -> Tensor<3> {
        let mut x = self.drop.forward(self.embed.forward(ids));
        for (block, kv) in self.blocks.iter().zip(&mut cache.layers) {
            x = block.forward(x, rope, mask, kv);
        }
        self.head.forward(self.out_norm.forward(x))
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.blocks.len(), 0)
    }
}

/// Raster-order AR: slot 0 is the class, slot `j` holds the code of cell `j - 1` (at that cell's
/// position) and predicts cell `j`.
#[derive(Module, Debug)]
pub struct Raster {
    pub stack: Stack,
}

impl Raster {
    pub fn new(config: &ModelConfig, device: &Device) -> Self {
        Self { stack: Stack::new(config, device) }
    }

    /// Training forward: logits `[b, T, vocab]`, slot `j` predicting `tokens[i][j]`.
    pub fn forward_train(&self, classes: &[usize], tokens: &[Vec<u32>], device: &Device) -> Tensor<3> {
        let (b, t, w) = (classes.len(), tokens[0].len(), self.stack.config.grid_w);
        let ids: Vec<i64> = (0..b)
            .flat_map(|i| {
                std::iter::once(classes[i] as i64).chain(tokens[i][..t - 1].iter().map(|&c| c as i64))
            })
            .collect();
        let pos: Vec<Pos> = std::iter::once(None).chain((0..t - 1).map(|p| rope::cell(p, w))).collect();
        let rope = self.stack.rope().tables(&pos, device);
        let mask = model::causal_mask(t, device);
        self.stack.forward(int_tensor(ids, [b, t], device), &rope, Some(&mask), &mut self.stack.new_cache())
    }
}

/// Raster AR sampling: T steps of one token, per-layer KV cache.
pub async fn sample_raster<R: AfterStep>(
    model: &Raster,
    classes: &[usize],
    opts: &SampleOptions,
    on_step: &mut dyn FnMut(&StepEvent) -> R,
) -> Result<Sampled, Error> {
    let config = &model.stack.config;
    let (h, w, t) = (config.grid_h, config.grid_w, config.seq_len());
    decode::check_classes(config, classes)?;
    SampleOptions { steps: t, ..opts.clone() }.validate(t)?; // raster AR always takes T steps
    let device = model.stack.head.weight.device();
    let (b, guided) = (classes.len(), opts.guided());
    let rows = if guided { 2 * b } else { b };
    let rope = model.stack.rope();
    let mut rng = Rng::new(opts.seed);
    let mut cache = model.stack.new_cache();
    let mut tokens: Vec<Vec<Option<u32>>> = vec![vec![None; t]; b];
    let mut ids = int_tensor(decode::class_ids(config, classes, guided), [rows, 1], &device);
    let mut pos: Pos = None;
    for p in 0..t {
        let logits =
            read_logits(model.stack.forward(ids, &rope.tables(&[pos], &device), None, &mut cache)).await?;
        let scale = guided.then(|| opts.cfg_scale(p + 1, t));
        let new = sampling::pick(&logits, b, 1, config.vocab_size, scale, opts, &mut rng);
        tokens.iter_mut().zip(&new).for_each(|(tk, c)| tk[p] = Some(c[0]));
        on_step(&StepEvent {
            step: p,
            steps: t,
            positions: vec![p],
            grid_h: h,
            grid_w: w,
            tokens: tokens[0].clone(),
        })
        .wait()
        .await?;
        ids = int_tensor((0..rows).map(|r| new[r % b][0] as i64).collect(), [rows, 1], &device);
        pos = rope::cell(p, w);
    }
    Ok(decode::finish(tokens, cache.bytes()))
}

/// MaskGIT: a bidirectional stack over `[class, codes or [MASK]]`.
#[derive(Module, Debug)]
pub struct MaskGit {
    pub stack: Stack,
}

impl MaskGit {
    pub fn new(config: &ModelConfig, device: &Device) -> Self {
        Self { stack: Stack::new(config, device) }
    }

    /// `class_ids[i]` embedding ids, `codes[i]` one entry per cell (`None` = `[MASK]`).
    /// Returns logits `[b, T, vocab]` for every cell.
    pub fn forward(&self, class_ids: &[i64], codes: &[Vec<Option<u32>>], device: &Device) -> Tensor<3> {
        let c = &self.stack.config;
        let (b, t) = (class_ids.len(), codes[0].len());
        let mask_id = c.mask_id() as i64;
        let ids: Vec<i64> = (0..b)
            .flat_map(|i| {
                let cells = codes[i].iter().map(|x| x.map_or(mask_id, |v| v as i64));
                std::iter::once(class_ids[i]).chain(cells)
            })
            .collect();
        let pos: Vec<Pos> = std::iter::once(None).chain((0..t).map(|p| rope::cell(p, c.grid_w))).collect();
        let rope = self.stack.rope().tables(&pos, device);
        let logits =
            self.stack.forward(int_tensor(ids, [b, t + 1], device), &rope, None, &mut self.stack.new_cache());
        logits.narrow(1, 1, t)
    }
}

/// MaskGIT sampling: every step predicts all masked cells, keeps each image's most confident ones
/// (with annealed Gumbel noise on the confidence, as MaskGIT does) and re-masks the rest.
pub async fn sample_maskgit<R: AfterStep>(
    model: &MaskGit,
    classes: &[usize],
    opts: &SampleOptions,
    on_step: &mut dyn FnMut(&StepEvent) -> R,
) -> Result<Sampled, Error> {
    let config = &model.stack.config;
    let (h, w, t, vocab) = (config.grid_h, config.grid_w, config.seq_len(), config.vocab_size);
    decode::check_classes(config, classes)?;
    opts.validate(t)?;
    let device = model.stack.head.weight.device();
    let (b, guided) = (classes.len(), opts.guided());
    let ids = decode::class_ids(config, classes, guided);
    let mut rng = Rng::new(opts.seed);
    let mut tokens: Vec<Vec<Option<u32>>> = vec![vec![None; t]; b];
    let sizes = opts.schedule.step_sizes(t, opts.steps);
    let mut decoded = 0;
    for (step, &k) in sizes.iter().enumerate() {
        let inputs: Vec<Vec<Option<u32>>> = (0..ids.len()).map(|r| tokens[r % b].clone()).collect();
        let logits = read_logits(model.forward(&ids, &inputs, &device)).await?;
        decoded += k;
        let scale = guided.then(|| opts.cfg_scale(decoded, t));
        let drafts = sampling::drafts(&logits, b, t, vocab, scale, opts, &mut rng);
        // Per image, its own most confident masked cells.
        let mut first = vec![];
        for (i, (tk, draft)) in tokens.iter_mut().zip(&drafts).enumerate() {
            let open: Vec<usize> = (0..t).filter(|&p| tk[p].is_none()).collect();
            let confidence: Vec<f64> = open.iter().map(|&p| draft[p].1).collect();
            let cells: Vec<usize> = sampling::most_confident(&confidence, k, step, sizes.len(), &mut rng)
                .iter()
                .map(|&j| open[j])
                .collect();
            cells.iter().for_each(|&p| tk[p] = Some(draft[p].0));
            if i == 0 {
                first = cells;
            }
        }
        on_step(&StepEvent {
            step,
            steps: sizes.len(),
            positions: first,
            grid_h: h,
            grid_w: w,
            tokens: tokens[0].clone(),
        })
        .wait()
        .await?;
    }
    Ok(decode::finish(tokens, 0))
}
