//! A small CNN classifier, independent of the generator: it scores the class accuracy of
//! generated images, and its penultimate activations are the features of the Fréchet distance.
//! It reads square images of one side and channel count (its config: Fashion-MNIST's 28x28 grey
//! by default; the emoji's RGB at 64 or 32).
//!
//! conv 3x3 (channels -> c1) + ReLU + max-pool 2 -> conv 3x3 (c1 -> c2) + ReLU + max-pool 2 ->
//! linear (c2 * (side/4)^2 -> hidden) + ReLU = the features -> linear (hidden -> classes) = the
//! logits.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};

use super::ClassifierError;
use arpg::rng::Rng;
use arpg::weights;

/// Fashion-MNIST's image side, the default classifier's.
pub const SIDE: usize = 28;
/// Images per forward pass when scoring.
const BATCH: usize = 250;

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ClassifierConfig {
    /// Of the images: 1 (grey) or 3 (RGB), and their side (a multiple of 4).
    pub channels: usize,
    pub side: usize,
    /// Channels of the first and second convolution.
    pub conv1: usize,
    pub conv2: usize,
    /// Width of the feature layer.
    pub hidden: usize,
    pub n_classes: usize,
}

impl Default for ClassifierConfig {
    /// The shipped size: 28x28 grey, 32 and 64 channels, 128 features, 10 classes (421,642
    /// parameters).
    fn default() -> Self {
        Self { channels: 1, side: SIDE, conv1: 32, conv2: 64, hidden: 128, n_classes: 10 }
    }
}

impl ClassifierConfig {
    pub fn validate(&self) -> Result<(), ClassifierError> {
        let sizes = [self.conv1, self.conv2, self.hidden, self.n_classes];
        let image_ok =
            matches!(self.channels, 1 | 3) && self.side.is_multiple_of(4) && (4..=256).contains(&self.side);
        if sizes.iter().any(|&s| s == 0 || s > 4096) || self.n_classes < 2 || !image_ok {
            return Err(ClassifierError::InvalidConfig(format!("{self:?}")));
        }
        Ok(())
    }

    /// Values per image.
    pub fn image_len(&self) -> usize {
        self.side * self.side * self.channels
    }

    /// Fresh weights from burn's initialisers (the backend RNG); see [`Self::init_seeded`].
    pub fn init(&self, device: &Device) -> Classifier {
        let conv = |c_in, c_out| {
            Conv2dConfig::new([c_in, c_out], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Classifier {
            conv1: conv(self.channels, self.conv1),
            conv2: conv(self.conv1, self.conv2),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            fc: LinearConfig::new(self.conv2 * (self.side / 4) * (self.side / 4), self.hidden).init(device),
            head: LinearConfig::new(self.hidden, self.n_classes).init(device),
            config: self.clone(),
        }
    }

    /// Fresh weights drawn from a host RNG seeded with `seed`, so the same seed gives the same
    /// network on any backend and in any thread: Kaiming-uniform (ReLU gain) kernels, a head
    /// with bound `1/sqrt(fan_in)`, zero biases.
    pub fn init_seeded(&self, seed: u64, device: &Device) -> Classifier {
        let model = self.init(device);
        let mut rng = Rng::new(seed);
        let mut tensors = weights::export(&model, "");
        for t in tensors.iter_mut() {
            if t.shape.len() < 2 {
                t.data.fill(0.0);
                continue;
            }
            // Linear weights are [in, out], conv kernels [out, in, k, k].
            let fan_in: usize = if t.shape.len() == 2 { t.shape[0] } else { t.shape[1..].iter().product() };
            let gain = if t.name.starts_with("head") { 1.0 } else { 6f64.sqrt() };
            let bound = gain / (fan_in as f64).sqrt();
            t.data.iter_mut().for_each(|x| *x = ((rng.next_f64() * 2.0 - 1.0) * bound) as f32);
        }
        weights::import(model, &mut tensors, "", device).expect("the shapes come from the module itself")
    }
}

#[derive(Module, Debug)]
pub struct Classifier {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub pool: MaxPool2d,
    pub fc: Linear,
    pub head: Linear,
    #[module(skip)]
    pub config: ClassifierConfig,
}

/// Labels and features of a set of images.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// The most likely class per image.
    pub labels: Vec<usize>,
    /// `[n, hidden]`, row-major.
    pub features: Vec<f32>,
    pub dim: usize,
}

impl Classifier {
    /// Images `[b, channels, side, side]` in `[0, 1]` -> features `[b, hidden]`.
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(relu(self.conv1.forward(images * 2.0 - 1.0))); // [b, c1, side/2, side/2]
        let x = self.pool.forward(relu(self.conv2.forward(x))); // [b, c2, side/4, side/4]
        let [b, c, h, w] = x.dims();
        relu(self.fc.forward(x.reshape([b, c * h * w]))) // [b, hidden]
    }

    /// Images `[b, channels, side, side]` in `[0, 1]` -> logits `[b, classes]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.features(images))
    }

    /// Classify `pixels` (images of the config's side and channels back to back, 0 = black), in
    /// batches. Native read-back.
    pub fn score(&self, pixels: &[u8]) -> Scores {
        let per_image = self.config.image_len();
        let n = pixels.len() / per_image;
        let device = self.fc.weight.val().device();
        let (mut labels, mut features) = (Vec::with_capacity(n), Vec::with_capacity(n * self.config.hidden));
        for chunk in pixels[..n * per_image].chunks(BATCH * per_image) {
            let x = images_tensor(chunk, &self.config, &device);
            let f = self.features(x);
            let logits = self.head.forward(f.clone());
            let f = f.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 features");
            let l = logits.argmax(1).into_data().convert::<i64>().try_into_vec::<i64>().expect("int labels");
            features.extend(f);
            labels.extend(l.into_iter().map(|v| v as usize));
        }
        Scores { labels, features, dim: self.config.hidden }
    }

    /// Fraction of `pixels` classified as `labels`.
    pub fn accuracy(&self, pixels: &[u8], labels: &[u8]) -> f64 {
        let scores = self.score(pixels);
        let hits = scores.labels.iter().zip(labels).filter(|(a, b)| **a == **b as usize).count();
        hits as f64 / labels.len().max(1) as f64
    }
}

/// Images of `config`'s side and channels back to back -> `[b, channels, side, side]` in `[0, 1]`.
pub fn images_tensor(pixels: &[u8], config: &ClassifierConfig, device: &Device) -> Tensor<4> {
    let (s, c) = (config.side, config.channels);
    let b = pixels.len() / config.image_len();
    let values: Vec<f32> = pixels.iter().map(|&p| p as f32 / 255.0).collect();
    Tensor::<4>::from_data(TensorData::new(values, [b, s, s, c]), device).permute([0, 3, 1, 2]) // [b, s, s, c] -> [b, c, s, s]
}
