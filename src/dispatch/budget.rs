//! One rate across many workers: a token bucket kept in the shared database.
//!
//! Each worker still paces itself with its local limiter (smooth sends, at most the
//! campaign's rate on its own); before each send it also takes one token from the campaign's
//! shared bucket and one from the gateway's, so the sum over all workers never exceeds
//! either rate. Tokens come from the database in small batches (about 5 ms of traffic) and a
//! batch not used within [`HOLD`] is dropped, so a worker never sits on a pile of tokens and
//! then spends them at once. The bucket refills on the database's clock, one statement per
//! grant: no coordinator, no clock agreement between machines.
//!
//! Any window of length `t` then sees at most `rate × t + burst + tokens in hand` sends, with
//! `burst` = 20 ms of traffic and at most one small batch in each worker's hand: from 500/s up,
//! under 5% of the rate for four workers, inside the 1/20 s burst a single worker's limiter
//! already allows. At low rates a batch is one token, held at most [`HOLD`].
//!
//! A backend that serves one machine (SQLite) keeps no shared budget; the first grant says so
//! and from then on this costs nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::store::Queue;

/// Unused tokens are dropped after this long, so tokens are spent close to when they were
/// granted.
const HOLD: Duration = Duration::from_millis(100);

/// Tokens per batch: about 5 ms of traffic.
fn batch(rate: f64) -> u32 {
    ((rate / 200.0) as u32).max(1)
}

/// Bucket size: about 20 ms of traffic.
fn burst(rate: f64) -> f64 {
    (rate / 50.0).max(1.0)
}

struct Hand {
    tokens: u32,
    granted_at: Instant,
}

pub struct Budget {
    store: Arc<dyn Queue>,
    campaign_scope: String,
    campaign_rate: f64,
    in_hand: std::sync::Mutex<HashMap<String, Hand>>,
    /// Cleared when the store keeps no shared budget.
    shared: AtomicBool,
}

impl Budget {
    pub fn new(store: Arc<dyn Queue>, campaign_id: i64, campaign_rate: f64) -> Self {
        Self {
            store,
            campaign_scope: format!("campaign:{campaign_id}"),
            campaign_rate,
            in_hand: std::sync::Mutex::new(HashMap::new()),
            shared: AtomicBool::new(true),
        }
    }

    /// Waits until this worker may send one message: one token of the campaign's shared rate
    /// and, when the gateway has a rate, one of the gateway's (shared by every campaign on it),
    /// and when it has a limit in SMS parts (`(sms_per_second, parts)`), one token per part
    /// from that bucket.
    pub async fn take(&self, gateway: &str, gateway_rate: Option<f64>, parts: Option<(f64, u32)>) {
        if !self.shared.load(Ordering::Relaxed) {
            return;
        }
        let campaign_scope = self.campaign_scope.clone();
        self.take_one(&campaign_scope, self.campaign_rate).await;
        if let Some(rate) = gateway_rate {
            self.take_one(&format!("gateway:{gateway}"), rate).await;
        }
        if let Some((rate, parts)) = parts {
            self.take_n(&format!("gateway-parts:{gateway}"), rate, parts)
                .await;
        }
    }

    async fn take_one(&self, scope: &str, rate: f64) {
        self.take_n(scope, rate, 1).await
    }

    /// Takes `n` tokens (a message's SMS parts) from `scope`. The bucket holds at least `n`,
    /// so a message's parts are granted together, not one grant per part.
    async fn take_n(&self, scope: &str, rate: f64, n: u32) {
        if !(rate > 0.0 && rate.is_finite()) {
            return;
        }
        let mut left = n.max(1);
        loop {
            left -= self.spend(scope, left);
            if left == 0 {
                return;
            }
            let want = batch(rate).max(left);
            let burst = burst(rate).max(f64::from(n));
            match self.store.rate_grant(scope, rate, burst, want).await {
                Ok(None) => {
                    self.shared.store(false, Ordering::Relaxed);
                    return;
                }
                Ok(Some(g)) if g.granted > 0 => {
                    self.in_hand.lock().expect("not poisoned").insert(
                        scope.to_string(),
                        Hand {
                            tokens: g.granted,
                            granted_at: Instant::now(),
                        },
                    );
                }
                Ok(Some(g)) => {
                    // Come back when a batch should be there, a little apart from the others.
                    let short = (f64::from(want) - g.tokens_left).max(1.0) / rate;
                    let jitter = rand::rng().random_range(1.0..1.25);
                    tokio::time::sleep(Duration::from_secs_f64((short * jitter).clamp(0.001, 1.0)))
                        .await;
                }
                Err(e) => {
                    // No token, no send: the database is where outcomes go too.
                    tracing::warn!("the shared rate budget is unavailable: {e:#}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Spends up to `n` fresh tokens in hand; returns how many.
    fn spend(&self, scope: &str, n: u32) -> u32 {
        let mut hands = self.in_hand.lock().expect("not poisoned");
        match hands.get_mut(scope) {
            Some(h) if h.tokens > 0 && h.granted_at.elapsed() < HOLD => {
                let spent = h.tokens.min(n);
                h.tokens -= spent;
                spent
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_and_bursts_stay_small_against_the_rate() {
        assert_eq!(batch(1.0), 1);
        assert_eq!(batch(1000.0), 5);
        assert_eq!(burst(10.0), 1.0);
        assert_eq!(burst(1000.0), 20.0);
        for rate in [500.0, 5_000.0, 50_000.0] {
            // burst + one batch in each of four workers' hands: under 5% of the rate.
            assert!(burst(rate) + 4.0 * f64::from(batch(rate)) <= rate * 0.05 + 1e-9);
        }
    }
}
