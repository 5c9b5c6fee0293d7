//! Batch requests (`[gateways.NAME.batch]`): many recipients in one request, for aggregators
//! that take thousands of numbers at once (eSMS, SpeedSMS).
//!
//! The body is the batch `template` with the list of recipients at `list_field`: one `item`
//! per recipient (a table of fields, or a string such as `"{to}"`, optionally joined into one
//! string). The answer is read twice: as a whole, by the gateway's paths and code lists (a
//! failure of the whole request is every recipient's verdict), then per recipient, from the
//! array at `results_path`, by the same code lists. A recipient the answer does not mention is
//! in doubt. Without per-recipient results each recipient's message id is the batch's id, a
//! colon, and the number as written in the request (`E-77:0912345678`).
//!
//! `{batch_reference}` is derived from the recipients' references only, so resending the same
//! rows carries the same request id.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Answer, Ctx, HttpJson, value_at};
use crate::config::HttpJsonBatch;
use crate::gateway::{Accepted, OutboundSms, SubmitError, answer_body, classify_transport};

type Verdict = Result<Accepted, SubmitError>;

/// One verdict per message of `batch`, in its order.
pub(super) async fn submit(
    gw: &HttpJson,
    b: &HttpJsonBatch,
    batch: &[OutboundSms<'_>],
) -> Vec<Verdict> {
    let mut out: Vec<Option<Verdict>> = vec![None; batch.len()];
    for group in groups(b, batch) {
        let sms: Vec<&OutboundSms<'_>> = group.iter().map(|&i| &batch[i]).collect();
        for (i, verdict) in group.into_iter().zip(send(gw, b, &sms).await) {
            out[i] = Some(verdict);
        }
    }
    out.into_iter()
        .map(|v| v.expect("the groups cover the whole batch"))
        .collect()
}

/// The request id of a batch: the same recipients' references give the same id.
pub fn batch_reference(references: &[&str]) -> String {
    let mut h = Sha256::new();
    for r in references {
        // Each reference with its length: no two lists of references read the same.
        h.update((r.len() as u64).to_be_bytes());
        h.update(r.as_bytes());
    }
    format!("smscast-b-{}", &hex::encode(h.finalize())[..20])
}

/// Indexes of the messages that can share one request: all of them, unless the batch-level
/// fields use the text, the sender or the encoding (then one request per distinct value).
fn groups(b: &HttpJsonBatch, batch: &[OutboundSms<'_>]) -> Vec<Vec<usize>> {
    let shared = ["{text}", "{from}", "{unicode}"]
        .iter()
        .any(|p| b.mentions(p));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, sms) in batch.iter().enumerate() {
        let same = |g: &Vec<usize>| {
            let first = &batch[g[0]];
            !shared || (first.text, first.from, first.unicode) == (sms.text, sms.from, sms.unicode)
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

/// Sends one request for `sms` (never empty) and reads a verdict for each.
async fn send(gw: &HttpJson, b: &HttpJsonBatch, sms: &[&OutboundSms<'_>]) -> Vec<Verdict> {
    let n = sms.len();
    let all = |e: SubmitError| vec![Err(e); n];
    let refs: Vec<&str> = sms.iter().map(|m| m.reference).collect();
    let reference = batch_reference(&refs);
    let cx = Ctx {
        sms: sms[0],
        batch_reference: Some(&reference),
    };
    let mut body: Map<String, Value> = b
        .template
        .iter()
        .map(|(k, v)| (k.clone(), gw.render(v, cx)))
        .collect();
    let items = sms.iter().map(|m| gw.render(&b.item, Ctx::one(m)));
    let list = match &b.join {
        Some(sep) => Value::String(items.map(|v| text(&v)).collect::<Vec<_>>().join(sep)),
        None => Value::Array(items.collect()),
    };
    put(&mut body, &b.list_field, list);
    let url = b.url.as_deref().unwrap_or(&gw.c.url);
    let resp = match gw.request_with(url, body, cx).send().await {
        Ok(r) => r,
        Err(e) => return all(classify_transport(e)),
    };
    let status = resp.status();
    let wait = gw.wait(resp.headers());
    let body = match answer_body("the gateway", status, resp).await {
        Ok(b) => b.unwrap_or_default(),
        Err(e) => return all(e),
    };
    let body = String::from_utf8_lossy(&body);
    let json: Option<Value> = serde_json::from_str(&body).ok();
    let top = gw.read_answer(json.as_ref(), &body);
    let results = b.results_path.as_deref().map(|p| {
        json.as_ref()
            .and_then(|j| value_at(j, p))
            .and_then(Value::as_array)
    });
    // With per-recipient results, the codes may be in the results only.
    let codes_per_recipient = status.is_success() && top.code.is_none();
    if !(codes_per_recipient && matches!(results, Some(Some(_)))) {
        // The answer as a whole: a failure is every recipient's.
        if let Err(e) = gw.verdict(status, wait, &top, &reference) {
            return all(e);
        }
    }
    let s = status.as_u16();
    match results {
        Some(Some(items)) => map_results(gw, b, (status, wait), sms, items),
        Some(None) => all(SubmitError::InDoubt {
            reason: format!(
                "HTTP {s} to a batch of {n}: no per-recipient results at {:?} ({}); the messages may have been taken",
                b.results_path.as_deref().unwrap_or_default(),
                top.detail
            ),
            http_status: Some(s),
            code: top.code.clone(),
        }),
        None => by_batch_id(gw, b, s, json.as_ref(), &top, sms),
    }
}

/// Each recipient's verdict from its result; a recipient without one is in doubt.
fn map_results(
    gw: &HttpJson,
    b: &HttpJsonBatch,
    (status, wait): (StatusCode, Option<Duration>),
    sms: &[&OutboundSms<'_>],
    items: &[Value],
) -> Vec<Verdict> {
    let mut out: Vec<Option<Verdict>> = vec![None; sms.len()];
    for item in items {
        let field = |f: &Option<String>| f.as_deref().and_then(|f| super::at_path(item, f));
        let by_ref = field(&b.result_reference);
        let by_to = field(&b.result_to).map(|t| last9(&t));
        let Some(i) = (0..sms.len()).find(|&i| {
            out[i].is_none()
                && by_ref.as_ref().is_none_or(|r| r == sms[i].reference)
                && by_to.as_ref().is_none_or(|t| *t == last9(sms[i].to))
                && (by_ref.is_some() || by_to.is_some())
        }) else {
            continue;
        };
        let answer = Answer::read(
            Some(item),
            &item.to_string(),
            b.result_code.as_deref(),
            b.result_message_id.as_deref(),
            b.result_error.as_deref(),
        );
        out[i] = Some(gw.verdict(status, wait, &answer, sms[i].reference));
    }
    let (n, m) = (sms.len(), items.len());
    out.into_iter()
        .map(|v| {
            v.unwrap_or_else(|| {
                Err(SubmitError::InDoubt {
                    reason: format!(
                        "HTTP {} to a batch of {n}: the answer's {m} results do not mention this recipient; the message may have been taken",
                        status.as_u16()
                    ),
                    http_status: Some(status.as_u16()),
                    code: None,
                })
            })
        })
        .collect()
}

/// Without per-recipient results: every recipient accepted under the batch's id (the id, a
/// colon, the number as written), except the numbers listed at `rejected_path`.
fn by_batch_id(
    gw: &HttpJson,
    b: &HttpJsonBatch,
    s: u16,
    json: Option<&Value>,
    top: &Answer,
    sms: &[&OutboundSms<'_>],
) -> Vec<Verdict> {
    let refused: Vec<String> = b
        .rejected_path
        .as_deref()
        .zip(json)
        .and_then(|(p, j)| value_at(j, p))
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| last9(&text(v))).collect())
        .unwrap_or_default();
    sms.iter()
        .map(|m| {
            if refused.contains(&last9(m.to)) {
                return Err(SubmitError::Permanent {
                    reason: format!(
                        "rejected for this recipient (HTTP {s}): the gateway lists the number at {:?}",
                        b.rejected_path.as_deref().unwrap_or_default()
                    ),
                    http_status: Some(s),
                    code: None,
                });
            }
            let written = gw.c.number_format.format(m.to);
            Ok(Accepted {
                gateway_id: match &top.message_id {
                    Some(id) => format!("{id}:{written}"),
                    None => m.reference.to_string(),
                },
                http_status: s,
            })
        })
        .collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The last 9 digits: the subscriber number, however the country prefix is written.
fn last9(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(9)..].iter().collect()
}

/// Sets `value` at a dotted `path` of `body`, making the objects on the way.
fn put(body: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            body.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let next = body
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !next.is_object() {
                *next = Value::Object(Map::new());
            }
            if let Value::Object(m) = next {
                put(m, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_reference_depends_on_the_references_only_and_all_of_them() {
        let a = batch_reference(&["smscast-1-1", "smscast-1-2"]);
        assert_eq!(a, batch_reference(&["smscast-1-1", "smscast-1-2"]));
        assert_ne!(a, batch_reference(&["smscast-1-1"]));
        assert_ne!(a, batch_reference(&["smscast-1-2", "smscast-1-1"]));
        assert_ne!(
            batch_reference(&["a", "b"]),
            batch_reference(&["a\nb"]),
            "a separator cannot be forged"
        );
        assert!(a.starts_with("smscast-b-") && a.len() == 30, "{a}");
    }

    #[test]
    fn numbers_compare_by_their_last_nine_digits() {
        assert_eq!(last9("0912345678"), last9("84912345678"));
        assert_eq!(last9("+84912345678"), "912345678");
    }

    #[test]
    fn the_list_goes_at_a_dotted_path() {
        let mut m = Map::new();
        m.insert("a".into(), Value::from(1));
        put(&mut m, "data.to", Value::from(vec!["x"]));
        assert_eq!(
            Value::Object(m),
            serde_json::json!({"a": 1, "data": {"to": ["x"]}})
        );
    }
}
