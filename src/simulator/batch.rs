//! The simulator's batch endpoint, shaped like eSMS's JSON API as `examples/esms.toml` writes
//! it: `POST /batch/send` with `ApiKey`, `Content`, `Brandname`, `RequestId` (the batch) and
//! `Recipients`, a list of `{Phone, RequestId, CallbackUrl}` (a recipient's own `Content`
//! overrides the batch's). The answer is `200 {"CodeResult": "100", "SMSID": batch id,
//! "Results": [{Phone, RequestId, CodeResult, SMSID | ErrorMessage}]}`, one result per
//! recipient.
//!
//! Each recipient is booked like a single send (`/stats`, `/stats/recipients`,
//! `/stats/arrivals`), deduplicated by its own `RequestId`. Faults: a missing `ApiKey` is 401
//! (code 101); [`SimOptions::max_rps`](super::SimOptions) counts requests (429); a server
//! error (503, code 99) or a throttle (429) fails the whole request, a hang takes every
//! recipient and answers late; rejected suffixes answer 105, ported numbers
//! [`NOT_OURS_CODE`], for that recipient only.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Fault, Sim, misconfigured, over_rate};

pub const PATH: &str = "/batch/send";

/// The code for "not our subscriber" (the number was ported to another carrier).
pub const NOT_OURS_CODE: &str = "133";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct BatchSend {
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    recipients: Vec<Recipient>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Recipient {
    phone: String,
    request_id: Option<String>,
    callback_url: Option<String>,
    content: Option<String>,
}

fn answer(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"CodeResult": code, "ErrorMessage": message})),
    )
        .into_response()
}

pub(super) async fn send(State(sim): State<Arc<Sim>>, Json(req): Json<BatchSend>) -> Response {
    sim.requests.fetch_add(1, Ordering::Relaxed);
    let now = crate::store::now_ms();
    if req.api_key.is_empty() {
        return answer(StatusCode::UNAUTHORIZED, "101", "Authorize failed");
    }
    if let Some(r) = misconfigured(&sim, PATH, "CodeResult") {
        return r;
    }
    if over_rate(&sim, now, req.recipients.len()).await {
        return throttled("1");
    }
    let latency = sim.opts.latency + sim.opts.faults.extra_latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    // The whole request's fault (rejections are per recipient, below).
    let fault = sim.opts.faults.decide("");
    match fault {
        Fault::ServerError => {
            sim.failed.fetch_add(1, Ordering::Relaxed);
            return answer(StatusCode::SERVICE_UNAVAILABLE, "99", "Service unavailable");
        }
        Fault::Throttle => {
            sim.throttled.fetch_add(1, Ordering::Relaxed);
            let wait = sim.opts.faults.retry_after_secs.unwrap_or(1).to_string();
            return throttled(&wait);
        }
        Fault::Hang | Fault::Reject | Fault::None => {}
    }
    let batch_id = format!("B-{:016x}", sim.next_sid.fetch_add(1, Ordering::Relaxed));
    let mut results = Vec::with_capacity(req.recipients.len());
    let mut receipts = Vec::new();
    let mut b = sim.books.lock().await;
    for r in &req.recipients {
        let to = canonical(&r.phone);
        let result = |code: &str, rest: serde_json::Value| {
            let mut v = json!({"Phone": r.phone, "RequestId": r.request_id, "CodeResult": code});
            v.as_object_mut()
                .expect("an object")
                .extend(rest.as_object().cloned().unwrap_or_default());
            v
        };
        let Some(to) = to else {
            sim.rejected.fetch_add(1, Ordering::Relaxed);
            results.push(result(
                "105",
                json!({"ErrorMessage": "Invalid phone number"}),
            ));
            continue;
        };
        if sim.opts.faults.decide(&to) == Fault::Reject {
            sim.rejected.fetch_add(1, Ordering::Relaxed);
            results.push(result(
                "105",
                json!({"ErrorMessage": "Phone number rejected"}),
            ));
            continue;
        }
        if sim
            .opts
            .faults
            .ported
            .iter()
            .any(|p| to.starts_with(p.as_str()))
        {
            sim.rejected.fetch_add(1, Ordering::Relaxed);
            results.push(result(
                NOT_OURS_CODE,
                json!({"ErrorMessage": "The number belongs to another carrier"}),
            ));
            continue;
        }
        if let Some(id) = r.request_id.as_ref().and_then(|q| b.by_reference.get(q)) {
            sim.deduplicated.fetch_add(1, Ordering::Relaxed);
            results.push(result("100", json!({"SMSID": id})));
            continue;
        }
        let sms_id = format!("{batch_id}-{}", results.len());
        let text = r.content.as_ref().unwrap_or(&req.content);
        if sim.opts.keep_bodies {
            b.bodies.insert(to.clone(), text.clone());
        }
        *b.per_recipient.entry(to.clone()).or_default() += 1;
        if let Some(q) = &r.request_id {
            b.by_reference.insert(q.clone(), sms_id.clone());
        }
        sim.accepted.fetch_add(1, Ordering::Relaxed);
        if let Some(cb) = &r.callback_url {
            receipts.push((cb.clone(), sms_id.clone(), to));
        }
        results.push(result("100", json!({"SMSID": sms_id})));
    }
    drop(b);
    if fault == Fault::Hang {
        // Taken, but the answer comes too late: the client cannot know.
        tokio::time::sleep(sim.opts.faults.hang_for).await;
    }
    if let Some(rc) = &sim.receipts {
        for (cb, id, to) in receipts {
            rc.schedule_http_json(&cb, &id, &to);
        }
    }
    (
        StatusCode::OK,
        Json(json!({"CodeResult": "100", "SMSID": batch_id, "Results": results})),
    )
        .into_response()
}

fn throttled(wait: &str) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, wait.to_string())],
        Json(json!({"CodeResult": "429", "ErrorMessage": "Too Many Requests"})),
    )
        .into_response()
}

/// `0912345678`, `84912345678` or `+84912345678` as `84912345678`; `None` if not a number.
fn canonical(phone: &str) -> Option<String> {
    let p = phone.trim().trim_start_matches('+');
    let c = match p.strip_prefix('0') {
        Some(national) => format!("84{national}"),
        None => p.to_string(),
    };
    (c.len() == 11 && c.starts_with("84") && c.bytes().all(|b| b.is_ascii_digit())).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_sent_are_read_in_every_form() {
        for p in ["0912345678", "84912345678", "+84912345678"] {
            assert_eq!(canonical(p).as_deref(), Some("84912345678"), "{p}");
        }
        assert_eq!(canonical("091234"), None);
        assert_eq!(canonical("09123456ab"), None);
    }
}
