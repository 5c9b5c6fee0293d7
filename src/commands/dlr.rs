//! `dlr serve`: receive delivery receipts until Ctrl-C.

use anyhow::Result;
use tokio::sync::watch;

use super::send::spawn_signal_handler;
use super::{Ctx, Exit};
use crate::cli::DlrServeArgs;
use crate::dlr::{DlrOptions, DlrServer, Receivers};

pub async fn serve(ctx: &Ctx, args: DlrServeArgs) -> Result<Exit> {
    let config = ctx.config()?;
    let store = ctx.store().await?;
    let receivers = Receivers::from_config(&config)?;
    let listen = args.listen.unwrap_or_else(|| config.dlr.listen.clone());
    let paths = receivers.paths();
    let opts = DlrOptions::from_config(&config);
    let server = DlrServer::start(store, receivers, &listen, opts.clone()).await?;
    println!("receiving delivery receipts on {}", server.base_url());
    for (gateway, path) in paths {
        println!("  {gateway}: {}{path}", server.base_url());
    }
    println!(
        "  messages with no final receipt after {} h become expired; receipts matching nothing for {} min are reported unmatched",
        config.dlr.validity_hours, config.dlr.unmatched_after_minutes
    );
    println!("  counts: GET {}/status", server.base_url());
    let (tx, mut rx) = watch::channel(false);
    spawn_signal_handler(tx);
    let _ = rx.changed().await;
    server.stop().await;
    Ok(Exit::Ok)
}
