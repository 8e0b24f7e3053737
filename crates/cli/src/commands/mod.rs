//! One module per subcommand, each with its `Args` and `run`.

mod bench;
mod decode;
mod emoji_sheet;
mod encode;
mod eval;
mod expand;
mod generate;
mod import;
mod init;
mod inpaint;
mod inspect;
mod outpaint;
mod quantize;
mod recon;
mod score;
mod soak;
mod train;
mod train_classifier;
mod train_tokenizer;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Sample new images; writes <class>-<index>.png per image and grid.png.
    Generate(generate::Args),
    /// Regenerate the parts of an image that are white in a mask.
    Inpaint(inpaint::Args),
    /// Extend an image by whole tokens on any side.
    Outpaint(outpaint::Args),
    /// Grow an image (or a fresh sample) to a larger canvas, filling the new tokens.
    Expand(expand::Args),
    /// Turn the official ARPG and VQ-16 weights (`.pt`) into one checkpoint.
    Import(import::Args),
    /// A picture's tokens as JSON (PNG or JPEG, fitted to the model's frame).
    Encode(encode::Args),
    /// The picture of a grid of tokens (the JSON `encode` writes).
    Decode(decode::Args),
    /// The teacher-forced negative log-likelihood of a picture's tokens in an order.
    Score(score::Args),
    /// Print a checkpoint's configuration, parameter counts, storage and checksum.
    Inspect(inspect::Args),
    /// Convert a checkpoint to int8 with per-group scales and report the weight error.
    Quantize(quantize::Args),
    /// Write a randomly initialised checkpoint (for tests before a trained one exists).
    Init(init::Args),
    /// How well a checkpoint's tokenizer reconstructs a dataset split: MSE, PSNR, codes used.
    Recon(recon::Args),
    /// Quality of a checkpoint: class accuracy, Fréchet distance, memorisation, in-painting.
    Eval(eval::Args),
    /// Train the small CNN classifier `arpg eval` scores samples with.
    TrainClassifier(train_classifier::Args),
    /// Train the VQ tokenizer on a dataset (`--data`; writes a checkpoint holding it).
    TrainTokenizer(train_tokenizer::Args),
    /// Train a generator (ARPG or a baseline) on a dataset's tokens (`--data`).
    Train(train::Args),
    /// Speed, memory and FLOPs of ARPG vs raster AR, MaskGIT and no-shared-KV on one checkpoint.
    Bench(bench::Args),
    /// Many generations in a row at batch 1, checking that the resident memory stays flat.
    Soak(soak::Args),
    /// A contact sheet of the emoji colour dataset: a few images per class (`make emoji-data`).
    EmojiSheet(emoji_sheet::Args),
}

impl Command {
    pub fn run(self) -> Result<()> {
        match self {
            Command::Generate(a) => generate::run(a),
            Command::Inpaint(a) => inpaint::run(a),
            Command::Outpaint(a) => outpaint::run(a),
            Command::Expand(a) => expand::run(a),
            Command::Import(a) => import::run(a),
            Command::Encode(a) => encode::run(a),
            Command::Decode(a) => decode::run(a),
            Command::Score(a) => score::run(a),
            Command::Inspect(a) => inspect::run(a),
            Command::Quantize(a) => quantize::run(a),
            Command::Init(a) => init::run(a),
            Command::Recon(a) => recon::run(a),
            Command::Eval(a) => eval::run(a),
            Command::TrainClassifier(a) => train_classifier::run(a),
            Command::TrainTokenizer(a) => train_tokenizer::run(a),
            Command::Train(a) => train::run(a),
            Command::Bench(a) => bench::run(a),
            Command::Soak(a) => soak::run(a),
            Command::EmojiSheet(a) => emoji_sheet::run(a),
        }
    }
}
