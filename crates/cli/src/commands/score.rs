//! `arpg score`: the teacher-forced negative log-likelihood of a picture's tokens in a given
//! order, the paper's training objective (each token sees the class and the tokens before it).
//! Bits per dimension: the total over the picture's pixel values, `sum(nll) / (ln 2 * H * W * C)`.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use arpg::rng::Rng;
use clap::ValueEnum;

use crate::args::{ModelArgs, read_picture, resolve_class};
use crate::codes::{Codes, read_order};

#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("condition").required(true).args(["class", "unconditional"]))]
#[command(group = clap::ArgGroup::new("input").required(true).args(["codes", "image"]))]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Class id or name to condition on.
    #[arg(long)]
    pub class: Option<String>,
    /// Condition on the unconditional label (the one guidance uses).
    #[arg(long)]
    pub unconditional: bool,
    /// Tokens to score (`arpg encode`'s JSON).
    #[arg(long)]
    pub codes: Option<PathBuf>,
    /// A picture to encode and score (PNG or JPEG, fitted to the model's frame).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// The order: `{"order": [raster indices in generation order]}`.
    #[arg(long, conflicts_with = "order")]
    pub order_file: Option<PathBuf>,
    /// The order when no --order-file: raster, or random from --seed.
    #[arg(long, value_enum, default_value_t = ScoreOrder::Raster)]
    pub order: ScoreOrder,
    /// Seed of the random order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print JSON: `{"nll_per_token": [...in generation order], "mean_nll", "bits_per_dim"}`.
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreOrder {
    Raster,
    Random,
}

pub fn run(args: Args) -> Result<()> {
    let loaded = args.model.load()?;
    let engine = &loaded.engine;
    let class = args.class.as_deref().map(|c| resolve_class(c, engine)).transpose()?;
    let codes = match (&args.codes, &args.image) {
        (Some(path), _) => Codes::read(path, engine.codebook_size())?,
        (None, Some(path)) => {
            let (codes, height, width) = pollster::block_on(engine.encode(&read_picture(path, engine)?))?;
            Codes { width, height, codes }
        }
        (None, None) => unreachable!("clap requires --codes or --image"),
    };
    let c = engine.model_config();
    ensure!(
        (codes.height, codes.width) == (c.grid_h, c.grid_w),
        "score takes the model's {}x{} grid, not {}x{}",
        c.grid_h,
        c.grid_w,
        codes.height,
        codes.width
    );
    let cells = codes.codes.len();
    let order = match (&args.order_file, args.order) {
        (Some(path), _) => read_order(path, cells)?,
        (None, ScoreOrder::Raster) => (0..cells).collect(),
        (None, ScoreOrder::Random) => {
            let mut order: Vec<usize> = (0..cells).collect();
            Rng::new(args.seed).shuffle(&mut order);
            order
        }
    };
    let nll = pollster::block_on(engine.score(class, &codes.codes, &order))?;
    let total: f64 = nll.iter().sum();
    let mean = total / nll.len() as f64;
    let dims = cells * engine.factor() * engine.factor() * engine.image_channels();
    let bits_per_dim = total / (std::f64::consts::LN_2 * dims as f64);
    if args.json {
        println!(
            "{}",
            serde_json::json!({"nll_per_token": nll, "mean_nll": mean, "bits_per_dim": bits_per_dim})
        );
    } else {
        println!("mean NLL {mean:.4} nats a token, {bits_per_dim:.4} bits per dimension ({cells} tokens)");
    }
    Ok(())
}
