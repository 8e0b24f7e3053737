//! The decoder's contract: causality in training, KV-cache parity, the shared-K/V structure and
//! the RoPE conventions.

mod common;

use arpg::config::{Arch, ModelConfig};
use arpg::kv_cache::KvCache;
use arpg::model::{self, Arpg, Cell, Frame, Level, Slot};
use arpg::rng::Rng;
use arpg::rope::{self, Pos, Rope};
use arpg::tasks::{self, Sides};
use arpg::weights;
use burn::tensor::{Int, Tensor, TensorData};
use common::*;

fn random_tokens(rng: &mut Rng, n: usize) -> Vec<u32> {
    (0..n).map(|_| rng.below(VOCAB) as u32).collect()
}

#[test]
fn training_forward_is_causal_in_the_order() {
    let device = device();
    let m = arpg(Arch::Arpg);
    let c = m.config.clone();
    let t = c.seq_len();
    let mut rng = Rng::new(7);
    for trial in 0..3 {
        let order = rng.permutation(t);
        let tokens = random_tokens(&mut rng, t);
        let class = [c.class_id(trial % CLASSES)];
        let seq = |tokens: &[u32]| [model::in_order(tokens, &order, c.grid_w, Level::Full)];
        let base = to_vec(m.forward_train(&class, &seq(&tokens), &device));
        // Change the token at order position `s`: logits of order positions <= s must not move
        // (they see only tokens before them), and some later one must.
        for s in [0, t / 2, t - 1] {
            let mut changed = tokens.clone();
            changed[order[s]] = (changed[order[s]] + 1) % VOCAB as u32;
            let out = to_vec(m.forward_train(&class, &seq(&changed), &device));
            let v = c.vocab_size;
            let upto = (s + 1) * v;
            assert!(max_abs_diff(&base[..upto], &out[..upto]) == 0.0, "order position <= {s} saw the future");
            if s + 1 < t {
                assert!(
                    max_abs_diff(&base[upto..], &out[upto..]) > 1e-6,
                    "later positions must see token {s}"
                );
            }
        }
    }
}

fn ids(values: &[i64], device: &burn::tensor::Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(values.to_vec(), [1, values.len()]), device)
}

/// Decode in blocks with the cache, and compare every step's query logits with a full recompute
/// (fresh cache, whole prefix at once under the block-causal mask).
fn check_arpg_parity(m: &Arpg) {
    let device = device();
    let c = &m.config;
    let mut rng = Rng::new(3);
    let t = c.seq_len();
    let order = rng.permutation(t);
    let tokens = random_tokens(&mut rng, t);
    let blocks = [2usize, 3, 5, t - 10];
    let mut cache = m.new_cache();
    // slot -> block index; slot 0 is the class (block 0)
    let mut slot_block = vec![0usize];
    let mut slot_ids = vec![c.class_id(1) as i64];
    let mut slot_pos: Vec<Slot> = vec![None];
    m.feed(ids(&slot_ids, &device), &slots(m, &slot_pos), None, &mut cache);
    let mut done = 0;
    for (bi, &k) in blocks.iter().enumerate() {
        let cells = &order[done..done + k];
        let qpos: Vec<Slot> = cells.iter().map(|&p| cell(p, c.grid_w)).collect();
        let q_rope = slots(m, &qpos);
        let cached = to_vec(m.query(1, &q_rope, None, &cache));

        let mut fresh = m.new_cache();
        let mask =
            model::mask_from(slot_ids.len(), slot_ids.len(), &device, |q, k| slot_block[k] > slot_block[q]);
        m.feed(ids(&slot_ids, &device), &slots(m, &slot_pos), Some(&mask), &mut fresh);
        let full = to_vec(m.query(1, &q_rope, None, &fresh));
        let diff = max_abs_diff(&cached, &full);
        assert!(diff < 1e-4, "step {bi}: cached vs recomputed logits differ by {diff}");

        let new_ids: Vec<i64> = cells.iter().map(|&p| tokens[p] as i64).collect();
        m.feed(ids(&new_ids, &device), &q_rope, None, &mut cache);
        slot_ids.extend(&new_ids);
        slot_pos.extend(&qpos);
        slot_block.extend(std::iter::repeat_n(bi + 1, k));
        done += k;
    }
}

/// Rows of one batch at their own cells (the confidence order's per-image slots) give each row
/// the logits it gets alone.
#[test]
fn rows_at_their_own_cells_match_each_row_alone() {
    let device = device();
    let m = arpg(Arch::Arpg);
    let c = &m.config;
    let at = |cells: &[&[usize]]| {
        let pos: Vec<Vec<Slot>> =
            cells.iter().map(|r| r.iter().map(|&p| cell(p, c.grid_w)).collect()).collect();
        let refs: Vec<&[Slot]> = pos.iter().map(Vec::as_slice).collect();
        m.slots(&m.rope(1.0), &refs, Frame::default(), &device)
    };
    let int = |v: Vec<i64>, b: usize| {
        Tensor::<2, Int>::from_data(TensorData::new(v.clone(), [b, v.len() / b]), &device)
    };
    // Row r: class classes[r], then codes[r] fed at fed[r], then queries at asked[r].
    let classes = [c.class_id(0) as i64, c.class_id(2) as i64];
    let codes = [[4, 1, 9], [7, 7, 3]];
    let fed: [&[usize]; 2] = [&[0, 5, 9], &[15, 2, 7]];
    let asked: [&[usize]; 2] = [&[3, 12], &[1, 0]];
    let run = |rows: &[usize]| {
        let b = rows.len();
        let mut cache = m.new_cache();
        m.feed(int(rows.iter().map(|&r| classes[r]).collect(), b), &slots(&m, &[None]), None, &mut cache);
        let (fed, asked): (Vec<&[usize]>, Vec<&[usize]>) = rows.iter().map(|&r| (fed[r], asked[r])).unzip();
        m.feed(int(rows.iter().flat_map(|&r| codes[r]).collect(), b), &at(&fed), None, &mut cache);
        to_vec(m.query(b, &at(&asked), None, &cache))
    };
    let both = run(&[0, 1]);
    let alone = [run(&[0]), run(&[1])].concat();
    let diff = max_abs_diff(&both, &alone);
    assert!(diff < 1e-5, "batched rows differ from rows alone by {diff}");
}

#[test]
fn arpg_kv_cache_matches_full_recompute() {
    check_arpg_parity(&arpg(Arch::Arpg));
    check_arpg_parity(&arpg(Arch::ArpgNoSharedKv));
}

#[test]
fn raster_kv_cache_matches_full_recompute() {
    let device = device();
    let m = raster();
    let c = &m.stack.config;
    let t = c.seq_len();
    let mut rng = Rng::new(5);
    let tokens = random_tokens(&mut rng, t);
    let full = to_vec(m.forward_train(&[c.class_id(2)], std::slice::from_ref(&tokens), &device));
    let rope = m.stack.rope();
    let mut cache = m.stack.new_cache();
    let mut cached = Vec::new();
    for j in 0..t {
        let (id, pos) = if j == 0 {
            (c.class_id(2) as i64, None)
        } else {
            (tokens[j - 1] as i64, rope::cell(j - 1, c.grid_w))
        };
        cached.extend(to_vec(m.stack.forward(
            ids(&[id], &device),
            &rope.tables(&[pos], &device),
            None,
            &mut cache,
        )));
    }
    let diff = max_abs_diff(&cached, &full);
    assert!(diff < 1e-4, "raster cached vs full logits differ by {diff}");
}

#[test]
fn pass_two_owns_no_kv_and_the_cache_has_its_formula_size() {
    let shared = arpg(Arch::Arpg);
    let ablation = arpg(Arch::ArpgNoSharedKv);
    let names: Vec<String> = weights::export(&shared, "model").into_iter().map(|t| t.name).collect();
    assert!(names.iter().any(|n| n.starts_with("model.shared_kv.k")), "the shared K/V projection exists");
    assert!(
        names.iter().filter(|n| n.starts_with("model.queries.")).all(|n| !n.contains(".own_kv.")),
        "{names:?}"
    );
    assert!(shared.queries.iter().all(|q| q.own_kv.is_none()));
    assert!(ablation.queries.iter().all(|q| q.own_kv.is_some()));

    let device = device();
    let c = &shared.config;
    let (n_content, n_query) = c.arpg_split();
    let fill = |m: &Arpg| {
        let mut cache = m.new_cache();
        let codes: Vec<i64> = (0..c.seq_len() as i64).map(|i| i % VOCAB as i64).collect();
        let pos: Vec<Slot> = (0..codes.len()).map(|p| cell(p, c.grid_w)).collect();
        let batch = Tensor::<2, Int>::from_data(TensorData::new(codes.repeat(2), [2, codes.len()]), &device);
        m.feed(batch, &slots(m, &pos), None, &mut cache);
        cache
    };
    let (a, b) = (fill(&shared), fill(&ablation));
    assert_eq!(a.bytes(), KvCache::expected_bytes(n_content, 1, 2, c.seq_len(), c.d_model));
    assert_eq!(b.bytes(), KvCache::expected_bytes(n_content, n_query, 2, c.seq_len(), c.d_model));
    assert!(a.bytes() < b.bytes());
}

fn rotate(x: &[f32], pos: Pos, rope: &Rope) -> Vec<f32> {
    let device = device();
    let d = x.len();
    let t = Tensor::<4>::from_data(TensorData::new(x.to_vec(), [1, 1, 1, d]), &device);
    rope::apply(t, &rope.tables(&[pos], &device)).into_data().try_into_vec::<f32>().unwrap()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// With the position table, `[MASK]` queries at different cells differ even when pass 2 has only
/// the class slot to read (sampling's first step). With RoPE alone (the paper's model) they cannot:
/// attention over a single key is the same for every query, so the model cannot see the frame.
#[test]
fn queries_see_their_cell_from_the_first_step() {
    let logits = |m: &Arpg| {
        let mut cache = m.new_cache();
        m.feed(ids(&[m.config.class_id(1) as i64], &device()), &slots(m, &[None]), None, &mut cache);
        to_vec(m.query(1, &slots(m, &[at(0, 0), at(1, 2)]), None, &cache))
    };
    let with = logits(&arpg(Arch::Arpg));
    assert!(max_abs_diff(&with[..VOCAB], &with[VOCAB..]) > 1e-3, "two cells, one prediction");
    let config = ModelConfig { pos_embed: false, ..config(Arch::Arpg) };
    let without = logits(&reseed(Arpg::new(&config, &device()), "model", 1));
    assert_eq!(without[..VOCAB], without[VOCAB..], "RoPE alone cannot tell the cells apart");
}

#[test]
fn the_frame_maps_grid_cells_onto_the_training_grid() {
    let c = config(Arch::Arpg);
    let (h, w) = (c.grid_h, c.grid_w);
    assert_eq!((h, w), (4, 4));
    let same = Frame::default();
    assert_eq!(same.row(at(2, 3), &c), 11);
    assert_eq!(same.row(None, &c), 16, "the class slot has the last row");
    assert_eq!(same.row(at(6, 1), &c), 13, "beyond the grid: its nearest edge");
    // Out-painting: the source sits at (1, 2) of a 8 x 6 canvas and keeps its own cells.
    let out = tasks::outpaint(&[0; 16], h, w, Sides { top: 1, left: 2, right: 0, bottom: 3 }).frame;
    assert_eq!(out.row(at(1, 2), &c), 0);
    assert_eq!(out.row(at(4, 5), &c), 15);
    assert_eq!(out.row(at(0, 0), &c), 0, "above-left of the source: its corner");
    assert_eq!(out.row(at(7, 3), &c), 13);
    // Expansion x2: every 2 x 2 block takes its coarse cell.
    let big = tasks::expand(None, h, w, 2).frame;
    assert_eq!([at(2, 4), at(3, 5)].map(|p| big.row(p, &c)), [6, 6]);
}

#[test]
fn a_multi_scale_table_has_the_half_grid_between_the_full_grid_and_the_class() {
    let c = ModelConfig { multi_scale: true, ..config(Arch::Arpg) };
    let half = |row, col| Some(Cell { row, col, level: Level::Half });
    assert_eq!(c.pos_rows(), 16 + 4 + 1);
    let same = Frame::default();
    assert_eq!(same.row(at(3, 3), &c), 15);
    assert_eq!([half(0, 0), half(1, 0), half(1, 1)].map(|p| same.row(p, &c)), [16, 18, 19]);
    assert_eq!(same.row(None, &c), 20);
    // Expanding a full-size picture (its tokens as the half grid of a grid twice as large): both
    // grids map onto their tables by the growth factor.
    let beyond = tasks::expand_half(&[0; 16], 4, 4, 2).frame;
    assert_eq!(beyond.row(half(3, 2), &c), 16 + 3);
    assert_eq!(beyond.row(at(7, 6), &c), 15);
    // A half cell sits at the centre of the 2 x 2 full cells it covers.
    assert_eq!(half(1, 2).map(Cell::pos), Some((2.5, 4.5)));
    assert_eq!(at(1, 2).map(Cell::pos), Some((1.0, 2.0)));
}

#[test]
fn rope_follows_the_papers_conventions() {
    let d = 16;
    let rope = Rope::new(d, 10_000.0);
    let mut rng = Rng::new(1);
    let x: Vec<f32> = (0..d).map(|_| rng.next_f64() as f32 - 0.5).collect();

    // The class slot rotates to zero.
    assert!(rotate(&x, None, &rope).iter().all(|&v| v == 0.0));

    // Pairs are adjacent dims: a vector living in dims (2, 3) stays there, with its norm.
    let mut e = vec![0.0; d];
    e[2] = 1.0;
    let r = rotate(&e, Some((3.0, 5.0)), &rope);
    assert!(r.iter().enumerate().all(|(i, &v)| i == 2 || i == 3 || v.abs() < 1e-7), "{r:?}");
    assert!((r[2] * r[2] + r[3] * r[3] - 1.0).abs() < 1e-5);
    // ... and the first half turns with the row, the second with the column.
    assert_eq!(rotate(&e, Some((3.0, 5.0)), &rope), rotate(&e, Some((3.0, 0.0)), &rope));
    let mut f = vec![0.0; d];
    f[d / 2] = 1.0;
    assert_eq!(rotate(&f, Some((3.0, 5.0)), &rope), rotate(&f, Some((0.0, 5.0)), &rope));
    assert_ne!(rotate(&f, Some((3.0, 5.0)), &rope), rotate(&f, Some((3.0, 4.0)), &rope));

    // q.k depends only on the position offset.
    let y: Vec<f32> = (0..d).map(|_| rng.next_f64() as f32 - 0.5).collect();
    let at = |p: (f32, f32), q: (f32, f32)| dot(&rotate(&x, Some(p), &rope), &rotate(&y, Some(q), &rope));
    let base = at((1.0, 2.0), (4.0, 7.0));
    for shift in [(1.0, 1.0), (3.0, 0.0), (0.0, 5.0), (6.0, 2.0)] {
        let moved = at((1.0 + shift.0, 2.0 + shift.1), (4.0 + shift.0, 7.0 + shift.1));
        assert!((base - moved).abs() < 1e-4, "shift {shift:?}: {base} vs {moved}");
    }
    assert!((base - at((1.0, 2.0), (5.0, 7.0))).abs() > 1e-4, "a different offset gives a different score");
}
