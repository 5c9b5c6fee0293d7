//! Raw command-line flags (clap). Validation into settings happens in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Send a public-awareness SMS to every subscriber on a list, through carrier \
gateways, at exactly the allowed rate, with an auditable record of every message.";

const AFTER: &str = "\
The journey:
  smscast subscribers import long-an.csv --list long-an
  smscast message check messages/action-month-2022.toml
  smscast campaign create june-2022 --list long-an --message messages/action-month-2022.toml
  smscast send june-2022                 # Ctrl-C stops cleanly; the same command resumes
  smscast report june-2022 --format json

Try it all on a built-in gateway simulator: smscast demo";

/// The heading global options are listed under, apart from each command's own.
const GLOBAL: &str = "Global options";

#[derive(Debug, Parser)]
#[command(name = "smscast", version, about = ABOUT, after_help = AFTER)]
pub struct Cli {
    /// Database URL: a SQLite file (created on first use) or postgres://…
    // The URL may hold a password: --help must not print the environment's value.
    #[arg(
        long,
        global = true,
        env = "SMSCAST_DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://smscast.db",
        help_heading = GLOBAL
    )]
    pub db: String,
    /// Configuration file [default: smscast.toml when present]
    // Every `[env: …]` reads the same: the variable's name, never its value.
    #[arg(
        long,
        global = true,
        env = "SMSCAST_CONFIG",
        hide_env_values = true,
        help_heading = GLOBAL
    )]
    pub config: Option<PathBuf>,
    /// Who is acting, for the audit log [default: $USER@host]
    #[arg(
        long,
        global = true,
        env = "SMSCAST_OPERATOR",
        hide_env_values = true,
        help_heading = GLOBAL
    )]
    pub operator: Option<String>,
    /// More log output (-v info, -vv debug); logs go to stderr and never show phone numbers.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,
    /// Log lines as text, or as one JSON object per line for log shippers (numbers masked
    /// all the same)
    #[arg(long, global = true, value_enum, env = "SMSCAST_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import subscriber lists and manage opt-outs
    #[command(subcommand)]
    Subscribers(SubscribersCmd),
    /// Show each list with its counts by carrier and district
    Lists {
        /// Print JSON (name, members, by_carrier, by_district) instead of text
        #[arg(long)]
        json: bool,
    },
    /// Check a message before launch: encoding, segments, split points
    #[command(subcommand)]
    Message(MessageCmd),
    /// Create, inspect, pause, resume and cancel campaigns
    #[command(subcommand)]
    Campaign(CampaignCmd),
    /// Run a campaign (launches a draft); running it again resumes it
    Send(SendArgs),
    /// Decide what to do with messages in doubt after a crash
    Reconcile(ReconcileArgs),
    /// Take a carrier's results back into a carrier-run campaign (see `campaign export`)
    #[command(subcommand)]
    Results(ResultsCmd),
    /// The campaign's results: by state, carrier, district and day
    Report(ReportArgs),
    /// Every campaign, attempt and receipt for one number
    Lookup(LookupArgs),
    /// The tamper-evident operator log
    Audit(AuditArgs),
    /// A consistent single-file copy of the database, taken while others run, then verified
    #[command(
        after_help = "Example: smscast backup /media/usb/smscast-2022-07-05.db\n\nThe copy is checked (SQLite integrity check and the audit chain) and its audit head printed: compare it with `smscast audit --verify` on the live database. On PostgreSQL use pg_dump."
    )]
    Backup(BackupArgs),
    /// Gateway tools
    #[command(subcommand)]
    Gateway(GatewayCmd),
    /// Delivery receipts
    #[command(subcommand)]
    Dlr(DlrCmd),
    /// The whole journey on a built-in simulator, in a fresh folder, ending in a report
    Demo(DemoArgs),
    /// Write a realistic subscriber file with a known ground truth (tests, benchmarks)
    #[command(hide = true)]
    GenSample(GenSampleArgs),
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy (must not exist yet)
    pub file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum SubscribersCmd {
    /// Import a CSV file into a list (one transaction: a file that cannot be read imports nothing)
    #[command(
        after_help = "Example: smscast subscribers import tan-an.csv --list long-an --rejects rejects.csv"
    )]
    Import(ImportArgs),
    /// Add numbers (or a file of numbers, one per line or CSV) to the opt-out list
    #[command(after_help = "Example: smscast subscribers optout 0912345678 stop-requests.csv")]
    Optout {
        /// Numbers or files
        #[arg(required = true)]
        items: Vec<String>,
        /// Remove these numbers from the opt-out list instead
        #[arg(long)]
        remove: bool,
        /// Where the opt-out came from (kept with it)
        #[arg(long, default_value = "operator")]
        source: String,
    },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV file (UTF-8 or UTF-16; comma, semicolon or tab separated)
    pub file: PathBuf,
    /// The list to add the subscribers to (created if new)
    #[arg(long)]
    pub list: String,
    /// The column with phone numbers: a header name or a 1-based number [default: detected]
    #[arg(long)]
    pub phone_column: Option<String>,
    /// The column with district names: a header name or a 1-based number [default: detected]
    #[arg(long)]
    pub district_column: Option<String>,
    /// The carrier this list comes from: every number is filed under it whatever its prefix
    /// (ported numbers keep their first carrier's prefix), replacing the carrier stored for a
    /// number already known (viettel, vinaphone, mobifone, vietnamobile, gmobile, itel, reddi, other)
    #[arg(long, value_parser = parse_carrier)]
    pub carrier: Option<crate::msisdn::Carrier>,
    /// The column naming each row's carrier (over --carrier and the prefix; a value that names
    /// no carrier rejects the row): a header name or a 1-based number [default: a column
    /// headed carrier or nhà mạng]
    #[arg(long)]
    pub carrier_column: Option<String>,
    /// Write every rejected row (line, raw value, reason) to this CSV file
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Memory for sorting the rows by number, in MiB; beyond it sorted runs go to temporary
    /// files in $TMPDIR (the import's memory stays flat whatever the file size)
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub sort_memory: u32,
    /// Print the summary as JSON (the fields are listed in the README)
    #[arg(long)]
    pub json: bool,
}

/// `--carrier` as clap parses it: a carrier as lists write it ("Viettel", "VNPT", …).
pub fn parse_carrier(s: &str) -> Result<crate::msisdn::Carrier, String> {
    use crate::msisdn::Carrier;
    Carrier::from_source(s).ok_or_else(|| {
        let known = Carrier::ALL.map(|c| c.as_str());
        let hint = crate::commands::did_you_mean(&s.trim().to_lowercase(), known.iter().copied())
            .map(|c| format!(" (did you mean {c}?)"))
            .unwrap_or_default();
        format!(
            "{s:?} is not a carrier{hint}: use one of {}",
            known.join(", ")
        )
    })
}

#[derive(Debug, Subcommand)]
pub enum MessageCmd {
    /// Show exactly what will go out: encoding, characters, segments, split points
    #[command(
        after_help = "Example: smscast message check messages/action-month-2022.toml --no-diacritics"
    )]
    Check {
        /// A message file (.toml) or a plain text file
        file: PathBuf,
        /// Fold Vietnamese to plain letters (không dấu) to fit GSM-7
        #[arg(long)]
        no_diacritics: bool,
        /// Also count recipients × segments for this list (and the cost, with [prices])
        #[arg(long)]
        list: Option<String>,
        /// Print the analysis as JSON (text, encoding, units, segments, parts, offending, …)
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CampaignCmd {
    /// Create a draft campaign (the message is stored exactly as it will be sent)
    #[command(
        after_help = "Example: smscast campaign create june-2022 --list long-an \\
    --message messages/action-month-2022.toml --rate 100 --until \"$(date -d +30days +%F)\"
--from and --until are days in Vietnam time; a send-by day in the past is refused."
    )]
    Create(Box<CreateArgs>),
    /// List campaigns
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// One campaign: settings, dates, progress, workers
    Show {
        /// The campaign's name or numeric id
        campaign: String,
        /// Print JSON (campaign, states, workers) instead of text
        #[arg(long)]
        json: bool,
    },
    /// Stop sending (a running `send` stops within seconds)
    Pause {
        /// The campaign's name or numeric id
        campaign: String,
    },
    /// Allow sending again (then run `smscast send`)
    Resume {
        /// The campaign's name or numeric id
        campaign: String,
    },
    /// Stop for good: nothing more goes out
    Cancel {
        /// The campaign's name or numeric id
        campaign: String,
    },
    /// Hand a carrier its share of the campaign to send itself (a carrier-run campaign)
    #[command(after_help = EXPORT_AFTER)]
    Export(ExportArgs),
    /// Send the campaign's message, exactly as it will go out, to staff phones (a test: the
    /// campaign stays as it is)
    #[command(after_help = "Examples:
  smscast campaign test june-2022 --to 0912345678,0983456789
  smscast campaign test june-2022 --to 0912345678 --as 0977000111   # personalised as that member
The text is personalised with the list's first member (or --as), sent through the campaign's
gateway (routed by each staff number's carrier as in [routing]), and written to the audit log
(`smscast audit`) with each number's outcome, numbers masked. No delivery is created: the
campaign keeps its state and counts, and the per-number cap is not touched. Refused for a
completed or cancelled campaign; at most 10 numbers.")]
    Test(TestArgs),
}

const EXPORT_AFTER: &str = "\
Example: smscast campaign export june-2022 --carrier viettel --out june-2022-viettel.csv

The campaign is launched first if it is a draft (as `send` would). Every number of the
campaign filed under the carrier that is still waiting to be sent becomes \"handed to the
carrier\": `smscast send` never sends it, and sends the other carriers' numbers as usual.
Running the export again writes the same file and changes nothing. When the carrier sends
its results back: smscast results import june-2022 viettel-results.csv --carrier viettel";

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The campaign's name or numeric id
    pub campaign: String,
    /// The carrier whose share is written (viettel, vinaphone, mobifone, vietnamobile,
    /// gmobile, itel, reddi, other)
    #[arg(long, value_parser = parse_carrier)]
    pub carrier: crate::msisdn::Carrier,
    /// The file to write (replaced if it exists)
    #[arg(long)]
    pub out: PathBuf,
    /// csv: a header `msisdn,text` then one row per number (84xxxxxxxxx) with the text
    /// exactly as sent (UTF-8); txt: one number per line, for carriers that take the text
    /// separately
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Print the summary as JSON (campaign, carrier, file, format, newly_handed, rows, sha256)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Txt,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Txt => "txt",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ResultsCmd {
    /// Read a carrier's result file (number, status, time) into the campaign's record
    #[command(after_help = RESULTS_AFTER)]
    Import(ResultsImportArgs),
}

const RESULTS_AFTER: &str = "\
Example: smscast results import june-2022 viettel-results.csv --carrier viettel

The file is read like a subscriber list (UTF-8 or UTF-16, comma/semicolon/tab, header or
not). Status words: delivered/DELIVRD/success/thành công, failed/UNDELIV/thất bại,
expired/hết hạn, unknown/pending/chưa rõ. Times without an offset are Vietnam time.
Rows that match nothing (a number not handed to this carrier, a bad number, an unknown
status or time) are listed with their line numbers; the other rows go in, all in one
transaction. Importing the same file again changes nothing. A pending result may be
completed by a later file; a final result (delivered, failed, expired) is never changed.";

#[derive(Debug, Args)]
pub struct ResultsImportArgs {
    /// The campaign's name or numeric id
    pub campaign: String,
    /// The carrier's result file
    pub file: PathBuf,
    /// The carrier the results come from (the one the share was exported to)
    #[arg(long, value_parser = parse_carrier)]
    pub carrier: crate::msisdn::Carrier,
    /// The column with phone numbers: a header name or a 1-based number [default: detected]
    #[arg(long)]
    pub phone_column: Option<String>,
    /// The column with the carrier's status: a header name (a 1-based number in a file without
    /// a header) [default: a column headed status, result, trạng thái or kết quả, else the
    /// first column after the number]
    #[arg(long)]
    pub status_column: Option<String>,
    /// The column with the time: a header name (a 1-based number in a file without a header)
    /// [default: a column headed time, date, thời gian…; in a file without a header, the
    /// column after the status]
    #[arg(long)]
    pub time_column: Option<String>,
    /// Print the summary as JSON (changed, already_recorded, changed_to, unmatched with line
    /// numbers and reasons, …)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The campaign's name or numeric id
    pub campaign: String,
    /// Staff phones to send to, comma-separated (any usual form: 0912345678, +84912345678)
    #[arg(
        long,
        value_delimiter = ',',
        required = true,
        value_name = "NUMBER[,NUMBER…]"
    )]
    pub to: Vec<String>,
    /// Personalise the text as this list member [default: the list's first member]
    #[arg(long = "as", value_name = "NUMBER")]
    pub as_member: Option<String>,
    /// Gateway request timeout in seconds
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The campaign's name, used by every later command (e.g. june-2022)
    pub name: String,
    /// The subscriber list to send to (see `smscast lists`)
    #[arg(long)]
    pub list: String,
    /// A message file (.toml, see messages/) or a plain text file
    #[arg(long)]
    pub message: PathBuf,
    /// Send without diacritics (không dấu): GSM-7, about a third of the cost
    #[arg(long)]
    pub no_diacritics: bool,
    /// Sender id / brandname [default: from the message file]
    #[arg(long)]
    pub sender: Option<String>,
    /// Gateway name from smscast.toml [default: routing.default, or the only gateway]
    #[arg(long)]
    pub gateway: Option<String>,
    /// Messages per second [default: the gateway's rate, else defaults.rate]. A gateway's
    /// `sms_per_second` (SMS parts per second, in smscast.toml) holds as well: the printed
    /// pace line gives messages/s, SMS parts/s and the expected sending time
    #[arg(long, value_parser = crate::config::parse_rate)]
    pub rate: Option<f64>,
    /// Not before this date (YYYY-MM-DD, Vietnam time)
    #[arg(long)]
    pub from: Option<String>,
    /// Send-by date (YYYY-MM-DD, Vietnam time): after it nothing more goes out
    #[arg(long)]
    pub until: Option<String>,
    /// Daily window in Vietnam time [default: 07:00-21:00]; widening it is written to the audit log
    #[arg(long)]
    pub hours: Option<String>,
    /// Attempts per message before a transient failure counts as failed [default:
    /// defaults.max_attempts in smscast.toml, else 5]
    #[arg(long)]
    pub max_attempts: Option<i64>,
    /// At most one message per number per this many hours, across campaigns; 0 turns the cap
    /// off (written to the audit log)
    #[arg(long, default_value_t = 24)]
    pub cap_hours: i64,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  smscast send june-2022                  # Ctrl-C stops cleanly; the same command resumes
  smscast send june-2022 --rate 50 --plain --no-wait   # slower, log lines, exit outside the hours
On PostgreSQL, run the same command on several machines: they share the campaign and its rate.
A gateway's `sms_per_second` in smscast.toml limits SMS parts (a 3-part message counts 3)
beside its `rate` in messages; the pace line at the start shows both and the expected time.")]
pub struct SendArgs {
    /// The campaign's name or numeric id
    pub campaign: String,
    /// Messages per second for this run (lower than the campaign's; never higher)
    #[arg(long, value_parser = crate::config::parse_rate)]
    pub rate: Option<f64>,
    /// Messages in flight at once: also the most a crash can leave in doubt [default:
    /// defaults.concurrency, 32; at least two batches for a gateway with `batch_size`]
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Outside the sending window, exit saying when to resume instead of waiting
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds a claim is leased before another worker may recover it
    #[arg(long, default_value_t = 30)]
    pub lease_secs: u64,
    /// List members copied into deliveries per launch transaction (tests and benchmarks)
    #[arg(long, default_value_t = crate::store::LAUNCH_CHUNK, hide = true)]
    pub launch_chunk: i64,
    /// Gateway request timeout in seconds (a timeout is "in doubt": the gateway may have taken it)
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
    /// Plain progress lines instead of a progress bar
    #[arg(long)]
    pub plain: bool,
    /// Serve GET /metrics (Prometheus) and GET /healthz on this address during the run,
    /// e.g. 127.0.0.1:9188
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The campaign's name or numeric id
    pub campaign: String,
    /// Send the in-doubt messages again (some people may get two)
    // One of the two is required; the command says so itself, with the count in doubt.
    #[arg(long, conflicts_with = "give_up")]
    pub resend: bool,
    /// Count the in-doubt messages as failed and send nothing more
    #[arg(long)]
    pub give_up: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    /// For the terminal
    Table,
    /// The documented, versioned schema scripts read (keys never translated)
    Json,
    /// One row per figure: section,item,detail,value
    Csv,
    /// A self-contained page with charts, for the screen and for print
    Html,
    /// The official report (Decree 30/2020 layout, Word) for the chain of command; needs --out.
    /// Letterhead, recipients and signer from [report] in smscast.toml
    Docx,
    /// The official report as PDF (the Word document converted by LibreOffice, which must be
    /// installed: `soffice` on the PATH); needs --out
    Pdf,
}

pub use crate::report::labels::Lang;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  smscast report june-2022 --format html --lang vi --out bao-cao.html
  smscast report june-2022 --format docx --lang vi --out bao-cao.docx   # the official report
  smscast report june-2022 --carrier viettel --state rejected,failed --format csv
  smscast report --all --since 2022-06-01 --until 2022-06-30 --format json
  smscast report june-2022 --reveal --reason \"complaint 2022/117\"   # operators only; audited")]
pub struct ReportArgs {
    /// The campaign (name or id); omit with --all
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub campaign: Option<String>,
    /// Every campaign (with --since/--until: the period's report)
    #[arg(long)]
    pub all: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Same as --format json
    #[arg(long)]
    pub json: bool,
    /// Language of the labels (table, CSV, HTML, DOCX, PDF); JSON keys stay English
    #[arg(long, value_enum, default_value_t = Lang::En)]
    pub lang: Lang,
    /// Write to this file instead of standard output
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only this carrier (viettel, vinaphone, mobifone, vietnamobile, gmobile, itel, reddi, other)
    #[arg(long)]
    pub carrier: Option<String>,
    /// Only this district (as in the report's district names)
    #[arg(long)]
    pub district: Option<String>,
    /// Only these states (comma-separated: delivered,failed,…)
    #[arg(long, value_delimiter = ',')]
    pub state: Vec<String>,
    /// From this day (YYYY-MM-DD, Vietnam time; inclusive): when a message was submitted, else
    /// when it reached its final state, else when its campaign was launched
    #[arg(long)]
    pub since: Option<String>,
    /// To this day (YYYY-MM-DD, Vietnam time; inclusive)
    #[arg(long)]
    pub until: Option<String>,
    /// Also list the recipients in error or possibly sent twice, with FULL numbers. An
    /// operator's act: needs write access, is written to the audit log first
    #[arg(long, requires = "reason")]
    pub reveal: bool,
    /// Why the numbers are revealed (kept in the audit log); required with --reveal
    #[arg(long)]
    pub reason: Option<String>,
}

impl ReportArgs {
    /// The plain table report of one campaign (what `smscast demo` prints).
    pub fn table(campaign: &str) -> Self {
        Self {
            campaign: Some(campaign.to_string()),
            all: false,
            format: ReportFormat::Table,
            json: false,
            lang: Lang::En,
            out: None,
            carrier: None,
            district: None,
            state: Vec::new(),
            since: None,
            until: None,
            reveal: false,
            reason: None,
        }
    }
}

#[derive(Debug, Args)]
pub struct LookupArgs {
    /// The number, in any usual form (0912…, 84912…, +84 912…)
    pub number: String,
    /// Print JSON (number, carrier, events) instead of text
    #[arg(long)]
    pub json: bool,
    /// Show the full number (masked by default). An operator's act: needs write access, is
    /// written to the audit log first
    #[arg(long, requires = "reason")]
    pub reveal: bool,
    /// Why the number is revealed (kept in the audit log); required with --reveal
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Recompute the hash chain and name the first row that was altered or removed
    #[arg(long)]
    pub verify: bool,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum GatewayCmd {
    /// Run the built-in gateway simulator (Twilio Messages API) until Ctrl-C
    #[command(
        after_help = "Example: smscast gateway simulate --listen 127.0.0.1:8787 --latency-ms 50 --fail-rate 0.01"
    )]
    Simulate(SimulateArgs),
    /// Benchmark probe: submit N messages through a configured gateway with no database,
    /// to measure what the HTTP client alone can do on this machine
    #[command(hide = true)]
    Flood(FloodArgs),
}

#[derive(Debug, Args)]
pub struct FloodArgs {
    /// The gateway's name in smscast.toml
    pub gateway: String,
    #[arg(long, default_value_t = 100_000)]
    pub requests: u64,
    #[arg(long, default_value_t = 128)]
    pub concurrency: usize,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on (port 0: any free port, printed at start)
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: String,
    /// Milliseconds before each answer
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Extra latency drawn uniformly from 0 to this, per request
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Share of requests answered 503: not taken (0.0-1.0)
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Share of requests answered 429 with Retry-After: 1
    #[arg(long, default_value_t = 0.0)]
    pub throttle_rate: f64,
    /// Seconds in the Retry-After of those 429 answers (e.g. 3600: an hour's hold)
    #[arg(long, default_value_t = 1)]
    pub retry_after_secs: u64,
    /// Share of requests taken but answered only after --hang-ms (clients time out: in doubt)
    #[arg(long, default_value_t = 0.0)]
    pub hang_rate: f64,
    /// How long a hung request waits before its answer, in milliseconds
    #[arg(long, default_value_t = 30_000)]
    pub hang_ms: u64,
    /// Reject numbers ending with this suffix permanently (error 21211); repeatable
    #[arg(long)]
    pub reject_suffix: Vec<String>,
    /// Numbers (84…, or prefixes of them) ported to another carrier: the batch endpoint
    /// answers them "not our subscriber" (code 133); repeatable
    #[arg(long)]
    pub ported: Vec<String>,
    /// Answer 429 with Retry-After above this many requests per second
    #[arg(long)]
    pub max_rps: Option<u32>,
    /// Deduplicate submissions carrying the same value in this header
    #[arg(long)]
    pub idempotency_header: Option<String>,
    /// Keep the last text sent to each recipient, shown at GET /stats/messages
    #[arg(long)]
    pub keep_bodies: bool,
    /// Send signed status callbacks (late, some twice, out of order) to each message's
    /// StatusCallback, signed with the auth token in this environment variable
    #[arg(long)]
    pub receipts_auth_token_env: Option<String>,
    /// Kannel receipts (GET /cgi-bin/sendsms with a dlr-url) one per part of a long message,
    /// in random order, as a gateway with `receipts_per_part = true` sends them (stock Kannel
    /// sends one per message); turns receipts on
    #[arg(long)]
    pub kannel_receipts_per_part: bool,
}

#[derive(Debug, Subcommand)]
pub enum DlrCmd {
    /// Receive delivery receipts from the configured gateways until Ctrl-C
    #[command(after_help = "Example: smscast dlr serve --listen 0.0.0.0:8788
Receipt URLs: /kannel/NAME, /twilio/NAME, /http-json/NAME for each gateway NAME in smscast.toml.")]
    Serve(DlrServeArgs),
}

#[derive(Debug, Args)]
pub struct DlrServeArgs {
    /// Address to listen on [default: [dlr] listen in smscast.toml, else 127.0.0.1:8788]
    #[arg(long)]
    pub listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Subscribers in the generated sample list
    #[arg(long, default_value_t = 3000)]
    pub subscribers: usize,
    /// Messages per second
    #[arg(long, default_value_t = 500.0, value_parser = crate::config::parse_rate)]
    pub rate: f64,
    /// Folder to work in [default: a new folder smscast-demo-<time> here]
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SampleDelimiter {
    Comma,
    Semicolon,
    Tab,
}

#[derive(Debug, Args)]
pub struct GenSampleArgs {
    /// Data rows to write (the header comes on top)
    #[arg(long)]
    pub rows: u64,
    /// The file to write
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed: the same seed gives the same file
    #[arg(long, default_value_t = 2022)]
    pub seed: u64,
    /// Only canonical-looking numbers, no bad rows, no repeats
    #[arg(long)]
    pub clean: bool,
    #[arg(long, value_enum, default_value_t = SampleDelimiter::Comma)]
    pub delimiter: SampleDelimiter,
    /// CRLF line endings
    #[arg(long)]
    pub crlf: bool,
    /// UTF-8 byte order mark
    #[arg(long)]
    pub bom: bool,
    /// UTF-16LE with byte order mark (Excel "Unicode text")
    #[arg(long)]
    pub utf16: bool,
    /// Print the ground truth as JSON
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every argument a user can see has a description (`--help` is the manual).
    #[test]
    fn every_visible_argument_is_described() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.is_hide_set() {
                return;
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "smscast", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:#?}");
    }

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
