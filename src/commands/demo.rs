//! `smscast demo`: the whole journey against the built-in simulator, in a fresh folder.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;

use super::{Ctx, Exit};
use crate::cli::DemoArgs;
use crate::config::Config;
use crate::dispatch::{self, Options, Routes};
use crate::dlr::{DlrOptions, DlrServer, Receivers};
use crate::message::MessageFile;
use crate::sample::{self, Shape};
use crate::simulator::receipts::ReceiptOptions;
use crate::simulator::{SimOptions, SimStats, Simulator};
use crate::store::NewCampaign;

/// The simulator's auth token, which signs its receipts (a demo, not a secret).
const DEMO_TOKEN: &str = "demo-auth-token";

const MESSAGE: &str = include_str!("../../messages/action-month-2022.toml");

pub async fn run(args: DemoArgs) -> Result<Exit> {
    let dir = args.dir.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "smscast-demo-{}",
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("Cannot create {}", dir.display()))?;
    let db = dir.join("smscast.db");
    let ctx = Ctx::new(
        format!("sqlite://{}", db.display()),
        None,
        format!("demo:{}", super::default_operator()),
    );
    println!("smscast demo in {}/", dir.display());

    // 1. A realistic list: Long An's districts, the carrier mix, messy numbers, some bad rows.
    let csv = dir.join("long-an-sample.csv");
    let truth = sample::write_csv(&csv, args.subscribers as u64, 2022, Shape::default())?;
    println!(
        "\n[1/5] generated {} ({} rows: {} valid numbers, {} repeats, {} bad rows)",
        csv.display(),
        truth.rows,
        truth.valid_unique,
        truth.duplicates,
        truth.bad
    );
    println!(
        "$ smscast subscribers import {} --list long-an --rejects {}",
        csv.display(),
        dir.join("rejects.csv").display()
    );
    super::subscribers::run(
        &ctx,
        crate::cli::SubscribersCmd::Import(crate::cli::ImportArgs {
            file: csv.clone(),
            list: "long-an".into(),
            phone_column: None,
            district_column: None,
            carrier: None,
            carrier_column: None,
            rejects: Some(dir.join("rejects.csv")),
            sort_memory: 64,
            json: false,
        }),
    )
    .await?;

    // 2. The message, checked.
    let msg_path = dir.join("action-month-2022.toml");
    std::fs::write(&msg_path, MESSAGE)?;
    println!("\n[2/5] $ smscast message check {}", msg_path.display());
    super::message::check(&ctx, &msg_path, false, Some("long-an"), false).await?;

    // 3. The gateway simulator on a free loopback port.
    // It sends signed delivery receipts (late, some twice, out of order); one number in 40
    // ends "undelivered", as real phones that are off or out of service do.
    let undelivered = truth.numbers.iter().step_by(40).cloned().collect();
    let sim = Simulator::start(
        "127.0.0.1:0",
        SimOptions {
            latency: Duration::from_millis(20),
            receipts: Some(ReceiptOptions {
                auth_token: DEMO_TOKEN.into(),
                max_delay: Duration::from_millis(1500),
                duplicate_rate: 0.1,
                undelivered,
                kannel_parts: false,
            }),
            ..Default::default()
        },
    )
    .await?;
    let store = ctx.store().await?;
    let dlr_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = Config::parse(&format!(
        "[gateways.simulator]\nkind = \"twilio\"\nbase_url = \"{}\"\naccount_sid = \"ACdemo\"\nauth_token = \"{DEMO_TOKEN}\"\nstatus_callback = \"http://127.0.0.1:{dlr_port}/twilio/simulator\"\n",
        sim.base_url()
    ))?;
    let dlr = DlrServer::start(
        store.clone(),
        Receivers::from_config(&config)?,
        &format!("127.0.0.1:{dlr_port}"),
        DlrOptions {
            upkeep_every: Duration::from_millis(500),
            ..DlrOptions::from_config(&config)
        },
    )
    .await?;
    println!(
        "\n[3/5] gateway simulator (Twilio Messages API) on {}, delivery receipts to {}/twilio/simulator",
        sim.base_url(),
        dlr.base_url()
    );

    // 4. Create and send.
    let message = MessageFile::load(&msg_path)?;
    let a = message.prepare(false);
    let new = NewCampaign {
        name: "action-month-2022".into(),
        list: "long-an".into(),
        message_text: a.text.clone(),
        encoding: a.encoding.as_str().into(),
        segments: a.segments as i64,
        characters: a.characters as i64,
        sender: message.sender.clone().unwrap_or_else(|| "LONGAN".into()),
        gateway: "simulator".into(),
        rate: args.rate,
        window_start: 0,
        window_end: 1440,
        starts_ms: None,
        ends_ms: None,
        max_attempts: 5,
        cap_hours: 24,
        created_by: ctx.operator.clone(),
    };
    let id = store.create_campaign(&new).await?;
    store
        .audit_append(
            &ctx.operator,
            "create",
            &format!("campaign {id}"),
            &serde_json::to_value(&new)?,
        )
        .await?;
    // The demo sends around the clock; on the record, like any widened window.
    store
        .audit_append(
            &ctx.operator,
            "override_hours",
            &format!("campaign {id}"),
            &serde_json::json!({"chosen": "00:00-24:00", "why": "demo"}),
        )
        .await?;
    println!(
        "\n[4/5] $ smscast campaign create action-month-2022 --list long-an --message {} --rate {} --hours 00:00-24:00",
        msg_path.display(),
        args.rate
    );
    println!("      $ smscast send action-month-2022");
    let gateway = crate::gateway::build(&config, "simulator", Duration::from_secs(10))?;
    let campaign = super::find_campaign(&*store, &id.to_string()).await?;
    let (tx, rx) = watch::channel(false);
    super::send::spawn_signal_handler(tx, super::send::SENDING_STOPS);
    let opts = Options {
        rate: Some(args.rate),
        concurrency: 32,
        lease: Duration::from_secs(30),
        worker_id: dispatch::new_worker_id(),
        no_wait: true,
        launch_chunk: crate::store::LAUNCH_CHUNK,
    };
    let plain = !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let exit = super::send::run_campaign(
        &ctx,
        store.clone(),
        campaign,
        Routes::single(gateway),
        opts,
        rx,
        plain,
    )
    .await?;
    let stats: SimStats = reqwest::get(format!("{}/stats", sim.base_url()))
        .await?
        .json()
        .await?;
    if exit == Exit::Ok {
        // Receipts come after the sends: give the last ones a moment to arrive.
        println!("\nwaiting for the last delivery receipts…");
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < until {
            let counts = store.state_counts(id).await?;
            if !counts.iter().any(|(s, n)| s == "submitted" && *n > 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    dlr.stop().await;
    sim.stop().await;
    if exit != Exit::Ok {
        return Ok(exit);
    }

    // 5. The report, and the gateway's own books beside it.
    println!("\n[5/5] $ smscast report action-month-2022");
    super::inspect::report(&ctx, crate::cli::ReportArgs::table("action-month-2022")).await?;
    // Checkpointed: the file alone is the whole record, ready to hand over.
    ctx.close().await;
    println!(
        "Gateway simulator's own count: {} accepted for {} recipients, {} duplicates.",
        stats.accepted, stats.unique_recipients, stats.duplicates
    );
    println!(
        "\nEverything is in {db}. Try:\n  smscast --db sqlite://{db} report action-month-2022 --format json\n  smscast --db sqlite://{db} audit --verify",
        db = db.display()
    );
    Ok(Exit::Ok)
}

/// `smscast gen-sample` (hidden): a realistic file with its ground truth, for tests and the
/// import benchmark.
pub fn gen_sample(args: &crate::cli::GenSampleArgs) -> Result<Exit> {
    use crate::cli::SampleDelimiter;
    let shape = if args.clean {
        Shape {
            bad_share: 0.0,
            duplicate_share: 0.0,
            messy: false,
        }
    } else {
        Shape::default()
    };
    let form = sample::Form {
        delimiter: match args.delimiter {
            SampleDelimiter::Comma => b',',
            SampleDelimiter::Semicolon => b';',
            SampleDelimiter::Tab => b'\t',
        },
        crlf: args.crlf,
        bom: args.bom,
        utf16: args.utf16,
    };
    let truth = sample::write_csv_form(&args.out, args.rows, args.seed, shape, form)
        .with_context(|| format!("Cannot write {}", args.out.display()))?;
    let summary = serde_json::json!({
        "file": args.out.display().to_string(),
        "rows": truth.rows,
        "valid_unique": truth.valid_unique,
        "duplicates": truth.duplicates,
        "bad": truth.bad,
        "legacy": truth.legacy,
    });
    if args.json {
        super::print_json(&summary)?;
    } else {
        println!(
            "{}: {} rows ({} distinct valid numbers, {} repeats, {} bad rows, {} legacy 11-digit)",
            args.out.display(),
            truth.rows,
            truth.valid_unique,
            truth.duplicates,
            truth.bad,
            truth.legacy
        );
    }
    Ok(Exit::Ok)
}
