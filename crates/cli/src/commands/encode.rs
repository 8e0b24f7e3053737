//! `arpg encode`: a picture's tokens, as JSON (`{"width": 16, "height": 16, "codes": [...]}`,
//! raster order).

use std::path::PathBuf;

use anyhow::Result;

use crate::args::{ModelArgs, read_picture, write_file};
use crate::codes::Codes;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A PNG or JPEG; fitted to the model's frame (centre-cropped to a square and resized).
    #[arg(long)]
    pub image: PathBuf,
    /// The JSON file to write.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let engine = args.model.load()?.engine;
    let image = read_picture(&args.image, &engine)?;
    let (codes, height, width) = pollster::block_on(engine.encode(&image))?;
    let codes = Codes { width, height, codes };
    write_file(&args.out, &serde_json::to_vec(&codes)?)?;
    println!("wrote {} ({width}x{height} tokens)", args.out.display());
    Ok(())
}
