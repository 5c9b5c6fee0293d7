//! The simulator's delivery receipts: Twilio-style status callbacks to the StatusCallback URL
//! each message came with, signed with `X-Twilio-Signature`, sent late, some twice, out of
//! order ("sent" may come after "delivered"), like real gateways do.
//!
//! Its own counts: `GET /stats/receipts`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::dlr::auth::twilio_signature;

#[derive(Clone, Debug)]
pub struct ReceiptOptions {
    /// The auth token that signs every callback (the gateway's auth token).
    pub auth_token: String,
    /// Each callback waits a random time up to this long, independently: out of order.
    pub max_delay: Duration,
    /// Share of final callbacks sent twice.
    pub duplicate_rate: f64,
    /// Numbers (canonical `84…`) whose messages end `undelivered` (error 30003).
    pub undelivered: HashSet<String>,
}

impl Default for ReceiptOptions {
    fn default() -> Self {
        Self {
            auth_token: String::new(),
            max_delay: Duration::from_millis(500),
            duplicate_rate: 0.1,
            undelivered: HashSet::new(),
        }
    }
}

/// What the simulator sent back, by its own count.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiptStats {
    /// Callbacks scheduled (one "sent" and one final per message, plus duplicates).
    pub scheduled: u64,
    /// Answered 2xx by the receiver.
    pub acknowledged: u64,
    /// Not answered 2xx after every retry.
    pub failed: u64,
    pub duplicates: u64,
    pub undelivered: u64,
}

pub struct Receipts {
    opts: ReceiptOptions,
    http: reqwest::Client,
    scheduled: AtomicU64,
    acknowledged: AtomicU64,
    failed: AtomicU64,
    duplicates: AtomicU64,
    undelivered: AtomicU64,
}

impl Receipts {
    pub fn new(opts: ReceiptOptions) -> Arc<Self> {
        Arc::new(Self {
            opts,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
            scheduled: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            undelivered: AtomicU64::new(0),
        })
    }

    /// Schedules the callbacks of one accepted message.
    pub fn schedule(self: &Arc<Self>, callback: String, account: &str, sid: String, to: &str) {
        let fails = self.opts.undelivered.contains(to.trim_start_matches('+'));
        if fails {
            self.undelivered.fetch_add(1, Ordering::Relaxed);
        }
        let final_status = if fails { "undelivered" } else { "delivered" };
        let mut rng = rand::rng();
        let copies = if rng.random::<f64>() < self.opts.duplicate_rate {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        let mut statuses = vec!["sent"];
        statuses.extend(std::iter::repeat_n(final_status, copies));
        for status in statuses {
            self.scheduled.fetch_add(1, Ordering::Relaxed);
            let mut form = vec![
                ("MessageSid".to_string(), sid.clone()),
                ("MessageStatus".to_string(), status.to_string()),
                ("AccountSid".to_string(), account.to_string()),
                ("To".to_string(), format!("+{}", to.trim_start_matches('+'))),
            ];
            if status == "undelivered" {
                form.push(("ErrorCode".to_string(), "30003".to_string()));
            }
            let delay = self.opts.max_delay.mul_f64(rng.random::<f64>());
            let me = self.clone();
            let url = callback.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                me.post(&url, &form).await;
            });
        }
    }

    /// Posts one callback, retrying a few times like gateways do.
    async fn post(&self, url: &str, form: &[(String, String)]) {
        let signature = twilio_signature(&self.opts.auth_token, url, form);
        for attempt in 0..4u32 {
            let sent = self
                .http
                .post(url)
                .header("X-Twilio-Signature", &signature)
                .form(form)
                .send()
                .await;
            if matches!(&sent, Ok(r) if r.status().is_success()) {
                self.acknowledged.fetch_add(1, Ordering::Relaxed);
                return;
            }
            tokio::time::sleep(Duration::from_millis(200) * 2u32.pow(attempt)).await;
        }
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> ReceiptStats {
        ReceiptStats {
            scheduled: self.scheduled.load(Ordering::Relaxed),
            acknowledged: self.acknowledged.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            undelivered: self.undelivered.load(Ordering::Relaxed),
        }
    }
}
