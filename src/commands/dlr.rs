//! `dlr serve`: receive delivery receipts until Ctrl-C; SIGHUP reloads `smscast.toml`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use tokio::sync::watch;

use super::send::spawn_signal_handler;
use super::{Ctx, Exit};
use crate::cli::DlrServeArgs;
use crate::config::Config;
use crate::dlr::{DlrOptions, DlrServer, Limits, Receivers};

pub async fn serve(ctx: &Ctx, args: DlrServeArgs) -> Result<Exit> {
    let config = ctx.config()?;
    let store = ctx.store().await?;
    let receivers = Receivers::from_config(&config)?;
    let listen = args.listen.unwrap_or_else(|| config.dlr.listen.clone());
    let opts = DlrOptions::from_config(&config);
    let limits = Limits::from_config(&config);
    let server =
        DlrServer::start_with_limits(store, receivers, &listen, opts, limits.clone()).await?;
    println!("receiving delivery receipts on {}", server.base_url());
    print_paths(&server);
    println!(
        "  messages with no final receipt after {} h become expired; receipts matching nothing for {} min are reported unmatched",
        config.dlr.validity_hours, config.dlr.unmatched_after_minutes
    );
    println!(
        "  at most {} connections; {} s for a request's headers (and idle), {} s for its body",
        limits.max_connections,
        limits.header_timeout.as_secs_f64(),
        limits.request_timeout.as_secs_f64()
    );
    let base = server.base_url();
    println!(
        "  counts: GET {base}/status, metrics: GET {base}/metrics, health: GET {base}/healthz"
    );
    let path = ctx
        .config_path
        .clone()
        .unwrap_or_else(|| PathBuf::from("smscast.toml"));
    println!(
        "  after editing {}: `kill -HUP {}` reloads it",
        path.display(),
        std::process::id()
    );

    let (tx, mut rx) = watch::channel(false);
    spawn_signal_handler(
        tx,
        "stopping: answering the receipts already received, then exiting",
    );
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut loaded = modified(&path);
    let mut warned = loaded;
    let mut poll = tokio::time::interval(Duration::from_secs(2));
    loop {
        #[cfg(unix)]
        let hup = hangup.recv();
        #[cfg(not(unix))]
        let hup = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = rx.changed() => break,
            _ = hup => {
                loaded = modified(&path);
                warned = loaded;
                reload(ctx, &config, &server);
            }
            _ = poll.tick() => {
                let now = modified(&path);
                if now != loaded && now != warned {
                    warned = now;
                    tracing::warn!(
                        "{} changed on disk; the running `dlr serve` still uses the configuration it loaded: `kill -HUP {}` reloads it",
                        path.display(),
                        std::process::id()
                    );
                }
            }
        }
    }
    server.stop().await;
    Ok(Exit::Ok)
}

fn print_paths(server: &DlrServer) {
    for (gateway, path) in server.paths() {
        println!("  {gateway}: {}{path}", server.base_url());
    }
}

/// Loads the configuration again and puts its gateways in force; on any error the previous
/// ones stay, and the error is logged.
fn reload(ctx: &Ctx, first: &Config, server: &DlrServer) {
    let loaded = ctx
        .config()
        .and_then(|c| Receivers::from_config(&c).map(|r| (c, r)));
    match loaded {
        Ok((_, r)) if r.is_empty() => tracing::error!(
            "configuration not reloaded: no gateway in it asks for receipts; still using the previous one"
        ),
        Ok((config, receivers)) => {
            server.reload(receivers);
            println!("reloaded the configuration; receipts now checked for:");
            print_paths(server);
            tracing::info!(
                "configuration reloaded (SIGHUP): {} gateway(s) take receipts",
                server.paths().len()
            );
            let d = &config.dlr;
            let f = &first.dlr;
            if d.listen != f.listen
                || d.max_connections != f.max_connections
                || d.header_timeout_secs != f.header_timeout_secs
                || d.request_timeout_secs != f.request_timeout_secs
                || d.validity_hours != f.validity_hours
                || d.unmatched_after_minutes != f.unmatched_after_minutes
            {
                tracing::warn!(
                    "[dlr] settings changed: they take effect when `dlr serve` is restarted (gateways were reloaded)"
                );
            }
        }
        Err(e) => {
            tracing::error!("configuration not reloaded, still using the previous one: {e:#}")
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
