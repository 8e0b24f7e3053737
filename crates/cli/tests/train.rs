//! Training: a few steps lower the loss, a resumed run continues exactly, the data loader rejects
//! broken files, and the CLI trains, saves and resumes end to end.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use arpg::checkpoint::{Checkpoint, DType};
use arpg::config::{Arch, ModelConfig, VqConfig};
use arpg::rng::Rng;
use arpg::tokenizer::VqTokenizer;
use arpg_tools::data::{self, DataError, Dataset, Split};
use arpg_tools::train::{
    GeneratorTrainer, TokenSet, TokenizerTrainer, TrainError, TrainOptions, TrainState, Trainer,
};
use burn::tensor::Device;
use flate2::Compression;
use flate2::write::GzEncoder;

/// burn-flex keeps ONE global RNG: tests that train (dropout, init) must not interleave.
static BACKEND: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    BACKEND.lock().unwrap_or_else(|e| e.into_inner())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("arpg-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("class {i}")).collect()
}

/// `n` 16x16 images of three shapes at random places: a bar across, a bar down, a square.
fn shapes(n: usize) -> Dataset {
    let mut rng = Rng::new(7);
    let mut pixels = vec![0u8; n * 256];
    let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
    for (img, &label) in pixels.chunks_exact_mut(256).zip(&labels) {
        let (a, b) = (rng.below(10), rng.below(10));
        for y in 0..16 {
            for x in 0..16 {
                let on = match label {
                    0 => (a..a + 5).contains(&y),
                    1 => (a..a + 5).contains(&x),
                    _ => (a..a + 6).contains(&y) && (b..b + 6).contains(&x),
                };
                img[y * 16 + x] = if on { 230 } else { 10 };
            }
        }
    }
    Dataset { width: 16, height: 16, channels: 1, pixels, labels }
}

/// 4x4 codes: class `k` uses codes `5k` (even rows) and `5k + 1` (odd rows), so the class
/// alone brings the loss from ln 16 to ln 2 and the position takes it further.
fn token_set(n: usize) -> TokenSet {
    let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
    let tokens =
        labels.iter().flat_map(|&k| (0..16).map(move |p| (5 * k as usize + (p / 4) % 2) as u32)).collect();
    TokenSet { grid_h: 4, grid_w: 4, tokens, labels, half_tokens: vec![] }
}

/// `set` with the same pictures at half the size: 2x2 codes, class `k` uses code `5k + 2`.
fn with_half(set: TokenSet) -> TokenSet {
    let tokens = set.labels.iter().flat_map(|&k| [5 * k as u32 + 2; 4]).collect();
    let half = TokenSet { grid_h: 2, grid_w: 2, tokens, labels: set.labels.clone(), half_tokens: vec![] };
    set.with_half(half).unwrap()
}

fn quick(steps: u64, lr: f64) -> TrainOptions {
    TrainOptions { steps, batch: 12, lr, warmup: 3, seed: 11, ..TrainOptions::generator() }
}

fn mean(xs: &[f32]) -> f32 {
    xs.iter().sum::<f32>() / xs.len() as f32
}

fn generator(arch: Arch, dropout: f32, opts: TrainOptions) -> GeneratorTrainer {
    trainer(ModelConfig { dropout, ..ModelConfig::test(16, 3).with_arch(arch) }, opts)
}

fn trainer(config: ModelConfig, opts: TrainOptions) -> GeneratorTrainer {
    let device = Device::flex().autodiff();
    let tok = VqTokenizer::new(&VqConfig::test(), &Device::flex());
    GeneratorTrainer::new(&config, tok, opts, "synthetic", names(3), &device).unwrap()
}

#[test]
fn tokenizer_training_lowers_the_loss() {
    let _guard = serial();
    let data = shapes(48);
    let opts = TrainOptions { dead_code_steps: 5, ..quick(30, 3e-3) };
    let mut t =
        TokenizerTrainer::new(&VqConfig::test(), opts, "shapes", names(3), &Device::flex().autodiff())
            .unwrap();
    let stats: Vec<_> = (0..30).map(|_| t.step(&data).unwrap()).collect();
    let losses: Vec<f32> = stats.iter().map(|s| s.loss).collect();
    let (first, last) = (mean(&losses[..5]), mean(&losses[25..]));
    assert!(last < 0.75 * first, "tokenizer loss {first} -> {last}: {losses:?}");
    assert_eq!(t.step_count(), 30);
    let restarted: f64 =
        stats.iter().flat_map(|s| &s.extra).filter(|(k, _)| *k == "codes_restarted").map(|(_, v)| v).sum();
    assert!(restarted > 0.0, "16 codes, 5-step patience: some code must have been restarted");
    let ckpt = t.checkpoint();
    assert_eq!((ckpt.meta.steps, ckpt.meta.batch_size, ckpt.meta.dataset.as_str()), (30, 12, "shapes"));
    assert_eq!(ckpt.meta.final_loss, losses[29]);
}

#[test]
fn arpg_training_lowers_the_loss() {
    let _guard = serial();
    let data = token_set(48);
    let mut t = generator(Arch::Arpg, 0.0, quick(30, 1e-2));
    let losses: Vec<f32> = (0..30).map(|_| t.step(&data).unwrap().loss).collect();
    // The head starts at zero: the first loss is exactly ln(16).
    assert!((losses[0] - 16f32.ln()).abs() < 1e-4, "{}", losses[0]);
    let (first, last) = (mean(&losses[..5]), mean(&losses[25..]));
    assert!(last < 0.6 * first, "ARPG loss {first} -> {last}: {losses:?}");
}

#[test]
fn every_architecture_trains_through_the_one_loop() {
    let _guard = serial();
    let data = token_set(48);
    for arch in [Arch::ArpgNoSharedKv, Arch::Raster, Arch::MaskGit] {
        let mut t = generator(arch, 0.1, quick(25, 1e-2));
        let losses: Vec<f32> = (0..25).map(|_| t.step(&data).unwrap().loss).collect();
        let (first, last) = (mean(&losses[..5]), mean(&losses[20..]));
        assert!(last < 0.8 * first, "{arch:?} loss {first} -> {last}: {losses:?}");
        assert_eq!(t.checkpoint().model.arch, arch);
    }
}

#[test]
fn a_multi_scale_model_trains_on_each_grid_and_on_both_and_resumes_exactly() {
    let _guard = serial();
    let config = ModelConfig { multi_scale: true, dropout: 0.1, ..ModelConfig::test(16, 3) };
    let data = with_half(token_set(48));
    let mut t = trainer(config.clone(), quick(30, 1e-2));
    let stats: Vec<_> = (0..30).map(|_| t.step(&data).unwrap()).collect();
    // Batches of 12: the half grid (4 slots), the full grid (16) or both (20).
    let mut slots: Vec<usize> = stats.iter().map(|s| s.tokens / 12).collect();
    slots.sort();
    slots.dedup();
    assert_eq!(slots, vec![4, 16, 20]);
    let losses: Vec<f32> = stats.iter().map(|s| s.loss).collect();
    // Each step shows one of three grids, so the loss is noisy: compare means over 5 and 10 steps.
    let (first, last) = (mean(&losses[..5]), mean(&losses[20..]));
    assert!(last < 0.7 * first, "multi-scale loss {first} -> {last}: {losses:?}");
    assert!(t.checkpoint().model.multi_scale);

    let no_half = token_set(48);
    assert!(matches!(t.step(&no_half), Err(TrainError::Options(_))), "the half-size tokens are required");
    let other_pictures =
        TokenSet { grid_h: 2, grid_w: 2, tokens: vec![0; 48 * 4], labels: vec![0; 48], half_tokens: vec![] };
    assert!(token_set(48).with_half(other_pictures).is_err());

    let dir = scratch("multi-scale");
    check_generator_resume(trainer(config, quick(12, 5e-3)), &data, &dir.join("multi-scale.state"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Train `k` steps, save; then (a) go on `n` steps, (b) reload the state and take the same `n`
/// steps: the losses and gradient norms must agree.
fn check_resume<T>(
    mut run: T,
    k: usize,
    n: usize,
    step: impl Fn(&mut T) -> (u64, f32, f32),
    save: impl Fn(&T) -> TrainState,
    load: impl Fn(&TrainState) -> T,
    path: &Path,
) {
    (0..k).for_each(|_| {
        step(&mut run);
    });
    save(&run).save(path).unwrap();
    let straight: Vec<_> = (0..n).map(|_| step(&mut run)).collect();
    let mut resumed = load(&TrainState::load(path).unwrap());
    let again: Vec<_> = (0..n).map(|_| step(&mut resumed)).collect();
    assert_eq!(again[0].0, k as u64 + 1, "the resumed run continues from step {k}");
    for (a, b) in straight.iter().zip(&again) {
        assert_eq!(a.0, b.0);
        assert!((a.1 - b.1).abs() <= 1e-6, "step {}: loss {} vs resumed {}", a.0, a.1, b.1);
        assert!((a.2 - b.2).abs() <= 1e-5 * a.2.max(1.0), "step {}: grad norm {} vs {}", a.0, a.2, b.2);
    }
}

/// [`check_resume`] for a generator on `data`: 5 steps, save, 3 more both ways.
fn check_generator_resume(run: GeneratorTrainer, data: &TokenSet, path: &Path) {
    let device = Device::flex().autodiff();
    check_resume(
        run,
        5,
        3,
        |t| {
            let s = t.step(data).unwrap();
            (s.step, s.loss, s.grad_norm)
        },
        |t| t.to_state().unwrap(),
        |s| GeneratorTrainer::from_state(s, &device).unwrap(),
        path,
    );
}

#[test]
fn resume_continues_exactly() {
    let _guard = serial();
    let dir = scratch("resume");
    let device = Device::flex().autodiff();
    let data = token_set(30);
    // Dropout on, label dropout on, 2.5 epochs: every source of randomness is exercised.
    for arch in [Arch::Arpg, Arch::MaskGit] {
        check_generator_resume(
            generator(arch, 0.1, quick(12, 5e-3)),
            &data,
            &dir.join(format!("{arch:?}.state")),
        );
    }
    let images = shapes(30);
    let opts = TrainOptions { dead_code_steps: 2, ..quick(12, 3e-3) };
    check_resume(
        TokenizerTrainer::new(&VqConfig::test(), opts, "shapes", names(3), &device).unwrap(),
        5,
        3,
        |t| {
            let s = t.step(&images).unwrap();
            (s.step, s.loss, s.grad_norm)
        },
        |t| t.to_state().unwrap(),
        |s| TokenizerTrainer::from_state(s, &device).unwrap(),
        &dir.join("tokenizer.state"),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_state_file_is_refused() {
    let _guard = serial();
    let t = generator(Arch::Arpg, 0.0, quick(5, 1e-3));
    let mut bytes = t.to_state().unwrap().to_bytes();
    assert!(TrainState::from_bytes(&bytes).is_ok());
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    assert!(matches!(TrainState::from_bytes(&bytes), Err(TrainError::State(m)) if m.contains("checksum")));
    assert!(matches!(TrainState::from_bytes(&bytes[..100]), Err(TrainError::State(_))));
    let state = t.to_state().unwrap();
    assert!(TokenizerTrainer::from_state(&state, &Device::flex().autodiff()).is_err());
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx(magic: u32, dims: &[u32], values: &[u8]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    dims.iter().for_each(|d| out.extend_from_slice(&d.to_be_bytes()));
    out.extend_from_slice(values);
    out
}

/// Fashion-MNIST-shaped files (28x28, `n` images, labels `i % 10`) in `dir`.
fn write_fake_fashion_mnist(dir: &Path, n: usize) {
    let mut pixels = vec![0u8; n * 784];
    for (i, img) in pixels.chunks_exact_mut(784).enumerate() {
        let k = i % 10;
        for y in 4 + k..12 + k {
            for x in 6..22 {
                img[y * 28 + x] = 200 + (i % 50) as u8;
            }
        }
    }
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let (images_file, labels_file) = Split::Train.files();
    std::fs::write(dir.join(images_file), gz(&idx(0x803, &[n as u32, 28, 28], &pixels))).unwrap();
    std::fs::write(dir.join(labels_file), gz(&idx(0x801, &[n as u32], &labels))).unwrap();
}

#[test]
fn the_loader_reads_idx_files_and_rejects_broken_ones() {
    let dir = scratch("data");
    write_fake_fashion_mnist(&dir, 20);
    let d = data::load(&dir, Split::Train).unwrap();
    assert_eq!((d.len(), d.width, d.height, d.n_classes()), (20, 28, 28, 10));
    assert_eq!(d.padded(32).image(3)[(4 + 2 + 3) * 32 + 2 + 6], d.image(3)[(4 + 3) * 28 + 6]);

    let (images_file, _) = Split::Train.files();
    let images = dir.join(images_file);
    let good = std::fs::read(&images).unwrap();
    // A truncated download.
    std::fs::write(&images, &good[..good.len() / 2]).unwrap();
    let err = data::load(&dir, Split::Train).unwrap_err();
    assert!(matches!(err, DataError::Gzip { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    // A labels file where the images should be.
    std::fs::write(&images, gz(&idx(0x801, &[20], &[0; 20]))).unwrap();
    let err = data::load(&dir, Split::Train).unwrap_err();
    assert!(matches!(err, DataError::BadMagic { found: 0x801, .. }), "{err}");
    // A header that promises more images than the file holds.
    std::fs::write(&images, gz(&idx(0x803, &[21, 28, 28], &vec![0; 20 * 784]))).unwrap();
    let err = data::load(&dir, Split::Train).unwrap_err();
    assert!(matches!(err, DataError::BadLength { .. }), "{err}");
    // Gone: the message names the package.
    std::fs::remove_file(&images).unwrap();
    let err = data::load(&dir, Split::Train).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }) && err.to_string().contains(data::PACKAGE), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_debian_files_hold_fashion_mnist() {
    let dir = Path::new(data::DEFAULT_DIR);
    if !dir.join(Split::Train.files().0).exists() {
        eprintln!("skipped: {} is not installed", data::PACKAGE);
        return;
    }
    let train = data::load(dir, Split::Train).unwrap();
    assert_eq!((train.len(), train.width, train.height, train.n_classes()), (60_000, 28, 28, 10));
    let test = data::load(dir, Split::Test).unwrap();
    assert_eq!(test.len(), 10_000);
    assert!((0..10u8).all(|k| train.labels.iter().filter(|&&l| l == k).count() == 6000));
}

fn arpg(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_arpg")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "arpg {}: {text}", args.join(" "));
    text
}

#[test]
fn the_cli_trains_saves_and_resumes() {
    let dir = scratch("cli");
    write_fake_fashion_mnist(&dir, 40);
    let d = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let common = ["--preset", "test", "--batch", "8", "--data-dir", &d("")];
    let tok = d("tok.arpg");
    let args = [&["train-tokenizer", "--out", &tok, "--steps", "4"][..], &common].concat();
    arpg(&args);
    let ckpt = Checkpoint::from_bytes(&std::fs::read(&tok).unwrap()).unwrap();
    assert_eq!((ckpt.meta.steps, ckpt.meta.class_names.len()), (4, 10));
    assert_eq!(ckpt.meta.class_names[9], "Ankle boot");

    let model = d("m.arpg");
    let train = [&["train", "--tokenizer", &tok, "--mode", "maskgit", "--out", &model][..], &common].concat();
    arpg(&[&train[..], &["--steps", "3"]].concat());
    let lines = |p: &str| std::fs::read_to_string(p).unwrap().lines().count();
    assert_eq!(lines(&d("m.metrics.jsonl")), 3);
    // A second fresh run would overwrite the state: refused.
    let again =
        Command::new(env!("CARGO_BIN_EXE_arpg")).args([&train[..], &["--steps", "3"]].concat()).output();
    assert!(!again.unwrap().status.success());
    arpg(&[&train[..], &["--steps", "5", "--resume"]].concat());
    let ckpt = Checkpoint::from_bytes(&std::fs::read(&model).unwrap()).unwrap();
    assert_eq!((ckpt.meta.steps, ckpt.model.arch, ckpt.model.grid_h), (5, Arch::MaskGit, 8));
    assert_eq!(lines(&d("m.metrics.jsonl")), 5);
    let line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(d("m.metrics.jsonl")).unwrap().lines().last().unwrap())
            .unwrap();
    assert_eq!(line["step"], 5);
    assert!(line["tokens_per_s"].as_f64().unwrap() > 0.0);

    // --layers and --d-model reshape the preset (heads of 64, SwiGLU 8/3 wide, rounded up to 32)
    // and must match on resume; --stop-at stops early without changing the schedule.
    let read = |p: &str| Checkpoint::from_bytes(&std::fs::read(p).unwrap()).unwrap();
    let deep = d("deep.arpg");
    let shape = ["--layers", "2", "--d-model", "64"];
    let train = [
        &["train", "--tokenizer", &tok, "--out", &deep, "--steps", "3", "--stop-at", "1"][..],
        &common,
        &shape,
    ]
    .concat();
    arpg(&train);
    let c = read(&deep).model;
    assert_eq!((c.arch, c.n_layers, c.d_model, c.n_heads, c.mlp_hidden), (Arch::Arpg, 2, 64, 1, 192));
    assert!(c.pos_embed, "ARPG has the learned position table by default");
    assert_eq!(read(&deep).meta.steps, 1, "--stop-at 1");
    let resume = ["train", "--resume", "--out", &deep, "--layers", "4"];
    let out = Command::new(env!("CARGO_BIN_EXE_arpg")).args(resume).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--layers"));
    arpg(&[&["train", "--resume", "--out", &deep][..], &common].concat());
    assert_eq!(read(&deep).meta.steps, 3, "the resumed run keeps the schedule's 3 steps");
    // --no-pos-embed: RoPE only, as the paper (and the models shipped before 2026-11-30).
    let plain = d("plain.arpg");
    arpg(
        &[&["train", "--tokenizer", &tok, "--out", &plain, "--steps", "1", "--no-pos-embed"][..], &common]
            .concat(),
    );
    assert!(!read(&plain).model.pos_embed);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_checkpoint_records_the_background_of_the_data_it_trained_on() {
    let device = Device::flex().autodiff();
    let colour = VqConfig { image_channels: 3, ..VqConfig::test() };
    let background = |dataset: &str| {
        let tok = VqTokenizer::new(&colour, &Device::flex());
        let t =
            GeneratorTrainer::new(&ModelConfig::test(16, 3), tok, quick(1, 1e-3), dataset, names(3), &device)
                .unwrap();
        let bytes = t.checkpoint().to_bytes(DType::F32, 0).unwrap();
        Checkpoint::from_bytes(&bytes).unwrap().meta.background
    };
    assert_eq!(background("emoji"), vec![255, 255, 255]);
    assert_eq!(background("synthetic"), Vec::<u8>::new(), "an unknown dataset records none (black)");
}
