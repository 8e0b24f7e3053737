//! The `arpg` binary end to end, on randomly initialised test checkpoints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arpg::image::Image;

fn arpg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arpg")).args(args).output().expect("run arpg")
}

fn ok(args: &[&str]) -> String {
    let out = arpg(args);
    assert!(out.status.success(), "arpg {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A one-line `error: ...` and exit status 1.
fn fails(args: &[&str]) -> String {
    let out = arpg(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "arpg {args:?} should fail: {err}");
    assert!(err.starts_with("error: ") && err.trim_end().lines().count() == 1, "{err:?}");
    err
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("arpg-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn init(dir: &Path, arch: &str) -> PathBuf {
    let path = dir.join(format!("{arch}.arpg"));
    ok(&["init", "--out", s(&path), "--arch", arch, "--preset", "test", "--seed", "3"]);
    path
}

fn read_dir_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn generate_is_deterministic_per_seed_for_every_mode() {
    let dir = scratch("gen");
    for (arch, mode) in
        [("arpg", "arpg"), ("arpg-no-shared-kv", "arpg"), ("raster", "raster"), ("maskgit", "maskgit")]
    {
        let ckpt = init(&dir, arch);
        let run = |seed: &str, out: &str| {
            let out_dir = dir.join(format!("{arch}-{out}"));
            ok(&[
                "generate",
                "--checkpoint",
                s(&ckpt),
                "--mode",
                mode,
                "--class",
                "1",
                "--count",
                "3",
                "--steps",
                "4",
                "--seed",
                seed,
                "--out-dir",
                s(&out_dir),
            ]);
            read_dir_bytes(&out_dir)
        };
        let a = run("7", "a");
        let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["1-00.png", "1-01.png", "1-02.png", "grid.png"], "{arch}");
        assert_eq!(a, run("7", "b"), "{arch}: same seed, same bytes");
        assert_ne!(a, run("8", "c"), "{arch}: another seed, another image");
    }
}

#[test]
fn editing_commands_keep_what_they_must_and_grow_the_canvas() {
    let dir = scratch("edit");
    let ckpt = init(&dir, "arpg");
    let mut image = Image::new(16, 16, 1);
    image.pixels.iter_mut().enumerate().for_each(|(i, p)| *p = (i * 29 % 256) as u8);
    let mut mask = Image::new(16, 16, 1);
    mask.pixels[5 * 16 + 9] = 255; // one pixel: exactly token (1, 2) is regenerated
    let (img, msk) = (dir.join("in.png"), dir.join("mask.png"));
    std::fs::write(&img, image.to_png()).unwrap();
    std::fs::write(&msk, mask.to_png()).unwrap();

    let out = dir.join("inpainted.png");
    ok(&[
        "inpaint",
        "--checkpoint",
        s(&ckpt),
        "--image",
        s(&img),
        "--mask",
        s(&msk),
        "--class",
        "2",
        "--out",
        s(&out),
    ]);
    let got = Image::from_png(&std::fs::read(&out).unwrap(), 1).unwrap();
    for y in 0..16 {
        for x in 0..16 {
            if (y / 4, x / 4) != (1, 2) {
                assert_eq!(got.pixels[y * 16 + x], image.pixels[y * 16 + x], "pixel ({x}, {y})");
            }
        }
    }

    let wide = dir.join("wide.png");
    ok(&[
        "outpaint",
        "--checkpoint",
        s(&ckpt),
        "--image",
        s(&img),
        "--right",
        "4",
        "--class",
        "0",
        "--out",
        s(&wide),
    ]);
    let w = Image::from_png(&std::fs::read(&wide).unwrap(), 1).unwrap();
    assert_eq!((w.width, w.height), (32, 16));
    assert_eq!(w.crop(0, 0, 16, 16).pixels, image.pixels, "the source stays where it was");

    let big = dir.join("big.png");
    ok(&[
        "expand",
        "--checkpoint",
        s(&ckpt),
        "--image",
        s(&img),
        "--factor",
        "2",
        "--class",
        "0",
        "--out",
        s(&big),
    ]);
    let b = Image::from_png(&std::fs::read(&big).unwrap(), 1).unwrap();
    assert_eq!((b.width, b.height), (32, 32));
    let fresh = dir.join("fresh.png");
    ok(&["expand", "--checkpoint", s(&ckpt), "--class", "1", "--factor", "2", "--out", s(&fresh)]);

    // Nothing to do, said so.
    std::fs::write(&msk, Image::new(16, 16, 1).to_png()).unwrap();
    let err = fails(&[
        "inpaint",
        "--checkpoint",
        s(&ckpt),
        "--image",
        s(&img),
        "--mask",
        s(&msk),
        "--class",
        "2",
        "--out",
        s(&out),
    ]);
    assert!(err.contains("nothing to regenerate"), "{err}");
}

#[test]
fn bad_inputs_give_one_readable_line() {
    let dir = scratch("bad");
    let ckpt = init(&dir, "arpg");
    let bytes = std::fs::read(&ckpt).unwrap();
    let cut = dir.join("cut.arpg");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.join("o");
    fails(&["generate", "--checkpoint", s(&cut), "--out-dir", s(&out)]);
    fails(&["generate", "--checkpoint", s(&ckpt), "--mode", "raster", "--out-dir", s(&out)]);
    fails(&["generate", "--checkpoint", s(&ckpt), "--steps", "0", "--out-dir", s(&out)]);
    fails(&["generate", "--checkpoint", s(&ckpt), "--steps", "17", "--out-dir", s(&out)]);
    fails(&["generate", "--checkpoint", s(&ckpt), "--class", "10", "--out-dir", s(&out)]);
    fails(&["generate", "--checkpoint", s(&ckpt), "--temperature=-1", "--out-dir", s(&out)]);
    fails(&["generate", "--checkpoint", s(&ckpt), "--top-p", "1.5", "--out-dir", s(&out)]);
    fails(&["inspect", s(&dir.join("missing.arpg"))]);
    let not_png = dir.join("x.png");
    std::fs::write(&not_png, b"not a png").unwrap();
    fails(&["expand", "--checkpoint", s(&ckpt), "--image", s(&not_png), "--class", "0", "--out", s(&out)]);

    let q = dir.join("q.arpg");
    let report = ok(&["quantize", s(&ckpt), s(&q)]);
    assert!(report.contains("max") && report.contains("mean"), "{report}");
    assert!(std::fs::metadata(&q).unwrap().len() * 3 < bytes.len() as u64, "int8 is over 3x smaller");
    let info = ok(&["inspect", s(&q)]);
    assert!(info.contains("int8") && info.contains("sha256"), "{info}");
}

/// `arpg soak`: many batch-1 generations in one process; the RSS curve comes back as JSON and a
/// leak of more than `--max-growth-mib` after the warm-up fails the command.
#[test]
fn soak_keeps_the_resident_memory_flat() {
    let dir = scratch("soak");
    let ckpt = init(&dir, "arpg");
    let out = ok(&[
        "soak",
        "--checkpoint",
        s(&ckpt),
        "--n",
        "300",
        "--every",
        "100",
        "--warmup",
        "50",
        "--steps",
        "4",
        "--max-growth-mib",
        "8",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(report["n"], 300);
    assert_eq!(report["flat"], true, "{report}");
    let done: Vec<u64> =
        report["samples"].as_array().unwrap().iter().map(|s| s["done"].as_u64().unwrap()).collect();
    assert_eq!(done, [0, 50, 100, 200, 300]);
    assert!(report["growth_bytes"].as_i64().unwrap() <= 8 << 20, "{report}");
    assert!(report["rss_end_bytes"].as_u64().unwrap() > 0);

    let err = fails(&["soak", "--checkpoint", s(&ckpt), "--n", "10", "--warmup", "10"]);
    assert!(err.contains("--warmup (10) must be less than --n (10)"), "{err}");
}

/// `arpg inspect FILE | head -1`: a reader that goes away ends the process quietly (as for other
/// Unix tools), never with a panic message.
#[test]
fn a_closed_stdout_pipe_is_not_a_panic() {
    let dir = scratch("pipe");
    let ckpt = init(&dir, "arpg");
    let mut child = Command::new(env!("CARGO_BIN_EXE_arpg"))
        .args(["inspect", s(&ckpt)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before (or while) it writes
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_colour_checkpoint_generates_and_edits_rgb_pngs() {
    let dir = scratch("colour");
    let ckpt = dir.join("rgb.arpg");
    ok(&["init", "--out", s(&ckpt), "--preset", "test", "--image-channels", "3", "--seed", "3"]);
    assert!(ok(&["inspect", s(&ckpt)]).contains("3 image channels"));
    let out = dir.join("gen");
    ok(&[
        "generate",
        "--checkpoint",
        s(&ckpt),
        "--class",
        "1",
        "--count",
        "2",
        "--steps",
        "4",
        "--out-dir",
        s(&out),
    ]);
    let first = std::fs::read(out.join("1-00.png")).unwrap();
    assert_eq!(first[25], 2, "PNG colour type 2 (RGB)");
    let image = Image::from_png(&first, 3).unwrap();
    assert_eq!((image.width, image.height, image.channels), (16, 16, 3));

    // In-painting a colour PNG keeps the pixels of the tokens the mask leaves alone.
    let mut mask = Image::new(16, 16, 1);
    mask.set(1, 1, 255);
    let mask_path = dir.join("mask.png");
    std::fs::write(&mask_path, mask.to_png()).unwrap();
    let edited = dir.join("edited.png");
    let image_path = out.join("1-00.png");
    ok(&["inpaint", "--checkpoint", s(&ckpt), "--image", s(&image_path), "--mask", s(&mask_path)]
        .into_iter()
        .chain(["--class", "0", "--steps", "2", "--out", s(&edited)])
        .collect::<Vec<_>>());
    let edited = Image::from_png(&std::fs::read(&edited).unwrap(), 3).unwrap();
    assert_eq!(edited.crop(4, 0, 12, 16), image.crop(4, 0, 12, 16));
    assert_eq!(edited.crop(0, 4, 16, 12), image.crop(0, 4, 16, 12));

    // Out-painting a colour PNG keeps it where it was and fills the new cells in RGB.
    let wide = dir.join("wide.png");
    ok(&["outpaint", "--checkpoint", s(&ckpt), "--image", s(&image_path), "--right", "2"]
        .into_iter()
        .chain(["--class", "1", "--steps", "2", "--out", s(&wide)])
        .collect::<Vec<_>>());
    let wide = Image::from_png(&std::fs::read(&wide).unwrap(), 3).unwrap();
    assert_eq!((wide.width, wide.height, wide.channels), (24, 16, 3));
    assert_eq!(wide.crop(0, 0, 16, 16), image);

    // A multi-scale colour model expands an 8x8 colour PNG (half its frame) to its 16x16 frame.
    let multi = dir.join("multi.arpg");
    ok(&["init", "--out", s(&multi), "--preset", "test", "--image-channels", "3", "--multi-scale"]);
    assert!(ok(&["inspect", s(&multi)]).contains("multi-scale"));
    let half = dir.join("half.png");
    std::fs::write(&half, image.crop(4, 4, 8, 8).to_png()).unwrap();
    let big = dir.join("big.png");
    ok(&[
        "expand",
        "--checkpoint",
        s(&multi),
        "--image",
        s(&half),
        "--class",
        "2",
        "--steps",
        "2",
        "--out",
        s(&big),
    ]);
    let big = Image::from_png(&std::fs::read(&big).unwrap(), 3).unwrap();
    assert_eq!((big.width, big.height, big.channels), (16, 16, 3));
}

#[test]
fn the_emoji_sheet_without_the_packages_points_to_make_emoji_data() {
    let dir = scratch("emoji-missing");
    let err = fails(&["emoji-sheet", "--dir", s(&dir.join("nowhere")), "--out", s(&dir.join("x.png"))]);
    assert!(err.contains("make emoji-data") && err.contains("emoji.json"), "{err}");
    assert!(!dir.join("x.png").exists());
    let err = fails(&["emoji-sheet", "--per-class", "0"]);
    assert!(err.contains("--per-class"), "{err}");
}

/// Needs the packages of `make emoji-data`; skipped with a note without them.
#[test]
fn the_emoji_sheet_has_one_row_per_class_of_rgb_tiles() {
    let Some(packages) = arpg_tools::emoji::default_dir().filter(|d| d.is_dir()) else {
        eprintln!("note: no $HOME/.cache/arpg/emoji (run `make emoji-data`): skipping the emoji sheet");
        return;
    };
    let dir = scratch("emoji-sheet");
    let out = dir.join("sheet.png");
    let args = ["--out", s(&out), "--size", "16", "--per-class", "3", "--split", "test", "--dir"];
    let stdout = ok(&[&["emoji-sheet"], &args[..], &[s(&packages)]].concat());
    assert!(stdout.contains("loaded 5924 train + 651 test images at 16x16"), "{stdout}");
    assert!(stdout.contains("row 11: flags") && stdout.contains("75 test images"), "{stdout}");
    let sheet = Image::from_png(&std::fs::read(&out).unwrap(), 3).unwrap();
    // 3 tiles of 16 with 2 between; 12 rows.
    assert_eq!((sheet.width, sheet.height), (3 * 16 + 2 * 2, 12 * 16 + 11 * 2));
    // The corner of the first tile: the white background of a smiley.
    assert_eq!(sheet.get(0, 0), &[255, 255, 255]);
}

#[test]
fn recon_reports_the_tokenizers_error_and_code_use_on_a_split() {
    // The shipped grey model on Fashion-MNIST's test images: its card says MSE 0.0034.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/models/arpg-fmnist-int8.arpg");
    let out = ok(&["recon", "--checkpoint", s(&shipped), "--limit", "200"]);
    let field = |name: &str| -> f64 {
        let after = out.split(name).nth(1).unwrap_or_else(|| panic!("no {name} in {out:?}"));
        after.trim().split([' ', ',']).next().unwrap().parse().unwrap()
    };
    assert!(out.starts_with("200 test images of fashion-mnist: "), "{out}");
    assert!((0.002..0.005).contains(&field("MSE")), "{out}");
    assert!((field("PSNR") - 10.0 * (1.0 / field("MSE")).log10()).abs() < 0.01, "{out}");
    assert!(out.trim_end().ends_with("of 256 codes used"), "{out}");
    // An RGB checkpoint reads the emoji in colour (random weights: a poor reconstruction).
    if arpg_tools::emoji::default_dir().is_some_and(|d| d.is_dir()) {
        let dir = scratch("recon");
        let rgb = dir.join("rgb.arpg");
        ok(&["init", "--out", s(&rgb), "--preset", "test", "--image-channels", "3", "--seed", "2"]);
        let out =
            ok(&["recon", "--checkpoint", s(&rgb), "--data", "emoji", "--split", "test", "--limit", "5"]);
        assert!(out.starts_with("5 test images of emoji: MSE "), "{out}");
    }
}

#[test]
fn checkpoint_takes_the_id_of_one_of_the_apps_models() {
    // Run from the repository root, where www/models/manifest.json names the app's models.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = scratch("app-model");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_arpg")).current_dir(&root).args(args).output().unwrap()
    };
    let out = run(&[
        "generate",
        "--checkpoint",
        "emoji",
        "--class",
        "0",
        "--count",
        "1",
        "--steps",
        "2",
        "--out-dir",
        s(&dir),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.ends_with("grid.png"))
        .unwrap();
    let bytes = std::fs::read(&png).unwrap();
    let image = Image::from_png(&bytes, 3).unwrap();
    // The colour model: 64x64, and the PNG is RGB (IHDR colour type 2).
    assert_eq!((image.width, image.height, bytes[25]), (64, 64, 2));

    // It samples with the checkpoint's own defaults for the task (the colour model expands with
    // others), which the PNG's description records, named by id or by file; a flag wins.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("www/models/manifest.json")).unwrap()).unwrap();
    let emoji = manifest["models"].as_array().unwrap().iter().find(|m| m["id"] == "emoji").unwrap();
    let file = root.join("www/models").join(emoji["file"].as_str().unwrap());
    let defaults = arpg::checkpoint::inspect(&std::fs::read(&file).unwrap()).unwrap().sampling.unwrap();
    let said = |task| {
        use arpg::choice::Choice;
        let o = defaults.options(task);
        format!("cfg={} cfg_schedule={} temperature={}", o.cfg, o.cfg_schedule.name(), o.temperature)
    };
    use arpg::sampling::Task;
    assert_ne!(said(Task::Expand), said(Task::Inpaint), "the colour model expands as it in-paints");
    let described = |args: &[&str]| {
        let png = dir.join("described.png");
        let out = run(&[args, &["--class", "0", "--steps", "2", "--out", s(&png)]].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&std::fs::read(&png).unwrap()).into_owned()
    };
    let text = described(&["expand", "--checkpoint", "emoji"]);
    assert!(text.contains(&said(Task::Expand)), "no {:?} in the PNG", said(Task::Expand));
    for by in ["emoji", s(&file)] {
        let text = described(&["inpaint", "--checkpoint", by, "--image", s(&png), "--mask", s(&png)]);
        assert!(text.contains(&said(Task::Inpaint)), "no {:?} in the PNG", said(Task::Inpaint));
    }
    let text =
        described(&["inpaint", "--checkpoint", "emoji", "--image", s(&png), "--mask", s(&png), "--cfg", "2"]);
    let schedule = said(Task::Inpaint).split(' ').nth(1).unwrap().to_string();
    assert!(text.contains(&format!("cfg=2 {schedule} ")), "--cfg 2 lost");
    let out = run(&["generate", "--checkpoint", "nosuch", "--count", "1", "--out-dir", s(&dir)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no model of that name") && err.contains("fmnist, emoji"),
        "{err}"
    );
}
