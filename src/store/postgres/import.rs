//! Imports on PostgreSQL: rows are staged in a temporary table (one `UNNEST` of bound arrays
//! per chunk), then merged set-wise into `subscribers` and `list_members`, all in one
//! transaction — the same steps, and the same counts, as on SQLite.

use anyhow::Result;
use async_trait::async_trait;
use sqlx::{Postgres, Transaction};

use crate::store::{ImportCounts, ImportMeta, ImportSession, NewSubscriber, now_ms};

/// Rows per staging statement: five bound arrays, no parameter-count limit to respect.
const STAGE_CHUNK: usize = 20_000;

pub(super) async fn begin(
    mut tx: Transaction<'static, Postgres>,
) -> Result<Box<dyn ImportSession>> {
    sqlx::query(
        "CREATE TEMP TABLE import_rows (line BIGINT NOT NULL, msisdn TEXT NOT NULL,
             carrier TEXT NOT NULL, district TEXT, attributes TEXT) ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    Ok(Box::new(PostgresImport { tx }))
}

struct PostgresImport {
    tx: Transaction<'static, Postgres>,
}

#[async_trait]
impl ImportSession for PostgresImport {
    async fn stage(&mut self, rows: &[NewSubscriber]) -> Result<()> {
        for chunk in rows.chunks(STAGE_CHUNK) {
            let line: Vec<i64> = chunk.iter().map(|r| r.line as i64).collect();
            let msisdn: Vec<&str> = chunk.iter().map(|r| r.msisdn.as_str()).collect();
            let carrier: Vec<&str> = chunk.iter().map(|r| r.carrier).collect();
            let district: Vec<Option<&str>> = chunk.iter().map(|r| r.district.as_deref()).collect();
            let attributes: Vec<Option<&str>> =
                chunk.iter().map(|r| r.attributes.as_deref()).collect();
            sqlx::query(
                "INSERT INTO import_rows (line, msisdn, carrier, district, attributes)
                 SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])",
            )
            .bind(&line)
            .bind(&msisdn)
            .bind(&carrier)
            .bind(&district)
            .bind(&attributes)
            .execute(&mut *self.tx)
            .await?;
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
            sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT msisdn) FROM import_rows")
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
        // First occurrence in the file wins; a later row (or import) fills a district that was
        // missing. PostgreSQL cannot upsert one key twice in a statement, so the file's rows
        // are folded per number first, exactly as SQLite's row-by-row upsert would fold them.
        sqlx::query(
            "INSERT INTO subscribers (msisdn, carrier, district, attributes, first_seen_ms)
             SELECT msisdn,
                    (array_agg(carrier ORDER BY line))[1],
                    (array_agg(district ORDER BY line) FILTER (WHERE district IS NOT NULL))[1],
                    (array_agg(attributes ORDER BY line) FILTER (WHERE attributes IS NOT NULL))[1],
                    $1
             FROM import_rows GROUP BY msisdn ORDER BY MIN(line)
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
             WHERE s.msisdn IN (SELECT msisdn FROM import_rows)
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
        self.tx.commit().await?;
        Ok(counts)
    }
}
