//! The receipt server (axum on hyper, with the limits of [`super::http`]): one endpoint per
//! format and gateway, authenticated from the URL and headers before any body is read,
//! answering 200 only once the receipt is durably stored. Every refusal is logged and counted
//! ([`super::refusals`]); `/status`, `/metrics` and `/healthz` are for the operator.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Result, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use metrics_exporter_prometheus::PrometheusHandle;

use super::auth;
use super::http::{Limits, Serving};
use super::parse::{self, Params};
use super::refusals::{Reason, Refusals, Refused};
use super::upkeep::Upkeep;
use super::writer::Writer;
use crate::config::{Config, GatewayConfig, HttpJsonReceipts, Secret, resolve_secret};
use crate::store::{NewReceipt, Store, now_ms};

/// How one gateway's receipts are authenticated and read.
pub enum Receiver {
    Kannel {
        token: Secret,
    },
    Twilio {
        auth_token: Secret,
        /// The StatusCallback URL without its query: what Twilio signs, before the query.
        signed_base: String,
    },
    HttpJson {
        token: Secret,
        receipts: HttpJsonReceipts,
    },
}

/// Gateway name → how its receipts are checked.
#[derive(Default)]
pub struct Receivers(HashMap<String, Receiver>);

impl Receivers {
    /// The gateways receipts are taken for.
    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// Every gateway in the configuration that asks for receipts; the secrets are read from
    /// the environment now, so a missing one stops the server at start, not at the first receipt.
    pub fn from_config(config: &Config) -> Result<Self> {
        let mut map = HashMap::new();
        for (name, gw) in &config.gateways {
            match gw {
                GatewayConfig::Kannel(k) if k.dlr_url.is_some() => {
                    let token = resolve_secret(
                        name,
                        "dlr_token",
                        k.dlr_token_env.as_deref(),
                        k.dlr_token.as_ref(),
                    )?;
                    map.insert(name.clone(), Receiver::Kannel { token });
                }
                GatewayConfig::Twilio(t) => {
                    let Some(cb) = &t.status_callback else {
                        continue;
                    };
                    let auth_token = resolve_secret(
                        name,
                        "auth_token",
                        t.auth_token_env.as_deref(),
                        t.auth_token.as_ref(),
                    )?;
                    let signed_base = cb.split('?').next().unwrap_or(cb).to_string();
                    map.insert(
                        name.clone(),
                        Receiver::Twilio {
                            auth_token,
                            signed_base,
                        },
                    );
                }
                GatewayConfig::HttpJson(h) if h.dlr_url.is_some() => {
                    let token = resolve_secret(
                        name,
                        "dlr_token",
                        h.dlr_token_env.as_deref(),
                        h.dlr_token.as_ref(),
                    )?;
                    map.insert(
                        name.clone(),
                        Receiver::HttpJson {
                            token,
                            receipts: h.receipts.clone(),
                        },
                    );
                }
                _ => {}
            }
        }
        Ok(Self(map))
    }

    pub fn insert(&mut self, gateway: &str, receiver: Receiver) {
        self.0.insert(gateway.to_string(), receiver);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (gateway, receipt path) for each gateway, for the operator.
    pub fn paths(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .0
            .iter()
            .map(|(name, r)| {
                let format = match r {
                    Receiver::Kannel { .. } => "kannel",
                    Receiver::Twilio { .. } => "twilio",
                    Receiver::HttpJson { .. } => "http-json",
                };
                (name.clone(), format!("/{format}/{name}"))
            })
            .collect();
        v.sort();
        v
    }
}

#[derive(Clone, Debug)]
pub struct DlrOptions {
    /// How often pending receipts are matched and silent messages expired.
    pub upkeep_every: Duration,
    pub validity: Duration,
    pub unmatched_after: Duration,
}

impl DlrOptions {
    pub fn from_config(config: &Config) -> Self {
        Self {
            upkeep_every: Duration::from_secs(2),
            validity: Duration::from_secs_f64(config.dlr.validity_hours * 3600.0),
            unmatched_after: Duration::from_secs_f64(config.dlr.unmatched_after_minutes * 60.0),
        }
    }
}

impl Limits {
    /// `[dlr] max_connections`, `header_timeout_secs`, `request_timeout_secs`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_connections: config.dlr.max_connections,
            header_timeout: Duration::from_secs_f64(config.dlr.header_timeout_secs),
            request_timeout: Duration::from_secs_f64(config.dlr.request_timeout_secs),
            ..Self::default()
        }
    }
}

struct App {
    /// Swapped whole on reload (SIGHUP).
    receivers: RwLock<Arc<Receivers>>,
    writer: Writer,
    refusals: Arc<Refusals>,
    limits: Limits,
    metrics: PrometheusHandle,
}

impl App {
    fn receivers(&self) -> Arc<Receivers> {
        self.receivers.read().expect("not poisoned").clone()
    }

    fn refuse(
        &self,
        reason: Reason,
        gateway: &str,
        known: bool,
        number: Option<&str>,
        detail: &str,
    ) -> Response {
        self.refusals.refuse(Refused {
            reason,
            gateway,
            known,
            number,
            detail,
        })
    }

    /// 405 with the methods the route takes.
    fn wrong_method(
        &self,
        format: &str,
        gateway: &str,
        method: &Method,
        allow: &'static str,
    ) -> Response {
        let known = self.receivers().0.contains_key(gateway);
        let mut r = self.refuse(
            Reason::MethodNotAllowed,
            gateway,
            known,
            None,
            &format!("{format} receipts are sent with {allow}, not {method}"),
        );
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        r
    }

    /// Reads the body of an authenticated request: at most `max_body` bytes (a larger
    /// declared length is refused before reading), within `request_timeout`.
    async fn body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, (Reason, String)> {
        let max = self.limits.max_body;
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err((
                Reason::BodyTooLarge,
                format!("a receipt is at most {max} bytes"),
            ));
        }
        match tokio::time::timeout(self.limits.request_timeout, axum::body::to_bytes(body, max))
            .await
        {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => {
                let too_large = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                    || e.to_string().contains("length limit");
                if too_large {
                    Err((
                        Reason::BodyTooLarge,
                        format!("a receipt is at most {max} bytes"),
                    ))
                } else {
                    Err((Reason::Malformed, "the body could not be read".into()))
                }
            }
            Err(_) => Err((
                Reason::Timeout,
                format!(
                    "the body did not arrive within {} s",
                    self.limits.request_timeout.as_secs_f64()
                ),
            )),
        }
    }
}

/// A running receipt server.
pub struct DlrServer {
    pub addr: SocketAddr,
    app: Arc<App>,
    serving: Serving,
    writer_task: tokio::task::JoinHandle<()>,
    upkeep_task: tokio::task::JoinHandle<()>,
    flush_task: tokio::task::JoinHandle<()>,
}

impl DlrServer {
    /// Binds `listen` (port 0 picks a free one) and serves in the background, with the
    /// default [`Limits`].
    pub async fn start(
        store: Arc<dyn Store>,
        receivers: Receivers,
        listen: &str,
        opts: DlrOptions,
    ) -> Result<Self> {
        Self::start_with_limits(store, receivers, listen, opts, Limits::default()).await
    }

    pub async fn start_with_limits(
        store: Arc<dyn Store>,
        receivers: Receivers,
        listen: &str,
        opts: DlrOptions,
        limits: Limits,
    ) -> Result<Self> {
        if receivers.is_empty() {
            bail!(
                "no gateway in smscast.toml asks for receipts: set dlr_url (kannel, http-json) or status_callback (twilio)"
            );
        }
        let metrics = crate::observe::install();
        let listener = crate::observe::bind("--listen (or [dlr] listen)", listen).await?;
        let addr = listener.local_addr()?;
        let (writer, writer_task) = Writer::start(store.clone());
        let upkeep = Upkeep {
            every: opts.upkeep_every,
            validity: opts.validity,
            unmatched_after: opts.unmatched_after,
            gateways_with_receipts: receivers.names(),
        };
        let upkeep_task = upkeep.spawn(store.clone());
        let refusals = Arc::new(Refusals::default());
        let app = Arc::new(App {
            receivers: RwLock::new(Arc::new(receivers)),
            writer,
            refusals: refusals.clone(),
            limits: limits.clone(),
            metrics,
        });
        let router = Router::new()
            .route("/kannel/{gateway}", any(kannel))
            .route("/twilio/{gateway}", any(twilio))
            .route("/http-json/{gateway}", any(http_json))
            .route("/status", get(status))
            .route("/metrics", get(metrics_page))
            .route("/healthz", get(crate::observe::healthz))
            .with_state((app.clone(), store));
        let on_overload = {
            let refusals = refusals.clone();
            Arc::new(move || {
                refusals.note(&Refused {
                    reason: Reason::Overloaded,
                    gateway: "-",
                    known: false,
                    number: None,
                    detail: "too many connections",
                })
            })
        };
        let serving = Serving::spawn(listener, router, &limits, on_overload);
        let flush_task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                refusals.flush();
            }
        });
        Ok(Self {
            addr,
            app,
            serving,
            writer_task,
            upkeep_task,
            flush_task,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Puts a new set of gateways in force (a reloaded `smscast.toml`): receipts from now on
    /// are checked against it.
    pub fn reload(&self, receivers: Receivers) {
        *self.app.receivers.write().expect("not poisoned") = Arc::new(receivers);
    }

    /// (gateway, receipt path) for each gateway in force.
    pub fn paths(&self) -> Vec<(String, String)> {
        self.app.receivers().paths()
    }

    /// Refused receipts since the start, by reason.
    pub fn refused(&self) -> BTreeMap<String, u64> {
        self.app.refusals.counts()
    }

    /// Stops taking receipts, lets the ones in hand be stored, and returns.
    pub async fn stop(self) {
        self.serving.stop().await;
        self.upkeep_task.abort();
        self.flush_task.abort();
        self.app.refusals.flush_now();
        drop(self.app);
        let _ = self.writer_task.await;
    }
}

type AppState = State<(Arc<App>, Arc<dyn Store>)>;

fn pairs(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(params: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| names.contains(&k.as_str()))
        .map(|(_, v)| v.as_str())
}

/// Where the recipient's number may be in a receipt, by format.
const NUMBER_FIELDS: &[&str] = &["to", "To", "phone", "msisdn", "receiver", "destination"];

/// Stores the receipt; 200 only once it is committed.
async fn store(
    app: &App,
    gateway: &str,
    number: Option<&str>,
    receipt: Result<NewReceipt, String>,
) -> Response {
    let receipt = match receipt {
        Ok(r) => r,
        Err(why) => {
            return app.refuse(
                Reason::Malformed,
                gateway,
                true,
                number,
                &format!("malformed receipt: {why}"),
            );
        }
    };
    let state = receipt.status.as_str();
    match app.writer.store(receipt).await {
        Ok(effect) => {
            metrics::counter!(crate::observe::RECEIPTS, "gateway" => gateway.to_string(), "state" => state, "effect" => effect.as_str())
                .increment(1);
            (StatusCode::OK, format!("OK {}\n", effect.as_str())).into_response()
        }
        Err(e) => {
            tracing::error!("receipt not stored: {e:#}");
            app.refuse(
                Reason::NotStored,
                gateway,
                true,
                number,
                "the receipt could not be stored; try again",
            )
        }
    }
}

/// The request as received, secrets removed: kept with the receipt.
fn raw(method: &Method, path: &str, params: &Params, body: &str) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().filter(|(k, _)| k != "token"))
        .finish();
    let mut s = format!("{method} {path}?{query}");
    if !body.is_empty() {
        s.push('\n');
        s.push_str(body);
    }
    s
}

/// Kannel fetches its dlr-url with GET (POST is taken too). The token is in the URL smscast
/// built, so a request is authenticated before its body is read.
async fn kannel(
    State((app, _)): AppState,
    Path(gateway): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if method != Method::GET && method != Method::POST {
        return app.wrong_method("Kannel", &gateway, &method, "GET, POST");
    }
    let receivers = app.receivers();
    let mut params = pairs(query.as_deref().unwrap_or(""));
    let number = param(&params, NUMBER_FIELDS).map(str::to_string);
    let Some(Receiver::Kannel { token }) = receivers.0.get(&gateway) else {
        return app.refuse(
            Reason::UnknownGateway,
            &gateway,
            false,
            number.as_deref(),
            "no such Kannel gateway",
        );
    };
    let given = param(&params, &["token"]);
    if !auth::token_matches(token.expose(), given) {
        return app.refuse(
            Reason::BadToken,
            &gateway,
            true,
            number.as_deref(),
            "missing or wrong token",
        );
    }
    if method == Method::POST {
        let body = match app.body(&headers, body).await {
            Ok(b) => b,
            Err((reason, why)) => {
                return app.refuse(reason, &gateway, true, number.as_deref(), &why);
            }
        };
        params.extend(
            pairs(&String::from_utf8_lossy(&body))
                .into_iter()
                .filter(|(k, _)| k != "token"),
        );
    }
    let number = param(&params, NUMBER_FIELDS).map(str::to_string);
    let raw = raw(&method, &format!("/kannel/{gateway}"), &params, "");
    let receipt = parse::kannel(&gateway, &params, raw, now_ms());
    store(&app, &gateway, number.as_deref(), receipt).await
}

/// Twilio POSTs a form signed with `X-Twilio-Signature`. The signature covers the body, so
/// the header is checked for presence and shape first, the body is read within the limits,
/// and then the signature is verified.
async fn twilio(
    State((app, _)): AppState,
    Path(gateway): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if method != Method::POST {
        return app.wrong_method("Twilio status callbacks", &gateway, &method, "POST");
    }
    let receivers = app.receivers();
    let Some(Receiver::Twilio {
        auth_token,
        signed_base,
    }) = receivers.0.get(&gateway)
    else {
        return app.refuse(
            Reason::UnknownGateway,
            &gateway,
            false,
            None,
            "no such Twilio gateway",
        );
    };
    let Some(signature) = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return app.refuse(
            Reason::MissingSignature,
            &gateway,
            true,
            None,
            "missing X-Twilio-Signature",
        );
    };
    // HMAC-SHA1 in base64: 28 characters. Anything else cannot match: no need to read on.
    if signature.trim().len() != 28 {
        return app.refuse(
            Reason::BadSignature,
            &gateway,
            true,
            None,
            "bad X-Twilio-Signature",
        );
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return app.refuse(
            Reason::Malformed,
            &gateway,
            true,
            None,
            "malformed receipt: not a form post",
        );
    }
    let body = match app.body(&headers, body).await {
        Ok(b) => b,
        Err((reason, why)) => return app.refuse(reason, &gateway, true, None, &why),
    };
    let body = String::from_utf8_lossy(&body).into_owned();
    let form = pairs(&body);
    let number = param(&form, &["To"]).map(str::to_string);
    let url = match &query {
        Some(q) if !q.is_empty() => format!("{signed_base}?{q}"),
        _ => signed_base.clone(),
    };
    if !auth::verify_twilio(auth_token.expose(), &url, &form, signature) {
        return app.refuse(
            Reason::BadSignature,
            &gateway,
            true,
            number.as_deref(),
            "bad X-Twilio-Signature",
        );
    }
    let query_params = pairs(query.as_deref().unwrap_or(""));
    let reference = query_params
        .iter()
        .find(|(k, _)| k == "ref")
        .map(|(_, v)| v.as_str());
    let raw = raw(&method, &format!("/twilio/{gateway}"), &query_params, &body);
    let receipt = parse::twilio(&gateway, &form, reference, raw, now_ms());
    store(&app, &gateway, number.as_deref(), receipt).await
}

/// An aggregator's receipts: GET with a query, or POST with a form or JSON body; the token
/// is in the URL, checked before the body is read.
async fn http_json(
    State((app, _)): AppState,
    Path(gateway): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if method != Method::GET && method != Method::POST {
        return app.wrong_method("http-json", &gateway, &method, "GET, POST");
    }
    let receivers = app.receivers();
    let mut params = pairs(query.as_deref().unwrap_or(""));
    let number = param(&params, NUMBER_FIELDS).map(str::to_string);
    let Some(Receiver::HttpJson { token, receipts }) = receivers.0.get(&gateway) else {
        return app.refuse(
            Reason::UnknownGateway,
            &gateway,
            false,
            number.as_deref(),
            "no such http-json gateway",
        );
    };
    let given = param(&params, &["token"]).map(str::to_string);
    if !auth::token_matches(token.expose(), given.as_deref()) {
        return app.refuse(
            Reason::BadToken,
            &gateway,
            true,
            number.as_deref(),
            "missing or wrong token",
        );
    }
    params.retain(|(k, _)| k != "token");
    let body = match app.body(&headers, body).await {
        Ok(b) => b,
        Err((reason, why)) => return app.refuse(reason, &gateway, true, number.as_deref(), &why),
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if is_json {
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(m)) => {
                for (k, v) in m {
                    let v = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    params.push((k, v));
                }
            }
            _ => {
                return app.refuse(
                    Reason::Malformed,
                    &gateway,
                    true,
                    number.as_deref(),
                    "malformed receipt: not a JSON object",
                );
            }
        }
    } else if !text.is_empty() {
        params.extend(pairs(&text));
    }
    let number = param(&params, NUMBER_FIELDS).map(str::to_string);
    let raw = raw(&method, &format!("/http-json/{gateway}"), &params, "");
    let receipt = parse::http_json(&gateway, receipts, &params, raw, now_ms());
    store(&app, &gateway, number.as_deref(), receipt).await
}

/// Receipt counts from the database, and the receipts refused since the start, by reason.
async fn status(State((app, store)): AppState) -> Response {
    match store.receipt_counts().await {
        Ok(c) => {
            let mut v = serde_json::to_value(c).unwrap_or_default();
            let refused = app.refusals.counts();
            let total: u64 = refused.values().sum();
            if let serde_json::Value::Object(m) = &mut v {
                m.insert("refused_total".into(), total.into());
                m.insert(
                    "refused".into(),
                    serde_json::to_value(refused).unwrap_or_default(),
                );
            }
            axum::Json(v).into_response()
        }
        Err(e) => {
            tracing::error!("receipt counts: {e:#}");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

async fn metrics_page(State((app, _)): AppState) -> Response {
    crate::observe::render(&app.metrics)
}
