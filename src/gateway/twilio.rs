//! The Twilio Messages API, and every aggregator that copies it.
//!
//! `POST {base_url}/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded `To`, `From`,
//! `Body`, `StatusCallback`, HTTP Basic auth; `201` with a JSON `sid` when accepted.
//!
//! The StatusCallback carries our reference (`?ref=smscast-…`), so `dlr serve` matches a
//! status callback even when it beats the recording of the sid. Answers are classified by
//! HTTP status and Twilio's error code: 429 / 20429 throttled (Retry-After slows the whole
//! gateway), 21211 and the other per-recipient codes permanent, 21610 opted out, bad
//! credentials or sender unusable (the campaign pauses), 5xx transient.

use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use base64::Engine;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;

use super::{Accepted, Gateway, OutboundSms, SubmitError, classify_transport, retry_after};
use crate::config::{TwilioConfig, resolve_secret};

pub struct Twilio {
    name: String,
    client: reqwest::Client,
    /// Parsed once: every message goes to the same address.
    url: reqwest::Url,
    /// `Basic base64(sid:token)`, built once and marked sensitive (never shown by `Debug`).
    authorization: HeaderValue,
    from: Option<String>,
    status_callback: Option<String>,
    rate: Option<f64>,
    sms_per_second: Option<f64>,
    idempotency_header: Option<String>,
}

#[derive(Deserialize)]
struct Created {
    sid: String,
}

#[derive(Deserialize, Default)]
struct ApiError {
    code: Option<i64>,
    message: Option<String>,
}

/// Twilio error codes that mean "this recipient, never": retrying cannot help.
/// 21211 invalid To, 21214 To cannot be reached, 21217 To not valid, 21610 the recipient
/// replied STOP, 21612 cannot route to this number, 21614 not a mobile.
const PERMANENT_CODES: &[i64] = &[21211, 21214, 21217, 21610, 21612, 21614];
/// The recipient opted out with the provider: recorded as such.
const OPTED_OUT: i64 = 21610;
/// Twilio's "too many requests" code, sometimes sent with a 400.
const THROTTLED: i64 = 20429;
/// Codes that fail every message alike: credentials, account, sender.
/// 20003 authentication, 20404 account not found, 21212/21606/21659/21660 invalid From,
/// 21408 permission to send to this region not enabled (an account setting: one country,
/// every recipient), 30002 account suspended.
const UNUSABLE_CODES: &[i64] = &[20003, 20404, 21212, 21408, 21606, 21659, 21660, 30002];
/// Codes worth another try later: 30001 queue overflow, 20500/20503 internal errors.
const RETRYABLE_CODES: &[i64] = &[30001, 20500, 20503];

impl Twilio {
    pub fn new(name: &str, c: &TwilioConfig, timeout: Duration) -> Result<Self> {
        let token = resolve_secret(
            name,
            "auth_token",
            c.auth_token_env.as_deref(),
            c.auth_token.as_ref(),
        )?;
        let client = super::http_client(timeout)?;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            c.base_url.trim_end_matches('/'),
            c.account_sid
        );
        // The address itself stays out of the message: it may carry credentials.
        let url = reqwest::Url::parse(&url).with_context(|| {
            format!(
                "gateway {name}: base_url is not a valid http(s) address: fix it in smscast.toml"
            )
        })?;
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            c.account_sid,
            token.expose()
        ));
        let mut authorization = HeaderValue::from_str(&format!("Basic {credentials}"))
            .expect("base64 is a valid header value");
        authorization.set_sensitive(true);
        Ok(Self {
            name: name.into(),
            client,
            url,
            authorization,
            from: c.from.clone(),
            status_callback: c.status_callback.clone(),
            rate: c.rate,
            sms_per_second: c.sms_per_second,
            idempotency_header: c.idempotency_header.clone(),
        })
    }
}

#[async_trait]
impl Gateway for Twilio {
    fn name(&self) -> &str {
        &self.name
    }

    fn dedups_by_reference(&self) -> bool {
        self.idempotency_header.is_some()
    }

    fn rate(&self) -> Option<f64> {
        self.rate
    }
    fn sms_per_second(&self) -> Option<f64> {
        self.sms_per_second
    }

    async fn submit(&self, sms: &OutboundSms<'_>) -> Result<Accepted, SubmitError> {
        let to = format!("+{}", sms.to);
        let from = self.from.as_deref().unwrap_or(sms.from);
        let mut form = vec![("To", to.as_str()), ("From", from), ("Body", sms.text)];
        let callback = self
            .status_callback
            .as_deref()
            .map(|cb| crate::dlr::twilio_callback_url(cb, sms.reference));
        if let Some(cb) = &callback {
            form.push(("StatusCallback", cb));
        }
        let mut req = self
            .client
            .post(self.url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .form(&form);
        if let Some(h) = &self.idempotency_header {
            req = req.header(h.as_str(), sms.reference);
        }
        let resp = req.send().await.map_err(classify_transport)?;
        let status = resp.status();
        let wait = retry_after(resp.headers());
        // A body we cannot read (or too large) after a success status is in doubt: the
        // message may have been taken. Any other answer goes by its status alone then.
        let body = super::answer_body("the gateway", status, resp)
            .await?
            .unwrap_or_default();
        if status.is_success() {
            return match serde_json::from_slice::<Created>(&body) {
                Ok(c) => Ok(Accepted {
                    gateway_id: c.sid,
                    http_status: status.as_u16(),
                }),
                Err(_) => Err(SubmitError::InDoubt {
                    reason: format!("HTTP {status} without a message sid in the answer"),
                    http_status: Some(status.as_u16()),
                    code: None,
                }),
            };
        }
        let api: ApiError = serde_json::from_slice(&body).unwrap_or_default();
        let message = api
            .message
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_string());
        let message: String = message.chars().take(300).collect();
        Err(classify(&self.name, status, wait, api.code, message))
    }
}

/// Maps a Twilio error answer to its outcome.
fn classify(
    gateway: &str,
    status: StatusCode,
    wait: Option<std::time::Duration>,
    api_code: Option<i64>,
    message: String,
) -> SubmitError {
    let code = api_code.map(|c| c.to_string());
    let http_status = Some(status.as_u16());
    let s = status.as_u16();
    let has = |list: &[i64]| api_code.is_some_and(|c| list.contains(&c));
    if status == StatusCode::TOO_MANY_REQUESTS || api_code == Some(THROTTLED) {
        return SubmitError::Transient {
            reason: format!("throttled by the gateway (HTTP {s}): {message}"),
            retry_after: wait,
            http_status,
            code,
        };
    }
    if let Some(e) = super::classify_status(gateway, status, wait, &message) {
        return e;
    }
    if api_code == Some(OPTED_OUT) {
        return SubmitError::Permanent {
            reason: format!("the recipient opted out with the provider (code 21610): {message}"),
            http_status,
            code,
        };
    }
    if has(PERMANENT_CODES) {
        return SubmitError::Permanent {
            reason: format!(
                "rejected for this recipient (HTTP {s}, code {}): {message}",
                api_code.unwrap_or_default()
            ),
            http_status,
            code,
        };
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN || has(UNUSABLE_CODES)
    {
        return SubmitError::Unusable {
            reason: format!(
                "the gateway refused us (HTTP {s}{}): {message}; check account_sid, the auth token and the sender of gateway {gateway:?}",
                api_code.map(|c| format!(", code {c}")).unwrap_or_default()
            ),
            http_status,
        };
    }
    if status.is_server_error() || has(RETRYABLE_CODES) {
        return SubmitError::Transient {
            reason: format!("gateway error (HTTP {s}): {message}"),
            retry_after: wait,
            http_status,
            code,
        };
    }
    // Any other answer (a 4xx without a code we know): not about this recipient until shown
    // otherwise.
    super::unrecognised(
        gateway,
        status,
        &format!(
            "{}{message}",
            api_code.map(|c| format!("code {c}: ")).unwrap_or_default()
        ),
    )
}
