//! `arpg decode`: the picture of a grid of tokens (the JSON `arpg encode` writes).

use std::path::PathBuf;

use anyhow::Result;

use crate::args::{ModelArgs, provenance_plain, write_png};
use crate::codes::Codes;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// `{"width": W, "height": H, "codes": [W*H codes, raster order]}`.
    #[arg(long)]
    pub codes: PathBuf,
    /// The PNG to write.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let loaded = args.model.load()?;
    let codes = Codes::read(&args.codes, loaded.engine.codebook_size())?;
    let image =
        pollster::block_on(loaded.engine.decode(&[codes.codes], codes.height, codes.width))?.remove(0);
    write_png(
        &args.out,
        &image,
        &provenance_plain(format!("decode {}", args.codes.display()), &loaded.path),
    )?;
    println!("wrote {} ({}x{} px)", args.out.display(), image.width, image.height);
    Ok(())
}
