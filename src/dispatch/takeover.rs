//! When a worker runs out of rows while other workers still hold some: the rows of a worker
//! that died are recovered by the survivors — at once when it died on this host, else when
//! its lease runs out — so a campaign finishes as long as one worker is left.

use std::time::Duration;

use anyhow::Result;

use crate::store::{Queue, now_ms};

/// How often a worker with nothing to claim looks again while others hold rows.
const LOOK_AGAIN: Duration = Duration::from_millis(500);

/// Recovers rows of dead workers (exactly as at start: unsent claims back to the queue, rows
/// possibly on the wire resent or marked in doubt). Returns how long to wait before claiming
/// again, or `None` when no other worker holds rows any more.
pub(super) async fn wait_for_others(
    store: &dyn Queue,
    campaign_id: i64,
    me: &str,
    gateway_dedups: bool,
) -> Result<Option<Duration>> {
    let dead: Vec<String> = super::dead_local_workers(&store.workers(campaign_id).await?)
        .into_iter()
        .filter(|w| w != me)
        .collect();
    let r = store
        .recover(campaign_id, now_ms(), &dead, gateway_dedups)
        .await?;
    if r.requeued + r.resend + r.unknown > 0 {
        eprintln!(
            "took over from a stopped worker: {} claimed but unsent (queued again), {} possibly sent resent with the same reference, {} possibly sent now in doubt (see `smscast reconcile`)",
            r.requeued, r.resend, r.unknown
        );
        return Ok(Some(Duration::ZERO));
    }
    let held = store.in_flight_count(campaign_id).await? > 0;
    Ok(held.then_some(LOOK_AGAIN))
}
