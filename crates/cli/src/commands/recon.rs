//! `arpg recon`: how well a checkpoint's tokenizer reconstructs a split of a dataset: the pixel
//! error (MSE of values in [0, 1], and PSNR), and how many codes of the codebook the split uses.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Result, ensure};
use arpg::choice::Choice;
use arpg_tools::data::{Source, Split};

use crate::args::{ModelArgs, choice, progress_bar};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The dataset.
    #[arg(long, value_parser = choice::<Source>(), default_value = Source::FashionMnist.name())]
    pub data: Source,
    /// Where the data is [default: the dataset's own place].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_parser = choice::<Split>(), default_value = Split::Test.name())]
    pub split: Split,
    /// The first N images only (0 = all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
}

pub fn run(args: Args) -> Result<()> {
    let loaded = args.model.load()?;
    let engine = &loaded.engine;
    let size = engine.image_size();
    let dir = args.data_dir.clone().unwrap_or_else(|| args.data.default_dir());
    let data = args.data.split(&dir, args.split, size)?;
    let data = if args.limit > 0 { data.take(args.limit) } else { data }.padded(size);
    ensure!(!data.is_empty(), "no images");
    let bar = progress_bar(data.len() as u64, "recon", "images");
    let (mut squared, mut values, mut used) = (0.0f64, 0usize, HashSet::new());
    for i in 0..data.len() {
        let image = data.to_image(i).to_channels(engine.image_channels())?;
        let (codes, h, w) = pollster::block_on(engine.encode(&image))?;
        let back = pollster::block_on(engine.decode(std::slice::from_ref(&codes), h, w))?.remove(0);
        squared += image
            .pixels
            .iter()
            .zip(&back.pixels)
            .map(|(&a, &b)| ((a as f64 - b as f64) / 255.0).powi(2))
            .sum::<f64>();
        values += image.pixels.len();
        used.extend(codes);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mse = squared / values as f64;
    println!(
        "{} {} images of {}: MSE {mse:.5}, PSNR {:.2} dB, {} of {} codes used",
        data.len(),
        args.split.name(),
        args.data.name(),
        10.0 * (1.0 / mse).log10(),
        used.len(),
        engine.codebook_size()
    );
    Ok(())
}
