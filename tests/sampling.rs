//! Sampling behaviour end to end: schedules, determinism, zero-shot tasks keeping what they must,
//! and checkpoints round-tripping through the engine.

mod common;

use arpg::checkpoint::{Checkpoint, CheckpointError, DType};
use arpg::config::Arch;
use arpg::decode::{Plan, StepEvent, StepWait, sample_arpg};
use arpg::engine::{Engine, Generator};
use arpg::error::Error;
use arpg::image::{Image, TokenMask};
use arpg::sampling::{Order, SampleOptions, Schedule};
use arpg::tasks::{self, Sides};
use common::*;
use pollster::block_on;

#[test]
fn schedules_cover_every_token_with_nonempty_steps() {
    for schedule in [Schedule::Arccos, Schedule::Cosine, Schedule::Linear] {
        for steps in [1, 8, 16, 64] {
            let sizes = schedule.step_sizes(64, steps);
            assert_eq!(sizes.len(), steps, "{schedule:?} {steps}");
            assert_eq!(sizes.iter().sum::<usize>(), 64, "{schedule:?} {steps}: {sizes:?}");
            assert!(sizes.iter().all(|&k| k >= 1), "{schedule:?} {steps}: {sizes:?}");
        }
    }
    for steps in [8, 16] {
        let sizes = Schedule::Arccos.step_sizes(64, steps);
        let half = steps / 2;
        let (early, late): (usize, usize) = (sizes[..half].iter().sum(), sizes[half..].iter().sum());
        assert!(early < late && sizes[0] < sizes[steps - 1], "arccos is few-then-many: {sizes:?}");
    }
}

fn opts(seed: u64) -> SampleOptions {
    SampleOptions { steps: 4, seed, ..SampleOptions::default() }
}

fn pngs(engine: &Engine, seed: u64) -> Vec<Vec<u8>> {
    let images = block_on(engine.generate(&[0, 2], &opts(seed), &mut |_| {})).unwrap();
    images.iter().map(Image::to_png).collect()
}

#[test]
fn the_same_seed_gives_identical_pngs() {
    for arch in [Arch::Arpg, Arch::Raster, Arch::MaskGit] {
        let e = engine(arch);
        let a = pngs(&e, 11);
        assert_eq!(a, pngs(&e, 11), "{arch:?}");
        assert_ne!(a, pngs(&e, 12), "{arch:?}: another seed, another image");
    }
}

/// A step hook can stop a job at a step boundary (the browser's Cancel): its answer to step 1
/// is `Err(Cancelled)`, and no step after it runs, in ARPG and both baselines.
#[test]
fn a_step_hook_stops_the_job_at_a_step_boundary() {
    for arch in [Arch::Arpg, Arch::Raster, Arch::MaskGit] {
        let e = engine(arch);
        let mut seen = vec![];
        let mut hook = |ev: &StepEvent| -> StepWait {
            seen.push(ev.step);
            let stop = ev.step == 1;
            Box::pin(async move { if stop { Err(Error::Cancelled) } else { Ok(()) } })
        };
        let out = block_on(e.generate(&[0], &opts(1), &mut hook));
        assert!(matches!(out, Err(Error::Cancelled)), "{arch:?}");
        assert_eq!(seen, [0, 1], "{arch:?}");
        assert_eq!(Error::Cancelled.to_string(), "cancelled");
        // A hook that always goes on runs every step, like a plain closure.
        let mut steps = 0;
        let mut go_on = |_: &StepEvent| -> StepWait {
            steps += 1;
            Box::pin(async { Ok(()) })
        };
        assert!(block_on(e.generate(&[0], &opts(1), &mut go_on)).is_ok(), "{arch:?}");
        assert!(steps >= 4, "{arch:?}: {steps} steps");
    }
}

fn arpg_model(e: &Engine) -> &arpg::model::Arpg {
    match &e.generator {
        Generator::Arpg(m) => m,
        _ => unreachable!(),
    }
}

#[test]
fn inpainting_keeps_every_unmasked_token() {
    let e = engine(Arch::Arpg);
    let m = arpg_model(&e);
    let source: Vec<u32> = (0..16).map(|i| (i * 5 % VOCAB) as u32).collect();
    let mut mask = TokenMask::full(4, 4);
    mask.cells.iter_mut().enumerate().for_each(|(i, c)| *c = i % 3 == 0);
    let plan = tasks::inpaint(&source, &mask);
    for order in [Order::Random, Order::Confidence] {
        let mut decoded = vec![];
        let o = SampleOptions { order, ..opts(3) };
        let out = block_on(sample_arpg(m, &[1, 2], &plan, &o, &mut |ev| decoded.push(ev.positions.clone())))
            .unwrap();
        assert_eq!(decoded.len(), 4, "{order:?}");
        let mut cells: Vec<usize> = decoded.concat();
        cells.sort();
        assert_eq!(cells, plan.phases[0], "{order:?}: each masked cell decoded once");
        for t in &out.tokens {
            for (i, (&kept, &got)) in source.iter().zip(t).enumerate() {
                if !mask.cells[i] {
                    assert_eq!(kept, got, "{order:?}: token {i} was outside the mask");
                }
            }
        }
    }
}

/// The confidence order decodes each image's own cells, every cell once, with the schedule's
/// step sizes, and the same seed gives the same tokens. It is not the random order: which cells
/// each image's steps take depends on the image (its class here), not on the seed alone.
#[test]
fn the_confidence_order_decodes_every_cell_once_per_image() {
    let e = engine(Arch::Arpg);
    let m = arpg_model(&e);
    let plan = Plan::full(4, 4);
    let run = |classes: &[usize], order: Order| {
        let o = SampleOptions { order, steps: 5, ..opts(7) };
        let mut steps: Vec<Vec<usize>> = vec![];
        let out =
            block_on(sample_arpg(m, classes, &plan, &o, &mut |ev| steps.push(ev.positions.clone()))).unwrap();
        (steps, out.tokens)
    };
    let (steps, tokens) = run(&[0, 1, 2], Order::Confidence);
    let sizes: Vec<usize> = steps.iter().map(Vec::len).collect();
    assert_eq!(sizes, Schedule::Cosine.step_sizes(16, 5));
    let mut cells = steps.concat();
    cells.sort();
    assert_eq!(cells, (0..16).collect::<Vec<_>>());
    assert_eq!((steps, tokens), run(&[0, 1, 2], Order::Confidence), "same seed, same result");
    let orders = |order| (0..CLASSES).map(|c| run(&[c], order).0).collect::<Vec<_>>();
    let (confident, random) = (orders(Order::Confidence), orders(Order::Random));
    assert!(confident.iter().any(|f| f != &confident[0]), "the order follows the class: {confident:?}");
    assert!(random.iter().all(|f| f == &random[0]), "the random order is the seed's alone: {random:?}");
}

#[test]
fn outpainting_keeps_the_source_tokens_at_their_offset() {
    let e = engine(Arch::Arpg);
    let m = arpg_model(&e);
    let source: Vec<u32> = (0..16).map(|i| (i * 7 % VOCAB) as u32).collect();
    let sides = Sides { left: 1, right: 2, top: 3, bottom: 0 };
    let plan = tasks::outpaint(&source, 4, 4, sides);
    assert_eq!((plan.grid_h, plan.grid_w), (7, 7));
    let out = block_on(sample_arpg(m, &[0], &plan, &opts(5), &mut |_| {})).unwrap();
    for r in 0..4 {
        for c in 0..4 {
            assert_eq!(out.tokens[0][(r + 3) * 7 + c + 1], source[r * 4 + c], "cell ({r}, {c})");
        }
    }
}

#[test]
fn expansion_prefills_the_coarse_cells() {
    let source: Vec<u32> = (0..16).map(|i| i as u32).collect();
    let plan = tasks::expand(Some(&source), 4, 4, 2);
    assert_eq!((plan.grid_h, plan.grid_w, plan.prefill.len(), plan.targets()), (8, 8, 16, 48));
    assert!(plan.prefill.iter().all(|&(p, code)| (p / 8) % 2 == 0
        && (p % 8) % 2 == 0
        && code as usize == (p / 16) * 4 + (p % 8) / 2));
    let scratch = tasks::expand(None, 4, 4, 2);
    assert_eq!(scratch.phases.iter().map(Vec::len).collect::<Vec<_>>(), vec![16, 48]);
}

#[test]
fn engine_inpaint_keeps_pixels_outside_masked_tokens() {
    let e = engine(Arch::Arpg);
    let mut image = Image::new(16, 16, 1);
    image.pixels.iter_mut().enumerate().for_each(|(i, p)| *p = (i * 37 % 251) as u8);
    let mut mask = Image::new(16, 16, 1);
    for y in 4..8 {
        for x in 8..12 {
            mask.pixels[y * 16 + x] = 255;
        }
    }
    let out = block_on(e.inpaint(&image, &mask, 2, &opts(1), &mut |_| {})).unwrap();
    assert_eq!((out.width, out.height), (16, 16));
    let changed = (0..256).filter(|&i| out.pixels[i] != image.pixels[i]).count();
    assert!(changed > 0, "the masked token was regenerated");
    for y in 0..16 {
        for x in 0..16 {
            if !((4..8).contains(&y) && (8..12).contains(&x)) {
                assert_eq!(out.pixels[y * 16 + x], image.pixels[y * 16 + x], "pixel ({x}, {y})");
            }
        }
    }
    let empty = Image::new(16, 16, 1);
    assert!(matches!(block_on(e.inpaint(&image, &empty, 0, &opts(1), &mut |_| {})), Err(Error::Input(_))));
}

#[test]
fn outpaint_and_expand_grow_the_canvas() {
    let e = engine(Arch::Arpg);
    let image = Image::new(16, 16, 1);
    let wide = block_on(e.outpaint(&image, Sides { right: 4, ..Sides::default() }, 0, &opts(2), &mut |_| {}))
        .unwrap();
    assert_eq!((wide.width, wide.height), (32, 16));
    let big = block_on(e.expand(Some(&image), 2, 0, &opts(2), &mut |_| {})).unwrap();
    assert_eq!((big.width, big.height), (32, 32));
    let scratch = block_on(e.expand(None, 2, 1, &opts(2), &mut |_| {})).unwrap();
    assert_eq!((scratch.width, scratch.height), (32, 32));
}

/// Logits of a fixed query batch, for comparing weights.
fn probe_logits(e: &Engine) -> Vec<f32> {
    let m = arpg_model(e);
    let device = device();
    let mut cache = m.new_cache();
    let ids = burn::tensor::Tensor::<2, burn::tensor::Int>::from_data(
        burn::tensor::TensorData::new(vec![m.config.class_id(1) as i64, 3, 9, 4], [1, 4]),
        &device,
    );
    let pos = [None, at(0, 0), at(1, 2), at(3, 3)];
    m.feed(ids, &slots(m, &pos), None, &mut cache);
    let q = [at(2, 1), at(0, 3)];
    to_vec(m.query(1, &slots(m, &q), None, &cache))
}

#[test]
fn checkpoints_round_trip_through_the_engine() {
    let e = engine(Arch::Arpg);
    let ckpt = e.to_checkpoint();
    let reference = probe_logits(&e);

    let f32_bytes = ckpt.to_bytes(DType::F32, 0).unwrap();
    let back = Engine::from_bytes(&f32_bytes, &device()).unwrap();
    assert_eq!(probe_logits(&back), reference, "f32 round trip is exact");
    assert_eq!(back.checksum.len(), 64);

    // int8 with groups of 64: each weight moves by at most max|w|/254 of its group (0.4% of the
    // group's range). Through the 4 layers of this seeded test model the largest logit change is
    // 11.8% of the logit range (printed below; 2.4% without the position table, whose random
    // Kaiming-sized vectors sharpen attention); we allow 20%. A broken quantizer (wrong scale,
    // wrong group) moves logits by about their whole range.
    let int8 = Engine::from_bytes(&ckpt.to_bytes(DType::Int8, 64).unwrap(), &device()).unwrap();
    let range = reference.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let diff = max_abs_diff(&probe_logits(&int8), &reference);
    assert!(diff < 0.2 * range, "int8 logits moved by {diff} (range {range})");
    eprintln!("int8 logits: max change {diff} of range {range}");
    assert!(diff > 0.0, "int8 is lossy: identical logits mean nothing was quantized");
}

#[test]
fn a_checkpoint_with_a_wrong_shape_is_a_typed_error() {
    let e = engine(Arch::Arpg);
    let mut ckpt: Checkpoint = e.to_checkpoint();
    let t = ckpt.tensors.iter_mut().find(|t| t.name == "model.head.weight").unwrap();
    t.shape = vec![t.shape[1], t.shape[0] / 2, 2];
    let bytes = ckpt.to_bytes(DType::F32, 0).unwrap();
    match Engine::from_bytes(&bytes, &device()) {
        Err(Error::Checkpoint(CheckpointError::ShapeMismatch { name, .. })) => {
            assert_eq!(name, "model.head.weight")
        }
        other => panic!("expected a shape mismatch, got {:?}", other.map(|_| ())),
    }
    let mut missing = e.to_checkpoint();
    missing.tensors.retain(|t| t.name != "tokenizer.codebook");
    assert!(matches!(
        Engine::from_bytes(&missing.to_bytes(DType::F32, 0).unwrap(), &device()),
        Err(Error::Checkpoint(CheckpointError::MissingTensor(_)))
    ));
    // And the plain generation path refuses a bad class.
    assert!(matches!(block_on(e.generate(&[CLASSES], &opts(0), &mut |_| {})), Err(Error::Options(_))));
}
