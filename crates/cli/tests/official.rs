//! `arpg import` and the commands on an imported model, end to end, with the official-layout
//! fixtures of tests/fixtures/official (a d128 generator of 512 codes, 10 classes, 16x16 tokens,
//! and a VQGAN of factor 2: 32x32 pictures).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arpg::image::Image;
use serde_json::Value;

fn arpg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arpg")).args(args).output().expect("run arpg")
}

fn ok(args: &[&str]) -> String {
    let out = arpg(args);
    assert!(out.status.success(), "arpg {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Exit status 1, one stderr line `error: ...` saying `needle`, no panic.
fn fails(args: &[&str], needle: &str) {
    let out = arpg(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "a panic: {err}");
    assert_eq!(out.status.code(), Some(1), "arpg {args:?} should fail: {err}");
    assert!(err.starts_with("error: ") && err.trim_end().lines().count() == 1, "{err:?}");
    assert!(err.contains(needle), "{err:?} does not say {needle:?}");
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/official").join(name)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("arpg-cli-official-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn import(dir: &Path, extra: &[&str]) -> PathBuf {
    let out = dir.join("official.arpg");
    let (arpg, vq) = (fixture("arpg.pt"), fixture("vq.pt"));
    let mut args = vec!["import", "--arpg", s(&arpg), "--vq", s(&vq), "--out", s(&out)];
    args.extend_from_slice(extra);
    ok(&args);
    out
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn an_imported_model_generates_the_official_tokens_from_the_command_line() {
    let dir = scratch("generate");
    let ckpt = import(&dir, &[]);
    let info = ok(&["inspect", s(&ckpt)]);
    assert!(
        info.contains("format v2") && info.contains("VQGAN") && info.contains("the official code's"),
        "{info}"
    );
    let reference = read_json(&fixture("reference.json"));
    let case = &reference["generate"][0];
    let order = dir.join("order.json");
    std::fs::write(&order, serde_json::to_vec(&serde_json::json!({ "order": case["order"] })).unwrap())
        .unwrap();
    let codes = dir.join("codes.json");
    for (i, class) in [3, 7].iter().enumerate() {
        let out_dir = dir.join(format!("out-{class}"));
        ok(&[
            "generate",
            "--checkpoint",
            s(&ckpt),
            "--class",
            &class.to_string(),
            "--count",
            "1",
            "--steps",
            "16",
            "--cfg",
            "4",
            "--schedule",
            "arccos",
            "--temperature",
            "0",
            "--order-file",
            s(&order),
            "--codes-out",
            s(&codes),
            "--out-dir",
            s(&out_dir),
        ]);
        let written = read_json(&codes);
        assert_eq!(written["images"][0]["codes"], case["tokens"][i], "class {class}");
        assert_eq!(
            (written["images"][0]["width"].as_u64(), written["images"][0]["height"].as_u64()),
            (Some(16), Some(16))
        );
        let png =
            Image::from_png(&std::fs::read(out_dir.join(format!("{class}-00.png"))).unwrap(), 3).unwrap();
        assert_eq!((png.width, png.height), (32, 32));
    }
}

#[test]
fn encode_decode_and_score_agree_with_the_official_code() {
    let dir = scratch("codes");
    let ckpt = import(&dir, &["--int8"]);
    let f32_ckpt = import(&dir.join("f32"), &[]);
    let codes = dir.join("codes.json");
    ok(&["encode", "--checkpoint", s(&f32_ckpt), "--image", s(&fixture("image.png")), "--out", s(&codes)]);
    let ours = read_json(&codes);
    let official = read_json(&fixture("vq_codes.json"));
    let same = (0..256).filter(|&i| ours["codes"][i] == official["codes"][i]).count();
    assert!(same >= 254, "{same} of 256 codes equal the official encoding");

    let png = dir.join("decoded.png");
    let official_codes = dir.join("official-codes.json");
    let grid = serde_json::json!({"width": 16, "height": 16, "codes": official["codes"]});
    std::fs::write(&official_codes, serde_json::to_vec(&grid).unwrap()).unwrap();
    ok(&["decode", "--checkpoint", s(&f32_ckpt), "--codes", s(&official_codes), "--out", s(&png)]);
    let ours = Image::from_png(&std::fs::read(&png).unwrap(), 3).unwrap();
    let expected = Image::from_png(&std::fs::read(fixture("decoded.png")).unwrap(), 3).unwrap();
    let worst = ours.pixels.iter().zip(&expected.pixels).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
    assert!(worst <= 2, "{worst}/255");

    let reference = read_json(&fixture("reference.json"));
    for case in reference["nll"].as_array().unwrap() {
        let codes = dir.join("nll-codes.json");
        let order = dir.join("nll-order.json");
        std::fs::write(
            &codes,
            serde_json::to_vec(&serde_json::json!({"width": 16, "height": 16, "codes": case["codes"]}))
                .unwrap(),
        )
        .unwrap();
        std::fs::write(&order, serde_json::to_vec(&serde_json::json!({"order": case["order"]})).unwrap())
            .unwrap();
        let condition = match case["class"].as_u64() {
            Some(c) => vec!["--class".to_string(), c.to_string()],
            None => vec!["--unconditional".to_string()],
        };
        let mut args = vec![
            "score",
            "--checkpoint",
            s(&f32_ckpt),
            "--codes",
            s(&codes),
            "--order-file",
            s(&order),
            "--json",
        ];
        args.extend(condition.iter().map(String::as_str));
        let scored: Value = serde_json::from_str(&ok(&args)).unwrap();
        let mean = scored["mean_nll"].as_f64().unwrap();
        assert!((mean - case["mean_nll"].as_f64().unwrap()).abs() < 1e-3, "{mean} vs {}", case["mean_nll"]);
        let bpd = scored["bits_per_dim"].as_f64().unwrap();
        assert!((bpd - mean * 256.0 / (std::f64::consts::LN_2 * 32.0 * 32.0 * 3.0)).abs() < 1e-9, "{bpd}");
    }
    // int8 weights: the same command works, the numbers move a little.
    let int8 = ok(&[
        "score",
        "--checkpoint",
        s(&ckpt),
        "--image",
        s(&fixture("image.png")),
        "--class",
        "3",
        "--order",
        "random",
        "--seed",
        "1",
        "--json",
    ]);
    let int8: Value = serde_json::from_str(&int8).unwrap();
    assert!(int8["mean_nll"].as_f64().unwrap().is_finite());
}

#[test]
fn an_imported_model_paints_from_the_command_line() {
    let dir = scratch("paint");
    let ckpt = import(&dir, &[]);
    let image = fixture("image.png");
    let mask = dir.join("mask.png");
    let mut m = Image::new(32, 32, 1);
    (8..24).for_each(|y| (8..24).for_each(|x| m.set(x, y, 255)));
    std::fs::write(&mask, m.to_png()).unwrap();
    let out = |name: &str| dir.join(name);
    // The fixture's classes are "class 0".."class 9": a name that is no class is a clear error.
    let x = out("x.png");
    let args = [
        "inpaint",
        "--image",
        s(&image),
        "--mask",
        s(&mask),
        "--out",
        s(&x),
        "--checkpoint",
        s(&ckpt),
        "--class",
        "golden",
    ];
    fails(&args, "unknown class \"golden\"");
    let common = ["--checkpoint", s(&ckpt), "--steps", "4", "--class", "class 3"];
    let run = |task: &[&str], name: &str| {
        let path = out(name);
        let mut args = task.to_vec();
        args.extend(["--out", s(&path)]);
        args.extend(&common);
        ok(&args);
        Image::from_png(&std::fs::read(out(name)).unwrap(), 3).unwrap()
    };
    let painted = run(&["inpaint", "--image", s(&image), "--mask", s(&mask)], "inpaint.png");
    let original = Image::from_png(&std::fs::read(&image).unwrap(), 3).unwrap();
    for y in 0..32 {
        for x in 0..32 {
            if !(8..24).contains(&x) || !(8..24).contains(&y) {
                assert_eq!(
                    painted.get(x, y),
                    original.get(x, y),
                    "pixel ({x}, {y}) outside the mask changed"
                );
            }
        }
    }
    let wide = run(&["outpaint", "--image", s(&image), "--right", "4"], "outpaint.png");
    assert_eq!((wide.width, wide.height), (40, 32));
    let big = run(&["expand", "--image", s(&image)], "expand.png");
    assert_eq!((big.width, big.height), (64, 64));
}

#[test]
fn bad_official_files_are_one_line_errors_that_leave_no_file() {
    let dir = scratch("bad");
    let bytes = std::fs::read(fixture("arpg.pt")).unwrap();
    let truncated = dir.join("truncated.pt");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let noise = dir.join("noise.pt");
    std::fs::write(&noise, vec![0x5a; 2048]).unwrap();
    let vq = fixture("vq.pt");
    let out = dir.join("out.arpg");
    for (arpg, needle) in [
        (truncated.as_path(), "truncated.pt"),
        (vq.as_path(), "this is a VQ tokenizer, not an ARPG generator"),
        (&fixture("missing-key.pt"), "no tensor 'layers.to_v.weight'"),
        (noise.as_path(), "not a PyTorch checkpoint"),
        (&fixture("hostile.pt"), "system"),
    ] {
        fails(&["import", "--arpg", s(arpg), "--vq", s(&vq), "--out", s(&out)], needle);
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(!out.exists() && left.len() == 2, "{needle}: files left {left:?}");
    }
    assert!(!Path::new("/tmp/arpg-hostile-pickle-ran").exists());
}
