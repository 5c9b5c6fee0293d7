//! `dlr serve` over HTTP: authentication (token, X-Twilio-Signature), malformed receipts,
//! idempotent duplicates, final states that never regress, receipts before their
//! submission, unknown ids, and validity expiry.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TempDir;
use smscast::config::Config;
use smscast::dlr::{DlrOptions, DlrServer, Receivers, auth};
use smscast::store::{Store, now_ms};

const KTOKEN: &str = "k-secret";
const TTOKEN: &str = "twilio-secret";
const CALLBACK: &str = "https://dlr.example.gov.vn/twilio/agg";

struct Fixture {
    dir: TempDir,
    store: Arc<dyn Store>,
    server: DlrServer,
    http: reqwest::Client,
}

async fn fixture(upkeep_every: Duration) -> Fixture {
    let dir = TempDir::new("dlr");
    let store = common::open_store(&dir).await;
    let config = Config::parse(&format!(
        r#"
        [gateways.k]
        kind = "kannel"
        url = "http://127.0.0.1:9/cgi-bin/sendsms"
        username = "u"
        password = "p"
        dlr_url = "http://127.0.0.1:9"
        dlr_token = "{KTOKEN}"

        [gateways.agg]
        kind = "twilio"
        base_url = "http://127.0.0.1:9"
        account_sid = "AC1"
        auth_token = "{TTOKEN}"
        status_callback = "{CALLBACK}"
        "#
    ))
    .unwrap();
    let server = DlrServer::start(
        store.clone(),
        Receivers::from_config(&config).unwrap(),
        "127.0.0.1:0",
        DlrOptions {
            upkeep_every,
            validity: Duration::from_secs(3600),
            unmatched_after: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    Fixture {
        dir,
        store,
        server,
        http: reqwest::Client::new(),
    }
}

impl Fixture {
    async fn kannel(&self, token: Option<&str>, reference: &str, status: &str) -> (u16, String) {
        let mut q: Vec<(&str, &str)> = vec![("ref", reference), ("status", status)];
        if let Some(t) = token {
            q.push(("token", t));
        }
        let r = self
            .http
            .get(format!("{}/kannel/k", self.server.base_url()))
            .query(&q)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Posts a Twilio status callback signed with `key` (None: unsigned).
    async fn twilio(&self, key: Option<&str>, reference: &str, form: &[(&str, &str)]) -> u16 {
        let query = format!("ref={reference}");
        let params: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut req = self
            .http
            .post(format!("{}/twilio/agg?{query}", self.server.base_url()))
            .form(form);
        if let Some(key) = key {
            let sig = auth::twilio_signature(key, &format!("{CALLBACK}?{query}"), &params);
            req = req.header("X-Twilio-Signature", sig);
        }
        req.send().await.unwrap().status().as_u16()
    }

    async fn states(&self, campaign: i64) -> std::collections::HashMap<i64, String> {
        common::states(&common::db_url(&self.dir), campaign).await
    }
}

#[tokio::test]
async fn kannel_receipts_are_authenticated_idempotent_and_never_regress() {
    let f = fixture(Duration::from_secs(3600)).await;
    let campaign = common::seed(&*f.store, &common::numbers(2), "Xin chào", "k").await;
    let rows = common::submit_all(&*f.store, &campaign, "k", 0, |r| r.to_string()).await;
    let (id, reference) = rows[0].clone();

    // Forged or unauthenticated: 401, nothing stored, nothing changed.
    assert_eq!(f.kannel(Some("wrong"), &reference, "1").await.0, 401);
    assert_eq!(f.kannel(None, &reference, "1").await.0, 401);
    assert_eq!(f.kannel(Some("k-secre"), &reference, "1").await.0, 401);
    // Malformed: 400, nothing stored.
    assert_eq!(f.kannel(Some(KTOKEN), &reference, "abc").await.0, 400);
    assert_eq!(f.kannel(Some(KTOKEN), &reference, "0").await.0, 400);
    assert_eq!(f.store.receipt_counts().await.unwrap().total, 0);
    assert_eq!(f.states(campaign.id).await[&id], "submitted");

    // "Delivered" before "accepted by the SMSC" (out of order), then duplicates, then a
    // late "undelivered": the message stays delivered.
    assert_eq!(
        f.kannel(Some(KTOKEN), &reference, "1").await,
        (200, "OK applied\n".into())
    );
    assert_eq!(
        f.kannel(Some(KTOKEN), &reference, "8").await,
        (200, "OK no_change\n".into())
    );
    assert_eq!(
        f.kannel(Some(KTOKEN), &reference, "1").await,
        (200, "OK no_change\n".into())
    );
    assert_eq!(f.kannel(Some(KTOKEN), &reference, "2").await.0, 200);
    assert_eq!(f.states(campaign.id).await[&id], "delivered");

    // The other message: undelivered (2) is final failed.
    let (id2, ref2) = rows[1].clone();
    assert_eq!(f.kannel(Some(KTOKEN), &ref2, "8").await.0, 200);
    assert_eq!(f.states(campaign.id).await[&id2], "submitted");
    assert_eq!(f.kannel(Some(KTOKEN), &ref2, "2").await.0, 200);
    assert_eq!(f.states(campaign.id).await[&id2], "failed");

    let c = f.store.receipt_counts().await.unwrap();
    assert_eq!((c.total, c.matched, c.pending), (6, 6, 0), "{c:?}");
    f.server.stop().await;
}

#[tokio::test]
async fn twilio_callbacks_need_a_valid_signature() {
    let f = fixture(Duration::from_secs(3600)).await;
    let campaign = common::seed(&*f.store, &common::numbers(1), "Xin chào", "agg").await;
    let rows = common::submit_all(&*f.store, &campaign, "agg", 0, |_| "SM42".into()).await;
    let (id, reference) = rows[0].clone();
    let delivered = [
        ("MessageSid", "SM42"),
        ("MessageStatus", "delivered"),
        ("AccountSid", "AC1"),
    ];

    assert_eq!(f.twilio(None, &reference, &delivered).await, 401);
    assert_eq!(
        f.twilio(Some("not-the-token"), &reference, &delivered)
            .await,
        401
    );
    // Signed for other parameters (the status was changed on the way): refused.
    let params: Vec<(String, String)> = [("MessageSid", "SM42"), ("MessageStatus", "failed")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig = auth::twilio_signature(TTOKEN, &format!("{CALLBACK}?ref={reference}"), &params);
    let forged = f
        .http
        .post(format!(
            "{}/twilio/agg?ref={reference}",
            f.server.base_url()
        ))
        .header("X-Twilio-Signature", sig)
        .form(&delivered)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    assert_eq!(f.store.receipt_counts().await.unwrap().total, 0);
    assert_eq!(f.states(campaign.id).await[&id], "submitted");

    // Signed but malformed (no status): 400.
    assert_eq!(
        f.twilio(Some(TTOKEN), &reference, &[("MessageSid", "SM42")])
            .await,
        400
    );
    // Genuine: "sent" changes nothing final, "delivered" finalises, a late "sent" does not regress.
    let sent = [("MessageSid", "SM42"), ("MessageStatus", "sent")];
    assert_eq!(f.twilio(Some(TTOKEN), &reference, &sent).await, 200);
    assert_eq!(f.states(campaign.id).await[&id], "submitted");
    assert_eq!(f.twilio(Some(TTOKEN), &reference, &delivered).await, 200);
    assert_eq!(f.twilio(Some(TTOKEN), &reference, &sent).await, 200);
    assert_eq!(f.states(campaign.id).await[&id], "delivered");
    // Matched by the sid alone when the reference is missing or unknown.
    assert_eq!(
        f.twilio(Some(TTOKEN), "smscast-999-999", &delivered).await,
        200
    );
    let c = f.store.receipt_counts().await.unwrap();
    assert_eq!((c.total, c.matched), (4, 4), "{c:?}");
    f.server.stop().await;
}

#[tokio::test]
async fn receipts_before_their_submission_are_applied_later_and_unknown_ones_reported() {
    // The server's own upkeep runs every 100 ms.
    let f = fixture(Duration::from_millis(100)).await;
    let campaign = common::seed(&*f.store, &common::numbers(2), "Xin chào", "k").await;
    // Both rows stay `sending`: the gateway answered, the outcome is not recorded yet.
    let rows = common::submit_all(&*f.store, &campaign, "k", 2, |r| r.to_string()).await;
    let (id, reference) = rows[0].clone();
    assert_eq!(
        f.kannel(Some(KTOKEN), &reference, "1").await,
        (200, "OK pending\n".into())
    );
    assert_eq!(
        f.kannel(Some(KTOKEN), "smscast-77-77", "1").await,
        (200, "OK pending\n".into())
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(f.states(campaign.id).await[&id], "sending");

    // The outcome is recorded: the pending receipt is applied by the upkeep.
    f.store
        .record("test-worker", &[common::submitted(id, "k", &reference)])
        .await
        .unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while f.states(campaign.id).await[&id] != "delivered" && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(f.states(campaign.id).await[&id], "delivered");

    // After the grace period, the receipt for an unknown id is reported unmatched; the one
    // for a message still in flight stays pending.
    let (id2, ref2) = rows[1].clone();
    assert_eq!(f.kannel(Some(KTOKEN), &ref2, "2").await.0, 200);
    let m = f
        .store
        .match_pending_receipts(now_ms() + 1_000)
        .await
        .unwrap();
    assert_eq!((m.unmatched, m.still_pending), (1, 1), "{m:?}");
    let c = f.store.receipt_counts().await.unwrap();
    assert_eq!((c.matched, c.pending, c.unmatched), (1, 1, 1), "{c:?}");
    assert_eq!(f.states(campaign.id).await[&id2], "sending");
    f.server.stop().await;
}

#[tokio::test]
async fn silent_messages_expire_and_stay_expired() {
    let f = fixture(Duration::from_secs(3600)).await;
    let campaign = common::seed(&*f.store, &common::numbers(3), "Xin chào", "k").await;
    let rows = common::submit_all(&*f.store, &campaign, "k", 0, |r| r.to_string()).await;
    assert_eq!(f.kannel(Some(KTOKEN), &rows[0].1, "1").await.0, 200);
    // Nothing submitted before an hour ago: nothing expires.
    let now = now_ms();
    assert_eq!(
        f.store
            .expire_submitted(now - 3_600_000, now, &["k".to_string()])
            .await
            .unwrap(),
        0
    );
    // Everything submitted before now+1 ms with no final receipt expires.
    assert_eq!(
        f.store
            .expire_submitted(now + 1, now, &["k".to_string()])
            .await
            .unwrap(),
        2
    );
    assert_eq!(f.kannel(Some(KTOKEN), &rows[1].1, "1").await.0, 200);
    let s = f.states(campaign.id).await;
    assert_eq!(s[&rows[0].0], "delivered");
    assert_eq!(s[&rows[1].0], "expired");
    assert_eq!(s[&rows[2].0], "expired");
    f.server.stop().await;
}
