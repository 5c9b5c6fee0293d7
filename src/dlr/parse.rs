//! Each receipt format, parsed into a [`NewReceipt`]. An `Err` is a malformed receipt (400).

use crate::config::HttpJsonReceipts;
use crate::store::{NewReceipt, ReceiptStatus};

/// Request parameters (query, form or flat JSON), in order, secrets removed.
pub type Params = [(String, String)];

fn get<'a>(p: &'a Params, key: &str) -> Option<&'a str> {
    p.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `status=%d&answer=%A&to=%p&at=%T&ref=…` from Kannel's dlr-url, with `part=%F` (the SMSC's
/// message id) for a gateway that sends a receipt per part of a long message
/// (`receipts_per_part`): it names the part the receipt is about.
pub fn kannel(gateway: &str, p: &Params, raw: String, now_ms: i64) -> Result<NewReceipt, String> {
    let code = get(p, "status").ok_or("missing status (%d)")?;
    let bits: u32 = code
        .trim()
        .parse()
        .map_err(|_| format!("status {code:?} is not a Kannel dlr type"))?;
    let status = kannel_status(bits).ok_or_else(|| format!("unknown Kannel dlr type {bits}"))?;
    let reference = get(p, "ref").ok_or("missing ref")?.to_string();
    Ok(NewReceipt {
        received_ms: now_ms,
        gateway: gateway.into(),
        gateway_id: Some(reference.clone()),
        reference: Some(reference),
        part: get(p, "part").map(str::to_string),
        status,
        gateway_status: bits.to_string(),
        error_code: None,
        raw,
    })
}

/// Kannel's dlr types: 1 delivered, 2 undelivered, 4 buffered, 8 SMSC accepted, 16 SMSC rejected.
pub fn kannel_status(bits: u32) -> Option<ReceiptStatus> {
    if bits & 1 != 0 {
        Some(ReceiptStatus::Delivered)
    } else if bits & (2 | 16) != 0 {
        Some(ReceiptStatus::Failed)
    } else if bits & (4 | 8) != 0 {
        Some(ReceiptStatus::Enroute)
    } else {
        None
    }
}

/// A Twilio status callback: `MessageSid`, `MessageStatus`, `ErrorCode`; `ref` in the query.
pub fn twilio(
    gateway: &str,
    form: &Params,
    reference: Option<&str>,
    raw: String,
    now_ms: i64,
) -> Result<NewReceipt, String> {
    let sid = get(form, "MessageSid")
        .or_else(|| get(form, "SmsSid"))
        .ok_or("missing MessageSid")?;
    let word = get(form, "MessageStatus")
        .or_else(|| get(form, "SmsStatus"))
        .ok_or("missing MessageStatus")?;
    Ok(NewReceipt {
        received_ms: now_ms,
        gateway: gateway.into(),
        reference: reference.map(str::to_string),
        gateway_id: Some(sid.to_string()),
        part: None,
        status: twilio_status(word),
        gateway_status: word.to_string(),
        error_code: get(form, "ErrorCode").map(str::to_string),
        raw,
    })
}

/// Twilio's message statuses; anything not final is "en route".
pub fn twilio_status(word: &str) -> ReceiptStatus {
    match word.to_ascii_lowercase().as_str() {
        "delivered" | "read" => ReceiptStatus::Delivered,
        "undelivered" | "failed" | "canceled" => ReceiptStatus::Failed,
        _ => ReceiptStatus::Enroute,
    }
}

/// An aggregator's callback, read with the gateway's `[receipts]` settings.
pub fn http_json(
    gateway: &str,
    cfg: &HttpJsonReceipts,
    p: &Params,
    raw: String,
    now_ms: i64,
) -> Result<NewReceipt, String> {
    let status_field = cfg.status_field.as_deref().unwrap_or("status");
    let word = get(p, status_field).ok_or_else(|| format!("missing {status_field}"))?;
    let reference = get(p, "ref")
        .or_else(|| cfg.reference_field.as_deref().and_then(|f| get(p, f)))
        .map(str::to_string);
    let gateway_id = cfg
        .id_field
        .as_deref()
        .and_then(|f| get(p, f))
        .map(str::to_string);
    if reference.is_none() && gateway_id.is_none() {
        return Err("the receipt names no message (no ref and no message id)".into());
    }
    let status = if cfg.delivered.iter().any(|d| d == word) {
        ReceiptStatus::Delivered
    } else if cfg.failed.iter().any(|d| d == word) {
        ReceiptStatus::Failed
    } else {
        ReceiptStatus::Enroute
    };
    Ok(NewReceipt {
        received_ms: now_ms,
        gateway: gateway.into(),
        reference,
        gateway_id,
        part: None,
        status,
        gateway_status: word.to_string(),
        error_code: cfg
            .error_field
            .as_deref()
            .and_then(|f| get(p, f))
            .map(str::to_string),
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kannel_types() {
        assert_eq!(kannel_status(1), Some(ReceiptStatus::Delivered));
        assert_eq!(kannel_status(2), Some(ReceiptStatus::Failed));
        assert_eq!(kannel_status(16), Some(ReceiptStatus::Failed));
        assert_eq!(kannel_status(8), Some(ReceiptStatus::Enroute));
        assert_eq!(kannel_status(4), Some(ReceiptStatus::Enroute));
        assert_eq!(kannel_status(0), None);
        let r = kannel(
            "k",
            &p(&[("status", "1"), ("ref", "smscast-1-2")]),
            "raw".into(),
            5,
        )
        .unwrap();
        assert_eq!(r.reference.as_deref(), Some("smscast-1-2"));
        assert_eq!(r.part, None);
        let r = kannel(
            "k",
            &p(&[("status", "1"), ("part", "0A3F"), ("ref", "smscast-1-2")]),
            "raw".into(),
            5,
        )
        .unwrap();
        assert_eq!(r.part.as_deref(), Some("0A3F"));
        assert!(kannel("k", &p(&[("status", "x"), ("ref", "r")]), "".into(), 0).is_err());
        assert!(kannel("k", &p(&[("status", "1")]), "".into(), 0).is_err());
    }

    #[test]
    fn twilio_callbacks() {
        let r = twilio(
            "t",
            &p(&[
                ("MessageSid", "SM1"),
                ("MessageStatus", "undelivered"),
                ("ErrorCode", "30003"),
            ]),
            Some("smscast-1-2"),
            "".into(),
            0,
        )
        .unwrap();
        assert_eq!(r.status, ReceiptStatus::Failed);
        assert_eq!(r.error_code.as_deref(), Some("30003"));
        assert_eq!(twilio_status("sent"), ReceiptStatus::Enroute);
        assert!(twilio("t", &p(&[("MessageSid", "SM1")]), None, "".into(), 0).is_err());
    }
}
