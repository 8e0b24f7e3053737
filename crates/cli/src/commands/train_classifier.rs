//! `arpg train-classifier`: the small CNN that `arpg eval` scores samples with.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use arpg::checkpoint::DType;
use arpg::choice::Choice;
use arpg_tools::data::{Source, Split};
use arpg_tools::eval::{self, ClassifierConfig, ClassifierMeta, ClassifierTraining, format};
use burn::tensor::Device;

use crate::args::{choice, progress_bar, write_file};

/// The classifier `arpg eval` uses unless told otherwise.
pub const DEFAULT_CLASSIFIER: &str = "models/classifier.bin";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Classifier file to write [default: models/classifier.bin for Fashion-MNIST,
    /// models/classifier-emoji-<size>.bin for the emoji].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The dataset: its training split trains, its test split measures.
    #[arg(long, value_parser = choice::<Source>(), default_value = Source::FashionMnist.name())]
    pub data: Source,
    /// Image side for the emoji (rendered at it; Fashion-MNIST is 28).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Seed of the initialisation and the data order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Peak learning rate (cosine decay to 1/100 of it).
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// Train on the first N training images only (0 = all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Storage of the weights.
    #[arg(long, value_parser = choice::<DType>(), default_value = DType::Int8.name())]
    pub dtype: DType,
    /// Weights per int8 scale (with --dtype int8).
    #[arg(long, default_value_t = 64)]
    pub group_size: usize,
    /// Where the data is [default: the dataset's own place].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    ensure!(args.group_size >= 1, "--group-size must be at least 1");
    let dir = args.data_dir.clone().unwrap_or_else(|| args.data.default_dir());
    let mut train = args.data.split(&dir, Split::Train, args.size)?;
    let test = args.data.split(&dir, Split::Test, args.size)?;
    let out = args.out.clone().unwrap_or_else(|| match args.data {
        Source::FashionMnist => PathBuf::from(DEFAULT_CLASSIFIER),
        Source::Emoji => PathBuf::from(format!("models/classifier-emoji-{}.bin", args.size)),
    });
    if args.limit > 0 {
        train = train.take(args.limit);
    }
    let opts = ClassifierTraining {
        epochs: args.epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        ..ClassifierTraining::default()
    };
    ensure!(train.width == train.height, "the classifier reads square images");
    let config = ClassifierConfig {
        channels: train.channels,
        side: train.width,
        n_classes: args.data.class_names()?.len(),
        ..ClassifierConfig::default()
    };
    let device = Device::flex();
    let pb = progress_bar(0, "train", "steps");
    let mut on_step = |s: &eval::ClassifierStep| {
        pb.set_length(s.steps as u64);
        pb.set_position(s.step as u64);
        pb.set_message(format!("loss {:.3}", s.loss));
    };
    let (classifier, seconds) = eval::train_classifier(&config, &train, &opts, &device, &mut on_step)?;
    pb.finish_and_clear();
    let f32_accuracy = classifier.accuracy(&test.pixels, &test.labels);

    let mut meta = ClassifierMeta {
        test_accuracy: None,
        seed: args.seed,
        epochs: args.epochs as u32,
        train_images: train.len() as u32,
    };
    let dtype = args.dtype;
    // The stored weights are what `eval` will use: measure them, not the f32 ones.
    let (stored, _) =
        format::from_bytes(&format::to_bytes(&classifier, &meta, dtype, args.group_size)?, &device)?;
    let accuracy = stored.accuracy(&test.pixels, &test.labels);
    meta.test_accuracy = Some(accuracy as f32);
    let bytes = format::to_bytes(&classifier, &meta, dtype, args.group_size)?;
    write_file(&out, &bytes)?;
    let params: usize = arpg::weights::export(&classifier, "").iter().map(|t| t.data.len()).sum();
    println!(
        "wrote {} ({dtype}, {params} parameters, {} bytes): {} training images x {} epochs in {seconds:.1}s",
        out.display(),
        bytes.len(),
        train.len(),
        args.epochs
    );
    println!(
        "test accuracy {:.2}% as stored ({dtype}), {:.2}% in f32 ({} test images)",
        100.0 * accuracy,
        100.0 * f32_accuracy,
        test.len()
    );
    Ok(())
}
