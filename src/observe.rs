//! Metrics an operator can watch: `GET /metrics` (Prometheus text format) and `GET /healthz`,
//! served by `dlr serve` and by `send --metrics ADDR`.
//!
//! Code records through the `metrics` facade (`metrics::counter!(MESSAGES, …)`); the process
//! installs one Prometheus recorder ([`install`]) that renders them. Every name starts with
//! `smscast_`. Labels are bounded: gateway names come from `smscast.toml` (an unknown gateway in
//! a receipt URL is labelled `unknown`), outcomes, states and reasons are fixed words.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Result;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::dlr::http::{Limits, Serving};

/// Submission attempts by gateway and by what became of the message (`outcome`: submitted,
/// retry, gave_up, rejected, in_doubt).
pub const MESSAGES: &str = "smscast_messages_total";
/// Receipts stored, by gateway, state (delivered, failed, enroute, expired) and effect
/// (applied, no_change, awaiting_parts, pending, refused).
pub const RECEIPTS: &str = "smscast_receipts_total";
/// Receipts refused (not stored), by reason and gateway.
pub const RECEIPTS_REFUSED: &str = "smscast_receipts_refused_total";
/// Requests to a gateway waiting for its answer.
pub const IN_FLIGHT: &str = "smscast_in_flight";
/// Messages per second in force for a gateway: the run's rate and the gateway's, after any
/// slowdown from throttling.
pub const RATE: &str = "smscast_rate_in_force";
/// Time from request to answer of each submission.
pub const LATENCY: &str = "smscast_gateway_latency_seconds";
/// Unix time of the worker's last heartbeat written to the database.
pub const HEARTBEAT: &str = "smscast_last_heartbeat_timestamp_seconds";
/// Messages this run still has to settle: pending when it started, less those submitted,
/// rejected, failed or in doubt since (other workers' progress is not subtracted).
pub const QUEUE_DEPTH: &str = "smscast_queue_depth";
/// Open HTTP connections of the server that faces the network.
pub const CONNECTIONS: &str = "smscast_http_connections";

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(LATENCY.into()), LATENCY_BUCKETS)
                .expect("buckets are not empty");
            let handle = match builder.install_recorder() {
                Ok(h) => h,
                Err(e) => {
                    // Another recorder is in place (an embedding program's): ours renders
                    // nothing, and says why.
                    tracing::warn!("metrics recorder not installed: {e}");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            };
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        MESSAGES,
        "Submission attempts by gateway and by what became of the message"
    );
    describe_counter!(
        RECEIPTS,
        "Delivery receipts stored, by gateway, state and effect"
    );
    describe_counter!(
        RECEIPTS_REFUSED,
        "Delivery receipts refused (not stored), by reason and gateway"
    );
    describe_gauge!(IN_FLIGHT, "Requests to a gateway waiting for an answer");
    describe_gauge!(
        RATE,
        "Messages per second in force for a gateway, after any throttling slowdown"
    );
    describe_histogram!(
        LATENCY,
        Unit::Seconds,
        "Gateway answer time of each submission"
    );
    describe_gauge!(
        HEARTBEAT,
        "Unix time of this worker's last heartbeat in the database"
    );
    describe_gauge!(CONNECTIONS, "Open HTTP connections");
    describe_gauge!(
        QUEUE_DEPTH,
        "Messages this run still has to settle (pending at start, less those settled since)"
    );
}

/// `GET /metrics`: the Prometheus text exposition.
pub fn render(handle: &PrometheusHandle) -> Response {
    handle.run_upkeep();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// `GET /healthz`: the process is up and answering.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Seconds since the Unix epoch, for timestamp gauges.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// `/metrics` and `/healthz` on their own address (`send --metrics ADDR`).
pub struct MetricsServer {
    pub addr: std::net::SocketAddr,
    serving: Serving,
}

impl MetricsServer {
    pub async fn start(listen: &str) -> Result<Self> {
        let handle = install();
        let router = Router::new()
            .route("/metrics", get(move || async move { render(&handle) }))
            .route("/healthz", get(healthz));
        let listener = bind("--metrics", listen).await?;
        let addr = listener.local_addr()?;
        let limits = Limits {
            max_connections: 64,
            ..Limits::default()
        };
        let serving = Serving::spawn(listener, router, &limits, std::sync::Arc::new(|| {}));
        Ok(Self { addr, serving })
    }

    pub async fn stop(self) {
        self.serving.stop().await;
    }
}

/// A submission is going out to `gateway`.
pub fn submitting(gateway: &str) {
    metrics::gauge!(IN_FLIGHT, "gateway" => gateway.to_string()).increment(1.0);
}

/// The gateway answered (or did not) after `latency`; `outcome` is what becomes of the message.
pub fn submission(gateway: &str, outcome: &'static str, latency: Duration) {
    let gateway = gateway.to_string();
    metrics::gauge!(IN_FLIGHT, "gateway" => gateway.clone()).decrement(1.0);
    metrics::histogram!(LATENCY, "gateway" => gateway.clone()).record(latency.as_secs_f64());
    metrics::counter!(MESSAGES, "gateway" => gateway, "outcome" => outcome).increment(1);
}

/// The pace in force for `gateway`: `rate` messages/s (if any) slowed by `factor` (0–1).
pub fn rate_in_force(gateway: &str, rate: Option<f64>, factor: f64) {
    if let Some(rate) = rate {
        metrics::gauge!(RATE, "gateway" => gateway.to_string()).set(rate * factor);
    }
}

/// The worker's heartbeat was written.
pub fn heartbeat() {
    metrics::gauge!(HEARTBEAT).set(unix_now());
}

/// This run's messages still to settle.
pub fn queue_depth(n: u64) {
    metrics::gauge!(QUEUE_DEPTH).set(n as f64);
}

/// Listens on `addr`, given by the command-line `flag`: an address that cannot be had is said
/// with the flag, and what to do instead.
pub async fn bind(flag: &str, addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "the address is in use (another smscast, or another server): choose another port, or port 0 for any free one (e.g. 127.0.0.1:0)"
            }
            _ => "give an address this machine has, as HOST:PORT (e.g. 127.0.0.1:8080)",
        };
        anyhow::anyhow!("{flag} {addr}: cannot listen there: {e}; {hint}")
    })
}
