//! Multi-part Kannel messages (`receipts_per_part = true`): each part of a long message goes
//! as its own SMS and the dlr-url is called once per part, naming the part by the SMSC's
//! message id (`%F`). The
//! parts combine into one state (src/store/receipts.rs): delivered only once every part is,
//! failed at the first failed part whatever the order, each part counted once however many
//! times Kannel retries its receipt; the report's delivered figure counts only messages whose
//! every part was delivered.
//!
//! Runs on SQLite, and on PostgreSQL with `SMSCAST_TEST_BACKEND=postgres`.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::Env;
use smscast::config::Config;
use smscast::dispatch::{Routes, Stop};
use smscast::dlr::{DlrOptions, DlrServer, Receivers};
use smscast::gateway;
use smscast::simulator::receipts::{ReceiptOptions, ReceiptStats};
use smscast::simulator::{SimOptions, Simulator};
use smscast::store::{
    self, Access, Campaign, NewReceipt, ReceiptEffect, ReceiptStatus, ReportFilter, Store,
};

/// A GSM text of three parts (360 characters: more than two parts of 153).
fn three_part_text() -> String {
    "Xin chao Long An: tiem vac-xin. ".repeat(12)[..360].to_string()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn open(env: &Env) -> Arc<dyn Store> {
    store::open(&env.db_url(), Access::ReadWrite).await.unwrap()
}

/// A Kannel receipt for one part (`%F` = `part`) of the message with this reference.
fn part(reference: &str, part: &str, status: ReceiptStatus) -> NewReceipt {
    let code = match status {
        ReceiptStatus::Delivered => "1",
        ReceiptStatus::Failed => "2",
        _ => "8",
    };
    NewReceipt {
        received_ms: store::now_ms(),
        gateway: "k".into(),
        reference: Some(reference.into()),
        gateway_id: Some(reference.into()),
        part: Some(part.into()),
        status,
        gateway_status: code.into(),
        error_code: None,
        raw: "test".into(),
    }
}

async fn one(store: &dyn Store, r: NewReceipt) -> ReceiptEffect {
    store.record_receipts(&[r]).await.unwrap()[0]
}

async fn count(store: &dyn Store, campaign: &Campaign, state: &str) -> i64 {
    store
        .state_counts(campaign.id)
        .await
        .unwrap()
        .into_iter()
        .find(|(s, _)| s == state)
        .map_or(0, |(_, n)| n)
}

/// Delivered messages by the report's own figures.
async fn report_delivered(store: &dyn Store, campaign: &Campaign) -> i64 {
    store
        .report_data(&ReportFilter::campaign(campaign.id))
        .await
        .unwrap()
        .cube
        .iter()
        .filter(|r| r.state == "delivered")
        .map(|r| r.count)
        .sum()
}

#[test]
fn a_message_is_delivered_only_when_every_part_is_and_a_duplicate_counts_once() {
    let env = Env::new("parts-delivered");
    runtime().block_on(async {
        let store = open(&env).await;
        let campaign = common::seed(&*store, &common::numbers(2), &three_part_text(), "k").await;
        assert_eq!(campaign.segments, 3);
        let rows = common::submit_all(&*store, &campaign, "k", 0, |r| r.to_string()).await;
        let (a, b) = (&rows[0].1, &rows[1].1);

        // "Accepted by the SMSC", then two of three parts delivered: still submitted.
        assert_eq!(
            one(&*store, part(a, "m1", ReceiptStatus::Enroute)).await,
            ReceiptEffect::NoChange
        );
        for p in ["m3", "m1"] {
            assert_eq!(
                one(&*store, part(a, p, ReceiptStatus::Delivered)).await,
                ReceiptEffect::AwaitingParts
            );
        }
        // Kannel retries a part's receipt: it counts once, the message waits for its third part.
        for _ in 0..3 {
            assert_eq!(
                one(&*store, part(a, "m1", ReceiptStatus::Delivered)).await,
                ReceiptEffect::AwaitingParts
            );
        }
        assert_eq!(count(&*store, &campaign, "submitted").await, 2);
        assert_eq!(count(&*store, &campaign, "delivered").await, 0);
        assert_eq!(report_delivered(&*store, &campaign).await, 0);

        // The third part: delivered.
        assert_eq!(
            one(&*store, part(a, "m2", ReceiptStatus::Delivered)).await,
            ReceiptEffect::Applied
        );
        assert_eq!(count(&*store, &campaign, "delivered").await, 1);
        // A late failed receipt for one of its parts does not undo it.
        assert_eq!(
            one(&*store, part(a, "m2", ReceiptStatus::Failed)).await,
            ReceiptEffect::NoChange
        );

        // The other message: its parts' receipts all in one batch, each twice; delivered.
        let batch: Vec<NewReceipt> = ["x2", "x2", "x1", "x3", "x1"]
            .iter()
            .map(|p| part(b, p, ReceiptStatus::Delivered))
            .collect();
        let effects = store.record_receipts(&batch).await.unwrap();
        assert_eq!(
            effects,
            vec![
                ReceiptEffect::AwaitingParts,
                ReceiptEffect::AwaitingParts,
                ReceiptEffect::AwaitingParts,
                ReceiptEffect::Applied,
                ReceiptEffect::NoChange,
            ]
        );
        assert_eq!(count(&*store, &campaign, "delivered").await, 2);
        assert_eq!(report_delivered(&*store, &campaign).await, 2);
        // Every part's receipt is kept.
        assert_eq!(store.receipt_counts().await.unwrap().matched, 13);
    });
}

#[test]
fn one_failed_part_fails_the_message_whatever_the_order() {
    let env = Env::new("parts-failed");
    runtime().block_on(async {
        let store = open(&env).await;
        let campaign = common::seed(&*store, &common::numbers(7), &three_part_text(), "k").await;
        let rows = common::submit_all(&*store, &campaign, "k", 0, |r| r.to_string()).await;
        // Every order of two delivered parts and one failed one.
        let orders: [[usize; 3]; 6] = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for (order, (_, reference)) in orders.iter().zip(&rows) {
            for (step, p) in order.iter().enumerate() {
                let status = if *p == 2 {
                    ReceiptStatus::Failed
                } else {
                    ReceiptStatus::Delivered
                };
                let effect = one(&*store, part(reference, &format!("p{p}"), status)).await;
                let failed_before = order[..step].contains(&2);
                let expected = if status == ReceiptStatus::Failed {
                    ReceiptEffect::Applied
                } else if failed_before {
                    ReceiptEffect::NoChange
                } else {
                    ReceiptEffect::AwaitingParts
                };
                assert_eq!(effect, expected, "order {order:?}, step {step}");
            }
        }
        // The seventh message: all three delivered.
        let (_, last) = &rows[6];
        for p in ["a", "b", "c"] {
            one(&*store, part(last, p, ReceiptStatus::Delivered)).await;
        }
        assert_eq!(count(&*store, &campaign, "failed").await, 6);
        assert_eq!(count(&*store, &campaign, "delivered").await, 1);
        assert_eq!(report_delivered(&*store, &campaign).await, 1);
    });
}

/// Part receipts that arrive before the submission is recorded wait, and are combined the
/// same way when the match pass takes them up.
#[test]
fn part_receipts_before_their_submission_are_combined_later() {
    let env = Env::new("parts-early");
    runtime().block_on(async {
        let store = open(&env).await;
        let campaign = common::seed(&*store, &common::numbers(2), &three_part_text(), "k").await;
        // Both rows marked in flight, neither outcome recorded yet.
        let rows = common::submit_all(&*store, &campaign, "k", 2, |r| r.to_string()).await;
        let (a, b) = (&rows[0].1, &rows[1].1);
        let early = vec![
            part(a, "1", ReceiptStatus::Delivered),
            part(a, "2", ReceiptStatus::Delivered),
            part(a, "2", ReceiptStatus::Delivered),
            part(b, "1", ReceiptStatus::Delivered),
            part(b, "2", ReceiptStatus::Delivered),
            part(b, "3", ReceiptStatus::Delivered),
        ];
        let effects = store.record_receipts(&early).await.unwrap();
        assert!(effects.iter().all(|e| *e == ReceiptEffect::Pending));
        let outcomes: Vec<store::Outcome> = rows
            .iter()
            .map(|(id, r)| common::submitted(*id, "k", r))
            .collect();
        store.record("test-worker", &outcomes).await.unwrap();
        let m = store.match_pending_receipts(0).await.unwrap();
        assert_eq!((m.applied, m.still_pending), (1, 0), "{m:?}");
        assert_eq!(count(&*store, &campaign, "delivered").await, 1);
        assert_eq!(count(&*store, &campaign, "submitted").await, 1);
        // Its third part comes later.
        assert_eq!(
            one(&*store, part(a, "3", ReceiptStatus::Delivered)).await,
            ReceiptEffect::Applied
        );
        assert_eq!(report_delivered(&*store, &campaign).await, 2);
    });
}

/// A personalised message counts its own parts, not the campaign's `segments`.
#[test]
fn a_personalised_message_is_counted_by_its_own_parts() {
    let env = Env::new("parts-personal");
    runtime().block_on(async {
        let store = open(&env).await;
        let campaign = common::seed(&*store, &common::numbers(2), &three_part_text(), "k").await;
        // Both in flight; their outcomes carry the text each one was sent: one part, two parts.
        let rows = common::submit_all(&*store, &campaign, "k", 2, |r| r.to_string()).await;
        let texts = ["Chào anh Nam", &"Xin chao anh Nam. ".repeat(10)];
        let outcomes: Vec<store::Outcome> = rows
            .iter()
            .zip(texts)
            .map(|((id, r), text)| store::Outcome {
                text: Some(text.to_string()),
                ..common::submitted(*id, "k", r)
            })
            .collect();
        store.record("test-worker", &outcomes).await.unwrap();
        let (short, long) = (&rows[0].1, &rows[1].1);
        assert_eq!(
            one(&*store, part(short, "s1", ReceiptStatus::Delivered)).await,
            ReceiptEffect::Applied
        );
        assert_eq!(
            one(&*store, part(long, "l1", ReceiptStatus::Delivered)).await,
            ReceiptEffect::AwaitingParts
        );
        assert_eq!(
            one(&*store, part(long, "l2", ReceiptStatus::Delivered)).await,
            ReceiptEffect::Applied
        );
        assert_eq!(count(&*store, &campaign, "delivered").await, 2);
    });
}

/// The last two parts of each message reach two receivers at once (two transactions): the
/// second to count waits for the first and sees its part, so no message is left one part short.
#[test]
fn the_last_parts_arriving_together_are_both_counted() {
    const N: usize = 20;
    let env = Env::new("parts-race");
    runtime().block_on(async {
        let store = open(&env).await;
        let campaign = common::seed(&*store, &common::numbers(N), &three_part_text(), "k").await;
        let rows = common::submit_all(&*store, &campaign, "k", 0, |r| r.to_string()).await;
        for (_, reference) in &rows {
            one(&*store, part(reference, "1", ReceiptStatus::Delivered)).await;
            let (second, third) = (
                [part(reference, "2", ReceiptStatus::Delivered)],
                [part(reference, "3", ReceiptStatus::Delivered)],
            );
            let (a, b) = tokio::join!(
                store.record_receipts(&second),
                store.record_receipts(&third)
            );
            let mut effects = vec![a.unwrap()[0], b.unwrap()[0]];
            effects.sort_by_key(|e| e.as_str());
            assert_eq!(
                effects,
                vec![ReceiptEffect::Applied, ReceiptEffect::AwaitingParts]
            );
        }
        assert_eq!(count(&*store, &campaign, "delivered").await, N as i64);
    });
}

/// A campaign of three-part messages through the Kannel adapter and the simulator's Kannel
/// face, whose receipts come one per part in random order (some twice, one part of every
/// fifth message undelivered), to `dlr serve` over HTTP.
#[test]
fn a_kannel_campaign_of_long_messages_ends_as_its_parts_say() {
    const N: usize = 60;
    let env = Env::new("parts-sim");
    runtime().block_on(async {
        let store = open(&env).await;
        let numbers = common::numbers(N);
        let undelivered: HashSet<String> = numbers.iter().step_by(5).cloned().collect();
        let sim = Simulator::start(
            "127.0.0.1:0",
            SimOptions {
                receipts: Some(ReceiptOptions {
                    max_delay: Duration::from_millis(300),
                    duplicate_rate: 0.3,
                    undelivered: undelivered.clone(),
                    kannel_parts: true,
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
            [gateways.k]
            kind = "kannel"
            url = "{}/cgi-bin/sendsms"
            username = "u"
            password = "p"
            dlr_url = "http://127.0.0.1:{dlr_port}"
            dlr_token = "k-token"
            receipts_per_part = true
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
        let campaign = common::seed(&*store, &numbers, &three_part_text(), "k").await;
        let gw = gateway::build(&config, "k", Duration::from_secs(10)).unwrap();
        assert_eq!(
            common::send(store.clone(), campaign.clone(), Routes::single(gw)).await,
            Stop::Completed
        );

        // Wait until the simulator has had every call answered.
        let until = tokio::time::Instant::now() + Duration::from_secs(30);
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
        assert_eq!(stats.part_receipts, 3 * N as u64, "{stats:?}");
        assert_eq!(stats.undelivered, undelivered.len() as u64);
        assert!(stats.duplicates > 0, "{stats:?}");
        let failed = undelivered.len() as i64;
        let counts = common::wait_for_state(
            &*store,
            campaign.id,
            "delivered",
            N as i64 - failed,
            Duration::from_secs(20),
        )
        .await;
        let get = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |c| c.1);
        assert_eq!(
            (get("delivered"), get("failed"), get("submitted")),
            (N as i64 - failed, failed, 0),
            "{counts:?}"
        );
        assert_eq!(
            report_delivered(&*store, &campaign).await,
            N as i64 - failed
        );
        // Every call the simulator made is a stored receipt, every part's included.
        let c = store.receipt_counts().await.unwrap();
        assert_eq!(c.total as u64, stats.acknowledged, "{c:?} {stats:?}");
        assert_eq!(c.unmatched, 0, "{c:?}");
        server.stop().await;
        sim.stop().await;
        store.close().await;
    });
}
