//! Imports on SQLite: rows are staged in a temporary table with multi-row INSERTs, then
//! merged set-wise into `subscribers` and `list_members`, all in one transaction.

use anyhow::Result;
use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite, Transaction};

use crate::store::{ImportCounts, ImportMeta, ImportSession, NewSubscriber, now_ms};

/// Rows per multi-row INSERT while staging an import (5 columns, well under SQLite's limit).
const STAGE_CHUNK: usize = 2_000;

pub(super) async fn begin(mut tx: Transaction<'static, Sqlite>) -> Result<Box<dyn ImportSession>> {
    sqlx::query("DROP TABLE IF EXISTS temp.import_rows")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TEMP TABLE import_rows (line INTEGER NOT NULL, msisdn TEXT NOT NULL,
             carrier TEXT NOT NULL, district TEXT, attributes TEXT)",
    )
    .execute(&mut *tx)
    .await?;
    Ok(Box::new(SqliteImport { tx }))
}

struct SqliteImport {
    tx: Transaction<'static, Sqlite>,
}

#[async_trait]
impl ImportSession for SqliteImport {
    async fn stage(&mut self, rows: &[NewSubscriber]) -> Result<()> {
        for chunk in rows.chunks(STAGE_CHUNK) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO temp.import_rows (line, msisdn, carrier, district, attributes) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.line as i64)
                    .push_bind(r.msisdn.as_str())
                    .push_bind(r.carrier)
                    .push_bind(r.district.as_deref())
                    .push_bind(r.attributes.as_deref());
            });
            qb.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, meta: &ImportMeta) -> Result<ImportCounts> {
        let now = now_ms();
        let tx = &mut self.tx;
        sqlx::query(
            "INSERT INTO lists (name, created_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&meta.list)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        let list_id: i64 = sqlx::query_scalar("SELECT id FROM lists WHERE name = $1")
            .bind(&meta.list)
            .fetch_one(&mut **tx)
            .await?;
        let (staged, distinct): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT msisdn) FROM temp.import_rows")
                .fetch_one(&mut **tx)
                .await?;
        let import_id: i64 = sqlx::query_scalar(
            "INSERT INTO imports (list_id, file_name, sha256, rows_read, imported, already_present,
                                  duplicates, rejected, legacy_converted, operator, created_ms)
             VALUES ($1, $2, $3, $4, 0, 0, 0, $5, $6, $7, $8) RETURNING id",
        )
        .bind(list_id)
        .bind(&meta.file_name)
        .bind(&meta.sha256)
        .bind(meta.rows_read as i64)
        .bind(meta.rejected as i64)
        .bind(meta.legacy_converted as i64)
        .bind(&meta.operator)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
        // First occurrence in the file wins; a later import fills a district that was missing.
        sqlx::query(
            "INSERT INTO subscribers (msisdn, carrier, district, attributes, first_seen_ms)
             SELECT msisdn, carrier, district, attributes, $1 FROM temp.import_rows WHERE true ORDER BY line
             ON CONFLICT (msisdn) DO UPDATE SET
                 district = COALESCE(subscribers.district, excluded.district),
                 attributes = COALESCE(subscribers.attributes, excluded.attributes)",
        )
        .bind(now)
        .execute(&mut **tx)
        .await?;
        let imported = sqlx::query(
            "INSERT INTO list_members (list_id, subscriber_id, import_id)
             SELECT $1, s.id, $2 FROM subscribers s
             WHERE s.msisdn IN (SELECT msisdn FROM temp.import_rows)
             ON CONFLICT DO NOTHING",
        )
        .bind(list_id)
        .bind(import_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        let counts = ImportCounts {
            import_id,
            staged: staged as u64,
            imported,
            already_present: distinct as u64 - imported,
            duplicates_in_file: (staged - distinct) as u64,
        };
        sqlx::query(
            "UPDATE imports SET imported = $1, already_present = $2, duplicates = $3 WHERE id = $4",
        )
        .bind(counts.imported as i64)
        .bind(counts.already_present as i64)
        .bind(counts.duplicates_in_file as i64)
        .bind(import_id)
        .execute(&mut **tx)
        .await?;
        sqlx::query("DROP TABLE temp.import_rows")
            .execute(&mut **tx)
            .await?;
        self.tx.commit().await?;
        Ok(counts)
    }
}
