//! Training the classifier: cross-entropy, AdamW (the generator's optimiser set-up) with a cosine
//! learning rate, a seeded data order. No dropout and a host-seeded initialisation, so one seed
//! gives one network without touching burn's global RNG.

use std::f64::consts::PI;
use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::ClassifierError;
use super::classifier::{Classifier, ClassifierConfig, images_tensor};
use crate::data::Dataset;
use crate::train::optim;
use arpg::rng::Rng;
use arpg::weights;

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ClassifierTraining {
    pub epochs: usize,
    pub batch: usize,
    /// Peak learning rate; the cosine decay ends at `lr / 100`.
    pub lr: f64,
    /// AdamW weight decay on kernels and matrices.
    pub weight_decay: f32,
    pub seed: u64,
}

impl Default for ClassifierTraining {
    fn default() -> Self {
        Self { epochs: 3, batch: 128, lr: 2e-3, weight_decay: 1e-4, seed: 0 }
    }
}

/// Progress of one step.
#[derive(Clone, Debug)]
pub struct ClassifierStep {
    pub step: usize,
    pub steps: usize,
    pub loss: f32,
}

/// Train a classifier of `config` on `data` (28x28 images); the result lives on `device`
/// (training itself runs on the flex backend with autodiff).
pub fn train_classifier(
    config: &ClassifierConfig,
    data: &Dataset,
    opts: &ClassifierTraining,
    device: &Device,
    on_step: &mut dyn FnMut(&ClassifierStep),
) -> Result<(Classifier, f64), ClassifierError> {
    config.validate()?;
    if (data.width, data.height, data.channels) != (config.side, config.side, config.channels) {
        return Err(ClassifierError::Options(format!(
            "{}x{} images of {} channels, the classifier reads {s}x{s} of {}",
            data.width,
            data.height,
            data.channels,
            config.channels,
            s = config.side
        )));
    }
    if data.is_empty() || opts.epochs == 0 || opts.batch == 0 || !opts.lr.is_finite() || opts.lr <= 0.0 {
        return Err(ClassifierError::Options("data, epochs, batch and lr must be > 0".into()));
    }
    if data.n_classes() > config.n_classes {
        return Err(ClassifierError::Options(format!(
            "the data has {} classes, the classifier {}",
            data.n_classes(),
            config.n_classes
        )));
    }
    let start = Instant::now();
    let ad = Device::flex().autodiff();
    let mut model = config.init_seeded(opts.seed, &ad);
    let mut optim = optim::adamw(&model, opts.weight_decay);
    let mut rng = Rng::new(opts.seed ^ 0x5EED_C1A5);
    let per_epoch = data.len().div_ceil(opts.batch);
    let steps = per_epoch * opts.epochs;
    let mut step = 0;
    for _ in 0..opts.epochs {
        let order = rng.permutation(data.len());
        for idx in order.chunks(opts.batch) {
            let pixels: Vec<u8> = idx.iter().flat_map(|&i| data.image(i).iter().copied()).collect();
            let labels: Vec<i64> = idx.iter().map(|&i| data.labels[i] as i64).collect();
            let logits = model.forward(images_tensor(&pixels, config, &ad)); // [b, classes]
            let loss = cross_entropy(logits, labels, &ad);
            let value = loss.clone().into_scalar::<f32>();
            if !value.is_finite() {
                return Err(ClassifierError::Diverged { step });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let lr = opts.lr * (0.01 + 0.99 * 0.5 * (1.0 + (PI * step as f64 / steps as f64).cos()));
            model = optim.step(lr, model, grads);
            step += 1;
            on_step(&ClassifierStep { step, steps, loss: value });
        }
    }
    let mut tensors = weights::export(&model, "");
    let out = weights::import(config.init(device), &mut tensors, "", device)?;
    Ok((out, start.elapsed().as_secs_f64()))
}

/// Mean negative log-likelihood of `labels` under `logits` `[b, classes]`.
fn cross_entropy(logits: Tensor<2>, labels: Vec<i64>, device: &Device) -> Tensor<1> {
    let b = labels.len();
    let targets = Tensor::<2, Int>::from_data(TensorData::new(labels, [b, 1]), device);
    log_softmax(logits, 1).gather(1, targets).reshape([b]).neg().mean()
}
