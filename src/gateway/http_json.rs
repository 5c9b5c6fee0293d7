//! A configurable adapter for HTTP aggregators (eSMS, SpeedSMS, and the like): the request
//! is a template, the answer is read by paths and code lists, all from `smscast.toml`
//! (see `examples/esms.toml`, `examples/speedsms.toml`).
//!
//! Placeholders in template strings: `{to}` (in `number_format`), `{text}`, `{from}`,
//! `{unicode}` (a string that is exactly `{unicode}` becomes the configured value with its
//! type), `{reference}` (our id, the request id for gateways that deduplicate), `{dlr_url}`
//! (our receipt URL with the token and the reference), `{secret.NAME}`; in a batch request
//! (`[gateways.NAME.batch]`, see [`batch`]) also `{batch_reference}`.

mod batch;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::Value;

use super::{Accepted, Gateway, OutboundSms, SubmitError, classify_transport, retry_after};
use crate::config::{AuthStyle, BodyStyle, HttpJsonConfig, Secret, resolve_secret};

/// What a template is filled from: one message, and for a batch request its reference.
#[derive(Clone, Copy)]
struct Ctx<'a, 'b> {
    sms: &'a OutboundSms<'b>,
    /// `Some` for the batch-level fields: `{to}` and `{reference}` are left as they are, and
    /// `{dlr_url}` carries the batch reference.
    batch_reference: Option<&'a str>,
}

impl<'a, 'b> Ctx<'a, 'b> {
    fn one(sms: &'a OutboundSms<'b>) -> Self {
        Self {
            sms,
            batch_reference: None,
        }
    }
}

/// An answer (or one recipient's result in a batch answer), read by the configured paths.
struct Answer {
    /// The answer code, and the path it is read at (`None`: no code is expected).
    code: Option<String>,
    code_path: Option<String>,
    message_id: Option<String>,
    detail: String,
}

pub struct HttpJson {
    name: String,
    client: reqwest::Client,
    method: reqwest::Method,
    c: HttpJsonConfig,
    secrets: BTreeMap<String, Secret>,
    dlr_token: Option<Secret>,
}

impl HttpJson {
    pub fn new(name: &str, c: HttpJsonConfig, timeout: Duration) -> Result<Self> {
        let mut secrets = c.secret_values.clone();
        for (key, var) in &c.secrets {
            secrets.insert(
                key.clone(),
                resolve_secret(name, &format!("secret {key}"), Some(var), None)?,
            );
        }
        let dlr_token = match &c.dlr_url {
            Some(_) => Some(resolve_secret(
                name,
                "dlr_token",
                c.dlr_token_env.as_deref(),
                c.dlr_token.as_ref(),
            )?),
            None => None,
        };
        let method = reqwest::Method::from_bytes(c.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| anyhow::anyhow!("gateway {name:?}: unknown method {:?}", c.method))?;
        if c.body != BodyStyle::Json && c.template.values().any(|v| v.is_table() || v.is_array()) {
            bail!(
                "gateway {name:?}: a {:?} body has flat fields only; nested values need body = \"json\"",
                c.body
            );
        }
        if c.auth == AuthStyle::Header && c.auth_header.is_none() {
            bail!("gateway {name:?}: auth = \"header\" needs auth_header = \"NAME\"");
        }
        let client = super::http_client(timeout)?;
        Ok(Self {
            name: name.into(),
            client,
            method,
            c,
            secrets,
            dlr_token,
        })
    }

    /// Replaces the placeholders of one template string.
    fn fill(&self, s: &str, cx: Ctx<'_, '_>) -> String {
        let mut out = String::with_capacity(s.len() + cx.sms.text.len());
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                out.push_str(&rest[open..]);
                return out;
            };
            let key = &after[..close];
            match self.value_of(key, cx) {
                Some(v) => out.push_str(&v),
                None => {
                    out.push('{');
                    out.push_str(key);
                    out.push('}');
                }
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        out
    }

    fn value_of(&self, key: &str, cx: Ctx<'_, '_>) -> Option<String> {
        let sms = cx.sms;
        Some(match key {
            "to" | "reference" if cx.batch_reference.is_some() => return None,
            "batch_reference" => cx.batch_reference?.to_string(),
            "to" => self.c.number_format.format(sms.to),
            "text" => sms.text.to_string(),
            "from" => sms.from.to_string(),
            "reference" => sms.reference.to_string(),
            "unicode" => match self.render(&toml::Value::String("{unicode}".into()), cx) {
                Value::String(s) => s,
                other => other.to_string(),
            },
            "dlr_url" => match (&self.c.dlr_url, &self.dlr_token) {
                (Some(base), token) => crate::dlr::callback_url(
                    base,
                    "http-json",
                    &self.name,
                    token.as_ref(),
                    cx.batch_reference.unwrap_or(sms.reference),
                ),
                _ => String::new(),
            },
            k => self
                .secrets
                .get(k.strip_prefix("secret.")?)?
                .expose()
                .to_string(),
        })
    }

    fn render(&self, v: &toml::Value, cx: Ctx<'_, '_>) -> Value {
        match v {
            toml::Value::String(s) if s == "{unicode}" => {
                match &self.c.unicode_values[usize::from(cx.sms.unicode)] {
                    // Taken as it is: never a template itself.
                    toml::Value::String(u) => Value::String(u.clone()),
                    other => self.render(other, cx),
                }
            }
            toml::Value::String(s) => Value::String(self.fill(s, cx)),
            toml::Value::Integer(i) => Value::from(*i),
            toml::Value::Float(f) => Value::from(*f),
            toml::Value::Boolean(b) => Value::Bool(*b),
            toml::Value::Datetime(d) => Value::String(d.to_string()),
            toml::Value::Array(a) => Value::Array(a.iter().map(|x| self.render(x, cx)).collect()),
            toml::Value::Table(t) => Value::Object(
                t.iter()
                    .map(|(k, x)| (k.clone(), self.render(x, cx)))
                    .collect(),
            ),
        }
    }

    fn request(&self, sms: &OutboundSms<'_>) -> reqwest::RequestBuilder {
        let cx = Ctx::one(sms);
        let fields = self
            .c
            .template
            .iter()
            .map(|(k, v)| (k.clone(), self.render(v, cx)))
            .collect();
        self.request_with(&self.c.url, fields, cx)
    }

    /// A request to `url` (a template) with these body fields, written in the body style and
    /// with the authentication configured.
    fn request_with(
        &self,
        url: &str,
        fields: serde_json::Map<String, Value>,
        cx: Ctx<'_, '_>,
    ) -> reqwest::RequestBuilder {
        let mut req = self.client.request(self.method.clone(), self.fill(url, cx));
        let flat = || -> Vec<(String, String)> {
            fields
                .iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), s)
                })
                .collect()
        };
        req = match self.c.body {
            BodyStyle::Json => req.json(&fields),
            BodyStyle::Form => req.form(&flat()),
            BodyStyle::Query => req.query(&flat()),
        };
        let opt = |s: &Option<String>| s.as_deref().map(|v| self.fill(v, cx));
        match self.c.auth {
            AuthStyle::None => req,
            AuthStyle::Basic => req.basic_auth(
                opt(&self.c.auth_username).unwrap_or_default(),
                opt(&self.c.auth_password),
            ),
            AuthStyle::Bearer => req.bearer_auth(opt(&self.c.auth_value).unwrap_or_default()),
            AuthStyle::Header => req.header(
                self.c.auth_header.as_deref().unwrap_or_default(),
                opt(&self.c.auth_value).unwrap_or_default(),
            ),
        }
    }

    /// The wait a 429 asks for: Retry-After, else the configured header (seconds, or a Unix
    /// time in seconds).
    fn wait(&self, headers: &reqwest::header::HeaderMap) -> Option<Duration> {
        retry_after(headers).or_else(|| {
            let v: f64 = headers
                .get(self.c.retry_after_header.as_deref()?)?
                .to_str()
                .ok()?
                .trim()
                .parse()
                .ok()?;
            let now = chrono::Utc::now().timestamp() as f64;
            let secs = if v > 1e9 { v - now } else { v };
            Some(Duration::from_secs_f64(secs.clamp(0.0, 3600.0)))
        })
    }
}

/// The value at a dotted path (`data.tranId`, `items.0.id`).
pub fn value_at<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = v;
    for part in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// The value at a dotted path (`data.tranId`, `items.0.id`), numbers and strings as text.
pub fn at_path(v: &Value, path: &str) -> Option<String> {
    match value_at(v, path)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[async_trait]
impl Gateway for HttpJson {
    fn name(&self) -> &str {
        &self.name
    }

    fn dedups_by_reference(&self) -> bool {
        self.c.dedups_by_reference
    }

    fn rate(&self) -> Option<f64> {
        self.c.rate
    }
    fn sms_per_second(&self) -> Option<f64> {
        self.c.sms_per_second
    }

    async fn submit(&self, sms: &OutboundSms<'_>) -> Result<Accepted, SubmitError> {
        let resp = self.request(sms).send().await.map_err(classify_transport)?;
        let status = resp.status();
        let wait = self.wait(resp.headers());
        let body = super::answer_body("the gateway", status, resp)
            .await?
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&body);
        let json: Option<Value> = serde_json::from_str(&body).ok();
        let answer = self.read_answer(json.as_ref(), &body);
        self.verdict(status, wait, &answer, sms.reference)
    }

    fn batch_size(&self) -> usize {
        self.c.batch_size
    }

    fn requests_per_second(&self) -> Option<f64> {
        self.c.batch.as_ref()?.requests_per_second
    }

    async fn submit_batch(&self, batch: &[OutboundSms<'_>]) -> Vec<Result<Accepted, SubmitError>> {
        match &self.c.batch {
            Some(b) => batch::submit(self, b, batch).await,
            None => super::one_by_one(self, batch).await,
        }
    }
}

impl HttpJson {
    /// The whole answer, read by the gateway's `code_path`, `message_id_path`, `error_path`.
    fn read_answer(&self, json: Option<&Value>, body: &str) -> Answer {
        let c = &self.c;
        Answer::read(
            json,
            body,
            c.code_path.as_deref(),
            c.message_id_path.as_deref(),
            c.error_path.as_deref(),
        )
    }

    /// The verdict on an answer with HTTP `status`, by the configured code lists; `reference`
    /// stands for the message id when the answer has none.
    fn verdict(
        &self,
        status: StatusCode,
        wait: Option<Duration>,
        a: &Answer,
        reference: &str,
    ) -> Result<Accepted, SubmitError> {
        let c = &self.c;
        let code = &a.code;
        let detail = &a.detail;
        let http_status = Some(status.as_u16());
        let s = status.as_u16();
        let with_code = code
            .as_deref()
            .map(|c| format!(", code {c}"))
            .unwrap_or_default();
        let id = || {
            a.message_id
                .clone()
                .unwrap_or_else(|| reference.to_string())
        };
        let is = |list: &[String]| code.as_ref().is_some_and(|x| list.contains(x));
        let transient = |what: &str| SubmitError::Transient {
            reason: format!("{what} (HTTP {s}{with_code}): {detail}"),
            retry_after: wait,
            http_status,
            code: code.clone(),
        };
        let permanent = |what: &str| SubmitError::Permanent {
            reason: format!("{what} (HTTP {s}{with_code}): {detail}"),
            http_status,
            code: code.clone(),
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(transient("throttled by the gateway"));
        }
        if let Some(e) = super::classify_status(&self.name, status, wait, detail) {
            return Err(e);
        }
        if is(&c.unusable_codes) || status == StatusCode::UNAUTHORIZED || s == 403 {
            return Err(SubmitError::Unusable {
                reason: format!(
                    "the gateway refused us (HTTP {s}{with_code}): {detail}; check the credentials, brandname and balance of gateway {:?}",
                    self.name
                ),
                http_status,
            });
        }
        if is(&c.not_ours_codes) {
            return Err(SubmitError::NotOurs {
                reason: format!(
                    "not this gateway's subscriber, the number may have moved to another carrier (HTTP {s}{with_code}): {detail}"
                ),
                http_status,
                code: code.clone(),
            });
        }
        if is(&c.recipient_codes) {
            return Err(permanent("rejected for this recipient"));
        }
        if is(&c.permanent_codes) {
            return Err(permanent("rejected by the gateway"));
        }
        if is(&c.retryable_codes) || status.is_server_error() {
            return Err(transient("gateway error"));
        }
        if is(&c.duplicate_codes) {
            // The gateway has this request id already: it was submitted before.
            return Ok(Accepted {
                gateway_id: id(),
                http_status: s,
            });
        }
        if !status.is_success() {
            // An error status without a code we know: ours or the gateway's to fix, never a
            // verdict on this recipient.
            return Err(SubmitError::Unusable {
                reason: format!(
                    "unrecognised answer from the gateway (HTTP {s}{with_code}): {detail}; list the code in recipient_codes, permanent_codes or retryable_codes of gateway {:?}, or fix its settings",
                    self.name
                ),
                http_status,
            });
        }
        let accepted = match (&a.code_path, code) {
            (None, _) => true,
            // A 2xx without the code we read answers by: we cannot tell whether it was taken.
            (Some(path), None) => {
                return Err(SubmitError::InDoubt {
                    reason: format!("HTTP {s} without an answer code at {path:?}: {detail}"),
                    http_status,
                    code: None,
                });
            }
            (Some(_), Some(_)) => c.success_codes.is_empty() || is(&c.success_codes),
        };
        if accepted {
            Ok(Accepted {
                gateway_id: id(),
                http_status: s,
            })
        } else {
            // A 2xx with a code we were not told about: the gateway may well have taken it.
            Err(SubmitError::InDoubt {
                reason: format!(
                    "HTTP {s} with an unlisted answer code{with_code}: {detail}; list it in success_codes, retryable_codes or permanent_codes of gateway {:?}",
                    self.name
                ),
                http_status,
                code: code.clone(),
            })
        }
    }
}

impl Answer {
    /// Reads a code, a message id and an error text at these paths; the detail is the error
    /// text, else the start of `body`.
    fn read(
        json: Option<&Value>,
        body: &str,
        code_path: Option<&str>,
        id_path: Option<&str>,
        error_path: Option<&str>,
    ) -> Self {
        let get = |p: Option<&str>| json.zip(p).and_then(|(j, p)| at_path(j, p));
        Self {
            code: get(code_path),
            code_path: code_path.map(str::to_string),
            message_id: get(id_path),
            detail: get(error_path).unwrap_or_else(|| body.trim().chars().take(200).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_nested_values() {
        let v: Value =
            serde_json::json!({"CodeResult": "100", "data": {"tranId": 42, "list": [{"id": "a"}]}});
        assert_eq!(at_path(&v, "CodeResult").as_deref(), Some("100"));
        assert_eq!(at_path(&v, "data.tranId").as_deref(), Some("42"));
        assert_eq!(at_path(&v, "data.list.0.id").as_deref(), Some("a"));
        assert_eq!(at_path(&v, "data.nope"), None);
    }
}
