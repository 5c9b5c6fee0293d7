//! Every receipt the server refuses is logged (at the default level, `warn`: reason, gateway,
//! masked number) and counted by reason, for `GET /status` and `GET /metrics`.
//!
//! A flood must not become a flood of log lines: at most [`LOG_PER_SECOND`] lines a second
//! are written; past that the refusals are still counted, and one line a second says how many
//! were not logged, by reason.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::msisdn::Msisdn;

pub const LOG_PER_SECOND: u32 = 50;

/// Why a receipt was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// No gateway of that name and format in `smscast.toml`.
    UnknownGateway,
    /// A route that does not take this method (405).
    MethodNotAllowed,
    /// Token missing or wrong (401).
    BadToken,
    /// `X-Twilio-Signature` missing (401).
    MissingSignature,
    /// `X-Twilio-Signature` does not match (401).
    BadSignature,
    /// Body over the limit (413).
    BodyTooLarge,
    /// Body not received within the request timeout (408).
    Timeout,
    /// Authenticated but unreadable (400).
    Malformed,
    /// Over the connection cap (503).
    Overloaded,
    /// The database did not take it (503; the gateway retries).
    NotStored,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownGateway => "unknown_gateway",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BadToken => "bad_token",
            Self::MissingSignature => "missing_signature",
            Self::BadSignature => "bad_signature",
            Self::BodyTooLarge => "body_too_large",
            Self::Timeout => "timeout",
            Self::Malformed => "malformed",
            Self::Overloaded => "overloaded",
            Self::NotStored => "not_stored",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::UnknownGateway => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadToken | Self::MissingSignature | Self::BadSignature => {
                StatusCode::UNAUTHORIZED
            }
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Malformed => StatusCode::BAD_REQUEST,
            Self::Overloaded | Self::NotStored => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// One refusal, as logged.
pub struct Refused<'a> {
    pub reason: Reason,
    /// The gateway named in the URL (as given: it may not exist).
    pub gateway: &'a str,
    /// Whether that gateway is configured (else it is labelled `unknown` in metrics).
    pub known: bool,
    /// The recipient's number as the request gave it, if it did.
    pub number: Option<&'a str>,
    pub detail: &'a str,
}

#[derive(Default)]
struct Window {
    started: Option<Instant>,
    logged: u32,
    suppressed: BTreeMap<&'static str, u64>,
}

#[derive(Default)]
pub struct Refusals {
    counts: Mutex<BTreeMap<&'static str, u64>>,
    window: Mutex<Window>,
}

impl Refusals {
    /// Logs and counts the refusal; returns the answer for the client.
    pub fn refuse(&self, r: Refused<'_>) -> Response {
        self.note(&r);
        let mut response = (r.reason.status(), format!("{}\n", r.detail)).into_response();
        if r.reason == Reason::Overloaded || r.reason == Reason::NotStored {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }

    /// Logs and counts the refusal.
    pub fn note(&self, r: &Refused<'_>) {
        let code = r.reason.code();
        *self
            .counts
            .lock()
            .expect("not poisoned")
            .entry(code)
            .or_default() += 1;
        let gateway_label = if r.known {
            r.gateway.to_string()
        } else {
            "unknown".to_string()
        };
        metrics::counter!(crate::observe::RECEIPTS_REFUSED, "reason" => code, "gateway" => gateway_label)
            .increment(1);
        if self.may_log(code) {
            let gateway = sanitize(r.gateway);
            let number = r.number.map_or_else(|| "-".to_string(), mask);
            tracing::warn!(
                reason = code,
                gateway = %gateway,
                number = %number,
                status = r.reason.status().as_u16(),
                "receipt refused: {}",
                r.detail
            );
        }
    }

    fn may_log(&self, code: &'static str) -> bool {
        let mut w = self.window.lock().expect("not poisoned");
        let now = Instant::now();
        if w.started.is_none_or(|s| now - s >= Duration::from_secs(1)) {
            flush(&mut w);
            w.started = Some(now);
            w.logged = 0;
        }
        if w.logged < LOG_PER_SECOND {
            w.logged += 1;
            true
        } else {
            *w.suppressed.entry(code).or_default() += 1;
            false
        }
    }

    /// Writes the line about refusals not logged in the last window, if any (call every
    /// second or so: a flood that stops is still accounted for).
    pub fn flush(&self) {
        self.flush_if(|started| started.elapsed() >= Duration::from_secs(1));
    }

    /// Writes that line now, whatever the time (the server is stopping).
    pub fn flush_now(&self) {
        self.flush_if(|_| true);
    }

    fn flush_if(&self, due: impl Fn(Instant) -> bool) {
        let mut w = self.window.lock().expect("not poisoned");
        if w.started.is_some_and(due) {
            flush(&mut w);
            w.started = None;
        }
    }

    /// Refusals since the server started, by reason.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    }
}

fn flush(w: &mut Window) {
    if w.suppressed.is_empty() {
        return;
    }
    let total: u64 = w.suppressed.values().sum();
    let by: Vec<String> = w
        .suppressed
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    tracing::warn!(
        not_logged = total,
        "{total} more receipt(s) refused and not logged one by one ({}); counts at GET /status",
        by.join(", ")
    );
    w.suppressed.clear();
}

/// A name from a URL, safe for a log line: at most 64 characters of `[A-Za-z0-9_-]`.
fn sanitize(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// A phone number as the logs show every number: `8491****678`. What does not read as a
/// Vietnamese mobile number keeps at most its first 4 and last 3 characters.
pub fn mask(raw: &str) -> String {
    if let Ok(p) = Msisdn::parse(raw) {
        return p.msisdn.masked();
    }
    let chars: Vec<char> = raw.chars().take(32).collect();
    if chars.len() < 9 {
        return "*".repeat(chars.len().max(1));
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < 4 || i >= chars.len() - 3 {
                if c.is_ascii_graphic() { *c } else { '?' }
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_masked_as_everywhere() {
        assert_eq!(mask("0912345678"), "8491****678");
        assert_eq!(mask("+84912345678"), "8491****678");
        assert_eq!(mask("+14155550123"), "+141*****123");
        assert_eq!(mask("12345"), "*****");
    }

    #[test]
    fn counts_by_reason() {
        let r = Refusals::default();
        for _ in 0..3 {
            r.note(&Refused {
                reason: Reason::BadToken,
                gateway: "k",
                known: true,
                number: Some("0912345678"),
                detail: "missing or wrong token",
            });
        }
        r.note(&Refused {
            reason: Reason::UnknownGateway,
            gateway: "../etc",
            known: false,
            number: None,
            detail: "no such gateway",
        });
        let c = r.counts();
        assert_eq!(c["bad_token"], 3);
        assert_eq!(c["unknown_gateway"], 1);
    }
}
