//! The VQ tokenizer works on any grid size and its dead-code remedy replaces codes.

mod common;

use arpg::config::VqConfig;
use arpg::tokenizer::VqTokenizer;
use burn::tensor::{Distribution, Tensor};
use common::device;

#[test]
fn encode_and_decode_work_on_any_grid() {
    let device = device();
    let tok = VqTokenizer::new(&VqConfig::test(), &device);
    for (h, w) in [(16, 16), (16, 32), (32, 32), (8, 24)] {
        let images = Tensor::<4>::random([2, 1, h, w], Distribution::Uniform(0.0, 1.0), &device);
        let codes = tok.encode(images);
        assert_eq!(codes.dims(), [2, (h / 4) * (w / 4)]);
        let max = codes.clone().max().into_scalar::<i64>();
        assert!((0..16).contains(&max));
        let back = tok.decode(codes, h / 4, w / 4);
        assert_eq!(back.dims(), [2, 1, h, w]);
        let (lo, hi) = (back.clone().min().into_scalar::<f32>(), back.max().into_scalar::<f32>());
        assert!((0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi));
    }
}

#[test]
fn training_forward_gives_a_straight_through_reconstruction_and_vq_loss() {
    let device = device().autodiff();
    let tok = VqTokenizer::new(&VqConfig::test(), &device);
    let images = Tensor::<4>::random([3, 1, 16, 16], Distribution::Uniform(0.0, 1.0), &device);
    let out = tok.forward(images.clone());
    assert_eq!(out.recon.dims(), [3, 1, 16, 16]);
    assert_eq!(out.indices.dims(), [3 * 16]);
    let loss = (out.recon - images).powf_scalar(2.0).mean() + out.vq_loss;
    let grads = loss.backward();
    let g = tok.enc_in.weight.grad(&grads).expect("the encoder gets a gradient through the quantizer");
    assert!(g.abs().sum().into_scalar::<f32>() > 0.0);
}

#[test]
fn dead_codes_are_restarted_from_encoder_outputs() {
    let device = device();
    let tok = VqTokenizer::new(&VqConfig::test(), &device);
    let fresh = vec![vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 0.0, 0.0, 2.0]];
    let tok = tok.restart_codes(&[3, 9], &fresh);
    let codes = tok.codes().into_data().try_into_vec::<f32>().unwrap();
    assert_eq!(&codes[3 * 4..4 * 4], &[1.0, 0.0, 0.0, 0.0]);
    assert_eq!(&codes[9 * 4..10 * 4], &[0.0, 0.0, 0.0, 1.0]); // l2-normalised
}
