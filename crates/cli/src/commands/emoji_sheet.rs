//! `arpg emoji-sheet`: a contact sheet of the emoji colour dataset (`arpg_tools::emoji`), one row
//! per class in label order, the first `--per-class` images of the class in the chosen split
//! (dataset order: emoji by emoji, each as google, twitter, fluent3d). A class with fewer images
//! ends its row with grey tiles. Prints one line per row.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use arpg::image::{GRID_PAD_VALUE, Image, grid};
use arpg_tools::emoji::{self, Dataset};

use crate::args::write_png;

/// Pixels between tiles.
const PAD: usize = 2;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// PNG to write.
    #[arg(long, default_value = "emoji-sheet.png")]
    pub out: PathBuf,
    /// Side of each image in pixels (the dataset's are 64 and 32).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Images per class (one row each).
    #[arg(long, default_value_t = 9)]
    pub per_class: usize,
    #[arg(long, value_enum, default_value_t = Split::Train)]
    pub split: Split,
    /// Where `make emoji-data` put the packages [default: $HOME/.cache/arpg/emoji].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    ensure!((1..=256).contains(&args.size), "--size must be 1 to 256, got {}", args.size);
    ensure!((1..=100).contains(&args.per_class), "--per-class must be 1 to 100, got {}", args.per_class);
    let dir = match args.dir {
        Some(dir) => dir,
        None => emoji::default_dir().context("HOME is not set: pass --dir")?,
    };
    let start = Instant::now();
    let data = emoji::load(&dir, args.size)
        .with_context(|| format!("cannot load the emoji dataset from {}", dir.display()))?;
    let secs = start.elapsed().as_secs_f64();
    let (split, name) = match args.split {
        Split::Train => (&data.train, "train"),
        Split::Test => (&data.test, "test"),
    };
    println!(
        "loaded {} train + {} test images at {s}x{s} in {secs:.2}s from {}",
        data.train.len(),
        data.test.len(),
        dir.display(),
        s = args.size
    );
    let mut tiles = Vec::with_capacity(data.spec.classes.len() * args.per_class);
    for (c, class) in data.spec.classes.iter().enumerate() {
        let row = class_row(split, c as u8, args.per_class);
        println!("row {c:2}: {:<18} {:>4} {name} images ({})", class.id, count(split, c as u8), class.name);
        tiles.extend(row);
    }
    let sheet = grid(&tiles, args.per_class, PAD);
    let what = format!(
        "emoji dataset, {name} split, first {} per class, {}x{}",
        args.per_class, args.size, args.size
    );
    write_png(
        &args.out,
        &sheet,
        &[("Software", format!("arpg {}", env!("CARGO_PKG_VERSION"))), ("Description", what)],
    )?;
    println!("wrote {} ({}x{})", args.out.display(), sheet.width, sheet.height);
    Ok(())
}

fn count(split: &Dataset, class: u8) -> usize {
    split.labels.iter().filter(|&&l| l == class).count()
}

/// The first `n` images of `class`, then grey tiles up to `n`.
fn class_row(split: &Dataset, class: u8, n: usize) -> Vec<Image> {
    let of_class = split.images.iter().zip(&split.labels).filter(|&(_, &l)| l == class);
    let mut row: Vec<Image> = of_class.map(|(image, _)| image.clone()).take(n).collect();
    row.resize(n, Image::filled(split.size, split.size, 3, GRID_PAD_VALUE));
    row
}
