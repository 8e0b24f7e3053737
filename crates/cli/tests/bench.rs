//! `arpg bench --json` on a tiny test checkpoint: the report has every field, with positive,
//! finite values. Timings are never asserted (benchmarks are not timed tests).

use std::process::Command;

use arpg::kv_cache::KvCache;
use arpg::sampling::SampleOptions;
use serde_json::Value;

#[test]
fn bench_json_reports_every_field() {
    let dir = std::env::temp_dir().join(format!("arpg-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("arpg.arpg");
    let ckpt = ckpt.to_str().unwrap();
    let arpg = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_arpg")).args(args).output().unwrap();
    let init = arpg(&["init", "--out", ckpt, "--arch", "arpg", "--preset", "test", "--seed", "3"]);
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));

    let out = arpg(&[
        "bench",
        "--checkpoint",
        ckpt,
        "--json",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--steps",
        "4,99",
        "--batch",
        "1",
        "--matmul-n",
        "64",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.trim().lines().count(), 1, "one JSON object: {stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();

    let positive = |v: &Value, what: &str| {
        let x = v.as_f64().unwrap_or_else(|| panic!("{what} is not a number: {v}"));
        assert!(x.is_finite() && x > 0.0, "{what} = {x}");
        x
    };
    for field in [
        "speedup_vs_raster",
        "speedup_vs_maskgit",
        "kv_bytes_shared",
        "kv_bytes_per_layer",
        "kv_bytes_raster",
        "kv_ratio",
        "peak_fraction",
        "matmul_gflops",
    ] {
        positive(&report[field], field);
    }
    // The test preset: d_model 32, 2 + 2 layers, 4x4 tokens; f32 keys and values of 16 slots.
    assert_eq!(report["kv_bytes_shared"], 3 * 2 * 16 * 32 * 4);
    assert_eq!(report["kv_bytes_per_layer"], 4 * 2 * 16 * 32 * 4);

    let rows = report["rows"].as_array().unwrap();
    let methods: Vec<(&str, u64)> =
        rows.iter().map(|r| (r["method"].as_str().unwrap(), r["steps"].as_u64().unwrap())).collect();
    // Step 99 is beyond the 16 tokens: skipped (and said so); 8 is the comparison step count.
    assert_eq!(
        methods,
        [("arpg", 4), ("arpg", 8), ("maskgit", 4), ("maskgit", 8), ("arpg-no-shared-kv", 8), ("raster", 16)],
        "{report}"
    );
    assert!(report["notes"].to_string().contains("[99] skipped"), "{}", report["notes"]);
    for r in rows {
        assert_eq!((r["batch"].as_u64(), r["runs"].as_u64()), (Some(1), Some(1)), "{r}");
        for field in ["ms_per_image", "images_per_s", "flops_per_image", "gflops", "peak_fraction"] {
            positive(&r[field], field);
        }
        if r["method"] != "maskgit" {
            positive(&r["kv_bytes"], "kv_bytes"); // MaskGIT keeps no cache
        }
    }
    let kv =
        |m: &str| rows.iter().find(|r| r["method"] == m && r["steps"] == 8).unwrap()["kv_bytes"].as_u64();
    assert!(kv("arpg") < kv("arpg-no-shared-kv"), "one shared K/V instead of one per pass-2 layer");
    // Measured caches match the formula: CFG doubles the rows; the last step's tokens are never fed.
    let last = SampleOptions::default().schedule.step_sizes(16, 8)[7];
    let expected = |layers, memory| KvCache::expected_bytes(layers, memory, 2, 1 + 16 - last, 32) as u64;
    assert_eq!(kv("arpg"), Some(expected(2, 1)));
    assert_eq!(kv("arpg-no-shared-kv"), Some(expected(2, 2)));
    // The baselines run the checkpoint's own weights, renamed into their layout.
    for w in report["weights"].as_array().unwrap() {
        let source = w["source"].as_str().unwrap();
        assert!(source == "checkpoint" || source == "derived from the arpg checkpoint", "{w}");
        positive(&w["params"], "params");
    }
}

#[test]
fn skipped_baselines_are_neither_built_nor_measured() {
    let dir = std::env::temp_dir().join(format!("arpg-bench-skip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("arpg.arpg");
    let ckpt = ckpt.to_str().unwrap();
    let arpg = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_arpg")).args(args).output().unwrap();
    assert!(arpg(&["init", "--out", ckpt, "--preset", "test", "--seed", "3"]).status.success());
    let bench = |skip: &str| {
        let args = ["bench", "--checkpoint", ckpt, "--json", "--runs", "1", "--warmup", "0", "--steps", "4"];
        arpg(&[&args[..], &["--batch", "1", "--matmul-n", "64", "--skip", skip]].concat())
    };
    let out = bench("maskgit,arpg-no-shared-kv");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let methods: Vec<&str> =
        report["rows"].as_array().unwrap().iter().map(|r| r["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["arpg", "arpg", "raster"], "{report}");
    let weights: Vec<&str> =
        report["weights"].as_array().unwrap().iter().map(|w| w["method"].as_str().unwrap()).collect();
    assert_eq!(weights, ["arpg", "raster"]);
    assert!(report["speedup_vs_raster"].as_f64().is_some_and(|x| x > 0.0), "{report}");
    assert!(report["speedup_vs_maskgit"].is_null(), "{report}");

    let out = bench("arpg");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("always measures ARPG"), "{err}");
}
