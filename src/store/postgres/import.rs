//! Imports on PostgreSQL, all in one transaction: the same counts as on SQLite (see
//! `src/store/sqlite/import.rs`), linear in the rows whatever the plans. Every row is streamed
//! with `COPY` into an unlogged staging table as it is read; at commit the staging table is
//! analysed and merged set-wise, once:
//!
//! 1. numbers stored already: a missing district or attributes is filled, a carrier named by
//!    the source replaces the stored one (as on SQLite), those already on the list are
//!    counted (`already_present`) and the others join it;
//! 2. numbers new to the database go into `subscribers` and onto the list in one statement.
//!
//! Imports take turns (an advisory lock), so step 2 is a plain insert, not a per-row upsert.
//! Merging per batch instead (as round 1 did) made each batch join the whole `subscribers`
//! table once it outgrew memory: the import grew with the square of the list.
//!
//! The first import into an empty store (a province's list, on a new database) takes a bulk
//! path instead: no staging table, every row is `COPY`ed straight into `subscribers` (ids
//! reserved from its sequence) and `list_members`, and the tables' three indexes are built
//! once at the end rather than grown one row at a time. Index upkeep was
//! most of the cost: at a million rows, `COPY` into a table with one unique text index took
//! 9x as long as into the same table without it. The indexes are dropped and rebuilt inside
//! the import's transaction, so a failed or killed import leaves them as they were; other
//! sessions wait for the import to commit before they read either table (an empty store has
//! nothing to send meanwhile). `tests/postgres.rs` checks the rebuilt indexes against the
//! migrations'.

use anyhow::{Context, Result};
use async_trait::async_trait;
use sqlx::{Postgres, Transaction};

use crate::store::{ImportCounts, ImportMeta, ImportSession, NewSubscriber, now_ms};

crate::store::import_record::import_record_for!(sqlx::PgConnection);

/// `pg_advisory_xact_lock` key serialising imports ("import" in ASCII).
const IMPORT_LOCK: i64 = 0x0000_696d_706f_7274;

/// The bulk path's first steps (an empty store): the indexes of the two tables go, until
/// [`BULK_END`] builds them again as `migrations/postgres/0001_initial.sql` made them. No
/// foreign key points at either table (`1002_queue_order.sql` dropped them).
const BULK_BEGIN: [&str; 2] = [
    "ALTER TABLE subscribers DROP CONSTRAINT subscribers_pkey,
                             DROP CONSTRAINT subscribers_msisdn_key",
    "ALTER TABLE list_members DROP CONSTRAINT list_members_pkey",
];

/// The bulk path's last steps. A number twice in the file (the reader hands each over once)
/// would fail here, and the whole import with it.
const BULK_END: [&str; 3] = [
    "SET LOCAL maintenance_work_mem = '256MB'",
    "ALTER TABLE subscribers ADD CONSTRAINT subscribers_pkey PRIMARY KEY (id),
                             ADD CONSTRAINT subscribers_msisdn_key UNIQUE (msisdn)",
    "ALTER TABLE list_members ADD CONSTRAINT list_members_pkey PRIMARY KEY (list_id, subscriber_id)",
];

pub(super) async fn begin(
    mut tx: Transaction<'static, Postgres>,
    list: &str,
) -> Result<Box<dyn ImportSession>> {
    let now = now_ms();
    // One import at a time: the merges at commit insert the numbers not stored yet without a
    // per-row upsert, which is only right while no other import adds numbers meanwhile; and
    // the staging table has one name.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(IMPORT_LOCK)
        .execute(&mut *tx)
        .await?;
    let (list_id, import_id) = import_record::open(&mut tx, list, now).await?;
    let had_subscribers: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM subscribers)")
        .fetch_one(&mut *tx)
        .await?;
    let steps: &[&'static str] = if had_subscribers {
        &[
            // Unlogged (no WAL) and in shared buffers: a temporary table lives in a few MB of
            // local buffers and was twice as slow to merge from at a million rows. Created
            // and dropped inside the import's transaction: a failed or killed import leaves
            // nothing.
            "CREATE UNLOGGED TABLE import_staging (ord BIGINT NOT NULL, msisdn TEXT NOT NULL,
                 carrier TEXT NOT NULL, from_source BOOLEAN NOT NULL, district TEXT,
                 attributes TEXT)",
            // The merges are hash joins and sorts over the whole file: give them room.
            "SET LOCAL work_mem = '128MB'",
        ]
    } else {
        &BULK_BEGIN
    };
    for &sql in steps {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    let had_members: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM list_members WHERE list_id = $1)")
            .bind(list_id)
            .fetch_one(&mut *tx)
            .await?;
    Ok(Box::new(PostgresImport {
        tx,
        now,
        list_id,
        import_id,
        had_members,
        had_subscribers,
        carrier_from_source: false,
        staged: 0,
        imported: 0,
        carrier_changed: 0,
    }))
}

struct PostgresImport {
    tx: Transaction<'static, Postgres>,
    now: i64,
    list_id: i64,
    import_id: i64,
    had_members: bool,
    /// The database had subscribers before this import (else every number is new).
    had_subscribers: bool,
    /// Some row names its carrier (`--carrier`, or a carrier column).
    carrier_from_source: bool,
    staged: u64,
    imported: u64,
    carrier_changed: u64,
}

#[async_trait]
impl ImportSession for PostgresImport {
    async fn stage(&mut self, rows: &[NewSubscriber]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if !self.had_subscribers {
            return self.stage_bulk(rows).await;
        }
        self.carrier_from_source |= rows.iter().any(|r| r.carrier_from_source);
        let mut data = Vec::with_capacity(rows.len() * 64);
        for (i, r) in rows.iter().enumerate() {
            let ord = (self.staged + i as u64).to_string();
            copy_row(
                &mut data,
                &[
                    Some(ord.as_str()),
                    Some(r.msisdn.as_str()),
                    Some(r.carrier),
                    Some(if r.carrier_from_source { "t" } else { "f" }),
                    r.district.as_deref(),
                    r.attributes.as_deref(),
                ],
            );
        }
        let mut copy = self
            .tx
            .copy_in_raw(
                "COPY import_staging (ord, msisdn, carrier, from_source, district, attributes)
                 FROM STDIN",
            )
            .await?;
        copy.send(data).await?;
        copy.finish().await?;
        self.staged += rows.len() as u64;
        Ok(())
    }

    async fn commit(mut self: Box<Self>, meta: &ImportMeta) -> Result<ImportCounts> {
        if !self.had_subscribers {
            return self.commit_bulk(meta).await;
        }
        let tx = &mut self.tx;
        // The planner sees the staging table as it is (empty when created): hash joins and
        // sorts over the file, not a loop of index probes sized for a few rows.
        sqlx::query("ANALYZE import_staging")
            .execute(&mut **tx)
            .await?;
        // Numbers stored already: the import fills a missing district or attributes, a
        // carrier named by the source replaces the stored one, and they join the list.
        sqlx::query(
            "UPDATE subscribers s SET district = COALESCE(s.district, b.district),
                 attributes = COALESCE(s.attributes, b.attributes)
             FROM import_staging b
             WHERE s.msisdn = b.msisdn
               AND ((s.district IS NULL AND b.district IS NOT NULL)
                 OR (s.attributes IS NULL AND b.attributes IS NOT NULL))",
        )
        .execute(&mut **tx)
        .await?;
        if self.carrier_from_source {
            self.carrier_changed = sqlx::query(
                "UPDATE subscribers s SET carrier = b.carrier FROM import_staging b
                 WHERE s.msisdn = b.msisdn AND b.from_source AND s.carrier <> b.carrier",
            )
            .execute(&mut **tx)
            .await?
            .rows_affected();
        }
        let mut already_present: i64 = 0;
        if self.had_members {
            already_present = sqlx::query_scalar(
                "SELECT COUNT(*) FROM import_staging b
                 JOIN subscribers s ON s.msisdn = b.msisdn
                 JOIN list_members m ON m.list_id = $1 AND m.subscriber_id = s.id",
            )
            .bind(self.list_id)
            .fetch_one(&mut **tx)
            .await?;
        }
        self.imported += sqlx::query(
            "INSERT INTO list_members (list_id, subscriber_id, import_id)
             SELECT $1, s.id, $2 FROM import_staging b
             JOIN subscribers s ON s.msisdn = b.msisdn
             WHERE NOT EXISTS (SELECT 1 FROM list_members m
                               WHERE m.list_id = $1 AND m.subscriber_id = s.id)",
        )
        .bind(self.list_id)
        .bind(self.import_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        // Numbers new to the database, and their membership, in one statement (no join to
        // find the ids just made). The reader hands each number over once (src/import_sort.rs
        // sorts and deduplicates the file) and imports take turns (the lock taken at
        // `begin`), so a plain insert of the numbers not stored yet is enough: no per-row
        // upsert (ON CONFLICT cost 1.6 s more per million).
        self.imported += sqlx::query(
            "WITH new AS (
                 INSERT INTO subscribers (msisdn, carrier, district, attributes, first_seen_ms)
                 SELECT b.msisdn, b.carrier, b.district, b.attributes, $3 FROM import_staging b
                 WHERE NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.msisdn = b.msisdn)
                 RETURNING id)
             INSERT INTO list_members (list_id, subscriber_id, import_id)
             SELECT $1, id, $2 FROM new",
        )
        .bind(self.list_id)
        .bind(self.import_id)
        .bind(self.now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        sqlx::query("DROP TABLE import_staging")
            .execute(&mut **tx)
            .await?;
        self.close(meta, already_present as u64).await
    }
}

impl PostgresImport {
    /// The bulk path's rows (see the module's comment): ids from `subscribers`' sequence,
    /// then both tables by `COPY`.
    async fn stage_bulk(&mut self, rows: &[NewSubscriber]) -> Result<()> {
        let tx = &mut self.tx;
        // Only imports insert subscribers, one at a time (the lock), so the block of ids
        // between `nextval` and the `setval` is this batch's alone.
        let last: i64 = sqlx::query_scalar(
            "SELECT setval(pg_get_serial_sequence('subscribers', 'id'),
                           nextval(pg_get_serial_sequence('subscribers', 'id')) + $1 - 1)",
        )
        .bind(rows.len() as i64)
        .fetch_one(&mut **tx)
        .await?;
        let first = last - rows.len() as i64 + 1;
        let (list_id, import_id, now) = (
            self.list_id.to_string(),
            self.import_id.to_string(),
            self.now.to_string(),
        );
        let mut subscribers = Vec::with_capacity(rows.len() * 64);
        let mut members = Vec::with_capacity(rows.len() * 24);
        for (i, r) in rows.iter().enumerate() {
            let id = (first + i as i64).to_string();
            copy_row(
                &mut subscribers,
                &[
                    Some(id.as_str()),
                    Some(r.msisdn.as_str()),
                    Some(r.carrier),
                    r.district.as_deref(),
                    r.attributes.as_deref(),
                    Some(now.as_str()),
                ],
            );
            copy_row(
                &mut members,
                &[
                    Some(list_id.as_str()),
                    Some(id.as_str()),
                    Some(import_id.as_str()),
                ],
            );
        }
        for (sql, data) in [
            (
                "COPY subscribers (id, msisdn, carrier, district, attributes, first_seen_ms)
                 FROM STDIN",
                subscribers,
            ),
            (
                "COPY list_members (list_id, subscriber_id, import_id) FROM STDIN",
                members,
            ),
        ] {
            let mut copy = tx.copy_in_raw(sql).await?;
            copy.send(data).await?;
            copy.finish().await?;
        }
        self.staged += rows.len() as u64;
        self.imported += rows.len() as u64;
        Ok(())
    }

    async fn commit_bulk(mut self: Box<Self>, meta: &ImportMeta) -> Result<ImportCounts> {
        for sql in BULK_END {
            sqlx::query(sql).execute(&mut *self.tx).await.context(
                "Cannot rebuild the indexes that keep each number once; nothing was imported",
            )?;
        }
        self.close(meta, 0).await
    }

    async fn close(
        mut self: Box<Self>,
        meta: &ImportMeta,
        already_present: u64,
    ) -> Result<ImportCounts> {
        let counts = ImportCounts {
            import_id: self.import_id,
            staged: self.staged,
            imported: self.imported,
            already_present,
            duplicates_in_file: meta.duplicates_in_file + self.staged
                - self.imported
                - already_present,
            carrier_changed: self.carrier_changed,
        };
        import_record::close(&mut self.tx, meta, &counts).await?;
        self.tx.commit().await?;
        Ok(counts)
    }
}

/// Appends one row in `COPY … FROM STDIN`'s text format: tab-separated, `\N` for NULL,
/// backslash, tab, newline and carriage return escaped.
fn copy_row(out: &mut Vec<u8>, fields: &[Option<&str>]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match f {
            None => out.extend_from_slice(b"\\N"),
            Some(v) => {
                for b in v.bytes() {
                    match b {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        _ => out.push(b),
                    }
                }
            }
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::copy_row;

    #[test]
    fn copy_rows_escape_what_the_text_format_reads_as_syntax() {
        let mut out = Vec::new();
        copy_row(
            &mut out,
            &[Some("84912345678"), None, Some("a\tb\nc\\d\re")],
        );
        assert_eq!(out, b"84912345678\t\\N\ta\\tb\\nc\\\\d\\re\n");
    }
}
