//! Colour models: a tokenizer with 3 image channels, through the checkpoint, the engine and PNG.

mod common;

use arpg::checkpoint::{Checkpoint, DType, inspect};
use arpg::engine::Engine;
use arpg::image::Image;
use arpg::sampling::SampleOptions;
use common::{colour_engine, device, engine, multi_scale_engine};
use pollster::block_on;

fn opts() -> SampleOptions {
    SampleOptions { steps: 4, seed: 5, ..SampleOptions::default() }
}

/// A 16x16 RGB test picture: a different colour in each quadrant.
fn quadrants() -> Image {
    let mut img = Image::new(16, 16, 3);
    for (i, p) in img.pixels.chunks_exact_mut(3).enumerate() {
        let (x, y) = (i % 16, i / 16);
        p.copy_from_slice(&[if x < 8 { 220 } else { 30 }, if y < 8 { 200 } else { 40 }, (x * 16) as u8]);
    }
    img
}

#[test]
fn a_checkpoint_records_its_image_channels() {
    let colour = colour_engine().to_checkpoint();
    for dtype in [DType::F32, DType::Int8] {
        let bytes = colour.to_bytes(dtype, 64).unwrap();
        assert_eq!(inspect(&bytes).unwrap().tokenizer.image_channels(), 3);
        let engine = Engine::from_bytes(&bytes, &device()).unwrap();
        assert_eq!(engine.image_channels(), 3);
    }
    let grey = engine(arpg::config::Arch::Arpg).to_checkpoint();
    let back = Checkpoint::from_bytes(&grey.to_bytes(DType::F32, 0).unwrap()).unwrap();
    assert_eq!(back.tokenizer.image_channels(), 1);
    assert_eq!(back, grey);
}

#[test]
fn a_colour_model_generates_rgb_images_that_survive_png() {
    let engine = colour_engine();
    let images = block_on(engine.generate(&[0, 2], &opts(), &mut |_| {})).unwrap();
    assert_eq!(images.len(), 2);
    for img in &images {
        assert_eq!((img.width, img.height, img.channels, img.pixels.len()), (16, 16, 3, 16 * 16 * 3));
        assert_eq!(&Image::from_png(&img.to_png(), 3).unwrap(), img);
    }
    let channels_differ = images[0].pixels.chunks(3).any(|p| p[0] != p[1] || p[1] != p[2]);
    assert!(channels_differ, "three channels that are always equal are grey");
}

#[test]
fn colour_in_painting_keeps_every_unmasked_pixel_exactly() {
    let engine = colour_engine();
    let image = quadrants();
    let mut mask = Image::new(16, 16, 1);
    for y in 4..8 {
        for x in 8..12 {
            mask.set(x, y, 255); // token (1, 2)
        }
    }
    let out = block_on(engine.inpaint(&image, &mask, 1, &opts(), &mut |_| {})).unwrap();
    assert_eq!(out.channels, 3);
    for (i, (a, b)) in out.pixels.chunks(3).zip(image.pixels.chunks(3)).enumerate() {
        let (x, y) = (i % 16, i / 16);
        if !((4..8).contains(&y) && (8..12).contains(&x)) {
            assert_eq!(a, b, "kept pixel ({x}, {y}) changed");
        }
    }
}

#[test]
fn a_grey_image_given_to_a_colour_model_is_read_as_rgb() {
    let engine = colour_engine();
    let grey = quadrants().to_channels(1).unwrap();
    let out = block_on(engine.outpaint(
        &grey,
        arpg::tasks::Sides { right: 1, ..Default::default() },
        0,
        &opts(),
        &mut |_| {},
    ))
    .unwrap();
    assert_eq!((out.width, out.height, out.channels), (20, 16, 3));
    // The original cells come back as the grey image, repeated in every channel.
    let kept = out.crop(0, 0, 16, 16);
    assert_eq!(kept, grey.to_channels(3).unwrap());
}

/// An 8x8 RGB picture (half the test frame) of one colour.
fn flat(rgb: [u8; 3]) -> Image {
    Image::from_raw(8, 8, 3, rgb.repeat(64)).unwrap()
}

#[test]
fn a_multi_scale_checkpoint_records_its_half_grid() {
    let ckpt = multi_scale_engine().to_checkpoint();
    for dtype in [DType::F32, DType::Int8] {
        let bytes = ckpt.to_bytes(dtype, 64).unwrap();
        assert!(inspect(&bytes).unwrap().model.multi_scale);
        assert!(Engine::from_bytes(&bytes, &device()).unwrap().model_config().multi_scale);
    }
    assert!(!colour_engine().to_checkpoint().model.multi_scale);
}

#[test]
fn a_multi_scale_model_expands_a_half_size_picture_to_the_training_size() {
    let e = multi_scale_engine();
    let expand = |img: &Image| block_on(e.expand(Some(img), 2, 1, &opts(), &mut |_| {})).unwrap();
    // The 8x8 picture is the half grid of the 16x16 training frame (a single-scale model frames
    // it to 16x16 first and gives 32x32).
    let (red, blue) = (expand(&flat([230, 20, 20])), expand(&flat([20, 20, 230])));
    assert_eq!((red.width, red.height, red.channels), (16, 16, 3));
    assert_ne!(red, blue, "the half-size picture conditions the expansion");
    assert_eq!(red, expand(&flat([230, 20, 20])), "same picture, same seed, same result");
    let single =
        block_on(colour_engine().expand(Some(&flat([230, 20, 20])), 2, 1, &opts(), &mut |_| {})).unwrap();
    assert_eq!((single.width, single.height), (32, 32));
    // A training-size picture grows beyond the frame; from scratch, a training-size sample first.
    assert_eq!((expand(&quadrants()).width, expand(&quadrants()).height), (32, 32));
    let scratch = block_on(e.expand(None, 2, 1, &opts(), &mut |_| {})).unwrap();
    assert_eq!((scratch.width, scratch.height), (32, 32));
}

#[test]
fn a_picture_smaller_than_the_frame_sits_on_the_training_background() {
    use arpg::tasks::Sides;
    let red = Image::solid(8, 8, &[200, 0, 0]); // the 16x16 frame centres it at (4, 4)
    let sides = Sides { right: 1, ..Sides::default() };
    let corner = |engine: &Engine| {
        let out = block_on(engine.outpaint(&red, sides, 0, &opts(), &mut |_| {})).unwrap();
        assert_eq!((out.width, out.height), (20, 16));
        assert_eq!(out.get(4, 4), &[200, 0, 0][..]);
        out.get(1, 1).to_vec() // padding, kept as framed
    };
    let mut white = colour_engine();
    white.meta.background = vec![255, 255, 255];
    assert_eq!(white.background(), vec![255, 255, 255]);
    assert_eq!(corner(&white), vec![255, 255, 255]);
    assert_eq!(corner(&colour_engine()), vec![0, 0, 0], "a checkpoint that records no background: black");
}
