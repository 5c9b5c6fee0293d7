//! `GET /metrics` during and after a simulated campaign: the counters equal the report's
//! figures; `send --metrics ADDR` serves them from the real binary while it sends.

mod common;

use std::time::Duration;

use smscast::config::Config;
use smscast::dispatch::{Routes, Stop};
use smscast::dlr::{DlrOptions, DlrServer, Receivers};
use smscast::gateway;
use smscast::simulator::receipts::ReceiptOptions;
use smscast::simulator::{SimOptions, Simulator};

const TOKEN: &str = "sim-auth-token";
const N: usize = 150;

/// The value of the sample `name{labels}` (labels in any order) in a Prometheus text page.
fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let series = l.rsplit_once(' ').map_or(*l, |(s, _)| s);
            (series == name || series.starts_with(&format!("{name}{{")))
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

fn sum(page: &str, name: &str) -> f64 {
    sum_where(page, name, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_simulated_campaign_equal_the_reports_figures() {
    let dir = common::TempDir::new("metrics");
    let store = common::open_store(&dir).await;
    let numbers = common::numbers(N);
    let sim = Simulator::start(
        "127.0.0.1:0",
        SimOptions {
            receipts: Some(ReceiptOptions {
                auth_token: TOKEN.into(),
                max_delay: Duration::from_millis(200),
                duplicate_rate: 0.0,
                undelivered: numbers.iter().step_by(10).cloned().collect(),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dlr_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = Config::parse(&format!(
        "[gateways.sim]\nkind = \"twilio\"\nbase_url = \"{}\"\naccount_sid = \"ACsim\"\nauth_token = \"{TOKEN}\"\nstatus_callback = \"http://127.0.0.1:{dlr_port}/twilio/sim\"\n",
        sim.base_url()
    ))
    .unwrap();
    let server = DlrServer::start(
        store.clone(),
        Receivers::from_config(&config).unwrap(),
        &format!("127.0.0.1:{dlr_port}"),
        DlrOptions {
            upkeep_every: Duration::from_millis(200),
            validity: Duration::from_secs(3600),
            unmatched_after: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    let metrics_url = format!("{}/metrics", server.base_url());
    let campaign = common::seed(&*store, &numbers, "Xin chào Long An", "sim").await;
    let gw = gateway::build(&config, "sim", Duration::from_secs(10)).unwrap();

    // Scrape while the campaign runs.
    let scraper = {
        let url = metrics_url.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..100 {
                if let Ok(r) = reqwest::get(&url).await {
                    let page = r.text().await.unwrap_or_default();
                    seen.push(
                        sample(&page, "smscast_messages_total", &[("outcome", "submitted")])
                            .unwrap_or(0.0),
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        })
    };
    assert_eq!(
        common::send(store.clone(), campaign.clone(), Routes::single(gw)).await,
        Stop::Completed
    );
    let failed = (N as i64 + 9) / 10;
    common::wait_for_state(
        &*store,
        campaign.id,
        "failed",
        failed,
        Duration::from_secs(20),
    )
    .await;
    common::wait_for_state(
        &*store,
        campaign.id,
        "delivered",
        N as i64 - failed,
        Duration::from_secs(20),
    )
    .await;
    let seen = scraper.await.unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "counters never go back: {seen:?}"
    );

    let page = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The report, as an auditor runs it.
    let out = std::process::Command::new(common::BIN)
        .args(["report", &campaign.id.to_string(), "--format", "json"])
        .env("SMSCAST_DATABASE_URL", common::db_url(&dir))
        .env_remove("SMSCAST_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let submitted = sample(
        &page,
        "smscast_messages_total",
        &[("gateway", "sim"), ("outcome", "submitted")],
    );
    assert_eq!(
        submitted,
        Some(report["attempts"]["submitted"].as_f64().unwrap()),
        "{page}"
    );
    assert_eq!(submitted, Some(N as f64));
    let delivered = sum_where(&page, "smscast_receipts_total", &[("state", "delivered")]);
    assert_eq!(
        delivered,
        report["by_state"]["delivered"].as_f64().unwrap(),
        "{page}"
    );
    let failed_receipts = sum_where(&page, "smscast_receipts_total", &[("state", "failed")]);
    assert_eq!(
        failed_receipts,
        report["by_state"]["failed"].as_f64().unwrap(),
        "{page}"
    );
    // No duplicates were sent: one final receipt per message, applied at once or kept
    // pending until its submission was recorded.
    // The rest of the set is there, by name.
    for name in [
        "smscast_gateway_latency_seconds_bucket",
        "smscast_in_flight",
        "smscast_rate_in_force",
        "smscast_last_heartbeat_timestamp_seconds",
        "smscast_http_connections",
    ] {
        assert!(page.contains(name), "{name} missing:\n{page}");
    }
    assert_eq!(
        sample(&page, "smscast_in_flight", &[("gateway", "sim")]),
        Some(0.0)
    );
    assert_eq!(
        sample(&page, "smscast_rate_in_force", &[("gateway", "sim")]),
        Some(200.0)
    );
    assert!(sum(&page, "smscast_gateway_latency_seconds_count") >= N as f64);
    let health = reqwest::get(format!("{}/healthz", server.base_url()))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    server.stop().await;
    sim.stop().await;
}

fn sum_where(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// The real binary: `send --metrics` serves /metrics and /healthz while it sends, with
/// submissions counted as they happen; at the end its own figure equals the report's.
#[test]
fn send_serves_metrics_during_the_campaign() {
    let env = common::Env::new("sendmetrics");
    let sim = common::Sim::start(&[]);
    env.config_for(&sim.url, "");
    let rows = 400;
    smscast::sample::write_csv(
        &env.path("list.csv"),
        rows,
        7,
        smscast::sample::Shape::default(),
    )
    .unwrap();
    env.ok(&["subscribers", "import", "list.csv", "--list", "la"]);
    let msg = env.message();
    env.ok(&[
        "campaign",
        "create",
        "c",
        "--list",
        "la",
        "--message",
        &msg,
        "--rate",
        "100",
        "--hours",
        "00:00-24:00",
    ]);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let mut child = env
        .cmd()
        .args([
            "send",
            "c",
            "--plain",
            "--metrics",
            &addr,
            "--log-format",
            "json",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut scraped = Vec::new();
    let mut saw_queue_depth = false;
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(60) {
        if let Some(page) = try_get(&addr, "/metrics") {
            scraped.push(
                sample(&page, "smscast_messages_total", &[("outcome", "submitted")]).unwrap_or(0.0),
            );
            saw_queue_depth |= page.contains("smscast_queue_depth");
            if scraped.len() == 1 {
                assert_eq!(try_get(&addr, "/healthz").as_deref(), Some("ok\n"));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report = env.json(&["report", "c", "--format", "json"]);
    let accepted = report["attempts"]["submitted"].as_f64().unwrap();
    assert!(
        scraped.iter().any(|&v| v > 0.0 && v < accepted),
        "scraped during the campaign: {scraped:?} (the report: {accepted} submitted)"
    );
    assert!(scraped.windows(2).all(|w| w[0] <= w[1]), "{scraped:?}");
    assert!(saw_queue_depth, "smscast_queue_depth never scraped");
    assert!(
        stderr.contains(&format!("this run: {accepted} submitted")),
        "{stderr}"
    );
}

/// GET on loopback; None when nothing answers (yet).
fn try_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    head.contains(" 200 ").then(|| body.to_string())
}
