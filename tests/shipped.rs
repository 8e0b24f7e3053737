//! The app's shipped models and the project's other checkpoints: the shipped files are format v2
//! with their sampling defaults (migrated from v1 without touching a weight: they draw the same
//! pixels as before), and the v1 files still load with the facts v1 kept in its tensor table.

use arpg::checkpoint::{CHECKSUM_LEN, Checkpoint, CheckpointError, DType, inspect};
use arpg::config::{Arch, TokenizerConfig};
use arpg::engine::Engine;
use arpg::sampling::{SampleDefaults, Task};
use burn::tensor::Device;
use sha2::Digest;

fn read(path: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn the_version_1_files_load_with_their_facts() {
    for (file, arch, channels) in [
        ("models/baselines/raster-emoji-int8.arpg", Arch::Raster, 3),
        ("models/baselines/maskgit-fmnist-int8.arpg", Arch::MaskGit, 1),
    ] {
        let bytes = read(file);
        let info = inspect(&bytes).unwrap();
        assert_eq!((info.version, info.dtype, info.model.arch), (1, DType::Int8, arch), "{file}");
        assert!(matches!(&info.tokenizer, TokenizerConfig::Vq(t) if t.image_channels == channels), "{file}");
        assert_eq!(info.sampling, None, "{file}");
        let engine = Engine::from_bytes(&bytes, &Device::flex()).unwrap();
        assert_eq!(engine.image_channels(), channels);
        // Written again, a v1 file becomes v2 with the same configs and weights.
        let ckpt = Checkpoint::from_bytes(&bytes).unwrap();
        let v2 = Checkpoint::from_bytes(&ckpt.to_bytes(DType::F32, 0).unwrap()).unwrap();
        assert_eq!(v2, ckpt, "{file}");
        // v1's binary fields can hold what v2's JSON cannot: a non-finite VQ beta is refused.
        for beta in [f32::NAN, f32::INFINITY] {
            let mut body = bytes[..bytes.len() - CHECKSUM_LEN].to_vec();
            body[77..81].copy_from_slice(&beta.to_le_bytes()); // v1's beta field
            body.extend_from_slice(&sha2::Sha256::digest(&body));
            let err = inspect(&body).unwrap_err();
            assert!(matches!(&err, CheckpointError::InvalidConfig(m) if m.contains("beta")), "{file}: {err}");
        }
    }
}

#[test]
fn the_shipped_files_are_version_2_with_the_sampling_defaults_they_were_written_with() {
    for (id, channels, grid, multi_scale) in [("fmnist", 1, 8, false), ("emoji", 3, 16, true)] {
        let info = inspect(&read(&format!("www/models/arpg-{id}-int8.arpg"))).unwrap();
        assert_eq!((info.version, info.dtype), (2, DType::Int8), "{id}");
        let m = &info.model;
        assert!(m.pos_embed, "{id}: the position table");
        assert_eq!((m.grid_h, m.multi_scale), (grid, multi_scale), "{id}");
        assert!(matches!(&info.tokenizer, TokenizerConfig::Vq(t) if t.image_channels == channels), "{id}");
        let written: SampleDefaults =
            serde_json::from_slice(&read(&format!("models/sampling/{id}.json"))).unwrap();
        assert_eq!(info.sampling, Some(written), "{id}");
    }
}

/// sha256 of each image's pixels (rows of `width * channels` bytes).
fn pixel_hashes(images: &[arpg::image::Image]) -> Vec<String> {
    images.iter().map(|i| arpg::checkpoint::sha256_hex(&i.pixels)).collect()
}

#[test]
fn the_shipped_models_draw_the_same_pixels_as_before_format_v2() {
    // Recorded with main at 60fd43e (format v1, the pages' sampling in the app's manifest):
    // `arpg generate --checkpoint fmnist --count 4 --seed 3` and the same with `emoji`. The
    // checkpoints' own defaults now give the same options.
    let cases = [
        (
            "fmnist",
            [
                "9948a176b18d0a0c57787bfc3ce2e9fc587ee24de5a417d455cd19dc15e63cb2",
                "fae78de00b67b64f2656ee0ee7c08da1d5baeee52f460ee5da54485715db46ae",
                "e3c08af422cbe09f6c6c1a4575e9670a393c1a5b93df5500ae03fbda79963b04",
                "422fcf1180033aa7aeba936c3c43990334039846956f0d2afc810f75ad020d80",
            ],
        ),
        (
            "emoji",
            [
                "481d97ae51f88591d5330e32762ccdf12acc2b653988a07eb01e93322187b9df",
                "5a29022d1f08c0e9dab9665385c4033a8eb0f8f5f5e9fbcc6bdb251c13789cef",
                "10954d0b0575a03245ed1f1e62174c11de6551cf0def142b82c35670acacfb21",
                "90155e546ebe300d2180bb66ef1a92ee99b46c5d54fd61f6ad1233a7433c96c6",
            ],
        ),
    ];
    for (id, expected) in cases {
        let engine =
            Engine::from_bytes(&read(&format!("www/models/arpg-{id}-int8.arpg")), &Device::flex()).unwrap();
        let opts = arpg::sampling::SampleOptions { seed: 3, ..engine.sample_defaults(Task::Generate) };
        let images = pollster::block_on(engine.generate(&[0, 1, 2, 3], &opts, &mut |_| ())).unwrap();
        assert_eq!(pixel_hashes(&images), expected, "{id}");
    }
}
