//! The simulator's delivery receipts: Twilio-style status callbacks to the StatusCallback URL
//! each message came with, signed with `X-Twilio-Signature`, sent late, some twice, out of
//! order ("sent" may come after "delivered"), like real gateways do.
//!
//! For its Kannel face (`GET /cgi-bin/sendsms`) it calls each message's dlr-url as Kannel
//! does, filling in `%d` (dlr type), `%F` (the SMSC message id), `%A`, `%p` and `%T`. With
//! [`ReceiptOptions::kannel_parts`] a long message gets one receipt per part, as a gateway
//! configured with `receipts_per_part` sends them: each part with its own SMSC id (`%F`), in
//! random order (stock Kannel 1.4 asks a receipt for the first part only: one per message); a
//! number in [`ReceiptOptions::undelivered`] then has one random part undelivered (`%d` 2)
//! and its other parts delivered.
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
    /// Kannel receipts: one per part of a multi-part message (else one per message).
    pub kannel_parts: bool,
}

impl Default for ReceiptOptions {
    fn default() -> Self {
        Self {
            auth_token: String::new(),
            max_delay: Duration::from_millis(500),
            duplicate_rate: 0.1,
            undelivered: HashSet::new(),
            kannel_parts: false,
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
    /// Kannel receipts sent for one part of a multi-part message (each part counted once).
    pub part_receipts: u64,
}

pub struct Receipts {
    opts: ReceiptOptions,
    http: reqwest::Client,
    scheduled: AtomicU64,
    acknowledged: AtomicU64,
    failed: AtomicU64,
    duplicates: AtomicU64,
    undelivered: AtomicU64,
    part_receipts: AtomicU64,
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
            part_receipts: AtomicU64::new(0),
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

    /// Schedules Kannel's dlr-url calls for one accepted message: "delivered to SMSC" (8), then
    /// a final one (1 delivered, 2 undelivered) per message or, with `kannel_parts`, per part.
    pub fn schedule_kannel(self: &Arc<Self>, dlr_url: &str, msg_id: &str, to: &str, text: &str) {
        let to = to.trim_start_matches('+');
        let fails = self.opts.undelivered.contains(to);
        if fails {
            self.undelivered.fetch_add(1, Ordering::Relaxed);
        }
        let mut rng = rand::rng();
        let parts = if self.opts.kannel_parts {
            crate::encoding::analyze(text).segments.max(1)
        } else {
            1
        };
        let failed_part = fails.then(|| rng.random_range(0..parts));
        let mut calls = vec![(8u32, msg_id.to_string())];
        for i in 0..parts {
            let id = if parts > 1 {
                self.part_receipts.fetch_add(1, Ordering::Relaxed);
                format!("{msg_id}-{i}")
            } else {
                msg_id.to_string()
            };
            let code = if failed_part == Some(i) { 2 } else { 1 };
            let copies = if rng.random::<f64>() < self.opts.duplicate_rate {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
                2
            } else {
                1
            };
            calls.extend(std::iter::repeat_n((code, id), copies));
        }
        let at = crate::store::now_ms() / 1000;
        for (code, id) in calls {
            self.scheduled.fetch_add(1, Ordering::Relaxed);
            let answer = match code {
                1 => format!("id:{id} stat:DELIVRD err:000"),
                2 => format!("id:{id} stat:UNDELIV err:001"),
                _ => "ACK/".to_string(),
            };
            let url = kannel_fill(dlr_url, code, &id, &answer, to, at);
            // Each call waits its own random time: parts arrive in random order.
            let delay = self.opts.max_delay.mul_f64(rng.random::<f64>());
            let me = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                me.get(&url).await;
            });
        }
    }

    /// Schedules an aggregator's receipt for one accepted message of a batch: its callback URL
    /// called by GET with `SMSID` and `SendStatus` (2 delivered, 3 failed), as eSMS does.
    pub fn schedule_http_json(self: &Arc<Self>, callback: &str, msg_id: &str, to: &str) {
        let fails = self.opts.undelivered.contains(to);
        if fails {
            self.undelivered.fetch_add(1, Ordering::Relaxed);
        }
        let mut rng = rand::rng();
        let copies = if rng.random::<f64>() < self.opts.duplicate_rate {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        let sep = if callback.contains('?') { '&' } else { '?' };
        let url = format!(
            "{callback}{sep}SMSID={}&SendStatus={}",
            crate::dlr::encode(msg_id),
            if fails { 3 } else { 2 }
        );
        for _ in 0..copies {
            self.scheduled.fetch_add(1, Ordering::Relaxed);
            let delay = self.opts.max_delay.mul_f64(rng.random::<f64>());
            let (me, url) = (self.clone(), url.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                me.get(&url).await;
            });
        }
    }

    /// Calls one dlr-url, retrying a few times like Kannel does.
    async fn get(&self, url: &str) {
        for attempt in 0..4u32 {
            let sent = self.http.get(url).send().await;
            if matches!(&sent, Ok(r) if r.status().is_success()) {
                self.acknowledged.fetch_add(1, Ordering::Relaxed);
                return;
            }
            tokio::time::sleep(Duration::from_millis(200) * 2u32.pow(attempt)).await;
        }
        self.failed.fetch_add(1, Ordering::Relaxed);
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
            part_receipts: self.part_receipts.load(Ordering::Relaxed),
        }
    }
}

/// Kannel's dlr-url escapes filled in, URL-encoded. A `%` followed by two hex digits is
/// already an encoded byte of the URL (the token, the reference) and stays as it is.
fn kannel_fill(url: &str, code: u32, id: &str, answer: &str, to: &str, at: i64) -> String {
    use crate::dlr::encode;
    let b = url.as_bytes();
    let mut out = String::with_capacity(url.len() + 64);
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 1 < b.len() {
            let encoded_byte =
                i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
            let value = match b[i + 1] {
                _ if encoded_byte => None,
                b'd' => Some(code.to_string()),
                b'F' => Some(encode(id)),
                b'A' => Some(encode(answer)),
                b'p' => Some(encode(to)),
                b'T' => Some(at.to_string()),
                _ => None,
            };
            if let Some(v) = value {
                out.push_str(&v);
                i += 2;
                continue;
            }
        }
        // Copy one whole UTF-8 character.
        let ch = url[i..]
            .chars()
            .next()
            .expect("a character at a char boundary");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kannel_escapes_are_filled_in_and_encoded_bytes_kept() {
        let url = crate::dlr::kannel_dlr_url(
            "http://127.0.0.1:1/",
            "k",
            &crate::config::Secret::new("t%F0/k"),
            "smscast-1-2",
            true,
        );
        let filled = kannel_fill(&url, 1, "ab 1", "id:x stat:DELIVRD", "84912345678", 7);
        assert_eq!(
            filled,
            "http://127.0.0.1:1/kannel/k?token=t%25F0%2Fk&ref=smscast-1-2&status=1&part=ab%201\
             &answer=id%3Ax%20stat%3ADELIVRD&to=84912345678&at=7"
        );
    }
}
