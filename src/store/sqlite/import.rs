//! Imports on SQLite, all in one transaction: a bulk load. Rows arrive sorted by number with
//! one row per number ([`crate::import_sort`]), and subscribers are keyed by the number
//! itself, so every row is appended to two B-trees:
//!
//! 1. the numbers go into `subscribers` (a number already known only gets a district or
//!    attributes it was missing, and the carrier the source names, when it names one);
//! 2. they go into `list_members`; the rows it adds are `imported`, the others were
//!    `already_present` in the list.
//!
//! What makes it a bulk load:
//! * the rows are bound through SQLite's C API (`with_raw_connection`: rusqlite on sqlx's
//!   own connection, inside its transaction), a few hundred rows per statement;
//! * foreign-key checks are off for this one connection: the list, the import and every
//!   subscriber a member points at are written by this transaction just before, so each
//!   check (three lookups per member) could only pass;
//! * it stays in WAL mode. A rollback journal for the load (SQLite's advice for transactions
//!   over ~100 MB) saved ~10% of a 2-million-row import, but switching the journal mode of
//!   a file that other processes may have open is not worth any risk to the data.
//!
//! The connection is closed when the session ends, however it ends, so the foreign-key
//! setting never outlives the import (every new connection turns foreign keys on).

use anyhow::{Context, Result};
use async_trait::async_trait;
use sqlx::Sqlite;
use sqlx::pool::PoolConnection;

use crate::store::{ImportCounts, ImportMeta, ImportSession, NewSubscriber, now_ms};

crate::store::import_record::import_record_for!(sqlx::SqliteConnection);

pub(super) async fn begin(
    mut conn: PoolConnection<Sqlite>,
    list: &str,
) -> Result<Box<dyn ImportSession>> {
    conn.close_on_drop();
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let tx = &mut *conn;
    let now = now_ms();
    let (list_id, import_id) = import_record::open(tx, list, now).await?;
    Ok(Box::new(SqliteImport {
        conn,
        now,
        list_id,
        import_id,
        staged: 0,
        imported: 0,
        carrier_changed: 0,
    }))
}

struct SqliteImport {
    /// Inside `BEGIN IMMEDIATE`; closed (rolling back) if dropped before the commit.
    conn: PoolConnection<Sqlite>,
    now: i64,
    list_id: i64,
    import_id: i64,
    staged: u64,
    imported: u64,
    carrier_changed: u64,
}

#[async_trait]
impl ImportSession for SqliteImport {
    async fn stage(&mut self, rows: &[NewSubscriber]) -> Result<()> {
        let (now, list_id, import_id) = (self.now, self.list_id, self.import_id);
        let (imported, carrier_changed) = super::with_raw_connection(&mut self.conn, |db| {
            let mut imported = 0;
            let mut carrier_changed = 0;
            // A carrier named by the source replaces the stored one (few rows change:
            // one keyed update each, in this transaction).
            let mut recarrier =
                db.prepare("UPDATE subscribers SET carrier = ?2 WHERE id = ?1 AND carrier <> ?2")?;
            let mut full = None;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut partial = None;
                let (subscribers, members) = if chunk.len() == ROWS_PER_STATEMENT {
                    if full.is_none() {
                        full = Some(prepare(db, chunk.len())?);
                    }
                    full.as_mut().expect("prepared above")
                } else {
                    partial.insert(prepare(db, chunk.len())?)
                };
                subscribers.raw_bind_parameter(1, now)?;
                members.raw_bind_parameter(1, list_id)?;
                members.raw_bind_parameter(2, import_id)?;
                for (i, r) in chunk.iter().enumerate() {
                    let id = r.msisdn.as_u64() as i64;
                    let p = 2 + 4 * i;
                    subscribers.raw_bind_parameter(p, id)?;
                    subscribers.raw_bind_parameter(p + 1, r.carrier)?;
                    subscribers.raw_bind_parameter(p + 2, r.district.as_deref())?;
                    subscribers.raw_bind_parameter(p + 3, r.attributes.as_deref())?;
                    members.raw_bind_parameter(3 + i, id)?;
                }
                subscribers.raw_execute()?;
                imported += members.raw_execute()? as u64;
                for r in chunk.iter().filter(|r| r.carrier_from_source) {
                    carrier_changed +=
                        recarrier.execute((r.msisdn.as_u64() as i64, r.carrier))? as u64;
                }
            }
            Ok((imported, carrier_changed))
        })
        .await
        .context("Cannot add the subscribers to the list")?;
        self.imported += imported;
        self.carrier_changed += carrier_changed;
        self.staged += rows.len() as u64;
        Ok(())
    }

    async fn commit(mut self: Box<Self>, meta: &ImportMeta) -> Result<ImportCounts> {
        let tx = &mut *self.conn;
        let counts = ImportCounts {
            import_id: self.import_id,
            staged: self.staged,
            imported: self.imported,
            already_present: self.staged - self.imported,
            duplicates_in_file: meta.duplicates_in_file,
            carrier_changed: self.carrier_changed,
        };
        import_record::close(tx, meta, &counts).await?;
        sqlx::query("COMMIT").execute(&mut *tx).await?;
        Ok(counts)
    }
}

/// Rows per statement: one statement walks its B-trees once for many rows.
const ROWS_PER_STATEMENT: usize = 256;

/// The two statements for a chunk of `rows` rows.
fn prepare(
    db: &rusqlite::Connection,
    rows: usize,
) -> rusqlite::Result<(rusqlite::Statement<'_>, rusqlite::Statement<'_>)> {
    Ok((
        db.prepare(&insert_subscribers(rows))?,
        db.prepare(&insert_members(rows))?,
    ))
}

/// Inserts `rows` subscribers: `?1` the time, then 4 values a row (`?2`…). A number already
/// known only gets a district or attributes it was missing. Only placeholders are built
/// here, never values.
fn insert_subscribers(rows: usize) -> String {
    let values = vec!["(?,?,?,?)"; rows].join(",");
    format!(
        "INSERT INTO subscribers (id, carrier, district, attributes, first_seen_ms)
         SELECT column1, column2, column3, column4, ?1 FROM (VALUES {values}) WHERE true
         ON CONFLICT (id) DO UPDATE SET
             district = COALESCE(subscribers.district, excluded.district),
             attributes = COALESCE(subscribers.attributes, excluded.attributes)
         WHERE (subscribers.district IS NULL AND excluded.district IS NOT NULL)
            OR (subscribers.attributes IS NULL AND excluded.attributes IS NOT NULL)"
    )
}

/// Adds `rows` members: `?1` the list, `?2` the import, then the numbers. A number already
/// in the list changes nothing (counted as already present).
fn insert_members(rows: usize) -> String {
    let values = vec!["(?)"; rows].join(",");
    format!(
        "INSERT INTO list_members (list_id, subscriber_id, import_id)
         SELECT ?1, column1, ?2 FROM (VALUES {values}) WHERE true ON CONFLICT DO NOTHING"
    )
}
