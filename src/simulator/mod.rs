//! The built-in gateway simulator: a real HTTP server speaking the Twilio Messages API, and
//! Kannel's `sendsms` interface (`GET /cgi-bin/sendsms`, any username and password) for
//! Kannel's delivery receipts (see [`receipts`]), and an eSMS-style batch endpoint
//! (`POST /batch/send`, many recipients per request, see [`batch`]).
//!
//! It keeps its own books (accepted submissions per recipient, arrival times), so tests can
//! check "nothing sent twice" and "never over the rate" against the gateway's count, not ours:
//! `GET /stats`, `GET /stats/recipients`, `GET /stats/arrivals`.
//!
//! With [`SimOptions::receipts`] it also sends delivery receipts ([`receipts`]).

pub mod batch;
pub mod receipts;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

mod faults;
pub use faults::{Fault, Faults};

/// Behaviour knobs, all off by default.
#[derive(Clone, Debug, Default)]
pub struct SimOptions {
    pub latency: Duration,
    /// Failure mix: 503s, 429s, hangs, permanent rejects, latency jitter.
    pub faults: Faults,
    /// Requests per second above which the simulator answers 429 with Retry-After.
    pub max_rps: Option<u32>,
    /// Header whose value deduplicates submissions (same value → same sid, counted once).
    pub idempotency_header: Option<String>,
    /// Keep the last text sent to each recipient (`GET /stats/messages`), for tests.
    pub keep_bodies: bool,
    /// Send signed status callbacks to each message's StatusCallback.
    pub receipts: Option<receipts::ReceiptOptions>,
}

#[derive(Default)]
struct Books {
    per_recipient: HashMap<String, u32>,
    arrivals_ms: Vec<i64>,
    by_reference: HashMap<String, String>,
    bodies: HashMap<String, String>,
    window_start_ms: i64,
    window_count: u32,
}

struct Sim {
    opts: SimOptions,
    books: Mutex<Books>,
    requests: AtomicU64,
    accepted: AtomicU64,
    deduplicated: AtomicU64,
    failed: AtomicU64,
    throttled: AtomicU64,
    rejected: AtomicU64,
    next_sid: AtomicU64,
    receipts: Option<Arc<receipts::Receipts>>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct SimStats {
    pub requests: u64,
    pub accepted: u64,
    pub deduplicated: u64,
    pub failed: u64,
    pub throttled: u64,
    pub rejected: u64,
    pub unique_recipients: u64,
    /// Accepted submissions beyond the first, summed over recipients.
    pub duplicates: u64,
}

#[derive(Deserialize)]
struct SendForm {
    #[serde(rename = "To")]
    to: String,
    #[serde(rename = "From")]
    from: Option<String>,
    #[serde(rename = "Body")]
    body: String,
    #[serde(rename = "StatusCallback")]
    status_callback: Option<String>,
}

/// A running simulator.
pub struct Simulator {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Simulator {
    /// Binds `listen` (port 0 picks a free one) and serves in the background.
    pub async fn start(listen: &str, opts: SimOptions) -> Result<Self> {
        let listener = crate::observe::bind("--listen", listen).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let app = router(opts);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            shutdown: Some(tx),
            task,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
    }
}

fn router(opts: SimOptions) -> Router {
    let receipts = opts.receipts.clone().map(receipts::Receipts::new);
    let sim = Arc::new(Sim {
        opts,
        receipts,
        books: Mutex::default(),
        requests: AtomicU64::new(0),
        accepted: AtomicU64::new(0),
        deduplicated: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        throttled: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
        next_sid: AtomicU64::new(1),
    });
    Router::new()
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(send))
        .route("/cgi-bin/sendsms", get(kannel_sendsms))
        .route(batch::PATH, post(batch::send))
        .route("/stats", get(stats))
        .route("/stats/recipients", get(recipients))
        .route("/stats/arrivals", get(arrivals))
        .route("/stats/messages", get(messages))
        .route("/stats/receipts", get(receipt_stats))
        .with_state(sim)
}

async fn send(
    State(sim): State<Arc<Sim>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<SendForm>,
) -> Response {
    sim.requests.fetch_add(1, Ordering::Relaxed);
    let now = crate::store::now_ms();
    if headers.get(header::AUTHORIZATION).is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"code": 20003, "message": "Authenticate"})),
        )
            .into_response();
    }
    let path = format!("/2010-04-01/Accounts/{sid}/Messages.json");
    if let Some(r) = misconfigured(&sim, &path, "code") {
        return r;
    }
    if over_rate(&sim, now, 1).await {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            Json(serde_json::json!({"code": 20429, "message": "Too Many Requests"})),
        )
            .into_response();
    }
    let latency = sim.opts.latency + sim.opts.faults.extra_latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let to = form.to.trim_start_matches('+').to_string();
    let fault = sim.opts.faults.decide(&to);
    match fault {
        Fault::ServerError => {
            sim.failed.fetch_add(1, Ordering::Relaxed);
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"code": 20500, "message": "Service temporarily unavailable"})),
            )
                .into_response();
        }
        Fault::Throttle => {
            sim.throttled.fetch_add(1, Ordering::Relaxed);
            let wait = sim.opts.faults.retry_after_secs.unwrap_or(1).to_string();
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, wait)],
                Json(serde_json::json!({"code": 20429, "message": "Too Many Requests"})),
            )
                .into_response();
        }
        Fault::Reject => {
            sim.rejected.fetch_add(1, Ordering::Relaxed);
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"code": 21211, "message": "The 'To' number is not a valid phone number."})),
            )
                .into_response();
        }
        Fault::Hang | Fault::None => {}
    }
    if to.len() != 11 || !to.starts_with("84") || !to.bytes().all(|c| c.is_ascii_digit()) {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"code": 21211, "message": "The 'To' number is not a valid phone number."})),
        )
            .into_response();
    }
    let reference = sim
        .opts
        .idempotency_header
        .as_deref()
        .and_then(|h| headers.get(h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut b = sim.books.lock().await;
    if let Some(r) = &reference
        && let Some(existing) = b.by_reference.get(r)
    {
        let msg_sid = existing.clone();
        drop(b);
        sim.deduplicated.fetch_add(1, Ordering::Relaxed);
        return created(&sid, &msg_sid, &form);
    }
    let msg_sid = format!("SM{:032x}", sim.next_sid.fetch_add(1, Ordering::Relaxed));
    if sim.opts.keep_bodies {
        b.bodies.insert(to.clone(), form.body.clone());
    }
    *b.per_recipient.entry(to).or_default() += 1;
    if let Some(r) = reference {
        b.by_reference.insert(r, msg_sid.clone());
    }
    drop(b);
    sim.accepted.fetch_add(1, Ordering::Relaxed);
    if fault == Fault::Hang {
        // Taken, but the answer comes too late: the client cannot know.
        tokio::time::sleep(sim.opts.faults.hang_for).await;
    }
    if let (Some(r), Some(cb)) = (&sim.receipts, &form.status_callback) {
        r.schedule(cb.clone(), &sid, msg_sid.clone(), &form.to);
    }
    if let Some(len) = sim.opts.faults.huge_body {
        // Taken, and answered with a valid start and then padding past any sane size.
        let mut body = format!("{{\"sid\": \"{msg_sid}\", \"padding\": \"").into_bytes();
        body.resize(len.max(body.len()), b'x');
        return (
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
    }
    created(&sid, &msg_sid, &form)
}

/// The answer of a misconfigured gateway ([`Faults::answer_all`], [`Faults::redirect_all`] to
/// the same `path` elsewhere), with the error code in the JSON field `code_field`; nothing taken.
fn misconfigured(sim: &Sim, path: &str, code_field: &str) -> Option<Response> {
    if let Some((status, code)) = &sim.opts.faults.answer_all {
        sim.rejected.fetch_add(1, Ordering::Relaxed);
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::NOT_FOUND);
        let mut body =
            serde_json::json!({"message": "simulated answer", "status": status.as_u16()});
        if let Some(c) = code {
            body[code_field] = serde_json::json!(c);
        }
        return Some((status, Json(body)).into_response());
    }
    if let Some((status, base)) = &sim.opts.faults.redirect_all {
        sim.rejected.fetch_add(1, Ordering::Relaxed);
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::TEMPORARY_REDIRECT);
        let location = format!("{}{path}", base.trim_end_matches('/'));
        return Some((status, [(header::LOCATION, location)]).into_response());
    }
    None
}

/// Books the arrival of a request for `recipients` numbers at `now`, and tells whether it is
/// over [`SimOptions::max_rps`] (requests per second; then it is counted as throttled).
async fn over_rate(sim: &Sim, now: i64, recipients: usize) -> bool {
    let mut b = sim.books.lock().await;
    b.arrivals_ms.extend(std::iter::repeat_n(now, recipients));
    let Some(max) = sim.opts.max_rps else {
        return false;
    };
    if now - b.window_start_ms >= 1000 {
        b.window_start_ms = now;
        b.window_count = 0;
    }
    b.window_count += 1;
    let over = b.window_count > max;
    drop(b);
    if over {
        sim.throttled.fetch_add(1, Ordering::Relaxed);
    }
    over
}

/// Kannel's sendsms, enough for receipts: `202 0: Accepted for delivery`, then the dlr-url
/// calls. Faults: 503 for server errors and throttling, 400 for rejected numbers.
async fn kannel_sendsms(
    State(sim): State<Arc<Sim>>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    sim.requests.fetch_add(1, Ordering::Relaxed);
    let now = crate::store::now_ms();
    if q.get("username").is_none_or(|u| u.is_empty()) || !q.contains_key("password") {
        return (StatusCode::FORBIDDEN, "Authorization failed for sendsms").into_response();
    }
    let (Some(to), Some(text)) = (q.get("to"), q.get("text")) else {
        return (StatusCode::BAD_REQUEST, "Missing receiver number, rejected").into_response();
    };
    let to = to.trim_start_matches('+').to_string();
    sim.books.lock().await.arrivals_ms.push(now);
    let latency = sim.opts.latency + sim.opts.faults.extra_latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = sim.opts.faults.decide(&to);
    match fault {
        Fault::ServerError | Fault::Throttle => {
            let counter = if fault == Fault::Throttle {
                &sim.throttled
            } else {
                &sim.failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporal failure, try again later.",
            )
                .into_response();
        }
        Fault::Reject => {
            sim.rejected.fetch_add(1, Ordering::Relaxed);
            return (StatusCode::BAD_REQUEST, "Invalid receiver number, rejected").into_response();
        }
        Fault::Hang | Fault::None => {}
    }
    let msg_id = format!("{:016x}", sim.next_sid.fetch_add(1, Ordering::Relaxed));
    {
        let mut b = sim.books.lock().await;
        if sim.opts.keep_bodies {
            b.bodies.insert(to.clone(), text.clone());
        }
        *b.per_recipient.entry(to.clone()).or_default() += 1;
    }
    sim.accepted.fetch_add(1, Ordering::Relaxed);
    if fault == Fault::Hang {
        tokio::time::sleep(sim.opts.faults.hang_for).await;
    }
    let wants_receipts = q
        .get("dlr-mask")
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|m| m != 0);
    if let (Some(r), Some(url), true) = (&sim.receipts, q.get("dlr-url"), wants_receipts) {
        r.schedule_kannel(url, &msg_id, &to, text);
    }
    (StatusCode::ACCEPTED, "0: Accepted for delivery").into_response()
}

fn created(account: &str, msg_sid: &str, form: &SendForm) -> Response {
    (
        StatusCode::CREATED,
        Json(serde_json::json!({
            "sid": msg_sid,
            "account_sid": account,
            "status": "queued",
            "to": form.to,
            "from": form.from,
            "num_segments": crate::encoding::analyze(&form.body).segments.to_string(),
        })),
    )
        .into_response()
}

async fn stats(State(sim): State<Arc<Sim>>) -> Json<SimStats> {
    let b = sim.books.lock().await;
    let duplicates = b
        .per_recipient
        .values()
        .map(|n| u64::from(n.saturating_sub(1)))
        .sum();
    Json(SimStats {
        requests: sim.requests.load(Ordering::Relaxed),
        accepted: sim.accepted.load(Ordering::Relaxed),
        deduplicated: sim.deduplicated.load(Ordering::Relaxed),
        failed: sim.failed.load(Ordering::Relaxed),
        throttled: sim.throttled.load(Ordering::Relaxed),
        rejected: sim.rejected.load(Ordering::Relaxed),
        unique_recipients: b.per_recipient.len() as u64,
        duplicates,
    })
}

async fn recipients(State(sim): State<Arc<Sim>>) -> Json<HashMap<String, u32>> {
    Json(sim.books.lock().await.per_recipient.clone())
}

async fn messages(State(sim): State<Arc<Sim>>) -> Json<HashMap<String, String>> {
    Json(sim.books.lock().await.bodies.clone())
}

async fn receipt_stats(State(sim): State<Arc<Sim>>) -> Json<receipts::ReceiptStats> {
    Json(sim.receipts.as_ref().map(|r| r.stats()).unwrap_or_default())
}

async fn arrivals(State(sim): State<Arc<Sim>>) -> Json<Vec<i64>> {
    Json(sim.books.lock().await.arrivals_ms.clone())
}
