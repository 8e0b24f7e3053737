//! `arpg train-tokenizer`: train the VQ tokenizer (writes a checkpoint holding it).

use anyhow::{Result, ensure};
use arpg::config::TokenizerConfig;
use arpg_tools::train::{TokenizerTrainer, TrainOptions, TrainState, Trainer};

use crate::args::Preset;
use crate::training::{DATASET, TrainCommon, class_names, device, run_loop};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: TrainCommon,
    /// Restart a code unused for this many steps [default: 20; 0 = never].
    #[arg(long)]
    pub dead_code_steps: Option<u64>,
}

pub fn run(args: Args) -> Result<()> {
    let common = &args.common;
    let device = device(common.device);
    let mut trainer = if common.resume {
        let state = TrainState::load(&common.state_path())?;
        common.check_resumed(&state.header.options)?;
        ensure!(
            args.dead_code_steps.is_none_or(|d| d == state.header.options.dead_code_steps),
            "--dead-code-steps differs from the resumed run's"
        );
        let mut t = TokenizerTrainer::from_state(&state, &device)?;
        if let Some(steps) = common.steps {
            t.set_steps(steps);
        }
        t
    } else {
        common.check_fresh()?;
        let config = match common.preset {
            Preset::Tiny => TokenizerConfig::tiny(),
            // The test size, on the padded 32x32 Fashion-MNIST frame.
            Preset::Test => TokenizerConfig { image_size: 32, ..TokenizerConfig::test() },
        };
        let defaults = TrainOptions::tokenizer();
        let opts = TrainOptions {
            dead_code_steps: args.dead_code_steps.unwrap_or(defaults.dead_code_steps),
            ..common.options(defaults)
        };
        TokenizerTrainer::new(&config, opts, DATASET, class_names(), &device)?
    };
    let data = common.load_data(trainer.tokenizer().config.image_size)?;
    run_loop(&mut trainer, &data, common, "tokenizer")?;
    Ok(())
}
