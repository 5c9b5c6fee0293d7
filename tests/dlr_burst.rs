//! A burst: 5,000 receipts posted concurrently, in random order, with duplicates, some for
//! messages whose submission is not recorded yet and some for ids nobody sent. Every message
//! ends in its correct final state and no receipt is lost.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TempDir;
use rand::Rng;
use rand::seq::SliceRandom;
use smscast::config::Config;
use smscast::dlr::{DlrOptions, DlrServer, Receivers};
use smscast::store::now_ms;

const TOKEN: &str = "burst-token";
const MESSAGES: usize = 2_000;
/// Messages whose receipts arrive before their submission is recorded.
const IN_FLIGHT: usize = 100;
const DUPLICATES: usize = 950;
const UNKNOWN: usize = 50;
const TOTAL: usize = 2 * MESSAGES + DUPLICATES + UNKNOWN;
/// Requests in flight at once (every one is spawned at the start).
const IN_FLIGHT_REQUESTS: usize = 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_receipts_in_a_burst_lose_nothing() {
    assert_eq!(TOTAL, 5_000);
    let dir = TempDir::new("burst");
    let store = common::open_store(&dir).await;
    let config = Config::parse(&format!(
        "[gateways.k]\nkind = \"kannel\"\nurl = \"http://127.0.0.1:9/\"\nusername = \"u\"\npassword = \"p\"\ndlr_url = \"http://127.0.0.1:9\"\ndlr_token = \"{TOKEN}\"\n"
    ))
    .unwrap();
    let server = DlrServer::start(
        store.clone(),
        Receivers::from_config(&config).unwrap(),
        "127.0.0.1:0",
        DlrOptions {
            upkeep_every: Duration::from_secs(3600),
            validity: Duration::from_secs(3600),
            unmatched_after: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    let campaign = common::seed(&*store, &common::numbers(MESSAGES), "Xin chào", "k").await;
    let rows = common::submit_all(&*store, &campaign, "k", IN_FLIGHT, |r| r.to_string()).await;

    // Each message: "SMSC accepted" (8) and its final word, delivered (1) or undelivered (2).
    let mut rng = rand::rng();
    let mut expected: HashMap<i64, &str> = HashMap::new();
    let mut receipts: Vec<(String, &str)> = Vec::with_capacity(TOTAL);
    let mut finals = Vec::new();
    for (id, reference) in &rows {
        let delivered = rng.random_bool(0.8);
        expected.insert(*id, if delivered { "delivered" } else { "failed" });
        receipts.push((reference.clone(), "8"));
        let f = if delivered { "1" } else { "2" };
        receipts.push((reference.clone(), f));
        finals.push((reference.clone(), f));
    }
    finals.shuffle(&mut rng);
    receipts.extend(finals.into_iter().take(DUPLICATES));
    for i in 0..UNKNOWN {
        receipts.push((format!("smscast-{}-{}", campaign.id + 1, 900_000 + i), "1"));
    }
    receipts.shuffle(&mut rng);
    assert_eq!(receipts.len(), TOTAL);

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT_REQUESTS)
        .build()
        .unwrap();
    let url = format!("{}/kannel/k", server.base_url());
    let gate = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_REQUESTS));
    let started = Instant::now();
    let tasks: Vec<_> = receipts
        .into_iter()
        .map(|(reference, status)| {
            let (http, url, gate) = (http.clone(), url.clone(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.unwrap();
                let r = http
                    .get(&url)
                    .query(&[("token", TOKEN), ("ref", &reference), ("status", status)])
                    .send()
                    .await
                    .expect("the server answers");
                r.status().as_u16()
            })
        })
        .collect();
    let mut answers: HashMap<u16, usize> = HashMap::new();
    for t in tasks {
        *answers.entry(t.await.unwrap()).or_default() += 1;
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{TOTAL} receipts in {:.2} s ({:.0}/s), answers {answers:?}",
        elapsed.as_secs_f64(),
        TOTAL as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(
        answers.get(&200),
        Some(&TOTAL),
        "every receipt answered 200"
    );

    // Every receipt is stored; those of in-flight and unknown messages are pending.
    let c = store.receipt_counts().await.unwrap();
    assert_eq!(c.total, TOTAL as i64, "no receipt lost: {c:?}");
    assert!(c.pending >= (2 * IN_FLIGHT + UNKNOWN) as i64, "{c:?}");

    // The in-flight submissions are recorded now; the match step applies their receipts,
    // and reports the unknown ones once their grace period is over.
    let late: Vec<_> = rows[..IN_FLIGHT]
        .iter()
        .map(|(id, r)| common::submitted(*id, "k", r))
        .collect();
    store.record("test-worker", &late).await.unwrap();
    let m = store.match_pending_receipts(now_ms() + 1).await.unwrap();
    assert_eq!(m.unmatched, UNKNOWN as u64, "{m:?}");
    assert_eq!(m.still_pending, 0, "{m:?}");

    let states = common::states(&common::db_url(&dir), campaign.id).await;
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(id, want)| states.get(id).map(String::as_str) != Some(**want))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} message(s) in the wrong state, e.g. {:?}",
        wrong.len(),
        wrong
            .iter()
            .take(5)
            .map(|(id, want)| (id, want, &states[id]))
            .collect::<Vec<_>>()
    );
    let c = store.receipt_counts().await.unwrap();
    assert_eq!(
        (c.total, c.matched, c.pending, c.unmatched),
        (TOTAL as i64, (TOTAL - UNKNOWN) as i64, 0, UNKNOWN as i64),
        "{c:?}"
    );
    server.stop().await;
}
