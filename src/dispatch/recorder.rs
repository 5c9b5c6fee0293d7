//! The one writer task of a worker: outcomes go in through a channel and are committed in
//! batches (group commit), so a thousand sends a second cost a few transactions, not a
//! thousand fsyncs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use tokio::sync::{mpsc, oneshot};

use crate::store::{Outcome, Store};

/// Outcomes per commit at most; at high rates the batches fill up to this.
const MAX_BATCH: usize = 1_024;
/// How long a lone outcome may wait for company before it is written.
const LINGER: Duration = Duration::from_millis(20);

enum Msg {
    Outcome(Outcome),
    Flush(oneshot::Sender<()>),
}

pub struct Recorder {
    tx: Option<mpsc::Sender<Msg>>,
    task: Option<tokio::task::JoinHandle<Result<()>>>,
}

/// A handle for send tasks.
#[derive(Clone)]
pub struct OutcomeSender(mpsc::Sender<Msg>);

impl OutcomeSender {
    pub async fn send(&self, o: Outcome) -> Result<()> {
        self.0
            .send(Msg::Outcome(o))
            .await
            .map_err(|_| anyhow!("recorder stopped"))
    }
}

impl Recorder {
    pub fn start(store: Arc<dyn Store>, worker: String) -> Self {
        let (tx, rx) = mpsc::channel(2 * MAX_BATCH);
        let task = tokio::spawn(run(store, worker, rx));
        Self {
            tx: Some(tx),
            task: Some(task),
        }
    }

    pub fn sender(&self) -> OutcomeSender {
        OutcomeSender(self.tx.clone().expect("recorder open"))
    }

    /// Waits until everything sent so far is committed.
    pub async fn flush(&self) -> Result<()> {
        let (done, wait) = oneshot::channel();
        let tx = self.tx.as_ref().ok_or_else(|| anyhow!("recorder closed"))?;
        tx.send(Msg::Flush(done))
            .await
            .map_err(|_| anyhow!("recorder stopped"))?;
        wait.await
            .map_err(|_| anyhow!("recorder stopped before flushing"))
    }

    /// Commits what is left and stops. Call after every send task has finished.
    pub async fn close(&mut self) -> Result<()> {
        self.tx.take();
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

async fn run(store: Arc<dyn Store>, worker: String, mut rx: mpsc::Receiver<Msg>) -> Result<()> {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut waiters = Vec::new();
    while let Some(first) = rx.recv().await {
        push(first, &mut batch, &mut waiters);
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < MAX_BATCH && waiters.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => push(m, &mut batch, &mut waiters),
                _ => break,
            }
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => push(m, &mut batch, &mut waiters),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            write_with_retry(&*store, &worker, &batch).await?;
            batch.clear();
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
    Ok(())
}

fn push(m: Msg, batch: &mut Vec<Outcome>, waiters: &mut Vec<oneshot::Sender<()>>) {
    match m {
        Msg::Outcome(o) => batch.push(o),
        Msg::Flush(w) => waiters.push(w),
    }
}

/// A busy database is waited out; giving up would leave sent messages looking unsent.
async fn write_with_retry(store: &dyn Store, worker: &str, batch: &[Outcome]) -> Result<()> {
    let mut delay = Duration::from_millis(50);
    for attempt in 1.. {
        match store.record(worker, batch).await {
            Ok(stale) => {
                if stale > 0 {
                    tracing::warn!(
                        "{stale} outcome(s) came back after their message was taken over by another worker (or finalised by a receipt): kept as attempts, nothing else changed"
                    );
                }
                return Ok(());
            }
            Err(e) if attempt < 20 => {
                tracing::warn!(
                    "recording {} outcomes failed (try {attempt}): {e:#}",
                    batch.len()
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!()
}
