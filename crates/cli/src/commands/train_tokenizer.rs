//! `arpg train-tokenizer`: train the VQ tokenizer (writes a checkpoint holding it).

use anyhow::{Result, ensure};
use arpg::choice::Choice;
use arpg::config::VqConfig;
use arpg_tools::data::Source;
use arpg_tools::train::{TokenizerTrainer, TrainOptions, TrainState, Trainer};

use crate::args::Preset;
use crate::training::{TrainCommon, device, run_loop};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: TrainCommon,
    /// Restart a code unused for this many steps [default: 20; 0 = never].
    #[arg(long)]
    pub dead_code_steps: Option<u64>,
    /// Codes in the codebook instead of the preset's.
    #[arg(long)]
    pub codebook_size: Option<usize>,
}

pub fn run(args: Args) -> Result<()> {
    let common = &args.common;
    let device = device(common.device);
    let (mut trainer, source) = if common.resume {
        let state = TrainState::load(&common.state_path())?;
        (resume(&args, &state, &device)?, common.source(Some(&state.header.dataset))?)
    } else {
        common.check_fresh()?;
        let source = common.source(None)?;
        let defaults = TrainOptions::tokenizer();
        let opts = TrainOptions {
            dead_code_steps: args.dead_code_steps.unwrap_or(defaults.dead_code_steps),
            ..common.options(defaults)
        };
        let config = config(&args, source);
        (TokenizerTrainer::new(&config, opts, source.name(), source.class_names()?, &device)?, source)
    };
    let data = common.load_data(source, trainer.tokenizer().config.image_size)?;
    run_loop(&mut trainer, &data, common, "tokenizer")
}

fn resume(args: &Args, state: &TrainState, device: &burn::tensor::Device) -> Result<TokenizerTrainer> {
    args.common.check_resumed(&state.header.options)?;
    ensure!(
        args.dead_code_steps.is_none_or(|d| d == state.header.options.dead_code_steps),
        "--dead-code-steps differs from the resumed run's"
    );
    let mut t = TokenizerTrainer::from_state(state, device)?;
    ensure!(
        args.codebook_size.is_none_or(|n| n == t.tokenizer().config.codebook_size),
        "--codebook-size differs from the resumed run's"
    );
    if let Some(steps) = args.common.steps {
        t.set_steps(steps);
    }
    Ok(t)
}

/// The preset's sizes on the data's frame (its side and channels).
fn config(args: &Args, source: Source) -> VqConfig {
    let base = match args.common.preset {
        Preset::Tiny => VqConfig::tiny(),
        Preset::Test => VqConfig::test(),
    };
    let (image_size, image_channels) = source.frame();
    let codebook_size = args.codebook_size.unwrap_or(base.codebook_size);
    VqConfig { image_size, image_channels, codebook_size, ..base }
}
