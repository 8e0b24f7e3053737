//! `arpg-serve [--port N] [--root DIR]`: serve the web app (see the library's docs).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Serve the ARPG web app (ROOT/www at /, ROOT/pkg at /pkg/) on http://127.0.0.1:PORT/.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Port to listen on; 0 picks a free one [default: $PORT, else 8080].
    #[arg(long)]
    port: Option<u16>,
    /// The folder that holds www/ and pkg/.
    #[arg(long, default_value = ".")]
    root: PathBuf,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let port = match (args.port, std::env::var("PORT")) {
        (Some(port), _) => port,
        (None, Ok(s)) => s.trim().parse().map_err(|_| format!("PORT={s:?} is not a port number"))?,
        (None, Err(_)) => 8080,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let listener =
            arpg_serve::bind(port).await.map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        println!("serving http://127.0.0.1:{port}/");
        std::io::stdout().flush().ok();
        arpg_serve::serve(listener, &args.root, arpg_serve::HEADER_TIMEOUT)
            .await
            .map_err(|e| format!("cannot serve {}: {e}", args.root.display()))
    })
}
