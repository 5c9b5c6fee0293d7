//! Shared set-up for the receipt and gateway integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use smscast::dispatch::{self, Counters, Dispatcher, Options, Routes, Stop};
use smscast::encoding;
use smscast::store::{self, Access, Campaign, ImportMeta, NewCampaign, NewSubscriber, Store};
use tokio::sync::watch;

/// A fresh folder under the system's temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "smscast-{tag}-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub async fn open_store(dir: &TempDir) -> Arc<dyn Store> {
    store::open(
        &format!("sqlite://{}", dir.0.join("smscast.db").display()),
        Access::ReadWrite,
    )
    .await
    .unwrap()
}

/// `n` Viettel numbers 8496000000x.
pub fn numbers(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("849{:08}", 60_000_000 + i))
        .collect()
}

/// A list of `numbers`, a campaign sending `text` through `gateway`, launched.
pub async fn seed(store: &dyn Store, numbers: &[String], text: &str, gateway: &str) -> Campaign {
    let mut import = store.begin_import().await.unwrap();
    let rows: Vec<NewSubscriber> = numbers
        .iter()
        .enumerate()
        .map(|(i, m)| NewSubscriber {
            line: i as u64 + 2,
            msisdn: m.clone(),
            carrier: "viettel",
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
            operator: "test".into(),
        })
        .await
        .unwrap();
    let a = encoding::analyze(text);
    let id = store
        .create_campaign(&NewCampaign {
            name: "test".into(),
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
            created_by: "test".into(),
        })
        .await
        .unwrap();
    store.launch(id).await.unwrap();
    store.campaign(&id.to_string()).await.unwrap().unwrap()
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
