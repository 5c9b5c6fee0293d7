//! The one writer task of a worker: outcomes go in through a channel and are committed in
//! batches (group commit), so a thousand sends a second cost a few transactions, not a
//! thousand fsyncs. The next group to go out is marked `sending` in the same commit
//! ([`Queue::write_cycle`]): a cycle of the dispatcher costs one commit, and never waits for
//! the other writer's.
//!
//! An outcome comes with its row's send permit, given back as soon as the outcome is in the
//! writer's queue. That is enough to bound what a crash leaves in doubt by the concurrency:
//! a row becomes `sending` only through a mark in this same queue, behind the outcome whose
//! permit it took, and the writer commits its queue in order, each commit taking a prefix.
//! So whenever a mark is committed, so is every outcome queued before it, and the rows
//! `sending` in any committed state are at most the permits. Holding the permit until the
//! commit instead (as this writer did before) kept each row's permit through two commits
//! more, and halved the rate at a given concurrency.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use crate::store::{Mark, Outcome, Queue};

/// Outcomes per commit at most; at high rates the batches fill up to this.
const MAX_BATCH: usize = 1_024;
/// How long a lone outcome may wait for company before it is written.
const LINGER: Duration = Duration::from_millis(20);

/// Where a mark's rows go once committed: each with its attempt number.
type MarkedReply = oneshot::Sender<Vec<(i64, i64)>>;

enum Msg {
    /// An outcome to commit.
    Outcome(Outcome),
    /// A paced group to mark in flight with the next commit; answered with the rows marked.
    Mark(Mark, MarkedReply),
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

    /// Queues `o`, then gives `permit` back (see the module's doc: any mark made with it
    /// is queued, and so committed, after `o`).
    pub async fn send_holding(
        &self,
        o: Outcome,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<()> {
        let queued = self.0.send(Msg::Outcome(o)).await;
        drop(permit);
        queued.map_err(|_| anyhow!("recorder stopped"))
    }

    /// Marks a paced group in flight with the next commit (see [`Queue::mark_in_flight`]);
    /// its rows' permits are already held.
    pub async fn mark(&self, mark: Mark) -> Result<Vec<(i64, i64)>> {
        let (done, marked) = oneshot::channel();
        self.0
            .send(Msg::Mark(mark, done))
            .await
            .map_err(|_| anyhow!("recorder stopped"))?;
        marked
            .await
            .map_err(|_| anyhow!("the group could not be marked: the recorder stopped"))
    }
}

impl Recorder {
    pub fn start(store: Arc<dyn Queue>, worker: String) -> Self {
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

async fn run(store: Arc<dyn Queue>, worker: String, mut rx: mpsc::Receiver<Msg>) -> Result<()> {
    let mut cycle = Cycle::default();
    while let Some(first) = rx.recv().await {
        cycle.push(first);
        let deadline = tokio::time::Instant::now() + LINGER;
        // A group waits to go out, or someone for the commit: lingering would only stall.
        let urgent = |c: &Cycle| !c.waiters.is_empty() || !c.marks.is_empty();
        while cycle.batch.len() < MAX_BATCH && !urgent(&cycle) {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => cycle.push(m),
                _ => break,
            }
        }
        while cycle.batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => cycle.push(m),
                Err(_) => break,
            }
        }
        cycle.commit(&*store, &worker).await?;
    }
    Ok(())
}

/// What one commit carries, and who waits for it.
#[derive(Default)]
struct Cycle {
    batch: Vec<Outcome>,
    marks: Vec<(Mark, MarkedReply)>,
    waiters: Vec<oneshot::Sender<()>>,
}

impl Cycle {
    fn push(&mut self, m: Msg) {
        match m {
            Msg::Outcome(o) => self.batch.push(o),
            Msg::Mark(mark, done) => self.marks.push((mark, done)),
            Msg::Flush(w) => self.waiters.push(w),
        }
    }

    async fn commit(&mut self, store: &dyn Queue, worker: &str) -> Result<()> {
        // The groups waiting go out as one mark (the cap's locks then taken in one order).
        let mark = (!self.marks.is_empty()).then(|| Mark {
            ids: self.marks.iter().flat_map(|(m, _)| m.ids.clone()).collect(),
            cap_ms: self.marks.iter().map(|(m, _)| m.cap_ms).max().unwrap_or(0),
            lease_until_ms: self
                .marks
                .iter()
                .map(|(m, _)| m.lease_until_ms)
                .max()
                .unwrap_or(0),
        });
        if !self.batch.is_empty() || mark.is_some() {
            let mut marked: std::collections::HashMap<i64, i64> =
                write_with_retry(store, worker, &self.batch, mark.as_ref())
                    .await?
                    .into_iter()
                    .collect();
            self.batch.clear();
            for (m, done) in self.marks.drain(..) {
                let mine = m
                    .ids
                    .iter()
                    .filter_map(|id| Some((*id, marked.remove(id)?)))
                    .collect();
                let _ = done.send(mine);
            }
        }
        for w in self.waiters.drain(..) {
            let _ = w.send(());
        }
        Ok(())
    }
}

/// A busy database is waited out; giving up would leave sent messages looking unsent.
async fn write_with_retry(
    store: &dyn Queue,
    worker: &str,
    batch: &[Outcome],
    mark: Option<&Mark>,
) -> Result<Vec<(i64, i64)>> {
    let mut delay = Duration::from_millis(50);
    for attempt in 1.. {
        match store.write_cycle(worker, batch, mark).await {
            Ok((stale, marked)) => {
                if stale > 0 {
                    tracing::warn!(
                        "{stale} outcome(s) came back after their message was taken over by another worker (or finalised by a receipt): kept as attempts, nothing else changed"
                    );
                }
                return Ok(marked);
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
