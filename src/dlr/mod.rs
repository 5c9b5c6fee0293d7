//! Delivery receipts: the server gateways call back (`smscast dlr serve`), and the callback
//! URLs the adapters hand out.
//!
//! * One endpoint per receipt format, per gateway: `/kannel/{gateway}`, `/twilio/{gateway}`,
//!   `/http-json/{gateway}`. Every receipt is authenticated (Twilio: `X-Twilio-Signature`;
//!   others: a secret token in the URL, compared in constant time): a forged or
//!   unauthenticated one gets 401 and changes nothing; a malformed one 400.
//! * A receipt is answered 200 only once it is durably stored ([`writer`] commits receipts
//!   in batches). Duplicates are idempotent, a final state never regresses, and a receipt
//!   that matches nothing yet is kept pending and matched later ([`upkeep`]).
//! * Our reference travels in every callback URL (`ref=smscast-{campaign}-{delivery}`), so
//!   matching does not depend on the gateway's id.

pub mod auth;
pub mod http;
pub mod parse;
pub mod refusals;
mod server;
mod upkeep;
mod writer;

pub use http::Limits;
pub use server::{DlrOptions, DlrServer, Receivers};

use crate::config::Secret;

/// Kannel's dlr-url for one message: our server, the gateway, its token, our reference, and
/// Kannel's placeholders (`%d` status, `%A` SMSC answer, `%p` receiver, `%T` time).
///
/// `per_part`: the gateway sends a receipt for each part of a long message (each part goes
/// to the SMSC as its own SMS, with its own SMSC message id); `part=%F` (that id) then tells
/// the parts apart, and the receipts are combined (src/store/receipts.rs). Stock Kannel 1.4
/// asks a receipt for the first part only (`sms_split` in gw/sms.c drops the dlr-url of the
/// others): one receipt per message, without `part`.
pub fn kannel_dlr_url(
    base: &str,
    gateway: &str,
    token: &Secret,
    reference: &str,
    per_part: bool,
) -> String {
    format!(
        "{}&status=%d{}&answer=%A&to=%p&at=%T",
        callback_url(base, "kannel", gateway, Some(token), reference),
        if per_part { "&part=%F" } else { "" }
    )
}

/// `{base}/{format}/{gateway}?token=…&ref=…`, every part URL-encoded.
pub fn callback_url(
    base: &str,
    format: &str,
    gateway: &str,
    token: Option<&Secret>,
    reference: &str,
) -> String {
    let mut url = format!(
        "{}/{format}/{}?",
        base.trim_end_matches('/'),
        encode(gateway)
    );
    if let Some(t) = token {
        url.push_str("token=");
        url.push_str(&encode(t.expose()));
        url.push('&');
    }
    url.push_str("ref=");
    url.push_str(&encode(reference));
    url
}

/// A Twilio StatusCallback carrying our reference in its query.
pub fn twilio_callback_url(status_callback: &str, reference: &str) -> String {
    let sep = if status_callback.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{status_callback}{sep}ref={}", encode(reference))
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_urls_carry_token_and_reference() {
        let t = Secret::new("s3cr&t");
        assert_eq!(
            kannel_dlr_url("http://dlr.example/", "viettel", &t, "smscast-1-2", false),
            "http://dlr.example/kannel/viettel?token=s3cr%26t&ref=smscast-1-2&status=%d&answer=%A&to=%p&at=%T"
        );
        assert_eq!(
            kannel_dlr_url("http://dlr.example/", "viettel", &t, "smscast-1-2", true),
            "http://dlr.example/kannel/viettel?token=s3cr%26t&ref=smscast-1-2&status=%d&part=%F&answer=%A&to=%p&at=%T"
        );
        assert_eq!(
            twilio_callback_url("https://x/twilio/agg", "smscast-1-2"),
            "https://x/twilio/agg?ref=smscast-1-2"
        );
        assert_eq!(
            twilio_callback_url("https://x/twilio/agg?a=1", "r"),
            "https://x/twilio/agg?a=1&ref=r"
        );
    }
}
