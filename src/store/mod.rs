//! The store: every durable fact smscast keeps, behind role traits, each what one part of
//! smscast uses: [`Lists`], [`Campaigns`], [`Queue`] (the dispatcher's), [`Carriers`],
//! [`Receipts`], [`Audit`] and [`Reports`]. [`Store`] is every role (object-safe: the CLI
//! picks a backend once, from the database URL, and holds an `Arc<dyn Store>`); the
//! dispatcher holds a [`Worker`]: the queue, its campaign and the audit log. Each backend lives in its own module with its
//! own migrations folder (`migrations/<backend>/`, same file names). SQL is always
//! parameterised; the statements sit in small functions named for their intent.

mod campaigns;
pub mod contract;
pub mod handover;
mod import_record;
mod postgres;
mod queue;
mod receipts;
mod reference;
mod report_query;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use serde::Serialize;

pub use contract::{CampaignMove, DeliveryMove, DeliveryState, Refused};
pub use handover::{CarrierResult, CarrierStatus, HandedRow, ResultEffect};
pub use postgres::PostgresStore;
pub use reference::{ReferenceCheck, References};
pub use sqlite::{SqliteStore, configure_library as configure_sqlite};

/// Milliseconds since the Unix epoch, the one time unit of the store.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// How a command intends to use the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// Auditors' commands: the connection itself refuses writes.
    ReadOnly,
}

/// Opens the store named by `url`: `postgres://…` (or `postgresql://…`) for the shared
/// database many workers use, else `sqlite://path` or a bare path. Migrations are applied on
/// first use when `access` allows writing (creating the SQLite file; the PostgreSQL database
/// itself must exist).
pub async fn open(url: &str, access: Access) -> Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if is_postgres(url) {
        Arc::new(
            PostgresStore::open(url, access)
                .await
                .with_context(|| format!("Failed to open the database {}", redact_url(url)))?,
        )
    } else {
        Arc::new(
            SqliteStore::open(url, access)
                .await
                .with_context(|| format!("Failed to open the database {}", redact_url(url)))?,
        )
    };
    Ok(store)
}

/// The file a SQLite database URL names (`None` for PostgreSQL and `:memory:`).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if is_postgres(url) {
        return None;
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    (path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// An error the database gave, said in words the user can act on (`None`: nothing to add).
/// A full disk is the case that matters: SQLite's "database or disk is full" (code 13) or
/// PostgreSQL's `53100`.
pub fn explain(err: &anyhow::Error, url: &str) -> Option<String> {
    let db = err.chain().find_map(|e| {
        e.downcast_ref::<sqlx::Error>()
            .and_then(|e| e.as_database_error())
    })?;
    let code = db.code()?;
    let full = code == "13" || code == "53100" || db.message().contains("disk is full");
    full.then(|| match sqlite_file(url) {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            format!(
                "disk full: free space on the disk holding {} (the database {}), then run the command again; what was recorded before this is kept, and what failed was not recorded",
                dir.display(),
                path.display()
            )
        }
        None => "disk full on the database server: free space there, then run the command again; what was recorded before this is kept".to_string(),
    })
}

/// Whether a store error may pass if the same call is made again: a busy or locked SQLite
/// file, a pool that timed out, a broken connection, or PostgreSQL's serialization failures,
/// deadlocks and shutdowns of a fail-over.
pub fn is_transient(err: &anyhow::Error) -> bool {
    err.chain().any(|e| match e.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed) => true,
        Some(sqlx::Error::Database(d)) => d.code().is_some_and(|c| {
            matches!(
                c.as_ref(),
                "5" | "6" | "517" | "40001" | "40P01" | "57P01" | "57P02" | "57P03"
            ) || c.starts_with("08")
        }),
        _ => false,
    })
}

/// `?mode=ro` in a database URL makes every command on it read-only, whatever it asks for (an
/// auditor's environment can be set up so), on SQLite and PostgreSQL alike: the connections
/// are opened as the auditors' commands open theirs. The mode's case does not matter. A mode
/// that is neither read-only nor the default (`rw`, `rwc`) is refused, never ignored: an
/// auditor who mistypes it must not get a session that writes. On SQLite, whose connection
/// options smscast sets itself, any other parameter is refused too, by name only (its value may
/// be a secret); on PostgreSQL the others are the server's connection parameters.
///
/// Returns whether the URL asks for read-only, and the URL without its `mode` (smscast's, not
/// a parameter the PostgreSQL driver knows: left in, it warns on every command).
fn url_mode(url: &str) -> Result<(bool, String)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((false, url.to_string()));
    };
    let mut read_only = false;
    let mut kept = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        if key.eq_ignore_ascii_case("mode") {
            match value.to_ascii_lowercase().as_str() {
                "ro" => read_only = true,
                "rw" | "rwc" => {}
                _ => bail!(
                    "the database URL asks for mode={value}, which smscast does not know: write ?mode=ro for a read-only session, or leave the mode out"
                ),
            }
        } else if !is_postgres(url) {
            bail!(
                "the SQLite database URL has a parameter `{key}` that smscast does not use: remove it (the only one understood is ?mode=ro, for a read-only session)"
            );
        } else {
            kept.push(param);
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((read_only, rest))
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A database URL with any password replaced, for messages: `USER:PASSWORD@` whatever the
/// scheme (a mistyped `postgress://` too) or with none (a bare path), and `password=` in
/// the query. Ambiguous input is redacted too much rather than too little: the password
/// runs from the first `:` after the scheme to the *last* `@` (passwords hold `@`, `?` and
/// `#` unencoded more often than hosts and paths hold `@`).
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = split_scheme(url);
    let (userinfo, tail) = match rest.rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => (format!("{}:****@", &rest[..colon]), &rest[at + 1..]),
            None => (rest[..=at].to_string(), &rest[at + 1..]),
        },
        None => (String::new(), rest),
    };
    format!("{scheme}{userinfo}{}", redact_password_params(tail))
}

/// `scheme://` and the rest; no scheme for a bare path (or a Windows drive `C:\`).
fn split_scheme(url: &str) -> (&str, &str) {
    match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    }
}

/// The URL's password (between the user and the last `@`), if it has one.
fn url_password(url: &str) -> Option<&str> {
    let (_, rest) = split_scheme(url);
    let at = rest.rfind('@')?;
    let colon = rest[..at].find(':')?;
    Some(&rest[colon + 1..at]).filter(|p| !p.is_empty())
}

/// `password=…` (also `sslpassword=`, `pass=`, `pwd=`, `key=`, `secret=`, `token=`) values
/// replaced by `****`, in a URL query or anywhere in a text.
fn redact_password_params(text: &str) -> String {
    // `key=`: SQLCipher's key in a SQLite URL (and any `…key=`, a file name at worst).
    const KEYS: [&str; 6] = ["password=", "pass=", "pwd=", "key=", "secret=", "token="];
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hit = KEYS
            .iter()
            .filter_map(|k| lower[i..].find(k).map(|at| (i + at, k.len())))
            .min();
        let Some((at, len)) = hit else { break };
        let value = at + len;
        let end = text[value..]
            .find(['&', ' ', '\'', '"', '\n'])
            .map_or(text.len(), |e| value + e);
        out.push_str(&text[i..value]);
        if end > value {
            out.push_str("****");
        }
        i = end;
    }
    out.push_str(&text[i..]);
    out
}

/// `text` (an error message, a log line) with every trace of `url`'s secrets removed: the
/// URL itself and its form without the scheme (a SQLite path) redacted, `USER:PASSWORD@`,
/// `password=…`, and the password itself (when it is long enough not to be part of words:
/// 4 characters or more), also percent-decoded.
pub fn redact_secrets(text: &str, url: &str) -> String {
    let mut out = text.replace(url, &redact_url(url));
    let (_, rest) = split_scheme(url);
    if !rest.is_empty() {
        out = out.replace(rest, split_scheme(&redact_url(url)).1);
    }
    out = redact_password_params(&out);
    if let Some(pw) = url_password(url) {
        let decoded: String = form_urlencoded::parse(format!("p={pw}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        for secret in [pw, decoded.as_str()] {
            if secret.chars().count() >= 4 {
                out = out.replace(secret, "****");
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/// One valid row as an import stages it (batches keep the file's order).
#[derive(Clone, Debug)]
pub struct NewSubscriber {
    pub msisdn: crate::msisdn::Msisdn,
    pub carrier: &'static str,
    /// The carrier was named by the source (`--carrier`, a carrier column), not guessed from
    /// the prefix: it replaces the carrier of a number already known. A carrier from the
    /// prefix never replaces one (it may be the number's original carrier only).
    pub carrier_from_source: bool,
    /// Canonical (or unrecognised) district name, shared by every row that spells it.
    pub district: Option<Arc<str>>,
    /// JSON object of the row's extra columns.
    pub attributes: Option<String>,
}

/// What an import did, as stored in `imports` and shown to the user.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportCounts {
    pub import_id: i64,
    pub staged: u64,
    pub imported: u64,
    pub already_present: u64,
    pub duplicates_in_file: u64,
    /// Numbers already known whose carrier this import changed (the source named another
    /// carrier than the one stored: a list from a carrier, a carrier column).
    pub carrier_changed: u64,
}

#[derive(Clone, Debug)]
pub struct ImportMeta {
    pub list: String,
    pub file_name: String,
    pub sha256: String,
    pub rows_read: u64,
    pub rejected: u64,
    pub legacy_converted: u64,
    /// Rows whose number came earlier in the file (found before the rows reach the store).
    pub duplicates_in_file: u64,
    pub operator: String,
}

/// A previous import of the same file into the same list.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct PreviousImport {
    #[sqlx(rename = "id")]
    pub import_id: i64,
    pub created_ms: i64,
    pub imported: i64,
}

/// One import into one list, inside one transaction: nothing is visible until
/// [`ImportSession::commit`]; dropping the session imports nothing.
#[async_trait]
pub trait ImportSession: Send {
    /// Adds a batch of rows (in file order) to the list; the first row of a number wins.
    async fn stage(&mut self, rows: &[NewSubscriber]) -> Result<()>;
    async fn commit(self: Box<Self>, meta: &ImportMeta) -> Result<ImportCounts>;
}

#[derive(Clone, Debug, Serialize)]
pub struct ListSummary {
    pub id: i64,
    pub name: String,
    pub members: i64,
    pub by_carrier: Vec<(String, i64)>,
    pub by_district: Vec<(String, i64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CampaignState {
    Draft,
    Running,
    Paused,
    Completed,
    Cancelled,
}

impl TryFrom<String> for CampaignState {
    type Error = anyhow::Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl CampaignState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "draft" => Self::Draft,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "completed" => Self::Completed,
            "cancelled" => Self::Cancelled,
            other => bail!("unknown campaign state {other:?} in the database"),
        })
    }
}

/// How a user named a campaign: `#12` is always the id; a name is never all digits (see
/// [`check_campaign_name`]), so a bare number is the id too, unless a campaign made before
/// that rule carries it as its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CampaignKey<'a> {
    Id(i64),
    Name(&'a str),
    /// All digits: the legacy name if one exists, else the id.
    NameOrId(&'a str, i64),
}

impl<'a> CampaignKey<'a> {
    pub fn parse(key: &'a str) -> Self {
        if let Some(id) = key.strip_prefix('#').and_then(|n| n.parse().ok()) {
            return Self::Id(id);
        }
        match key.parse() {
            Ok(id) if key.bytes().all(|b| b.is_ascii_digit()) => Self::NameOrId(key, id),
            _ => Self::Name(key),
        }
    }
}

/// Refuses names that cannot be told from an id or that would garble a terminal: empty or
/// blank, all digits, a leading `#`, control characters (newline, ESC, …), over 100 characters.
pub fn check_campaign_name(name: &str) -> Result<()> {
    let what = if name.trim().is_empty() {
        "is empty"
    } else if name.chars().all(|c| c.is_ascii_digit()) {
        "is all digits, which reads as a campaign id (#N); add a word, e.g. \"thang6-2022\""
    } else if name.starts_with('#') {
        "starts with '#', which marks a campaign id"
    } else if name.chars().any(char::is_control) {
        "contains a control character (newline, tab, escape…)"
    } else if name.chars().count() > 100 {
        "is longer than 100 characters"
    } else if name != name.trim() {
        "starts or ends with a space"
    } else {
        return Ok(());
    };
    bail!(
        "the campaign name {:?} {what}: choose a name of letters, digits, spaces and dashes",
        name.escape_debug().to_string()
    )
}

// Statements both backends run as written.
/// Makes this database's reference key on first use (`$1` key, `$2` now).
pub(crate) const REFERENCE_KEY_INSERT: &str =
    "INSERT INTO settings (name, value, created_ms) VALUES ('reference_key', $1, $2)
     ON CONFLICT (name) DO NOTHING";
pub(crate) const REFERENCE_KEY_SELECT: &str =
    "SELECT value, created_ms FROM settings WHERE name = 'reference_key'";

/// A campaign as created: the message is a snapshot of exactly what is sent.
#[derive(Clone, Debug, Serialize)]
pub struct NewCampaign {
    pub name: String,
    pub list: String,
    pub message_text: String,
    pub encoding: String,
    pub segments: i64,
    pub characters: i64,
    pub sender: String,
    pub gateway: String,
    pub rate: f64,
    pub window_start: i64,
    pub window_end: i64,
    pub starts_ms: Option<i64>,
    pub ends_ms: Option<i64>,
    pub max_attempts: i64,
    /// At most one message per number per this many hours, across campaigns (0 = no cap).
    pub cap_hours: i64,
    pub created_by: String,
}

/// A `campaigns` row joined with its list's name (`list_name`).
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Campaign {
    pub id: i64,
    pub name: String,
    pub list_id: i64,
    #[sqlx(rename = "list_name")]
    pub list: String,
    pub message_text: String,
    pub encoding: String,
    pub segments: i64,
    pub characters: i64,
    pub sender: String,
    pub gateway: String,
    pub rate: f64,
    pub window_start: i64,
    pub window_end: i64,
    pub starts_ms: Option<i64>,
    pub ends_ms: Option<i64>,
    pub max_attempts: i64,
    pub cap_hours: i64,
    #[sqlx(try_from = "String")]
    pub state: CampaignState,
    pub state_reason: Option<String>,
    pub created_by: String,
    pub created_ms: i64,
    pub launched_ms: Option<i64>,
    /// Launched, but its deliveries are still being created from the list in chunks (the
    /// last member copied so far); `None` once every member is there.
    pub launch_after: Option<i64>,
    pub completed_ms: Option<i64>,
}

/// Delivery states. `Delivered`, `Failed`, `Expired` and `Rejected` are final.
pub mod state {
    pub const QUEUED: &str = "queued";
    /// Claimed by a worker, request not yet sent: safe to give back on a crash.
    pub const CLAIMED: &str = "claimed";
    /// The request may be on the wire: in doubt if the worker dies now.
    pub const SENDING: &str = "sending";
    pub const SUBMITTED: &str = "submitted";
    pub const DELIVERED: &str = "delivered";
    pub const FAILED: &str = "failed";
    pub const EXPIRED: &str = "expired";
    pub const REJECTED: &str = "rejected";
    pub const UNKNOWN: &str = "unknown";
    pub const SUPPRESSED: &str = "suppressed";
    /// Handed to a carrier that sends it itself; awaiting the carrier's results.
    pub const HANDED: &str = "handed";
    /// Every state, in report order.
    pub const ALL: [&str; 11] = [
        QUEUED, CLAIMED, SENDING, SUBMITTED, DELIVERED, FAILED, EXPIRED, REJECTED, UNKNOWN,
        SUPPRESSED, HANDED,
    ];
}

/// A delivery handed to a worker.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub msisdn: String,
    pub carrier: String,
    pub district: Option<String>,
    pub attempts: i64,
    /// The text for this recipient when the campaign is personalised (filled by the dispatcher).
    #[sqlx(default)]
    pub text: Option<String>,
}

/// A list member's values for message placeholders.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MemberFields {
    #[sqlx(rename = "id")]
    pub subscriber_id: i64,
    pub msisdn: String,
    pub district: Option<String>,
    pub attributes: Option<String>,
}

/// A group of claimed rows to mark in flight (see [`Queue::mark_in_flight`]).
#[derive(Clone, Debug, Default)]
pub struct Mark {
    pub ids: Vec<i64>,
    /// The campaign's per-number cap, in ms (0: none).
    pub cap_ms: i64,
    pub lease_until_ms: i64,
}

/// What happened to one submission try; recorded with its `attempts` row.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub delivery_id: i64,
    pub attempt_no: i64,
    pub started_ms: i64,
    pub latency_ms: i64,
    pub http_status: Option<i64>,
    pub gateway: String,
    pub gateway_code: Option<String>,
    pub kind: OutcomeKind,
    pub error: Option<String>,
    /// The personalised text that was sent (None: the campaign's text).
    pub text: Option<String>,
}

#[derive(Clone, Debug)]
pub enum OutcomeKind {
    Submitted {
        gateway_id: String,
    },
    /// Transient: back to the queue, due again at `next_attempt_ms`.
    Retry {
        next_attempt_ms: i64,
    },
    /// Transient, but out of attempts: `failed`.
    GaveUp,
    Rejected,
    /// The request went out and no answer came back: the gateway may have taken it.
    InDoubt,
}

impl Outcome {
    /// What settling this outcome writes on its row: the state, the gateway's id, when the
    /// next try is due, and the final time (`now` for a final state).
    pub(crate) fn settles_to(
        &self,
        now: i64,
    ) -> (&'static str, Option<&str>, Option<i64>, Option<i64>) {
        match &self.kind {
            OutcomeKind::Submitted { gateway_id } => ("submitted", Some(gateway_id), None, None),
            OutcomeKind::Retry { next_attempt_ms } => {
                ("queued", None, Some(*next_attempt_ms), None)
            }
            OutcomeKind::GaveUp => ("failed", None, None, Some(now)),
            OutcomeKind::Rejected => ("rejected", None, None, Some(now)),
            OutcomeKind::InDoubt => ("unknown", None, None, None),
        }
    }
}

impl OutcomeKind {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Submitted { .. } => "submitted",
            Self::Retry { .. } => "retry",
            Self::GaveUp => "gave_up",
            Self::Rejected => "rejected",
            Self::InDoubt => "in_doubt",
        }
    }
}

/// Members copied from the list into deliveries per launch transaction: big enough that a
/// launch is a few dozen commits per million, small enough that the first messages go out
/// within a second of `send` and a launch interrupted anywhere resumes where it stopped.
pub const LAUNCH_CHUNK: i64 = 50_000;

/// One chunk of a launch: the deliveries it created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LaunchChunk {
    pub queued: u64,
    pub suppressed: u64,
    /// This chunk was the list's last: every member has its delivery.
    pub done: bool,
}

/// What asking to copy the next chunk of a launch found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaunchProgress {
    Copied(LaunchChunk),
    /// Another worker is copying a chunk right now.
    Busy,
    /// Every member has its delivery (or the campaign was never launched).
    Done,
}

/// What crash recovery found for a campaign.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Recovered {
    /// Claimed by a dead worker but never sent: back in the queue.
    pub requeued: u64,
    /// Possibly sent by a dead worker: resent with the same reference (the gateway dedups).
    pub resend: u64,
    /// Possibly sent, gateway cannot dedup: marked `unknown` for `smscast reconcile`.
    pub unknown: u64,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct WorkerInfo {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub started_ms: i64,
    pub heartbeat_ms: i64,
    pub sent: i64,
    pub stopped_ms: Option<i64>,
    /// The process as its machine recognises it (`boot:pidns:pid:start`), if known.
    pub process: Option<String>,
}

/// Tokens handed out by a shared rate budget.
#[derive(Clone, Copy, Debug)]
pub struct RateGrant {
    pub granted: u32,
    /// Tokens still in the bucket after this grant (fractional: it refills continuously).
    pub tokens_left: f64,
}

/// One row of the hash-chained operator log.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Every event for one number, in time order.
#[derive(Clone, Debug, Serialize)]
pub struct LookupEvent {
    pub at_ms: i64,
    pub campaign: String,
    pub delivery_id: i64,
    pub kind: String,
    pub detail: String,
}

/// Which deliveries a report covers. Every figure of the report (attempts and latencies
/// included) is about exactly these deliveries.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReportFilter {
    /// One campaign, or `None` for every campaign (with `since`/`until`: a period's report).
    pub campaign_id: Option<i64>,
    pub carrier: Option<String>,
    pub district: Option<String>,
    /// Any of these states (empty: all).
    pub states: Vec<String>,
    /// A delivery's time is when it was submitted, else when it reached a final state, else
    /// when its campaign was launched (suppressed and never-sent rows). UTC ms, inclusive.
    pub since_ms: Option<i64>,
    /// Exclusive.
    pub until_ms: Option<i64>,
}

impl ReportFilter {
    pub fn campaign(id: i64) -> Self {
        Self {
            campaign_id: Some(id),
            ..Self::default()
        }
    }

    /// Only the campaign is constrained (the report's fast path).
    pub fn is_campaign_only(&self) -> bool {
        self.carrier.is_none()
            && self.district.is_none()
            && self.states.is_empty()
            && self.since_ms.is_none()
            && self.until_ms.is_none()
    }
}

/// Deliveries counted by campaign, carrier, district and state.
#[derive(Clone, Debug, Serialize)]
pub struct CubeRow {
    pub campaign_id: i64,
    pub carrier: String,
    pub district: Option<String>,
    pub state: String,
    pub count: i64,
}

/// Submitted deliveries counted by Vietnam hour, carrier and (current) state.
#[derive(Clone, Debug, Serialize)]
pub struct HourRow {
    pub campaign_id: i64,
    /// Hours since 1970-01-01 00:00 Vietnam time: `(submitted_ms + 7 h) / 1 h`.
    pub hour: i64,
    pub carrier: String,
    pub state: String,
    pub count: i64,
}

/// Tries that did not succeed, by outcome and gateway answer.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorCodeRow {
    pub outcome: String,
    pub http_status: Option<i64>,
    pub code: Option<String>,
    pub count: i64,
}

/// Raw aggregates a report is computed from: small, whatever the number of deliveries.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReportData {
    pub cube: Vec<CubeRow>,
    pub hours: Vec<HourRow>,
    /// (state, error text or `None`, count) for rejected, failed, expired and unknown rows.
    pub errors: Vec<(String, Option<String>, i64)>,
    pub error_codes: Vec<ErrorCodeRow>,
    /// (outcome, count) over every attempt
    pub attempts_by_outcome: Vec<(String, i64)>,
    /// (latency ms, count) of successful submissions, ascending.
    pub latency_histogram: Vec<(i64, i64)>,
    /// (final_ms - submitted_ms, count) of rows finalised by a receipt, ascending.
    pub receipt_delay_histogram: Vec<(i64, i64)>,
    /// Deliveries with more than one attempt that may have reached the phone twice.
    pub possible_duplicates: i64,
    pub first_submit_ms: Option<i64>,
    pub last_submit_ms: Option<i64>,
}

/// One recipient in error (or possibly sent twice), for `report --reveal`: the full number.
#[derive(Clone, Debug, Serialize)]
pub struct RecipientRow {
    pub number: String,
    pub campaign: String,
    pub carrier: String,
    pub district: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub reason: Option<String>,
    pub possible_duplicate: bool,
}

// ---------------------------------------------------------------------------------------------
// The interface
// ---------------------------------------------------------------------------------------------

/// Lists and subscribers: imports, opt-outs, members (src/import.rs, `subscribers`, `lists`).
#[async_trait]
pub trait Lists: Send + Sync {
    /// Starts an import into `list` (created if new).
    async fn begin_import(&self, list: &str) -> Result<Box<dyn ImportSession>>;
    async fn previous_import(&self, list: &str, sha256: &str) -> Result<Option<PreviousImport>>;
    async fn lists(&self) -> Result<Vec<ListSummary>>;
    async fn list_size(&self, list: &str) -> Result<Option<i64>>;
    /// A page of a list's members with their placeholder values, by subscriber id.
    async fn list_members_page(
        &self,
        list: &str,
        after_subscriber_id: i64,
        limit: u32,
    ) -> Result<Vec<MemberFields>>;
    /// Adds numbers to the opt-out table; returns how many were new.
    async fn add_opt_outs(&self, msisdns: &[String], source: &str) -> Result<u64>;
    async fn remove_opt_outs(&self, msisdns: &[String]) -> Result<u64>;
}

/// Campaigns: created, looked up, moved through the transition table, launched, counted,
/// reconciled.
#[async_trait]
pub trait Campaigns: Send + Sync {
    async fn create_campaign(&self, c: &NewCampaign) -> Result<i64>;
    /// By numeric id or by name.
    async fn campaign(&self, key: &str) -> Result<Option<Campaign>>;
    async fn campaigns(&self) -> Result<Vec<Campaign>>;
    /// Moves the campaign as the transition table allows (see [`contract`]), in one statement
    /// that checks the current state; a move the table does not allow from it is refused with
    /// a [`Refused`] error and changes nothing.
    async fn move_campaign(&self, id: i64, m: CampaignMove, reason: Option<&str>) -> Result<()>;
    /// Launches a draft ([`CampaignMove::Launch`]): marks it running and creates the deliveries
    /// of its first `chunk` list members (opt-outs as `suppressed`), in one transaction; the
    /// rest follow with [`Campaigns::continue_launch`], while the first are sent. `None` when
    /// another process launched it first (it is running: join it). Any other state is
    /// refused.
    async fn begin_launch(&self, campaign_id: i64, chunk: i64) -> Result<Option<LaunchChunk>>;
    /// Creates the deliveries of the next `chunk` members of a launch in progress, in one
    /// transaction; one worker at a time (the others are told [`LaunchProgress::Busy`]).
    async fn continue_launch(&self, campaign_id: i64, chunk: i64) -> Result<LaunchProgress>;
    /// Launches a draft and creates every delivery before returning: (queued, suppressed), or
    /// `None` when another process launched it first.
    async fn launch(&self, campaign_id: i64) -> Result<Option<(u64, u64)>> {
        let Some(first) = self.begin_launch(campaign_id, LAUNCH_CHUNK).await? else {
            return Ok(None);
        };
        let (mut queued, mut suppressed, mut done) = (first.queued, first.suppressed, first.done);
        while !done {
            match self.continue_launch(campaign_id, LAUNCH_CHUNK).await? {
                LaunchProgress::Copied(c) => {
                    queued += c.queued;
                    suppressed += c.suppressed;
                    done = c.done;
                }
                LaunchProgress::Busy => tokio::time::sleep(Duration::from_millis(50)).await,
                LaunchProgress::Done => done = true,
            }
        }
        Ok(Some((queued, suppressed)))
    }
    async fn state_counts(&self, campaign_id: i64) -> Result<Vec<(String, i64)>>;
    /// Queued rows of the campaign the per-number cap holds back now (the dispatcher found
    /// another campaign's message to the same number within the cap and set them aside,
    /// saying so in `last_error`), and when the last of them falls due.
    async fn held_by_cap(&self, campaign_id: i64) -> Result<(i64, Option<i64>)>;
    /// Queued messages of the campaign whose number had a message from another campaign
    /// within `cap_ms` (submitted, in flight, or in doubt): what the per-number cap will hold
    /// back. Said at launch, before any row is marked.
    async fn cap_conflicts(&self, campaign_id: i64, cap_ms: i64) -> Result<i64>;
    /// `unknown` rows → `queued` (resend) or `failed` (give up). Returns how many.
    async fn reconcile(&self, campaign_id: i64, resend: bool) -> Result<u64>;
}

/// The queue as a sending worker works it (src/dispatch/): workers and their leases, claims,
/// the write cycle, release and recovery, what is due, the shared rate budget.
#[async_trait]
pub trait Queue: Send + Sync {
    /// `process`: the worker's process fingerprint (src/dispatch/liveness.rs), when known.
    async fn register_worker(
        &self,
        id: &str,
        campaign_id: i64,
        host: &str,
        pid: i64,
        process: Option<&str>,
    ) -> Result<()>;
    /// Renews this worker's leases and heartbeat.
    async fn heartbeat(&self, worker: &str, lease_until_ms: i64) -> Result<()>;
    async fn stop_worker(&self, worker: &str) -> Result<()>;
    async fn workers(&self, campaign_id: i64) -> Result<Vec<WorkerInfo>>;
    /// Gives rows of dead workers back: `claimed` → `queued`; `sending` → `queued` for a resend
    /// with the same reference when `gateway_dedups`, else `unknown`. A worker is dead when its
    /// lease expired or, on this host, its process is gone (`dead_local` lists those ids).
    async fn recover(
        &self,
        campaign_id: i64,
        now_ms: i64,
        dead_workers: &[String],
        gateway_dedups: bool,
    ) -> Result<Recovered>;
    /// Up to `limit` of the campaign's rows for `carrier` due at `now_ms`, in queue order
    /// (next due time, then id). Each carrier is claimed apart, so that each carrier's
    /// gateway keeps its own pace (see migrations/sqlite/0010_queue_by_carrier.sql).
    async fn claim(
        &self,
        campaign_id: i64,
        carrier: &str,
        worker: &str,
        limit: u32,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Vec<Claimed>>;
    /// One commit of the dispatcher's cycle: records `outcomes` (as [`Queue::record`]), then
    /// marks the group `mark` in flight (as [`Queue::mark_in_flight`]). The outcomes' rows
    /// leave `sending` in the same commit as the next group's rows enter it, so the rows in
    /// flight stay within the send permits, and the cycle costs one commit, not two.
    /// Returns the stale outcomes and the rows marked.
    async fn write_cycle(
        &self,
        worker: &str,
        outcomes: &[Outcome],
        mark: Option<&Mark>,
    ) -> Result<(u64, Vec<(i64, i64)>)>;
    /// Claimed rows → `sending` (durably, leased until `lease_until_ms`) just before the
    /// requests go out. Rows whose number opted out since the claim become `suppressed`; rows
    /// whose number had a message from another campaign within `cap_ms` go back to the queue
    /// until the cap allows. Neither is in the returned ids, nor is a row another worker
    /// marked first. Returns each marked row with its attempt number: the fencing token its
    /// outcome must carry.
    async fn mark_in_flight(
        &self,
        worker: &str,
        ids: &[i64],
        cap_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Vec<(i64, i64)>> {
        let mark = Mark {
            ids: ids.to_vec(),
            cap_ms,
            lease_until_ms,
        };
        Ok(self.write_cycle(worker, &[], Some(&mark)).await?.1)
    }
    /// Records outcomes and their `attempts` rows in one transaction, and counts the
    /// submissions toward the worker's `sent`. An outcome settles its row only if the row is
    /// still at the attempt that produced it ([`DeliveryMove::Settle`]); returns how many
    /// outcomes were stale (kept as `attempts` rows only: another worker took the row over, or
    /// a receipt finalised it).
    async fn record(&self, worker: &str, outcomes: &[Outcome]) -> Result<u64> {
        Ok(self.write_cycle(worker, outcomes, None).await?.0)
    }
    /// Gives this worker's unsent claims of the campaign back to the queue.
    async fn release(&self, campaign_id: i64, worker: &str) -> Result<u64>;
    /// Rows marked in flight whose requests never went out (a stop came first): back to the
    /// queue, the attempt not counted.
    async fn release_unsent(&self, worker: &str, ids: &[i64]) -> Result<u64>;
    /// Earliest `next_attempt_ms` among queued rows, if any.
    async fn next_due_ms(&self, campaign_id: i64) -> Result<Option<i64>>;
    /// Marks the campaign completed when no row is queued, claimed or sending.
    async fn complete_if_done(&self, campaign_id: i64) -> Result<bool>;
    /// Rows of the campaign in flight (`claimed` or `sending`, by any worker): read from an
    /// index that holds only those rows, so it costs the same on a campaign of any size
    /// (the dispatcher polls it while its last messages finish).
    async fn in_flight_count(&self, campaign_id: i64) -> Result<i64>;
    /// Attributes (CSV extra columns, JSON) of the subscribers behind these deliveries.
    async fn delivery_attributes(&self, delivery_ids: &[i64])
    -> Result<Vec<(i64, Option<String>)>>;
    /// Our reference for a delivery, stable across retries, signed with this database's key
    /// so that references cannot be guessed; receipts carry it back.
    fn reference(&self, campaign_id: i64, delivery_id: i64) -> String;
    /// Takes up to `want` tokens from the shared token bucket `scope` (refilled at `rate` per
    /// second, holding at most `burst`), so that many workers together keep one rate. `None`:
    /// this backend serves one machine and keeps no shared budget; the local limiter is the
    /// whole story.
    async fn rate_grant(
        &self,
        scope: &str,
        rate: f64,
        burst: f64,
        want: u32,
    ) -> Result<Option<RateGrant>> {
        let _ = (scope, rate, burst, want);
        Ok(None)
    }
}

/// Carrier-run campaigns (src/store/handover.rs): a carrier's share handed over, its results
/// taken back.
#[async_trait]
pub trait Carriers: Send + Sync {
    /// The campaign's `queued` rows filed under `carrier` → `handed` to that carrier
    /// ([`DeliveryMove::HandOver`]), while the campaign is running or paused. Returns how many
    /// moved (none the second time).
    async fn hand_over(&self, campaign_id: i64, carrier: &str) -> Result<u64>;
    /// Every row ever handed to `carrier` in this campaign, whatever its state now, by id.
    async fn handed_share(&self, campaign_id: i64, carrier: &str) -> Result<Vec<HandedRow>>;
    /// A carrier's results, in file order, in one transaction: each moves its row if the
    /// table allows ([`DeliveryMove::CarrierResult`], [`DeliveryMove::CarrierPending`]), only
    /// rows handed to that carrier. One effect per result.
    async fn record_carrier_results(
        &self,
        campaign_id: i64,
        carrier: &str,
        results: &[CarrierResult],
    ) -> Result<Vec<ResultEffect>>;
}

/// Delivery receipts (src/dlr/): appended, matched, expired.
#[async_trait]
pub trait Receipts: Send + Sync {
    /// Appends every receipt as received and applies each to its message where it can, in
    /// one transaction: when this returns, the receipts are durable. A receipt never moves a
    /// message out of a final state; one whose message is not found, or whose submission is
    /// not recorded yet (`claimed`, `sending`), is kept pending.
    async fn record_receipts(&self, receipts: &[NewReceipt]) -> Result<Vec<ReceiptEffect>>;
    /// Applies pending receipts whose message can now be matched; pending receipts received
    /// before `unmatched_before_ms` that still match nothing are marked unmatched.
    async fn match_pending_receipts(&self, unmatched_before_ms: i64) -> Result<MatchedReceipts>;
    /// Messages `submitted` before `submitted_before_ms` through one of `gateways` (those that
    /// send receipts) with no final receipt → `expired`.
    async fn expire_submitted(
        &self,
        submitted_before_ms: i64,
        now_ms: i64,
        gateways: &[String],
    ) -> Result<u64>;
    async fn receipt_counts(&self) -> Result<ReceiptCounts>;
}

/// The hash-chained operator log.
#[async_trait]
pub trait Audit: Send + Sync {
    async fn audit_append(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        details: &serde_json::Value,
    ) -> Result<AuditEntry>;
    async fn audit_entries(&self) -> Result<Vec<AuditEntry>>;
}

/// Auditors' reads.
#[async_trait]
pub trait Reports: Send + Sync {
    /// The report's aggregates for the deliveries `filter` selects.
    async fn report_data(&self, filter: &ReportFilter) -> Result<ReportData>;
    /// Recipients in error (rejected, failed, expired, unknown) or possibly sent twice, with
    /// full numbers: only for `--reveal`, after its audit entry is written.
    async fn report_recipients(&self, filter: &ReportFilter) -> Result<Vec<RecipientRow>>;
    async fn lookup(&self, msisdn: &str) -> Result<Vec<LookupEvent>>;
}

/// What a sending worker uses (src/dispatch/): the queue and, of the rest, its campaign (read,
/// paused by the breaker, its launch continued) and the audit log.
pub trait Worker: Queue + Campaigns + Audit {}

impl<T: Queue + Campaigns + Audit> Worker for T {}

/// Every role of the store, as the CLI opens it (`Arc<dyn Store>`), and what only the
/// database as a whole does: its access, closing, copying, checking.
#[async_trait]
pub trait Store: Worker + Lists + Carriers + Receipts + Reports {
    /// Whether this connection refuses writes (opened read-only, or `?mode=ro` in the URL).
    fn is_read_only(&self) -> bool;
    /// Closes the connections cleanly at the end of a command (SQLite: checkpoints the
    /// write-ahead log into the file first, so the file alone is the whole record).
    async fn close(&self) {}
    /// Writes a consistent copy of the whole database to `path` (SQLite: `VACUUM INTO`,
    /// safe while other processes write).
    async fn backup_to(&self, path: &std::path::Path) -> Result<()> {
        let _ = path;
        bail!("this database cannot be copied by smscast: use the database's own backup tool")
    }
    /// SQLite's `PRAGMA integrity_check` ("ok" when whole).
    async fn integrity_check(&self) -> Result<String> {
        Ok("ok".into())
    }
}

// ---------------------------------------------------------------------------------------------
// receipts
// ---------------------------------------------------------------------------------------------

/// What a receipt says, in our words. `Enroute` is any intermediate report (accepted by the
/// SMSC, buffered, sent): it never finalises a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptStatus {
    Enroute,
    Delivered,
    Failed,
    Expired,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enroute => "enroute",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }
}

/// One receipt as received and parsed.
#[derive(Clone, Debug)]
pub struct NewReceipt {
    pub received_ms: i64,
    /// The gateway's name in `smscast.toml`.
    pub gateway: String,
    /// Our reference (`smscast-{campaign}-{delivery}`), when the callback carries it.
    pub reference: Option<String>,
    pub gateway_id: Option<String>,
    /// The part of a multi-part message this receipt is about (Kannel: the SMSC's message id
    /// of the part, `%F`); `None`: the receipt is about the whole message.
    pub part: Option<String>,
    pub status: ReceiptStatus,
    /// The gateway's own status word or code.
    pub gateway_status: String,
    pub error_code: Option<String>,
    /// The receipt as received (secrets removed).
    pub raw: String,
}

/// What storing one receipt did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptEffect {
    /// The message's state changed.
    Applied,
    /// Matched, but the message is already final (or the receipt is intermediate).
    NoChange,
    /// A delivered part of a multi-part message, recorded; other parts are still awaited.
    AwaitingParts,
    /// Kept until its message can be matched.
    Pending,
    /// Names a message this receipt may not move: it went out through another gateway, or
    /// never went out. Kept and counted; nothing changed.
    Refused,
}

impl ReceiptEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::NoChange => "no_change",
            Self::AwaitingParts => "awaiting_parts",
            Self::Pending => "pending",
            Self::Refused => "refused",
        }
    }
}

/// What one pass over the pending receipts did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct MatchedReceipts {
    pub applied: u64,
    pub no_change: u64,
    pub still_pending: u64,
    pub unmatched: u64,
    /// Matched a message they may not move (another gateway's, or never sent).
    pub refused: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ReceiptCounts {
    pub total: i64,
    pub matched: i64,
    pub pending: i64,
    pub unmatched: i64,
}

/// Percentiles (p50, p90, p95, p99, max) from a `(value, count)` histogram sorted by value.
pub(crate) fn percentiles(histogram: &[(i64, i64)]) -> Vec<(String, i64)> {
    let total: i64 = histogram.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return Vec::new();
    }
    [
        ("p50", 50u64),
        ("p90", 90),
        ("p95", 95),
        ("p99", 99),
        ("max", 100),
    ]
    .into_iter()
    .map(|(label, p)| {
        let rank = ((total as u64 * p).div_ceil(100) as i64).max(1);
        let mut seen = 0;
        let value = histogram
            .iter()
            .find(|(_, n)| {
                seen += n;
                seen >= rank
            })
            .map_or(0, |(v, _)| *v);
        (label.to_string(), value)
    })
    .collect()
}

/// A backend's migrations folder (`migrations/<backend>/`), embedded: each file's stem
/// (`0001_initial`: version and name) and its SQL, in the order given.
macro_rules! migrations {
    ($backend:literal, $($file:literal),* $(,)?) => {
        &[$((
            $file,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"), "/migrations/", $backend, "/", $file, ".sql"
            )),
        )),*]
    };
}
pub(crate) use migrations;

/// The embedded migrations ([`migrations!`]) up to version `up_to`, for sqlx's migrator.
pub(crate) fn migrator(
    migrations: &[(&'static str, &'static str)],
    up_to: i64,
) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let parsed = migrations.iter().map(|(file, sql)| {
        let (version, name) = file
            .split_once('_')
            .expect("migration files are VERSION_NAME");
        (
            version.parse::<i64>().expect("a numeric version"),
            name,
            *sql,
        )
    });
    Migrator::with_migrations(
        parsed
            .filter(|(version, _, _)| *version <= up_to)
            .map(|(version, name, sql)| {
                Migration::new(
                    version,
                    name.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_walk_the_histogram() {
        let h: Vec<(i64, i64)> = (1..=100).map(|v| (v, 1)).collect();
        let p = percentiles(&h);
        assert_eq!(p[0], ("p50".to_string(), 50));
        assert_eq!(p[3], ("p99".to_string(), 99));
        assert_eq!(p[4], ("max".to_string(), 100));
        assert!(percentiles(&[]).is_empty());
        assert_eq!(percentiles(&[(7, 3)])[0].1, 7);
    }

    #[test]
    fn only_errors_that_may_pass_are_transient() {
        let timed_out = anyhow::Error::from(sqlx::Error::PoolTimedOut).context("claiming");
        assert!(is_transient(&timed_out));
        let gone = anyhow::Error::from(sqlx::Error::RowNotFound);
        assert!(!is_transient(&gone));
        assert!(!is_transient(&anyhow::anyhow!("no such campaign")));
    }

    #[test]
    fn mode_ro_in_either_url_makes_it_read_only() {
        let ro = |url: &str| url_mode(url).unwrap().0;
        assert!(ro("postgres://u@db:5432/smscast?mode=ro"));
        assert!(ro("postgres://u@db:5432/smscast?sslmode=require&MODE=RO"));
        assert!(ro("sqlite://smscast.db?mode=Ro"));
        assert!(!ro("postgres://u@db/smscast?mode=rw"));
        assert!(!ro("postgres://u@db/smscast_mode=ro"));
        assert!(!ro("postgres://u@db/smscast?sslmode=ro"));
        assert!(!ro("sqlite://smscast.db?mode=rwc"));
        assert!(!ro("sqlite://smscast.db"));
        let rest = |url: &str| url_mode(url).unwrap().1;
        assert_eq!(rest("postgres://u@db/x?mode=RO"), "postgres://u@db/x");
        assert_eq!(
            rest("postgres://u@db/x?sslmode=require&mode=ro&application_name=a"),
            "postgres://u@db/x?sslmode=require&application_name=a"
        );
        assert_eq!(rest("postgres://u@db/x"), "postgres://u@db/x");
        for bad in [
            "sqlite://smscast.db?mode=readonly",
            "postgres://u@db/smscast?mode=",
            "sqlite://smscast.db?cache=shared&mode=ro",
        ] {
            assert!(url_mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn campaign_keys_tell_ids_from_names() {
        assert_eq!(CampaignKey::parse("#12"), CampaignKey::Id(12));
        assert_eq!(CampaignKey::parse("12"), CampaignKey::NameOrId("12", 12));
        assert_eq!(CampaignKey::parse("thang6"), CampaignKey::Name("thang6"));
        assert_eq!(CampaignKey::parse("#x"), CampaignKey::Name("#x"));
    }

    #[test]
    fn campaign_names_that_read_as_ids_or_garble_a_terminal_are_refused() {
        for bad in [
            "",
            "   ",
            "2",
            "0042",
            "#3",
            "a\nb",
            "esc\u{1b}[31m",
            " lead",
            "trail ",
        ] {
            assert!(check_campaign_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["thang6-2022", "Tháng hành động 2022", "2022 june"] {
            check_campaign_name(good).unwrap();
        }
    }

    #[test]
    fn redacts_passwords() {
        for (url, redacted) in [
            (
                "postgres://smscast:secret@db:5432/x",
                "postgres://smscast:****@db:5432/x",
            ),
            (
                "postgress://u:SECRET@localhost/x",
                "postgress://u:****@localhost/x",
            ),
            ("sqlite://u:pw@/tmp/x.db", "sqlite://u:****@/tmp/x.db"),
            ("u:pw@x.db", "u:****@x.db"),
            ("postgres://u:p@ss?w#rd@db/x", "postgres://u:****@db/x"),
            (
                "postgres://u@db/x?sslmode=require&password=s3cr3t",
                "postgres://u@db/x?sslmode=require&password=****",
            ),
            (
                "postgres://db/x?PassWord=s3cr3t",
                "postgres://db/x?PassWord=****",
            ),
            ("postgres://u@db/x", "postgres://u@db/x"),
            (
                "sqlite://x.db?immutable=1&key=hunter2",
                "sqlite://x.db?immutable=1&key=****",
            ),
            ("sqlite://smscast.db", "sqlite://smscast.db"),
            ("sqlite:///data/a@b.db", "sqlite:///data/a@b.db"),
            ("/data/smscast.db", "/data/smscast.db"),
        ] {
            assert_eq!(redact_url(url), redacted, "{url}");
        }
    }

    #[test]
    fn redacts_secrets_in_any_message() {
        let url = "sqlite://u:pw@/nonexistent/x.db";
        assert_eq!(
            redact_secrets("there is no database at u:pw@/nonexistent/x.db: …", url),
            "there is no database at u:****@/nonexistent/x.db: …"
        );
        let url = "postgres://u:p%40ssw0rd@db/x";
        assert_eq!(
            redact_secrets("auth failed for p%40ssw0rd / p@ssw0rd", url),
            "auth failed for **** / ****"
        );
        assert_eq!(
            redact_secrets("connect password=hunter22 host=db", "postgres://db/x"),
            "connect password=**** host=db"
        );
    }
}
