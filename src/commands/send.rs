//! `send` (run or resume a campaign) and `gateway simulate`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use super::{Ctx, Exit, find_campaign};
use crate::cli::{FloodArgs, SendArgs, SimulateArgs};
use crate::config::Config;
use crate::dispatch::{self, Counters, Dispatcher, Options, Route, Routes, Stop};
use crate::gateway;
use crate::simulator::{Faults, SimOptions, Simulator};
use crate::store::{Campaign, CampaignState, Store};

pub async fn send(ctx: &Ctx, args: SendArgs) -> Result<Exit> {
    let config = ctx.config()?;
    let store = ctx.store().await?;
    let campaign = find_campaign(&*store, &args.campaign).await?;
    let routes = build_routes(
        &config,
        &campaign,
        Duration::from_secs(args.timeout_secs.max(1)),
    )?;
    // A campaign created before rates were checked may carry one the pacer cannot keep.
    if let Err(e) = crate::config::check_rate(campaign.rate) {
        bail!(
            "campaign {:?} has the rate {}: {e}",
            campaign.name,
            campaign.rate
        );
    }
    let rate = match args.rate {
        Some(r) if !(r > 0.0 && r.is_finite()) => bail!("--rate must be a positive number"),
        Some(r) if r > campaign.rate => bail!(
            "--rate {r} is above the campaign's rate ({}/s); a run may go slower, never faster",
            campaign.rate
        ),
        Some(r) => r,
        None => campaign.rate,
    };
    let opts = Options {
        rate: Some(rate),
        concurrency: args
            .concurrency
            .unwrap_or(config.defaults.concurrency)
            .max(1),
        lease: Duration::from_secs(args.lease_secs.max(2)),
        worker_id: dispatch::new_worker_id(),
        no_wait: args.no_wait,
        launch_chunk: args.launch_chunk,
    };
    // SQLite: one `send` per gateway at a time (see src/send_lock.rs), held until we return.
    let _locks = match crate::store::sqlite_file(&ctx.db) {
        Some(db) => Some(crate::send_lock::SendLocks::take(
            &db,
            &routes.gateway_names(),
            &campaign.name,
        )?),
        None => None,
    };
    let metrics = match &args.metrics {
        Some(addr) => {
            let m = crate::observe::MetricsServer::start(addr).await?;
            eprintln!(
                "metrics: http://{}/metrics, health: http://{}/healthz",
                m.addr, m.addr
            );
            Some(m)
        }
        None => None,
    };
    let (tx, rx) = watch::channel(false);
    spawn_signal_handler(tx, SENDING_STOPS);
    let plain = args.plain || !std::io::stderr().is_terminal();
    let exit = run_campaign(ctx, store, campaign, routes, opts, rx, plain).await;
    if let Some(m) = metrics {
        m.stop().await;
    }
    exit
}

/// Launches (if a draft) and runs a campaign until it stops; prints what happened.
pub async fn run_campaign(
    ctx: &Ctx,
    store: Arc<dyn Store>,
    campaign: Campaign,
    routes: Routes,
    opts: Options,
    shutdown: watch::Receiver<bool>,
    plain: bool,
) -> Result<Exit> {
    match campaign.state {
        CampaignState::Cancelled => bail!(
            "campaign {:?} was cancelled: nothing more goes out",
            campaign.name
        ),
        CampaignState::Paused => bail!(
            "campaign {:?} is paused ({}): resume it first with `smscast campaign resume {}`",
            campaign.name,
            campaign
                .state_reason
                .as_deref()
                .unwrap_or("no reason given"),
            campaign.name
        ),
        CampaignState::Completed => {
            let unknown = count(&store.state_counts(campaign.id).await?, "unknown");
            if unknown > 0 {
                bail!(
                    "campaign {:?} is completed with {unknown} message(s) in doubt: decide with `smscast reconcile {} --resend` or `--give-up`",
                    campaign.name,
                    campaign.name
                );
            }
            println!(
                "campaign {:?} is already completed; see `smscast report {}`",
                campaign.name,
                crate::text::for_terminal(&campaign.name)
            );
            return Ok(Exit::Ok);
        }
        CampaignState::Draft => match store.begin_launch(campaign.id, opts.launch_chunk).await? {
            Some(first) => {
                let members = store.list_size(&campaign.list).await?.unwrap_or(0);
                store
                    .audit_append(
                        &ctx.operator,
                        "launch",
                        &format!("campaign {}", campaign.id),
                        &serde_json::json!({ "members": members, "queued": first.queued, "suppressed": first.suppressed, "complete": first.done, "rate": opts.rate, "worker": opts.worker_id }),
                    )
                    .await?;
                if first.done {
                    eprintln!(
                        "launched {:?}: {} to send, {} suppressed (opted out)",
                        campaign.name, first.queued, first.suppressed
                    );
                } else {
                    eprintln!(
                        "launched {:?}: {members} list members; sending starts with the first {} while the rest are queued (chunks of {})",
                        campaign.name,
                        first.queued + first.suppressed,
                        opts.launch_chunk
                    );
                }
                if campaign.cap_hours > 0 {
                    let held = store
                        .cap_conflicts(campaign.id, campaign.cap_hours * 3_600_000)
                        .await?;
                    if held > 0 {
                        eprintln!(
                            "{held} of them had a message from another campaign in the last {} h: the per-number cap holds them until it allows (see `smscast campaign show {}`)",
                            campaign.cap_hours,
                            crate::text::for_terminal(&campaign.name)
                        );
                    }
                }
            }
            None => eprintln!(
                "{:?} was launched by another `send` a moment ago: joining it",
                campaign.name
            ),
        },
        CampaignState::Running => {}
    }
    let dead = dispatch::dead_local_workers(&store.workers(campaign.id).await?);
    let routes_default_limits = routes.limits(crate::dispatch::parts_of(campaign.segments));
    let via = routes.gateway_names().join(", ");
    let counters = Arc::new(Counters::default());
    let dispatcher = Dispatcher::new(
        store.clone(),
        campaign.clone(),
        routes,
        opts.clone(),
        counters.clone(),
    );
    let recovered = dispatcher.start(&dead).await?;
    if recovered.requeued + recovered.resend + recovered.unknown > 0 {
        eprintln!(
            "recovered from an earlier stop: {} claimed but unsent (queued again), {} possibly sent resent with the same reference, {} possibly sent now in doubt (see `smscast reconcile`)",
            recovered.requeued, recovered.resend, recovered.unknown
        );
    }
    let counts = store.state_counts(campaign.id).await?;
    let mut total: i64 = counts.iter().map(|(_, n)| n).sum();
    let mut pending = count(&counts, "queued");
    // A launch still copying the list: the members not copied yet are pending too.
    if let Some(c) = store.campaign(&format!("#{}", campaign.id)).await?
        && c.launch_after.is_some()
    {
        let members = store.list_size(&campaign.list).await?.unwrap_or(0);
        pending += (members - total).max(0);
        total = total.max(members);
    }
    eprintln!(
        "sending {:?} via {}: {pending} pending of {total}, rate in force {}/s, concurrency {}, hours {} (Asia/Ho_Chi_Minh)",
        campaign.name,
        via,
        opts.rate.map_or("unlimited".to_string(), |r| r.to_string()),
        dispatcher.concurrency(),
        crate::window::Hours {
            start: campaign.window_start,
            end: campaign.window_end
        },
    );
    if let Some(rate) = opts.rate {
        let personalised = crate::template::Template::parse(&campaign.message_text)
            .is_ok_and(|t| t.is_personalised());
        let gw = &routes_default_limits;
        eprintln!(
            "{}",
            pace_summary(rate, gw.0, gw.1, campaign.segments, personalised, pending)
        );
    }
    let progress = spawn_progress(
        counters.clone(),
        pending as u64,
        plain,
        (campaign.cap_hours > 0).then(|| (store.clone(), campaign.id)),
    );
    let started = Instant::now();
    let stop = dispatcher.run(shutdown).await?;
    progress.abort();
    let elapsed = started.elapsed().as_secs_f64().max(0.001);
    let submitted = counters.submitted.load(Ordering::Relaxed);
    eprintln!(
        "this run: {submitted} submitted in {elapsed:.1} s ({:.1}/s), {} retried, {} rejected, {} failed, {} in doubt",
        submitted as f64 / elapsed,
        counters.retried.load(Ordering::Relaxed),
        counters.rejected.load(Ordering::Relaxed),
        counters.failed.load(Ordering::Relaxed),
        counters.in_doubt.load(Ordering::Relaxed),
    );
    // Shown, not run: a name may hold control characters.
    let name = crate::text::for_terminal(&campaign.name);
    match stop {
        Stop::Completed => {
            let unknown = count(&store.state_counts(campaign.id).await?, "unknown");
            if unknown > 0 {
                eprintln!(
                    "completed, with {unknown} message(s) in doubt: decide with `smscast reconcile {name} --resend` or `--give-up`"
                );
            } else {
                eprintln!("completed: see `smscast report {name}`");
            }
            Ok(Exit::Ok)
        }
        Stop::NothingLeft => {
            // Every row is settled and this worker did not mark the campaign completed: another
            // worker finished it (taking over the rows of any worker that died).
            let unknown = count(&store.state_counts(campaign.id).await?, "unknown");
            if unknown > 0 {
                eprintln!(
                    "nothing left to send: another worker completed the campaign, with {unknown} message(s) in doubt: decide with `smscast reconcile {name} --resend` or `--give-up`"
                );
            } else {
                eprintln!(
                    "nothing left to send: another worker completed the campaign: see `smscast report {name}`"
                );
            }
            Ok(Exit::Ok)
        }
        Stop::Interrupted => {
            eprintln!(
                "stopped: every message sent so far is recorded. Run `smscast send {name}` to resume."
            );
            Ok(Exit::Interrupted)
        }
        Stop::Paused(reason) => {
            eprintln!("campaign paused: {reason}");
            // An operator's `campaign pause` (the reason it writes) is a normal end; a pause by
            // the breaker or the gateway (here or in another worker) means the run could not
            // finish.
            if !counters.tripped() && reason.starts_with("paused by ") {
                Ok(Exit::Ok)
            } else {
                eprintln!(
                    "the campaign could not finish: fix the cause above, then `smscast campaign resume {name}` and `smscast send {name}`"
                );
                Ok(Exit::Failed)
            }
        }
        Stop::Cancelled => {
            eprintln!("campaign cancelled: stopped sending");
            Ok(Exit::Ok)
        }
        Stop::OutsideWindow(at) => {
            let at = chrono::DateTime::from_timestamp_millis(at).unwrap_or_default();
            eprintln!(
                "outside the sending window: run `smscast send {name}` again after {}",
                crate::window::local(at)
            );
            Ok(Exit::Ok)
        }
        Stop::NothingDueUntil(at) => {
            let at = chrono::DateTime::from_timestamp_millis(at).unwrap_or_default();
            let (held, until) = store.held_by_cap(campaign.id).await?;
            let why = match super::campaign::held_line(held, until, campaign.cap_hours) {
                Some(line) => format!(
                    "{held} held {line}: another campaign reached these numbers less than {} h ago",
                    campaign.cap_hours
                ),
                None => "retry backoff, or the per-number cap".to_string(),
            };
            eprintln!(
                "nothing is due before {} ({why}): run `smscast send {name}` again then",
                crate::window::local(at)
            );
            Ok(Exit::Ok)
        }
        Stop::PastDeadline => {
            let left = count(&store.state_counts(campaign.id).await?, "queued");
            eprintln!(
                "the campaign's send-by date has passed: nothing more goes out ({left} message(s) never sent)"
            );
            Ok(Exit::Failed)
        }
    }
}

/// What the gateways of a campaign through `gateway` allow together, in messages a second:
/// the sum of their `rate`s (each carrier's gateway sends at its own, all at once), with how
/// it adds up; `None` when one of them has no `rate` (then only the campaign's holds).
pub fn routes_rate(config: &Config, gateway: &str) -> Option<(f64, String)> {
    let each = config
        .routed_gateways(gateway)
        .into_iter()
        .map(|g| Some((g, config.gateways.get(g)?.rate()?)))
        .collect::<Option<Vec<_>>>()?;
    let sum = each.iter().map(|(_, r)| r).sum();
    let terms: Vec<String> = each
        .iter()
        .map(|(g, r)| format!("{g} {}/s", figure(*r)))
        .collect();
    Some((sum, terms.join(" + ")))
}

/// The limits [`pace_summary`] weighs for a campaign through `gateway`, from the
/// configuration (see [`dispatch::combined_limits`]).
pub fn route_limits(config: &Config, gateway: &str, parts: u32) -> (Option<f64>, Option<f64>) {
    let each: Vec<_> = config
        .routed_gateways(gateway)
        .into_iter()
        .map(|g| {
            let c = config.gateways.get(g);
            (c.and_then(|c| c.rate()), c.and_then(|c| c.sms_per_second()))
        })
        .collect();
    dispatch::combined_limits(&each, parts)
}

/// What `campaign create` and `send` say about the pace: messages per second, SMS parts per
/// second, and how long `count` messages take at that pace (sending time: hours outside the
/// window come on top). The message rate is the lowest of the run's `rate`, the gateway's
/// `rate`, and its `sms_per_second` divided by the parts of one message; a personalised text
/// is counted at its longest (`segments`), so it may go faster.
pub fn pace_summary(
    rate: f64,
    gateway_rate: Option<f64>,
    sms_per_second: Option<f64>,
    segments: i64,
    personalised: bool,
    count: i64,
) -> String {
    let parts = dispatch::parts_of(segments);
    let messages =
        dispatch::message_rate(Some(rate), gateway_rate, sms_per_second, parts).unwrap_or(rate);
    let (up_to, at_most) = if personalised {
        ("up to ", "at most ")
    } else {
        ("", "")
    };
    let limit = match sms_per_second {
        Some(p) => format!(" (the gateway allows {} SMS parts/s)", figure(p)),
        None => String::new(),
    };
    format!(
        "pace: {} messages/s × {up_to}{segments} SMS part(s) = {up_to}{} SMS parts/s{limit}; {count} message(s) take {at_most}{} of sending time",
        figure(messages),
        figure(messages * f64::from(parts)),
        about(count as f64 / messages)
    )
}

/// A rate for people: whole numbers as such, others with up to two decimals.
pub(crate) fn figure(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A duration for people: "about 3 s", "about 2 h 5 min", "about 3 d 4 h".
pub(crate) fn about(secs: f64) -> String {
    let s = secs.max(0.0).ceil() as u64;
    match s {
        0..90 => format!("about {s} s"),
        90..5_400 => format!("about {} min", s.div_ceil(60)),
        5_400..172_800 => format!("about {} h {} min", s / 3_600, (s % 3_600).div_ceil(60)),
        _ => format!("about {} d {} h", s / 86_400, (s % 86_400).div_ceil(3_600)),
    }
}

fn count(counts: &[(String, i64)], state: &str) -> i64 {
    counts
        .iter()
        .find(|(s, _)| s == state)
        .map_or(0, |(_, n)| *n)
}

/// The campaign's gateway, and per-carrier gateways when it goes by `[routing]`.
pub fn build_routes(config: &Config, campaign: &Campaign, timeout: Duration) -> Result<Routes> {
    let default = gateway::build(config, &campaign.gateway, timeout)?;
    let mut routes = Routes::single(default);
    if config.routing.get("default") == Some(&campaign.gateway) {
        let mut built: HashMap<&str, Arc<Route>> = HashMap::new();
        for (carrier, name) in config.routing.iter().filter(|(c, _)| *c != "default") {
            if name == &campaign.gateway {
                continue;
            }
            let route = match built.get(name.as_str()) {
                Some(r) => r.clone(),
                None => {
                    let r = Arc::new(Route::new(gateway::build(config, name, timeout)?));
                    built.insert(name, r.clone());
                    r
                }
            };
            routes.by_carrier.insert(carrier.to_lowercase(), route);
        }
    }
    Ok(routes)
}

/// What `send` says on Ctrl-C.
pub const SENDING_STOPS: &str =
    "stopping: no new messages; finishing and recording the ones in flight…";

/// Ctrl-C or SIGTERM asks for a clean stop (`tx`), and `stopping` says what the command does
/// on the way out; a second Ctrl-C exits at once (130; still safe: what was on the wire stays
/// `sending` and is recovered as in doubt).
pub fn spawn_signal_handler(tx: watch::Sender<bool>, stopping: &'static str) {
    // Registered before returning, not when the task first runs: a signal that arrives the
    // moment after the caller says it is ready is already ours.
    #[cfg(unix)]
    let (mut int, mut term) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    tokio::spawn(async move {
        loop {
            #[cfg(unix)]
            let got = async {
                match (int.as_mut(), term.as_mut()) {
                    (Some(i), Some(t)) => {
                        tokio::select! { _ = i.recv() => {}, _ = t.recv() => {} }
                    }
                    (Some(i), None) => {
                        i.recv().await;
                    }
                    _ => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            };
            #[cfg(not(unix))]
            let got = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            got.await;
            if *tx.borrow() {
                eprintln!("second interrupt: exiting now");
                std::process::exit(130);
            }
            eprintln!("{stopping}");
            let _ = tx.send(true);
        }
    });
}

/// `held`: where to count the numbers the per-number cap holds back (every 5 s).
fn spawn_progress(
    counters: Arc<Counters>,
    pending: u64,
    plain: bool,
    held: Option<(Arc<dyn Store>, i64)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut held_now = 0i64;
        let mut held_checked: Option<Instant> = None;
        let bar = if plain {
            None
        } else {
            let b = ProgressBar::new(pending);
            b.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} sent ({per_sec}, {eta} left) {msg}",
                )
                .expect("valid template"),
            );
            Some(b)
        };
        let mut last_line = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let done = counters.submitted.load(Ordering::Relaxed)
                + counters.rejected.load(Ordering::Relaxed)
                + counters.failed.load(Ordering::Relaxed)
                + counters.in_doubt.load(Ordering::Relaxed);
            crate::observe::queue_depth(pending.saturating_sub(done));
            if let Some((store, campaign)) = &held
                && held_checked.is_none_or(|t| t.elapsed() >= Duration::from_secs(5))
            {
                held_checked = Some(Instant::now());
                if let Ok((n, _)) = store.held_by_cap(*campaign).await {
                    held_now = n;
                }
            }
            let mut msg = format!(
                "retried {} rejected {} failed {}",
                counters.retried.load(Ordering::Relaxed),
                counters.rejected.load(Ordering::Relaxed),
                counters.failed.load(Ordering::Relaxed)
            );
            if held_now > 0 {
                msg.push_str(&format!(", {held_now} held by the per-number cap"));
            }
            match &bar {
                Some(b) => {
                    b.set_position(done);
                    b.set_message(msg);
                }
                None if last_line.elapsed() >= Duration::from_secs(5) => {
                    last_line = Instant::now();
                    let secs = started.elapsed().as_secs_f64().max(0.001);
                    let rate = counters.submitted.load(Ordering::Relaxed) as f64 / secs;
                    eprintln!("progress: {done}/{pending} done, {rate:.1}/s, {msg}");
                }
                None => {}
            }
        }
    })
}

pub async fn simulate(args: SimulateArgs) -> Result<Exit> {
    for (flag, share) in [
        ("--fail-rate", args.fail_rate),
        ("--throttle-rate", args.throttle_rate),
        ("--hang-rate", args.hang_rate),
    ] {
        if !(0.0..=1.0).contains(&share) {
            bail!("{flag} is a share between 0.0 and 1.0");
        }
    }
    let sim = Simulator::start(
        &args.listen,
        SimOptions {
            latency: Duration::from_millis(args.latency_ms),
            faults: Faults {
                server_error: args.fail_rate,
                throttle: args.throttle_rate,
                retry_after_secs: Some(args.retry_after_secs),
                hang: args.hang_rate,
                hang_for: Duration::from_millis(args.hang_ms),
                reject_suffixes: args.reject_suffix,
                ported: args.ported,
                jitter: Duration::from_millis(args.jitter_ms),
                ..Default::default()
            },
            max_rps: args.max_rps,
            idempotency_header: args.idempotency_header,
            keep_bodies: args.keep_bodies,
            receipts: match &args.receipts_auth_token_env {
                Some(var) => Some(crate::simulator::receipts::ReceiptOptions {
                    auth_token: std::env::var(var).map_err(|_| {
                        anyhow::anyhow!("--receipts-auth-token-env {var}: the variable is not set")
                    })?,
                    kannel_parts: args.kannel_receipts_per_part,
                    ..Default::default()
                }),
                // Kannel's receipts are not signed: no token needed.
                None if args.kannel_receipts_per_part => {
                    Some(crate::simulator::receipts::ReceiptOptions {
                        kannel_parts: true,
                        ..Default::default()
                    })
                }
                None => None,
            },
        },
    )
    .await?;
    let (tx, mut rx) = watch::channel(false);
    spawn_signal_handler(tx, "stopping the simulator");
    println!("simulator listening on {}", sim.base_url());
    println!(
        "  send:  POST {}/2010-04-01/Accounts/{{sid}}/Messages.json (any Basic auth)",
        sim.base_url()
    );
    println!(
        "  books: GET {0}/stats, {0}/stats/recipients, {0}/stats/arrivals",
        sim.base_url()
    );
    println!(
        "  for smscast.toml (any credentials are accepted):\n\n[gateways.sim]\nkind = \"twilio\"\nbase_url = \"{}\"\naccount_sid = \"ACsimulator\"\nauth_token = \"any\"\n",
        sim.base_url()
    );
    let _ = rx.changed().await;
    sim.stop().await;
    Ok(Exit::Ok)
}

/// `gateway flood`: the HTTP client's own ceiling, no database, for the headroom benchmark.
pub async fn flood(ctx: &Ctx, args: FloodArgs) -> Result<Exit> {
    let gw = gateway::build(&ctx.config()?, &args.gateway, Duration::from_secs(10))?;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let (gw, next) = (gw.clone(), next.clone());
        let total = args.requests;
        tasks.spawn(async move {
            let mut failed = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return failed;
                }
                let reference = format!("flood-{i}");
                let to = format!("849{:08}", i % 100_000_000);
                let sms = gateway::OutboundSms {
                    reference: &reference,
                    to: &to,
                    from: "LONGAN",
                    text: "flood",
                    unicode: false,
                };
                failed += u64::from(gw.submit(&sms).await.is_err());
            }
        });
    }
    let mut failed = 0;
    while let Some(r) = tasks.join_next().await {
        failed += r?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "flood: {} requests in {secs:.1} s ({:.1}/s), {failed} failed",
        args.requests,
        args.requests as f64 / secs
    );
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_is_the_lowest_limit_in_messages_and_in_parts() {
        let line = pace_summary(1000.0, None, Some(60.0), 3, false, 60);
        assert!(
            line.contains("20 messages/s × 3 SMS part(s) = 60 SMS parts/s"),
            "{line}"
        );
        assert!(line.contains("about 3 s"), "{line}");
        let line = pace_summary(10.0, Some(100.0), Some(60.0), 3, false, 2_000_000);
        assert!(
            line.contains("10 messages/s × 3 SMS part(s) = 30 SMS parts/s"),
            "{line}"
        );
        assert!(line.contains("about 2 d 8 h"), "{line}");
        let line = pace_summary(100.0, Some(50.0), None, 1, true, 3_000);
        assert!(
            line.contains("50 messages/s × up to 1 SMS part(s)"),
            "{line}"
        );
        assert!(line.contains("at most about 60 s"), "{line}");
        assert_eq!(figure(6.666_666), "6.67");
        assert_eq!(about(5_400.0), "about 1 h 30 min");
    }
}
