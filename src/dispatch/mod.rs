//! The dispatcher: claim → rate limit → submit → record, crash-safe.
//!
//! * **Claim** a batch of due rows. On PostgreSQL, where many workers share a campaign, they
//!   are leased to this worker (`queued` → `claimed`, `SKIP LOCKED`); on SQLite, one file with
//!   one writer at a time, a claim only reads, and the rows stay `queued`. Claimed rows are
//!   not in doubt: a crash gives them back (or never took them).
//! * **Pace, then mark**: a small group of rows waits for send permits (a semaphore of
//!   `--concurrency`) and its turn at the rate limiters (campaign and gateway, Retry-After
//!   holds, the shared budget); only then is it marked in flight (→ `sending`, durable,
//!   leased) and sent. A row keeps its permit until its outcome is queued for the writer, ahead
//!   of any mark made with the permit after it (the writer commits in order), so the rows
//!   `sending` for a worker, and what a crash leaves in doubt, never exceed the concurrency.
//!   The wait gives way to Ctrl-C, a pause or cancel, the send-by date and the window closing;
//!   a group that gives way was never marked, and its claims go back. A group is marked in the
//!   background while the next one is paced, and its requests leave spaced as their turns
//!   came (not bunched). Marking is conditional, so a row two workers claimed is sent by one.
//! * **Send** each in a task of a `JoinSet`: a task that panics is noticed, and its row
//!   recorded in doubt by the dispatcher.
//! * **Record** outcomes through one writer task that commits them in batches (group commit).
//!
//! [`Dispatcher::run`] loops around [`Dispatcher::step`]; shutdown is a parameter, and in-flight
//! sends finish and are recorded before `run` returns.

mod budget;
mod guard;
mod lanes;
pub mod liveness;
mod recorder;
mod takeover;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use tokio::sync::{Mutex, Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use crate::gateway::{Gateway, OutboundSms, SubmitError};
use crate::store::{
    Campaign, CampaignMove, CampaignState, Claimed, LaunchProgress, Outcome, OutcomeKind, Refused,
    Worker, now_ms,
};
use crate::window::Hours;
use guard::WindowGuard;
use recorder::{OutcomeSender, Recorder};

/// Consecutive failed submissions (no success in between) that pause the campaign.
const BREAKER_THRESHOLD: u32 = 50;
/// Consecutive identical answers (same class, HTTP status and gateway code) that pause the
/// campaign, per-recipient rejections and in-doubt answers included: a gateway that says the
/// same thing about every recipient is saying it about us (a wrong `smsc`, an account
/// setting, a code nobody listed). Transient answers finalise nothing and are left to
/// `BREAKER_THRESHOLD`: a gateway's queue may be full for a while.
const SAME_ANSWER_THRESHOLD: u32 = 20;

#[derive(Clone, Debug)]
pub struct Options {
    /// Messages per second for this worker; `None` = unlimited (benchmarks).
    pub rate: Option<f64>,
    pub concurrency: usize,
    pub lease: Duration,
    pub worker_id: String,
    /// Exit instead of waiting when outside the sending window.
    pub no_wait: bool,
    /// List members copied into deliveries per launch transaction (see
    /// [`crate::store::LAUNCH_CHUNK`]).
    pub launch_chunk: i64,
}

/// Why `run` returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every delivery reached a state no worker will touch again.
    Completed,
    /// Ctrl-C / SIGTERM: in-flight sends were finished and recorded.
    Interrupted,
    /// Paused (by an operator, or by the breaker with the reason).
    Paused(String),
    Cancelled,
    /// Outside the window with `--no-wait`: resume at this time (UTC ms).
    OutsideWindow(i64),
    /// With `--no-wait`: every remaining message waits (retry backoff or per-number cap) until
    /// this time (UTC ms).
    NothingDueUntil(i64),
    /// The campaign's send-by date passed: nothing more goes out.
    PastDeadline,
    /// Nothing left to send, and another worker completed the campaign (this worker waited for
    /// the others, taking over the rows of any that died).
    NothingLeft,
}

/// A gateway with its own pace.
pub struct Route {
    pub gateway: Arc<dyn Gateway>,
    limiter: Option<DefaultDirectRateLimiter>,
    /// Set by a 429 / Retry-After: nobody sends through this gateway before then.
    hold_until: Mutex<Option<Instant>>,
    /// After a throttle, the share of the rate in use, and since when (it ramps back to 1).
    slowdown: std::sync::Mutex<(f64, Instant)>,
    /// The gateway's rate, enforced where requests leave.
    guard: Option<WindowGuard>,
    /// The gateway's limit in SMS parts (`sms_per_second`): paced, and enforced where
    /// requests leave, a message of `n` parts counting `n`.
    parts_limiter: Option<DefaultDirectRateLimiter>,
    parts_guard: Option<WindowGuard>,
    /// The gateway's limit in requests (`requests_per_second`): a batch counts one.
    requests: Option<DefaultDirectRateLimiter>,
}

/// Seconds to ramp from half the rate back to the full rate after a throttle.
const RAMP_SECS: f64 = 10.0;

impl Route {
    pub fn new(gateway: Arc<dyn Gateway>) -> Self {
        let limiter = gateway.rate().map(limiter);
        let guard = gateway.rate().map(WindowGuard::new);
        let parts_limiter = gateway.sms_per_second().map(self::limiter);
        let parts_guard = gateway.sms_per_second().map(WindowGuard::new);
        Self {
            limiter,
            hold_until: Mutex::new(None),
            slowdown: std::sync::Mutex::new((1.0, Instant::now())),
            guard,
            parts_limiter,
            parts_guard,
            requests: gateway.requests_per_second().map(self::limiter),
            gateway,
        }
    }

    /// What one message of `parts` SMS parts may go at through this gateway, in messages per
    /// second, with the run's own rate: the lowest of them (`None`: no limit).
    pub fn message_rate(&self, run_rate: Option<f64>, parts: u32) -> Option<f64> {
        message_rate(
            run_rate,
            self.gateway.rate(),
            self.gateway.sms_per_second(),
            parts,
        )
    }

    /// The share of the rate in use now: halved by each throttle, back to 1 over `RAMP_SECS`.
    fn factor(&self) -> f64 {
        let (f, since) = *self.slowdown.lock().expect("not poisoned");
        (f + since.elapsed().as_secs_f64() / RAMP_SECS * 0.5).min(1.0)
    }

    fn throttled(&self) {
        let now = self.factor();
        *self.slowdown.lock().expect("not poisoned") = ((now * 0.5).max(0.05), Instant::now());
    }
}

/// Carrier → gateway, with a default.
pub struct Routes {
    pub default: Arc<Route>,
    pub by_carrier: HashMap<String, Arc<Route>>,
}

impl Routes {
    pub fn single(gateway: Arc<dyn Gateway>) -> Self {
        Self {
            default: Arc::new(Route::new(gateway)),
            by_carrier: HashMap::new(),
        }
    }
    /// Whether a gateway of this campaign limits SMS parts (`sms_per_second`).
    fn counts_parts(&self) -> bool {
        std::iter::once(&self.default)
            .chain(self.by_carrier.values())
            .any(|r| r.gateway.sms_per_second().is_some())
    }
    /// Every gateway a message of this campaign may go through, each once: the default's
    /// first, then the others by name.
    pub fn gateway_names(&self) -> Vec<String> {
        let default = self.default.gateway.name();
        let mut others: Vec<String> = self
            .by_carrier
            .values()
            .map(|r| r.gateway.name().to_string())
            .filter(|g| g != default)
            .collect();
        others.sort();
        others.dedup();
        std::iter::once(default.to_string()).chain(others).collect()
    }
    /// The most recipients any of the gateways takes per request (1: none batches).
    fn largest_batch(&self) -> usize {
        std::iter::once(&self.default)
            .chain(self.by_carrier.values())
            .map(|r| r.gateway.batch_size())
            .max()
            .unwrap_or(1)
    }
    /// The carriers' routes, each once: the default and every carrier's own (not `ported`).
    fn carrier_routes(&self) -> Vec<&Arc<Route>> {
        let mut routes = vec![&self.default];
        for (carrier, route) in &self.by_carrier {
            if carrier != crate::config::PORTED && !routes.iter().any(|r| Arc::ptr_eq(r, route)) {
                routes.push(route);
            }
        }
        routes
    }
    /// What the routes allow together (see [`combined_limits`]).
    pub fn limits(&self, parts: u32) -> (Option<f64>, Option<f64>) {
        let each: Vec<_> = self
            .carrier_routes()
            .iter()
            .map(|r| (r.gateway.rate(), r.gateway.sms_per_second()))
            .collect();
        combined_limits(&each, parts)
    }
    /// The route a message to `carrier` takes (the default when `[routing]` names none).
    pub fn for_carrier(&self, carrier: &str) -> &Arc<Route> {
        self.by_carrier.get(carrier).unwrap_or(&self.default)
    }
    /// Where a number goes once its carrier's gateway said it is not its subscriber:
    /// `[routing] ported`, else the default route.
    pub fn ported(&self) -> &Arc<Route> {
        self.for_carrier(crate::config::PORTED)
    }
    fn all_dedup(&self) -> bool {
        self.default.gateway.dedups_by_reference()
            && self
                .by_carrier
                .values()
                .all(|r| r.gateway.dedups_by_reference())
    }
}

/// The promise to carriers: in any one-second window, measured at the gateway, at most
/// `rate` plus this burst allowance (50 ms of traffic).
pub fn burst_allowance(rate: f64) -> u32 {
    ((rate / 20.0) as u32).max(1)
}

/// A governor limiter for `rate` messages per second. Its bucket holds half the burst
/// allowance (25 ms of traffic): enough that scheduler jitter costs no throughput, and the
/// other half absorbs requests that bunch up on their way to the gateway.
fn limiter(rate: f64) -> DefaultDirectRateLimiter {
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let burst = NonZeroU32::new((burst_allowance(rate) / 2).max(1)).expect("non-zero");
    RateLimiter::direct(
        Quota::with_period(period)
            .expect("positive period")
            .allow_burst(burst),
    )
}

/// Messages per second for messages of `parts` SMS parts: the lowest of the run's rate, the
/// gateway's `rate`, and its `sms_per_second` over the parts (`None`: no limit at all).
pub fn message_rate(
    run_rate: Option<f64>,
    gateway_rate: Option<f64>,
    sms_per_second: Option<f64>,
    parts: u32,
) -> Option<f64> {
    let by_parts = sms_per_second.map(|p| p / f64::from(parts.max(1)));
    [run_rate, gateway_rate, by_parts]
        .into_iter()
        .flatten()
        .reduce(f64::min)
}

/// The SMS parts a message of `segments` segments counts (at least 1).
pub fn parts_of(segments: i64) -> u32 {
    u32::try_from(segments.max(1)).unwrap_or(u32::MAX)
}

/// What gateways with these limits (`rate`, `sms_per_second`) allow together: one gateway's
/// own two limits; for several, the messages a second of `parts` parts they take together,
/// each at its own rate and all at once (`None` when one has no limit), and no parts limit
/// of their own.
pub fn combined_limits(
    each: &[(Option<f64>, Option<f64>)],
    parts: u32,
) -> (Option<f64>, Option<f64>) {
    match each {
        [one] => *one,
        many => (
            many.iter()
                .map(|(rate, sps)| message_rate(None, *rate, *sps, parts))
                .sum(),
            None,
        ),
    }
}

/// Waits until `l` grants `n` cells. A message of more parts than the limiter's bucket holds
/// takes them a bucketful at a time: the same pace, never a refusal.
async fn until_cells(l: &DefaultDirectRateLimiter, n: u32) {
    let mut left = n;
    while let Some(want) = NonZeroU32::new(left) {
        match l.until_n_ready(want).await {
            Ok(()) => return,
            Err(governor::InsufficientCapacity(cap)) => {
                let cap = NonZeroU32::new(cap.clamp(1, left)).expect("non-zero");
                // `cap` is what the bucket holds: this cannot be refused.
                let _ = l.until_n_ready(cap).await;
                left -= cap.get();
            }
        }
    }
}

/// Set when the run must stop sending: a pause or cancel seen in the database, or this
/// worker's breaker. Waits for a turn to send give way to it.
#[derive(Default)]
struct Halted {
    flag: AtomicBool,
    wake: Notify,
}

impl Halted {
    fn set(&self) {
        self.flag.store(true, Ordering::Relaxed);
        self.wake.notify_waiters();
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Returns once the flag is set.
    async fn wait(&self) {
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.is_set() {
                return;
            }
            woken.await;
        }
    }
}

/// A send task's row, for when the task dies: (delivery id, attempt number, gateway).
type InSend = (i64, i64, String);

/// What a send task needs to turn a gateway's answer into a row's outcome.
struct SendCtx {
    max_attempts: i64,
    /// The gateway of the `ported` route.
    ported: String,
    recorder: OutcomeSender,
    counters: Arc<Counters>,
    halt: Arc<Mutex<Option<Stop>>>,
    halted: Arc<Halted>,
}

impl SendCtx {
    /// Counts `gateway`'s failed answer `e` into its runs, and pauses the campaign when they
    /// say the gateway (not the recipient) is wrong: an unusable answer, the same answer
    /// `SAME_ANSWER_THRESHOLD` times in a row, or `BREAKER_THRESHOLD` failures in a row.
    async fn judge(&self, gateway: &str, e: &SubmitError) {
        let (failures, answer, run) = self.counters.refused_by(gateway, e);
        let (counters, halted, halt) = (&*self.counters, &*self.halted, &*self.halt);
        if let SubmitError::Unusable { reason, .. } = e {
            trip(counters, halted, halt, reason.clone()).await;
        } else if run >= SAME_ANSWER_THRESHOLD
            && matches!(
                e,
                SubmitError::Permanent { .. }
                    | SubmitError::InDoubt { .. }
                    | SubmitError::NotOurs { .. }
            )
        {
            trip(counters, halted, halt, format!(
                "gateway {gateway:?} gave the same answer {run} times in a row ({answer}): {e}; check the gateway and its settings, then `smscast campaign resume`"
            ))
            .await;
        } else if failures >= u64::from(BREAKER_THRESHOLD)
            && !matches!(
                e,
                SubmitError::Permanent { .. } | SubmitError::NotOurs { .. }
            )
        {
            trip(counters, halted, halt, format!(
                "{failures} submissions in a row to gateway {gateway:?} failed (last: {e}); check the gateway, then `smscast campaign resume`"
            ))
            .await;
        }
    }

    /// The outcome of `row`'s request: classified, counted, and tripping the breaker or
    /// the same-answer pause when the answers say the gateway (not the recipient) is wrong.
    async fn outcome(
        &self,
        route: &Route,
        row: Claimed,
        result: std::result::Result<crate::gateway::Accepted, SubmitError>,
        started_ms: i64,
        latency_ms: i64,
    ) -> Outcome {
        let counters = &*self.counters;
        let attempt_no = row.attempts + 1;
        let (kind, error) = match &result {
            Ok(a) => {
                counters.submitted.fetch_add(1, Ordering::Relaxed);
                counters.accepted_by(route.gateway.name());
                counters.settled(row.id);
                (
                    OutcomeKind::Submitted {
                        gateway_id: a.gateway_id.clone(),
                    },
                    None,
                )
            }
            Err(e) => {
                let was_rerouted = counters.is_rerouted(row.id);
                let kind = classify(
                    e,
                    &row,
                    self.max_attempts,
                    route.gateway.dedups_by_reference(),
                    route,
                    counters,
                    &self.ported,
                )
                .await;
                // "Not our subscriber" with the ported route still to try is routing, not the
                // gateway failing: it counts in none of the gateway's runs (a block of numbers
                // ported together would otherwise pause the campaign).
                let rerouting = matches!(
                    (e, &kind),
                    (SubmitError::NotOurs { .. }, OutcomeKind::Retry { .. })
                );
                if !rerouting {
                    self.judge(route.gateway.name(), e).await;
                }
                let error = match (e, &kind) {
                    (SubmitError::NotOurs { .. }, OutcomeKind::Retry { .. }) => {
                        format!(
                            "{e}; sent again through gateway {:?} (the ported route)",
                            self.ported
                        )
                    }
                    (SubmitError::NotOurs { .. }, _) if was_rerouted => {
                        format!("{e}; the ported route's gateway said so too")
                    }
                    (SubmitError::NotOurs { .. }, _) => {
                        format!(
                            "{e}; no other route for ported numbers: set [routing] ported = \"GATEWAY\" (one that reaches every carrier) and `smscast campaign resume`"
                        )
                    }
                    _ => e.to_string(),
                };
                (kind, Some(error))
            }
        };
        crate::observe::submission(
            route.gateway.name(),
            kind.label(),
            Duration::from_millis(latency_ms.max(0) as u64),
        );
        Outcome {
            delivery_id: row.id,
            attempt_no,
            started_ms,
            latency_ms,
            http_status: match &result {
                Ok(a) => Some(i64::from(a.http_status)),
                Err(e) => e.http_status().map(i64::from),
            },
            gateway: route.gateway.name().to_string(),
            gateway_code: result
                .as_ref()
                .err()
                .and_then(|e| e.code())
                .map(str::to_string),
            kind,
            error,
            text: row.text,
        }
    }
}

/// A batch being filled for one gateway: its route, rows, and its last row's turn.
type Filling = (Arc<Route>, Vec<(Claimed, OwnedSemaphorePermit)>, Instant);

/// A row's turn to send: its send permit, and when its pace came.
struct Turn {
    permit: OwnedSemaphorePermit,
    at: Instant,
}

/// The send tasks, and the rows each one is sending (several for a batch request).
#[derive(Default)]
struct Sends {
    set: JoinSet<()>,
    rows: HashMap<tokio::task::Id, Vec<InSend>>,
}

impl Sends {
    /// Forgets a task that ended; returns its rows and the reason if it died.
    fn settle(
        &mut self,
        done: std::result::Result<(tokio::task::Id, ()), tokio::task::JoinError>,
    ) -> Vec<(InSend, String)> {
        let (id, failed) = match done {
            Ok((id, ())) => (id, None),
            Err(e) => (e.id(), Some(e)),
        };
        let rows = self.rows.remove(&id).unwrap_or_default();
        match failed {
            Some(e) => rows.into_iter().map(|r| (r, e.to_string())).collect(),
            None => Vec::new(),
        }
    }
}

/// A paced group, marked in flight: its rows, their turns, and the rows marked (id, attempt
/// number), or the error.
type Marked = (Vec<Claimed>, Vec<Turn>, Result<Vec<(i64, i64)>>);
/// A paced group being marked in flight.
type Marking = tokio::task::JoinHandle<Marked>;

/// Live counters shared with the progress display.
#[derive(Default)]
pub struct Counters {
    pub submitted: AtomicU64,
    pub retried: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
    pub in_doubt: AtomicU64,
    /// Per gateway, its runs of failures and of identical answers. Each gateway's own: a
    /// campaign sends through several (one per carrier), and another gateway's successes say
    /// nothing about this one.
    runs: std::sync::Mutex<HashMap<String, Runs>>,
    /// Per delivery, the tries this process made that do not count toward `max_attempts`
    /// (throttled, or refused as unusable): the store counts every try in `attempts`, so they
    /// are taken off here. Entries go when the row settles; a restart forgets them (the
    /// message may then give up earlier, never later).
    free_tries: std::sync::Mutex<HashMap<i64, i64>>,
    /// Deliveries whose carrier's gateway answered "not our subscriber": they go once more,
    /// through the `ported` route. A restart forgets them (the first gateway is asked again,
    /// which sends nothing and costs no attempt).
    rerouted: std::sync::Mutex<std::collections::HashSet<i64>>,
    /// Set when this worker paused the campaign itself (breaker, or an unusable gateway).
    tripped: AtomicBool,
}

/// One gateway's answers since it last accepted a message.
#[derive(Default)]
struct Runs {
    failures: u64,
    /// The last answer (class, HTTP status, code) and how many times in a row it came.
    same: Option<(String, u32)>,
}

impl Counters {
    /// Whether this worker paused the campaign because of the gateway's answers.
    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Relaxed)
    }

    /// `gateway` accepted a message: its runs end.
    fn accepted_by(&self, gateway: &str) {
        if let Some(runs) = self.runs.lock().expect("not poisoned").get_mut(gateway) {
            *runs = Runs::default();
        }
    }

    /// Counts `gateway`'s failed answer `e` into its runs. Returns the failures in a row, the
    /// answer (class, HTTP status, code) and how many times in a row it came.
    fn refused_by(&self, gateway: &str, e: &SubmitError) -> (u64, String, u32) {
        let class = match e {
            SubmitError::Transient { .. } => "transient",
            SubmitError::Permanent { .. } | SubmitError::NotOurs { .. } => "rejected",
            SubmitError::InDoubt { .. } => "in doubt",
            SubmitError::Unusable { .. } => "unusable",
        };
        let answer = match (e.http_status(), e.code()) {
            (Some(s), Some(c)) => format!("{class}, HTTP {s}, code {c}"),
            (Some(s), None) => format!("{class}, HTTP {s}"),
            (None, Some(c)) => format!("{class}, code {c}"),
            (None, None) => format!("{class}, no answer"),
        };
        let mut all = self.runs.lock().expect("not poisoned");
        let runs = all.entry(gateway.to_string()).or_default();
        runs.failures += 1;
        let run = match runs.same.take() {
            Some((a, n)) if a == answer => n + 1,
            _ => 1,
        };
        runs.same = Some((answer.clone(), run));
        (runs.failures, answer, run)
    }

    /// Notes a try of `delivery` that does not count; returns how many there were so far.
    fn free_try(&self, delivery: i64) -> i64 {
        let mut free = self.free_tries.lock().expect("not poisoned");
        let n = free.entry(delivery).or_default();
        *n += 1;
        *n
    }

    /// Tries of `delivery` that counted, out of `attempt_no`.
    fn counted_tries(&self, delivery: i64, attempt_no: i64) -> i64 {
        let free = self.free_tries.lock().expect("not poisoned");
        attempt_no - free.get(&delivery).copied().unwrap_or(0)
    }

    fn settled(&self, delivery: i64) {
        self.free_tries
            .lock()
            .expect("not poisoned")
            .remove(&delivery);
        self.rerouted
            .lock()
            .expect("not poisoned")
            .remove(&delivery);
    }

    fn is_rerouted(&self, delivery: i64) -> bool {
        self.rerouted
            .lock()
            .expect("not poisoned")
            .contains(&delivery)
    }
}

/// What one pass of the loop did.
#[derive(Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// Sent (or started sending) this many.
    Sent(usize),
    /// Nothing due now; try again after this long.
    Idle(Duration),
    Stop(Stop),
}

pub struct Dispatcher {
    store: Arc<dyn Worker>,
    campaign: Campaign,
    routes: Arc<Routes>,
    opts: Options,
    hours: Hours,
    limiter: Option<DefaultDirectRateLimiter>,
    /// The campaign's rate, enforced where requests leave.
    guard: Option<Arc<WindowGuard>>,
    permits: Arc<Semaphore>,
    recorder: Recorder,
    /// Claimed rows, a lane per carrier (see lanes.rs).
    lanes: lanes::Lanes,
    counters: Arc<Counters>,
    /// Set by send tasks and the heartbeat: the reason to stop, if any.
    halt: Arc<Mutex<Option<Stop>>>,
    halted: Arc<Halted>,
    /// Rows paced, then marked and sent, together: at most the concurrency.
    mark_batch: usize,
    /// Whether a gateway takes many recipients per request.
    batching: bool,
    claim_batch: u32,
    announced_wait: Option<i64>,
    /// The text to send when the message has no placeholders.
    plain_text: String,
    /// Set when the message has placeholders.
    template: Option<crate::template::Template>,
    /// The send tasks, and the row each one is sending.
    sends: std::sync::Mutex<Sends>,
    /// The last paced group, being marked while the next one is paced.
    marking: Option<Marking>,
    /// The rate shared with every other worker (campaign and gateways).
    budget: budget::Budget,
    /// Copies the rest of the list into deliveries while the first are sent; finished (with
    /// `Ok`) once every member has its delivery.
    launcher: Option<tokio::task::JoinHandle<Result<()>>>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Worker>,
        campaign: Campaign,
        routes: Routes,
        opts: Options,
        counters: Arc<Counters>,
    ) -> Self {
        let mut opts = opts;
        let rate = opts.rate;
        // A gateway that takes many recipients per request needs a batch's worth of permits
        // for each request, and a second batch's while the first is out: the concurrency (and
        // with it what a crash may leave in doubt) is raised to two batches, and said so.
        let batch = routes.largest_batch();
        if batch > 1 && opts.concurrency < 2 * batch {
            eprintln!(
                "gateway batches of {batch} recipients: concurrency raised from {} to {} (a crash leaves at most that many in doubt)",
                opts.concurrency,
                2 * batch
            );
            opts.concurrency = 2 * batch;
        }
        let concurrency = opts.concurrency.max(1);
        // A group is paced, then marked (in the recorder's next commit, beside the outcomes
        // it settles), then sent: about 20 ms of traffic at the allowed rate, so its requests
        // leave close to their turn, and half the concurrency at most, so the sends of earlier
        // groups keep going while it is marked; a group takes only the permits free when its
        // first row has one, so it never waits for the slowest send of the one before. Each
        // row holds a send permit from before its mark until its outcome is queued for the
        // writer, ahead of any later mark (see recorder.rs), so
        // whatever the group size, a crash leaves at most the concurrency in doubt.
        let most = (concurrency / 2).max(1);
        let mark_batch = match rate {
            // A batching gateway's group is one request.
            _ if batch > 1 => batch,
            Some(r) => ((r / 50.0) as usize).clamp(1, most),
            None => most,
        };
        let claim_batch = match rate {
            Some(r) => ((r * 2.0) as u32).clamp(mark_batch as u32, 4_096),
            None => 4_096,
        };
        // Whole batches per claim: a claim's remainder would go as a short request.
        let claim_batch = match batch {
            1 => claim_batch,
            b => (claim_batch / b as u32).max(1) * b as u32,
        };
        let permits = Arc::new(Semaphore::new(concurrency));
        let recorder = Recorder::start(store.clone(), opts.worker_id.clone());
        let campaign_text = campaign.message_text.clone();
        // The stored text is a template: `{{` is a literal brace, `{name}` a placeholder.
        let template = crate::template::Template::parse(&campaign_text);
        let parts = parts_of(campaign.segments);
        let lanes = lanes::Lanes::new(&routes, |r| r.message_rate(rate, parts));
        Self {
            budget: budget::Budget::new(store.clone(), campaign.id, campaign.rate),
            hours: Hours {
                start: campaign.window_start,
                end: campaign.window_end,
            },
            store,
            campaign,
            routes: Arc::new(routes),
            limiter: rate.map(limiter),
            guard: rate.map(|r| Arc::new(WindowGuard::new(r))),
            permits,
            opts,
            recorder,
            lanes,
            counters,
            halt: Arc::new(Mutex::new(None)),
            halted: Arc::new(Halted::default()),
            mark_batch,
            batching: batch > 1,
            claim_batch,
            announced_wait: None,
            launcher: None,
            sends: std::sync::Mutex::new(Sends::default()),
            marking: None,
            plain_text: match &template {
                Ok(t) if !t.is_personalised() => t
                    .render(
                        &crate::template::Fields {
                            district: None,
                            attributes: None,
                        },
                        false,
                    )
                    .unwrap_or(campaign_text),
                _ => campaign_text,
            },
            template: template.ok().filter(|t| t.is_personalised()),
        }
    }

    /// The route of `row`: by its carrier, or the `ported` route once its carrier's gateway
    /// said the number is not its subscriber.
    fn route(&self, row: &Claimed) -> &Arc<Route> {
        if self.counters.is_rerouted(row.id) {
            self.routes.ported()
        } else {
            self.routes.for_carrier(&row.carrier)
        }
    }

    /// Requests in flight at once: the asked concurrency, or two batches for a gateway that
    /// takes many recipients per request.
    pub fn concurrency(&self) -> usize {
        self.opts.concurrency
    }

    pub fn campaign(&self) -> &Campaign {
        &self.campaign
    }

    /// Registers this worker, recovers rows of dead workers, and returns what was recovered.
    pub async fn start(&self, dead_workers: &[String]) -> Result<crate::store::Recovered> {
        let host = hostname();
        self.store
            .register_worker(
                &self.opts.worker_id,
                self.campaign.id,
                &host,
                std::process::id() as i64,
                liveness::this_process().as_deref(),
            )
            .await?;
        crate::observe::heartbeat();
        self.store
            .recover(
                self.campaign.id,
                now_ms(),
                dead_workers,
                self.routes.all_dedup(),
            )
            .await
    }

    /// Runs until the campaign completes, a stop is asked for, or the campaign is paused.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<Stop> {
        let mut heartbeat = self.spawn_heartbeat();
        self.launcher = Some(self.spawn_launcher());
        // A store error that ends the run is kept until in-flight sends are finished and
        // recorded: answers already received must not become "in doubt".
        let mut failure = None;
        let mut store_errors = 0u32;
        let stop = loop {
            if *shutdown.borrow() {
                break Stop::Interrupted;
            }
            if let Some(stop) = self.halt.lock().await.clone() {
                break stop;
            }
            if heartbeat.is_finished() {
                // It only ends by panicking: without it the leases run out under live sends.
                tracing::error!("the heartbeat task stopped; starting it again");
                heartbeat = self.spawn_heartbeat();
            }
            match self.step(&shutdown).await {
                Ok(StepOutcome::Sent(_)) => store_errors = 0,
                Ok(StepOutcome::Idle(wait)) => {
                    store_errors = 0;
                    let halted = self.halted.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => {}
                        _ = halted.wait() => {}
                    }
                }
                Ok(StepOutcome::Stop(stop)) => break stop,
                // A busy file or a database fail-over: wait and try again, for about a minute.
                Err(e) if crate::store::is_transient(&e) && store_errors < 12 => {
                    store_errors += 1;
                    let wait = Duration::from_millis(250) * 2u32.pow(store_errors.min(5));
                    tracing::warn!(
                        "the database did not answer ({e:#}); trying again in {wait:?} (try {store_errors})"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break Stop::Interrupted;
                }
            }
        };
        heartbeat.abort();
        if let Some(launcher) = self.launcher.take() {
            // A chunk is one transaction: an abort between chunks or inside one loses nothing,
            // and the next `send` (any worker) copies the rest.
            launcher.abort();
        }
        let finished = self.finish().await;
        if let Some(e) = failure {
            if let Err(f) = finished {
                tracing::error!("finishing after the error failed too: {f:#}");
            }
            let _ = self.store.stop_worker(&self.opts.worker_id).await;
            return Err(e.context(
                "the campaign stopped on a database error; sends already out were finished and recorded, and `smscast send` again resumes",
            ));
        }
        finished?;
        let stop = match stop {
            Stop::NothingLeft | Stop::Completed => {
                if self.store.complete_if_done(self.campaign.id).await? {
                    Stop::Completed
                } else {
                    Stop::NothingLeft
                }
            }
            // Only a pause this worker tripped is written back: one found in the database was
            // made by someone else.
            Stop::Paused(reason) if self.counters.tripped() => {
                // The breaker's own pause: only a running campaign pauses, so an operator's
                // cancel or resume made meanwhile stands.
                if let Err(e) = self
                    .store
                    .move_campaign(self.campaign.id, CampaignMove::Pause, Some(&reason))
                    .await
                {
                    match e.downcast_ref::<Refused>() {
                        Some(refused) => {
                            tracing::warn!("the breaker's pause was not applied: {refused}")
                        }
                        None => return Err(e),
                    }
                }
                Stop::Paused(reason)
            }
            other => other,
        };
        self.store.stop_worker(&self.opts.worker_id).await?;
        Ok(stop)
    }

    /// One pass: claim if needed, take a small group's turn at the allowed pace, then mark it
    /// in flight and send it.
    pub async fn step(&mut self, shutdown: &watch::Receiver<bool>) -> Result<StepOutcome> {
        let lost = self.reap();
        self.record_lost(lost).await?;
        let now = chrono::Utc::now();
        if let Some(ends) = self.campaign.ends_ms
            && now.timestamp_millis() >= ends
        {
            return Ok(StepOutcome::Stop(Stop::PastDeadline));
        }
        let not_before = self
            .campaign
            .starts_ms
            .unwrap_or(0)
            .max(now.timestamp_millis());
        let open_at = self
            .hours
            .next_open(chrono::DateTime::from_timestamp_millis(not_before).expect("valid time"));
        if open_at > now {
            if self.opts.no_wait {
                return Ok(StepOutcome::Stop(Stop::OutsideWindow(
                    open_at.timestamp_millis(),
                )));
            }
            let wait = (open_at - now).to_std().unwrap_or_default();
            tracing::info!(
                "outside the sending window {} (Asia/Ho_Chi_Minh); waiting until {}",
                self.hours,
                crate::window::local(open_at)
            );
            return Ok(StepOutcome::Idle(wait.min(Duration::from_secs(30))));
        }
        if self.lanes.is_empty()
            && let Some(marking) = self.marking.take()
        {
            // Its rows may still read as queued: sent before anything is claimed again.
            return Ok(StepOutcome::Sent(
                self.send_marked(marking.await?, shutdown).await?,
            ));
        }
        if self.marking.is_none() {
            // The last group's mark is committed: its rows no longer read as queued, and one
            // that came back to the queue since (a retry) may be claimed again.
            self.lanes.marking(&[]);
        }
        // Each carrier is claimed apart, when its lane is empty (one that had nothing due
        // rests a while first): each gateway keeps its own pace (see lanes.rs). One lane that
        // brings rows is enough for this pass: the next empty one is claimed on the next, so
        // sending starts after one claim, not one per carrier (a claim leases its rows on
        // PostgreSQL, and takes a while on a big campaign).
        for carrier in self.lanes.to_claim(Instant::now()) {
            let lease_until = now_ms() + self.opts.lease.as_millis() as i64;
            let claimed = self
                .store
                .claim(
                    self.campaign.id,
                    carrier,
                    &self.opts.worker_id,
                    self.claim_batch,
                    now_ms(),
                    lease_until,
                )
                .await?;
            let got = !claimed.is_empty();
            self.lanes.fill(carrier, claimed, Instant::now());
            if got {
                break;
            }
        }
        if self.lanes.is_empty() {
            // Nothing due in any lane: every lane is asked again on the next pass.
            self.lanes.wake();
            self.recorder.flush().await?;
            if !self.launched().await? {
                // The launch is still copying the list: more rows are coming.
                return Ok(StepOutcome::Idle(Duration::from_millis(20)));
            }
            // Rows waiting for a retry keep us here; otherwise we are done.
            return Ok(match self.store.next_due_ms(self.campaign.id).await? {
                Some(due) if due - now_ms() > 60_000 && self.opts.no_wait => {
                    StepOutcome::Stop(Stop::NothingDueUntil(due))
                }
                Some(due) => {
                    if due - now_ms() > 5_000 && self.announced_wait != Some(due) {
                        self.announced_wait = Some(due);
                        let at = chrono::DateTime::from_timestamp_millis(due).unwrap_or_default();
                        eprintln!(
                            "waiting: the next message is due at {} (a retry backoff, or the per-number cap); Ctrl-C stops, `send` again resumes",
                            crate::window::local(at)
                        );
                    }
                    StepOutcome::Idle(Duration::from_millis(
                        (due - now_ms()).clamp(10, 1_000) as u64
                    ))
                }
                None => {
                    let busy = self.store.in_flight_count(self.campaign.id).await? > 0;
                    // Our own sends not yet settled (a task that ended is collected, and
                    // its outcome committed, on the next pass).
                    let ours = !self.sends.lock().expect("not poisoned").set.is_empty()
                        || self.permits.available_permits() < self.opts.concurrency;
                    if busy && ours {
                        StepOutcome::Idle(Duration::from_millis(20))
                    } else if busy
                        && let Some(wait) = takeover::wait_for_others(
                            &*self.store,
                            self.campaign.id,
                            &self.opts.worker_id,
                            self.routes.all_dedup(),
                        )
                        .await?
                    {
                        StepOutcome::Idle(wait)
                    } else {
                        StepOutcome::Stop(Stop::NothingLeft)
                    }
                }
            });
        }
        // Pace, then mark: the group waits for its send permits and its turn at the limiters
        // before any of it is `sending`; the wait gives way to a stop, a pause, the send-by
        // date and the window closing.
        let mut group = self.lanes.take(self.mark_batch);
        if self.routes.counts_parts() {
            // A personalised text is charged its own parts: rendered before its pace.
            self.render(&mut group).await?; // a row without a value is rejected once marked
        }
        // While this group is paced, the previous one is marked in the background and goes out
        // as soon as it is: the mark's commit never stalls the pace.
        let mut marking = self.marking.take();
        let mut sent = 0;
        let paced = {
            let pacing = self.pace_group(&group);
            let stop = self.interrupted(shutdown);
            tokio::pin!(pacing, stop);
            loop {
                tokio::select! {
                    biased;
                    marked = async { marking.as_mut().expect("some").await }, if marking.is_some() => {
                        marking = None;
                        sent += self.send_marked(marked?, shutdown).await?;
                    }
                    _ = &mut stop => break None,
                    permits = &mut pacing => break Some(permits),
                }
            }
        };
        if let Some(m) = marking.take() {
            sent += self.send_marked(m.await?, shutdown).await?;
        }
        let permits = match paced {
            Some(p) if self.may_send(chrono::Utc::now()) => p,
            _ => {
                // Nothing of this group was marked: its claims (and the rest) go back, and the
                // next pass says why it stopped or waits.
                self.lanes.clear();
                self.store
                    .release(self.campaign.id, &self.opts.worker_id)
                    .await?;
                return Ok(StepOutcome::Idle(Duration::ZERO));
            }
        };
        // The rows that found no free permit wait for the next group, first in line.
        self.lanes.put_back(group.split_off(permits.len()));
        let ids: Vec<i64> = group.iter().map(|c| c.id).collect();
        self.lanes.marking(&ids);
        let lease_until = now_ms() + self.opts.lease.as_millis() as i64;
        let recorder = self.recorder.sender();
        let mark = crate::store::Mark {
            ids,
            cap_ms: self.campaign.cap_hours * 3_600_000,
            lease_until_ms: lease_until,
        };
        // Marked with the recorder's next commit, beside the outcomes it settles.
        self.marking = Some(tokio::spawn(async move {
            let sending = recorder.mark(mark).await;
            (group, permits, sending)
        }));
        Ok(StepOutcome::Sent(sent))
    }

    /// Sends a marked group; its rows go back unsent if a stop came, or the window closed or
    /// the send-by date passed meanwhile. Returns how many went out.
    async fn send_marked(
        &self,
        (group, permits, sending): Marked,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<usize> {
        // Not marked: the rows stay claimed until this run releases its claims or a claim runs
        // out; none is in doubt.
        let sending = sending?;
        // Each marked row carries the attempt number its outcome must settle (the fence); a
        // row not marked (opted out, held by the cap, taken by another worker) gives its
        // permit back.
        let marked: HashMap<i64, i64> = sending.into_iter().collect();
        let mut batch: Vec<(Claimed, Turn)> = group
            .into_iter()
            .zip(permits)
            .filter_map(|(mut c, permit)| {
                c.attempts = marked.get(&c.id)? - 1;
                Some((c, permit))
            })
            .collect();
        if self.template.is_some() {
            batch = self.personalise(batch).await?;
        }
        let mut sent = 0;
        // Marked, but a stop came first: given back unsent, keeping their permits till then.
        let mut unsent = Vec::new();
        let mut unsent_permits = Vec::new();
        let go = !*shutdown.borrow() && !self.halted.is_set() && self.may_send(chrono::Utc::now());
        // Under a rate, the group's requests leave spaced as their turns came, all later by
        // the same lag (the rest of the group's pace, and its mark): not bunched at the
        // gateway, where a bunch would meet the window guard and lose its slots.
        let lag = batch.first().map(|(_, t)| t.at.elapsed());
        // Rows for a gateway that takes many recipients per request wait here for a full
        // batch (or the group's end), by gateway; a batch leaves when its last row's turn came.
        let mut batches: HashMap<String, Filling> = HashMap::new();
        let leave_at = |route: &Route, at: Instant| match (&self.limiter, &route.limiter) {
            (None, None) => Instant::now(),
            _ => at + lag.unwrap_or_default(),
        };
        for (row, turn) in batch {
            if !go {
                unsent.push(row.id);
                unsent_permits.push(turn.permit);
                continue;
            }
            sent += 1;
            let route = self.route(&row).clone();
            let size = route.gateway.batch_size();
            if size <= 1 {
                self.spawn_request(
                    route.clone(),
                    vec![(row, turn.permit)],
                    leave_at(&route, turn.at),
                );
                continue;
            }
            let name = route.gateway.name().to_string();
            let (_, rows, last) = batches
                .entry(name.clone())
                .or_insert_with(|| (route.clone(), Vec::new(), turn.at));
            rows.push((row, turn.permit));
            *last = turn.at;
            if rows.len() >= size
                && let Some((route, rows, last)) = batches.remove(&name)
            {
                self.spawn_request(route.clone(), rows, leave_at(&route, last));
            }
        }
        for (route, rows, last) in batches.into_values() {
            self.spawn_request(route.clone(), rows, leave_at(&route, last));
        }
        if !unsent.is_empty() {
            self.store
                .release_unsent(&self.opts.worker_id, &unsent)
                .await?;
        }
        drop(unsent_permits);
        Ok(sent)
    }

    /// Takes each row's turn, in order: its pace at the limiters and a send permit. When this
    /// returns, every row that has a turn may go out now. The first row waits for a permit;
    /// the group then takes only permits free at once and ends at the first it cannot have,
    /// so it never waits for the slowest send of the group before (the rows without a turn are
    /// the next group's).
    async fn pace_group(&self, group: &[Claimed]) -> Vec<Turn> {
        let mut turns = Vec::with_capacity(group.len());
        for row in group {
            // A batching gateway's group is one request: it waits for every permit, since a
            // short batch would cost a whole request (aggregators count requests).
            let permit = if turns.is_empty() || self.mark_batch > 1 && self.batching {
                self.permits.clone().acquire_owned().await
            } else {
                match self.permits.clone().try_acquire_owned() {
                    Ok(permit) => Ok(permit),
                    Err(_) => break,
                }
            }
            .expect("semaphore open");
            let route = self.route(row);
            self.pace(route, self.parts(route, row)).await;
            turns.push(Turn {
                permit,
                at: Instant::now(),
            });
        }
        turns
    }

    /// Returns when rows waiting for their turn must not go out after all: Ctrl-C, a pause,
    /// cancel or breaker, the send-by date, or the sending window closing.
    async fn interrupted(&self, shutdown: &watch::Receiver<bool>) {
        let mut shutdown = shutdown.clone();
        let stop = async {
            if shutdown.wait_for(|s| *s).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let deadline = async {
            match self.campaign.ends_ms {
                Some(ends) => {
                    let left = (ends - now_ms()).max(0) as u64;
                    tokio::time::sleep(Duration::from_millis(left)).await
                }
                None => std::future::pending().await,
            }
        };
        let window = async {
            if self.hours.is_all_day() {
                std::future::pending::<()>().await;
            }
            while self.hours.contains(chrono::Utc::now()) {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        tokio::select! {
            _ = stop => {}
            _ = self.halted.wait() => {}
            _ = deadline => {}
            _ = window => {}
        }
    }

    /// Whether a message may go out at `now`: inside the window, the campaign started and
    /// its send-by date not passed.
    fn may_send(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        let ms = now.timestamp_millis();
        self.campaign.ends_ms.is_none_or(|ends| ms < ends)
            && self.campaign.starts_ms.is_none_or(|starts| ms >= starts)
            && self.hours.contains(now)
    }

    /// Collects the send tasks that ended; one that panicked leaves its row in doubt, which
    /// is recorded here rather than left `sending` until a recovery.
    fn reap(&self) -> Vec<Outcome> {
        let mut sends = self.sends.lock().expect("not poisoned");
        let mut lost = Vec::new();
        while let Some(done) = sends.set.try_join_next_with_id() {
            lost.extend(sends.settle(done));
        }
        lost.into_iter().map(|l| self.lost(l)).collect()
    }

    /// The outcome of a row whose send task died: in doubt, the request may have gone out.
    fn lost(&self, ((delivery_id, attempt_no, gateway), e): (InSend, String)) -> Outcome {
        tracing::error!("a send task failed ({e}); its message is recorded as in doubt");
        self.counters.in_doubt.fetch_add(1, Ordering::Relaxed);
        self.counters.settled(delivery_id);
        Outcome {
            delivery_id,
            attempt_no,
            started_ms: now_ms(),
            latency_ms: 0,
            http_status: None,
            gateway,
            gateway_code: None,
            kind: OutcomeKind::InDoubt,
            error: Some(format!(
                "the send task failed ({e}): the request may have gone out"
            )),
            text: None,
        }
    }

    /// Records what `reap` found.
    async fn record_lost(&self, lost: Vec<Outcome>) -> Result<()> {
        let recorder = self.recorder.sender();
        for o in lost {
            recorder.send(o).await?;
        }
        Ok(())
    }

    /// Fills each row's text from its placeholders where every one has a value; returns, for
    /// each row left without text, the placeholder that had none.
    async fn render(&self, rows: &mut [Claimed]) -> Result<HashMap<i64, String>> {
        let mut missing = HashMap::new();
        let Some(template) = &self.template else {
            return Ok(missing);
        };
        let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
        let attributes: HashMap<i64, Option<String>> = self
            .store
            .delivery_attributes(&ids)
            .await?
            .into_iter()
            .collect();
        let fold = self.campaign.encoding == "GSM-7";
        for row in rows {
            let attrs = crate::template::parse_attributes(
                attributes.get(&row.id).cloned().flatten().as_deref(),
            );
            let fields = crate::template::Fields {
                district: row.district.as_deref(),
                attributes: attrs.as_ref(),
            };
            match template.render(&fields, fold) {
                Ok(text) => row.text = Some(text),
                Err(name) => {
                    row.text = None;
                    missing.insert(row.id, name.to_string());
                }
            }
        }
        Ok(missing)
    }

    /// Fills each row's text from its placeholders; a row without a value is rejected with
    /// the reason instead of being sent with a hole in it.
    async fn personalise(&self, batch: Vec<(Claimed, Turn)>) -> Result<Vec<(Claimed, Turn)>> {
        if self.template.is_none() {
            return Ok(batch);
        }
        let (mut rows, turns): (Vec<Claimed>, Vec<Turn>) = batch.into_iter().unzip();
        let missing = self.render(&mut rows).await?;
        let recorder = self.recorder.sender();
        let mut ready = Vec::with_capacity(rows.len());
        for (row, permit) in rows.into_iter().zip(turns) {
            let Some(missing) = missing.get(&row.id) else {
                ready.push((row, permit));
                continue;
            };
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            let now = now_ms();
            recorder
                .send_holding(
                    Outcome {
                        delivery_id: row.id,
                        attempt_no: row.attempts + 1,
                        started_ms: now,
                        latency_ms: 0,
                        http_status: None,
                        gateway: self
                            .routes
                            .for_carrier(&row.carrier)
                            .gateway
                            .name()
                            .to_string(),
                        gateway_code: None,
                        kind: OutcomeKind::Rejected,
                        error: Some(format!(
                            "no value for the placeholder {{{missing}}}: not sent"
                        )),
                        text: None,
                    },
                    Some(permit.permit),
                )
                .await?;
        }
        Ok(ready)
    }

    /// The SMS parts `row`'s message counts against `route`'s `sms_per_second`: the part
    /// count of its personalised text, or the campaign's. 1 when the gateway counts no parts.
    fn parts(&self, route: &Route, row: &Claimed) -> u32 {
        if route.gateway.sms_per_second().is_none() {
            return 1;
        }
        let parts = match &row.text {
            Some(text) => crate::encoding::analyze(text).segments,
            None => usize::try_from(self.campaign.segments).unwrap_or(1),
        };
        u32::try_from(parts).unwrap_or(u32::MAX).max(1)
    }

    /// Waits for the campaign limiter, the gateway's limiters (messages, and SMS parts: a
    /// message of `parts` parts counts that many), any Retry-After hold, and the slowdown
    /// after a throttle.
    async fn pace(&self, route: &Route, parts: u32) {
        loop {
            let hold = *route.hold_until.lock().await;
            match hold {
                Some(until) if until > Instant::now() => {
                    tokio::time::sleep_until(until.into()).await
                }
                _ => break,
            }
        }
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
        if let Some(l) = &route.limiter {
            l.until_ready().await;
        }
        if let Some(l) = &route.parts_limiter {
            until_cells(l, parts).await;
        }
        self.budget
            .take(
                route.gateway.name(),
                route.gateway.rate(),
                route.gateway.sms_per_second().map(|r| (r, parts)),
            )
            .await;
        let factor = route.factor();
        let rate = route.message_rate(self.opts.rate, parts);
        crate::observe::rate_in_force(route.gateway.name(), rate, factor);
        if factor < 1.0
            && let Some(rate) = rate
        {
            // Stretch the interval between sends from 1/rate to 1/(rate × factor).
            tokio::time::sleep(Duration::from_secs_f64((1.0 / factor - 1.0) / rate)).await;
        }
    }

    /// Sends one request: a row, or a batch of rows for a gateway that takes many recipients
    /// per request. Each row keeps its permit until its outcome is queued for the writer.
    fn spawn_request(
        &self,
        route: Arc<Route>,
        rows: Vec<(Claimed, OwnedSemaphorePermit)>,
        leave: Instant,
    ) {
        let campaign_id = self.campaign.id;
        let parts: u32 = rows.iter().map(|(r, _)| self.parts(&route, r)).sum();
        let texts: Vec<(String, bool)> = rows
            .iter()
            .map(|(row, _)| {
                let unicode = unicode(&self.campaign, row.text.as_deref());
                let text = row.text.clone().unwrap_or_else(|| self.plain_text.clone());
                (text, unicode)
            })
            .collect();
        let from = self.campaign.sender.clone();
        let ctx = SendCtx {
            max_attempts: self.campaign.max_attempts,
            ported: self.routes.ported().gateway.name().to_string(),
            recorder: self.recorder.sender(),
            counters: self.counters.clone(),
            halt: self.halt.clone(),
            halted: self.halted.clone(),
        };
        let guard = self.guard.clone();
        let store = self.store.clone();
        let in_send: Vec<InSend> = rows
            .iter()
            .map(|(row, _)| (row.id, row.attempts + 1, route.gateway.name().to_string()))
            .collect();
        let n = u32::try_from(rows.len()).unwrap_or(u32::MAX);
        let mut sends = self.sends.lock().expect("not poisoned");
        let task = sends.set.spawn(async move {
            // (Under a millisecond, the timer could not keep the spacing anyway.)
            if leave > Instant::now() + Duration::from_millis(1) {
                tokio::time::sleep_until(leave.into()).await;
            }
            // A batch counts every recipient against the rates; one larger than a rate's
            // second goes alone in an empty window.
            if let Some(g) = &guard {
                g.admit_n(n).await;
            }
            if let Some(g) = &route.guard {
                g.admit_n(n).await;
            }
            if let Some(g) = &route.parts_guard {
                g.admit_n(parts).await;
            }
            if let Some(l) = &route.requests {
                l.until_ready().await;
            }
            let references: Vec<String> = rows
                .iter()
                .map(|(row, _)| store.reference(campaign_id, row.id))
                .collect();
            let sms: Vec<OutboundSms> = rows
                .iter()
                .zip(&references)
                .zip(&texts)
                .map(|(((row, _), reference), (text, unicode))| OutboundSms {
                    reference,
                    to: &row.msisdn,
                    from: &from,
                    text,
                    unicode: *unicode,
                })
                .collect();
            let started_ms = now_ms();
            let started = Instant::now();
            crate::observe::submitting(route.gateway.name());
            // A batching gateway takes even one recipient through its batch request.
            let results = match sms.as_slice() {
                [one] if route.gateway.batch_size() <= 1 => vec![route.gateway.submit(one).await],
                many => route.gateway.submit_batch(many).await,
            };
            let latency_ms = started.elapsed().as_millis() as i64;
            drop(sms);
            for ((row, permit), result) in rows.into_iter().zip(results) {
                let outcome = ctx
                    .outcome(&route, row, result, started_ms, latency_ms)
                    .await;
                // The recorder outlives every send task; a closed channel means the process
                // is going down and the row stays `sending`, in doubt — which is the truth.
                // The permit goes back once the outcome is queued (see recorder.rs).
                let _ = ctx.recorder.send_holding(outcome, Some(permit)).await;
            }
        });
        sends.rows.insert(task.id(), in_send);
    }

    /// Copies the rest of the campaign's list into deliveries, chunk by chunk, until every
    /// member has one. Any worker may do it (a launch interrupted anywhere is finished by the
    /// next `send`); while another worker copies a chunk, this one waits its turn.
    fn spawn_launcher(&self) -> tokio::task::JoinHandle<Result<()>> {
        let store = self.store.clone();
        let campaign_id = self.campaign.id;
        let chunk = self.opts.launch_chunk.max(1);
        let worker = self.opts.worker_id.clone();
        tokio::spawn(async move {
            let mut errors = 0u32;
            loop {
                match store.continue_launch(campaign_id, chunk).await {
                    Ok(LaunchProgress::Done) => return Ok(()),
                    Ok(LaunchProgress::Copied(c)) => {
                        errors = 0;
                        if c.done {
                            // When the last member got its delivery: the launch entry says
                            // when sending started, this one when the list was all in.
                            let counts = store.state_counts(campaign_id).await?;
                            let deliveries: i64 = counts.iter().map(|(_, n)| n).sum();
                            store
                                .audit_append(
                                    &worker,
                                    "launch_complete",
                                    &format!("campaign {campaign_id}"),
                                    &serde_json::json!({ "deliveries": deliveries }),
                                )
                                .await?;
                            return Ok(());
                        }
                    }
                    Ok(LaunchProgress::Busy) => {
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                    Err(e) if crate::store::is_transient(&e) && errors < 12 => {
                        errors += 1;
                        tracing::warn!("copying the list into the campaign: {e:#}; trying again");
                        tokio::time::sleep(Duration::from_millis(250) * 2u32.pow(errors.min(5)))
                            .await;
                    }
                    Err(e) => {
                        return Err(e.context("copying the campaign's list into deliveries failed"));
                    }
                }
            }
        })
    }

    /// Whether every list member has its delivery; the launcher's error if it failed.
    async fn launched(&mut self) -> Result<bool> {
        match &self.launcher {
            Some(l) if !l.is_finished() => Ok(false),
            Some(_) => {
                let l = self.launcher.take().expect("checked");
                l.await.context("the launcher task failed")??;
                Ok(true)
            }
            None => Ok(true),
        }
    }

    fn spawn_heartbeat(&self) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let worker = self.opts.worker_id.clone();
        let lease = self.opts.lease;
        let campaign_id = self.campaign.id;
        let halt = self.halt.clone();
        let halted = self.halted.clone();
        tokio::spawn(async move {
            let every = (lease / 4).clamp(Duration::from_millis(200), Duration::from_secs(2));
            loop {
                tokio::time::sleep(every).await;
                let until = now_ms() + lease.as_millis() as i64;
                if let Err(e) = store.heartbeat(&worker, until).await {
                    tracing::warn!("heartbeat failed: {e:#}");
                    continue;
                }
                crate::observe::heartbeat();
                // Another terminal may have paused or cancelled the campaign.
                if let Ok(Some(c)) = store.campaign(&format!("#{campaign_id}")).await {
                    let stop = match c.state {
                        CampaignState::Paused => Some(Stop::Paused(
                            c.state_reason
                                .unwrap_or_else(|| "paused by an operator".into()),
                        )),
                        CampaignState::Cancelled => Some(Stop::Cancelled),
                        _ => None,
                    };
                    if let Some(stop) = stop {
                        halt.lock().await.get_or_insert(stop);
                        halted.set();
                    }
                }
            }
        })
    }

    /// Lets in-flight sends finish, records every outcome, gives unsent claims back.
    async fn finish(&mut self) -> Result<()> {
        // A group marked but not sent: the run is stopping, so it goes back unsent.
        if let Some(marking) = self.marking.take() {
            // (Not marked at all on an error: nothing to give back.)
            if let (_, _permits, Ok(sending)) = marking.await? {
                let ids: Vec<i64> = sending.into_iter().map(|(id, _)| id).collect();
                if !ids.is_empty() {
                    self.store
                        .release_unsent(&self.opts.worker_id, &ids)
                        .await?;
                }
            }
        }
        let mut sends = std::mem::take(&mut *self.sends.lock().expect("not poisoned"));
        let mut lost = Vec::new();
        while let Some(done) = sends.set.join_next_with_id().await {
            lost.extend(sends.settle(done).into_iter().map(|l| self.lost(l)));
        }
        self.record_lost(lost).await?;
        self.recorder
            .close()
            .await
            .context("Failed to record the last outcomes")?;
        self.lanes.clear();
        self.store
            .release(self.campaign.id, &self.opts.worker_id)
            .await?;
        Ok(())
    }
}

/// Turns a failed submission into what happens to the row next.
async fn classify(
    e: &SubmitError,
    row: &Claimed,
    max_attempts: i64,
    dedups: bool,
    route: &Route,
    counters: &Counters,
    ported: &str,
) -> OutcomeKind {
    let (delivery, attempt_no) = (row.id, row.attempts + 1);
    let retry = |delay: Duration| {
        counters.retried.fetch_add(1, Ordering::Relaxed);
        OutcomeKind::Retry {
            next_attempt_ms: now_ms() + delay.as_millis() as i64,
        }
    };
    match e {
        // Not this carrier's subscriber (ported away): once more through the ported route,
        // at no attempt's cost, when that is another gateway; else final like any refusal.
        SubmitError::NotOurs { .. }
            if route.gateway.name() != ported && !counters.is_rerouted(delivery) =>
        {
            counters
                .rerouted
                .lock()
                .expect("not poisoned")
                .insert(delivery);
            counters.free_try(delivery);
            retry(Duration::ZERO)
        }
        SubmitError::Permanent { .. } | SubmitError::NotOurs { .. } => {
            counters.settled(delivery);
            counters.rejected.fetch_add(1, Ordering::Relaxed);
            OutcomeKind::Rejected
        }
        // Not the message's fault: back to the queue, the attempt is not held against it
        // (the campaign pauses).
        SubmitError::Unusable { .. } => {
            counters.free_try(delivery);
            retry(Duration::ZERO)
        }
        // Resent with the same reference (the gateway deduplicates), at most `max_attempts`
        // times; past that the operator decides (`smscast reconcile`).
        SubmitError::InDoubt { .. }
            if dedups && counters.counted_tries(delivery, attempt_no) < max_attempts =>
        {
            retry(backoff(attempt_no))
        }
        SubmitError::InDoubt { .. } => {
            counters.settled(delivery);
            counters.in_doubt.fetch_add(1, Ordering::Relaxed);
            OutcomeKind::InDoubt
        }
        SubmitError::Transient {
            retry_after,
            http_status,
            ..
        } => {
            let throttled = retry_after.is_some() || *http_status == Some(429);
            if throttled {
                route.throttled();
            }
            if let Some(wait) = retry_after {
                // A 429 / Retry-After slows the whole gateway, not one request.
                let until = Instant::now() + *wait;
                let mut hold = route.hold_until.lock().await;
                if hold.is_none_or(|h| h < until) {
                    *hold = Some(until);
                }
            }
            // A throttle is the gateway's pace, not the message's failure: it costs no attempt
            // and never ends a message as failed (a gateway that only throttles trips
            // `BREAKER_THRESHOLD` and the campaign pauses).
            if throttled {
                counters.free_try(delivery);
                retry(retry_after.unwrap_or_else(|| backoff(attempt_no)))
            } else if counters.counted_tries(delivery, attempt_no) >= max_attempts {
                counters.settled(delivery);
                counters.failed.fetch_add(1, Ordering::Relaxed);
                OutcomeKind::GaveUp
            } else {
                retry(retry_after.unwrap_or_else(|| backoff(attempt_no)))
            }
        }
    }
}

/// Whether a message of `campaign` goes out as UCS-2: by its personalised text when it has
/// one, else by the campaign's encoding.
pub fn unicode(campaign: &Campaign, personal: Option<&str>) -> bool {
    match personal {
        Some(t) => !t.chars().all(crate::encoding::is_gsm7),
        None => campaign.encoding == "UCS-2",
    }
}

/// Exponential backoff with full jitter: 1 s, 2 s, 4 s … capped at 5 minutes.
fn backoff(attempt_no: i64) -> Duration {
    let cap = Duration::from_secs(300);
    let base = Duration::from_secs(1) * 2u32.saturating_pow((attempt_no - 1).clamp(0, 16) as u32);
    let max = base.min(cap);
    let jitter = rand::rng().random_range(0.5..=1.0);
    max.mul_f64(jitter)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// A worker id unique across hosts and restarts: `host:pid:random`.
pub fn new_worker_id() -> String {
    format!(
        "{}:{}:{:08x}",
        hostname(),
        std::process::id(),
        rand::rng().random::<u32>()
    )
}

/// This worker's breaker (or an unusable gateway) stops the run with a pause it will write
/// back; a stop already under way keeps its reason.
async fn trip(counters: &Counters, halted: &Halted, halt: &Mutex<Option<Stop>>, reason: String) {
    counters.tripped.store(true, Ordering::Relaxed);
    halt.lock().await.get_or_insert(Stop::Paused(reason));
    halted.set();
}

/// Workers whose process is surely gone, as far as this process can see (same kernel boot
/// and PID namespace; see [`liveness`]): their rows can be recovered at once instead of
/// waiting for their leases to run out.
pub fn dead_local_workers(workers: &[crate::store::WorkerInfo]) -> Vec<String> {
    workers
        .iter()
        .filter(|w| w.stopped_ms.is_none())
        .filter(|w| {
            w.process
                .as_deref()
                .and_then(liveness::is_gone)
                .unwrap_or(false)
        })
        .map(|w| w.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for n in 1..30 {
            let d = backoff(n);
            assert!(d <= Duration::from_secs(300));
            assert!(d >= Duration::from_millis(500));
        }
        assert!(backoff(5) >= Duration::from_secs(8));
    }

    struct Nowhere;

    #[async_trait::async_trait]
    impl Gateway for Nowhere {
        fn name(&self) -> &str {
            "nowhere"
        }
        fn dedups_by_reference(&self) -> bool {
            true
        }
        fn rate(&self) -> Option<f64> {
            None
        }
        async fn submit(
            &self,
            _: &OutboundSms<'_>,
        ) -> Result<crate::gateway::Accepted, SubmitError> {
            unreachable!()
        }
    }

    #[tokio::test]
    async fn throttles_and_unusable_answers_cost_no_attempt() {
        let route = Route::new(Arc::new(Nowhere));
        let c = Counters::default();
        let transient = |status: u16| SubmitError::Transient {
            reason: format!("HTTP {status}"),
            retry_after: None,
            http_status: Some(status),
            code: None,
        };
        let unusable = SubmitError::Unusable {
            reason: "HTTP 401".into(),
            http_status: Some(401),
        };
        // Row `id` at its attempt `n`.
        let row = |id: i64, n: i64| Claimed {
            id,
            msisdn: "84912345678".into(),
            carrier: "viettel".into(),
            district: None,
            attempts: n - 1,
            text: None,
        };
        let retried = |k: &OutcomeKind| matches!(k, OutcomeKind::Retry { .. });
        // max_attempts 2: five throttles and an unusable answer cost nothing, then two 503s.
        for n in 1..=5 {
            let k = classify(&transient(429), &row(7, n), 2, false, &route, &c, "other").await;
            assert!(retried(&k), "throttle {n}: {k:?}");
        }
        assert!(retried(
            &classify(&unusable, &row(7, 6), 2, false, &route, &c, "other").await
        ));
        assert!(retried(
            &classify(&transient(503), &row(7, 7), 2, false, &route, &c, "other").await
        ));
        let k = classify(&transient(503), &row(7, 8), 2, false, &route, &c, "other").await;
        assert!(matches!(k, OutcomeKind::GaveUp), "{k:?}");
        // In-doubt resends through a deduplicating gateway are capped by max_attempts too.
        let doubt = SubmitError::InDoubt {
            reason: "timeout".into(),
            http_status: None,
            code: None,
        };
        assert!(retried(
            &classify(&doubt, &row(8, 1), 2, true, &route, &c, "other").await
        ));
        let k = classify(&doubt, &row(8, 2), 2, true, &route, &c, "other").await;
        assert!(matches!(k, OutcomeKind::InDoubt), "{k:?}");
    }

    #[tokio::test]
    async fn limiter_paces_to_the_rate() {
        // 100/s with a bucket of 2: 25 permits cannot come in under (25 - 2) / 100 s.
        let l = limiter(100.0);
        let start = Instant::now();
        for _ in 0..25 {
            l.until_ready().await;
        }
        assert!(
            start.elapsed() >= Duration::from_millis(190),
            "{:?}",
            start.elapsed()
        );
    }
}
