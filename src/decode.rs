//! Decoding loops and what they share. ARPG's loop is here ([`sample_arpg`]); the baselines'
//! (raster AR, MaskGIT) are in `baselines`. Every loop draws its tokens through `sampling`, reports
//! each step with a [`StepEvent`] and awaits the step hook's answer ([`AfterStep`]) before the next
//! step, which is where the browser can cancel a job.

use std::future::Future;
use std::pin::Pin;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::ModelConfig;
use crate::error::Error;
use crate::kv_cache::KvCache;
use crate::model::{Arpg, Cell, Frame, Level, Slot, Slots};
use crate::rng::Rng;
use crate::rope::Rope;
use crate::sampling::{self, Order, SampleOptions};

/// What a step just did, for progress bars and the random-order reveal.
#[derive(Clone, Debug)]
pub struct StepEvent {
    pub step: usize,
    pub steps: usize,
    /// Grid cells (raster index) decoded at this step.
    pub positions: Vec<usize>,
    pub grid_h: usize,
    pub grid_w: usize,
    /// The first image's tokens so far.
    pub tokens: Vec<Option<u32>>,
}

/// What a step hook (`on_step`) returns. `()`: go on at once (the CLI, the tests). A
/// [`StepWait`]: the sampler awaits it before the next step and stops with its error, if any. The
/// browser's hook yields to the worker's event loop there, so that a `cancel` message can arrive
/// between two steps, and then answers `Err(Error::Cancelled)`.
pub trait AfterStep {
    fn wait(self) -> impl Future<Output = Result<(), Error>>;
}

impl AfterStep for () {
    async fn wait(self) -> Result<(), Error> {
        Ok(())
    }
}

/// A step hook's answer that the sampler awaits before the next step; `Err` stops the job.
pub type StepWait = Pin<Box<dyn Future<Output = Result<(), Error>>>>;

impl AfterStep for StepWait {
    async fn wait(self) -> Result<(), Error> {
        self.await
    }
}

/// What to decode: a grid, tokens known in advance, and the cells to decode in phases (each phase
/// is shuffled and decoded with the full schedule before the next starts).
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub grid_h: usize,
    pub grid_w: usize,
    /// `(cell, code)` of the half grid (`grid_h/2 x grid_w/2`) known before decoding: the
    /// half-size picture that a multi-scale model expands.
    pub context: Vec<(usize, u32)>,
    /// `(cell, code)` known before decoding (in-painting, out-painting, expansion).
    pub prefill: Vec<(usize, u32)>,
    pub phases: Vec<Vec<usize>>,
    /// RoPE frequency scaling for grids beyond the training grid (1 = plain extrapolation).
    pub ntk_scale: f32,
    /// Where the training grid sits on this grid, for the learned position embedding.
    pub frame: Frame,
}

impl Plan {
    /// Plain class-conditional generation of a whole grid.
    pub fn full(grid_h: usize, grid_w: usize) -> Self {
        Self {
            grid_h,
            grid_w,
            context: vec![],
            prefill: vec![],
            phases: vec![(0..grid_h * grid_w).collect()],
            ntk_scale: 1.0,
            frame: Frame::default(),
        }
    }

    pub fn targets(&self) -> usize {
        self.phases.iter().map(Vec::len).sum()
    }

    pub fn cells(&self) -> usize {
        self.grid_h * self.grid_w
    }

    /// Step sizes per phase under `opts`.
    pub fn step_sizes(&self, opts: &SampleOptions) -> Vec<Vec<usize>> {
        self.phases.iter().map(|p| opts.step_sizes(p.len(), opts.steps.min(p.len()))).collect()
    }

    pub fn total_steps(&self, opts: &SampleOptions) -> usize {
        self.step_sizes(opts).iter().map(Vec::len).sum()
    }
}

/// Tokens per image (raster order) and the cache size reached.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampled {
    pub tokens: Vec<Vec<u32>>,
    pub kv_bytes: usize,
}

pub(crate) fn check_classes(config: &ModelConfig, classes: &[usize]) -> Result<(), Error> {
    if classes.is_empty() {
        return Err(Error::Options("at least one image is needed".into()));
    }
    match classes.iter().find(|&&c| c >= config.n_classes) {
        Some(c) => Err(Error::Options(format!("class {c} out of range (0..{})", config.n_classes))),
        None => Ok(()),
    }
}

/// Embedding ids for a batch of classes, followed by the null class for guidance when `guided`.
pub(crate) fn class_ids(config: &ModelConfig, classes: &[usize], guided: bool) -> Vec<i64> {
    let mut ids: Vec<i64> = classes.iter().map(|&c| config.class_id(c) as i64).collect();
    if guided {
        ids.extend(classes.iter().map(|_| config.null_id() as i64));
    }
    ids
}

pub(crate) fn int_tensor(values: Vec<i64>, shape: [usize; 2], device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Read logits `[rows, n, vocab]` back to the host (asynchronously: required in wasm).
pub(crate) async fn read_logits(logits: Tensor<3>) -> Result<Vec<f32>, Error> {
    let data = logits.into_data_async().await.map_err(|e| Error::Tensor(format!("{e:?}")))?;
    data.try_into_vec::<f32>().map_err(|e| Error::Tensor(format!("{e:?}")))
}

/// What ARPG's sampling loop needs of a two-pass decoder: its sizes, a fresh run state, pass 1
/// over new content slots (filling the cache) and pass 2's `[MASK]` queries against it, both
/// without a mask inside a call (the paper's inference). [`Arpg`] is one; another family of
/// two-pass decoders runs through [`sample_arpg`] by implementing it.
pub trait TwoPass {
    fn config(&self) -> &ModelConfig;
    fn device(&self) -> Device;
    /// RoPE, its frequencies scaled for grids beyond the training grid by `ntk_scale` (1: none).
    fn rope(&self, ntk_scale: f32) -> Rope;
    /// The slots at `positions` (one list per row, or one for all), placed through `frame`.
    fn slots(&self, rope: &Rope, positions: &[&[Slot]], frame: Frame, device: &Device) -> Slots;
    fn new_cache(&self) -> KvCache;
    /// Pass 1 on embedding ids `[rows, t]` at `at`: appends their keys and values to `cache`.
    fn feed(&self, ids: Tensor<2, Int>, at: &Slots, cache: &mut KvCache);
    /// Pass 2: `rows` x `t` queries at `at` against `cache`; logits `[rows, t, vocab]`.
    fn query(&self, rows: usize, at: &Slots, cache: &KvCache) -> Tensor<3>;
}

impl TwoPass for Arpg {
    fn config(&self) -> &ModelConfig {
        &self.config
    }
    fn device(&self) -> Device {
        self.head.weight.device()
    }
    fn rope(&self, ntk_scale: f32) -> Rope {
        Arpg::rope(self, ntk_scale)
    }
    fn slots(&self, rope: &Rope, positions: &[&[Slot]], frame: Frame, device: &Device) -> Slots {
        Arpg::slots(self, rope, positions, frame, device)
    }
    fn new_cache(&self) -> KvCache {
        Arpg::new_cache(self)
    }
    fn feed(&self, ids: Tensor<2, Int>, at: &Slots, cache: &mut KvCache) {
        Arpg::feed(self, ids, at, None, cache)
    }
    fn query(&self, rows: usize, at: &Slots, cache: &KvCache) -> Tensor<3> {
        Arpg::query(self, rows, at, None, cache)
    }
}

/// ARPG sampling, the paper's loop: pass 1 reads the class token and the known tokens (the
/// prefill); then each step queries the next cells with `[MASK]` queries in one call against the
/// ONE shared K/V, samples their codes and feeds them back to pass 1. No mask inside a step.
/// Which cells a step decodes is `opts.order`'s: [`Order::Random`] draws one order per phase,
/// shared by the batch; [`Order::Listed`] takes the phase's cells as listed; [`Order::Confidence`]
/// keeps each image's most confident cells.
pub async fn sample_arpg<M: TwoPass, R: AfterStep>(
    model: &M,
    classes: &[usize],
    plan: &Plan,
    opts: &SampleOptions,
    on_step: &mut dyn FnMut(&StepEvent) -> R,
) -> Result<Sampled, Error> {
    opts.validate(plan.cells())?; // each phase then takes at most as many steps as it has cells
    check_classes(model.config(), classes)?;
    let mut run = ArpgRun::prefill(model, classes, plan, opts);
    let sizes = plan.step_sizes(opts);
    let steps: usize = sizes.iter().map(Vec::len).sum();
    let mut step = 0;
    for (phase, phase_sizes) in plan.phases.iter().zip(&sizes) {
        let mut open = run.open_cells(phase);
        for (s, &k) in phase_sizes.iter().enumerate() {
            let picked = match opts.order {
                Order::Random | Order::Listed => run.next_in_order(&open, k).await?,
                Order::Confidence => run.most_confident(&open, k, s, phase_sizes.len()).await?,
            };
            run.accept(&picked, &mut open);
            on_step(&run.event(step, steps, &picked)).wait().await?;
            step += 1;
        }
    }
    Ok(finish(run.tokens, run.cache.bytes()))
}

/// The cells one step decodes and their codes: one list of cells shared by every image (random
/// order) or one per image (confidence order), and one list of codes per image.
struct Picked {
    cells: Vec<Vec<usize>>,
    codes: Vec<Vec<u32>>,
}

/// The state of one ARPG generation: the KV cache, the host RNG and the tokens so far.
struct ArpgRun<'a, M> {
    model: &'a M,
    plan: &'a Plan,
    opts: &'a SampleOptions,
    device: Device,
    rope: Rope,
    /// Images, and rows of every model call: `[cond; null]` under guidance.
    b: usize,
    rows: usize,
    rng: Rng,
    cache: KvCache,
    tokens: Vec<Vec<Option<u32>>>,
    decoded: usize,
}

impl<'a, M: TwoPass> ArpgRun<'a, M> {
    /// Pass 1 over the class token, then the plan's known tokens as one block at their cells.
    fn prefill(model: &'a M, classes: &[usize], plan: &'a Plan, opts: &'a SampleOptions) -> Self {
        let b = classes.len();
        let rows = if opts.guided() { 2 * b } else { b };
        let mut run = ArpgRun {
            model,
            plan,
            opts,
            device: model.device(),
            rope: model.rope(plan.ntk_scale),
            b,
            rows,
            rng: Rng::new(opts.seed),
            cache: model.new_cache(),
            tokens: vec![vec![None; plan.cells()]; b],
            decoded: 0,
        };
        let class_slot = model.slots(&run.rope, &[&[None]], plan.frame, &run.device);
        let ids = class_ids(model.config(), classes, opts.guided());
        model.feed(int_tensor(ids, [rows, 1], &run.device), &class_slot, &mut run.cache);
        let half = |p: usize| Some(Cell::at(p, plan.grid_w / 2, Level::Half));
        let known: Vec<(Slot, u32)> = (plan.context.iter().map(|&(p, c)| (half(p), c)))
            .chain(plan.prefill.iter().map(|&(p, c)| (run.cell(p), c)))
            .collect();
        if !known.is_empty() {
            let (at, ids): (Vec<Slot>, Vec<i64>) = known.iter().map(|&(s, c)| (s, c as i64)).unzip();
            let at = model.slots(&run.rope, &[&at], plan.frame, &run.device);
            model.feed(int_tensor(ids.repeat(rows), [rows, known.len()], &run.device), &at, &mut run.cache);
            for t in &mut run.tokens {
                plan.prefill.iter().for_each(|&(p, c)| t[p] = Some(c));
            }
        }
        run
    }

    /// The slot of the plan's cell `p`.
    fn cell(&self, p: usize) -> Slot {
        Some(Cell::at(p, self.plan.grid_w, Level::Full))
    }

    /// Slots for one list of cells shared by every row, or one list per image (the `[cond; null]`
    /// rows repeat them).
    fn slots(&self, cells: &[Vec<usize>]) -> Slots {
        let pos: Vec<Vec<Slot>> = cells.iter().map(|c| c.iter().map(|&p| self.cell(p)).collect()).collect();
        let n_rows = if pos.len() == 1 { 1 } else { self.rows };
        let per_row: Vec<&[Slot]> = (0..n_rows).map(|r| pos[r % pos.len()].as_slice()).collect();
        self.model.slots(&self.rope, &per_row, self.plan.frame, &self.device)
    }

    /// Per image, a phase's cells still to decode; in random order, in the order they will be.
    fn open_cells(&mut self, phase: &[usize]) -> Vec<Vec<usize>> {
        let mut open = phase.to_vec();
        if self.opts.order == Order::Random {
            self.rng.shuffle(&mut open);
        }
        vec![open; self.b]
    }

    /// The guidance scale once `k` more tokens are decoded (`None` without guidance).
    fn scale(&self, k: usize) -> Option<f32> {
        let opts = self.opts;
        opts.guided().then(|| opts.cfg_scale(self.decoded + k, self.plan.targets()))
    }

    /// Random order: the next `k` cells of the shared order, queried and sampled.
    async fn next_in_order(&mut self, open: &[Vec<usize>], k: usize) -> Result<Picked, Error> {
        let cells = vec![open[0][..k].to_vec()];
        if k == 0 {
            return Ok(Picked { cells, codes: vec![vec![]; self.b] }); // an empty step (StepRule::Official)
        }
        let logits = read_logits(self.model.query(self.rows, &self.slots(&cells), &self.cache)).await?;
        let vocab = self.model.config().vocab_size;
        let codes = sampling::pick(&logits, self.b, k, vocab, self.scale(k), self.opts, &mut self.rng);
        Ok(Picked { cells, codes })
    }

    /// Confidence order: every open cell queried and drafted; each image keeps its `k` most
    /// confident (step `s` of `steps` sets the annealed noise).
    async fn most_confident(
        &mut self,
        open: &[Vec<usize>],
        k: usize,
        s: usize,
        steps: usize,
    ) -> Result<Picked, Error> {
        let n = open[0].len();
        let logits = read_logits(self.model.query(self.rows, &self.slots(open), &self.cache)).await?;
        let vocab = self.model.config().vocab_size;
        let drafts = sampling::drafts(&logits, self.b, n, vocab, self.scale(k), self.opts, &mut self.rng);
        let (cells, codes) = drafts
            .iter()
            .zip(open)
            .map(|(d, cells)| {
                let confidence: Vec<f64> = d.iter().map(|&(_, c)| c).collect();
                let keep = sampling::most_confident(&confidence, k, s, steps, &mut self.rng);
                keep.iter().map(|&j| (cells[j], d[j].0)).unzip::<_, _, Vec<usize>, Vec<u32>>()
            })
            .unzip();
        Ok(Picked { cells, codes })
    }

    /// Records the picked codes, closes their cells and, unless this was the last step, feeds them
    /// to pass 1 at their cells.
    fn accept(&mut self, picked: &Picked, open: &mut [Vec<usize>]) {
        let k = picked.codes[0].len();
        self.decoded += k;
        for (i, (t, open)) in self.tokens.iter_mut().zip(open).enumerate() {
            let cells = &picked.cells[i % picked.cells.len()];
            cells.iter().zip(&picked.codes[i]).for_each(|(&p, &c)| t[p] = Some(c));
            open.retain(|p| !cells.contains(p));
        }
        if k > 0 && self.decoded < self.plan.targets() {
            let ids: Vec<i64> =
                (0..self.rows).flat_map(|r| picked.codes[r % self.b].iter().map(|&c| c as i64)).collect();
            let at = self.slots(&picked.cells);
            self.model.feed(int_tensor(ids, [self.rows, k], &self.device), &at, &mut self.cache);
        }
    }

    fn event(&self, step: usize, steps: usize, picked: &Picked) -> StepEvent {
        StepEvent {
            step,
            steps,
            positions: picked.cells[0].clone(),
            grid_h: self.plan.grid_h,
            grid_w: self.plan.grid_w,
            tokens: self.tokens[0].clone(),
        }
    }
}

/// The tokens of finished images (every cell decoded) and the cache size reached.
pub(crate) fn finish(tokens: Vec<Vec<Option<u32>>>, kv_bytes: usize) -> Sampled {
    Sampled {
        tokens: tokens.into_iter().map(|t| t.into_iter().map(|c| c.unwrap_or(0)).collect()).collect(),
        kv_bytes,
    }
}
