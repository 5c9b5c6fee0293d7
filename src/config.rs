//! `smscast.toml`: gateways, routing, defaults. Validated once, here.
//!
//! Credentials are never written in logs or errors: the file names an environment variable
//! (`auth_token_env`), or holds the secret itself, which is then wrapped in [`Secret`] whose
//! `Debug` prints `****`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::msisdn::Carrier;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub gateways: BTreeMap<String, GatewayConfig>,
    /// carrier (viettel, vinaphone, …, `default`) → gateway name
    #[serde(default)]
    pub routing: BTreeMap<String, String>,
    #[serde(default)]
    pub defaults: Defaults,
    /// The delivery-receipt server (`smscast dlr serve`).
    #[serde(default)]
    pub dlr: DlrConfig,
    /// Price per SMS part, by carrier, for the report's cost figures.
    #[serde(default)]
    pub prices: Option<Prices>,
    /// The official report's letterhead and signature (`report --format docx`).
    #[serde(default)]
    pub report: ReportConfig,
}

/// `[dlr]`: where receipts are received and how long a message may wait for one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlrConfig {
    /// Address `smscast dlr serve` listens on.
    #[serde(default = "default_dlr_listen")]
    pub listen: String,
    /// Hours a submitted message may wait for a final receipt before it counts as expired.
    #[serde(default = "default_validity_hours")]
    pub validity_hours: f64,
    /// Minutes a receipt that matches no message is kept pending before it is reported
    /// unmatched (its submission may not be recorded yet).
    #[serde(default = "default_unmatched_after_minutes")]
    pub unmatched_after_minutes: f64,
    /// Open connections at most; past it a connection is answered 503 and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds to receive a request's line and headers; also the longest a kept-alive
    /// connection may sit idle.
    #[serde(default = "default_http_timeout_secs")]
    pub header_timeout_secs: f64,
    /// Seconds to receive a request's body.
    #[serde(default = "default_http_timeout_secs")]
    pub request_timeout_secs: f64,
}

fn default_dlr_listen() -> String {
    "127.0.0.1:8788".into()
}
fn default_validity_hours() -> f64 {
    48.0
}
fn default_unmatched_after_minutes() -> f64 {
    60.0
}
fn default_max_connections() -> usize {
    512
}
fn default_http_timeout_secs() -> f64 {
    10.0
}

impl Default for DlrConfig {
    fn default() -> Self {
        Self {
            listen: default_dlr_listen(),
            validity_hours: default_validity_hours(),
            unmatched_after_minutes: default_unmatched_after_minutes(),
            max_connections: default_max_connections(),
            header_timeout_secs: default_http_timeout_secs(),
            request_timeout_secs: default_http_timeout_secs(),
        }
    }
}

/// `[prices]`: `currency = "VND"`, then `carrier = price per SMS part` (`default` for the
/// carriers not named), e.g. `viettel = 800`.
#[derive(Debug, Clone, Deserialize)]
pub struct Prices {
    pub currency: String,
    #[serde(flatten)]
    pub per_part: BTreeMap<String, f64>,
}

impl Prices {
    /// The price of one part sent to `carrier`, if configured.
    pub fn price(&self, carrier: &str) -> Option<f64> {
        self.per_part
            .get(carrier)
            .or_else(|| self.per_part.get("default"))
            .copied()
    }
}

/// `[report]`: who issues the official report (Decree 30/2020/NĐ-CP layout) and to whom it
/// goes. Every field has a Long An default; the texts are printed as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportConfig {
    /// The superior agency, top left: "UBND TỈNH LONG AN".
    pub superior: String,
    /// The issuing agency, under it, in bold: "SỞ THÔNG TIN VÀ TRUYỀN THÔNG".
    pub agency: String,
    /// The document symbol after "Số: …/": "BC-STTTT" (BC = báo cáo).
    pub symbol: String,
    /// The place before the date: "Long An".
    pub place: String,
    /// The plan the report answers, named on the title line ("… theo {title}") and in the
    /// first sentence: "Kế hoạch thực hiện Tháng hành động phòng, chống ma túy năm 2022".
    pub title: String,
    /// Who signs, and the capacity above the signature ("KT. GIÁM ĐỐC\nPHÓ GIÁM ĐỐC": one
    /// line per `\n`). The name is left blank when empty.
    pub signer: String,
    pub signer_title: String,
    /// "Nơi nhận:" lines.
    pub recipients: Vec<String>,
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            superior: "UBND TỈNH LONG AN".into(),
            agency: "SỞ THÔNG TIN VÀ TRUYỀN THÔNG".into(),
            symbol: "BC-STTTT".into(),
            place: "Long An".into(),
            title: String::new(),
            signer: String::new(),
            signer_title: "GIÁM ĐỐC".into(),
            recipients: vec![
                "Công an tỉnh (báo cáo);".into(),
                "UBND tỉnh (báo cáo);".into(),
                "Sở Lao động - Thương binh và Xã hội;".into(),
                "Lưu: VT.".into(),
            ],
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Messages per second when neither the campaign nor the gateway says.
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// Daily sending window in Asia/Ho_Chi_Minh.
    #[serde(default = "default_hours")]
    pub hours: String,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: i64,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

fn default_rate() -> f64 {
    10.0
}

/// The rates smscast takes, in messages per second: from one message every 100 s (slower
/// than that, a stop would wait minutes for the next token) to 1,000,000/s (far above any
/// carrier's allowance, and what the benchmarks use for "no limit"; far beyond it the pacer's
/// arithmetic breaks down: "positive period").
pub const RATE_RANGE: std::ops::RangeInclusive<f64> = 0.01..=1_000_000.0;

/// Checks a rate given by an operator (a flag or the configuration).
pub fn check_rate(rate: f64) -> std::result::Result<f64, String> {
    if rate.is_finite() && RATE_RANGE.contains(&rate) {
        Ok(rate)
    } else {
        Err(format!(
            "{} is not a usable rate: give messages per second between {} and {}",
            if rate.abs() >= 1e9 {
                format!("{rate:e}")
            } else {
                rate.to_string()
            },
            RATE_RANGE.start(),
            RATE_RANGE.end()
        ))
    }
}

/// Checks a limit in SMS parts per second (`sms_per_second`): the same range as
/// [`RATE_RANGE`], for the same reasons, counted in parts.
pub fn check_sms_per_second(parts: f64) -> std::result::Result<f64, String> {
    check_rate(parts).map_err(|_| {
        format!(
            "{} is not a usable limit: give SMS parts per second between {} and {} (a 3-part message counts 3)",
            if parts.abs() >= 1e9 {
                format!("{parts:e}")
            } else {
                parts.to_string()
            },
            RATE_RANGE.start(),
            RATE_RANGE.end()
        )
    })
}

/// `--rate` as clap parses it.
pub fn parse_rate(s: &str) -> std::result::Result<f64, String> {
    let rate: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of messages per second"))?;
    check_rate(rate)
}
fn default_hours() -> String {
    "07:00-21:00".into()
}
fn default_max_attempts() -> i64 {
    5
}
fn default_concurrency() -> usize {
    32
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            rate: default_rate(),
            hours: default_hours(),
            max_attempts: default_max_attempts(),
            concurrency: default_concurrency(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GatewayConfig {
    Twilio(TwilioConfig),
    Kannel(KannelConfig),
    HttpJson(Box<HttpJsonConfig>),
}

impl GatewayConfig {
    /// The sender id the gateway puts on every message (`from`), when it sets one.
    pub fn from(&self) -> Option<&str> {
        match self {
            Self::Twilio(t) => t.from.as_deref(),
            Self::Kannel(k) => k.from.as_deref(),
            Self::HttpJson(_) => None,
        }
    }

    pub fn rate(&self) -> Option<f64> {
        match self {
            Self::Twilio(t) => t.rate,
            Self::Kannel(k) => k.rate,
            Self::HttpJson(h) => h.rate,
        }
    }

    /// SMS parts per second the gateway allows, if configured (`sms_per_second`).
    pub fn sms_per_second(&self) -> Option<f64> {
        match self {
            Self::Twilio(t) => t.sms_per_second,
            Self::Kannel(k) => k.sms_per_second,
            Self::HttpJson(h) => h.sms_per_second,
        }
    }
}

/// How a gateway wants the recipient's number written.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum NumberFormat {
    /// `0912345678`
    #[serde(rename = "0")]
    National,
    /// `84912345678`
    #[default]
    #[serde(rename = "84")]
    International,
    /// `+84912345678`
    #[serde(rename = "+84")]
    Plus,
}

impl NumberFormat {
    /// Formats a canonical `84` + 9 digits number.
    pub fn format(self, canonical: &str) -> String {
        let national = canonical.strip_prefix("84").unwrap_or(canonical);
        match self {
            Self::National => format!("0{national}"),
            Self::International => format!("84{national}"),
            Self::Plus => format!("+84{national}"),
        }
    }
}

/// Kannel's `sendsms` HTTP interface (smsbox).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KannelConfig {
    /// e.g. `http://127.0.0.1:13013/cgi-bin/sendsms`
    pub url: String,
    pub username: String,
    /// Name of the environment variable holding the sendsms password (preferred).
    pub password_env: Option<String>,
    pub password: Option<Secret>,
    /// Sender id; the campaign's sender when absent.
    pub from: Option<String>,
    /// Where `smscast dlr serve` is reachable (base URL); no receipts are asked for without it.
    pub dlr_url: Option<String>,
    /// Name of the environment variable holding the secret token put into the dlr-url.
    pub dlr_token_env: Option<String>,
    pub dlr_token: Option<Secret>,
    /// Kannel's dlr-mask: 1 delivered, 2 undelivered, 4 buffered, 8 SMSC accepted, 16 SMSC rejected.
    #[serde(default = "default_dlr_mask")]
    pub dlr_mask: u8,
    /// This Kannel sends a receipt for every part of a long message (a Kannel patched or
    /// configured to, or an SMSC that splits): the dlr-url then carries `%F`, and a message is
    /// delivered only once every part is. Off by default: stock Kannel 1.4 asks a receipt for
    /// the first part only, so one receipt per message comes back.
    #[serde(default)]
    pub receipts_per_part: bool,
    /// Route through this smsc-id.
    pub smsc: Option<String>,
    #[serde(default)]
    pub number_format: NumberFormat,
    pub rate: Option<f64>,
    /// SMS parts per second this gateway allows (a 3-part message counts 3).
    pub sms_per_second: Option<f64>,
}

fn default_dlr_mask() -> u8 {
    31
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    pub base_url: String,
    pub account_sid: String,
    /// Name of the environment variable holding the auth token (preferred).
    pub auth_token_env: Option<String>,
    /// The auth token itself, when the config file is kept private.
    pub auth_token: Option<Secret>,
    pub from: Option<String>,
    pub status_callback: Option<String>,
    /// Messages per second this gateway allows.
    pub rate: Option<f64>,
    /// SMS parts per second this gateway allows (a 3-part message counts 3).
    pub sms_per_second: Option<f64>,
    /// A request header carrying our reference, for gateways that deduplicate by it.
    pub idempotency_header: Option<String>,
}

/// A configurable HTTP adapter for aggregators (eSMS, SpeedSMS, …): see `examples/`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpJsonConfig {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// `json` (the body is `template` as JSON), `form` (form-encoded) or `query` (URL query).
    #[serde(default)]
    pub body: BodyStyle,
    /// The request fields; strings may hold `{to}`, `{text}`, `{from}`, `{unicode}`,
    /// `{reference}`, `{dlr_url}` and `{secret.NAME}`.
    pub template: toml::Table,
    /// Secret name → environment variable, used as `{secret.NAME}`.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Secret name → the secret itself, when the config file is kept private.
    #[serde(default)]
    pub secret_values: BTreeMap<String, Secret>,
    #[serde(default)]
    pub auth: AuthStyle,
    /// Basic auth user and password (may use `{secret.NAME}`).
    pub auth_username: Option<String>,
    pub auth_password: Option<String>,
    /// For `auth = "header"`: header name; value from `auth_value`.
    pub auth_header: Option<String>,
    /// For `bearer` and `header`: the value (may use `{secret.NAME}`).
    pub auth_value: Option<String>,
    #[serde(default)]
    pub number_format: NumberFormat,
    /// What `{unicode}` becomes: [GSM-7 value, UCS-2 value].
    #[serde(default = "default_unicode_values")]
    pub unicode_values: [toml::Value; 2],
    /// Whether the gateway deduplicates by the request id (`{reference}`).
    #[serde(default)]
    pub dedups_by_reference: bool,
    /// Dotted path of the answer code in the JSON answer (e.g. `CodeResult`, `status`).
    pub code_path: Option<String>,
    /// Codes that mean accepted; with no code_path, any 2xx is accepted.
    #[serde(default)]
    pub success_codes: Vec<String>,
    /// Codes that mean "this request id was taken already" (accepted earlier).
    #[serde(default)]
    pub duplicate_codes: Vec<String>,
    /// Dotted path of the gateway's message id in the answer.
    pub message_id_path: Option<String>,
    /// Dotted path of a human-readable error text.
    pub error_path: Option<String>,
    /// Codes that no retry can fix for any message (credentials, brandname, balance).
    #[serde(default)]
    pub unusable_codes: Vec<String>,
    /// Codes that mean "never for this recipient" (invalid number, opted out, …).
    #[serde(default)]
    pub recipient_codes: Vec<String>,
    /// Other codes that mean "this message, never".
    #[serde(default)]
    pub permanent_codes: Vec<String>,
    /// Codes that mean "this number is not our subscriber" (ported to another carrier).
    #[serde(default)]
    pub not_ours_codes: Vec<String>,
    /// Codes to retry later.
    #[serde(default)]
    pub retryable_codes: Vec<String>,
    /// Header with seconds to wait after a 429 when `Retry-After` is absent.
    pub retry_after_header: Option<String>,
    /// Where `smscast dlr serve` is reachable (base URL), for `{dlr_url}`.
    pub dlr_url: Option<String>,
    pub dlr_token_env: Option<String>,
    pub dlr_token: Option<Secret>,
    /// How this gateway's receipts read.
    #[serde(default)]
    pub receipts: HttpJsonReceipts,
    pub rate: Option<f64>,
    /// SMS parts per second this gateway allows (a 3-part message counts 3).
    pub sms_per_second: Option<f64>,
    /// Most recipients per request, 1 to 10,000; more than 1 needs a `batch` section.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How a request for many recipients is written and its answer read.
    pub batch: Option<HttpJsonBatch>,
}

/// The largest `batch_size` accepted: aggregators take up to a few thousand numbers a request.
pub const MAX_BATCH_SIZE: usize = 10_000;

fn default_batch_size() -> usize {
    1
}

/// A request for many recipients (`[gateways.NAME.batch]`): a body template with one field
/// holding the list, and where the answer says what became of each recipient.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpJsonBatch {
    /// The batch endpoint, when not the gateway's `url`.
    pub url: Option<String>,
    /// The request fields for the whole batch: `{text}`, `{from}`, `{unicode}`,
    /// `{batch_reference}`, `{dlr_url}`, `{secret.NAME}`; never `{to}` or `{reference}`.
    pub template: toml::Table,
    /// Dotted path in `template` where the list of recipients goes.
    pub list_field: String,
    /// One recipient: a table (`{ Phone = "{to}", RequestId = "{reference}" }`) or a string
    /// (`"{to}"`), with every placeholder of the single-message template.
    pub item: toml::Value,
    /// Joins the items (strings) into one string with this separator (`","`).
    pub join: Option<String>,
    /// Dotted path of the answer's array of per-recipient results.
    pub results_path: Option<String>,
    /// Field of a result with the number (as we wrote it) or our reference: how a result
    /// finds its recipient.
    pub result_to: Option<String>,
    pub result_reference: Option<String>,
    /// Fields of a result: its code (read with the gateway's code lists), message id, error.
    pub result_code: Option<String>,
    pub result_message_id: Option<String>,
    pub result_error: Option<String>,
    /// Without per-recipient results: dotted path of the list of numbers the gateway refused
    /// (e.g. SpeedSMS's `data.invalidPhone`); they are rejected for the recipient.
    pub rejected_path: Option<String>,
    /// Requests per second the gateway allows (SpeedSMS: 60 a minute is 1).
    pub requests_per_second: Option<f64>,
}

impl HttpJsonBatch {
    /// Whether a string of the batch-level `template` holds `placeholder` (e.g. `{text}`).
    pub fn mentions(&self, placeholder: &str) -> bool {
        fn walk(v: &toml::Value, p: &str) -> bool {
            match v {
                toml::Value::String(s) => s.contains(p),
                toml::Value::Array(a) => a.iter().any(|x| walk(x, p)),
                toml::Value::Table(t) => t.values().any(|x| walk(x, p)),
                _ => false,
            }
        }
        self.template.values().any(|v| walk(v, placeholder))
    }
}

impl HttpJsonConfig {
    /// Checks `batch_size` and the `batch` section, naming the key to fix.
    pub fn check_batch(&self, name: &str) -> Result<()> {
        let at = format!("[gateways.{name}]");
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            bail!(
                "{at} batch_size = {}: must be from 1 to {MAX_BATCH_SIZE} recipients per request",
                self.batch_size
            );
        }
        let Some(b) = &self.batch else {
            if self.batch_size > 1 {
                bail!(
                    "{at} batch_size = {} needs a [gateways.{name}.batch] section saying how a request for many recipients is written (see examples/esms.toml)",
                    self.batch_size
                );
            }
            return Ok(());
        };
        let at = format!("[gateways.{name}.batch]");
        if let Some(p) = ["{to}", "{reference}"].iter().find(|p| b.mentions(p)) {
            bail!("{at} template uses {p}, which differs per recipient: put it in `item`");
        }
        if b.list_field.is_empty() || b.list_field.split('.').any(str::is_empty) {
            bail!("{at} list_field must name the field that takes the recipients, e.g. \"Phones\"");
        }
        match (&b.item, &b.join) {
            (toml::Value::String(_), _) | (toml::Value::Table(_), None) => {}
            (toml::Value::Table(_), Some(_)) => {
                bail!("{at} join needs item to be a string such as \"{{to}}\"")
            }
            _ => bail!("{at} item must be a table of fields or a string such as \"{{to}}\""),
        }
        if self.body != BodyStyle::Json && b.join.is_none() {
            bail!(
                "{at} a {:?} body has flat fields only: set join = \",\" to send the numbers as one string, or body = \"json\"",
                self.body
            );
        }
        if b.results_path.is_some() && b.result_to.is_none() && b.result_reference.is_none() {
            bail!(
                "{at} results_path needs result_to or result_reference: how a result names its recipient"
            );
        }
        if let Some(rps) = b.requests_per_second
            && let Err(e) = check_rate(rps)
        {
            bail!("{at} requests_per_second: {e}");
        }
        Ok(())
    }
}

fn default_method() -> String {
    "POST".into()
}
fn default_unicode_values() -> [toml::Value; 2] {
    [toml::Value::Integer(0), toml::Value::Integer(1)]
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BodyStyle {
    #[default]
    Json,
    Form,
    Query,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthStyle {
    #[default]
    None,
    Basic,
    Bearer,
    Header,
}

/// The fields of an http-json gateway's delivery receipt (query, form or JSON body).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpJsonReceipts {
    /// Field with the gateway's message id.
    pub id_field: Option<String>,
    /// Field with our reference (when the gateway echoes the request id).
    pub reference_field: Option<String>,
    /// Field with the status.
    pub status_field: Option<String>,
    #[serde(default)]
    pub delivered: Vec<String>,
    #[serde(default)]
    pub failed: Vec<String>,
    /// Field with an error code, kept with the receipt.
    pub error_field: Option<String>,
}

/// A credential: usable, never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Reads a secret from the environment variable `var`, or takes the inline one.
pub fn resolve_secret(
    gateway: &str,
    what: &str,
    var: Option<&str>,
    inline: Option<&Secret>,
) -> Result<Secret> {
    if let Some(var) = var {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Secret(v)),
            _ => bail!(
                "gateway {gateway:?}: the {what} comes from the environment variable {var}, which is not set: export {var}=… and run again"
            ),
        };
    }
    match inline {
        Some(s) => Ok(s.clone()),
        None => {
            bail!("gateway {gateway:?}: no {what}; set {what}_env = \"VARIABLE\" in smscast.toml")
        }
    }
}

/// `scheme://host[:port]` of an absolute http(s) URL, or why it is not one.
fn origin(url: &str) -> std::result::Result<(reqwest::Url, String), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("is not an http:// or https:// URL".into());
    }
    let origin = parsed.origin().ascii_serialization();
    Ok((parsed, origin))
}

/// A Twilio status callback must be `dlr serve`'s `/twilio/NAME` route, exactly: the server
/// answers nothing else, and it checks the signature against this URL.
fn check_status_callback(name: &str, cb: &str) -> Result<()> {
    let expected_path = format!("/twilio/{name}");
    let (parsed, origin) = origin(cb).map_err(|why| {
        anyhow::anyhow!(
            "[gateways.{name}] status_callback {why}: set it to the public URL of `smscast dlr serve` for this gateway, e.g. \"https://dlr.example.gov.vn{expected_path}\""
        )
    })?;
    if parsed.path() != expected_path || parsed.fragment().is_some() {
        bail!(
            "[gateways.{name}] status_callback \"{origin}{}\" does not reach `smscast dlr serve`, which takes this gateway's status callbacks at {expected_path} only: every receipt would be lost. Set status_callback = \"{origin}{expected_path}\"",
            parsed.path()
        );
    }
    Ok(())
}

/// A Kannel or http-json `dlr_url` is the base URL of `dlr serve`: smscast adds
/// `/{format}/NAME?token=…&ref=…` to it, the only path `dlr serve` answers for this gateway.
fn check_dlr_url(name: &str, format: &str, url: &str) -> Result<()> {
    let route = format!("/{format}/{name}");
    let (parsed, origin) = origin(url).map_err(|why| {
        anyhow::anyhow!(
            "[gateways.{name}] dlr_url {why}: set it to where `smscast dlr serve` is reachable, e.g. \"https://dlr.example.gov.vn\" (receipts then come to https://dlr.example.gov.vn{route})"
        )
    })?;
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        bail!(
            "[gateways.{name}] dlr_url \"{origin}{}\" must be only the scheme, host and port where `smscast dlr serve` is reachable: smscast adds {route}?token=…&ref=… itself, and `dlr serve` answers at {route} only, so receipts would be lost. Set dlr_url = \"{origin}\" (receipts then come to {origin}{route})",
            parsed.path()
        );
    }
    Ok(())
}

/// The `[routing]` key for numbers their prefix's carrier says are not its subscribers (ported
/// away): they are sent once more through this route (else the default route).
pub const PORTED: &str = "ported";

/// The keys of `[routing]` and `[prices]`, checked and in the stored form: `default` or a
/// carrier as [`Carrier::as_str`] spells it (any case is accepted). A typo would otherwise
/// silently send that carrier to the default route (or price), so it is refused.
/// `[routing]` also takes `ported`: where a number goes once its carrier's gateway answered
/// "not our subscriber" (see [`PORTED`]).
fn carrier_keys<V>(section: &str, map: BTreeMap<String, V>) -> Result<BTreeMap<String, V>> {
    let mut out = BTreeMap::new();
    let extra: &[&str] = if section == "[routing]" {
        &["default", PORTED]
    } else {
        &["default"]
    };
    for (key, value) in map {
        let name = match key.trim().parse::<Carrier>() {
            Ok(c) => c.as_str().to_string(),
            Err(_) => match extra.iter().find(|e| key.trim().eq_ignore_ascii_case(e)) {
                Some(e) => e.to_string(),
                None => {
                    let known = Carrier::ALL.map(|c| c.as_str());
                    let hint = crate::commands::did_you_mean(
                        &key.trim().to_lowercase(),
                        known.iter().chain(extra).copied(),
                    )
                    .map(|s| format!(" (did you mean {s}?)"))
                    .unwrap_or_default();
                    bail!(
                        "{section} names {key:?}, which is not a carrier{hint}: use one of {}, or {}",
                        known.join(", "),
                        extra.join(" or ")
                    );
                }
            },
        };
        if out.insert(name.clone(), value).is_some() {
            bail!("{section} gives {name} twice (names are compared without case): keep one");
        }
    }
    Ok(out)
}

impl Config {
    /// Loads `path`, or the default `smscast.toml` when present, or an empty configuration.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let (path, required) = match path {
            Some(p) => (p, true),
            None => (Path::new("smscast.toml"), false),
        };
        if !path.exists() {
            if required {
                bail!("the configuration file {} does not exist", path.display());
            }
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Failed to read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("{} is not valid", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let mut config: Self = toml::from_str(text)?;
        config.routing = carrier_keys("[routing]", std::mem::take(&mut config.routing))?;
        if let Some(prices) = &mut config.prices {
            prices.per_part = carrier_keys("[prices]", std::mem::take(&mut prices.per_part))?;
        }
        for (carrier, gw) in &config.routing {
            if !config.gateways.contains_key(gw) {
                bail!(
                    "[routing] sends {carrier} to gateway {gw:?}, which has no [gateways.{gw}] section"
                );
            }
        }
        if let Some(prices) = &config.prices {
            if prices.currency.trim().is_empty() {
                bail!("[prices] currency must name the currency, e.g. currency = \"VND\"");
            }
            for (carrier, price) in &prices.per_part {
                if !(price.is_finite() && *price >= 0.0) {
                    bail!("[prices] {carrier} must be a price per SMS part, 0 or more");
                }
            }
        }
        if let Err(e) = check_rate(config.defaults.rate) {
            bail!("[defaults] rate: {e}");
        }
        for (name, gw) in &config.gateways {
            if let Some(rate) = gw.rate()
                && let Err(e) = check_rate(rate)
            {
                bail!("[gateways.{name}] rate: {e}");
            }
            if let Some(parts) = gw.sms_per_second()
                && let Err(e) = check_sms_per_second(parts)
            {
                bail!("[gateways.{name}] sms_per_second: {e}");
            }
            if let GatewayConfig::HttpJson(h) = gw {
                h.check_batch(name)?;
            }
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                bail!(
                    "gateway name {name:?}: use letters, digits, '-' and '_' only (it is part of the receipt URL)"
                );
            }
            let (dlr_url, token_env, token) = match gw {
                GatewayConfig::Kannel(k) => (&k.dlr_url, &k.dlr_token_env, &k.dlr_token),
                GatewayConfig::HttpJson(h) => (&h.dlr_url, &h.dlr_token_env, &h.dlr_token),
                GatewayConfig::Twilio(t) => {
                    if let Some(cb) = &t.status_callback {
                        check_status_callback(name, cb)?;
                    }
                    continue;
                }
            };
            if let Some(url) = dlr_url {
                let format = match gw {
                    GatewayConfig::Kannel(_) => "kannel",
                    _ => "http-json",
                };
                check_dlr_url(name, format, url)?;
            }
            if dlr_url.is_some() && token_env.is_none() && token.is_none() {
                bail!(
                    "[gateways.{name}] has a dlr_url but no dlr_token_env: receipts must carry a secret token, or anyone could forge them"
                );
            }
        }
        let dlr = &config.dlr;
        if !(dlr.validity_hours > 0.0 && dlr.validity_hours.is_finite()) {
            bail!("[dlr] validity_hours must be a positive number of hours");
        }
        if !(dlr.unmatched_after_minutes >= 0.0 && dlr.unmatched_after_minutes.is_finite()) {
            bail!("[dlr] unmatched_after_minutes must be a number of minutes");
        }
        if dlr.max_connections == 0 {
            bail!("[dlr] max_connections must be at least 1");
        }
        for (what, secs) in [
            ("header_timeout_secs", dlr.header_timeout_secs),
            ("request_timeout_secs", dlr.request_timeout_secs),
        ] {
            if !(secs > 0.0 && secs <= 3600.0) {
                bail!("[dlr] {what} must be a number of seconds, more than 0 and at most 3600");
            }
        }
        Ok(config)
    }

    /// The gateways a campaign through `gateway` sends by, as `send` builds its routes: when
    /// `gateway` is `[routing] default`, it and every carrier's own gateway (not `ported`,
    /// which only takes numbers another gateway turned away); else `gateway` alone.
    pub fn routed_gateways<'a>(&'a self, gateway: &'a str) -> Vec<&'a str> {
        let mut names = vec![gateway];
        if self.routing.get("default").map(String::as_str) == Some(gateway) {
            for (carrier, name) in &self.routing {
                if carrier != "default" && carrier != PORTED && !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// The gateway a new campaign uses when `--gateway` is not given.
    pub fn default_gateway(&self) -> Result<String> {
        if let Some(gw) = self.routing.get("default") {
            return Ok(gw.clone());
        }
        match self.gateways.keys().collect::<Vec<_>>().as_slice() {
            [only] => Ok((*only).clone()),
            [] => bail!(
                "no gateway is configured: add a [gateways.NAME] section to smscast.toml (see the README), or run `smscast demo`"
            ),
            many => bail!(
                "several gateways are configured ({}): choose one with --gateway, or set [routing] default = \"NAME\"",
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_design_example() {
        let c = Config::parse(
            r#"
            [gateways.aggregator]
            kind = "twilio"
            base_url = "https://api.example.com"
            account_sid = "AC1"
            auth_token_env = "AGGREGATOR_TOKEN"
            from = "LONGAN"
            rate = 100
            [routing]
            default = "aggregator"
            "#,
        )
        .unwrap();
        assert_eq!(c.default_gateway().unwrap(), "aggregator");
        assert_eq!(c.gateways["aggregator"].rate(), Some(100.0));
    }

    #[test]
    fn sms_per_second_is_a_limit_in_parts() {
        let gw = |extra: &str| {
            format!(
                "[gateways.x]\nkind = \"kannel\"\nurl = \"http://127.0.0.1:13013/cgi-bin/sendsms\"\nusername = \"u\"\n{extra}\n"
            )
        };
        let c = Config::parse(&gw("rate = 100\nsms_per_second = 60")).unwrap();
        assert_eq!(c.gateways["x"].sms_per_second(), Some(60.0));
        assert_eq!(c.gateways["x"].rate(), Some(100.0));
        for bad in ["0", "-1", "nan", "inf", "1e300", "1e-9", "1000001"] {
            let err = Config::parse(&gw(&format!("sms_per_second = {bad}")))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("[gateways.x] sms_per_second") && err.contains("SMS parts"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn prices_by_carrier_with_a_default() {
        let c = Config::parse("[prices]\ncurrency = \"VND\"\nviettel = 800\ndefault = 850.5\n")
            .unwrap();
        let p = c.prices.unwrap();
        assert_eq!(p.currency, "VND");
        assert_eq!(p.price("viettel"), Some(800.0));
        assert_eq!(p.price("mobifone"), Some(850.5));
        assert!(Config::parse("[prices]\nviettel = 800\n").is_err());
        assert!(Config::parse("[prices]\ncurrency = \"VND\"\nviettel = -1\n").is_err());
        assert!(Config::parse("").unwrap().prices.is_none());
    }

    #[test]
    fn routing_to_a_missing_gateway_is_an_error() {
        let err = Config::parse("[routing]\nviettel = \"nope\"\n").unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn unknown_carriers_under_routing_are_refused() {
        let err = Config::parse(
            "[gateways.x]\nkind = \"kannel\"\nurl = \"http://127.0.0.1:13013/cgi-bin/sendsms\"\nusername = \"u\"\n[routing]\nvietel = \"x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("\"vietel\""), "{err}");
        assert!(err.contains("did you mean viettel"), "{err}");
        for known in [
            "viettel",
            "vinaphone",
            "mobifone",
            "vietnamobile",
            "gmobile",
            "itel",
            "reddi",
            "other",
        ] {
            assert!(err.contains(known), "{known} missing: {err}");
        }
        // Case does not matter (routing looks carriers up in lower case), and names are
        // kept in the stored form.
        let c = Config::parse(
            "[gateways.x]\nkind = \"kannel\"\nurl = \"http://127.0.0.1:13013/cgi-bin/sendsms\"\nusername = \"u\"\n[routing]\nViettel = \"x\"\ndefault = \"x\"\n",
        )
        .unwrap();
        assert_eq!(c.routing.keys().collect::<Vec<_>>(), ["default", "viettel"]);
        // `ported` is a route, not a carrier: [routing] takes it, [prices] does not.
        let gw = "[gateways.x]\nkind = \"kannel\"\nurl = \"http://127.0.0.1:13013/cgi-bin/sendsms\"\nusername = \"u\"\n";
        let c = Config::parse(&format!("{gw}[routing]\nPorted = \"x\"\n")).unwrap();
        assert_eq!(c.routing.keys().collect::<Vec<_>>(), ["ported"]);
        let err = Config::parse(&format!("{gw}[prices]\ncurrency = \"VND\"\nported = 1.0\n"))
            .unwrap_err();
        assert!(err.to_string().contains("\"ported\""), "{err}");
    }

    #[test]
    fn unknown_carriers_under_prices_are_refused() {
        let err = Config::parse("[prices]\ncurrency = \"VND\"\nmobiphone = 800\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"mobiphone\""), "{err}");
        assert!(err.contains("did you mean mobifone"), "{err}");
        assert!(err.contains("vietnamobile"), "{err}");
        let c =
            Config::parse("[prices]\ncurrency = \"VND\"\nViettel = 800\ndefault = 900\n").unwrap();
        assert_eq!(c.prices.unwrap().price("viettel"), Some(800.0));
        // The same carrier twice, in two spellings, is ambiguous.
        assert!(
            Config::parse("[prices]\ncurrency = \"VND\"\nViettel = 800\nviettel = 900\n").is_err()
        );
    }

    #[test]
    fn every_example_parses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                Config::parse(&text).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                seen += 1;
            }
        }
        assert!(seen >= 3, "examples found: {seen}");
    }

    fn http_json_with(extra: &str) -> String {
        format!(
            "[gateways.agg]\nkind = \"http-json\"\nurl = \"https://agg.example\"\n{extra}\n\
             [gateways.agg.template]\nto = \"{{to}}\"\n"
        )
    }

    #[test]
    fn batch_size_is_checked_and_needs_a_batch_section() {
        let err = |extra: &str| format!("{:#}", Config::parse(&http_json_with(extra)).unwrap_err());
        assert!(err("batch_size = 0").contains("from 1 to 10000"));
        assert!(err("batch_size = 10001").contains("from 1 to 10000"));
        assert!(err("batch_size = 500").contains("[gateways.agg.batch]"));
        let batch = |b: &str| {
            format!(
                "batch_size = 500\n[gateways.agg.batch]\nlist_field = \"to\"\n{b}\n\
                 [gateways.agg.batch.template]\ntext = \"{{text}}\""
            )
        };
        Config::parse(&http_json_with(&batch("item = \"{to}\""))).unwrap();
        assert!(err(&batch("item = { n = \"{to}\" }\njoin = \",\"")).contains("join needs item"));
        assert!(
            err(&batch("item = \"{to}\"\nresults_path = \"r\""))
                .contains("result_to or result_reference")
        );
        let per_recipient_in_batch = "batch_size = 2\n[gateways.agg.batch]\nlist_field = \"l\"\n\
            item = \"{to}\"\n[gateways.agg.batch.template]\nid = \"{reference}\"";
        assert!(err(per_recipient_in_batch).contains("put it in `item`"));
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "****");
        let err = resolve_secret("gw", "auth_token", Some("SMSCAST_TEST_UNSET_VAR"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("SMSCAST_TEST_UNSET_VAR"));
    }
}
