//! The last check before a request goes to the gateway: in any one-second window, never more
//! than the rate.
//!
//! The governor limiter paces requests where they are scheduled; on a busy machine the tasks
//! that carry them can be delayed and then run together, so requests would reach the gateway
//! bunched. This guard counts the moments requests are actually handed to the HTTP client
//! and holds any request that would make a sliding one-second window exceed the rate.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(1);

pub struct WindowGuard {
    limit: usize,
    sent: Mutex<VecDeque<Instant>>,
}

impl WindowGuard {
    pub fn new(rate: f64) -> Self {
        let limit = (rate.floor() as usize).max(1);
        // No capacity up front: at an "unlimited" rate the limit is huge, and a ring buffer
        // that size would touch all its pages as it wraps; it grows to one second of traffic.
        Self {
            limit,
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// Waits until `n` more units (a message's SMS parts) fit in the window, and counts them.
    /// A message of more parts than the limit goes alone in an empty window: it can never
    /// fit, and holding it for ever would stop the campaign.
    pub async fn admit_n(&self, n: u32) {
        let n = (n.max(1) as usize).min(self.limit);
        loop {
            let wait = {
                let mut sent = self.sent.lock().expect("not poisoned");
                let now = Instant::now();
                while sent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= WINDOW)
                {
                    sent.pop_front();
                }
                if sent.len() + n <= self.limit {
                    sent.extend(std::iter::repeat_n(now, n));
                    return;
                }
                // Wait until enough of the oldest leave the window.
                let oldest_needed = sent[sent.len() + n - self.limit - 1];
                WINDOW.saturating_sub(now.duration_since(oldest_needed))
            };
            tokio::time::sleep(wait.max(Duration::from_micros(100))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_rate_in_any_window() {
        let g = std::sync::Arc::new(WindowGuard::new(10.0));
        let start = tokio::time::Instant::now();
        let mut admitted = Vec::new();
        for _ in 0..35 {
            g.admit_n(1).await;
            admitted.push(start.elapsed());
        }
        // 10 at once, then the next 10 only when the first ones leave the window, and so on.
        assert!(admitted[9] < Duration::from_millis(1));
        assert!(admitted[10] >= Duration::from_secs(1));
        assert!(admitted[20] >= Duration::from_secs(2));
        for (i, t) in admitted.iter().enumerate() {
            let in_window = admitted[..=i].iter().filter(|u| *t - **u < WINDOW).count();
            assert!(in_window <= 10, "{in_window} in the window ending at {t:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn parts_count_as_many_as_they_are() {
        // 60 parts a second, 3-part messages: 20 at once, the 21st a second later.
        let g = WindowGuard::new(60.0);
        let start = tokio::time::Instant::now();
        let mut admitted = Vec::new();
        for _ in 0..45 {
            g.admit_n(3).await;
            admitted.push(start.elapsed());
        }
        assert!(admitted[19] < Duration::from_millis(1));
        assert!(admitted[20] >= Duration::from_secs(1));
        assert!(admitted[40] >= Duration::from_secs(2));
        for (i, t) in admitted.iter().enumerate() {
            let in_window = admitted[..=i].iter().filter(|u| *t - **u < WINDOW).count();
            assert!(
                in_window * 3 <= 60,
                "{in_window} messages in the window ending at {t:?}"
            );
        }
        // A message longer than the whole limit still goes, alone.
        let small = WindowGuard::new(2.0);
        small.admit_n(5).await;
        small.admit_n(5).await;
        assert!(start.elapsed() >= Duration::from_secs(3));
    }
}
