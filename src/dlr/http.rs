//! Serving HTTP on a socket that faces the network, with limits `axum::serve` does not have:
//!
//! * a cap on open connections: past it, a connection is answered `503 Service Unavailable`
//!   (`Retry-After: 1`) and closed, so an attacker holding thousands of sockets cannot use up
//!   the process's file descriptors or memory;
//! * a header-read timeout (hyper's), which is also the idle timeout of a kept-alive
//!   connection: a half-sent request line or an idle connection is closed after it;
//! * a small read buffer (hyper's `max_buf_size`), which also caps the request head.
//!
//! Bodies are the handlers' business: they authenticate from the URL and headers first, then
//! read at most [`Limits::max_body`] bytes within [`Limits::request_timeout`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};

/// Limits of a server that faces the network.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Open connections at most; past it, 503 and close.
    pub max_connections: usize,
    /// Time to receive a request's line and headers, and the longest a kept-alive
    /// connection may sit idle.
    pub header_timeout: Duration,
    /// Time to receive a request's body.
    pub request_timeout: Duration,
    /// Largest request body read (receipts are well under 4 KiB).
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            max_body: 16 * 1024,
        }
    }
}

/// hyper's read buffer, and so the largest request head (hyper's minimum is 8 KiB).
const MAX_BUF: usize = 16 * 1024;
/// Connections being told 503 at once; past this they are closed without a word.
const REFUSERS: usize = 64;
/// How long a connection over the cap may take to be told 503.
const REFUSE_WITHIN: Duration = Duration::from_secs(2);

/// A server running in the background.
pub struct Serving {
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Serving {
    /// Serves `router` on `listener` until [`Serving::stop`]. `overloaded` is called for each
    /// connection refused because the cap is reached.
    pub fn spawn(
        listener: TcpListener,
        router: Router,
        limits: &Limits,
        overloaded: Arc<dyn Fn() + Send + Sync>,
    ) -> Self {
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(
            listener,
            router,
            limits.clone(),
            overloaded,
            rx,
        ));
        Self {
            shutdown: Some(tx),
            task,
        }
    }

    /// Stops accepting, lets requests in progress finish (at most 10 s), and returns.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    overloaded: Arc<dyn Fn() + Send + Sync>,
    mut stop: oneshot::Receiver<()>,
) {
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    let refusers = Arc::new(Semaphore::new(REFUSERS));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_BUF);
    loop {
        let stream = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was taken:
                    // wait a little instead of spinning, and go on.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                metrics::gauge!(crate::observe::CONNECTIONS).increment(1.0);
                let service = TowerToHyperService::new(router.clone());
                let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    let _ = conn.await;
                    metrics::gauge!(crate::observe::CONNECTIONS).decrement(1.0);
                    drop(permit);
                });
            }
            Err(_) => {
                overloaded();
                if let Ok(refuser) = refusers.clone().try_acquire_owned() {
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(REFUSE_WITHIN, refuse(stream)).await;
                        drop(refuser);
                    });
                }
                // else: dropped here, closed at once.
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open 10 s after the stop; closed");
    }
}

/// Answers one request on a connection over the cap: 503, try again shortly.
async fn refuse(stream: TcpStream) {
    let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
        let mut response = Response::new(Full::new(Bytes::from_static(
            b"too many connections; try again shortly\n",
        )));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        let h = response.headers_mut();
        h.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        h.insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        Ok::<_, Infallible>(response)
    });
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSE_WITHIN)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
