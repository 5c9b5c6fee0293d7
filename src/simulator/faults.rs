//! The simulator's failure mix: what a flaky carrier gateway does to a request.

use std::time::Duration;

use rand::Rng;

/// Knobs for faults; shares are probabilities per request (0.0–1.0).
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// 503: the gateway did not take the message.
    pub server_error: f64,
    /// 429 with `Retry-After: 1` (or `retry_after_secs`).
    pub throttle: f64,
    /// The `Retry-After` of a throttle, in seconds, when not 1: a long hold (up to an hour).
    pub retry_after_secs: Option<u64>,
    /// The gateway takes the message, then answers only after `hang` (clients time out: in doubt).
    pub hang: f64,
    pub hang_for: Duration,
    /// Numbers ending with one of these suffixes are rejected permanently (21211), every time.
    pub reject_suffixes: Vec<String>,
    /// Numbers (canonical `84…`, or prefixes of them) ported to another carrier: the batch
    /// endpoint answers them "not our subscriber" (`super::batch::NOT_OURS_CODE`).
    pub ported: Vec<String>,
    /// Extra latency drawn uniformly from 0..jitter on top of the base latency.
    pub jitter: Duration,
    /// A misconfigured gateway: every request gets this answer (HTTP status, and Twilio error
    /// code in the JSON body if any), nothing is taken. E.g. 404 for a wrong address, 400
    /// with a code the adapter does not know.
    pub answer_all: Option<(u16, Option<i64>)>,
    /// Every request is redirected (301, 302, 307 or 308) to this base URL plus the request's
    /// path, nothing is taken: the client must not follow it.
    pub redirect_all: Option<(u16, String)>,
    /// Every message is taken, and the answer is a 201 whose body is this many bytes long (a
    /// broken gateway, or a hostile one): the client must not read it whole.
    pub huge_body: Option<usize>,
}

/// What happens to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    ServerError,
    Throttle,
    Hang,
    Reject,
}

impl Faults {
    pub fn decide(&self, to: &str) -> Fault {
        if self
            .reject_suffixes
            .iter()
            .any(|s| to.ends_with(s.as_str()))
        {
            return Fault::Reject;
        }
        let mut rng = rand::rng();
        let x: f64 = rng.random();
        if x < self.server_error {
            Fault::ServerError
        } else if x < self.server_error + self.throttle {
            Fault::Throttle
        } else if x < self.server_error + self.throttle + self.hang {
            Fault::Hang
        } else {
            Fault::None
        }
    }

    pub fn extra_latency(&self) -> Duration {
        if self.jitter.is_zero() {
            return Duration::ZERO;
        }
        self.jitter.mul_f64(rand::rng().random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_are_deterministic_and_shares_add_up() {
        let f = Faults {
            reject_suffixes: vec!["13".into()],
            ..Default::default()
        };
        assert_eq!(f.decide("84912345613"), Fault::Reject);
        assert_eq!(f.decide("84912345614"), Fault::None);
        let all = Faults {
            server_error: 1.0,
            ..Default::default()
        };
        assert_eq!(all.decide("84912345614"), Fault::ServerError);
        let hang = Faults {
            hang: 1.0,
            ..Default::default()
        };
        assert_eq!(hang.decide("84912345614"), Fault::Hang);
    }
}
