//! Gateway adapters: one trait, errors a caller can act on.
//!
//! Every answer is classified once, here, so the dispatcher never guesses: accepted (with the
//! gateway's id), transient (retry later, maybe after `retry_after`), permanent (never retry),
//! in doubt (the request went out and no answer came back: the gateway may have taken it), or
//! unusable (credentials or configuration: stop the campaign, do not burn through the list).

pub mod http_json;
pub mod kannel;
pub mod twilio;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;

use crate::config::{Config, GatewayConfig};

/// One message to one recipient.
#[derive(Clone, Debug)]
pub struct OutboundSms<'a> {
    /// Our id for this delivery, stable across retries (sent where the protocol allows).
    pub reference: &'a str,
    /// Canonical `84` + 9 digits; each adapter formats it as its API wants.
    pub to: &'a str,
    pub from: &'a str,
    pub text: &'a str,
    pub unicode: bool,
}

#[derive(Clone, Debug)]
pub struct Accepted {
    pub gateway_id: String,
    pub http_status: u16,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
        http_status: Option<u16>,
        code: Option<String>,
    },
    #[error("{reason}")]
    Permanent {
        reason: String,
        http_status: Option<u16>,
        code: Option<String>,
    },
    #[error("{reason}")]
    InDoubt { reason: String },
    /// The gateway refuses us as a client (credentials, account): no message can go out.
    #[error("{reason}")]
    Unusable {
        reason: String,
        http_status: Option<u16>,
    },
}

impl SubmitError {
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Transient { http_status, .. }
            | Self::Permanent { http_status, .. }
            | Self::Unusable { http_status, .. } => *http_status,
            Self::InDoubt { .. } => None,
        }
    }
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Transient { code, .. } | Self::Permanent { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// Classifies a transport error: a request that never left is safe to retry; anything after
/// the request may have been written is in doubt.
pub fn classify_transport(err: reqwest::Error) -> SubmitError {
    // Never show the URL: it may carry credentials in its query string (Kannel).
    let err = err.without_url();
    if err.is_connect() {
        SubmitError::Transient {
            reason: format!("could not connect to the gateway ({})", root_cause(&err)),
            retry_after: None,
            http_status: None,
            code: None,
        }
    } else if err.is_timeout() {
        SubmitError::InDoubt {
            reason: "the gateway did not answer in time".into(),
        }
    } else {
        SubmitError::InDoubt {
            reason: format!(
                "the connection failed after the request was sent ({})",
                root_cause(&err)
            ),
        }
    }
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Parses a `Retry-After` header given in seconds.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
}

#[async_trait]
pub trait Gateway: Send + Sync {
    /// The operator's name for this gateway (the key in `smscast.toml`).
    fn name(&self) -> &str;
    /// Whether resending with the same reference can never make a second message.
    fn dedups_by_reference(&self) -> bool;
    /// Messages per second the gateway allows, if configured.
    fn rate(&self) -> Option<f64>;
    async fn submit(&self, sms: &OutboundSms<'_>) -> Result<Accepted, SubmitError>;
}

/// Builds the adapter for the gateway named `name` in the configuration.
pub fn build(config: &Config, name: &str, timeout: Duration) -> Result<Arc<dyn Gateway>> {
    let Some(gw) = config.gateways.get(name) else {
        let known: Vec<&str> = config.gateways.keys().map(String::as_str).collect();
        if known.is_empty() {
            bail!(
                "gateway {name:?} is not configured: add a [gateways.{name}] section to smscast.toml (see the README), or try `smscast demo`"
            );
        }
        bail!(
            "gateway {name:?} is not configured; configured gateways: {}",
            known.join(", ")
        );
    };
    match gw {
        GatewayConfig::Twilio(t) => Ok(Arc::new(twilio::Twilio::new(name, t, timeout)?)),
        GatewayConfig::Kannel(k) => Ok(Arc::new(kannel::Kannel::new(name, k, timeout)?)),
        GatewayConfig::HttpJson(h) => Ok(Arc::new(http_json::HttpJson::new(
            name,
            (**h).clone(),
            timeout,
        )?)),
    }
}
