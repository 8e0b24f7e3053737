//! The app's shipped models, written in checkpoint format v1, still load: the facts v1 kept in
//! its tensor table (the position table, the image's channels) come out as they were.

use arpg::checkpoint::{Checkpoint, DType, inspect};
use arpg::config::TokenizerConfig;
use arpg::engine::Engine;
use arpg::sampling::{CfgSchedule, SampleOptions};
use burn::tensor::Device;

fn shipped(file: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("www/models").join(file)).unwrap()
}

#[test]
fn the_shipped_version_1_files_load_with_their_facts() {
    for (file, channels, grid, multi_scale) in
        [("arpg-fmnist-int8.arpg", 1, 8, false), ("arpg-emoji-int8.arpg", 3, 16, true)]
    {
        let bytes = shipped(file);
        let info = inspect(&bytes).unwrap();
        assert_eq!((info.version, info.dtype), (1, DType::Int8), "{file}");
        let m = &info.model;
        assert!(m.pos_embed, "{file}: the position table");
        assert_eq!((m.grid_h, m.multi_scale), (grid, multi_scale), "{file}");
        assert!(matches!(&info.tokenizer, TokenizerConfig::Vq(t) if t.image_channels == channels), "{file}");
        let engine = Engine::from_bytes(&bytes, &Device::flex()).unwrap();
        assert_eq!(engine.image_channels(), channels);
        // Written again, a v1 file becomes v2 with the same configs and weights.
        let ckpt = Checkpoint::from_bytes(&bytes).unwrap();
        let v2 = Checkpoint::from_bytes(&ckpt.to_bytes(DType::F32, 0).unwrap()).unwrap();
        assert_eq!(v2, ckpt, "{file}");
    }
}

/// sha256 of each image's pixels (rows of `width * channels` bytes).
fn pixel_hashes(images: &[arpg::image::Image]) -> Vec<String> {
    images.iter().map(|i| arpg::checkpoint::sha256_hex(&i.pixels)).collect()
}

#[test]
fn the_shipped_models_draw_the_same_pixels_as_before_format_v2() {
    // Recorded with main at 60fd43e (before format v2): `arpg generate --checkpoint fmnist
    // --count 4 --seed 3` and the same with `emoji`, whose pages' sampling is CFG 4 constant.
    let cases = [
        (
            "arpg-fmnist-int8.arpg",
            SampleOptions { seed: 3, ..SampleOptions::default() },
            [
                "9948a176b18d0a0c57787bfc3ce2e9fc587ee24de5a417d455cd19dc15e63cb2",
                "fae78de00b67b64f2656ee0ee7c08da1d5baeee52f460ee5da54485715db46ae",
                "e3c08af422cbe09f6c6c1a4575e9670a393c1a5b93df5500ae03fbda79963b04",
                "422fcf1180033aa7aeba936c3c43990334039846956f0d2afc810f75ad020d80",
            ],
        ),
        (
            "arpg-emoji-int8.arpg",
            SampleOptions {
                seed: 3,
                cfg: 4.0,
                cfg_schedule: CfgSchedule::Constant,
                ..SampleOptions::default()
            },
            [
                "481d97ae51f88591d5330e32762ccdf12acc2b653988a07eb01e93322187b9df",
                "5a29022d1f08c0e9dab9665385c4033a8eb0f8f5f5e9fbcc6bdb251c13789cef",
                "10954d0b0575a03245ed1f1e62174c11de6551cf0def142b82c35670acacfb21",
                "90155e546ebe300d2180bb66ef1a92ee99b46c5d54fd61f6ad1233a7433c96c6",
            ],
        ),
    ];
    for (file, opts, expected) in cases {
        let engine = Engine::from_bytes(&shipped(file), &Device::flex()).unwrap();
        let images = pollster::block_on(engine.generate(&[0, 1, 2, 3], &opts, &mut |_| ())).unwrap();
        assert_eq!(pixel_hashes(&images), expected, "{file}");
    }
}
