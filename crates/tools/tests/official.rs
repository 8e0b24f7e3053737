//! The port of the paper's models against the official PyTorch code, on the fixtures that
//! `tests/fixtures/official/make_fixtures.py` wrote with it (random weights of the official
//! layout; the reference outputs are the official code's). No PyTorch is needed here.

use std::path::{Path, PathBuf};

use arpg::checkpoint::Checkpoint;
use arpg::config::VqganConfig;
use arpg::decode::Plan;
use arpg::engine::Engine;
use arpg::image::Image;
use arpg::sampling::{CfgSchedule, Order, SampleOptions, Schedule, StepRule};
use arpg_tools::import::{self, ImportError, Options, generator_key, vqgan_key};
use burn::tensor::Device;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/official").join(name)
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(name)).unwrap()).unwrap()
}

fn ints(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

/// The fixture generator (d 128, 4 layers, 512 codes, 10 classes, 16x16 tokens) with its VQGAN
/// (512 codes, factor 2: 32x32 pictures).
fn engine() -> Engine {
    let ckpt =
        import::import(&fixture("arpg.pt"), &fixture("vq.pt"), &Options::default(), &mut |_, _| {}).unwrap();
    Engine::from_checkpoint(ckpt, &Device::flex()).unwrap()
}

fn no_progress(_: usize) {}

#[test]
fn the_teacher_forced_nll_matches_the_official_forward_per_token() {
    let engine = engine();
    for case in json("reference.json")["nll"].as_array().unwrap() {
        let class = case["class"].as_u64().map(|c| c as usize);
        let codes: Vec<u32> = ints(&case["codes"]).into_iter().map(|c| c as u32).collect();
        let ours = pollster::block_on(engine.score(class, &codes, &ints(&case["order"]))).unwrap();
        let official: Vec<f64> =
            case["nll_per_token"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert_eq!(ours.len(), official.len());
        for (j, (a, b)) in ours.iter().zip(&official).enumerate() {
            assert!((a - b).abs() < 1e-3, "class {class:?}, token {j} of the order: ours {a}, official {b}");
        }
    }
}

#[test]
fn greedy_generation_in_a_given_order_gives_the_official_tokens() {
    let engine = engine();
    let case = &json("reference.json")["generate"][0];
    let classes = ints(&case["classes"]);
    let plan = Plan { phases: vec![ints(&case["order"])], ..Plan::full(16, 16) };
    let opts = SampleOptions {
        steps: case["steps"].as_u64().unwrap() as usize,
        cfg: case["cfg"].as_f64().unwrap() as f32,
        cfg_schedule: CfgSchedule::Linear,
        schedule: Schedule::Arccos,
        temperature: 0.0,
        order: Order::Listed,
        step_rule: StepRule::Official,
        ..SampleOptions::default()
    };
    let sampled = pollster::block_on(engine.sample(&classes, &plan, &opts, &mut |_| ())).unwrap();
    for (i, tokens) in case["tokens"].as_array().unwrap().iter().enumerate() {
        let official: Vec<u32> = ints(tokens).into_iter().map(|c| c as u32).collect();
        let differ = official.iter().zip(&sampled.tokens[i]).filter(|(a, b)| a != b).count();
        assert_eq!(differ, 0, "image {i}: {differ} of 256 tokens differ from the official generate's");
    }
}

#[test]
fn step_sizes_follow_the_official_formula_for_1_to_256_steps() {
    let reference = json("reference.json");
    for schedule in [Schedule::Arccos, Schedule::Cosine] {
        let name = match schedule {
            Schedule::Arccos => "arccos",
            _ => "cosine",
        };
        for (i, sizes) in reference["step_sizes"][name].as_array().unwrap().iter().enumerate() {
            assert_eq!(schedule.official_step_sizes(256, i + 1), ints(sizes), "{name}, {} steps", i + 1);
        }
    }
}

#[test]
fn the_vqgan_encodes_and_decodes_as_the_official_one() {
    let engine = engine();
    let image = Image::from_png(&std::fs::read(fixture("image.png")).unwrap(), 3).unwrap();
    let (codes, h, w) = pollster::block_on(engine.encode(&image)).unwrap();
    let official = json("vq_codes.json");
    let official_codes: Vec<u32> = ints(&official["codes"]).into_iter().map(|c| c as u32).collect();
    assert_eq!((h, w), (16, 16));
    let same = codes.iter().zip(&official_codes).filter(|(a, b)| a == b).count();
    assert!(same * 100 >= 99 * codes.len(), "{same} of {} codes equal", codes.len());

    let decoded = pollster::block_on(engine.decode(&[official_codes], 16, 16)).unwrap().remove(0);
    let expected = Image::from_png(&std::fs::read(fixture("decoded.png")).unwrap(), 3).unwrap();
    assert_eq!((decoded.width, decoded.height), (32, 32));
    let worst = decoded.pixels.iter().zip(&expected.pixels).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
    assert!(worst <= 2, "a decoded pixel is {worst}/255 from the official one");
}

#[test]
fn every_official_checkpoint_layout_imports_and_ema_is_its_own_weights() {
    let read = |file: &str, ema: bool| {
        import::read_generator(&fixture(file), &Options { ema, heads: None }, &mut no_progress).unwrap()
    };
    let (model, reference, _) = read("layout-bare.pt", false);
    assert_eq!((model.d_model, model.n_layers, model.vocab_size, model.n_classes), (32, 2, 16, 3));
    for file in ["layout-model.pt", "layout-module.pt", "layout-state_dict.pt", "layout-ema.pt"] {
        assert_eq!(read(file, false).1, reference, "{file}");
    }
    assert_eq!(read("layout-model.pt", false).2, 1, "the training script's step count");
    let check = &json("layouts.json")["ema_check"];
    let norm = |t: &[arpg::checkpoint::NamedTensor]| {
        t.iter().find(|t| t.name == "model.out_norm.gamma").unwrap().data[0]
    };
    let ema = read("layout-ema.pt", true).1;
    assert_eq!(check["key"], "norm.weight");
    assert_eq!(norm(&ema) as f64, check["ema_first"].as_f64().unwrap());
    assert_eq!(norm(&reference) as f64, check["model_first"].as_f64().unwrap());
}

/// The importer's error for a generator file (as `--arpg`) and a tokenizer file (as `--vq`).
fn import_error(arpg: &Path, vq: &Path) -> ImportError {
    import::import(arpg, vq, &Options::default(), &mut |_, _| {}).unwrap_err()
}

#[test]
fn damaged_wrong_and_incomplete_files_are_named_errors() {
    let dir = std::env::temp_dir().join(format!("arpg-import-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (arpg, vq) = (fixture("arpg.pt"), fixture("vq.pt"));
    let bytes = std::fs::read(&arpg).unwrap();
    let truncated = dir.join("truncated.pt");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let noise = dir.join("noise.pt");
    std::fs::write(
        &noise,
        (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<_>>(),
    )
    .unwrap();

    let cases: [(ImportError, &str); 6] = [
        (import_error(&truncated, &vq), "truncated.pt"),
        (import_error(&noise, &vq), "not a PyTorch checkpoint"),
        (import_error(&vq, &vq), "this is a VQ tokenizer, not an ARPG generator (give it as --vq)"),
        (import_error(&arpg, &arpg), "this is an ARPG generator, not a VQ tokenizer (give it as --arpg)"),
        (
            import::read_generator(&fixture("missing-key.pt"), &Options::default(), &mut no_progress)
                .unwrap_err(),
            "no tensor 'layers.to_v.weight'",
        ),
        (
            import::read_generator(&fixture("extra-key.pt"), &Options::default(), &mut no_progress)
                .unwrap_err(),
            "unexpected tensor 'layers.extra.weight'",
        ),
    ];
    for (err, expected) in cases {
        let text = err.to_string();
        assert!(text.contains(expected), "{text:?} does not say {expected:?}");
        assert!(!text.contains('\n'), "not one line: {text:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_pickle_that_would_run_code_is_refused_and_nothing_runs() {
    let marker = Path::new("/tmp/arpg-hostile-pickle-ran");
    let err =
        import::read_generator(&fixture("hostile.pt"), &Options::default(), &mut no_progress).unwrap_err();
    assert!(matches!(&err, ImportError::Unsafe { type_name, .. } if type_name.ends_with("system")), "{err}");
    assert!(err.to_string().contains("at 'args'"), "{err}");
    assert!(!marker.exists(), "the pickle's os.system ran");
}

#[test]
fn our_modules_map_onto_the_full_size_official_layouts_exactly() {
    let layouts = json("full_layout.json");
    let official = |size: &str| -> Vec<(String, Vec<usize>)> {
        let mut v: Vec<_> =
            layouts[size].as_object().unwrap().iter().map(|(k, s)| (k.clone(), ints(s))).collect();
        v.retain(|(k, _)| k != "quantize.codebook_used");
        v.sort();
        v
    };
    let device = Device::flex();
    for (size, ours) in [("ARPG-L", "L"), ("ARPG-XL", "XL"), ("ARPG-XXL", "XXL")] {
        let (model, _) = import::official_configs(ours).unwrap();
        let mut mapped: Vec<(String, Vec<usize>)> =
            arpg::weights::shapes(&arpg::model::Arpg::new(&model, &device), "")
                .into_iter()
                .map(|(name, shape)| {
                    let key = generator_key(&name).unwrap_or_else(|| panic!("no official key for {name}"));
                    let shape = match (key.as_str(), shape.as_slice()) {
                        ("embeddings.weight", [r, d]) => vec![r + 1, *d],
                        (_, [i, o]) => vec![*o, *i],
                        _ => shape,
                    };
                    (key, shape)
                })
                .collect();
        mapped.sort();
        assert_eq!(mapped, official(size), "{size}");
    }
    let vq = arpg::vqgan::Vqgan::new(&VqganConfig::vq16(), &device);
    let mut mapped: Vec<_> =
        arpg::weights::shapes(&vq, "").into_iter().map(|(name, shape)| (vqgan_key(&name), shape)).collect();
    mapped.sort();
    assert_eq!(mapped, official("VQ-16"));
}

#[test]
fn an_imported_checkpoint_round_trips_through_the_file_format() {
    let ckpt =
        import::import(&fixture("arpg.pt"), &fixture("vq.pt"), &Options::default(), &mut |_, _| {}).unwrap();
    let back = Checkpoint::from_bytes(&ckpt.to_bytes(arpg::checkpoint::DType::F32, 0).unwrap()).unwrap();
    assert_eq!(back, ckpt);
    assert_eq!(back.sampling.unwrap().step_rule, StepRule::Official);
    assert_eq!(back.meta.class_names.len(), 10);
}
