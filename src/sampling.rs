//! How tokens are drawn, the same for every decoder: the options (steps and their schedule,
//! classifier-free guidance and its schedule, temperature, top-k, top-p, ARPG's order, the seed),
//! guidance `u + s (c - u)`, and the draw itself. Everything here runs on the host with [`Rng`],
//! so a seed gives the same tokens on every backend.

use std::collections::BTreeMap;
use std::f64::consts::{FRAC_PI_2, PI};

use serde::{Deserialize, Serialize};

use crate::choice::Choice;
use crate::error::Error;
use crate::rng::Rng;

/// How many tokens each step decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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

/// How a schedule's share of masked tokens becomes whole steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepRule {
    /// Ours ([`Schedule::step_sizes`]): every step decodes at least one token.
    #[default]
    Spread,
    /// The official code's (hp-l33/ARPG `Transformer.generate`), for the paper's models: step
    /// `s` leaves `clamp(int(T * f((s+1)/S)), 1, T - done - 1)` tokens masked and the last step
    /// takes the rest, so a late step can decode none (cosine past 201 steps of 256 tokens).
    Official,
}

impl Schedule {
    /// The official code's step sizes ([`StepRule::Official`]), with its floating-point
    /// operations in its order so that the integer parts agree.
    pub fn official_step_sizes(self, total: usize, steps: usize) -> Vec<usize> {
        let mut done = 0;
        (0..steps)
            .map(|s| {
                let k = if s + 1 == steps {
                    total - done
                } else {
                    let ratio = match self {
                        Schedule::Arccos => (1.0 * (s + 1) as f64 / steps as f64).acos() / (PI * 0.5),
                        Schedule::Cosine => (PI / 2.0 * (s + 1) as f64 / steps as f64).cos(),
                        Schedule::Linear => 1.0 - (s + 1) as f64 / steps as f64,
                    };
                    let mask_len = ((total as f64 * ratio) as usize).min(total - done - 1).max(1);
                    total - done - mask_len
                };
                done += k;
                k
            })
            .collect()
    }
}

impl Choice for Schedule {
    const ALL: &'static [Self] = &[Schedule::Arccos, Schedule::Cosine, Schedule::Linear];
    const WHAT: &'static str = "schedule";
    fn name(self) -> &'static str {
        match self {
            Schedule::Arccos => "arccos",
            Schedule::Cosine => "cosine",
            Schedule::Linear => "linear",
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
    /// The cells in the order the plan lists them: raster order for a whole picture, or an order
    /// given by the caller (`arpg generate --order-file`), used as the random one is.
    Listed,
}

impl Choice for Order {
    const ALL: &'static [Self] = &[Order::Random, Order::Confidence, Order::Listed];
    const WHAT: &'static str = "order";
    fn name(self) -> &'static str {
        match self {
            Order::Random => "random",
            Order::Confidence => "confidence",
            Order::Listed => "listed",
        }
    }
}

/// How the guidance scale evolves over decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CfgSchedule {
    /// The official default: `1 + (g - 1) * decoded / total`.
    Linear,
    Constant,
}

impl Choice for CfgSchedule {
    const ALL: &'static [Self] = &[CfgSchedule::Linear, CfgSchedule::Constant];
    const WHAT: &'static str = "CFG schedule";
    fn name(self) -> &'static str {
        match self {
            CfgSchedule::Linear => "linear",
            CfgSchedule::Constant => "constant",
        }
    }
}

crate::from_str_by_name!(Schedule, Order, CfgSchedule, Task);

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
    pub step_rule: StepRule,
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
            step_rule: StepRule::Spread,
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
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad(format!(
                "temperature must be >= 0 (0: the most likely code), got {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        Ok(())
    }

    /// Tokens decoded at each step when `total` are to be decoded in `steps` steps.
    pub fn step_sizes(&self, total: usize, steps: usize) -> Vec<usize> {
        match self.step_rule {
            StepRule::Spread => self.schedule.step_sizes(total, steps),
            StepRule::Official => self.schedule.official_step_sizes(total, steps),
        }
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

/// What an image is made by: each may sample with options of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    Generate,
    Inpaint,
    Outpaint,
    Expand,
}

impl Choice for Task {
    const ALL: &'static [Self] = &[Task::Generate, Task::Inpaint, Task::Outpaint, Task::Expand];
    const WHAT: &'static str = "task";
    fn name(self) -> &'static str {
        match self {
            Task::Generate => "generate",
            Task::Inpaint => "inpaint",
            Task::Outpaint => "outpaint",
            Task::Expand => "expand",
        }
    }
}

/// A model's own sampling defaults, recorded in its checkpoint: the ones its evaluation chose
/// (the shipped models: docs/quality.md), or for the paper's models the settings the official
/// README reproduces its FID with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleDefaults {
    pub steps: usize,
    pub cfg: f32,
    pub cfg_schedule: CfgSchedule,
    pub schedule: Schedule,
    pub temperature: f32,
    pub step_rule: StepRule,
    /// Where a task samples otherwise (the colour model expands with no guidance and a low
    /// temperature).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks: BTreeMap<Task, TaskDefaults>,
}

/// The options a task sets over its model's [`SampleDefaults`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDefaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cfg: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cfg_schedule: Option<CfgSchedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
}

impl SampleDefaults {
    /// The library's options for `task` with these in place.
    pub fn options(&self, task: Task) -> SampleOptions {
        let over = self.tasks.get(&task).cloned().unwrap_or_default();
        SampleOptions {
            steps: self.steps,
            cfg: over.cfg.unwrap_or(self.cfg),
            cfg_schedule: over.cfg_schedule.unwrap_or(self.cfg_schedule),
            schedule: self.schedule,
            temperature: over.temperature.unwrap_or(self.temperature),
            step_rule: self.step_rule,
            ..SampleOptions::default()
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        for &task in Task::ALL {
            self.options(task).validate(usize::MAX).map_err(|e| format!("{}: {e}", task.name()))?;
        }
        Ok(())
    }
}

/// The options for `task` with a model's defaults (`None`: the model records none, so the
/// library's).
pub fn defaults(model: Option<&SampleDefaults>, task: Task) -> SampleOptions {
    model.map_or_else(SampleOptions::default, |d| d.options(task))
}

/// `u + s * (c - u)`
pub fn guide(cond: &[f32], uncond: &[f32], scale: f32) -> Vec<f32> {
    cond.iter().zip(uncond).map(|(c, u)| u + scale * (c - u)).collect()
}

/// Draw one code from `logits` with temperature, top-k and top-p. Temperature 0 takes the most
/// likely code (the first on ties) and draws nothing.
pub fn sample_token(logits: &[f32], opts: &SampleOptions, rng: &mut Rng) -> u32 {
    if opts.temperature == 0.0 {
        let best = (0..logits.len()).fold(0, |b, i| if logits[i] > logits[b] { i } else { b });
        return best as u32;
    }
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

/// Sample from the guided (or plain) logits of `n` positions for `b` images.
/// `logits` is `[rows, n, vocab]` with rows = `b` (unguided) or `2b` (`[cond; null]`).
pub fn pick(
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
pub fn drafts(
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

/// `log softmax(logits / temperature)[token]` (temperature 0: as 1, to rank greedy drafts).
pub(crate) fn log_prob(logits: &[f32], token: usize, temperature: f32) -> f64 {
    let t = if temperature == 0.0 { 1.0 } else { temperature as f64 };
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let lse = logits.iter().map(|&x| ((x as f64 - max) / t).exp()).sum::<f64>().ln();
    (logits[token] as f64 - max) / t - lse
}

/// The indices of the `k` highest `confidence`s after adding `noise` times Gumbel noise
/// (MaskGIT's choice temperature: 4.5 at the first step, annealed linearly to 0 at the last).
pub fn most_confident(confidence: &[f64], k: usize, step: usize, steps: usize, rng: &mut Rng) -> Vec<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_samples_with_the_model_defaults_and_its_own_overrides() {
        let expand = TaskDefaults { cfg: Some(1.0), temperature: Some(0.05), ..TaskDefaults::default() };
        let d = SampleDefaults {
            steps: 8,
            cfg: 4.0,
            cfg_schedule: CfgSchedule::Constant,
            schedule: Schedule::Cosine,
            temperature: 0.9,
            step_rule: StepRule::Spread,
            tasks: BTreeMap::from([(Task::Expand, expand)]),
        };
        let generate = d.options(Task::Generate);
        assert_eq!((generate.steps, generate.cfg, generate.temperature), (8, 4.0, 0.9));
        assert_eq!(generate.cfg_schedule, CfgSchedule::Constant);
        assert_eq!(d.options(Task::Inpaint), generate);
        let expand = d.options(Task::Expand);
        assert_eq!((expand.cfg, expand.temperature, expand.cfg_schedule), (1.0, 0.05, CfgSchedule::Constant));
        assert!(d.validate().is_ok());
        let mut bad = d.clone();
        bad.tasks.get_mut(&Task::Expand).unwrap().temperature = Some(-1.0);
        assert!(bad.validate().unwrap_err().starts_with("expand: "));
    }

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
