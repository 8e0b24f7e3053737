//! Parallel decoding in a random order with one shared KV cache (ARPG), plus the host-side
//! pieces every sampler shares: step schedules, classifier-free guidance, temperature / top-k /
//! top-p sampling. Randomness comes from `Rng` on the host, so a seed gives the same tokens on
//! every backend.

use std::f64::consts::FRAC_PI_2;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::ModelConfig;
use crate::error::Error;
use crate::model::{Arpg, Frame};
use crate::rng::Rng;
use crate::rope::{self, Pos};

/// How many tokens each step decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// The paper's default: about T/10 tokens a step, then the rest at once (8 of 64:
    /// 6, 5, 5, 6, 6, 7, 9, 20).
    Arccos,
    /// This project's default: few tokens early, more late (8 of 64: 2, 3, 6, 8, 10, 11, 12,
    /// 12). On the shipped model it beats arccos at 4 and 8 steps (docs/quality.md).
    Cosine,
    /// The same number every step.
    Linear,
}

impl Schedule {
    /// Share of tokens still masked after step `s` of `steps`.
    fn masked_after(self, s: usize, steps: usize) -> f64 {
        let x = (s + 1) as f64 / steps as f64;
        match self {
            Schedule::Arccos => x.acos() / FRAC_PI_2,
            Schedule::Cosine => (FRAC_PI_2 * x).cos(),
            Schedule::Linear => 1.0 - x,
        }
    }

    /// Tokens decoded at each of `steps` steps (`1 <= steps <= total`): every step decodes at
    /// least one, and they sum to `total`.
    pub fn step_sizes(self, total: usize, steps: usize) -> Vec<usize> {
        let steps = steps.clamp(1, total.max(1));
        let mut sizes = Vec::with_capacity(steps);
        let mut done = 0;
        for s in 0..steps {
            let left_after = if s + 1 == steps {
                0
            } else {
                let want = (total as f64 * self.masked_after(s, steps)).floor() as usize;
                // keep one token for each later step, and decode at least one now
                want.clamp(steps - 1 - s, total - done - 1)
            };
            sizes.push(total - done - left_after);
            done = total - left_after;
        }
        sizes
    }
}

impl FromStr for Schedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "arccos" => Ok(Schedule::Arccos),
            "cosine" => Ok(Schedule::Cosine),
            "linear" => Ok(Schedule::Linear),
            _ => Err(format!("unknown schedule '{s}' (arccos, cosine, linear)")),
        }
    }
}

/// Which cells an ARPG step decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// The paper's: one random order, drawn before decoding and shared by the batch; a step
    /// queries only its own cells.
    Random,
    /// A step queries every undecoded cell and keeps, per image, the ones whose drafted codes are
    /// most likely (with annealed Gumbel noise, as MaskGIT ranks them). Better at few steps, but
    /// each step queries all the cells still open, not only the ones it decodes.
    Confidence,
}

impl FromStr for Order {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "random" => Ok(Order::Random),
            "confidence" => Ok(Order::Confidence),
            _ => Err(format!("unknown order '{s}' (random, confidence)")),
        }
    }
}

/// How the guidance scale evolves over decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CfgSchedule {
    /// The official default: `1 + (g - 1) * decoded / total`.
    Linear,
    Constant,
}

impl FromStr for CfgSchedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "linear" => Ok(CfgSchedule::Linear),
            "constant" => Ok(CfgSchedule::Constant),
            _ => Err(format!("unknown CFG schedule '{s}' (linear, constant)")),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SampleOptions {
    pub steps: usize,
    /// Guidance scale `g`; 1 disables guidance (and the doubled batch).
    pub cfg: f32,
    pub cfg_schedule: CfgSchedule,
    pub temperature: f32,
    /// Keep the `top_k` most likely codes; 0 = off. Values at or above the codebook size keep
    /// every code (clamped, the same as off), so any `usize` is valid.
    pub top_k: usize,
    /// Keep the smallest set of codes whose probability reaches `top_p`; 1 = off.
    pub top_p: f32,
    pub schedule: Schedule,
    /// ARPG's decoding order (MaskGIT always ranks by confidence, raster AR has one order).
    pub order: Order,
    pub seed: u64,
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            steps: 8,
            cfg: 3.0,
            cfg_schedule: CfgSchedule::Linear,
            // 0.9, not 1: on the shipped model it brings 8 steps level with 64 in FD (18.9 -> 15.6
            // at 8 steps, 64 unchanged; 0.8 is worse again; docs/quality.md).
            temperature: 0.9,
            top_k: 0,
            top_p: 1.0,
            schedule: Schedule::Cosine,
            order: Order::Random,
            seed: 0,
        }
    }
}

impl SampleOptions {
    /// Checked before any work: `total` is the number of tokens to decode. `top_k` needs no
    /// check (see its field) and every `u64` seed is valid.
    pub fn validate(&self, total: usize) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Options(m));
        if self.steps == 0 || self.steps > total.max(1) {
            return bad(format!("steps must be between 1 and {total}, got {}", self.steps));
        }
        if !self.cfg.is_finite() || self.cfg < 0.0 {
            return bad(format!("cfg must be a finite number >= 0, got {}", self.cfg));
        }
        if !self.temperature.is_finite() || self.temperature <= 0.0 {
            return bad(format!("temperature must be > 0, got {}", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        Ok(())
    }

    pub fn guided(&self) -> bool {
        self.cfg != 1.0
    }

    /// The guidance scale once `decoded` of `total` tokens (this step included) are decoded.
    pub fn cfg_scale(&self, decoded: usize, total: usize) -> f32 {
        match self.cfg_schedule {
            CfgSchedule::Constant => self.cfg,
            CfgSchedule::Linear => 1.0 + (self.cfg - 1.0) * decoded as f32 / total.max(1) as f32,
        }
    }
}

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

/// `u + s * (c - u)`
pub fn guide(cond: &[f32], uncond: &[f32], scale: f32) -> Vec<f32> {
    cond.iter().zip(uncond).map(|(c, u)| u + scale * (c - u)).collect()
}

/// Draw one code from `logits` with temperature, top-k and top-p.
pub fn sample_token(logits: &[f32], opts: &SampleOptions, rng: &mut Rng) -> u32 {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    if opts.top_k > 0 {
        order.truncate(opts.top_k.min(logits.len()));
    }
    let max = logits[order[0]] as f64;
    let t = opts.temperature as f64;
    let mut probs: Vec<f64> = order.iter().map(|&i| ((logits[i] as f64 - max) / t).exp()).collect();
    let sum: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= sum);
    if opts.top_p < 1.0 {
        let mut acc = 0.0;
        let keep = probs.iter().position(|p| {
            acc += p;
            acc >= opts.top_p as f64
        });
        probs.truncate(keep.map_or(probs.len(), |i| i + 1));
    }
    let total: f64 = probs.iter().sum();
    let mut u = rng.next_f64() * total;
    for (p, &i) in probs.iter().zip(&order) {
        if u < *p {
            return i as u32;
        }
        u -= p;
    }
    order[probs.len() - 1] as u32
}

/// What to decode: a grid, tokens known in advance, and the cells to decode in phases (each phase
/// is shuffled and decoded with the full schedule before the next starts).
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub grid_h: usize,
    pub grid_w: usize,
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
        self.phases.iter().map(|p| opts.schedule.step_sizes(p.len(), opts.steps.min(p.len()))).collect()
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

/// Sample from the guided (or plain) logits of `n` positions for `b` images.
/// `logits` is `[rows, n, vocab]` with rows = `b` (unguided) or `2b` (`[cond; null]`).
pub(crate) fn pick(
    logits: &[f32],
    b: usize,
    n: usize,
    vocab: usize,
    scale: Option<f32>,
    opts: &SampleOptions,
    rng: &mut Rng,
) -> Vec<Vec<u32>> {
    drafts(logits, b, n, vocab, scale, opts, rng)
        .into_iter()
        .map(|d| d.into_iter().map(|(c, _)| c).collect())
        .collect()
}

/// [`pick`], with each drafted code's log-probability (after guidance and temperature): the
/// confidence that [`most_confident`] ranks by.
pub(crate) fn drafts(
    logits: &[f32],
    b: usize,
    n: usize,
    vocab: usize,
    scale: Option<f32>,
    opts: &SampleOptions,
    rng: &mut Rng,
) -> Vec<Vec<(u32, f64)>> {
    (0..b)
        .map(|i| {
            (0..n)
                .map(|j| {
                    let row = |r: usize| &logits[(r * n + j) * vocab..(r * n + j + 1) * vocab];
                    let l = match scale {
                        Some(s) => guide(row(i), row(b + i), s),
                        None => row(i).to_vec(),
                    };
                    let code = sample_token(&l, opts, rng);
                    (code, log_prob(&l, code as usize, opts.temperature))
                })
                .collect()
        })
        .collect()
}

/// `log softmax(logits / temperature)[token]`
fn log_prob(logits: &[f32], token: usize, temperature: f32) -> f64 {
    let t = temperature as f64;
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let lse = logits.iter().map(|&x| ((x as f64 - max) / t).exp()).sum::<f64>().ln();
    (logits[token] as f64 - max) / t - lse
}

/// The indices of the `k` highest `confidence`s after adding `noise` times Gumbel noise
/// (MaskGIT's choice temperature: 4.5 at the first step, annealed linearly to 0 at the last).
pub(crate) fn most_confident(
    confidence: &[f64],
    k: usize,
    step: usize,
    steps: usize,
    rng: &mut Rng,
) -> Vec<usize> {
    let noise = 4.5 * (1.0 - (step + 1) as f64 / steps as f64);
    let mut ranked: Vec<(f64, usize)> = confidence
        .iter()
        .enumerate()
        .map(|(j, &c)| {
            let gumbel = -(-(rng.next_f64().max(1e-12)).ln()).ln();
            (c + noise * gumbel, j)
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.into_iter().take(k).map(|(_, j)| j).collect()
}

/// ARPG sampling: each step feeds the tokens sampled at the previous step to pass 1 (appending
/// to the caches), then runs this step's `[MASK]` queries in one call against the one shared K/V.
/// No mask inside a step. With [`Order::Random`] the order is drawn once per phase and shared by
/// the batch; with [`Order::Confidence`] each image keeps its own most confident cells.
pub async fn sample_arpg<R: AfterStep>(
    model: &Arpg,
    classes: &[usize],
    plan: &Plan,
    opts: &SampleOptions,
    on_step: &mut dyn FnMut(&StepEvent) -> R,
) -> Result<Sampled, Error> {
    let config = &model.config;
    opts.validate(plan.cells())?; // each phase then takes at most as many steps as it has cells
    check_classes(config, classes)?;
    let device = model.head.weight.device();
    let (b, guided, vocab) = (classes.len(), opts.guided(), config.vocab_size);
    let rows = if guided { 2 * b } else { b };
    let rope = model.rope(plan.ntk_scale);
    // Slots for one list of cells per image (rows `[cond; null]` repeat them), or one list for all.
    let slots = |cells: &[Vec<usize>]| {
        let pos: Vec<Vec<Pos>> =
            cells.iter().map(|c| c.iter().map(|&p| rope::cell(p, plan.grid_w)).collect()).collect();
        let n_rows = if pos.len() == 1 { 1 } else { rows };
        let per_row: Vec<&[Pos]> = (0..n_rows).map(|r| pos[r % pos.len()].as_slice()).collect();
        model.slots(&rope, &per_row, plan.frame, &device)
    };
    let mut rng = Rng::new(opts.seed);
    let mut cache = model.new_cache();
    let mut tokens: Vec<Vec<Option<u32>>> = vec![vec![None; plan.cells()]; b];

    // Step 0 of pass 1: the class token alone (rows: [cond; null]).
    let class_slot = model.slots(&rope, &[&[None]], plan.frame, &device);
    model.feed(
        int_tensor(class_ids(config, classes, guided), [rows, 1], &device),
        &class_slot,
        None,
        &mut cache,
    );
    // Known tokens, as one block at their true positions.
    if !plan.prefill.is_empty() {
        let n = plan.prefill.len();
        let ids: Vec<i64> = plan.prefill.iter().map(|&(_, c)| c as i64).collect();
        let cells: Vec<usize> = plan.prefill.iter().map(|&(p, _)| p).collect();
        model.feed(int_tensor(ids.repeat(rows), [rows, n], &device), &slots(&[cells]), None, &mut cache);
        for t in &mut tokens {
            plan.prefill.iter().for_each(|&(p, c)| t[p] = Some(c));
        }
    }

    let sizes = plan.step_sizes(opts);
    let steps: usize = sizes.iter().map(Vec::len).sum();
    let total = plan.targets();
    let (mut step, mut decoded) = (0, 0);
    for (phase, phase_sizes) in plan.phases.iter().zip(&sizes) {
        // Per image, the phase's cells not decoded yet (Random: in the order they will be).
        let mut open = phase.clone();
        if opts.order == Order::Random {
            rng.shuffle(&mut open);
        }
        let mut open = vec![open; b];
        for (s, &k) in phase_sizes.iter().enumerate() {
            decoded += k;
            let scale = guided.then(|| opts.cfg_scale(decoded, total));
            // The cells decoded now and their codes, one list per image.
            let (cells, new): (Vec<Vec<usize>>, Vec<Vec<u32>>) = match opts.order {
                Order::Random => {
                    let cells = vec![open[0][..k].to_vec()];
                    let logits = read_logits(model.query(rows, &slots(&cells), None, &cache)).await?;
                    (vec![cells[0].clone(); b], pick(&logits, b, k, vocab, scale, opts, &mut rng))
                }
                Order::Confidence => {
                    let n = open[0].len();
                    let logits = read_logits(model.query(rows, &slots(&open), None, &cache)).await?;
                    drafts(&logits, b, n, vocab, scale, opts, &mut rng)
                        .iter()
                        .zip(&open)
                        .map(|(d, cells)| {
                            let confidence: Vec<f64> = d.iter().map(|&(_, c)| c).collect();
                            let keep = most_confident(&confidence, k, s, phase_sizes.len(), &mut rng);
                            keep.iter().map(|&j| (cells[j], d[j].0)).unzip()
                        })
                        .unzip()
                }
            };
            for ((t, open), (cells, codes)) in tokens.iter_mut().zip(&mut open).zip(cells.iter().zip(&new)) {
                cells.iter().zip(codes).for_each(|(&p, &c)| t[p] = Some(c));
                open.retain(|p| !cells.contains(p));
            }
            if decoded < total {
                let ids: Vec<i64> = (0..rows).flat_map(|r| new[r % b].iter().map(|&c| c as i64)).collect();
                let at = if opts.order == Order::Random { slots(&cells[..1]) } else { slots(&cells) };
                model.feed(int_tensor(ids, [rows, k], &device), &at, None, &mut cache);
            }
            on_step(&StepEvent {
                step,
                steps,
                positions: cells[0].clone(),
                grid_h: plan.grid_h,
                grid_w: plan.grid_w,
                tokens: tokens[0].clone(),
            })
            .wait()
            .await?;
            step += 1;
        }
    }
    let tokens = tokens.into_iter().map(|t| t.into_iter().map(|c| c.unwrap_or(0)).collect()).collect();
    Ok(Sampled { tokens, kv_bytes: cache.bytes() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_step_keeps_exactly_the_most_confident() {
        let confidence = [-3.0, -0.5, -2.0, -0.1, -4.0, -1.0];
        // The last of 8 steps adds no noise: the top 3 in order.
        assert_eq!(most_confident(&confidence, 3, 7, 8, &mut Rng::new(1)), [3, 1, 5]);
        // Earlier steps add noise: still k distinct indices, the same for the same seed.
        let noisy = most_confident(&confidence, 3, 0, 8, &mut Rng::new(1));
        let mut distinct = noisy.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 3);
        assert_eq!(noisy, most_confident(&confidence, 3, 0, 8, &mut Rng::new(1)));
    }

    #[test]
    fn drafts_score_each_code_by_its_log_probability() {
        // One image, two cells, vocab 3; no guidance; temperature 1.
        let logits = [0.0, 0.0, 0.0, 10.0, 0.0, 0.0];
        let opts = SampleOptions { temperature: 1.0, ..SampleOptions::default() };
        let d = drafts(&logits, 1, 2, 3, None, &opts, &mut Rng::new(4));
        let (code, lp) = d[0][0];
        assert!((lp - (1.0f64 / 3.0).ln()).abs() < 1e-9, "uniform cell: code {code}, {lp}");
        assert!(d[0][1].0 == 0 && d[0][1].1 > -1e-3, "peaked cell: {:?}", d[0][1]);
        // The codes are pick's, draw for draw.
        assert_eq!(pick(&logits, 1, 2, 3, None, &opts, &mut Rng::new(4)), [[code, 0]]);
    }
}
