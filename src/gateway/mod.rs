//! Gateway adapters: one trait, errors a caller can act on.
//!
//! Every answer is classified once, here, so the dispatcher never guesses: accepted (with the
//! gateway's id), transient (retry later, maybe after `retry_after`), permanent (never retry),
//! in doubt (the request went out and no answer came back: the gateway may have taken it), or
//! unusable (credentials or configuration: stop the campaign, do not burn through the list),
//! or not ours (the number has moved to another carrier: route it elsewhere).
//!
//! Aggregators take many recipients per request: [`Gateway::submit_batch`] gives one verdict
//! per recipient, in the batch's order.

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
    /// The gateway may have taken the message: no answer, or one we cannot read as either.
    #[error("{reason}")]
    InDoubt {
        reason: String,
        /// The answer's status and code, when there was an answer.
        http_status: Option<u16>,
        code: Option<String>,
    },
    /// The gateway refuses us as a client (credentials, account): no message can go out.
    #[error("{reason}")]
    Unusable {
        reason: String,
        http_status: Option<u16>,
    },
    /// The number is not this gateway's subscriber (ported to another carrier): never for
    /// this gateway, perhaps for another one.
    #[error("{reason}")]
    NotOurs {
        reason: String,
        http_status: Option<u16>,
        code: Option<String>,
    },
}

impl SubmitError {
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Transient { http_status, .. }
            | Self::Permanent { http_status, .. }
            | Self::InDoubt { http_status, .. }
            | Self::Unusable { http_status, .. }
            | Self::NotOurs { http_status, .. } => *http_status,
        }
    }
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Transient { code, .. }
            | Self::Permanent { code, .. }
            | Self::InDoubt { code, .. }
            | Self::NotOurs { code, .. } => code.as_deref(),
            Self::Unusable { .. } => None,
        }
    }
}

/// The most of an answer's body we read. Real gateway answers are a few hundred bytes; a body
/// past this is not an answer we can trust, and reading it whole lets a broken gateway take
/// the process's memory (a 200 MB answer at concurrency 4 once took 1.35 GB).
pub const MAX_BODY: usize = 64 * 1024;

/// The HTTP client every adapter uses. Redirects are never followed: a gateway that answers
/// 3xx is misconfigured (or hostile), and following it would send the recipients' numbers and
/// the text to another host, or turn the POST into a bodiless GET that looks like a success.
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(256)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// An answer's body, read up to [`MAX_BODY`].
#[derive(Debug)]
pub enum Body {
    Read(Vec<u8>),
    /// Longer than [`MAX_BODY`] (by its Content-Length, or as it came): not read further.
    TooLarge,
}

impl Body {
    /// The body as text (lossy), empty when it was too large.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Read(b) => String::from_utf8_lossy(b),
            Self::TooLarge => "".into(),
        }
    }
}

/// Reads the answer's body chunk by chunk and stops past [`MAX_BODY`]; never buffers more.
pub async fn read_body(mut resp: reqwest::Response) -> Result<Body, reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Ok(Body::TooLarge);
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() + chunk.len() > MAX_BODY {
            return Ok(Body::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Body::Read(buf))
}

/// Reads the body of an answer with status `status`. A 2xx body that cannot be read whole (too
/// large, or the connection failed) is in doubt: the gateway may have taken the message. Any
/// other answer is classified by its status alone when its body cannot be read (`Ok(None)`).
pub async fn answer_body(
    gateway_kind: &str,
    status: reqwest::StatusCode,
    resp: reqwest::Response,
) -> Result<Option<Vec<u8>>, SubmitError> {
    match read_body(resp).await {
        Ok(Body::Read(b)) => Ok(Some(b)),
        Ok(Body::TooLarge) if status.is_success() => Err(SubmitError::InDoubt {
            reason: format!(
                "{gateway_kind} answered HTTP {status} with a body over {} KiB: not read, the message may have been taken",
                MAX_BODY / 1024
            ),
            http_status: Some(status.as_u16()),
            code: None,
        }),
        Err(e) if status.is_success() => Err(classify_transport(e)),
        Ok(Body::TooLarge) | Err(_) => Ok(None),
    }
}

/// Answers that say something about the gateway's address or our request, never about a
/// recipient, whatever the adapter: a redirect (never followed), a wrong address or method,
/// a request the gateway cannot take (413, 415), a request timeout (408, try again).
pub fn classify_status(
    gateway: &str,
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    detail: &str,
) -> Option<SubmitError> {
    let s = status.as_u16();
    let http_status = Some(s);
    let what = match s {
        300..=399 => "a redirect, which smscast never follows",
        404 => "not found",
        405 => "method not allowed",
        413 => "request too large",
        415 => "unsupported media type",
        408 => {
            return Some(SubmitError::Transient {
                reason: format!("the gateway timed out reading the request (HTTP 408): {detail}"),
                retry_after,
                http_status,
                code: None,
            });
        }
        _ => return None,
    };
    // A redirect's body may echo the address, and Kannel's carries the password: not shown.
    let detail = if status.is_redirection() { "" } else { detail };
    Some(SubmitError::Unusable {
        reason: format!(
            "the gateway answered HTTP {s} ({what}){}{detail}; check the address and settings of gateway {gateway:?}",
            if detail.is_empty() { "" } else { ": " }
        ),
        http_status,
    })
}

/// An error answer this adapter does not recognise: our configuration, or the gateway's,
/// until shown otherwise. Never a final verdict on the recipient.
pub fn unrecognised(gateway: &str, status: reqwest::StatusCode, detail: &str) -> SubmitError {
    SubmitError::Unusable {
        reason: format!(
            "unrecognised answer from the gateway (HTTP {}): {detail}; check the settings of gateway {gateway:?}",
            status.as_u16()
        ),
        http_status: Some(status.as_u16()),
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
            http_status: None,
            code: None,
        }
    } else {
        SubmitError::InDoubt {
            reason: format!(
                "the connection failed after the request was sent ({})",
                root_cause(&err)
            ),
            http_status: None,
            code: None,
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
    /// SMS parts per second the gateway allows, if configured: a message of `n` parts
    /// counts `n` against it.
    fn sms_per_second(&self) -> Option<f64> {
        None
    }
    async fn submit(&self, sms: &OutboundSms<'_>) -> Result<Accepted, SubmitError>;

    /// The most recipients one [`Gateway::submit_batch`] request takes (1: one per request).
    fn batch_size(&self) -> usize {
        1
    }

    /// Requests per second the gateway allows, if configured: a batch request counts 1
    /// however many recipients it carries (SpeedSMS counts requests per minute).
    fn requests_per_second(&self) -> Option<f64> {
        None
    }

    /// Submits up to [`Gateway::batch_size`] messages; always exactly one verdict per message,
    /// in the batch's order. A failure of the whole request (timeout, credentials, throttling,
    /// an answer that cannot be read) is every recipient's verdict; a recipient the answer does
    /// not mention is in doubt. By default each message is submitted in turn.
    async fn submit_batch(&self, batch: &[OutboundSms<'_>]) -> Vec<Result<Accepted, SubmitError>> {
        one_by_one(self, batch).await
    }
}

/// Submits each message of `batch` in turn: the batch of a gateway without batch requests.
pub async fn one_by_one<G: Gateway + ?Sized>(
    gateway: &G,
    batch: &[OutboundSms<'_>],
) -> Vec<Result<Accepted, SubmitError>> {
    let mut out = Vec::with_capacity(batch.len());
    for sms in batch {
        out.push(gateway.submit(sms).await);
    }
    out
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
