//! The one writer of the receipt server: handlers hand receipts over and wait; receipts are
//! committed in batches (one transaction, one fsync for hundreds), and each handler answers
//! only after its receipt's batch is committed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use tokio::sync::{mpsc, oneshot};

use crate::store::{NewReceipt, ReceiptEffect, Store};

const MAX_BATCH: usize = 500;
/// How long a lone receipt may wait for company before it is written.
const LINGER: Duration = Duration::from_millis(5);

type Reply = oneshot::Sender<Result<ReceiptEffect, String>>;

#[derive(Clone)]
pub struct Writer(mpsc::Sender<(NewReceipt, Reply)>);

impl Writer {
    pub fn start(store: Arc<dyn Store>) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        let task = tokio::spawn(run(store, rx));
        (Self(tx), task)
    }

    /// Stores one receipt durably; returns what it did.
    pub async fn store(&self, r: NewReceipt) -> Result<ReceiptEffect> {
        let (tx, rx) = oneshot::channel();
        self.0
            .send((r, tx))
            .await
            .map_err(|_| anyhow!("the receipt writer stopped"))?;
        rx.await
            .map_err(|_| anyhow!("the receipt writer stopped"))?
            .map_err(|e| anyhow!(e))
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<(NewReceipt, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    while let Some((r, reply)) = rx.recv().await {
        batch.push(r);
        replies.push(reply);
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((r, reply))) => {
                    batch.push(r);
                    replies.push(reply);
                }
                _ => break,
            }
        }
        match store.record_receipts(&batch).await {
            Ok(effects) => {
                for (reply, effect) in replies.drain(..).zip(effects) {
                    let _ = reply.send(Ok(effect));
                }
            }
            Err(e) => {
                tracing::error!("could not store {} receipt(s): {e:#}", batch.len());
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(format!("could not store the receipt: {e:#}")));
                }
            }
        }
        batch.clear();
    }
}
