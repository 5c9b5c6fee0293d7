//! Helpers for the end-to-end tests: each test gets its own folder and database, runs the real
//! binary as a user would, and reads the gateway simulator's own books over HTTP.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_smscast");

/// The PostgreSQL server the tests may use: `SMSCAST_TEST_PG=postgres://user@host:port/db`
/// (any database the user can connect to and `CREATE DATABASE` from). Each test gets a fresh
/// database of its own on that server.
pub const PG_ENV: &str = "SMSCAST_TEST_PG";

/// `SMSCAST_TEST_BACKEND=postgres` runs every behaviour test (`Env::new`) on that server
/// instead of a SQLite file.
pub const BACKEND_ENV: &str = "SMSCAST_TEST_BACKEND";

/// Says, past the test harness's output capture, that a test did not run and why.
pub fn skip(test: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped: set {PG_ENV}=postgres://USER@HOST:PORT/postgres (a server where USER may CREATE DATABASE) to run it; .ci/run starts a throwaway one"
    );
}

/// The test's own PostgreSQL database when `SMSCAST_TEST_BACKEND=postgres` (which needs
/// `SMSCAST_TEST_PG`), `None` for SQLite.
fn backend_postgres(label: &str) -> Option<PgDb> {
    if !std::env::var(BACKEND_ENV).is_ok_and(|b| b == "postgres") {
        return None;
    }
    let db = PgDb::on_test_server(label);
    Some(db.unwrap_or_else(|| panic!("{BACKEND_ENV}=postgres needs {PG_ENV}=postgres://… too")))
}

/// A database created for one test on the `SMSCAST_TEST_PG` server, dropped at the end.
struct PgDb {
    admin_url: String,
    name: String,
}

impl PgDb {
    /// A fresh database on the `SMSCAST_TEST_PG` server; `None` when that is not set.
    fn on_test_server(label: &str) -> Option<Self> {
        let admin = std::env::var(PG_ENV).ok().filter(|u| !u.is_empty())?;
        Some(Self::create(&admin, label))
    }

    fn create(admin_url: &str, label: &str) -> Self {
        let name = format!(
            "smscast_test_{}_{}_{}",
            // PostgreSQL cuts names at 63 bytes: keep the part that makes it unique.
            label
                .chars()
                .take(32)
                .map(|c| if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                })
                .collect::<String>(),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        pg_execute(admin_url, &format!("CREATE DATABASE {name}")).unwrap();
        Self {
            admin_url: admin_url.to_string(),
            name,
        }
    }

    fn url(&self) -> String {
        let (base, query) = match self.admin_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (self.admin_url.as_str(), String::new()),
        };
        let server = match base.rfind('/') {
            Some(i) if i > base.find("://").map_or(0, |s| s + 2) => &base[..i],
            _ => base,
        };
        format!("{server}/{}{query}", self.name)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = pg_execute(
                &self.admin_url,
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            );
        }
    }
}

/// Runs one statement (no parameters: database names cannot be bound) on `url`, on a thread
/// of its own (callers may be inside an async test's runtime).
pub fn pg_execute(url: &str, sql: &str) -> Result<(), String> {
    use sqlx::{Connection, Executor};
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url)
                .await
                .map_err(|e| format!("cannot connect to {PG_ENV}: {e}"))?;
            conn.execute(sqlx::AssertSqlSafe(sql.clone()))
                .await
                .map_err(|e| format!("{sql}: {e}"))?;
            Ok(())
        })
    })
    .join()
    .map_err(|_| "the statement's thread panicked".to_string())?
}

static N: AtomicU32 = AtomicU32::new(0);

/// A scratch folder with its own database and `smscast.toml`, removed at the end.
pub struct Env {
    pub dir: PathBuf,
    pg: Option<PgDb>,
}

impl Env {
    /// A SQLite file in the folder, or a fresh PostgreSQL database when
    /// `SMSCAST_TEST_BACKEND=postgres`.
    pub fn new(name: &str) -> Self {
        Self::with_db(name, backend_postgres(name))
    }

    /// A fresh PostgreSQL database on the `SMSCAST_TEST_PG` server; `None` when it is not set.
    pub fn postgres(name: &str) -> Option<Self> {
        Some(Self::with_db(name, Some(PgDb::on_test_server(name)?)))
    }

    fn with_db(name: &str, pg: Option<PgDb>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "smscast-test-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir, pg }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn db_url(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url(),
            None => format!("sqlite://{}", self.dir.join("smscast.db").display()),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// `smscast` run in the folder, against its database.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(&self.dir)
            .env("SMSCAST_DATABASE_URL", self.db_url())
            .env_remove("SMSCAST_CONFIG")
            .env("SMSCAST_OPERATOR", "tester")
            .stdin(Stdio::null());
        c
    }

    /// Runs and returns the output, whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "smscast {args:?} failed with {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// Writes `smscast.toml` with one Twilio-style gateway `sim` at `url`.
    pub fn config_for(&self, url: &str, extra: &str) {
        std::fs::write(
            self.path("smscast.toml"),
            format!("{}{extra}\n", twilio_gateway("sim", url)),
        )
        .unwrap();
    }

    /// A clean generated list of `rows` numbers (`seed` picks them) imported as list "la";
    /// returns the canonical numbers, to check the gateway's books against.
    pub fn clean_list(&self, rows: u64, seed: u64) -> Vec<String> {
        let truth = smscast::sample::write_csv(
            &self.path("list.csv"),
            rows,
            seed,
            smscast::sample::Shape {
                bad_share: 0.0,
                duplicate_share: 0.0,
                messy: false,
            },
        )
        .unwrap();
        self.ok(&["subscribers", "import", "list.csv", "--list", "la"]);
        truth.numbers
    }

    /// Creates campaign `name` on list "la" with the shipped message, sending all day, and
    /// `extra` arguments.
    pub fn create_campaign(&self, name: &str, extra: &[&str]) {
        let out = self.try_create_campaign(name, extra);
        assert!(
            out.status.success(),
            "campaign create {name} {extra:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// As [`Env::create_campaign`], whatever the exit code.
    pub fn try_create_campaign(&self, name: &str, extra: &[&str]) -> Output {
        let msg = self.message();
        let mut args = vec![
            "campaign",
            "create",
            name,
            "--list",
            "la",
            "--message",
            &msg,
            "--hours",
            "00:00-24:00",
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Copies the shipped theme message next to the database.
    pub fn message(&self) -> String {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("messages/action-month-2022.toml");
        let dst = self.path("message.toml");
        std::fs::copy(src, &dst).unwrap();
        dst.display().to_string()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `smscast gateway simulate` as its own process on a free loopback port.
pub struct Sim {
    child: Child,
    pub url: String,
}

impl Sim {
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["gateway", "simulate", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("simulator listening on ")
            .unwrap_or_else(|| panic!("unexpected simulator output {line:?}"))
            .to_string();
        Self { child, url }
    }

    pub fn stats(&self) -> serde_json::Value {
        serde_json::from_str(&http_get(&format!("{}/stats", self.url))).unwrap()
    }

    pub fn recipients(&self) -> HashMap<String, u32> {
        serde_json::from_str(&http_get(&format!("{}/stats/recipients", self.url))).unwrap()
    }

    pub fn arrivals(&self) -> Vec<i64> {
        serde_json::from_str(&http_get(&format!("{}/stats/arrivals", self.url))).unwrap()
    }

    pub fn accepted(&self) -> u64 {
        self.stats()["accepted"].as_u64().unwrap()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `[gateways.NAME]` section for a Twilio-style gateway (a simulator) at `url`.
pub fn twilio_gateway(name: &str, url: &str) -> String {
    format!(
        "[gateways.{name}]\nkind = \"twilio\"\nbase_url = \"{url}\"\naccount_sid = \"ACtest\"\nauth_token = \"secret\"\n"
    )
}

/// A plain HTTP/1.0 GET on loopback (no client crate needed for the tests).
pub fn http_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").expect("HTTP response");
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "GET {url}: {head}"
    );
    body.to_string()
}

/// Waits until `cond` holds, or panics after `limit`.
pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends a signal to a child process with the system's `kill`.
pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} failed");
}

/// Moves a campaign's send-by instant (as if it had been created long ago).
pub fn set_send_by(env: &Env, campaign: &str, ends_ms: i64) {
    let sql = format!("UPDATE campaigns SET ends_ms = {ends_ms} WHERE name = '{campaign}'");
    if env.is_postgres() {
        pg_execute(&env.db_url(), &sql).unwrap();
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::SqliteConnection::connect(&env.db_url())
            .await
            .unwrap();
        conn.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    });
}

/// The most arrivals (ms, ascending) in any one-second window.
pub fn busiest_second(arrivals: &[i64]) -> usize {
    let mut j = 0;
    let mut busiest = 0;
    for i in 0..arrivals.len() {
        while arrivals[j] <= arrivals[i] - 1000 {
            j += 1;
        }
        busiest = busiest.max(i - j + 1);
    }
    busiest
}

mod workspace;
#[allow(unused_imports)]
pub use workspace::*;

mod setup;
#[allow(unused_imports)]
pub use setup::*;
