use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use smscast::cli::{Cli, LogFormat};
use smscast::commands::{self, Exit};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Kept to scrub its password from whatever error comes back.
    let db = cli.db.clone();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SMSCAST_LOG")
        .unwrap_or_else(|_| filter.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    smscast::store::configure_sqlite();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(Exit::Ok) => ExitCode::SUCCESS,
        Ok(Exit::Interrupted) => ExitCode::from(130),
        Ok(Exit::Failed) => ExitCode::from(1),
        Ok(Exit::Usage) => ExitCode::from(2),
        Err(err) => {
            // The database URL may hold a password, and an error may quote the URL or the
            // path inside it (whichever layer wrote it): never print it.
            let message = match smscast::store::explain(&err, &db) {
                Some(words) => format!("{words}\n({err:#})"),
                None => format!("{err:#}"),
            };
            let message = smscast::store::redact_secrets(&message, &db);
            // Names quoted in errors come from files and flags: show escapes, never run them.
            eprintln!("error: {}", smscast::text::for_terminal_lines(&message));
            ExitCode::from(1)
        }
    }
}
