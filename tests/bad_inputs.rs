//! The bad-input matrix (issue 6), library side: checkpoints, sampling options, images and masks,
//! and the token budget. Every case is an `Err` whose message says what is wrong (checked by its
//! text), never a panic. `cargo test --release --test bad_inputs -- --nocapture` prints each
//! message as `[case] message`; docs/reliability.md quotes them.
//!
//! Truncation at every byte offset of a checkpoint is covered by the unit test
//! `checkpoint::tests::truncation_at_every_offset_is_an_error`; here each section is cut once.

mod common;

use arpg::checkpoint::{CHECKSUM_LEN, Checkpoint, DType, HEADER_LEN};
use arpg::config::Arch;
use arpg::decode::Plan;
use arpg::engine::{Engine, MAX_CELLS};
use arpg::image::{Image, MAX_PIXELS};
use arpg::sampling::SampleOptions;
use arpg::tasks::Sides;
use common::corrupt::{
    TENSOR_COUNT_AT, chunk, encode_png as encode, first_rank_at, header_only_png, patched, rechecksum,
    table_start, with_2_pow_40_values, with_header,
};
use common::{CLASSES, VOCAB, device, engine};
use pollster::block_on;

/// Prints `[case] message` and checks that the error's text contains every one of `needles`.
fn expect_err<T>(case: &str, result: Result<T, impl std::fmt::Display>, needles: &[&str]) -> String {
    let msg = match result {
        Ok(_) => panic!("{case}: expected an error, got Ok"),
        Err(e) => e.to_string(),
    };
    println!("[{case}] {msg}");
    assert!(!msg.contains('\n'), "{case}: the message is one line: {msg:?}");
    for needle in needles {
        assert!(msg.contains(needle), "{case}: {msg:?} does not say {needle:?}");
    }
    msg
}

// ---------------------------------------------------------------- checkpoints

/// The seeded test engine as an f32 checkpoint file.
fn good_checkpoint() -> (Checkpoint, Vec<u8>) {
    let ckpt = engine(Arch::Arpg).to_checkpoint();
    let bytes = ckpt.to_bytes(DType::F32, 0).unwrap();
    (ckpt, bytes)
}

fn load(bytes: &[u8]) -> Result<Engine, arpg::Error> {
    Engine::from_bytes(bytes, &device())
}

#[test]
fn checkpoint_empty_and_truncated_files() {
    let (_, bytes) = good_checkpoint();
    let min = (HEADER_LEN + CHECKSUM_LEN).to_string();
    expect_err("checkpoint: empty file", load(&[]), &["too short: 0 bytes", &min]);
    // Any cut inside the fixed header is "too short".
    expect_err("checkpoint: truncated in the header (magic)", load(&bytes[..5]), &["too short: 5 bytes"]);
    expect_err("checkpoint: truncated in the header (sizes)", load(&bytes[..20]), &["too short: 20 bytes"]);
    // Cut further in, the checksum (the last 32 bytes) no longer matches what precedes it.
    let table = table_start(&bytes);
    let cut_table = &bytes[..table + 60];
    expect_err("checkpoint: truncated in the tensor table", load(cut_table), &["checksum", "truncated"]);
    let cut_data = &bytes[..bytes.len() - CHECKSUM_LEN - 100];
    expect_err("checkpoint: truncated in the tensor data", load(cut_data), &["checksum", "truncated"]);

    // The same cuts with a valid checksum (a writer that stopped early, or an edited file): the
    // parser names the section.
    let body = |len: usize| rechecksum(bytes[..len].to_vec());
    expect_err(
        "checkpoint: truncated in the metadata, checksum valid",
        load(&body(HEADER_LEN + 3)),
        &["truncated in the metadata"],
    );
    expect_err(
        "checkpoint: truncated in the tensor table, checksum valid",
        load(&body(table + 60)),
        &["truncated in the tensor table"],
    );
    expect_err(
        "checkpoint: truncated in the tensor data, checksum valid",
        load(&body(bytes.len() - CHECKSUM_LEN - 100)),
        &["tensors declare", "payload bytes but only"],
    );
}

#[test]
fn checkpoint_wrong_magic_future_version_bad_checksum() {
    let (_, bytes) = good_checkpoint();
    let mut magic = bytes.clone();
    magic[..8].copy_from_slice(b"NOTACKPT");
    expect_err("checkpoint: wrong magic", load(&magic), &["not an ARPG checkpoint", "magic"]);
    // A PNG (or any other file) handed over as a checkpoint.
    let png = Image::filled(64, 64, 1, 7).to_png();
    let mut png_file = png.clone();
    png_file.resize(png.len().max(HEADER_LEN + CHECKSUM_LEN), 0);
    expect_err("checkpoint: a PNG file", load(&png_file), &["not an ARPG checkpoint"]);

    // The version is read before the checksum, so the stored checksum does not matter.
    let mut future = bytes.clone();
    future[8..10].copy_from_slice(&3u16.to_le_bytes());
    expect_err(
        "checkpoint: future version",
        load(&future),
        &["unsupported checkpoint version 3", "version 2"],
    );

    let mut flipped = bytes.clone();
    let at = bytes.len() - CHECKSUM_LEN - 7;
    flipped[at] ^= 0x40;
    expect_err("checkpoint: one flipped payload bit", load(&flipped), &["checksum mismatch"]);
    let mut bad_sum = bytes;
    *bad_sum.last_mut().unwrap() ^= 1;
    expect_err("checkpoint: wrong stored checksum", load(&bad_sum), &["checksum mismatch"]);
}

#[test]
fn checkpoint_shape_mismatch_names_the_tensor() {
    let (ckpt, _) = good_checkpoint();
    // Same number of values, transposed.
    let mut transposed = ckpt.clone();
    let head = transposed.tensors.iter_mut().find(|t| t.name == "model.head.weight").unwrap();
    let (rows, cols) = (head.shape[0], head.shape[1]);
    head.shape = vec![cols, rows];
    expect_err(
        "checkpoint: tensor shape disagrees with the config",
        load(&transposed.to_bytes(DType::F32, 0).unwrap()),
        &["tensor 'model.head.weight'", &format!("shape [{cols}, {rows}], expected [{rows}, {cols}]")],
    );
    // A position table of neither one grid's rows nor two grids' rows.
    let mut rows = ckpt.clone();
    let pos = rows.tensors.iter_mut().find(|t| t.name == "model.pos.weight").unwrap();
    let (n, d) = (pos.shape[0], pos.shape[1]);
    pos.shape[0] = n + 1;
    pos.data.extend(vec![0.0; d]);
    expect_err(
        "checkpoint: a position table of another grid",
        load(&rows.to_bytes(DType::F32, 0).unwrap()),
        &["tensor 'model.pos.weight'", &format!("shape [{}, {d}], expected [{n}, {d}]", n + 1)],
    );
    // The config disagrees with every tensor (d_model doubled).
    let mut wider = ckpt;
    wider.model.d_model *= 2;
    expect_err(
        "checkpoint: config d_model disagrees with the tensors",
        load(&wider.to_bytes(DType::F32, 0).unwrap()),
        &["tensor 'model.", "has shape", &format!("{}]", wider.model.d_model)],
    );
}

#[test]
fn checkpoint_nan_and_inf_weights_are_refused_naming_the_tensor() {
    let (ckpt, bytes) = good_checkpoint();
    let with = |name: &str, value: f32| {
        let mut c = ckpt.clone();
        c.tensors.iter_mut().find(|t| t.name == name).unwrap().data[3] = value;
        c
    };
    // The writer refuses them, in f32 and in int8 (where an Inf would otherwise zero its group).
    let nan = with("model.head.weight", f32::NAN).to_bytes(DType::F32, 0);
    expect_err(
        "checkpoint: NaN weight (f32)",
        nan,
        &["tensor 'model.head.weight' holds a NaN or infinite value"],
    );
    let inf = with("tokenizer.codebook", f32::NEG_INFINITY).to_bytes(DType::F32, 0);
    expect_err("checkpoint: -Inf weight (f32)", inf, &["tensor 'tokenizer.codebook' holds a NaN"]);
    let int8 = with("model.embed.weight", f32::INFINITY).to_bytes(DType::Int8, 64);
    expect_err("checkpoint: Inf weight (int8)", int8, &["tensor 'model.embed.weight' holds a NaN"]);
    // The loader refuses one written into a valid file (another writer), checksum recomputed.
    let last_value = bytes.len() - CHECKSUM_LEN - 4;
    let patched_nan = patched(&bytes, last_value, &f32::NAN.to_le_bytes());
    let last = &ckpt.tensors.last().unwrap().name;
    expect_err(
        "checkpoint: NaN in the payload",
        load(&patched_nan),
        &[&format!("tensor '{last}' holds a NaN")],
    );
}

#[test]
fn checkpoint_absurd_sizes_fail_before_allocating() {
    let (_, bytes) = good_checkpoint();
    let rank_at = first_rank_at(&bytes);
    // The first tensor claims 2^20 x 2^20 = 2^40 values (4 TiB of f32).
    let huge = with_2_pow_40_values(&bytes);
    let msg = expect_err("checkpoint: a tensor of 2^40 values", load(&huge), &["payload bytes but only"]);
    let declared: u64 = msg.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(declared > 4 << 40, "{msg}");
    // Rank 4 with every dim u32::MAX: the size itself overflows.
    let mut rank4 = bytes[..rank_at].to_vec();
    rank4.push(4);
    rank4.extend_from_slice(&[u32::MAX.to_le_bytes(); 4].concat());
    rank4.extend_from_slice(&bytes[rank_at + 9..bytes.len() - CHECKSUM_LEN]);
    expect_err("checkpoint: a tensor size that overflows", load(&rechecksum(rank4)), &["overflows"]);
    // Four billion tensors in the table.
    let count = patched(&bytes, TENSOR_COUNT_AT, &u32::MAX.to_le_bytes());
    expect_err("checkpoint: 2^32-1 tensors declared", load(&count), &["tensor table"]);

    // Config fields the tensors do not back. Modules are built from the config before the
    // tensors are imported; these must be refused before anything of that size is allocated.
    let max = u32::MAX;
    let codebook = with_header(&bytes, |h| {
        h["tokenizer"]["vq"]["codebook_size"] = max.into();
        h["tokenizer"]["vq"]["code_dim"] = max.into();
    });
    expect_err(
        "checkpoint: config codebook of (2^32-1)^2 values",
        load(&codebook),
        &["tensor 'tokenizer.codebook' has shape [16, 4], expected [4294967295, 4294967295]"],
    );
    let layers = with_header(&bytes, |h| h["model"]["n_layers"] = 100_000.into());
    expect_err(
        "checkpoint: config of 100000 layers",
        load(&layers),
        &["100000 layers, but the checkpoint holds only"],
    );
    let grid = with_header(&bytes, |h| {
        h["model"]["grid_h"] = 65_536.into();
        h["model"]["grid_w"] = 65_536.into();
    });
    expect_err(
        "checkpoint: config grid of 65536x65536 tokens",
        load(&grid),
        &["65536x65536 training grid exceeds the budget of 1024 tokens"],
    );
    let vocab = with_header(&bytes, |h| h["model"]["vocab_size"] = max.into());
    expect_err("checkpoint: config vocabulary of 2^32-1 codes", load(&vocab), &["tensor 'model.", "4294967"]);
}

// ---------------------------------------------------------------- sampling options

fn opts(seed: u64) -> SampleOptions {
    SampleOptions { steps: 4, seed, ..SampleOptions::default() }
}

fn tokens(e: &Engine, o: &SampleOptions) -> Vec<u32> {
    let plan = Plan::full(4, 4);
    block_on(e.sample(&[1], &plan, o, &mut |_| {})).unwrap().tokens.remove(0)
}

#[test]
fn bad_sampling_options_are_refused() {
    let e = engine(Arch::Arpg);
    let t = (e.model_config().grid_h * e.model_config().grid_w).to_string();
    let generate = |o: SampleOptions, class: usize| block_on(e.generate(&[class], &o, &mut |_| {}));
    let base = opts(1);
    let steps = |steps| SampleOptions { steps, ..base.clone() };
    expect_err("options: steps 0", generate(steps(0), 0), &["steps must be between 1 and", &t, "got 0"]);
    expect_err("options: steps T+1", generate(steps(17), 0), &["steps must be between 1 and 16, got 17"]);
    expect_err(
        "options: steps usize::MAX",
        generate(steps(usize::MAX), 0),
        &["steps must be between 1 and 16"],
    );
    let n = CLASSES.to_string();
    expect_err("options: class out of range", generate(base.clone(), CLASSES), &["class 3 out of range", &n]);
    expect_err("options: class usize::MAX", generate(base.clone(), usize::MAX), &["out of range"]);
    for (case, cfg, shown) in [
        ("options: cfg negative", -1.0, "got -1"),
        ("options: cfg NaN", f32::NAN, "got NaN"),
        ("options: cfg +Inf", f32::INFINITY, "got inf"),
    ] {
        let o = SampleOptions { cfg, ..base.clone() };
        expect_err(case, generate(o, 0), &["cfg must be a finite number >= 0", shown]);
    }
    for (case, temperature, shown) in [
        ("options: temperature negative", -0.5, "got -0.5"),
        ("options: temperature NaN", f32::NAN, "got NaN"),
        ("options: temperature +Inf", f32::INFINITY, "got inf"),
    ] {
        let o = SampleOptions { temperature, ..base.clone() };
        expect_err(case, generate(o, 0), &["temperature must be >= 0", shown]);
    }
    for (case, top_p, shown) in [
        ("options: top_p 0", 0.0, "got 0"),
        ("options: top_p above 1", 1.5, "got 1.5"),
        ("options: top_p NaN", f32::NAN, "got NaN"),
        ("options: top_p negative", -0.1, "got -0.1"),
    ] {
        let o = SampleOptions { top_p, ..base.clone() };
        expect_err(case, generate(o, 0), &["top_p must be in (0, 1]", shown]);
    }
    // The same checks guard in-painting, out-painting and expansion (one shared validation).
    let img = Image::filled(16, 16, 1, 90);
    let o = steps(0);
    expect_err(
        "options: steps 0 (inpaint)",
        block_on(e.inpaint(&img, &Image::filled(16, 16, 1, 255), 0, &o, &mut |_| {})),
        &["steps must be"],
    );
    let sides = Sides { right: 1, ..Sides::default() };
    expect_err(
        "options: class out of range (outpaint)",
        block_on(e.outpaint(&img, sides, CLASSES, &base, &mut |_| {})),
        &["out of range"],
    );
}

#[test]
fn top_k_beyond_the_codebook_is_clamped_and_seeds_use_all_64_bits() {
    let e = engine(Arch::Arpg);
    let off = tokens(&e, &opts(5));
    // top_k = 0 is off; top_k >= the codebook size keeps every code, the same as off.
    for k in [VOCAB, VOCAB + 1, 1 << 40, usize::MAX] {
        assert_eq!(tokens(&e, &SampleOptions { top_k: k, ..opts(5) }), off, "top_k {k}");
    }
    // top_k = 1 is greedy: it does change the draw (so the equality above means something).
    let greedy = tokens(&e, &SampleOptions { top_k: 1, ..opts(5) });
    assert_ne!(greedy, off, "greedy decoding drew the same tokens as full sampling");
    println!("[options: top_k 0, {VOCAB}, {}, 2^40, usize::MAX] accepted, same tokens: {off:?}", VOCAB + 1);

    // Native seeds are u64: 2^53 and 2^53 + 1 (equal once rounded to an f64) are different seeds,
    // and u64::MAX works and is deterministic.
    let a = tokens(&e, &opts(1 << 53));
    let b = tokens(&e, &opts((1 << 53) + 1));
    assert_ne!(a, b, "seeds 2^53 and 2^53 + 1 drew the same tokens");
    let max = tokens(&e, &opts(u64::MAX));
    assert_eq!(max, tokens(&e, &opts(u64::MAX)));
    println!("[options: seed 2^53, 2^53+1, u64::MAX] accepted; 2^53 and 2^53+1 differ");
}

// ---------------------------------------------------------------- images and masks

/// 16x16, every grey level 0..=255 once.
fn ramp() -> Image {
    Image::from_raw(16, 16, 1, (0..=255u8).collect()).unwrap()
}

#[test]
fn every_png_variant_decodes_to_the_expected_grey() {
    use png::BitDepth::{Eight, One, Sixteen};
    use png::ColorType::{Grayscale, GrayscaleAlpha, Indexed, Rgb, Rgba};
    let want = ramp();
    let v = &want.pixels;
    // 16-bit samples: the low byte 0xAB must be dropped.
    let wide = |n: usize, alpha: bool| -> Vec<u8> {
        v.iter()
            .flat_map(|&p| {
                let mut px: Vec<u8> = (0..n).flat_map(|_| [p, 0xab]).collect();
                if alpha {
                    px.extend([0xff, 0xff]);
                }
                px
            })
            .collect()
    };
    let narrow = |n: usize, alpha: bool| -> Vec<u8> {
        v.iter().flat_map(|&p| std::iter::repeat_n(p, n).chain(alpha.then_some(255))).collect()
    };
    let variants: [(&str, Vec<u8>); 9] = [
        ("grey 8-bit", encode(16, 16, Grayscale, Eight, v, false)),
        ("grey+alpha 8-bit", encode(16, 16, GrayscaleAlpha, Eight, &narrow(1, true), false)),
        ("RGB 8-bit", encode(16, 16, Rgb, Eight, &narrow(3, false), false)),
        ("RGBA 8-bit", encode(16, 16, Rgba, Eight, &narrow(3, true), false)),
        ("grey 16-bit", encode(16, 16, Grayscale, Sixteen, &wide(1, false), false)),
        ("grey+alpha 16-bit", encode(16, 16, GrayscaleAlpha, Sixteen, &wide(1, true), false)),
        ("RGB 16-bit", encode(16, 16, Rgb, Sixteen, &wide(3, false), false)),
        ("RGBA 16-bit", encode(16, 16, Rgba, Sixteen, &wide(3, true), false)),
        ("palette 8-bit", encode(16, 16, Indexed, Eight, v, true)),
    ];
    for (name, bytes) in &variants {
        let got = Image::from_png(bytes, 1).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
        println!("[image: {name}] accepted, decodes to the 16x16 grey ramp exactly");
    }
    // Conversion, not just pass-through: luminance, alpha over black, 1-bit expansion.
    let colour = encode(3, 1, Rgb, Eight, &[255, 0, 0, 0, 255, 0, 0, 0, 255], false);
    assert_eq!(Image::from_png(&colour, 1).unwrap().pixels, [76, 149, 29]);
    let half = encode(2, 1, GrayscaleAlpha, Eight, &[255, 128, 200, 0], false);
    assert_eq!(Image::from_png(&half, 1).unwrap().pixels, [128, 0]);
    let bits = encode(4, 1, Grayscale, One, &[0b1010_0000], false);
    assert_eq!(Image::from_png(&bits, 1).unwrap().pixels, [255, 0, 255, 0]);

    // And a converted image is accepted by the engine like any other.
    let e = engine(Arch::Arpg);
    let rgba = Image::from_png(&variants[3].1, 1).unwrap();
    let mut mask = Image::new(16, 16, 1);
    mask.set(5, 5, 255);
    let out = block_on(e.inpaint(&rgba, &mask, 0, &opts(2), &mut |_| {})).unwrap();
    assert_eq!((out.width, out.height), (16, 16));
}

#[test]
fn bad_images_are_refused() {
    expect_err("image: not a PNG", Image::from_png(b"GIF89a not a png at all", 1), &["not a PNG file"]);
    expect_err("image: empty file", Image::from_png(&[], 1), &["not a PNG file"]);
    let good = ramp().to_png();
    expect_err("image: truncated PNG", Image::from_png(&good[..good.len() - 20], 1), &["cannot decode PNG"]);
    let max = MAX_PIXELS.to_string();
    expect_err(
        "image: PNG declaring 10000x10000",
        Image::from_png(&header_only_png(10_000, 10_000), 1),
        &["image is 10000x10000, more than the limit of", &max, "pixels"],
    );
    expect_err(
        "image: PNG declaring 2^31 x 2^31",
        Image::from_png(&header_only_png(1 << 31, 1 << 31), 1),
        &["more than the limit"],
    );
    expect_err(
        "image: PNG declaring 0x16",
        Image::from_png(&header_only_png(0, 16), 1),
        &["cannot decode PNG", "dimensions"],
    );
    // The same broken data at a small size fails in decoding: the refusals above came from the header.
    expect_err("image: broken data, small header", Image::from_png(&header_only_png(8, 8), 1), &["decode"]);
    // Exactly at the limit passes the size check (and then fails to decode); one pixel row more does not.
    expect_err("image: 4096x4096, the limit", Image::from_png(&header_only_png(4096, 4096), 1), &["decode"]);
    expect_err(
        "image: 4097x4096",
        Image::from_png(&header_only_png(4097, 4096), 1),
        &["more than the limit"],
    );
    // A palette with a stray byte (found by the fuzz target `image`: png 0.18.1 panics expanding it).
    let good = encode(2, 1, png::ColorType::Indexed, png::BitDepth::Eight, &[0, 255], true);
    assert_eq!(Image::from_png(&good, 1).unwrap().pixels, [0, 255]);
    let at = good.windows(4).position(|w| w == b"PLTE").unwrap() - 4;
    let stray = [(0..255u8).flat_map(|v| [v, v, v]).collect(), vec![7]].concat(); // 766 bytes
    let bad = [&good[..at], &chunk(b"PLTE", &stray), &good[at + 12 + 768..]].concat();
    expect_err(
        "image: a palette of 766 bytes",
        Image::from_png(&bad, 1),
        &["PLTE chunk of 766 bytes, not a whole number of RGB entries"],
    );

    let e = engine(Arch::Arpg);
    let o = opts(3);
    let white = |w, h| Image::filled(w, h, 1, 255);
    let img = Image::filled(16, 16, 1, 80);
    expect_err(
        "image: empty (0x0) image",
        block_on(e.inpaint(&Image::new(0, 0, 1), &Image::new(0, 0, 1), 0, &o, &mut |_| {})),
        &["the image is empty"],
    );
    let cells = MAX_CELLS.to_string();
    expect_err(
        "image: larger than the token budget (200x200)",
        block_on(e.inpaint(&white(200, 200), &white(200, 200), 0, &o, &mut |_| {})),
        &["a 200x200 image needs more than the budget of", &cells, "tokens"],
    );
    expect_err(
        "mask: another size than the image",
        block_on(e.inpaint(&img, &white(8, 8), 0, &o, &mut |_| {})),
        &["the mask is 8x8 but the image is 16x16"],
    );
    expect_err(
        "mask: empty (all black)",
        block_on(e.inpaint(&img, &Image::new(16, 16, 1), 0, &o, &mut |_| {})),
        &["nothing to regenerate"],
    );
    // A full mask regenerates everything: plain generation of that class.
    let out = block_on(e.inpaint(&img, &white(16, 16), 1, &o, &mut |_| {})).unwrap();
    assert_eq!((out.width, out.height), (16, 16));
    println!("[mask: full (all white)] accepted: every token regenerated, a 16x16 image");
}

// ---------------------------------------------------------------- the token budget

#[test]
fn outpainting_and_expansion_beyond_the_budget_are_refused() {
    let e = engine(Arch::Arpg);
    let o = opts(4);
    let img = Image::filled(16, 16, 1, 120);
    let cells = format!("budget of {MAX_CELLS} tokens");
    let out = |sides: Sides| block_on(e.outpaint(&img, sides, 0, &o, &mut |_| {}));
    expect_err(
        "outpaint: 1000 tokens to the right",
        out(Sides { right: 1000, ..Sides::default() }),
        &["out-painting: a 4x1004 token grid exceeds the", &cells],
    );
    expect_err(
        "outpaint: 15 tokens on every side",
        out(Sides { left: 15, right: 15, top: 15, bottom: 15 }),
        &["out-painting: a 34x34 token grid", &cells],
    );
    expect_err(
        "outpaint: usize::MAX tokens to the right",
        out(Sides { right: usize::MAX, ..Sides::default() }),
        &["out-painting: the token grid's size overflows the", &cells],
    );
    expect_err(
        "outpaint: sides that sum past usize::MAX",
        out(Sides { left: 1 << 63, right: 1 << 63, ..Sides::default() }),
        &["overflows", &cells],
    );
    expect_err("outpaint: no side", out(Sides::default()), &["at least one side"]);
    // Exactly the budget is allowed: 4x4 -> 32x32 = 1024 tokens.
    let fits = out(Sides { left: 14, right: 14, top: 14, bottom: 14 }).unwrap();
    assert_eq!((fits.width, fits.height), (128, 128));
    println!("[outpaint: 14 tokens on every side, 32x32 = {MAX_CELLS} tokens] accepted, a 128x128 image");

    let exp = |image: Option<&Image>, factor| block_on(e.expand(image, factor, 0, &o, &mut |_| {}));
    let big = Image::filled(128, 128, 1, 60); // 32x32 tokens: the whole budget already
    expect_err("expand: 128x128 image x2", exp(Some(&big), 2), &["expansion: a 64x64 token grid", &cells]);
    let mid = Image::filled(64, 64, 1, 60);
    expect_err("expand: 64x64 image x3", exp(Some(&mid), 3), &["expansion: a 48x48 token grid", &cells]);
    for factor in [0, 1, 5, usize::MAX] {
        expect_err(
            &format!("expand: factor {factor}"),
            exp(Some(&img), factor),
            &["expansion factor must be 2, 3 or 4", &format!("got {factor}")],
        );
    }
}
