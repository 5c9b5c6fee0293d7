//! The import tests' workspace: runs the real `smscast` binary in its own temporary folder.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

/// A file of `tests/corpus/`.
pub fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

/// A fresh folder with its own database, removed on drop: a SQLite file in the folder, or a
/// fresh PostgreSQL database when `SMSCAST_TEST_BACKEND=postgres`.
pub struct Workspace {
    pub dir: PathBuf,
    pg: Option<super::PgDb>,
}

/// What a run of the binary printed.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON on stdout of a successful run.
    pub fn json(&self) -> Result<Value, String> {
        if self.code != Some(0) {
            return Err(format!(
                "exit code {:?}\nstderr: {}\nstdout: {}",
                self.code, self.stderr, self.stdout
            ));
        }
        serde_json::from_str(&self.stdout)
            .map_err(|e| format!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

impl Workspace {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let dir = std::env::temp_dir().join(format!(
            "smscast-test-{}-{}-{safe}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test folder");
        let pg = super::backend_postgres(&safe);
        Workspace { dir, pg }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// Whether smscast has made its tables yet (the SQLite file exists; PostgreSQL's database
    /// is created empty for the test).
    fn has_store(&self) -> bool {
        match &self.pg {
            None => self.path("x.db").exists(),
            Some(_) => {
                self.query_text("SELECT CAST(to_regclass('lists') IS NOT NULL AS TEXT)")[0]
                    == "true"
            }
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn db_url(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url(),
            None => format!("sqlite://{}", self.path("x.db").display()),
        }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smscast"));
        cmd.arg("--db")
            .arg(self.db_url())
            .env_remove("SMSCAST_DATABASE_URL")
            .env_remove("SMSCAST_CONFIG")
            .env("SMSCAST_OPERATOR", "tester")
            .current_dir(&self.dir);
        cmd
    }

    pub fn smscast(&self, args: &[&str]) -> Run {
        let out = self.command().args(args).output().expect("run smscast");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `subscribers import FILE --list LIST --json [--rejects R] ARGS…`
    pub fn import(&self, file: &Path, list: &str, args: &[&str], rejects: Option<&Path>) -> Run {
        let file = file.to_str().unwrap();
        let mut all = vec!["subscribers", "import", file, "--list", list, "--json"];
        if let Some(r) = rejects {
            all.extend(["--rejects", r.to_str().unwrap()]);
        }
        all.extend_from_slice(args);
        self.smscast(&all)
    }

    /// Members of a list according to `smscast lists --json`; `None` when there is no such
    /// list (or no database yet).
    pub fn list_members(&self, list: &str) -> Option<u64> {
        if !self.has_store() {
            return None;
        }
        let lists = self.smscast(&["lists", "--json"]).json().expect("lists");
        lists
            .as_array()
            .expect("an array of lists")
            .iter()
            .find(|l| l["name"] == list)
            .map(|l| l["members"].as_u64().expect("members"))
    }

    /// Rows of a one-column text query against the database (read-only on SQLite).
    pub fn query_text(&self, sql: &str) -> Vec<String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            let rows: Vec<(String,)> = match &self.pg {
                Some(pg) => {
                    let mut conn = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
                    sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&mut conn)
                        .await
                        .unwrap()
                }
                None => {
                    let url = format!("{}?mode=ro", self.db_url());
                    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                    sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&mut conn)
                        .await
                        .unwrap()
                }
            };
            rows.into_iter().map(|(s,)| s).collect()
        })
    }

    pub fn subscriber_count(&self) -> u64 {
        if !self.has_store() {
            return 0;
        }
        self.query_text("SELECT CAST(COUNT(*) AS TEXT) FROM subscribers")[0]
            .parse()
            .unwrap()
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every row is accounted for exactly once.
pub fn check_invariants(s: &Value) -> Result<(), String> {
    let n = |k: &str| {
        s[k].as_u64()
            .ok_or_else(|| format!("{k} is missing or not a count: {s}"))
    };
    let sum = |k: &str| -> u64 {
        s[k].as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0)
    };
    let distinct = n("imported")? + n("already_present")?;
    let valid = distinct + n("duplicates_in_file")?;
    let checks = [
        (
            "rows_read = rejected + valid",
            n("rows_read")?,
            n("rejected")? + valid,
        ),
        (
            "rejected = Σ rejected_by_reason",
            n("rejected")?,
            sum("rejected_by_reason"),
        ),
        // A repeated row counts once by carrier and district, as it is stored.
        ("distinct = Σ by_carrier", distinct, sum("by_carrier")),
        ("distinct = Σ by_district", distinct, sum("by_district")),
    ];
    for (what, a, b) in checks {
        if a != b {
            return Err(format!("{what}: {a} ≠ {b}"));
        }
    }
    Ok(())
}

/// (line, raw, reason) of every row of a rejects file; checks the header and that every
/// row has an explanation.
pub fn read_rejects(path: &Path) -> Vec<(u64, String, String)> {
    let mut r = csv::Reader::from_path(path).expect("the rejects file exists");
    assert_eq!(
        r.headers().unwrap(),
        vec!["line", "raw", "reason", "explanation"]
    );
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            assert!(!rec[3].is_empty(), "no explanation: {rec:?}");
            (
                rec[0].parse().unwrap(),
                rec[1].to_string(),
                rec[2].to_string(),
            )
        })
        .collect()
}
