//! What the receipt server does besides answering: match receipts that arrived before their
//! submission was recorded, report the ones that never match, expire silent messages.
//!
//! `send` records a submission only after the gateway answered, and a fast gateway's receipt
//! can beat that; such receipts are stored pending and applied here, every `every`. A receipt
//! that matches no message within `unmatched_after` is marked unmatched (kept, counted).
//! A message `submitted` longer than the validity period with no final receipt becomes
//! `expired`; that runs here too, so it happens whether or not a `send` is running.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::store::{MatchedReceipts, Store, now_ms};

#[derive(Clone, Debug)]
pub struct Upkeep {
    pub every: Duration,
    pub validity: Duration,
    pub unmatched_after: Duration,
    /// Gateways that send receipts: only their messages can expire for want of one.
    pub gateways_with_receipts: Vec<String>,
}

impl Upkeep {
    /// One pass: match pending receipts, then expire. Returns (matched, expired).
    pub async fn pass(&self, store: &dyn Store) -> Result<(MatchedReceipts, u64)> {
        let now = now_ms();
        let matched = store
            .match_pending_receipts(now - self.unmatched_after.as_millis() as i64)
            .await?;
        let expired = store
            .expire_submitted(
                now - self.validity.as_millis() as i64,
                now,
                &self.gateways_with_receipts,
            )
            .await?;
        Ok((matched, expired))
    }

    pub fn spawn(self, store: Arc<dyn Store>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.pass(&*store).await {
                    Ok((m, expired)) => {
                        if m.applied + m.no_change + m.unmatched + expired > 0 {
                            tracing::info!(
                                "receipts matched late: {} applied, {} no change; {} unmatched; {expired} message(s) expired",
                                m.applied,
                                m.no_change,
                                m.unmatched
                            );
                        }
                    }
                    Err(e) => tracing::warn!("receipt upkeep failed (will retry): {e:#}"),
                }
                tokio::time::sleep(self.every).await;
            }
        })
    }
}
