//! The counts the dispatcher and `send` read from the SQLite store while a campaign runs:
//! messages in flight (polled while the last ones finish) and messages by state.

mod common;

use common::TempDir;
use smscast::store::{self, OutcomeKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_and_state_counts_follow_marks_and_outcomes() {
    let dir = TempDir::new("store-counts");
    let store = common::open_store(&dir).await;
    let campaign = common::seed(&*store, &common::numbers(20), "Xin chào", "k").await;
    assert_eq!(store.in_flight_count(campaign.id).await.unwrap(), 0);
    assert_eq!(
        store.state_counts(campaign.id).await.unwrap(),
        vec![("queued".to_string(), 20)]
    );

    // 20 marked in flight, 15 of them recorded as submitted: 5 still out.
    let rows = common::submit_all(&*store, &campaign, "k", 5, |r| r.to_string()).await;
    assert_eq!(store.in_flight_count(campaign.id).await.unwrap(), 5);
    let mut counts = store.state_counts(campaign.id).await.unwrap();
    counts.sort();
    assert_eq!(
        counts,
        vec![("sending".to_string(), 5), ("submitted".to_string(), 15)]
    );

    // The last five come back: one rejected, four to retry later.
    let outcomes: Vec<store::Outcome> = rows[..5]
        .iter()
        .enumerate()
        .map(|(i, (id, r))| {
            let mut o = common::submitted(*id, "k", r);
            o.kind = if i == 0 {
                OutcomeKind::Rejected
            } else {
                OutcomeKind::Retry {
                    next_attempt_ms: store::now_ms() + 60_000,
                }
            };
            o
        })
        .collect();
    store.record("test-worker", &outcomes).await.unwrap();
    assert_eq!(store.in_flight_count(campaign.id).await.unwrap(), 0);
    let mut counts = store.state_counts(campaign.id).await.unwrap();
    counts.sort();
    assert_eq!(
        counts,
        vec![
            ("queued".to_string(), 4),
            ("rejected".to_string(), 1),
            ("submitted".to_string(), 15)
        ]
    );
}
