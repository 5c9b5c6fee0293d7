//! A campaign through the simulator standing in for a Twilio-style gateway: its signed status
//! callbacks (late, some twice, out of order) reach `dlr serve` and every message ends in
//! the state the simulator chose, by both sides' counts.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use smscast::config::Config;
use smscast::dispatch::{Routes, Stop};
use smscast::dlr::{DlrOptions, DlrServer, Receivers};
use smscast::gateway;
use smscast::simulator::receipts::{ReceiptOptions, ReceiptStats};
use smscast::simulator::{SimOptions, Simulator};

const TOKEN: &str = "sim-auth-token";
const N: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_receipts_finalise_every_message() {
    let dir = common::TempDir::new("simdlr");
    let store = common::open_store(&dir).await;
    let numbers = common::numbers(N);
    let undelivered: HashSet<String> = numbers.iter().step_by(10).cloned().collect();
    let sim = Simulator::start(
        "127.0.0.1:0",
        SimOptions {
            receipts: Some(ReceiptOptions {
                auth_token: TOKEN.into(),
                max_delay: Duration::from_millis(300),
                duplicate_rate: 0.3,
                undelivered: undelivered.clone(),
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
        r#"
        [gateways.sim]
        kind = "twilio"
        base_url = "{}"
        account_sid = "ACsim"
        auth_token = "{TOKEN}"
        status_callback = "http://127.0.0.1:{dlr_port}/twilio/sim"
        "#,
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
    let campaign = common::seed(&*store, &numbers, "Xin chào Long An", "sim").await;
    let gw = gateway::build(&config, "sim", Duration::from_secs(10)).unwrap();
    assert_eq!(
        common::send(store.clone(), campaign.clone(), Routes::single(gw)).await,
        Stop::Completed
    );

    let failed = undelivered.len() as i64;
    common::wait_for_state(
        &*store,
        campaign.id,
        "delivered",
        N as i64 - failed,
        Duration::from_secs(20),
    )
    .await;
    let counts = common::wait_for_state(
        &*store,
        campaign.id,
        "failed",
        failed,
        Duration::from_secs(10),
    )
    .await;
    let get = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |c| c.1);
    assert_eq!(
        (get("delivered"), get("failed")),
        (N as i64 - failed, failed),
        "{counts:?}"
    );

    // Both sides agree: everything the simulator sent was acknowledged and stored.
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let s: ReceiptStats = reqwest::get(format!("{}/stats/receipts", sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s.acknowledged + s.failed == s.scheduled || tokio::time::Instant::now() > until {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stats.failed, 0, "{stats:?}");
    assert_eq!(stats.undelivered, failed as u64);
    assert!(stats.duplicates > 0, "{stats:?}");
    let c = store.receipt_counts().await.unwrap();
    assert_eq!(c.total as u64, stats.acknowledged, "{c:?} {stats:?}");
    assert_eq!(c.unmatched, 0, "{c:?}");
    server.stop().await;
    sim.stop().await;
}
