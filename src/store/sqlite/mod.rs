//! The embedded default backend: one SQLite file.
//!
//! WAL mode with a busy timeout so a `send` and a `dlr serve` process can share the file;
//! `synchronous=FULL` because a claim ("this message may be out") must survive power loss,
//! which is why claims and outcomes are batched. Every write transaction starts with
//! `BEGIN IMMEDIATE`, so two writers queue for the lock instead of failing on upgrade.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Sqlite, Transaction};

mod import;

use super::*;

const MIGRATIONS: &[(&str, &str)] = crate::store::migrations!(
    "sqlite",
    "0001_initial",
    "0002_receipts",
    "0003_report_indexes",
    "0004_subscribers_by_number",
    "0005_dispatch_indexes",
    "0006_settings",
    "0007_worker_identity",
    "0008_receipt_parts",
    "0009_launch_and_leases",
    "0010_queue_by_carrier",
);

/// Process-wide SQLite settings; call before the first connection opens (first thing in
/// `main`). Turns off SQLite's memory statistics, which nothing here reads: with them on,
/// every allocation inside SQLite takes one global mutex (about 7% of a large import's CPU,
/// measured with `perf`). Called later, SQLite refuses the setting and keeps the default,
/// which is only slower.
pub fn configure_library() {
    // SAFETY: `sqlite3_config` with SQLITE_CONFIG_MEMSTATUS takes one int. Before
    // `sqlite3_initialize` it only sets a flag; afterwards it returns SQLITE_MISUSE and changes
    // nothing.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int)
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        tracing::debug!(
            rc,
            "SQLite was already initialised; memory statistics stay on"
        );
    }
}

pub struct SqliteStore {
    /// Readers.
    pool: SqlitePool,
    /// The one connection that writes: in-process writers queue here (async) instead of
    /// polling SQLite's busy handler against each other.
    writer: SqlitePool,
    /// Opened read-only (asked for, or `?mode=ro` in the URL): every write is refused.
    read_only: bool,
    refs: References,
}

impl SqliteStore {
    pub async fn open(url: &str, access: Access) -> Result<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let read_only = super::url_mode(url)?.0 || access == Access::ReadOnly;
        let path = path.split_once('?').map_or(path, |(path, _)| path);
        if std::path::Path::new(path).is_dir() {
            bail!(
                "{path} is a folder, not a database file: name a file in it, e.g. --db {}/smscast.db",
                path.trim_end_matches('/')
            );
        }
        if read_only && path != ":memory:" && !std::path::Path::new(path).exists() {
            bail!(
                "there is no database at {path}: import a list first (smscast subscribers import), or point --db at the right file"
            );
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(!read_only)
            .read_only(read_only)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            // Small page caches keep a sender's memory flat however large the campaign: 512 KiB
            // per reader (claims read the head of the queue index), 2 MiB for the writer (the
            // dispatcher's indexes only hold rows in the state they look for, so its working
            // set is small; see migration 0005; 4 MiB measured no faster). An auditor's short-lived read-only process
            // scans millions of rows: 64 MiB.
            .pragma("cache_size", if read_only { "-65536" } else { "-512" });
        // A report's queries are long scans by design: not worth a warning each. A read-only
        // connection never sets the journal mode (it cannot write it): whatever mode the file
        // is in, it reads it.
        let options = if read_only {
            options.disable_statement_logging()
        } else {
            options.journal_mode(SqliteJournalMode::Wal)
        };
        // Every process that may create or migrate the file takes the opening lock first, so
        // any number of them can start together on a missing or empty database: the first
        // creates and migrates it, the others wait (milliseconds) and find it ready.
        let _opening = if read_only || path == ":memory:" {
            None
        } else {
            Some(OpeningLock::take(std::path::Path::new(path))?)
        };
        // Checkpoints every 10,000 WAL pages (~40 MB) instead of SQLite's 1,000: the
        // dispatcher's commits rewrite the same table and index pages over and over, and a
        // checkpoint copies each page once however often it was rewritten since the last one
        // (measured: 4-7% faster `send` on a quiet machine, 20-30% with the disk busy).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", "-2048")
                    .pragma("wal_autocheckpoint", "10000"),
            )
            .await?;
        // Readers connect when first used (many commands never read through them).
        let pool = SqlitePoolOptions::new()
            // A report runs its queries at once; a sender needs few readers.
            .max_connections(if read_only { 8 } else { 2 })
            .connect_lazy_with(options);
        if !read_only {
            migrate(&writer, i64::MAX).await?;
        }
        let refs = campaigns_impl::references(&writer, !read_only).await?;
        Ok(Self {
            pool,
            writer,
            read_only,
            refs,
        })
    }

    /// The pool reads go through.
    fn read(&self) -> &SqlitePool {
        &self.pool
    }

    /// The pool single-statement writes go through.
    fn write(&self) -> &SqlitePool {
        &self.writer
    }

    async fn tx(&self) -> Result<Transaction<'static, Sqlite>> {
        match self.writer.begin_with("BEGIN IMMEDIATE").await {
            // A COMMIT that failed (disk full, I/O error) was rolled back by SQLite itself,
            // but the connection still counts itself inside that transaction and refuses to
            // begin another: close it, and the pool opens a fresh one.
            Err(sqlx::Error::InvalidSavePointStatement) => {
                let mut stuck = self.writer.acquire().await?;
                stuck.close_on_drop();
                drop(stuck);
                Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
            }
            other => Ok(other?),
        }
    }

    /// The transaction of a dispatcher's write cycle: SQLite plans each statement once when
    /// it is prepared, so it is an ordinary write transaction.
    async fn cycle_tx(&self) -> Result<Transaction<'static, Sqlite>> {
        self.tx().await
    }
}

/// Claims only read here: the mark leases the rows (see `mark_in` in src/store/queue.rs).
const CLAIM_LEASES: bool = false;

/// Records a batch of outcomes inside `tx` (see [`Queue::record`]); returns the stale ones
/// and the submissions. Two prepared statements run once per outcome, bound through SQLite's
/// C API (see `with_raw_connection`).
async fn record_in(
    tx: &mut Transaction<'static, Sqlite>,
    worker: &str,
    outcomes: &[Outcome],
    now: i64,
) -> Result<(u64, i64)> {
    let values = ["?2", "?3", "?4", "?5", "?6", "?7", "?8", "?9"];
    let settle_sql = format!(
        "{} WHERE id = ?1 AND attempts = ?10 AND {}",
        crate::store::queue::settle_sql(values, ""),
        DeliveryMove::Settle.guard()
    );
    with_raw_connection(tx, |db| {
        // Every try leaves an `attempts` row, in the order the outcomes came.
        let mut attempt = db.prepare(
            "INSERT INTO attempts (campaign_id, delivery_id, attempt_no, worker, started_ms,
                     latency_ms, http_status, gateway_code, outcome, error)
                 SELECT campaign_id, id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
                 FROM deliveries WHERE id = ?1",
        )?;
        // Only a row still in flight at this attempt moves: a receipt may have finalised
        // it already, or another worker taken it over after this one's lease expired.
        let mut settle = db.prepare(&settle_sql)?;
        let (mut stale, mut submitted) = (0u64, 0i64);
        for o in outcomes {
            let (state, gateway_id, next_attempt, final_ms) = o.settles_to(now);
            attempt.execute(rusqlite::params![
                o.delivery_id,
                o.attempt_no,
                worker,
                o.started_ms,
                o.latency_ms,
                o.http_status,
                o.gateway_code.as_deref(),
                o.kind.label(),
                o.error.as_deref(),
            ])?;
            let settled = settle.execute(rusqlite::params![
                o.delivery_id,
                state,
                o.gateway.as_str(),
                gateway_id,
                next_attempt,
                final_ms,
                o.started_ms + o.latency_ms,
                o.text.as_deref(),
                o.error.as_deref(),
                o.attempt_no,
            ])?;
            if settled == 0 {
                stale += 1;
            } else if state == "submitted" {
                submitted += 1;
            }
        }
        Ok((stale, submitted))
    })
    .await
    .context("Cannot record the outcomes of a batch")
}

/// An exclusive `flock` on `<db>.lock` while a process opens (creates, migrates) the file.
/// Released when dropped, or by the kernel if the process dies. SQLite's own locks are POSIX
/// record locks on the database file, independent of this one.
struct OpeningLock(std::fs::File);

impl OpeningLock {
    fn take(db: &std::path::Path) -> Result<Self> {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&name)
            .with_context(|| format!("cannot create {}", std::path::Path::new(&name).display()))?;
        file.lock()
            .with_context(|| format!("cannot lock {}", std::path::Path::new(&name).display()))?;
        Ok(Self(file))
    }
}

impl Drop for OpeningLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Applies the embedded migrations up to `version`.
async fn migrate(writer: &SqlitePool, version: i64) -> Result<()> {
    migrator(MIGRATIONS, version)
        .run(writer)
        .await
        .context("Failed to apply the database migrations")
}

/// "Is in the list bound as `param`" (one JSON parameter, expanded by `json_each`: the SQL
/// stays static and bound).
fn id_in(param: &str) -> String {
    format!("IN (SELECT value FROM json_each({param}))")
}

/// A list as [`id_in`] and [`rows`] bind it.
fn list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).expect("lists serialise")
}

/// The list bound as `param` as a table of one column, `value`.
fn rows(param: &str, _sql_type: &str) -> String {
    format!("json_each({param})")
}

/// Appends to the audit chain take turns already: the write transaction is exclusive.
async fn serialise_audit(_tx: &mut Transaction<'static, Sqlite>) -> Result<()> {
    Ok(())
}

/// Markings take turns already: the write transaction is exclusive.
async fn lock_numbers(_tx: &mut Transaction<'static, Sqlite>, _ids: &[i64]) -> Result<()> {
    Ok(())
}

/// Runs `work` on the connection's own SQLite handle through rusqlite, inside whatever
/// transaction the connection is in. For bulk binds: sqlx binds each value through several
/// layers (and looks up each numbered placeholder by name), which on the import's and the
/// dispatcher's paths cost more than the writes themselves. rusqlite 0.39 links the same
/// libsqlite3-sys as sqlx, so there is one SQLite in the process. The statements `work`
/// prepares are finalised when it returns.
async fn with_raw_connection<T>(
    conn: &mut sqlx::SqliteConnection,
    work: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
) -> Result<T> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: sqlx's worker thread is locked out of this handle while `handle` lives, past
    // `db`; the wrapper borrows the handle (it does not close it).
    let db = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr())? };
    // Run right here: milliseconds of CPU per call (a dispatcher batch, 16k imported rows),
    // with no I/O wait worth yielding for. `block_in_place` was tried: each call hands this
    // worker's tasks to another thread, and every thread that allocates grows a malloc arena
    // of its own (+2-3 MB peak RSS over a 1M-message `send`).
    let result = work(&db);
    drop(db);
    drop(handle);
    Ok(result?)
}

crate::store::campaigns::launch_chunk_for!(sqlx::Sqlite);
crate::store::campaigns::campaigns_impl!(
    SqliteStore,
    sqlx::Sqlite,
    "",
    // The launch: one file has one writer, the write transaction is the lock.
    launch_lock: "SELECT list_id, launch_after FROM campaigns WHERE id = $1",
    {
        async fn begin_import(&self, list: &str) -> Result<Box<dyn ImportSession>> {
            import::begin(self.writer.acquire().await?, list).await
        }
    }
);
crate::store::queue::queue_impl!(SqliteStore, sqlx::Sqlite, "", "", {
    async fn claim(
        &self,
        campaign_id: i64,
        carrier: &str,
        _worker: &str,
        limit: u32,
        now_ms: i64,
        _lease_until_ms: i64,
    ) -> Result<Vec<Claimed>> {
        // Only a read: one file has one writer at a time, so leasing rows here would cost a
        // durable write per message for nothing. The rows stay `queued` until
        // `mark_in_flight` takes them, conditionally (another process's `send` on the same
        // file may have read them too: whoever marks a row first sends it).
        Ok(sqlx::query_as(
            "SELECT id, msisdn, carrier, district, attempts FROM deliveries
             WHERE campaign_id = $1 AND carrier = $4 AND state = 'queued'
               AND next_attempt_ms <= $2
             ORDER BY next_attempt_ms, id LIMIT $3",
        )
        .bind(campaign_id)
        .bind(now_ms)
        .bind(limit as i64)
        .bind(carrier)
        .fetch_all(&self.pool)
        .await?)
    }
});
crate::store::handover::carriers_impl!(SqliteStore);
// Match passes take the write lock (`BEGIN IMMEDIATE`): one receiver matches at a time.
crate::store::receipts::receipts_impl!(
    SqliteStore,
    sqlx::SqliteConnection,
    begin_with("BEGIN IMMEDIATE"),
    ""
);
crate::store::report_query::reports_impl!(
    SqliteStore,
    sqlx::sqlite::SqliteArguments,
    sqlx::sqlite::SqliteRow,
    str::to_string
);

/// What differs per dialect; the rest of `Store` is written once (the `*_impl!` macros).
impl SqliteStore {
    /// Nothing to do after a launch: SQLite plans from its indexes, not from statistics
    /// (there is no `sqlite_stat1` to go stale).
    async fn launched_rows(&self) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn is_read_only(&self) -> bool {
        self.read_only
    }

    async fn backup_to(&self, path: &std::path::Path) -> Result<()> {
        // One read transaction: the copy is the database as of its start, whatever others
        // write meanwhile, in a single file (no write-ahead log beside it).
        sqlx::query("VACUUM INTO $1")
            .bind(path.display().to_string())
            .execute(&self.pool)
            .await
            .with_context(|| format!("cannot write the copy to {}", path.display()))?;
        Ok(())
    }

    async fn integrity_check(&self) -> Result<String> {
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.join("; "))
    }

    async fn close(&self) {
        if !self.read_only {
            // Copy the write-ahead log into the file and empty it, so that `smscast.db` alone
            // holds the whole record (another process may still have the file open; then
            // this is as far as the log goes now).
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.writer)
                .await
            {
                tracing::debug!("checkpoint at exit: {e}");
            }
        }
        self.pool.close().await;
        self.writer.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database made before subscribers were keyed by their number keeps every member and
    /// delivery, now pointing at the number.
    #[tokio::test]
    async fn subscribers_are_renumbered_by_their_number_and_references_follow() {
        let dir = std::env::temp_dir().join(format!("smscast-migrate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("old.db");
        let _ = std::fs::remove_file(&path);
        let url = format!("sqlite://{}", path.display());
        {
            let options = SqliteConnectOptions::from_str(&url)
                .unwrap()
                .create_if_missing(true)
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .unwrap();
            migrate(&pool, 3).await.unwrap();
            for sql in [
                "INSERT INTO subscribers (id, msisdn, carrier, district, first_seen_ms) VALUES
                     (1, '84987654321', 'viettel', 'Tân An', 0),
                     (2, '84912345678', 'vinaphone', NULL, 0)",
                "INSERT INTO lists (id, name, created_ms) VALUES (1, 'l', 0)",
                "INSERT INTO imports (id, list_id, file_name, sha256, rows_read, imported,
                     already_present, duplicates, rejected, legacy_converted, operator, created_ms)
                 VALUES (1, 1, 'f', 'x', 2, 2, 0, 0, 0, 0, 'op', 0)",
                "INSERT INTO list_members VALUES (1, 1, 1), (1, 2, 1)",
                "INSERT INTO campaigns (id, name, list_id, message_text, encoding, segments,
                     characters, sender, gateway, rate, window_start, window_end, max_attempts,
                     state, created_by, created_ms)
                 VALUES (1, 'c', 1, 't', 'GSM-7', 1, 1, 'S', 'g', 1, 0, 1440, 3, 'running', 'op', 0)",
                "INSERT INTO deliveries (campaign_id, subscriber_id, msisdn, carrier, state)
                 VALUES (1, 1, '84987654321', 'viettel', 'submitted'),
                        (1, 2, '84912345678', 'vinaphone', 'queued')",
            ] {
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }

        let store = SqliteStore::open(&url, Access::ReadWrite).await.unwrap();
        let members: Vec<(i64, String)> = sqlx::query_as(
            "SELECT s.id, s.msisdn FROM list_members m JOIN subscribers s ON s.id = m.subscriber_id
             ORDER BY s.id",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        assert_eq!(
            members,
            [
                (84912345678, "84912345678".to_string()),
                (84987654321, "84987654321".to_string())
            ]
        );
        let deliveries: Vec<(String, String)> = sqlx::query_as(
            "SELECT s.msisdn, d.state FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
             ORDER BY d.id",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        assert_eq!(
            deliveries,
            [
                ("84987654321".to_string(), "submitted".to_string()),
                ("84912345678".to_string(), "queued".to_string())
            ]
        );
        let orphans: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pragma_foreign_key_check")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(orphans, 0);
        let district: Option<String> =
            sqlx::query_scalar("SELECT district FROM subscribers WHERE msisdn = '84987654321'")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(district.as_deref(), Some("Tân An"));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
