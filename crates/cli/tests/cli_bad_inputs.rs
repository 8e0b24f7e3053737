//! The bad-input matrix (issue 6), CLI side: the same cases as `tests/bad_inputs.rs` through the
//! `arpg` binary, on a test checkpoint written by `arpg init`. A refused input exits with status 1
//! and ONE stderr line `error: ...` that names the file and the problem; a malformed flag value is
//! clap's usage error (status 2, `error: invalid value ...` plus a `--help` hint). Never a panic.
//! `cargo test --release --test cli_bad_inputs -- --nocapture` prints every message.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arpg::checkpoint::{CHECKSUM_LEN, Checkpoint, DType, HEADER_LEN};
use arpg::image::Image;
use common::corrupt::{
    encode_png, header_only_png, patched, rechecksum, table_start, with_2_pow_40_values, with_header,
};

fn arpg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arpg")).args(args).output().expect("run arpg")
}

/// Exit status 1, and exactly one stderr line `error: ...` that contains every one of `needles`.
fn fails(case: &str, args: &[&str], needles: &[&str]) -> String {
    let out = arpg(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("[{case}] {}", err.trim_end());
    assert!(!err.contains("panicked"), "{case}: a panic: {err}");
    assert_eq!(out.status.code(), Some(1), "{case}: arpg {args:?} should fail with status 1: {err}");
    assert!(err.starts_with("error: ") && err.trim_end().lines().count() == 1, "{case}: {err:?}");
    for needle in needles {
        assert!(err.contains(needle), "{case}: {err:?} does not say {needle:?}");
    }
    err
}

/// clap's usage error: status 2, a first line `error: ...` that contains every one of `needles`.
fn usage_error(case: &str, args: &[&str], needles: &[&str]) -> String {
    let out = arpg(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let first = err.lines().next().unwrap_or_default().to_string();
    println!("[{case}] {first}");
    assert!(!err.contains("panicked"), "{case}: a panic: {err}");
    assert_eq!(out.status.code(), Some(2), "{case}: arpg {args:?} should be a usage error: {err}");
    assert!(first.starts_with("error: "), "{case}: {err:?}");
    for needle in needles {
        assert!(first.contains(needle), "{case}: {first:?} does not say {needle:?}");
    }
    first
}

fn ok(args: &[&str]) -> String {
    let out = arpg(args);
    assert!(out.status.success(), "arpg {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("arpg-cli-bad-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A random test checkpoint (4x4 tokens of 16x16 images, 16 codes, 10 classes).
fn init(dir: &Path) -> PathBuf {
    let path = dir.join("test.arpg");
    ok(&["init", "--out", s(&path), "--preset", "test", "--seed", "5"]);
    path
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn png(dir: &Path, name: &str, image: &Image) -> PathBuf {
    write(dir, name, &image.to_png())
}

#[test]
fn bad_checkpoints_are_one_line_errors() {
    let dir = scratch("ckpt");
    let good = init(&dir);
    let bytes = std::fs::read(&good).unwrap();
    let out = dir.join("out");
    let generate = |case: &str, file: &Path, needles: &[&str]| {
        fails(case, &["generate", "--checkpoint", s(file), "--count", "1", "--out-dir", s(&out)], needles);
    };
    let load = |name: &str| format!("cannot load checkpoint {}: ", s(&dir.join(name)));

    generate("missing file", &dir.join("nope.arpg"), &["cannot read checkpoint", "No such file"]);
    generate("a directory", &dir, &["cannot read checkpoint"]);
    let min = (HEADER_LEN + CHECKSUM_LEN).to_string();
    generate(
        "empty file",
        &write(&dir, "empty.arpg", &[]),
        &[&load("empty.arpg"), "too short: 0 bytes", &min],
    );
    generate("truncated in the header", &write(&dir, "h.arpg", &bytes[..5]), &["too short: 5 bytes"]);
    generate("truncated in the sizes", &write(&dir, "c.arpg", &bytes[..20]), &["too short: 20 bytes"]);
    let table = table_start(&bytes);
    let cut = write(&dir, "t.arpg", &bytes[..table + 60]);
    generate("truncated in the tensor table", &cut, &[&load("t.arpg"), "checksum mismatch", "truncated"]);
    let data_cut = bytes.len() - CHECKSUM_LEN - 100;
    generate("truncated in the data", &write(&dir, "d.arpg", &bytes[..data_cut]), &["checksum mismatch"]);
    let body = |len: usize| rechecksum(bytes[..len].to_vec());
    let meta = write(&dir, "m2.arpg", &body(HEADER_LEN + 3));
    generate("truncated in the metadata, checksum valid", &meta, &["truncated in the metadata"]);
    let t2 = write(&dir, "t2.arpg", &body(table + 60));
    generate("truncated in the tensor table, checksum valid", &t2, &["truncated in the tensor table"]);
    let d2 = write(&dir, "d2.arpg", &body(data_cut));
    generate("truncated in the data, checksum valid", &d2, &["payload bytes but only"]);

    let mut magic = bytes.clone();
    magic[..8].copy_from_slice(b"NOTACKPT");
    generate(
        "wrong magic",
        &write(&dir, "magic.arpg", &magic),
        &["not an ARPG checkpoint (bad magic bytes)"],
    );
    let mut v3 = bytes.clone();
    v3[8..10].copy_from_slice(&3u16.to_le_bytes());
    generate("future version", &write(&dir, "v3.arpg", &v3), &["unsupported checkpoint version 3"]);
    let mut flipped = bytes.clone();
    flipped[data_cut] ^= 0x40;
    generate("checksum mismatch", &write(&dir, "flip.arpg", &flipped), &["checksum mismatch"]);

    let ckpt = Checkpoint::from_bytes(&bytes).unwrap();
    let mut transposed = ckpt.clone();
    let head = transposed.tensors.iter_mut().find(|t| t.name == "model.head.weight").unwrap();
    head.shape.reverse();
    let shape = write(&dir, "shape.arpg", &transposed.to_bytes(DType::F32, 0).unwrap());
    generate("shape mismatch", &shape, &["tensor 'model.head.weight' has shape [16, 32], expected [32, 16]"]);
    // The writer refuses a NaN, so another writer's file is simulated: a marker value in the
    // payload replaced by a NaN, checksum recomputed.
    let mut marked = ckpt;
    let marker = 12345.678f32;
    marked.tensors.iter_mut().find(|t| t.name == "model.head.weight").unwrap().data[0] = marker;
    let marked = marked.to_bytes(DType::F32, 0).unwrap();
    let at = marked.windows(4).position(|w| w == marker.to_le_bytes()).unwrap();
    let nan = write(&dir, "nan.arpg", &patched(&marked, at, &f32::NAN.to_le_bytes()));
    generate("NaN weight", &nan, &["tensor 'model.head.weight' holds a NaN or infinite value"]);
    let huge = write(&dir, "huge.arpg", &with_2_pow_40_values(&bytes));
    generate("a tensor of 2^40 values", &huge, &["tensors declare", "payload bytes but only"]);
    let codebook = with_header(&bytes, |h| {
        h["tokenizer"]["vq"]["codebook_size"] = u32::MAX.into();
        h["tokenizer"]["vq"]["code_dim"] = u32::MAX.into();
    });
    let codebook = write(&dir, "codebook.arpg", &codebook);
    generate("config codebook of (2^32-1)^2 values", &codebook, &["'tokenizer.codebook' has shape [16, 4]"]);
}

#[test]
fn bad_sampling_flags_are_refused() {
    let dir = scratch("opts");
    let ckpt = init(&dir);
    let out = dir.join("out");
    // `generate --count 1 --steps 4 --class 3`, unless `extra` gives one of those flags itself.
    let run = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> =
            ["generate", "--checkpoint", s(&ckpt), "--out-dir", s(&out)].map(String::from).to_vec();
        for (flag, value) in [("--count", "1"), ("--steps", "4"), ("--class", "3")] {
            if !extra.iter().any(|a| *a == flag || a.starts_with(&format!("{flag}="))) {
                args.extend([flag.to_string(), value.to_string()]);
            }
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let fail = |case: &str, extra: &[&str], needles: &[&str]| {
        let args = run(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(case, &args, needles);
    };
    let usage = |case: &str, extra: &[&str], needles: &[&str]| {
        let args = run(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        usage_error(case, &args, needles);
    };

    fail("--steps 0", &["--steps", "0"], &["--steps must be at least 1"]);
    fail("--steps 17 (T = 16)", &["--steps", "17"], &["steps must be between 1 and 16, got 17"]);
    fail(
        "--class 10",
        &["--class", "10"],
        &["class 10 is out of range: the checkpoint has 10 classes (0..=9)"],
    );
    fail("--class 2^64", &["--class", "18446744073709551616"], &["unknown class \"18446744073709551616\""]);
    fail("--class zebra", &["--class", "zebra"], &["unknown class \"zebra\"; use an id 0..=9 or one of:"]);
    for v in ["-1", "NaN", "inf"] {
        fail(&format!("--cfg {v}"), &[&format!("--cfg={v}")], &["--cfg must be a finite number >= 0"]);
    }
    for v in ["-1", "NaN", "inf"] {
        fail(
            &format!("--temperature {v}"),
            &[&format!("--temperature={v}")],
            &["--temperature must be >= 0"],
        );
    }
    for v in ["0", "1.5", "-0.1", "NaN"] {
        fail(&format!("--top-p {v}"), &[&format!("--top-p={v}")], &["--top-p must be in (0, 1]"]);
    }
    fail("--count 0", &["--count", "0"], &["--count must be at least 1"]);
    fail("--count 100001", &["--count", "100001"], &["--count must be at most 100000, got 100001"]);
    usage(
        "--seed 2^64",
        &["--seed", "18446744073709551616"],
        &["'18446744073709551616' for '--seed <SEED>'"],
    );
    usage("--seed -1", &["--seed=-1"], &["invalid value '-1' for '--seed <SEED>'"]);
    usage("--seed 1.5", &["--seed", "1.5"], &["invalid value '1.5' for '--seed <SEED>'"]);
    usage("--steps -1", &["--steps=-1"], &["invalid value '-1' for '--steps <STEPS>'"]);
    usage("--top-k -1", &["--top-k=-1"], &["invalid value '-1' for '--top-k <TOP_K>'"]);
    usage("--cfg abc", &["--cfg", "abc"], &["invalid value 'abc' for '--cfg <CFG>'"]);

    // Accepted: any u64 seed; top-k 0 (off) and top-k at or above the codebook size (16) draw the
    // same image, clamped; top-k 1 (greedy) draws another.
    let pixels = |name: &str, extra: &[&str]| {
        let dir_out = dir.join(name);
        let mut args = vec!["generate", "--checkpoint", s(&ckpt), "--count", "1", "--steps", "4"];
        args.extend_from_slice(&["--class", "3", "--seed", "9", "--out-dir", s(&dir_out)]);
        args.extend_from_slice(extra);
        ok(&args);
        Image::from_png(&std::fs::read(dir_out.join("3-00.png")).unwrap(), 1).unwrap()
    };
    let off = pixels("k0", &["--top-k", "0"]);
    for k in ["16", "17", "18446744073709551615"] {
        assert_eq!(pixels(&format!("k{k}"), &["--top-k", k]), off, "--top-k {k}");
    }
    assert_ne!(pixels("k1", &["--top-k", "1"]), off, "greedy decoding drew the same image");
    ok(&run(&["--seed", "18446744073709551615"]).iter().map(String::as_str).collect::<Vec<_>>());
    println!("[--top-k 16 / 17 / 2^64-1, --seed 2^64-1] accepted; top-k >= 16 draws the --top-k 0 image");
}

#[test]
fn bad_images_and_masks_are_refused_and_every_png_variant_is_accepted() {
    let dir = scratch("img");
    let ckpt = init(&dir);
    let out = dir.join("o.png");
    let image = png(&dir, "in.png", &Image::filled(16, 16, 1, 100));
    let mut one = Image::new(16, 16, 1);
    one.set(6, 6, 255);
    let mask = png(&dir, "mask.png", &one);
    let inpaint = |img: &Path, msk: &Path| -> Vec<String> {
        ["inpaint", "--checkpoint", s(&ckpt), "--image", s(img), "--mask", s(msk), "--class", "0"]
            .into_iter()
            .chain(["--steps", "4", "--out", s(&out)])
            .map(String::from)
            .collect()
    };
    let fail = |case: &str, img: &Path, msk: &Path, needles: &[&str]| {
        let args = inpaint(img, msk);
        fails(case, &args.iter().map(String::as_str).collect::<Vec<_>>(), needles);
    };
    let pass = |img: &Path, msk: &Path| {
        ok(&inpaint(img, msk).iter().map(String::as_str).collect::<Vec<_>>());
        Image::from_png(&std::fs::read(&out).unwrap(), 1).unwrap()
    };

    let not_png = write(&dir, "x.png", b"GIF89a, not a png");
    fail("image: not a PNG", &not_png, &mask, &[&format!("cannot load {}: not a PNG file", s(&not_png))]);
    fail("mask: not a PNG", &image, &not_png, &["not a PNG file (bad signature)"]);
    fail("image: missing file", &dir.join("none.png"), &mask, &["cannot read", "No such file"]);
    let full_png = std::fs::read(&image).unwrap();
    let cut = write(&dir, "cut.png", &full_png[..full_png.len() - 20]);
    fail("image: truncated PNG", &cut, &mask, &["cannot decode PNG"]);
    let huge = write(&dir, "huge.png", &header_only_png(10_000, 10_000));
    fail(
        "image: PNG declaring 10000x10000",
        &huge,
        &mask,
        &["image is 10000x10000, more than the limit of 16777216"],
    );
    let big = png(&dir, "big.png", &Image::filled(200, 200, 1, 9));
    let big_mask = png(&dir, "bigmask.png", &Image::filled(200, 200, 1, 255));
    fail(
        "image: 200x200, over the token budget",
        &big,
        &big_mask,
        &["a 200x200 image needs more than the budget"],
    );
    let small_mask = png(&dir, "small.png", &Image::filled(8, 8, 1, 255));
    fail("mask: another size", &image, &small_mask, &["the mask is 8x8 but the image is 16x16"]);
    let black = png(&dir, "black.png", &Image::new(16, 16, 1));
    fail("mask: empty", &image, &black, &["nothing to regenerate: the mask has no white pixels"]);

    let white = png(&dir, "white.png", &Image::filled(16, 16, 1, 255));
    let full = pass(&image, &white);
    assert_eq!((full.width, full.height), (16, 16));
    println!("[mask: full] accepted: a 16x16 image, every token regenerated");

    // Colour, alpha, 16-bit and palette files are converted to grey and accepted. The kept tokens
    // come back exactly, so the output shows what grey each file was read as (100 everywhere).
    use png::BitDepth::{Eight, Sixteen};
    use png::ColorType::{GrayscaleAlpha, Indexed, Rgb, Rgba};
    let n = 16 * 16;
    let variants = [
        ("RGB 8-bit", encode_png(16, 16, Rgb, Eight, &[100; 16 * 16 * 3], false)),
        (
            "RGBA 16-bit",
            encode_png(16, 16, Rgba, Sixteen, &[100u8, 7, 100, 7, 100, 7, 255, 255].repeat(n), false),
        ),
        (
            "grey+alpha 16-bit",
            encode_png(16, 16, GrayscaleAlpha, Sixteen, &[100u8, 1, 255, 255].repeat(n), false),
        ),
        ("palette 8-bit", encode_png(16, 16, Indexed, Eight, &[100; 16 * 16], true)),
    ];
    for (name, bytes) in &variants {
        let file = write(&dir, "variant.png", bytes);
        let got = pass(&file, &mask);
        let kept = (0..16 * 16).filter(|&i| (i / 16 / 4, i % 16 / 4) != (1, 1));
        assert!(kept.into_iter().all(|i| got.pixels[i] == 100), "{name}: {:?}", got.pixels);
        println!("[image: {name}] accepted, read as grey 100");
    }
    // A palette mask: index 255 is white.
    let mut idx = vec![0u8; n];
    idx[6 * 16 + 6] = 255;
    let pal_mask = write(&dir, "palmask.png", &encode_png(16, 16, Indexed, Eight, &idx, true));
    pass(&image, &pal_mask);
}

/// Transparent pixels become the background the model was trained on, not black: a colour emoji
/// file read by the white-background emoji model must not gain a black frame.
#[test]
fn a_transparent_png_is_read_onto_the_models_background() {
    let dir = scratch("alpha");
    let grey = init(&dir);
    let colour = dir.join("white.arpg");
    ok(&["init", "--out", s(&colour), "--preset", "test", "--image-channels", "3", "--seed", "5"]);
    let mut ckpt = Checkpoint::from_bytes(&std::fs::read(&colour).unwrap()).unwrap();
    ckpt.meta.background = vec![255, 255, 255];
    std::fs::write(&colour, ckpt.to_bytes(DType::F32, 0).unwrap()).unwrap();

    // Left half opaque red, right half transparent.
    let rgba: Vec<u8> =
        (0..16 * 16).flat_map(|i| if i % 16 < 8 { [255, 0, 0, 255] } else { [0; 4] }).collect();
    let image = write(
        &dir,
        "alpha.png",
        &encode_png(16, 16, png::ColorType::Rgba, png::BitDepth::Eight, &rgba, false),
    );
    let mut one = Image::new(16, 16, 1);
    one.set(6, 6, 255);
    let mask = png(&dir, "mask.png", &one);
    let out = dir.join("o.png");
    // The pixel at (x, y) of the in-painted image, outside the one regenerated token.
    let kept = |ckpt: &Path, channels: usize, x: usize, y: usize| {
        let args = ["inpaint", "--checkpoint", s(ckpt), "--image", s(&image), "--mask", s(&mask)];
        ok(&[&args[..], &["--class", "0", "--steps", "2", "--out", s(&out)]].concat());
        Image::from_png(&std::fs::read(&out).unwrap(), channels).unwrap().get(x, y).to_vec()
    };
    assert_eq!(kept(&colour, 3, 12, 12), [255, 255, 255], "transparent onto white");
    assert_eq!(kept(&colour, 3, 1, 12), [255, 0, 0], "opaque red stays red");
    assert_eq!(kept(&grey, 1, 12, 12), [0], "transparent onto the grey model's black");
    assert_eq!(kept(&grey, 1, 1, 12), [76], "red as grey");

    let wide = dir.join("wide.png");
    let args = ["outpaint", "--checkpoint", s(&colour), "--image", s(&image), "--right", "1"];
    ok(&[&args[..], &["--class", "0", "--steps", "2", "--out", s(&wide)]].concat());
    let wide = Image::from_png(&std::fs::read(&wide).unwrap(), 3).unwrap();
    assert_eq!(wide.get(12, 12), [255, 255, 255], "out-painting reads it onto white too");
}

#[test]
fn outpainting_and_expansion_beyond_the_budget_are_refused() {
    let dir = scratch("budget");
    let ckpt = init(&dir);
    let image = png(&dir, "in.png", &Image::filled(16, 16, 1, 100));
    let out = dir.join("o.png");
    let outpaint = |case: &str, sides: &[&str], needles: &[&str]| {
        let mut args = vec!["outpaint", "--checkpoint", s(&ckpt), "--image", s(&image), "--class", "0"];
        args.extend_from_slice(&["--out", s(&out)]);
        args.extend_from_slice(sides);
        fails(case, &args, needles);
    };
    outpaint(
        "outpaint --right 1000",
        &["--right", "1000"],
        &["out-painting: a 4x1004 token grid exceeds the budget of 1024 tokens"],
    );
    outpaint(
        "outpaint --right 2^64-1",
        &["--right", "18446744073709551615"],
        &["out-painting: the token grid's size overflows the budget of 1024 tokens"],
    );
    outpaint(
        "outpaint --left 2^63 --right 2^63 (sum wraps to 0)",
        &["--left", "9223372036854775808", "--right", "9223372036854775808"],
        &["size overflows the budget of 1024 tokens"],
    );
    outpaint("outpaint, no side", &[], &["nothing to outpaint"]);

    let expand = |case: &str, img: &Path, factor: &str, needles: &[&str]| {
        let args = ["expand", "--checkpoint", s(&ckpt), "--image", s(img), "--class", "0", "--out", s(&out)];
        let mut args = args.to_vec();
        args.extend_from_slice(&["--factor", factor]);
        fails(case, &args, needles);
    };
    let big = png(&dir, "big.png", &Image::filled(128, 128, 1, 50));
    expand(
        "expand a 128x128 image x2",
        &big,
        "2",
        &["expansion: a 64x64 token grid exceeds the budget of 1024"],
    );
    expand("expand --factor 5", &image, "5", &["expansion factor must be 2, 3 or 4, got 5"]);
    expand("expand --factor 1", &image, "1", &["--factor must be at least 2"]);
}
