//! Imports on SQLite, all in one transaction. Each batch of rows is staged in a small
//! temporary table (multi-row INSERTs) and merged set-wise at once, so the work stays in the
//! page cache and overlaps with the reading of the next batch:
//!
//! 1. new numbers go into `subscribers` (file order; a later row only fills a district or
//!    attributes that were missing);
//! 2. numbers that were already members of the list before this import are remembered once
//!    each in `temp.import_present` (only when the list had members to begin with);
//! 3. members are added to `list_members`; the rows it adds are `imported`.
//!
//! At commit: `already_present` is the size of `temp.import_present`, and
//! `duplicates_in_file` is what remains of the staged rows.

use anyhow::Result;
use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite, Transaction};

use crate::store::{ImportCounts, ImportMeta, ImportSession, NewSubscriber, now_ms};

/// Rows per multi-row INSERT while staging (4 parameters each, under SQLite's 32766).
const STAGE_CHUNK: usize = 8_000;

pub(super) async fn begin(
    mut tx: Transaction<'static, Sqlite>,
    list: &str,
) -> Result<Box<dyn ImportSession>> {
    let now = now_ms();
    for sql in [
        // A large import keeps the subscribers index in memory (64 MiB, this transaction only).
        "PRAGMA cache_size = -65536",
        "DROP TABLE IF EXISTS temp.import_batch",
        "DROP TABLE IF EXISTS temp.import_present",
        "CREATE TEMP TABLE import_batch (msisdn TEXT NOT NULL, carrier TEXT NOT NULL,
             district TEXT, attributes TEXT)",
        "CREATE TEMP TABLE import_present (subscriber_id INTEGER PRIMARY KEY)",
    ] {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    sqlx::query(
        "INSERT INTO lists (name, created_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(list)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let list_id: i64 = sqlx::query_scalar("SELECT id FROM lists WHERE name = $1")
        .bind(list)
        .fetch_one(&mut *tx)
        .await?;
    let had_members: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM list_members WHERE list_id = $1)")
            .bind(list_id)
            .fetch_one(&mut *tx)
            .await?;
    // Filled in at commit; nobody sees it before.
    let import_id: i64 = sqlx::query_scalar(
        "INSERT INTO imports (list_id, file_name, sha256, rows_read, imported, already_present,
                              duplicates, rejected, legacy_converted, operator, created_ms)
         VALUES ($1, '', '', 0, 0, 0, 0, 0, 0, '', $2) RETURNING id",
    )
    .bind(list_id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    Ok(Box::new(SqliteImport {
        tx,
        now,
        list_id,
        import_id,
        had_members,
        staged: 0,
        imported: 0,
    }))
}

struct SqliteImport {
    tx: Transaction<'static, Sqlite>,
    now: i64,
    list_id: i64,
    import_id: i64,
    had_members: bool,
    staged: u64,
    imported: u64,
}

#[async_trait]
impl ImportSession for SqliteImport {
    async fn stage(&mut self, rows: &[NewSubscriber]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let tx = &mut self.tx;
        for chunk in rows.chunks(STAGE_CHUNK) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO temp.import_batch (msisdn, carrier, district, attributes) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.msisdn.as_str().to_owned())
                    .push_bind(r.carrier)
                    .push_bind(r.district.as_deref().map(str::to_owned))
                    .push_bind(r.attributes.clone());
            });
            qb.build().execute(&mut **tx).await?;
        }
        sqlx::query(
            "INSERT INTO subscribers (msisdn, carrier, district, attributes, first_seen_ms)
             SELECT msisdn, carrier, district, attributes, $1 FROM temp.import_batch
             WHERE true ORDER BY rowid
             ON CONFLICT (msisdn) DO UPDATE SET
                 district = COALESCE(subscribers.district, excluded.district),
                 attributes = COALESCE(subscribers.attributes, excluded.attributes)
             WHERE (subscribers.district IS NULL AND excluded.district IS NOT NULL)
                OR (subscribers.attributes IS NULL AND excluded.attributes IS NOT NULL)",
        )
        .bind(self.now)
        .execute(&mut **tx)
        .await?;
        if self.had_members {
            sqlx::query(
                "INSERT OR IGNORE INTO temp.import_present (subscriber_id)
                 SELECT m.subscriber_id FROM temp.import_batch b
                 JOIN subscribers s ON s.msisdn = b.msisdn
                 JOIN list_members m ON m.list_id = $1 AND m.subscriber_id = s.id
                 WHERE m.import_id <> $2",
            )
            .bind(self.list_id)
            .bind(self.import_id)
            .execute(&mut **tx)
            .await?;
        }
        self.imported += sqlx::query(
            "INSERT INTO list_members (list_id, subscriber_id, import_id)
             SELECT $1, s.id, $2 FROM temp.import_batch b
             JOIN subscribers s ON s.msisdn = b.msisdn
             WHERE true ORDER BY b.rowid
             ON CONFLICT DO NOTHING",
        )
        .bind(self.list_id)
        .bind(self.import_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM temp.import_batch")
            .execute(&mut **tx)
            .await?;
        self.staged += rows.len() as u64;
        Ok(())
    }

    async fn commit(mut self: Box<Self>, meta: &ImportMeta) -> Result<ImportCounts> {
        let tx = &mut self.tx;
        let already_present: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM temp.import_present")
            .fetch_one(&mut **tx)
            .await?;
        let already_present = already_present as u64;
        let counts = ImportCounts {
            import_id: self.import_id,
            staged: self.staged,
            imported: self.imported,
            already_present,
            duplicates_in_file: self.staged - self.imported - already_present,
        };
        sqlx::query(
            "UPDATE imports SET file_name = $1, sha256 = $2, rows_read = $3, imported = $4,
                 already_present = $5, duplicates = $6, rejected = $7, legacy_converted = $8,
                 operator = $9
             WHERE id = $10",
        )
        .bind(&meta.file_name)
        .bind(&meta.sha256)
        .bind(meta.rows_read as i64)
        .bind(counts.imported as i64)
        .bind(counts.already_present as i64)
        .bind(counts.duplicates_in_file as i64)
        .bind(meta.rejected as i64)
        .bind(meta.legacy_converted as i64)
        .bind(&meta.operator)
        .bind(self.import_id)
        .execute(&mut **tx)
        .await?;
        for sql in [
            "DROP TABLE temp.import_batch",
            "DROP TABLE temp.import_present",
        ] {
            sqlx::query(sql).execute(&mut **tx).await?;
        }
        sqlx::query("PRAGMA cache_size = -2048")
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(counts)
    }
}
