//! The sending contract: who may move a delivery or a campaign, from which state, to which.
//!
//! Every state change smscast makes is one of the moves below, and every move is one SQL
//! statement whose `WHERE state IN (…)` is written from this table ([`DeliveryMove::guard`],
//! [`CampaignMove::guard`]): the database refuses a move from any other state, whatever
//! process asks and whenever it asks. Callers check the rows affected; a refused campaign move
//! is an error the user sees ([`Refused`]), a refused delivery move is counted and reported
//! (a stale worker's late outcome, a receipt for a message that never went out).
//!
//! Deliveries:
//!
//! ```text
//!            claim (PostgreSQL)          mark                    settle(attempt n)
//!  queued ─────────────────▶ claimed ─────────────▶ sending ───────────────────────▶ submitted
//!    ▲  ▲ release / recover   │  │ mark: opted out        │ settle: retry ─▶ queued       │
//!    │  └─────────────────────┘  └──▶ suppressed           │ settle: rejected/failed       │
//!    │                                                     │ settle: in doubt ─▶ unknown   │
//!    │ release_unsent / recover (gateway dedups)           │                               │
//!    └─────────────────────────────────────────────────────┘                               │
//!  unknown ── receipt: enroute ──▶ submitted ── receipt: delivered/failed/expired ──▶ final  │
//!  unknown ── receipt: final ──▶ final;  unknown ── reconcile ──▶ queued | failed            │
//!  submitted ── expire (gateway sends receipts, none came) ──▶ expired ◀─────────────────────┘
//!
//!  carrier-run campaigns (`campaign export --carrier`, `results import --carrier`):
//!  queued ── hand over ──▶ handed ── carrier result: delivered/failed/expired ──▶ final
//!                            │  └── carrier result: unknown/pending ──▶ unknown ── carrier result: final ──▶ final
//! ```
//!
//! A row `handed` to a carrier (its `gateway` column says `carrier:NAME`) is the carrier's to
//! send: no worker claims or marks it, so `send` goes on with the other carriers' rows. The
//! carrier's result file moves it once: a later file may only *complete* an earlier one (an
//! `unknown`/pending result may later become delivered, failed or expired); a final result is
//! never corrected by a later file (no move leaves a final state), the disagreement is reported
//! instead. Carrier results only move rows handed to that same carrier.
//!
//! `delivered`, `failed`, `expired`, `rejected` and `suppressed` are final: no move leaves them.
//! An outcome settles only the attempt that produced it (the fencing token is the attempt
//! number `mark` returned): once a row was recovered and marked again by another worker, the
//! first worker's late answer is kept as an `attempts` row and changes nothing else.
//!
//! Campaigns:
//!
//! ```text
//!  draft ──launch──▶ running ──pause──▶ paused ──resume──▶ running
//!  running ──complete──▶ completed ──reopen (reconcile --resend)──▶ running
//!  draft | running | paused ──cancel──▶ cancelled
//! ```

use std::fmt;
use std::sync::LazyLock;

use serde::Serialize;

use super::{CampaignState, state};

/// A delivery's state, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Queued,
    Claimed,
    Sending,
    Submitted,
    Delivered,
    Failed,
    Expired,
    Rejected,
    Unknown,
    Suppressed,
    /// Handed to a carrier that sends it itself (a carrier-run campaign): awaiting its results.
    Handed,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 11] = [
        Self::Queued,
        Self::Claimed,
        Self::Sending,
        Self::Submitted,
        Self::Delivered,
        Self::Failed,
        Self::Expired,
        Self::Rejected,
        Self::Unknown,
        Self::Suppressed,
        Self::Handed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => state::QUEUED,
            Self::Claimed => state::CLAIMED,
            Self::Sending => state::SENDING,
            Self::Submitted => state::SUBMITTED,
            Self::Delivered => state::DELIVERED,
            Self::Failed => state::FAILED,
            Self::Expired => state::EXPIRED,
            Self::Rejected => state::REJECTED,
            Self::Unknown => state::UNKNOWN,
            Self::Suppressed => state::SUPPRESSED,
            Self::Handed => state::HANDED,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// No move leaves a final state.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::Failed | Self::Expired | Self::Rejected | Self::Suppressed
        )
    }
}

/// Every way a delivery changes state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryMove {
    /// A worker leases due rows (PostgreSQL; on SQLite a claim only reads).
    Claim,
    /// Just before the request goes out: durable "this message may be out".
    Mark,
    /// At mark time: the number opted out since launch.
    SuppressOptedOut,
    /// At mark time: the number had a message from another campaign within the cap.
    HoldForCap,
    /// The gateway's answer to the attempt that was marked (fenced by the attempt number).
    Settle,
    /// A worker gives back claims it will not send.
    Release,
    /// Marked, but the request never left (a stop came first).
    ReleaseUnsent,
    /// A dead worker's claims.
    RecoverClaimed,
    /// A dead worker's marked rows: resent with the same reference, or in doubt.
    RecoverSending,
    /// A receipt says the gateway took a message we were in doubt about.
    ReceiptEnroute,
    /// A final receipt (delivered, failed, expired).
    ReceiptFinal,
    /// No final receipt within the validity period, from a gateway that sends receipts.
    Expire,
    /// `smscast reconcile --resend`.
    ReconcileResend,
    /// `smscast reconcile --give-up`.
    ReconcileGiveUp,
    /// `smscast campaign export --carrier`: the carrier sends these rows itself.
    HandOver,
    /// A final result (delivered, failed, expired) from the carrier's result file, for a row
    /// handed to that carrier (still awaiting, or reported unknown by an earlier file).
    CarrierResult,
    /// The carrier's result file says unknown or pending.
    CarrierPending,
}

impl DeliveryMove {
    pub const ALL: [DeliveryMove; 17] = [
        Self::Claim,
        Self::Mark,
        Self::SuppressOptedOut,
        Self::HoldForCap,
        Self::Settle,
        Self::Release,
        Self::ReleaseUnsent,
        Self::RecoverClaimed,
        Self::RecoverSending,
        Self::ReceiptEnroute,
        Self::ReceiptFinal,
        Self::Expire,
        Self::ReconcileResend,
        Self::ReconcileGiveUp,
        Self::HandOver,
        Self::CarrierResult,
        Self::CarrierPending,
    ];

    /// The states this move may leave: the transition table.
    pub const fn from(self) -> &'static [DeliveryState] {
        use DeliveryState::*;
        match self {
            Self::Claim => &[Queued],
            // SQLite marks queued rows directly (its claim only reads); PostgreSQL marks the
            // rows it leased.
            Self::Mark | Self::SuppressOptedOut | Self::HoldForCap => &[Queued, Claimed],
            Self::Settle => &[Sending, Unknown],
            Self::Release | Self::RecoverClaimed => &[Claimed],
            Self::ReleaseUnsent | Self::RecoverSending => &[Sending],
            Self::ReceiptEnroute => &[Unknown],
            Self::ReceiptFinal => &[Submitted, Unknown],
            Self::Expire => &[Submitted],
            Self::ReconcileResend | Self::ReconcileGiveUp => &[Unknown],
            Self::HandOver => &[Queued],
            Self::CarrierResult => &[Handed, Unknown],
            Self::CarrierPending => &[Handed],
        }
    }

    /// The states this move may lead to.
    pub const fn to(self) -> &'static [DeliveryState] {
        use DeliveryState::*;
        match self {
            Self::Claim => &[Claimed],
            Self::Mark => &[Sending],
            Self::SuppressOptedOut => &[Suppressed],
            Self::HoldForCap => &[Queued],
            Self::Settle => &[Submitted, Queued, Failed, Rejected, Unknown],
            Self::Release | Self::RecoverClaimed | Self::ReleaseUnsent => &[Queued],
            Self::RecoverSending => &[Queued, Unknown],
            Self::ReceiptEnroute => &[Submitted],
            Self::ReceiptFinal => &[Delivered, Failed, Expired],
            Self::Expire => &[Expired],
            Self::ReconcileResend => &[Queued],
            Self::ReconcileGiveUp => &[Failed],
            Self::HandOver => &[Handed],
            Self::CarrierResult => &[Delivered, Failed, Expired],
            Self::CarrierPending => &[Unknown],
        }
    }

    /// `state IN ('…', …)` for this move, to put in its statement's `WHERE`. The states are
    /// the table's own constants (never input), so the text is the same on every call.
    pub fn guard(self) -> &'static str {
        static GUARDS: LazyLock<Vec<(DeliveryMove, String)>> = LazyLock::new(|| {
            written(&DeliveryMove::ALL, |m| {
                in_list(m.from().iter().map(|s| s.as_str()))
            })
        });
        lookup(&GUARDS, self)
    }
}

/// Every way a campaign changes state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CampaignMove {
    Launch,
    /// An operator's `campaign pause`, or the dispatcher's breaker.
    Pause,
    Resume,
    Cancel,
    /// Every delivery reached a state no worker will touch again.
    Complete,
    /// `reconcile --resend` put rows back in the queue of a completed campaign.
    Reopen,
}

impl CampaignMove {
    pub const ALL: [CampaignMove; 6] = [
        Self::Launch,
        Self::Pause,
        Self::Resume,
        Self::Cancel,
        Self::Complete,
        Self::Reopen,
    ];

    pub const fn from(self) -> &'static [CampaignState] {
        use CampaignState::*;
        match self {
            // Once: a second `send` (or worker) finds it running and joins it.
            Self::Launch => &[Draft],
            Self::Pause | Self::Complete => &[Running],
            Self::Resume => &[Paused],
            Self::Cancel => &[Draft, Running, Paused],
            Self::Reopen => &[Completed],
        }
    }

    pub const fn to(self) -> CampaignState {
        match self {
            Self::Launch | Self::Resume | Self::Reopen => CampaignState::Running,
            Self::Pause => CampaignState::Paused,
            Self::Cancel => CampaignState::Cancelled,
            Self::Complete => CampaignState::Completed,
        }
    }

    /// The operator's word for it, in messages and in the audit log.
    pub const fn verb(self) -> &'static str {
        match self {
            Self::Launch => "launch",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
            Self::Complete => "complete",
            Self::Reopen => "reopen",
        }
    }

    pub fn guard(self) -> &'static str {
        static GUARDS: LazyLock<Vec<(CampaignMove, String)>> = LazyLock::new(|| {
            written(&CampaignMove::ALL, |m| {
                in_list(m.from().iter().map(|s| s.as_str()))
            })
        });
        lookup(&GUARDS, self)
    }

    /// The one statement of this move: `$1` campaign id, `$2` reason, `$3` now (ms). The same
    /// text on SQLite and PostgreSQL.
    pub fn statement(self) -> &'static str {
        static STATEMENTS: LazyLock<Vec<(CampaignMove, String)>> = LazyLock::new(|| {
            written(&CampaignMove::ALL, |m| {
                let stamps = match m {
                    // The launch copies the list in chunks from here (`launch_after`).
                    CampaignMove::Launch => {
                        ", launched_ms = COALESCE(launched_ms, $3), launch_after = 0"
                    }
                    CampaignMove::Complete => ", completed_ms = $3",
                    CampaignMove::Reopen => ", completed_ms = NULL",
                    _ => "",
                };
                // A campaign whose launch is still copying its list is not complete, however
                // empty its queue looks.
                let launched = match m {
                    CampaignMove::Complete => " AND launch_after IS NULL",
                    _ => "",
                };
                format!(
                    "UPDATE campaigns SET state = '{}', state_reason = $2{stamps}
                     WHERE id = $1 AND {}{launched}",
                    m.to().as_str(),
                    m.guard()
                )
            })
        });
        lookup(&STATEMENTS, self)
    }
}

/// The per-number cap's hold ([`DeliveryMove::HoldForCap`]) as one statement for both
/// backends: rows selected by `rows` (the backend's id-list filter) whose number had a message
/// from another campaign within the cap go back to the queue until the cap allows. "Had a
/// message" counts rows submitted within the cap, rows in flight right now, and rows in doubt
/// whose last try was within the cap: any of them may have reached the phone. `cap` and `now`
/// are the statement's placeholders for the cap (ms) and the current time; `extra` is added to
/// the SET list.
pub fn cap_hold_sql(rows: &str, cap: &str, now: &str, extra: &str) -> String {
    let other = "FROM deliveries o WHERE o.msisdn = deliveries.msisdn
                     AND o.campaign_id <> deliveries.campaign_id";
    let last_out = format!("(SELECT MAX(o.submitted_ms) {other})");
    format!(
        "UPDATE deliveries SET {extra}
             next_attempt_ms = CASE WHEN COALESCE({last_out}, 0) + {cap} > {now} + 60000
                                    THEN {last_out} + {cap} ELSE {now} + 60000 END,
             last_error = 'per-number cap: this number had a message from another campaign less than '
                          || ({cap} / 3600000) || ' h ago (or one may be on its way); waiting'
         WHERE {rows} AND {guard}
           AND EXISTS (SELECT 1 {other}
                       AND (o.submitted_ms > {now} - {cap}
                            OR o.state = 'sending'
                            OR (o.state = 'unknown'
                                AND EXISTS (SELECT 1 FROM attempts a WHERE a.delivery_id = o.id
                                            AND a.started_ms > {now} - {cap}))))",
        guard = DeliveryMove::HoldForCap.guard()
    )
}

/// A campaign move the table does not allow from the campaign's current state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub campaign: i64,
    pub attempted: CampaignMove,
    /// The state the campaign was found in (`None`: no such campaign).
    pub found: Option<CampaignState>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.found {
            None => write!(f, "there is no campaign #{}", self.campaign),
            Some(found) => {
                let allowed: Vec<&str> = self.attempted.from().iter().map(|s| s.as_str()).collect();
                write!(
                    f,
                    "campaign #{} is {}: it cannot {} (only a campaign that is {} can)",
                    self.campaign,
                    found.as_str(),
                    self.attempted.verb(),
                    allowed.join(" or ")
                )?;
                match (found, self.attempted) {
                    (CampaignState::Draft, CampaignMove::Pause | CampaignMove::Resume) => write!(
                        f,
                        "; a draft has not started: `smscast send` launches it, `campaign cancel` drops it"
                    ),
                    (CampaignState::Paused, CampaignMove::Launch) => {
                        write!(
                            f,
                            "; resume it first: `smscast campaign resume #{}`",
                            self.campaign
                        )
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for Refused {}

/// The text `write` makes for each move, computed once.
fn written<M: Copy>(all: &[M], write: impl Fn(M) -> String) -> Vec<(M, String)> {
    all.iter().map(|m| (*m, write(*m))).collect()
}

fn lookup<M: PartialEq>(texts: &'static [(M, String)], m: M) -> &'static str {
    texts
        .iter()
        .find(|(k, _)| *k == m)
        .map(|(_, t)| t.as_str())
        .expect("every move has its text")
}

fn in_list<'a>(states: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = states.map(|s| format!("'{s}'")).collect();
    format!("state IN ({})", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_move_leaves_a_final_state() {
        for m in DeliveryMove::ALL {
            for s in m.from() {
                assert!(!s.is_final(), "{m:?} leaves the final state {s:?}");
            }
        }
    }

    #[test]
    fn receipts_never_touch_rows_that_did_not_go_out() {
        for m in [DeliveryMove::ReceiptEnroute, DeliveryMove::ReceiptFinal] {
            for s in [
                DeliveryState::Queued,
                DeliveryState::Claimed,
                DeliveryState::Sending,
            ] {
                assert!(!m.from().contains(&s), "{m:?} may move a {s:?} row");
            }
        }
    }

    #[test]
    fn only_the_carrier_path_touches_handed_rows() {
        for m in DeliveryMove::ALL {
            let carrier_path = matches!(
                m,
                DeliveryMove::HandOver | DeliveryMove::CarrierResult | DeliveryMove::CarrierPending
            );
            if !carrier_path {
                assert!(
                    !m.from().contains(&DeliveryState::Handed),
                    "{m:?} may move a handed row"
                );
                assert!(
                    !m.to().contains(&DeliveryState::Handed),
                    "{m:?} may hand a row over"
                );
            }
        }
        assert_eq!(DeliveryMove::HandOver.guard(), "state IN ('queued')");
    }

    #[test]
    fn guards_are_sql_in_lists() {
        assert_eq!(
            DeliveryMove::ReceiptFinal.guard(),
            "state IN ('submitted', 'unknown')"
        );
        assert_eq!(
            CampaignMove::Cancel.guard(),
            "state IN ('draft', 'running', 'paused')"
        );
        assert!(
            CampaignMove::Pause
                .statement()
                .contains("SET state = 'paused'")
        );
    }
}
