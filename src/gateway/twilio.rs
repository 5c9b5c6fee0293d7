//! The Twilio Messages API, and every aggregator that copies it.
//!
//! `POST {base_url}/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded `To`, `From`,
//! `Body`, `StatusCallback`, HTTP Basic auth; `201` with a JSON `sid` when accepted.

use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Deserialize;

use super::{Accepted, Gateway, OutboundSms, SubmitError, classify_transport, retry_after};
use crate::config::{Secret, TwilioConfig, resolve_secret};

pub struct Twilio {
    name: String,
    client: reqwest::Client,
    url: String,
    account_sid: String,
    token: Secret,
    from: Option<String>,
    status_callback: Option<String>,
    rate: Option<f64>,
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
const PERMANENT_CODES: &[i64] = &[21211, 21408, 21610, 21612, 21614, 30003, 30005, 30006];
/// Twilio's "too many requests" code, sometimes sent with a 400.
const THROTTLED: i64 = 20429;

impl Twilio {
    pub fn new(name: &str, c: &TwilioConfig, timeout: Duration) -> Result<Self> {
        let token = resolve_secret(
            name,
            "auth_token",
            c.auth_token_env.as_deref(),
            c.auth_token.as_ref(),
        )?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(256)
            .build()?;
        Ok(Self {
            name: name.into(),
            client,
            url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                c.base_url.trim_end_matches('/'),
                c.account_sid
            ),
            account_sid: c.account_sid.clone(),
            token,
            from: c.from.clone(),
            status_callback: c.status_callback.clone(),
            rate: c.rate,
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

    async fn submit(&self, sms: &OutboundSms<'_>) -> Result<Accepted, SubmitError> {
        let to = format!("+{}", sms.to);
        let from = self.from.as_deref().unwrap_or(sms.from);
        let mut form = vec![("To", to.as_str()), ("From", from), ("Body", sms.text)];
        if let Some(cb) = &self.status_callback {
            form.push(("StatusCallback", cb));
        }
        let mut req = self
            .client
            .post(&self.url)
            .basic_auth(&self.account_sid, Some(self.token.expose()))
            .form(&form);
        if let Some(h) = &self.idempotency_header {
            req = req.header(h.as_str(), sms.reference);
        }
        let resp = req.send().await.map_err(classify_transport)?;
        let status = resp.status();
        let wait = retry_after(resp.headers());
        // A body we cannot read after a success status is in doubt: the message was taken.
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) if status.is_success() => return Err(classify_transport(e)),
            Err(_) => Default::default(),
        };
        if status.is_success() {
            return match serde_json::from_slice::<Created>(&body) {
                Ok(c) => Ok(Accepted {
                    gateway_id: c.sid,
                    http_status: status.as_u16(),
                }),
                Err(_) => Err(SubmitError::InDoubt {
                    reason: format!("HTTP {status} without a message sid in the answer"),
                }),
            };
        }
        let api: ApiError = serde_json::from_slice(&body).unwrap_or_default();
        let code = api.code.map(|c| c.to_string());
        let message = api
            .message
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_string());
        let http_status = Some(status.as_u16());
        Err(match status {
            StatusCode::TOO_MANY_REQUESTS => SubmitError::Transient {
                reason: format!("throttled by the gateway (HTTP 429): {message}"),
                retry_after: wait,
                http_status,
                code,
            },
            _ if api.code == Some(THROTTLED) => SubmitError::Transient {
                reason: format!("throttled by the gateway: {message}"),
                retry_after: wait,
                http_status,
                code,
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => SubmitError::Unusable {
                reason: format!(
                    "the gateway refused our credentials (HTTP {}): check account_sid and the auth token of gateway {:?}",
                    status.as_u16(),
                    self.name
                ),
                http_status,
            },
            s if s.is_server_error() => SubmitError::Transient {
                reason: format!("gateway error (HTTP {}): {message}", s.as_u16()),
                retry_after: wait,
                http_status,
                code,
            },
            s => {
                let permanent_code = api.code.is_some_and(|c| PERMANENT_CODES.contains(&c));
                SubmitError::Permanent {
                    reason: format!(
                        "rejected by the gateway (HTTP {}{}): {message}",
                        s.as_u16(),
                        if permanent_code {
                            ", permanent error code"
                        } else {
                            ""
                        }
                    ),
                    http_status,
                    code,
                }
            }
        })
    }
}
