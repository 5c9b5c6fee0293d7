//! The receipt server (axum): one endpoint per format and gateway, authenticated, answering
//! 200 only once the receipt is durably stored.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tokio::net::TcpListener;

use super::auth;
use super::parse::{self, Params};
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

struct App {
    receivers: Receivers,
    writer: Writer,
}

/// A running receipt server.
pub struct DlrServer {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    writer_task: tokio::task::JoinHandle<()>,
    upkeep_task: tokio::task::JoinHandle<()>,
}

impl DlrServer {
    /// Binds `listen` (port 0 picks a free one) and serves in the background.
    pub async fn start(
        store: Arc<dyn Store>,
        receivers: Receivers,
        listen: &str,
        opts: DlrOptions,
    ) -> Result<Self> {
        if receivers.is_empty() {
            bail!(
                "no gateway in smscast.toml asks for receipts: set dlr_url (kannel, http-json) or status_callback (twilio)"
            );
        }
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (writer, writer_task) = Writer::start(store.clone());
        let upkeep = Upkeep {
            every: opts.upkeep_every,
            validity: opts.validity,
            unmatched_after: opts.unmatched_after,
            gateways_with_receipts: receivers.names(),
        };
        let upkeep_task = upkeep.spawn(store.clone());
        let app = Arc::new(App { receivers, writer });
        let router = Router::new()
            .route("/kannel/{gateway}", any(kannel))
            .route("/twilio/{gateway}", any(twilio))
            .route("/http-json/{gateway}", any(http_json))
            .route("/status", get(status))
            .with_state((app, store));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            shutdown: Some(tx),
            task,
            writer_task,
            upkeep_task,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops taking receipts, lets the ones in hand be stored, and returns.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
        self.upkeep_task.abort();
        let _ = self.writer_task.await;
    }
}

type AppState = State<(Arc<App>, Arc<dyn Store>)>;

fn pairs(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn reject(status: StatusCode, why: &str) -> Response {
    (status, format!("{why}\n")).into_response()
}

/// Stores the receipt; 200 only once it is committed.
async fn store(app: &App, receipt: Result<NewReceipt, String>) -> Response {
    let receipt = match receipt {
        Ok(r) => r,
        Err(why) => {
            return reject(
                StatusCode::BAD_REQUEST,
                &format!("malformed receipt: {why}"),
            );
        }
    };
    match app.writer.store(receipt).await {
        Ok(effect) => (StatusCode::OK, format!("OK {}\n", effect.as_str())).into_response(),
        Err(e) => {
            tracing::error!("receipt not stored: {e:#}");
            reject(
                StatusCode::SERVICE_UNAVAILABLE,
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

async fn kannel(
    State((app, _)): AppState,
    Path(gateway): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some(Receiver::Kannel { token }) = app.receivers.0.get(&gateway) else {
        return reject(StatusCode::NOT_FOUND, "no such Kannel gateway");
    };
    let mut params = pairs(query.as_deref().unwrap_or(""));
    if method == Method::POST {
        params.extend(pairs(&String::from_utf8_lossy(&body)));
    }
    let given = params
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str());
    if !auth::token_matches(token.expose(), given) {
        return reject(StatusCode::UNAUTHORIZED, "missing or wrong token");
    }
    let raw = raw(&method, &format!("/kannel/{gateway}"), &params, "");
    let receipt = parse::kannel(&gateway, &params, raw, now_ms());
    store(&app, receipt).await
}

async fn twilio(
    State((app, _)): AppState,
    Path(gateway): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(Receiver::Twilio {
        auth_token,
        signed_base,
    }) = app.receivers.0.get(&gateway)
    else {
        return reject(StatusCode::NOT_FOUND, "no such Twilio gateway");
    };
    if method != Method::POST {
        return reject(
            StatusCode::METHOD_NOT_ALLOWED,
            "status callbacks are POSTed",
        );
    }
    let Some(signature) = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return reject(StatusCode::UNAUTHORIZED, "missing X-Twilio-Signature");
    };
    let body = String::from_utf8_lossy(&body).into_owned();
    let form = pairs(&body);
    let url = match &query {
        Some(q) if !q.is_empty() => format!("{signed_base}?{q}"),
        _ => signed_base.clone(),
    };
    if !auth::verify_twilio(auth_token.expose(), &url, &form, signature) {
        return reject(StatusCode::UNAUTHORIZED, "bad X-Twilio-Signature");
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return reject(
            StatusCode::BAD_REQUEST,
            "malformed receipt: not a form post",
        );
    }
    let query_params = pairs(query.as_deref().unwrap_or(""));
    let reference = query_params
        .iter()
        .find(|(k, _)| k == "ref")
        .map(|(_, v)| v.as_str());
    let raw = raw(&method, &format!("/twilio/{gateway}"), &query_params, &body);
    let receipt = parse::twilio(&gateway, &form, reference, raw, now_ms());
    store(&app, receipt).await
}

async fn http_json(
    State((app, _)): AppState,
    Path(gateway): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(Receiver::HttpJson { token, receipts }) = app.receivers.0.get(&gateway) else {
        return reject(StatusCode::NOT_FOUND, "no such http-json gateway");
    };
    let mut params = pairs(query.as_deref().unwrap_or(""));
    let given = params
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.to_string());
    if !auth::token_matches(token.expose(), given.as_deref()) {
        return reject(StatusCode::UNAUTHORIZED, "missing or wrong token");
    }
    params.retain(|(k, _)| k != "token");
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
                return reject(
                    StatusCode::BAD_REQUEST,
                    "malformed receipt: not a JSON object",
                );
            }
        }
    } else if !text.is_empty() {
        params.extend(pairs(&text));
    }
    let raw = raw(&method, &format!("/http-json/{gateway}"), &params, "");
    let receipt = parse::http_json(&gateway, receipts, &params, raw, now_ms());
    store(&app, receipt).await
}

async fn status(State((_, store)): AppState) -> Response {
    match store.receipt_counts().await {
        Ok(c) => axum::Json(c).into_response(),
        Err(e) => {
            tracing::error!("receipt counts: {e:#}");
            reject(StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}
