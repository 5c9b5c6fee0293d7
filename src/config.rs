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
    /// Price per SMS part, by carrier, for the report's cost figures.
    #[serde(default)]
    pub prices: Option<Prices>,
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
}

impl GatewayConfig {
    pub fn rate(&self) -> Option<f64> {
        match self {
            Self::Twilio(t) => t.rate,
        }
    }
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
    /// A request header carrying our reference, for gateways that deduplicate by it.
    pub idempotency_header: Option<String>,
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
        let config: Self = toml::from_str(text)?;
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
        for (name, gw) in &config.gateways {
            if let Some(rate) = gw.rate()
                && !(rate > 0.0 && rate.is_finite())
            {
                bail!("[gateways.{name}] rate must be a positive number of messages per second");
            }
        }
        Ok(config)
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
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "****");
        let err = resolve_secret("gw", "auth_token", Some("SMSCAST_TEST_UNSET_VAR"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("SMSCAST_TEST_UNSET_VAR"));
    }
}
