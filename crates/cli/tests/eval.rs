//! Evaluation: the Fréchet distance against closed forms, the nearest-neighbour check, the
//! classifier (training, its file), and the whole pipeline and CLI on random test checkpoints.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use arpg::checkpoint::{CheckpointError, DType};
use arpg::config::Arch;
use arpg::image::Image;
use arpg::rng::Rng;
use arpg::sampling::SampleOptions;
use arpg_tools::data::{self, Dataset, Split};
use arpg_tools::eval::frechet::{Stats, frechet_distance, sqrt_psd, symmetric_eigen};
use arpg_tools::eval::nearest::{COPY_RMSE, copies, median, nearest_distances, shrink};
use arpg_tools::eval::{
    ClassifierConfig, ClassifierError, ClassifierMeta, ClassifierTraining, Reference, SIDE, class_mix,
    format, train_classifier,
};
use burn::tensor::Device;
use flate2::Compression;
use flate2::write::GzEncoder;

fn gaussian(rng: &mut Rng) -> f64 {
    let (u, v) = (rng.next_f64().max(1e-12), rng.next_f64());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// `n` rows of `dim` correlated features: `x A + shift`.
fn features(n: usize, dim: usize, seed: u64, shift: f32) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let a: Vec<f64> = (0..dim * dim).map(|_| gaussian(&mut rng) / dim as f64).collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let x: Vec<f64> = (0..dim).map(|_| gaussian(&mut rng)).collect();
        for j in 0..dim {
            out.push((0..dim).map(|k| x[k] * a[k * dim + j]).sum::<f64>() as f32 + shift);
        }
    }
    out
}

fn stats(mean: Vec<f64>, cov: Vec<f64>) -> Stats {
    Stats { n: 100, dim: mean.len(), mean, cov }
}

fn diag(values: &[f64]) -> Vec<f64> {
    let n = values.len();
    (0..n * n).map(|i| if i % (n + 1) == 0 { values[i / n] } else { 0.0 }).collect()
}

/// `q diag(values) q^T` for an orthogonal `q` (row-major, columns = basis vectors).
fn rotate(q: &[f64], values: &[f64]) -> Vec<f64> {
    let n = values.len();
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = (0..n).map(|k| q[i * n + k] * values[k] * q[j * n + k]).sum();
        }
    }
    out
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn covariance_of_a_small_set_by_hand() {
    // Rows (1, 2), (3, 6), (5, 4): mean (3, 4); unbiased covariance [[4, 2], [2, 4]].
    let s = Stats::from_features(&[1.0, 2.0, 3.0, 6.0, 5.0, 4.0], 2).unwrap();
    assert_eq!((s.n, s.dim), (3, 2));
    assert_eq!(s.mean, vec![3.0, 4.0]);
    assert_eq!(s.cov, vec![4.0, 2.0, 2.0, 4.0]);
    assert!(Stats::from_features(&[1.0, 2.0], 2).is_none());
}

#[test]
fn jacobi_diagonalises_a_symmetric_matrix() {
    let n = 12;
    let f = features(40, n, 1, 0.0);
    let m = Stats::from_features(&f, n).unwrap().cov;
    let (values, v) = symmetric_eigen(&m, n);
    let back = rotate(&v, &values);
    let err = m.iter().zip(&back).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(err < 1e-12, "reconstruction error {err}");
    for i in 0..n {
        for j in 0..n {
            let dot: f64 = (0..n).map(|k| v[k * n + i] * v[k * n + j]).sum();
            assert!((dot - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12, "V is not orthonormal");
        }
    }
    let root = sqrt_psd(&m, n);
    let sq: Vec<f64> =
        (0..n * n).map(|i| (0..n).map(|k| root[(i / n) * n + k] * root[k * n + i % n]).sum()).collect();
    assert!(m.iter().zip(&sq).all(|(a, b)| (a - b).abs() < 1e-10), "sqrt(M)^2 != M");
}

#[test]
fn frechet_distance_of_a_set_to_itself_is_zero() {
    let f = features(300, 16, 2, 0.5);
    let s = Stats::from_features(&f, 16).unwrap();
    let fd = frechet_distance(&s, &s);
    assert!(fd.abs() < 1e-8, "{fd}");
}

#[test]
fn frechet_distance_matches_the_closed_form_for_diagonal_covariances() {
    // FD = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2 when the covariances commute.
    let (a, b) = ([4.0, 1.0, 0.25, 9.0, 2.0], [1.0, 1.0, 1.0, 4.0, 0.5]);
    let (m1, m2) = (vec![0.0, 1.0, 2.0, 3.0, 4.0], vec![1.0, 1.0, 0.0, 3.0, 5.0]);
    let expected: f64 = m1.iter().zip(&m2).map(|(x, y): (&f64, &f64)| (x - y).powi(2)).sum::<f64>()
        + a.iter().zip(&b).map(|(x, y): (&f64, &f64)| (x.sqrt() - y.sqrt()).powi(2)).sum::<f64>();
    let fd = frechet_distance(&stats(m1.clone(), diag(&a)), &stats(m2.clone(), diag(&b)));
    assert!(close(fd, expected, 1e-10), "{fd} vs {expected}");

    // The same covariances in a rotated basis (no longer diagonal): the same distance.
    let g = Stats::from_features(&features(50, 5, 3, 0.0), 5).unwrap();
    let (_, q) = symmetric_eigen(&g.cov, 5);
    let fd = frechet_distance(&stats(m1, rotate(&q, &a)), &stats(m2, rotate(&q, &b)));
    assert!(close(fd, expected, 1e-9), "rotated: {fd} vs {expected}");

    // One dimension: (m1 - m2)^2 + (s1 - s2)^2.
    let fd = frechet_distance(&stats(vec![1.0], vec![9.0]), &stats(vec![-1.0], vec![1.0]));
    assert!(close(fd, 4.0 + 4.0, 1e-12), "{fd}");
}

#[test]
fn frechet_distance_is_symmetric_and_sees_a_shift() {
    let a = Stats::from_features(&features(200, 10, 4, 0.0), 10).unwrap();
    let b = Stats::from_features(&features(200, 10, 5, 0.0), 10).unwrap();
    let (ab, ba) = (frechet_distance(&a, &b), frechet_distance(&b, &a));
    assert!(ab > 1e-3 && close(ab, ba, 1e-9), "{ab} vs {ba}");
    // Moving every mean by 0.5 adds 10 * 0.25 to a distance from a set to itself.
    let shifted = Stats { mean: a.mean.iter().map(|m| m + 0.5).collect(), ..a.clone() };
    assert!(close(frechet_distance(&a, &shifted), 2.5, 1e-9));
}

#[test]
fn nearest_neighbours_find_copies() {
    let mut rng = Rng::new(9);
    let pool: Vec<u8> = (0..50 * 16).map(|_| rng.below(256) as u8).collect();
    let mut queries = pool[16 * 7..16 * 9].to_vec(); // copies of images 7 and 8
    queries[20] = queries[20].wrapping_add(51); // image 8 with one pixel off by 51
    let d = nearest_distances(&queries, &pool, 16);
    assert_eq!(d[0], 0.0);
    // Per-value RMSE: one value of 16 off by 51.
    assert!((d[1] - 51.0 / 255.0 / 4.0).abs() < 1e-12, "{}", d[1]);
    assert_eq!(copies(&[0.0, COPY_RMSE - 1e-6, COPY_RMSE, 0.3]), 0.5);
    assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
}

#[test]
fn shrinking_averages_each_block_per_channel_and_rounds() {
    // One 4x4 RGB image: the top-left 2x2 block holds red 10, 11, 12, 12 (mean 11.25 -> 11) and
    // blue 1, 2, 2, 2 (mean 1.75 -> 2); everything else is 255.
    let mut img = Image::filled(4, 4, 3, 255);
    for (i, (r, b)) in [(10, 1), (11, 2), (12, 2), (12, 2)].into_iter().enumerate() {
        let p = ((i / 2) * 4 + i % 2) * 3;
        img.pixels[p] = r;
        img.pixels[p + 2] = b;
    }
    let small = shrink(&img.pixels, 4, 3, 2);
    assert_eq!(small.len(), 12);
    assert_eq!(&small[..3], &[11, 255, 2]);
    assert!(small[3..].iter().all(|&v| v == 255));
    assert_eq!(shrink(&img.pixels, 4, 3, 1), img.pixels);
}

#[test]
fn generated_frames_are_cropped_back_to_the_classifiers_side() {
    let reference = grey_reference();
    let mut img = Image::new(32, 32, 1);
    img.set(2, 2, 200);
    img.set(29, 29, 100);
    img.set(1, 1, 50);
    let c = reference.to_frame(&img);
    assert_eq!((c.width, c.height), (SIDE, SIDE));
    assert_eq!((c.get(0, 0)[0], c.get(27, 27)[0]), (200, 100));
    assert!(!c.pixels.contains(&50));
    let small = reference.to_frame(&Image::filled(16, 16, 1, 9));
    assert_eq!(
        (small.get(6, 6)[0], small.get(5, 5)[0], small.get(21, 21)[0], small.get(22, 22)[0]),
        (9, 0, 9, 0)
    );
}

/// `n` 28x28 images of three shapes at random places (a bar across, a bar down, a square).
fn shapes(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let mut pixels = vec![0u8; n * 784];
    let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
    for (img, &label) in pixels.chunks_exact_mut(784).zip(&labels) {
        let (a, b) = (rng.below(20), rng.below(20));
        for y in 0..28 {
            for x in 0..28 {
                let on = match label {
                    0 => (a..a + 6).contains(&y),
                    1 => (a..a + 6).contains(&x),
                    _ => (a..a + 8).contains(&y) && (b..b + 8).contains(&x),
                };
                img[y * 28 + x] = if on { 220 } else { 15 + rng.below(20) as u8 };
            }
        }
    }
    Dataset { width: 28, height: 28, channels: 1, pixels, labels }
}

fn small() -> ClassifierConfig {
    ClassifierConfig { conv1: 4, conv2: 8, hidden: 16, ..ClassifierConfig::default() }
}

/// A random small classifier over 28x28 shapes; the training shapes are also the pool.
fn grey_reference() -> Reference {
    let classifier = small().init_seeded(1, &Device::flex());
    Reference::new(classifier, shapes(120, 5), shapes(60, 6), shapes(120, 5), None).unwrap()
}

#[test]
fn training_is_seeded_and_learns_shapes() {
    let data = shapes(240, 1);
    let opts =
        ClassifierTraining { epochs: 4, batch: 16, lr: 3e-3, seed: 5, ..ClassifierTraining::default() };
    let device = Device::flex();
    let (a, _) = train_classifier(&small(), &data, &opts, &device, &mut |_| {}).unwrap();
    let (b, _) = train_classifier(&small(), &data, &opts, &device, &mut |_| {}).unwrap();
    let ta = arpg::weights::export(&a, "");
    assert_eq!(ta, arpg::weights::export(&b, ""), "same seed, different weights");
    let held_out = shapes(90, 2);
    let acc = a.accuracy(&held_out.pixels, &held_out.labels);
    assert!(acc > 0.8, "accuracy {acc} on three shapes");
    let bad = ClassifierTraining { epochs: 0, ..opts };
    assert!(matches!(
        train_classifier(&small(), &data, &bad, &device, &mut |_| {}),
        Err(ClassifierError::Options(_))
    ));
}

#[test]
fn the_classifier_beats_chance_on_a_slice_of_fashion_mnist() {
    let dir = Path::new(data::DEFAULT_DIR);
    if !dir.join(Split::Train.files().0).exists() {
        eprintln!("skipped: {} is not installed", data::PACKAGE);
        return;
    }
    let train = data::load(dir, Split::Train).unwrap().take(1500);
    let test = data::load(dir, Split::Test).unwrap().take(500);
    let opts =
        ClassifierTraining { epochs: 2, batch: 32, lr: 2e-3, seed: 1, ..ClassifierTraining::default() };
    let config = ClassifierConfig { conv1: 8, conv2: 16, hidden: 64, ..ClassifierConfig::default() };
    let (c, _) = train_classifier(&config, &train, &opts, &Device::flex(), &mut |_| {}).unwrap();
    let acc = c.accuracy(&test.pixels, &test.labels);
    assert!(acc > 0.55, "test accuracy {acc} (chance is 0.1)");
}

#[test]
fn the_classifier_file_round_trips_and_rejects_damage() {
    let device = Device::flex();
    let c = small().init_seeded(3, &device);
    let meta = ClassifierMeta { test_accuracy: Some(0.5), seed: 3, epochs: 2, train_images: 100 };
    let data = shapes(30, 4);
    let before = c.score(&data.pixels);

    let bytes = format::to_bytes(&c, &meta, DType::F32, 0).unwrap();
    let (back, m) = format::from_bytes(&bytes, &device).unwrap();
    assert_eq!(m, meta);
    assert_eq!(back.config, small());
    assert_eq!(back.score(&data.pixels), before, "f32 round trip changed the network");

    let q = format::to_bytes(&c, &ClassifierMeta { test_accuracy: None, ..meta.clone() }, DType::Int8, 32)
        .unwrap();
    assert!(q.len() < bytes.len() / 3);
    let (qc, qm) = format::from_bytes(&q, &device).unwrap();
    assert_eq!(qm.test_accuracy, None);
    let qs = qc.score(&data.pixels);
    let max_diff = qs.features.iter().zip(&before.features).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    let scale = before.features.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(max_diff < 0.05 * scale.max(1e-3), "int8 features off by {max_diff} (scale {scale})");

    // The container's error, if that is what loading `b` failed with.
    let load = |b: &[u8]| match format::from_bytes(b, &device) {
        Err(ClassifierError::File(e)) => Some(e),
        _ => None,
    };
    let file = Some;
    let mut flipped = bytes.clone();
    flipped[60] ^= 1;
    assert_eq!(load(&flipped), file(CheckpointError::BadChecksum { kind: "classifier file" }));
    assert_eq!(
        load(&bytes[..bytes.len() - 1]),
        file(CheckpointError::BadChecksum { kind: "classifier file" })
    );
    assert!(matches!(load(&bytes[..40]), Some(CheckpointError::TooShort { .. })));
    assert_eq!(
        load(b"ARPGCKPT0000"),
        file(CheckpointError::TooShort { kind: "classifier file", len: 12, min: 99 })
    );
    let mut other = bytes.clone();
    other[..8].copy_from_slice(b"ARPGCKPT");
    assert_eq!(load(&other), file(CheckpointError::BadMagic { kind: "classifier file" }));
    let mut v3 = bytes.clone();
    v3[8] = 3;
    assert_eq!(
        load(&v3),
        file(CheckpointError::UnsupportedVersion { kind: "classifier file", found: 3, reads: 2 })
    );

    let mut nan = c.clone();
    nan.head.weight = burn::module::Param::from_tensor(nan.head.weight.val().mul_scalar(f32::NAN));
    assert!(
        matches!(
            format::to_bytes(&nan, &meta, DType::F32, 0),
            Err(ClassifierError::File(CheckpointError::NonFinite { .. }))
        ),
        "a NaN weight must be refused on write, not stored as 0"
    );
}

#[test]
fn a_colour_classifier_reads_rgb_images_of_its_side_and_keeps_them_in_its_file() {
    let device = Device::flex();
    let config = ClassifierConfig { channels: 3, side: 8, ..small() };
    let c = config.init_seeded(5, &device);
    let meta = ClassifierMeta { test_accuracy: None, seed: 5, epochs: 0, train_images: 0 };
    let (back, _) =
        format::from_bytes(&format::to_bytes(&c, &meta, DType::F32, 0).unwrap(), &device).unwrap();
    assert_eq!(back.config, config);
    // Two 8x8 RGB images: the scores see the channels (one image red, one blue).
    let red: Vec<u8> = (0..64).flat_map(|_| [255, 0, 0]).collect();
    let blue: Vec<u8> = (0..64).flat_map(|_| [0, 0, 255]).collect();
    let scores = back.score(&[red, blue].concat());
    assert_eq!((scores.labels.len(), scores.features.len()), (2, 2 * config.hidden));
    assert_ne!(scores.features[..config.hidden], scores.features[config.hidden..]);
    assert!(ClassifierConfig { channels: 2, ..config.clone() }.validate().is_err());
    assert!(ClassifierConfig { side: 30, ..config }.validate().is_err());
}

#[test]
fn the_shipped_classifier_file_loads_with_its_recorded_accuracy() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/classifier.bin");
    let (c, meta) = format::from_bytes(&std::fs::read(path).unwrap(), &Device::flex()).unwrap();
    assert_eq!(c.config, ClassifierConfig::default());
    let acc = meta.test_accuracy.expect("measured when saved");
    assert!((0.9..0.95).contains(&acc), "recorded test accuracy {acc}");
    assert_eq!((meta.seed, meta.epochs, meta.train_images), (0, 3, 60_000));
    // Re-encoded, not retrained: the weights still score exactly what was recorded.
    let test = data::load(std::path::Path::new(data::DEFAULT_DIR), Split::Test).unwrap();
    assert_eq!(c.accuracy(&test.pixels, &test.labels) as f32, acc);
}

#[test]
fn the_shipped_emoji_classifier_scores_its_recorded_accuracy_on_the_test_emoji() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/classifier-emoji-64.bin");
    let (c, meta) = format::from_bytes(&std::fs::read(path).unwrap(), &Device::flex()).unwrap();
    assert_eq!((c.config.channels, c.config.side, c.config.n_classes), (3, 64, 12));
    let acc = meta.test_accuracy.expect("measured when saved");
    let Some(dir) = arpg_tools::emoji::default_dir().filter(|d| d.is_dir()) else {
        println!("note: no $HOME/.cache/arpg/emoji (run `make emoji-data`): the accuracy is not re-measured");
        return;
    };
    let test = data::Source::Emoji.split(&dir, Split::Test, 64).unwrap();
    assert_eq!(c.accuracy(&test.pixels, &test.labels) as f32, acc);
}

#[test]
fn the_pipeline_runs_end_to_end_on_a_random_checkpoint() {
    let engine = common::engine(Arch::Arpg); // 16x16 images, 4x4 tokens, 3 classes
    let reference = grey_reference();
    assert!((0.0..=1.0).contains(&reference.classifier_accuracy));

    let real = reference.real(20, 0).unwrap();
    assert_eq!(real.n, 20);
    assert!(real.fd_floor.is_finite() && real.fd_floor >= 0.0);
    assert!(real.nn_median.is_finite() && real.nn_median > 0.0);
    assert!((0.0..=1.0).contains(&real.copies));

    let rr = arpg_tools::eval::evaluate_reconstruction(&engine, &reference, 10).unwrap();
    assert_eq!(rr.n, 10);
    assert!((0.0..=1.0).contains(&rr.accuracy) && (0.0..=1.0).contains(&rr.original_accuracy));
    // An untrained tokenizer cannot give the images back exactly.
    assert!(rr.fd.is_finite() && rr.mse > 0.0 && rr.mse <= 1.0, "{rr:?}");

    let opts = SampleOptions { steps: 2, seed: 3, ..SampleOptions::default() };
    let (r, samples) = arpg_tools::eval::evaluate_generation(&engine, &reference, 12, &opts).unwrap();
    assert_eq!((r.n, r.steps, samples.images.len(), r.class_accuracy.len()), (12, 2, 12, 3));
    assert!(samples.images.iter().all(|im| (im.width, im.height) == (SIDE, SIDE)));
    assert!((0.0..=1.0).contains(&r.accuracy) && r.class_accuracy.iter().all(|a| (0.0..=1.0).contains(a)));
    assert!(r.fd.is_finite() && r.fd >= 0.0, "{}", r.fd);
    assert!(r.nn_min.is_finite() && r.nn_min <= r.nn_median);
    assert!((0.0..=1.0).contains(&r.copies));
    let sheet = samples.sheet(3, 4);
    assert_eq!((sheet.width, sheet.height), (4 * 28 + 3 * 2, 3 * 28 + 2 * 2));

    let (ir, isheet) = arpg_tools::eval::evaluate_inpainting(&engine, &reference, 4, &opts, 2).unwrap();
    assert_eq!((ir.n, ir.steps, ir.violations), (4, 2, 0));
    assert!(ir.kept_pixels >= 4 * 28 * 12, "{}", ir.kept_pixels);
    assert!((0.0..=1.0).contains(&ir.accuracy) && (0.0..=1.0).contains(&ir.masked_accuracy));
    assert_eq!((isheet.width, isheet.height), (3 * 28 + 4, 2 * 28 + 2));

    let sheets = arpg_tools::eval::task_sheets(&engine, &reference, &opts).unwrap();
    assert!(sheets.outpaint.height >= 3 * 28 && sheets.outpaint.width > 4 * 28);
    assert!(sheets.expand.width >= 28 + 2 * 56);

    // A model with more classes than the classifier is refused.
    let few = ClassifierConfig { n_classes: 2, ..small() }.init_seeded(1, &Device::flex());
    let narrow = Reference::new(few, shapes(20, 7), shapes(20, 8), shapes(20, 7), None).unwrap();
    assert!(arpg_tools::eval::evaluate_generation(&engine, &narrow, 4, &opts).is_err());
    assert!(
        arpg_tools::eval::evaluate_expansion(&engine, &reference, 2, &opts, 1).is_err(),
        "no half-size images"
    );
}

#[test]
fn the_class_mix_keeps_near_the_counts_share_at_every_prefix_and_is_round_robin_when_equal() {
    assert_eq!(class_mix(&[5, 5, 5], 7), vec![0, 1, 2, 0, 1, 2, 0]);
    assert_eq!(class_mix(&[0, 0], 3), vec![0, 1, 0], "no counts: equal");
    let counts = [27, 119, 60, 0, 45];
    let total: usize = counts.iter().sum();
    let mix = class_mix(&counts, 2 * total);
    for m in 1..=mix.len() {
        for (class, &c) in counts.iter().enumerate() {
            let got = mix[..m].iter().filter(|&&k| k == class).count() as f64;
            let share = (m * c) as f64 / total as f64;
            assert!((got - share).abs() < 2.0, "class {class} after {m}: {got} against {share}");
            if m % total == 0 {
                assert_eq!(got, share, "exact after whole rounds");
            }
        }
    }
}

#[test]
fn samples_are_drawn_in_the_class_mix_of_the_test_split() {
    let engine = common::engine(Arch::Arpg); // 3 classes
    // A test split of 20, 13 and 7 images of classes 0, 1 and 2.
    let all = shapes(60, 6);
    let keep: Vec<usize> = (0..60).filter(|&i| [60, 40, 21][all.labels[i] as usize] > i).collect();
    let images: Vec<Image> = keep.iter().map(|&i| all.to_image(i)).collect();
    let test = Dataset::from_images(&images, keep.iter().map(|&i| all.labels[i]).collect());
    assert_eq!(test.class_counts(3), vec![20, 13, 7]);
    let classifier = small().init_seeded(1, &Device::flex());
    let reference = Reference::new(classifier, shapes(30, 5), test, shapes(30, 5), None).unwrap();

    let opts = SampleOptions { steps: 2, seed: 3, ..SampleOptions::default() };
    let (_, samples) = arpg_tools::eval::evaluate_generation(&engine, &reference, 40, &opts).unwrap();
    let drawn: Vec<usize> = (0..3).map(|c| samples.classes.iter().filter(|&&k| k == c).count()).collect();
    assert_eq!(drawn, vec![20, 13, 7]);
    // The sheet's third row starts with the first sample asked of class 2.
    let sheet = samples.sheet(3, 2);
    let first = samples.classes.iter().position(|&c| c == 2).unwrap();
    assert_eq!(sheet.crop(0, 2 * (SIDE + 2), SIDE, SIDE).pixels, samples.images[first].pixels);
}

/// `n` RGB pictures `side` pixels square: a white background with a block of the class's colour.
fn colour_shapes(n: usize, side: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let images: Vec<Image> = (0..n)
        .map(|i| {
            let mut img = Image::filled(side, side, 3, 255);
            let (a, b) = (rng.below(side / 2), rng.below(side / 2));
            for (p, v) in img.pixels.chunks_exact_mut(3).enumerate() {
                if (a..a + side / 2).contains(&(p / side)) && (b..b + side / 2).contains(&(p % side)) {
                    v.copy_from_slice(&[[200, 30, 30], [30, 200, 30], [30, 30, 200]][i % 3]);
                }
            }
            img
        })
        .collect();
    Dataset::from_images(&images, (0..n).map(|i| (i % 3) as u8).collect())
}

#[test]
fn colour_data_is_scored_in_rgb_with_memorisation_at_half_the_side_and_expansion_against_bicubic() {
    let engine = common::multi_scale_engine(); // 16x16 RGB, 4x4 tokens, a 2x2 half grid
    let config = ClassifierConfig { channels: 3, side: 16, ..small() };
    let classifier = config.init_seeded(1, &Device::flex());
    let (train, test) = (colour_shapes(60, 16, 1), colour_shapes(20, 16, 2));
    // The half-size pictures: the same as box-filtered down (what the pool is compared at).
    let half =
        |d: &Dataset| Dataset { width: 8, height: 8, pixels: shrink(&d.pixels, 16, 3, 2), ..d.clone() };
    let reference =
        Reference::new(classifier, train.clone(), test.clone(), half(&train), Some(half(&test))).unwrap();
    // A training picture is its own nearest neighbour at the pool's side.
    let nn = reference.nearest(train.image(3));
    assert_eq!(nn, vec![0.0]);
    let real = reference.real(20, 0).unwrap();
    assert_eq!(real.nn_probes, 20);

    let opts = SampleOptions { steps: 2, seed: 3, ..SampleOptions::default() };
    let (r, samples) = arpg_tools::eval::evaluate_generation(&engine, &reference, 6, &opts).unwrap();
    assert!(samples.images.iter().all(|im| (im.width, im.height, im.channels) == (16, 16, 3)));
    assert!((0.0..=1.0).contains(&r.copies));
    let (ir, _) = arpg_tools::eval::evaluate_inpainting(&engine, &reference, 4, &opts, 1).unwrap();
    assert_eq!(ir.violations, 0);

    let (er, sheet) = arpg_tools::eval::evaluate_expansion(&engine, &reference, 20, &opts, 20).unwrap();
    assert_eq!((er.n, er.steps), (20, 2));
    assert!(er.fd.is_finite() && er.bicubic_fd.is_finite());
    // Input, bicubic, ours, real: four 16x16 cells a row, one row a picture.
    assert_eq!((sheet.width, sheet.height, sheet.channels), (4 * 16 + 3 * 2, 20 * 18 - 2, 3));
    // The RMSEs are those of the sheet's bicubic and model columns against its real column.
    let cell = |r: usize, c: usize| -> Vec<f64> {
        let (x0, y0) = (c * 18, r * 18);
        let at = |p: usize| ((y0 + p / 48) * sheet.width + x0) * 3 + p % 48;
        (0..16 * 48).map(|p| sheet.pixels[at(p)] as f64 / 255.0).collect()
    };
    let rmse = |c: usize| -> f64 {
        let each = |r: usize| cell(r, c).iter().zip(cell(r, 3)).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
        (0..20).map(|r| (each(r) / 768.0).sqrt()).sum::<f64>() / 20.0
    };
    assert!((er.bicubic_rmse - rmse(1)).abs() < 1e-9, "{} vs {}", er.bicubic_rmse, rmse(1));
    assert!((er.rmse - rmse(2)).abs() < 1e-9, "{} vs {}", er.rmse, rmse(2));
    assert!(er.rmse > 0.0 && er.rmse != er.bicubic_rmse);
    // A subset of 5: every fourth picture, expanded as in the whole run (sheet rows 0 and 4).
    let (some, some_sheet) = arpg_tools::eval::evaluate_expansion(&engine, &reference, 5, &opts, 2).unwrap();
    assert_eq!(some.n, 5);
    let row = |s: &Image, r: usize| s.pixels[r * 18 * s.width * 3..(r * 18 + 16) * s.width * 3].to_vec();
    assert_eq!(row(&some_sheet, 0), row(&sheet, 0));
    assert_eq!(row(&some_sheet, 1), row(&sheet, 4));
    assert_ne!(row(&sheet, 1), row(&sheet, 4), "the rows compared must differ");
    for n in [0, 1, 21] {
        assert!(arpg_tools::eval::evaluate_expansion(&engine, &reference, n, &opts, 2).is_err(), "n = {n}");
    }
}

#[test]
fn bicubic_upscaling_keeps_a_flat_picture_flat_and_its_size() {
    let flat = Image::filled(8, 8, 3, 77);
    let up = arpg_tools::eval::upscale(&flat, 16);
    assert_eq!((up.width, up.height, up.channels), (16, 16, 3));
    assert!(up.pixels.iter().all(|&v| v == 77));
    let grey = arpg_tools::eval::upscale(&Image::filled(4, 4, 1, 9), 8);
    assert_eq!((grey.width, grey.channels, grey.pixels[0]), (8, 1, 9));
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Shapes as Fashion-MNIST IDX files (both splits) in `dir`.
fn write_fake_fashion_mnist(dir: &Path) {
    for (split, n, seed) in [(Split::Train, 90, 1), (Split::Test, 45, 2)] {
        let d = shapes(n, seed);
        let mut images = vec![0, 0, 8, 3];
        [n as u32, 28, 28].iter().for_each(|v| images.extend_from_slice(&v.to_be_bytes()));
        images.extend_from_slice(&d.pixels);
        let mut labels = vec![0, 0, 8, 1];
        labels.extend_from_slice(&(n as u32).to_be_bytes());
        labels.extend_from_slice(&d.labels);
        let (fi, fl) = split.files();
        std::fs::write(dir.join(fi), gz(&images)).unwrap();
        std::fs::write(dir.join(fl), gz(&labels)).unwrap();
    }
}

fn arpg(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_arpg")).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "arpg {}: {err}", args.join(" "));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("arpg-eval-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_cli_trains_a_classifier_and_evaluates_checkpoints() {
    let dir = scratch("cli");
    write_fake_fashion_mnist(&dir);
    let d = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let out = arpg(&[
        "train-classifier",
        "--out",
        &d("cls.bin"),
        "--epochs",
        "1",
        "--batch",
        "30",
        "--data-dir",
        &d(""),
    ]);
    assert!(out.contains("test accuracy"), "{out}");
    let bytes = std::fs::read(d("cls.bin")).unwrap();
    let (_, meta) = format::from_bytes(&bytes, &Device::flex()).unwrap();
    assert_eq!((meta.epochs, meta.train_images), (1, 90));
    assert!(meta.test_accuracy.is_some_and(|a| (0.0..=1.0).contains(&a)));

    for arch in ["arpg", "raster", "maskgit"] {
        arpg(&[
            "init",
            "--out",
            &d(&format!("{arch}.arpg")),
            "--arch",
            arch,
            "--preset",
            "test",
            "--seed",
            "2",
        ]);
    }
    let (cls, data_dir, sheets) = (d("cls.bin"), d(""), d("sheets"));
    let eval = |ckpt: &str| -> Vec<String> {
        [
            "eval",
            "--checkpoint",
            ckpt,
            "--steps",
            "2,4",
            "--n",
            "10",
            "--inpaint-n",
            "3",
            "--task-steps",
            "2",
            "--classifier",
            &cls,
            "--data-dir",
            &data_dir,
            "--out-dir",
            &sheets,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let with = |base: Vec<String>, more: &[&str]| -> Vec<String> {
        base.into_iter().chain(more.iter().map(|s| s.to_string())).collect()
    };
    let run = |args: Vec<String>| arpg(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (raster, maskgit) = (d("raster.arpg"), d("maskgit.arpg"));
    let json = run(with(eval(&d("arpg.arpg")), &["--baseline", &raster, "--baseline", &maskgit, "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let gens = v["generation"].as_array().unwrap();
    // arpg f32 and its in-memory int8 at 2 and 4 steps, raster (16 steps), maskgit (8 steps).
    let rows: Vec<(String, String, u64)> = gens
        .iter()
        .map(|g| {
            let r = &g["report"];
            (
                r["arch"].as_str().unwrap().into(),
                g["weights"].as_str().unwrap().into(),
                r["steps"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = |a: &str, w: &str, s: u64| (a.to_string(), w.to_string(), s);
    assert_eq!(
        rows,
        [
            want("arpg", "f32", 2),
            want("arpg", "f32", 4),
            want("arpg", "int8 (g64, in memory)", 2),
            want("arpg", "int8 (g64, in memory)", 4),
            want("raster", "f32", 16),
            want("maskgit", "f32", 8),
        ]
    );
    for g in gens {
        let acc = g["report"]["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc) && g["report"]["fd"].as_f64().unwrap() >= 0.0);
    }
    let inp = v["inpainting"].as_array().unwrap();
    assert_eq!(inp.len(), 2);
    assert!(inp.iter().all(|r| r["report"]["violations"] == 0 && r["report"]["n"] == 3));
    for f in [
        "outpaint.png",
        "expand.png",
        "inpaint-arpg-f32.png",
        "samples-arpg-f32-2steps.png",
        "samples-raster-f32-16steps.png",
    ] {
        let png = std::fs::read(dir.join("sheets").join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(Image::from_png(&png, 1).unwrap().width > 28);
    }

    // The markdown table: one row per configuration.
    let md = run(eval(&d("arpg.arpg")));
    assert!(md.contains("| model | file | weights | steps |"), "{md}");
    // 2 weights x 2 step counts, then 2 in-painting rows.
    assert_eq!(md.lines().filter(|l| l.starts_with("| arpg | arpg.arpg |")).count(), 6, "{md}");
    // More steps than an image has tokens: refused.
    let too_many = with(eval(&d("arpg.arpg")), &["--steps", "17"]);
    assert!(!Command::new(env!("CARGO_BIN_EXE_arpg")).args(&too_many).output().unwrap().status.success());
    // In-painting takes at most the 45 test images unless told: more, asked for, is refused
    // before any sampling.
    let ckpt = d("arpg.arpg");
    let untold = |more: &[&str]| -> Vec<String> {
        let base = ["eval", "--checkpoint", &ckpt, "--steps", "2", "--n", "50", "--task-steps", "2"];
        let data = ["--classifier", &cls, "--data-dir", &data_dir, "--out-dir", &sheets];
        base.iter().chain(&data).chain(more).map(|s| s.to_string()).collect()
    };
    let v: serde_json::Value = serde_json::from_str(&run(untold(&["--json"]))).unwrap();
    assert!(v["inpainting"].as_array().unwrap().iter().all(|r| r["report"]["n"] == 45), "{v}");
    let over =
        Command::new(env!("CARGO_BIN_EXE_arpg")).args(untold(&["--inpaint-n", "46"])).output().unwrap();
    let err = String::from_utf8_lossy(&over.stderr);
    assert!(!over.status.success() && err.contains("--inpaint-n must be in 1..=45"), "{err}");
    // An int8 file with its f32 source: both evaluated, and the quantization checked.
    arpg(&["quantize", &d("arpg.arpg"), &d("arpg-int8.arpg")]);
    let md = run(with(eval(&d("arpg-int8.arpg")), &["--f32", &d("arpg.arpg")]));
    assert!(md.contains("arpg-int8.arpg is exactly what `arpg quantize arpg.arpg"), "{md}");
    assert_eq!(md.lines().filter(|l| l.starts_with("| arpg | arpg.arpg | f32 |")).count(), 3, "{md}");
    let other = with(eval(&d("arpg-int8.arpg")), &["--f32", &raster]);
    assert!(!Command::new(env!("CARGO_BIN_EXE_arpg")).args(&other).output().unwrap().status.success());
    let md = run(eval(&d("arpg-int8.arpg")));
    assert!(md.contains("no f32 source was given"), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}
