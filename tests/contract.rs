//! The sending contract (src/store/contract.rs), held by the store itself on both backends:
//! receipts move only rows that went out through the receipt's gateway, stale outcomes are
//! fenced off, campaign moves outside the table are refused, expiry spares gateways that send
//! no receipts, and workers' counts follow the record.
//!
//! Runs on SQLite, and on PostgreSQL with `SMSCAST_TEST_BACKEND=postgres` (CI does both).

mod common;

use std::sync::Arc;

use common::Env;
use smscast::store::{
    self, Access, Campaign, CampaignMove, CampaignState, NewReceipt, OutcomeKind, ReceiptEffect,
    ReceiptStatus, Store,
};

/// Tests make their database (a PostgreSQL one blocks) outside the runtime.
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

fn receipt(gateway: &str, reference: Option<String>, status: ReceiptStatus) -> NewReceipt {
    NewReceipt {
        received_ms: store::now_ms(),
        gateway: gateway.into(),
        reference,
        gateway_id: None,
        part: None,
        status,
        gateway_status: "1".into(),
        error_code: None,
        raw: "test".into(),
    }
}

async fn state_of(store: &dyn Store, campaign: &Campaign, state: &str) -> i64 {
    store
        .state_counts(campaign.id)
        .await
        .unwrap()
        .into_iter()
        .find(|(s, _)| s == state)
        .map_or(0, |(_, n)| n)
}

/// Defect 1: a receipt authenticated for one gateway (its token) names deliveries that went out
/// through another gateway: nothing changes.
#[test]
fn a_receipt_from_another_gateway_changes_nothing() {
    let env = Env::new("contract-cross-gateway");
    runtime().block_on(async {
        let store = open(&env).await;
        let campaign = common::seed(&*store, &common::numbers(6), "Xin chào", "twilio-gw").await;
        let rows =
            common::submit_all(&*store, &campaign, "twilio-gw", 0, |r| format!("SM{r}")).await;
        let forged: Vec<NewReceipt> = rows
            .iter()
            .map(|(_, r)| receipt("kannel-gw", Some(r.clone()), ReceiptStatus::Delivered))
            .collect();
        let effects = store.record_receipts(&forged).await.unwrap();
        assert!(
            effects.iter().all(|e| *e != ReceiptEffect::Applied),
            "{effects:?}"
        );
        assert_eq!(state_of(&*store, &campaign, "submitted").await, 6);
        assert_eq!(state_of(&*store, &campaign, "delivered").await, 0);
        // The same receipts through the right gateway apply.
        let genuine: Vec<NewReceipt> = rows
            .iter()
            .map(|(_, r)| receipt("twilio-gw", Some(r.clone()), ReceiptStatus::Delivered))
            .collect();
        let effects = store.record_receipts(&genuine).await.unwrap();
        assert!(effects.iter().all(|e| *e == ReceiptEffect::Applied));
        assert_eq!(state_of(&*store, &campaign, "delivered").await, 6);
    });
}

/// Defect 1: a receipt never finalises a message that was never sent (queued), nor one whose
/// request may still be on the wire (sending) — the latter waits for the outcome.
#[test]
fn a_receipt_never_finalises_a_queued_row() {
    let env = Env::new("contract-queued");
    runtime().block_on(async {
        let store = open(&env).await;
        let campaign = common::seed(&*store, &common::numbers(4), "Xin chào", "k").await;
        let now = store::now_ms();
        let ids: Vec<i64> = common::claim_any(&*store, campaign.id, "w", 100, now, now + 60_000)
            .await
            .iter()
            .map(|c| c.id)
            .collect();
        // Never marked: every row is still queued (SQLite) or claimed (PostgreSQL).
        let forged: Vec<NewReceipt> = ids
            .iter()
            .map(|id| {
                receipt(
                    "k",
                    Some(store.reference(campaign.id, *id)),
                    ReceiptStatus::Delivered,
                )
            })
            .collect();
        let effects = store.record_receipts(&forged).await.unwrap();
        assert!(effects.iter().all(|e| *e != ReceiptEffect::Applied));
        assert_eq!(state_of(&*store, &campaign, "delivered").await, 0);
        // A row sent once and put back in the queue for a retry is not finalised either.
        store.release(campaign.id, "w").await.unwrap();
        let now = store::now_ms();
        common::claim_any(&*store, campaign.id, "w", 1, now, now + 60_000).await;
        let sending = store
            .mark_in_flight("w", &ids[..1], 0, store::now_ms() + 60_000)
            .await
            .unwrap();
        let mut retry = common::submitted(ids[0], "k", "x");
        retry.attempt_no = sending[0].1;
        retry.kind = OutcomeKind::Retry {
            next_attempt_ms: store::now_ms() + 600_000,
        };
        store.record("w", &[retry]).await.unwrap();
        let effects = store
            .record_receipts(&[receipt(
                "k",
                Some(store.reference(campaign.id, ids[0])),
                ReceiptStatus::Delivered,
            )])
            .await
            .unwrap();
        assert_ne!(effects[0], ReceiptEffect::Applied);
        assert_eq!(state_of(&*store, &campaign, "queued").await, 4);
    });
}

/// Defect 1: references are not guessable: the plain `smscast-{campaign}-{delivery}` of a
/// message sent now matches nothing.
#[test]
fn a_guessed_reference_changes_nothing() {
    let env = Env::new("contract-guess");
    runtime().block_on(async {
        let store = open(&env).await;
        let campaign = common::seed(&*store, &common::numbers(3), "Xin chào", "k").await;
        let rows = common::submit_all(&*store, &campaign, "k", 0, |r| format!("G{r}")).await;
        let (id, real) = &rows[0];
        let guessed = format!("smscast-{}-{id}", campaign.id);
        assert_ne!(*real, guessed, "the reference carries a secret");
        let effects = store
            .record_receipts(&[receipt("k", Some(guessed), ReceiptStatus::Failed)])
            .await
            .unwrap();
        assert_ne!(effects[0], ReceiptEffect::Applied);
        let last = if real.ends_with('0') { '1' } else { '0' };
        let tampered = format!("{}{last}", &real[..real.len() - 1]);
        let effects = store
            .record_receipts(&[receipt("k", Some(tampered), ReceiptStatus::Failed)])
            .await
            .unwrap();
        assert_ne!(effects[0], ReceiptEffect::Applied);
        assert_eq!(state_of(&*store, &campaign, "submitted").await, 3);
    });
}

/// Defect 4: a worker stalls past its lease; its rows are recovered and sent again by another
/// worker. The first worker's late outcome is kept as an attempt, counted, and changes
/// nothing: the second worker's gateway id stays.
#[test]
fn a_stale_outcome_after_a_takeover_changes_nothing() {
    let env = Env::new("contract-fence");
    runtime().block_on(async {
        let store = open(&env).await;
        let campaign = common::seed(&*store, &common::numbers(1), "Xin chào", "k").await;
        let now = store::now_ms();
        let ids: Vec<i64> =
            common::claim_any(&*store, campaign.id, "stalled", 10, now, now + 60_000)
                .await
                .iter()
                .map(|c| c.id)
                .collect();
        let first = store
            .mark_in_flight("stalled", &ids, 0, now + 60_000)
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        // The stalled worker is declared dead; the gateway deduplicates, so the row is resent.
        let recovered = store
            .recover(campaign.id, now, &["stalled".to_string()], true)
            .await
            .unwrap();
        assert_eq!(recovered.resend, 1);
        let now = store::now_ms();
        let again = common::claim_any(&*store, campaign.id, "rescuer", 10, now, now + 60_000).await;
        assert_eq!(again.len(), 1);
        let second = store
            .mark_in_flight("rescuer", &ids, 0, now + 60_000)
            .await
            .unwrap();
        assert_eq!(second.len(), 1);
        assert!(second[0].1 > first[0].1, "a new attempt number");
        let mut good = common::submitted(ids[0], "k", "SECOND");
        good.attempt_no = second[0].1;
        assert_eq!(store.record("rescuer", &[good]).await.unwrap(), 0);
        // The stalled worker wakes up with its answer: a retry, which would queue the row again.
        let mut late = common::submitted(ids[0], "k", "FIRST");
        late.attempt_no = first[0].1;
        late.kind = OutcomeKind::Retry { next_attempt_ms: 0 };
        assert_eq!(
            store.record("stalled", &[late]).await.unwrap(),
            1,
            "counted"
        );
        assert_eq!(state_of(&*store, &campaign, "submitted").await, 1);
        // The row keeps the rescuer's gateway id: a receipt by that id applies, the other none.
        let by_id = |gid: &str, status| NewReceipt {
            gateway_id: Some(gid.into()),
            part: None,
            ..receipt("k", None, status)
        };
        let effects = store
            .record_receipts(&[by_id("FIRST", ReceiptStatus::Failed)])
            .await
            .unwrap();
        assert_ne!(effects[0], ReceiptEffect::Applied);
        let effects = store
            .record_receipts(&[by_id("SECOND", ReceiptStatus::Delivered)])
            .await
            .unwrap();
        assert_eq!(effects[0], ReceiptEffect::Applied);
        assert_eq!(state_of(&*store, &campaign, "delivered").await, 1);
    });
}

/// Defect 3: every campaign move outside the table is refused by the store itself.
#[test]
fn campaign_moves_outside_the_table_are_refused() {
    use CampaignMove::*;
    use CampaignState::*;
    // Written out by hand, apart from the table it checks.
    let allowed = [
        (Draft, Launch),
        (Running, Pause),
        (Paused, Resume),
        (Draft, Cancel),
        (Running, Cancel),
        (Paused, Cancel),
        (Running, Complete),
        (Completed, Reopen),
    ];
    let env = Env::new("contract-campaign-moves");
    runtime().block_on(async {
        let store = open(&env).await;
        let campaign = common::seed(&*store, &common::numbers(1), "Xin chào", "k").await;
        let reach = |target: CampaignState| -> Vec<CampaignMove> {
            // From running (where `seed` leaves it), the moves that lead to `target`.
            match target {
                Draft => vec![],
                Running => vec![],
                Paused => vec![Pause],
                Completed => vec![Complete],
                Cancelled => vec![Cancel],
            }
        };
        for from in [Running, Paused, Completed, Cancelled] {
            for m in CampaignMove::ALL {
                // A fresh campaign in state `from`.
                let c =
                    common::seed_named(&*store, &format!("c-{}-{:?}", from.as_str(), m), "k").await;
                for step in reach(from) {
                    store.move_campaign(c.id, step, None).await.unwrap();
                }
                let got = store.move_campaign(c.id, m, None).await;
                let now = store
                    .campaign(&format!("#{}", c.id))
                    .await
                    .unwrap()
                    .unwrap();
                if allowed.contains(&(from, m)) {
                    got.unwrap_or_else(|e| panic!("{m:?} from {from:?} refused: {e}"));
                    assert_eq!(now.state, m.to());
                } else {
                    let e = got.expect_err(&format!("{m:?} from {from:?} allowed"));
                    assert!(e.to_string().contains("cannot"), "{e}");
                    assert_eq!(now.state, from, "{m:?} from {from:?} changed the state");
                }
            }
        }
        // A draft may be launched or cancelled, nothing else.
        for m in CampaignMove::ALL {
            let c = common::create_draft(&*store, &format!("draft-{m:?}"), "k").await;
            let got = store.move_campaign(c, m, None).await;
            assert_eq!(
                got.is_ok(),
                allowed.contains(&(Draft, m)),
                "{m:?} from draft"
            );
        }
        let _ = campaign;
    });
}

/// Defect 6: messages through a gateway that sends no receipts are not expired for lack of one.
#[test]
fn expiry_spares_gateways_that_send_no_receipts() {
    let env = Env::new("contract-expiry");
    runtime().block_on(async {
        let store = open(&env).await;
        let campaign = common::seed(&*store, &common::numbers(4), "Xin chào", "silent").await;
        common::submit_all(&*store, &campaign, "silent", 0, |r| format!("S{r}")).await;
        let later = store::now_ms() + 1_000;
        let n = store
            .expire_submitted(later, later, &["talkative".to_string()])
            .await
            .unwrap();
        assert_eq!(n, 0);
        assert_eq!(state_of(&*store, &campaign, "submitted").await, 4);
        let n = store
            .expire_submitted(later, later, &["silent".to_string()])
            .await
            .unwrap();
        assert_eq!(n, 4);
    });
}

/// Defect 7: a worker's "sent" count is the record's, without waiting for a heartbeat.
#[test]
fn worker_counts_follow_the_record() {
    let env = Env::new("contract-worker-counts");
    runtime().block_on(async {
        let store = open(&env).await;
        let campaign = common::seed(&*store, &common::numbers(8), "Xin chào", "k").await;
        store
            .register_worker("test-worker", campaign.id, "host", 1, None)
            .await
            .unwrap();
        common::submit_all(&*store, &campaign, "k", 0, |r| format!("W{r}")).await;
        let workers = store.workers(campaign.id).await.unwrap();
        assert_eq!(workers[0].sent, 8);
    });
}

/// Defect 2: a campaign cannot be named so that it reads as another campaign's id, and `#N`
/// always means the id.
#[test]
fn campaign_names_never_read_as_ids() {
    let env = Env::new("contract-names");
    runtime().block_on(async {
        let store = open(&env).await;
        let first = common::seed(&*store, &common::numbers(1), "Xin chào", "k").await;
        for bad in ["2", "", " ", "a\nb", "x\u{1b}[2J"] {
            let new = common::new_campaign(bad, "k");
            let e = store.create_campaign(&new).await.expect_err(bad);
            assert!(e.to_string().contains("campaign name"), "{e}");
        }
        let by_hash = store.campaign(&format!("#{}", first.id)).await.unwrap();
        assert_eq!(by_hash.unwrap().name, "test");
        assert!(store.campaign("#999").await.unwrap().is_none());
    });
}

/// Issue 14, defect 7: the per-number cap counts messages in flight and in doubt from other
/// campaigns, not only those recorded as submitted.
#[test]
fn the_cap_counts_messages_in_flight_and_in_doubt() {
    let env = Env::new("contract-cap");
    runtime().block_on(async {
        let store = open(&env).await;
        let first = common::seed(&*store, &common::numbers(1), "Xin chào", "k").await;
        let second = common::seed_named(&*store, "second", "k").await;
        let cap = 24 * 3_600_000;
        let now = store::now_ms();
        let mark = |campaign: i64, worker: &'static str| {
            let store = store.clone();
            async move {
                let now = store::now_ms();
                let ids: Vec<i64> =
                    common::claim_any(&*store, campaign, worker, 10, now, now + 60_000)
                        .await
                        .iter()
                        .map(|c| c.id)
                        .collect();
                store
                    .mark_in_flight(worker, &ids, cap, now + 60_000)
                    .await
                    .unwrap()
            }
        };
        // The first campaign's message is on its way (sending, not yet recorded).
        let out = mark(first.id, "w1").await;
        assert_eq!(out.len(), 1);
        assert!(
            mark(second.id, "w2").await.is_empty(),
            "held while in flight"
        );
        // It comes back in doubt: still held, the phone may have it.
        let mut doubt = common::submitted(out[0].0, "k", "x");
        doubt.attempt_no = out[0].1;
        doubt.kind = OutcomeKind::InDoubt;
        store.record("w1", &[doubt]).await.unwrap();
        assert_eq!(state_of(&*store, &first, "unknown").await, 1);
        let third = common::seed_named(&*store, "third", "k").await;
        assert!(mark(third.id, "w3").await.is_empty(), "held while in doubt");
        assert_eq!(state_of(&*store, &second, "queued").await, 1);
        assert_eq!(state_of(&*store, &third, "queued").await, 1);
        // Held until the cap allows, never in a tight loop: due a minute or more from now.
        assert!(
            store.next_due_ms(third.id).await.unwrap().unwrap() >= now + 60_000,
            "held for at least a minute"
        );
    });
}

/// Issue 19: a launch copies the list in chunks that each commit; it resumes where it stopped,
/// every member gets exactly one delivery, a second launch joins, and the campaign cannot
/// complete while members are still to be copied.
#[test]
fn a_launch_in_chunks_resumes_and_cannot_complete_early() {
    let env = Env::new("contract-launch-chunks");
    runtime().block_on(async {
        let store = open(&env).await;
        // Seeds a list of 10 (and launches a first campaign on it, whole).
        let whole = common::seed(&*store, &common::numbers(10), "Xin chào", "gw").await;
        assert_eq!(whole.launch_after, None);
        assert_eq!(state_of(&*store, &whole, "queued").await, 10);
        store
            .add_opt_outs(&[common::numbers(10)[9].clone()], "test")
            .await
            .unwrap();

        let id = common::create_draft(&*store, "chunked", "gw").await;
        let first = store.begin_launch(id, 4).await.unwrap().unwrap();
        assert_eq!((first.queued, first.suppressed, first.done), (4, 0, false));
        // Another worker launching now joins.
        assert!(store.begin_launch(id, 4).await.unwrap().is_none());
        let c = store.campaign(&format!("#{id}")).await.unwrap().unwrap();
        assert_eq!(c.state, CampaignState::Running);
        assert!(c.launch_after.is_some());
        // Not complete while members are still to be copied, whatever the queue says.
        let early = store.move_campaign(id, CampaignMove::Complete, None).await;
        assert!(early.is_err(), "completed mid-launch");
        assert!(!store.complete_if_done(id).await.unwrap());

        use smscast::store::LaunchProgress::{Copied, Done};
        let second = store.continue_launch(id, 4).await.unwrap();
        assert!(
            matches!(second, Copied(c) if c.queued == 4 && !c.done),
            "{second:?}"
        );
        let last = store.continue_launch(id, 4).await.unwrap();
        assert!(
            matches!(last, Copied(c) if c.queued == 1 && c.suppressed == 1 && c.done),
            "{last:?}"
        );
        assert_eq!(store.continue_launch(id, 4).await.unwrap(), Done);
        let c = store.campaign(&format!("#{id}")).await.unwrap().unwrap();
        assert_eq!(c.launch_after, None);
        assert_eq!(state_of(&*store, &c, "queued").await, 9);
        assert_eq!(state_of(&*store, &c, "suppressed").await, 1);
    });
}

/// Issue 19: a worker's heartbeat renews its own lease row, and that keeps every delivery it
/// holds; the rows of a worker that stopped beating are recovered once their own lease ran out.
#[test]
fn a_heartbeat_keeps_a_workers_rows_and_silence_gives_them_up() {
    let env = Env::new("contract-worker-leases");
    runtime().block_on(async {
        let store = open(&env).await;
        let campaign = common::seed(&*store, &common::numbers(8), "Xin chào", "gw").await;
        let now = store::now_ms();
        for (worker, take) in [("beating", 4), ("silent", 4)] {
            store
                .register_worker(worker, campaign.id, "host", 1, None)
                .await
                .unwrap();
            let rows =
                common::claim_any(&*store, campaign.id, worker, take, now, now + 1_000).await;
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let marked = store
                .mark_in_flight(worker, &ids, 0, now + 1_000)
                .await
                .unwrap();
            assert_eq!(marked.len(), take as usize);
        }
        store.heartbeat("beating", now + 60_000).await.unwrap();
        // Before any lease ran out: nothing to recover.
        let early = store
            .recover(campaign.id, now + 500, &[], false)
            .await
            .unwrap();
        assert_eq!(early.unknown + early.requeued, 0, "{early:?}");
        // Past the rows' own lease: only the silent worker's rows are taken.
        let late = store
            .recover(campaign.id, now + 5_000, &[], false)
            .await
            .unwrap();
        assert_eq!(late.unknown, 4, "{late:?}");
        assert_eq!(state_of(&*store, &campaign, "sending").await, 4);
        // Past the beating worker's lease too: its rows go as well.
        let later = store
            .recover(campaign.id, now + 61_000, &[], false)
            .await
            .unwrap();
        assert_eq!(later.unknown, 4, "{later:?}");
        assert_eq!(state_of(&*store, &campaign, "sending").await, 0);
    });
}

/// A killed worker's PostgreSQL session can still hold row locks for a moment after the kill;
/// recovery skips those rows (`SKIP LOCKED`) and must not then write the worker off as
/// stopped, or its skipped rows wait for their lease (CI once saw thousands pile up in doubt).
/// PostgreSQL only: SQLite locks the whole file, so there is no row to skip.
#[test]
fn recovery_comes_back_for_rows_a_dead_session_still_locked() {
    let env = Env::new("contract-recover-locked");
    if !env.is_postgres() {
        eprintln!("skipped on SQLite: row locks exist only on PostgreSQL");
        return;
    }
    runtime().block_on(async {
        let store = open(&env).await;
        let campaign = common::seed(&*store, &common::numbers(4), "Xin chào", "gw").await;
        let now = store::now_ms();
        store
            .register_worker("killed", campaign.id, "host", 1, None)
            .await
            .unwrap();
        let ids: Vec<i64> =
            common::claim_any(&*store, campaign.id, "killed", 4, now, now + 600_000)
                .await
                .iter()
                .map(|c| c.id)
                .collect();
        let marked = store
            .mark_in_flight("killed", &ids, 0, now + 600_000)
            .await
            .unwrap();
        assert_eq!(marked.len(), 4);
        // The dying session: one row still locked by another connection.
        let pool = sqlx::PgPool::connect(&env.db_url()).await.unwrap();
        let mut holder = pool.begin().await.unwrap();
        sqlx::query("SELECT id FROM deliveries WHERE id = $1 FOR UPDATE")
            .bind(ids[0])
            .fetch_one(&mut *holder)
            .await
            .unwrap();
        let dead = |workers: Vec<store::WorkerInfo>| -> Vec<String> {
            workers
                .into_iter()
                .filter(|w| w.stopped_ms.is_none() && w.id == "killed")
                .map(|w| w.id)
                .collect()
        };
        let first = store
            .recover(campaign.id, now, &["killed".to_string()], false)
            .await
            .unwrap();
        assert_eq!(first.unknown, 3, "the locked row is skipped: {first:?}");
        assert_eq!(
            dead(store.workers(campaign.id).await.unwrap()),
            ["killed"],
            "a worker with a row left to recover is not written off"
        );
        holder.rollback().await.unwrap();
        // The next look (a new `send`, or a worker out of rows) takes the row at once.
        let again = dead(store.workers(campaign.id).await.unwrap());
        let second = store
            .recover(campaign.id, now, &again, false)
            .await
            .unwrap();
        assert_eq!(second.unknown, 1, "{second:?}");
        assert_eq!(state_of(&*store, &campaign, "sending").await, 0);
        assert!(
            dead(store.workers(campaign.id).await.unwrap()).is_empty(),
            "nothing left: now it is written off"
        );
    });
}
