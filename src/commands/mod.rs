//! One module per group of subcommands: each turns raw flags into settings, calls the
//! library, and prints. Errors bubble up to `main`, which prints them once.

mod campaign;
mod carrier;
mod demo;
mod dlr;
mod inspect;
mod message;
mod send;
mod subscribers;
mod test_send;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use crate::cli::{Cli, Command, DlrCmd, GatewayCmd, MessageCmd, ResultsCmd};
use crate::config::Config;
use crate::store::{self, Access, Store};

/// What a command finished with, for the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok,
    /// Ctrl-C / SIGTERM after a clean stop: 130.
    Interrupted,
    /// A check failed (e.g. `audit --verify` found tampering): 1.
    Failed,
    /// The command line is incomplete, found out after looking at the data (the message is
    /// already printed): 2, as clap's usage errors.
    Usage,
}

/// Settings shared by every command.
pub struct Ctx {
    pub db: String,
    pub config_path: Option<PathBuf>,
    pub operator: String,
    /// Stores this command opened, closed cleanly when it ends.
    opened: tokio::sync::Mutex<Vec<Arc<dyn Store>>>,
}

impl Ctx {
    pub fn new(db: String, config_path: Option<PathBuf>, operator: String) -> Self {
        Self {
            db,
            config_path,
            operator,
            opened: Default::default(),
        }
    }
    pub fn config(&self) -> Result<Config> {
        Config::load(self.config_path.as_deref())
    }
    pub async fn store(&self) -> Result<Arc<dyn Store>> {
        check_db_scheme(&self.db)?;
        let store = store::open(&self.db, Access::ReadWrite).await?;
        self.opened.lock().await.push(store.clone());
        Ok(store)
    }
    /// For auditors' commands: the connection refuses writes.
    pub async fn store_read_only(&self) -> Result<Arc<dyn Store>> {
        check_db_scheme(&self.db)?;
        let store = store::open(&self.db, Access::ReadOnly).await?;
        self.opened.lock().await.push(store.clone());
        Ok(store)
    }
    /// Closes every store the command opened (SQLite: the file is checkpointed).
    pub async fn close(&self) {
        for store in self.opened.lock().await.drain(..) {
            store.close().await;
        }
    }
}

/// Refuses a URL whose scheme smscast does not know (`postgress://…` would otherwise be
/// taken for a SQLite file of that name, and created).
fn check_db_scheme(url: &str) -> Result<()> {
    const KNOWN: [&str; 3] = ["sqlite", "postgres", "postgresql"];
    let Some((scheme, _)) = url.split_once("://") else {
        return Ok(());
    };
    if KNOWN.contains(&scheme) {
        return Ok(());
    }
    let hint = did_you_mean(scheme, KNOWN.iter().copied())
        .map(|s| format!(" (did you mean {s}://?)"))
        .unwrap_or_default();
    anyhow::bail!(
        "the database URL {} has the scheme {scheme:?}, which smscast does not know{hint}: use sqlite://FILE (default sqlite://smscast.db) or postgres://USER:PASSWORD@HOST/DATABASE",
        store::redact_url(url)
    )
}

/// The candidate closest to `wrong`, when it is close enough to be a typo.
pub fn did_you_mean<'a>(wrong: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(wrong, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

pub fn default_operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{}", crate::dispatch::hostname())
}

pub async fn run(cli: Cli) -> Result<Exit> {
    let ctx = Ctx::new(
        cli.db,
        cli.config,
        cli.operator.unwrap_or_else(default_operator),
    );
    let result = dispatch_command(&ctx, cli.command).await;
    ctx.close().await;
    result
}

async fn dispatch_command(ctx: &Ctx, command: Command) -> Result<Exit> {
    match command {
        Command::Subscribers(cmd) => subscribers::run(ctx, cmd).await,
        Command::Lists { json } => subscribers::lists(ctx, json).await,
        Command::Message(MessageCmd::Check {
            file,
            no_diacritics,
            list,
            json,
        }) => message::check(ctx, &file, no_diacritics, list.as_deref(), json).await,
        Command::Campaign(cmd) => campaign::run(ctx, cmd).await,
        Command::Send(args) => send::send(ctx, args).await,
        Command::Reconcile(args) => campaign::reconcile(ctx, args).await,
        Command::Results(ResultsCmd::Import(args)) => carrier::import_results(ctx, args).await,
        Command::Report(args) => inspect::report(ctx, args).await,
        Command::Lookup(args) => inspect::lookup(ctx, args).await,
        Command::Audit(args) => inspect::audit(ctx, args).await,
        Command::Backup(args) => inspect::backup(ctx, args).await,
        Command::Gateway(GatewayCmd::Simulate(args)) => send::simulate(args).await,
        Command::Gateway(GatewayCmd::Flood(args)) => send::flood(ctx, args).await,
        Command::Dlr(DlrCmd::Serve(args)) => dlr::serve(ctx, args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::GenSample(args) => demo::gen_sample(&args),
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Finds a campaign by name or id, with an error that says what to do (and the name meant,
/// when the key looks like a typo of one).
pub async fn find_campaign(store: &dyn Store, key: &str) -> Result<crate::store::Campaign> {
    if let Some(c) = store.campaign(key).await? {
        return Ok(c);
    }
    let campaigns = store.campaigns().await?;
    match did_you_mean(key, campaigns.iter().map(|c| c.name.as_str())) {
        Some(name) => anyhow::bail!(
            "there is no campaign {key:?}: did you mean {name:?}? (see `smscast campaign list`)"
        ),
        None => anyhow::bail!("there is no campaign {key:?}: see `smscast campaign list`"),
    }
}
