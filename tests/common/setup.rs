//! Shared set-up for the receipt and gateway integration tests.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use smscast::dispatch::{self, Counters, Dispatcher, Options, Routes, Stop};
use smscast::encoding;
use smscast::store::{self, Access, Campaign, ImportMeta, NewCampaign, NewSubscriber, Store};
use tokio::sync::watch;

/// A fresh folder under the system's temp dir, removed on drop, and the test's database: a
/// SQLite file in the folder, or a fresh PostgreSQL database when
/// `SMSCAST_TEST_BACKEND=postgres`.
pub struct TempDir(pub PathBuf, Option<super::PgDb>);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "smscast-{tag}-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p, super::backend_postgres(tag))
    }

    pub fn is_postgres(&self) -> bool {
        self.1.is_some()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn open_store(dir: &TempDir) -> Arc<dyn Store> {
    store::open(&db_url(dir), Access::ReadWrite).await.unwrap()
}

/// Up to `limit` due rows of the campaign, whatever their carrier (the store claims one
/// carrier at a time), in id order.
pub async fn claim_any(
    store: &dyn Store,
    campaign_id: i64,
    worker: &str,
    limit: u32,
    now: i64,
    lease_until: i64,
) -> Vec<store::Claimed> {
    let mut all = Vec::new();
    for carrier in smscast::msisdn::Carrier::ALL {
        let left = limit - all.len() as u32;
        if left == 0 {
            break;
        }
        let rows = store
            .claim(
                campaign_id,
                carrier.as_str(),
                worker,
                left,
                now,
                lease_until,
            )
            .await
            .unwrap();
        all.extend(rows);
    }
    all.sort_by_key(|c| c.id);
    all
}

/// `n` Viettel numbers 8496000000x.
pub fn numbers(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("849{:08}", 60_000_000 + i))
        .collect()
}

/// A list of `numbers`, a campaign sending `text` through `gateway`, launched.
pub async fn seed(store: &dyn Store, numbers: &[String], text: &str, gateway: &str) -> Campaign {
    let mut import = store.begin_import("test").await.unwrap();
    let rows: Vec<NewSubscriber> = numbers
        .iter()
        .map(|m| NewSubscriber {
            msisdn: smscast::msisdn::Msisdn::from_canonical(m).expect("canonical number"),
            carrier: "viettel",
            carrier_from_source: true,
            district: Some("Tân An".into()),
            attributes: None,
        })
        .collect();
    import.stage(&rows).await.unwrap();
    import
        .commit(&ImportMeta {
            list: "test".into(),
            file_name: "test.csv".into(),
            sha256: "0".repeat(64),
            rows_read: numbers.len() as u64,
            rejected: 0,
            legacy_converted: 0,
            duplicates_in_file: 0,
            operator: "test".into(),
        })
        .await
        .unwrap();
    let id = create_campaign(store, "test", text, gateway).await;
    store.launch(id).await.unwrap();
    store.campaign(&format!("#{id}")).await.unwrap().unwrap()
}

/// A draft campaign `name` on the list `test` (made by [`seed`]) sending `text`.
pub async fn create_campaign(store: &dyn Store, name: &str, text: &str, gateway: &str) -> i64 {
    let a = encoding::analyze(text);
    store
        .create_campaign(&NewCampaign {
            message_text: text.into(),
            encoding: a.encoding.as_str().into(),
            segments: a.segments as i64,
            characters: a.characters as i64,
            ..new_campaign(name, gateway)
        })
        .await
        .unwrap()
}

/// A campaign `name` on the list `test`, as `campaign create` would make it.
pub fn new_campaign(name: &str, gateway: &str) -> NewCampaign {
    let text = "Xin chào";
    let a = encoding::analyze(text);
    NewCampaign {
        name: name.into(),
        list: "test".into(),
        message_text: text.into(),
        encoding: a.encoding.as_str().into(),
        segments: a.segments as i64,
        characters: a.characters as i64,
        sender: "LONGAN".into(),
        gateway: gateway.into(),
        rate: 200.0,
        window_start: 0,
        window_end: 1440,
        starts_ms: None,
        ends_ms: None,
        max_attempts: 3,
        cap_hours: 0,
        created_by: "test".into(),
    }
}

/// A draft campaign `name` on the list `test` (made by [`seed`]).
pub async fn create_draft(store: &dyn Store, name: &str, gateway: &str) -> i64 {
    create_campaign(store, name, "Xin chào", gateway).await
}

/// Another campaign `name` on the list `test` (made by [`seed`]), launched.
pub async fn seed_named(store: &dyn Store, name: &str, gateway: &str) -> Campaign {
    let id = create_draft(store, name, gateway).await;
    store.launch(id).await.unwrap();
    store.campaign(&format!("#{id}")).await.unwrap().unwrap()
}

/// Runs the campaign to its end through `routes`.
pub async fn send(store: Arc<dyn Store>, campaign: Campaign, routes: Routes) -> Stop {
    let dispatcher = Dispatcher::new(
        store,
        campaign,
        routes,
        Options {
            rate: Some(200.0),
            concurrency: 8,
            lease: Duration::from_secs(30),
            worker_id: dispatch::new_worker_id(),
            no_wait: true,
            launch_chunk: smscast::store::LAUNCH_CHUNK,
        },
        Arc::new(Counters::default()),
    );
    dispatcher.start(&[]).await.unwrap();
    let (_tx, rx) = watch::channel(false);
    tokio::time::timeout(Duration::from_secs(60), dispatcher.run(rx))
        .await
        .expect("the campaign finishes within a minute")
        .unwrap()
}

/// Polls `state_counts` until `state` has `n` rows or `within` passes; returns the counts.
pub async fn wait_for_state(
    store: &dyn Store,
    campaign_id: i64,
    state: &str,
    n: i64,
    within: Duration,
) -> Vec<(String, i64)> {
    let until = tokio::time::Instant::now() + within;
    loop {
        let counts = store.state_counts(campaign_id).await.unwrap();
        let got = counts
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n);
        if got >= n || tokio::time::Instant::now() >= until {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Claims every queued delivery and marks it in flight; records all but the first
/// `leave_sending` as submitted through `gateway` with the id `gateway_id(reference)`.
/// Returns (delivery id, reference) of every row, in id order.
pub async fn submit_all(
    store: &dyn Store,
    campaign: &Campaign,
    gateway: &str,
    leave_sending: usize,
    gateway_id: impl Fn(&str) -> String,
) -> Vec<(i64, String)> {
    let worker = "test-worker";
    let now = store::now_ms();
    let claimed = claim_any(store, campaign.id, worker, 1_000_000, now, now + 600_000).await;
    let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
    let sending = store
        .mark_in_flight(worker, &ids, 0, now + 600_000)
        .await
        .unwrap();
    assert_eq!(sending.len(), ids.len());
    let rows: Vec<(i64, String)> = ids
        .iter()
        .map(|id| (*id, store.reference(campaign.id, *id)))
        .collect();
    let outcomes: Vec<store::Outcome> = rows[leave_sending.min(rows.len())..]
        .iter()
        .zip(&sending[leave_sending.min(rows.len())..])
        .map(|((id, r), (_, attempt))| store::Outcome {
            attempt_no: *attempt,
            ..submitted(*id, gateway, &gateway_id(r))
        })
        .collect();
    store.record(worker, &outcomes).await.unwrap();
    rows
}

/// The outcome "accepted by the gateway with this id" for a delivery.
pub fn submitted(delivery_id: i64, gateway: &str, gateway_id: &str) -> store::Outcome {
    store::Outcome {
        delivery_id,
        attempt_no: 1,
        started_ms: store::now_ms(),
        latency_ms: 5,
        http_status: Some(202),
        gateway: gateway.into(),
        gateway_code: None,
        kind: store::OutcomeKind::Submitted {
            gateway_id: gateway_id.into(),
        },
        error: None,
        text: None,
    }
}

/// State of each delivery of a campaign, by id.
pub async fn states(store_url: &str, campaign_id: i64) -> std::collections::HashMap<i64, String> {
    const Q: &str = "SELECT id, state FROM deliveries WHERE campaign_id = $1";
    let rows: Vec<(i64, String)> = if store::is_postgres(store_url) {
        let pool = sqlx::PgPool::connect(store_url).await.unwrap();
        let rows = sqlx::query_as(Q).bind(campaign_id).fetch_all(&pool).await;
        pool.close().await;
        rows.unwrap()
    } else {
        let pool = sqlx::SqlitePool::connect(store_url).await.unwrap();
        let rows = sqlx::query_as(Q).bind(campaign_id).fetch_all(&pool).await;
        pool.close().await;
        rows.unwrap()
    };
    rows.into_iter().collect()
}

pub fn db_url(dir: &TempDir) -> String {
    match &dir.1 {
        Some(pg) => pg.url(),
        None => format!("sqlite://{}", dir.0.join("smscast.db").display()),
    }
}
