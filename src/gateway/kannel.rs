//! Kannel's `sendsms` interface (smsbox).
//!
//! `GET {url}?username=&password=&from=&to=&text=&charset=UTF-8[&coding=2]&dlr-mask=&dlr-url=`.
//! Vietnamese text goes as UTF-8 with `coding=2` (UCS-2 on the air): `coding=2` without
//! `charset` corrupts the text and no `coding` turns the letters into `?`. Kannel's answer
//! carries no message id, so our reference is the id, and it travels in the dlr-url, which
//! `smscast dlr serve` matches on.
//!
//! Answers: 202 `0: Accepted for delivery` / `3: Queued for later delivery`; 400 a bad or
//! missing field; 403 bad credentials, or `Not routable. Do not try again.`; 503
//! `Temporal failure, try again later.` (queue full).

use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use reqwest::StatusCode;

use super::{Accepted, Gateway, OutboundSms, SubmitError, classify_transport, retry_after};
use crate::config::{KannelConfig, NumberFormat, Secret, resolve_secret};

pub struct Kannel {
    name: String,
    client: reqwest::Client,
    url: String,
    username: String,
    password: Secret,
    from: Option<String>,
    /// Base URL of the receipt server and its token, when receipts are wanted.
    dlr: Option<(String, Secret)>,
    dlr_mask: u8,
    receipts_per_part: bool,
    smsc: Option<String>,
    number_format: NumberFormat,
    rate: Option<f64>,
    sms_per_second: Option<f64>,
}

impl Kannel {
    pub fn new(name: &str, c: &KannelConfig, timeout: Duration) -> Result<Self> {
        let password = resolve_secret(
            name,
            "password",
            c.password_env.as_deref(),
            c.password.as_ref(),
        )?;
        let dlr = match &c.dlr_url {
            Some(base) => Some((
                base.clone(),
                resolve_secret(
                    name,
                    "dlr_token",
                    c.dlr_token_env.as_deref(),
                    c.dlr_token.as_ref(),
                )?,
            )),
            None => None,
        };
        let client = super::http_client(timeout)?;
        Ok(Self {
            name: name.into(),
            client,
            url: c.url.clone(),
            username: c.username.clone(),
            password,
            from: c.from.clone(),
            dlr,
            dlr_mask: c.dlr_mask,
            receipts_per_part: c.receipts_per_part,
            smsc: c.smsc.clone(),
            number_format: c.number_format,
            rate: c.rate,
            sms_per_second: c.sms_per_second,
        })
    }

    /// The query of one sendsms request (the password included: never log it).
    fn query(&self, sms: &OutboundSms<'_>) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("username", self.username.clone()),
            ("password", self.password.expose().to_string()),
            ("from", self.from.as_deref().unwrap_or(sms.from).to_string()),
            ("to", self.number_format.format(sms.to)),
            ("text", sms.text.to_string()),
            ("charset", "UTF-8".into()),
        ];
        if sms.unicode {
            q.push(("coding", "2".into()));
        }
        if let Some(smsc) = &self.smsc {
            q.push(("smsc", smsc.clone()));
        }
        if let Some((base, token)) = &self.dlr {
            q.push(("dlr-mask", self.dlr_mask.to_string()));
            q.push((
                "dlr-url",
                crate::dlr::kannel_dlr_url(
                    base,
                    &self.name,
                    token,
                    sms.reference,
                    self.receipts_per_part,
                ),
            ));
        }
        q
    }
}

#[async_trait]
impl Gateway for Kannel {
    fn name(&self) -> &str {
        &self.name
    }

    /// Kannel takes every request as a new message.
    fn dedups_by_reference(&self) -> bool {
        false
    }

    fn rate(&self) -> Option<f64> {
        self.rate
    }
    fn sms_per_second(&self) -> Option<f64> {
        self.sms_per_second
    }

    async fn submit(&self, sms: &OutboundSms<'_>) -> Result<Accepted, SubmitError> {
        let resp = self
            .client
            .get(&self.url)
            .query(&self.query(sms))
            .send()
            .await
            .map_err(classify_transport)?;
        let status = resp.status();
        let wait = retry_after(resp.headers());
        let body = super::answer_body("Kannel", status, resp)
            .await?
            .unwrap_or_default();
        classify(
            &self.name,
            status,
            wait,
            &String::from_utf8_lossy(&body),
            sms.reference,
        )
    }
}

/// Maps one sendsms answer to its outcome.
pub fn classify(
    gateway: &str,
    status: StatusCode,
    wait: Option<Duration>,
    body: &str,
    reference: &str,
) -> Result<Accepted, SubmitError> {
    let text: String = body.trim().chars().take(200).collect();
    let code = text
        .split_once(':')
        .map(|(c, _)| c.trim())
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string);
    let http_status = Some(status.as_u16());
    let lower = text.to_ascii_lowercase();
    if status.is_success() {
        // 0: Accepted for delivery; 3: Queued for later delivery; old versions: "Sent.".
        return if matches!(code.as_deref(), Some("0") | Some("3")) || lower.starts_with("sent") {
            Ok(Accepted {
                gateway_id: reference.to_string(),
                http_status: status.as_u16(),
            })
        } else {
            Err(SubmitError::InDoubt {
                reason: format!("Kannel answered HTTP {status} with {text:?}"),
                http_status,
                code,
            })
        };
    }
    if let Some(e) = super::classify_status(gateway, status, wait, &text) {
        return Err(e);
    }
    Err(match status.as_u16() {
        401 => unusable(gateway, status, &text),
        // A wrong `smsc` (or routing) gives this for every message: ours to fix, not the
        // recipient's.
        403 if lower.contains("not routable") => SubmitError::Unusable {
            reason: format!(
                "Kannel cannot route the messages (HTTP 403): {text}; check smsc and the routing of gateway {gateway:?}"
            ),
            http_status,
        },
        403 if lower.contains("denied") || lower.contains("black") || lower.contains("white") => {
            SubmitError::Permanent {
                reason: format!("Kannel refused this number (HTTP 403): {text}"),
                http_status,
                code,
            }
        }
        403 => unusable(gateway, status, &text),
        // A bad receiver is this message's problem; any other bad field is ours, for all.
        400 if lower.contains("receiver") || lower.contains("number") => SubmitError::Permanent {
            reason: format!("Kannel rejected the message (HTTP 400): {text}"),
            http_status,
            code,
        },
        400 => SubmitError::Unusable {
            reason: format!(
                "Kannel rejected the request (HTTP 400): {text}; check the settings of gateway {gateway:?}"
            ),
            http_status,
        },
        429 | 503 => SubmitError::Transient {
            reason: format!("Kannel is busy (HTTP {}): {text}", status.as_u16()),
            retry_after: wait,
            http_status,
            code,
        },
        s if s >= 500 => SubmitError::Transient {
            reason: format!("Kannel failed (HTTP {s}): {text}"),
            retry_after: wait,
            http_status,
            code,
        },
        _ => super::unrecognised(gateway, status, &text),
    })
}

fn unusable(gateway: &str, status: StatusCode, text: &str) -> SubmitError {
    SubmitError::Unusable {
        reason: format!(
            "Kannel refused us (HTTP {}): {text}; check the username and password of gateway {gateway:?}",
            status.as_u16()
        ),
        http_status: Some(status.as_u16()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: u16, body: &str) -> Result<Accepted, SubmitError> {
        classify(
            "k",
            StatusCode::from_u16(status).unwrap(),
            None,
            body,
            "smscast-1-2",
        )
    }

    #[test]
    fn every_answer_has_its_class() {
        assert_eq!(
            c(202, "0: Accepted for delivery").unwrap().gateway_id,
            "smscast-1-2"
        );
        assert!(c(202, "3: Queued for later delivery").is_ok());
        assert!(matches!(c(200, "weird"), Err(SubmitError::InDoubt { .. })));
        assert!(matches!(
            c(400, "Missing receiver number, rejected"),
            Err(SubmitError::Permanent { .. })
        ));
        assert!(matches!(
            c(400, "Sender missing and no global set, rejected"),
            Err(SubmitError::Unusable { .. })
        ));
        assert!(matches!(
            c(403, "Authorization failed for sendsms"),
            Err(SubmitError::Unusable { .. })
        ));
        assert!(matches!(
            c(403, "Not routable. Do not try again."),
            Err(SubmitError::Unusable { .. })
        ));
        assert!(matches!(
            c(403, "Number is blacklisted"),
            Err(SubmitError::Permanent { .. })
        ));
        for status in [301, 302, 307, 308, 404, 405, 413, 415, 418, 422] {
            assert!(
                matches!(c(status, "whatever"), Err(SubmitError::Unusable { .. })),
                "{status}"
            );
        }
        assert!(matches!(
            c(408, "Request Timeout"),
            Err(SubmitError::Transient { .. })
        ));
        assert!(matches!(
            c(503, "Temporal failure, try again later."),
            Err(SubmitError::Transient { .. })
        ));
        assert!(matches!(
            c(500, "Sending failed."),
            Err(SubmitError::Transient { .. })
        ));
    }
}
