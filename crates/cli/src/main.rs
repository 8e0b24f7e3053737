//! `arpg`: generate, in-paint, out-paint and expand images with an ARPG checkpoint; inspect,
//! quantize and initialise checkpoints; train the tokenizer, the generators and the evaluation
//! classifier; evaluate and benchmark; look at the emoji dataset. One module per command in
//! `commands/`, what they share in `args` (and `training` for the two trainers). The web app's
//! server is `arpg-serve` (crates/serve).

mod args;
mod codes;
mod commands;
mod training;

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "arpg", version, about = "ARPG: autoregressive image generation in random parallel order")]
struct Cli {
    #[command(subcommand)]
    command: commands::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    default_sigpipe();
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so `println!` to a closed pipe (`arpg inspect x | head -3`) panics. Restore
/// the default, as other Unix tools have it: the process ends quietly when its reader has gone.
fn default_sigpipe() {
    #[cfg(unix)]
    {
        unsafe extern "C" {
            fn signal(signum: i32, handler: usize) -> usize;
        }
        const SIGPIPE: i32 = 13;
        const SIG_DFL: usize = 0;
        // SAFETY: sets one signal's disposition to its default, at start-up, before other threads.
        unsafe { signal(SIGPIPE, SIG_DFL) };
    }
}

/// The error and its causes on one line, "cannot read x: No such file", leaving out a cause
/// whose text the message before it already ends with (errors that print their source).
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::commands::Command;
    use arpg::sampling::{CfgSchedule, Order, SampleOptions, Schedule};

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sampling_defaults_are_the_library_defaults() {
        let cli = Cli::try_parse_from(["arpg", "generate", "--class", "sneaker"]).unwrap();
        let Command::Generate(g) = cli.command else { panic!("not generate") };
        assert_eq!(g.sample.options(&SampleOptions::default()).unwrap(), SampleOptions::default());
        assert_eq!(g.count, 8);
        assert_eq!(g.model.mode, None);
    }

    #[test]
    fn sampling_flags_are_parsed_and_checked() {
        let args = "arpg inpaint --image a.png --mask m.png --class bag --out o.png --steps 4 --top-k 5 \
                    --top-p 0.9 --schedule arccos --cfg-schedule constant --order confidence --mode maskgit";
        let cli = Cli::try_parse_from(args.split_whitespace()).unwrap();
        let Command::Inpaint(a) = cli.command else { panic!("not inpaint") };
        let o = a.sample.options(&SampleOptions::default()).unwrap();
        assert_eq!((o.steps, o.top_k, o.top_p), (4, 5, 0.9));
        assert_eq!(
            (o.schedule, o.cfg_schedule, o.order),
            (Schedule::Arccos, CfgSchedule::Constant, Order::Confidence)
        );
        assert_eq!(a.model.mode, Some(crate::args::Mode::Maskgit));
        assert_eq!(a.class, "bag");
        // Edits need a class: the model has no unconditional mode.
        assert!(
            Cli::try_parse_from("arpg inpaint --image a.png --mask m.png --out o.png".split(' ')).is_err()
        );

        let cli = Cli::try_parse_from(["arpg", "generate", "--steps", "0"]).unwrap();
        let Command::Generate(g) = cli.command else { panic!("not generate") };
        assert!(g.sample.options(&SampleOptions::default()).is_err());
        assert!(Cli::try_parse_from(["arpg", "generate", "--schedule", "quadratic"]).is_err());
    }

    #[test]
    fn the_error_line_skips_repeated_causes() {
        #[derive(Debug)]
        struct Inner;
        impl std::fmt::Display for Inner {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bad magic")
            }
        }
        impl std::error::Error for Inner {}
        #[derive(Debug)]
        struct Outer(Inner);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "checkpoint: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Outer(Inner)).context("cannot load m.arpg");
        assert_eq!(one_line(&e), "cannot load m.arpg: checkpoint: bad magic");
        let io = anyhow::Error::new(std::io::Error::other("gone")).context("cannot read x");
        assert_eq!(one_line(&io), "cannot read x: gone");
    }
}
