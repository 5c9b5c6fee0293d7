//! The one writer task of a worker: outcomes go in through a channel and are committed in
//! batches (group commit), so a thousand sends a second cost a few transactions, not a
//! thousand fsyncs.
//!
//! An outcome comes with its row's send permit, given back only once the outcome is
//! committed: a row stays `sending` in the database until then, and the permits are what
//! bounds the rows a crash can leave in doubt by the concurrency. So the writer lingers for
//! company only while a permit is free; when every permit waits on it, it commits at once.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::store::{Outcome, Store};

/// Outcomes per commit at most; at high rates the batches fill up to this.
const MAX_BATCH: usize = 1_024;
/// How long a lone outcome may wait for company before it is written.
const LINGER: Duration = Duration::from_millis(20);

enum Msg {
    /// An outcome, and the send permit its row held (if any), given back after the commit.
    Outcome(Outcome, Option<OwnedSemaphorePermit>),
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
        self.send_holding(o, None).await
    }

    /// Sends `o`; `permit` is given back once `o` is committed.
    pub async fn send_holding(
        &self,
        o: Outcome,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<()> {
        self.0
            .send(Msg::Outcome(o, permit))
            .await
            .map_err(|_| anyhow!("recorder stopped"))
    }
}

impl Recorder {
    /// `permits`: the dispatcher's send permits, some of which come back through here.
    pub fn start(store: Arc<dyn Store>, worker: String, permits: Arc<Semaphore>) -> Self {
        let (tx, rx) = mpsc::channel(2 * MAX_BATCH);
        let task = tokio::spawn(run(store, worker, rx, permits));
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

async fn run(
    store: Arc<dyn Store>,
    worker: String,
    mut rx: mpsc::Receiver<Msg>,
    permits: Arc<Semaphore>,
) -> Result<()> {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut held = Vec::new();
    let mut waiters = Vec::new();
    while let Some(first) = rx.recv().await {
        push(first, &mut batch, &mut held, &mut waiters);
        let deadline = tokio::time::Instant::now() + LINGER;
        // Nobody can send until something is committed: lingering would only stall the sends.
        let starved = |held: &Vec<_>| !held.is_empty() && permits.available_permits() == 0;
        while batch.len() < MAX_BATCH && waiters.is_empty() && !starved(&held) {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => push(m, &mut batch, &mut held, &mut waiters),
                _ => break,
            }
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => push(m, &mut batch, &mut held, &mut waiters),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            write_with_retry(&*store, &worker, &batch).await?;
            batch.clear();
        }
        // Committed: these rows are settled, their permits free for the next sends.
        held.clear();
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
    Ok(())
}

fn push(
    m: Msg,
    batch: &mut Vec<Outcome>,
    held: &mut Vec<OwnedSemaphorePermit>,
    waiters: &mut Vec<oneshot::Sender<()>>,
) {
    match m {
        Msg::Outcome(o, permit) => {
            batch.push(o);
            held.extend(permit);
        }
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
