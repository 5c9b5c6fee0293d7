//! Imports on PostgreSQL, all in one transaction: the same design, and the same counts, as
//! on SQLite (see `src/store/sqlite/import.rs`). Each batch of rows is staged in a temporary
//! table (one `UNNEST` of bound arrays per chunk) and merged set-wise at once:
//!
//! 1. new numbers go into `subscribers` (file order; a later row only fills a district or
//!    attributes that were missing, and a carrier named by the source replaces the stored
//!    one, as on SQLite). PostgreSQL cannot upsert one key twice in a statement,
//!    so the batch's rows are folded per number first (first occurrence wins), exactly as
//!    SQLite's row-by-row upsert folds them;
//! 2. numbers that were already members of the list before this import are remembered once
//!    each in `import_present` (only when the list had members to begin with);
//! 3. members are added to `list_members`; the rows it adds are `imported`.
//!
//! At commit: `already_present` is the size of `import_present`, and `duplicates_in_file` is
//! what remains of the staged rows.

use anyhow::Result;
use async_trait::async_trait;
use sqlx::{Postgres, Transaction};

use crate::store::{ImportCounts, ImportMeta, ImportSession, NewSubscriber, now_ms};

/// Rows per staging statement: four bound arrays, no parameter-count limit to respect.
const STAGE_CHUNK: usize = 20_000;

pub(super) async fn begin(
    mut tx: Transaction<'static, Postgres>,
    list: &str,
) -> Result<Box<dyn ImportSession>> {
    let now = now_ms();
    for sql in [
        "CREATE TEMP TABLE import_batch (ord BIGINT NOT NULL, msisdn TEXT NOT NULL,
             carrier TEXT NOT NULL, from_source BOOLEAN NOT NULL, district TEXT,
             attributes TEXT) ON COMMIT DROP",
        "CREATE TEMP TABLE import_present (subscriber_id BIGINT PRIMARY KEY) ON COMMIT DROP",
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
    Ok(Box::new(PostgresImport {
        tx,
        now,
        list_id,
        import_id,
        had_members,
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
        let tx = &mut self.tx;
        let mut ord = self.staged as i64;
        for chunk in rows.chunks(STAGE_CHUNK) {
            let msisdn: Vec<&str> = chunk.iter().map(|r| r.msisdn.as_str()).collect();
            let carrier: Vec<&str> = chunk.iter().map(|r| r.carrier).collect();
            let from_source: Vec<bool> = chunk.iter().map(|r| r.carrier_from_source).collect();
            let district: Vec<Option<&str>> = chunk.iter().map(|r| r.district.as_deref()).collect();
            let attributes: Vec<Option<&str>> =
                chunk.iter().map(|r| r.attributes.as_deref()).collect();
            sqlx::query(
                "INSERT INTO import_batch (ord, msisdn, carrier, from_source, district, attributes)
                 SELECT $1 + r.n, r.msisdn, r.carrier, r.from_source, r.district, r.attributes
                 FROM UNNEST($2::text[], $3::text[], $4::bool[], $5::text[], $6::text[])
                      WITH ORDINALITY AS r(msisdn, carrier, from_source, district, attributes, n)",
            )
            .bind(ord)
            .bind(&msisdn)
            .bind(&carrier)
            .bind(&from_source)
            .bind(&district)
            .bind(&attributes)
            .execute(&mut **tx)
            .await?;
            ord += chunk.len() as i64;
        }
        // Folded per number first (first occurrence wins; the first district and attributes
        // present fill the gaps), then one upsert per number.
        sqlx::query(
            "INSERT INTO subscribers (msisdn, carrier, district, attributes, first_seen_ms)
             SELECT msisdn,
                    (array_agg(carrier ORDER BY ord))[1],
                    (array_agg(district ORDER BY ord) FILTER (WHERE district IS NOT NULL))[1],
                    (array_agg(attributes ORDER BY ord) FILTER (WHERE attributes IS NOT NULL))[1],
                    $1
             FROM import_batch GROUP BY msisdn ORDER BY MIN(ord)
             ON CONFLICT (msisdn) DO UPDATE SET
                 district = COALESCE(subscribers.district, excluded.district),
                 attributes = COALESCE(subscribers.attributes, excluded.attributes)
             WHERE (subscribers.district IS NULL AND excluded.district IS NOT NULL)
                OR (subscribers.attributes IS NULL AND excluded.attributes IS NOT NULL)",
        )
        .bind(self.now)
        .execute(&mut **tx)
        .await?;
        // A carrier named by the source replaces the stored one. SQLite applies the rows one
        // by one, so of several rows of a number the last one naming a carrier wins; the
        // same here. (An import hands over one row per number.)
        self.carrier_changed += sqlx::query(
            "UPDATE subscribers s SET carrier = b.carrier
             FROM (SELECT DISTINCT ON (msisdn) msisdn, carrier FROM import_batch
                   WHERE from_source ORDER BY msisdn, ord DESC) b
             WHERE s.msisdn = b.msisdn AND s.carrier <> b.carrier",
        )
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if self.had_members {
            sqlx::query(
                "INSERT INTO import_present (subscriber_id)
                 SELECT DISTINCT m.subscriber_id FROM import_batch b
                 JOIN subscribers s ON s.msisdn = b.msisdn
                 JOIN list_members m ON m.list_id = $1 AND m.subscriber_id = s.id
                 WHERE m.import_id <> $2
                 ON CONFLICT DO NOTHING",
            )
            .bind(self.list_id)
            .bind(self.import_id)
            .execute(&mut **tx)
            .await?;
        }
        self.imported += sqlx::query(
            "INSERT INTO list_members (list_id, subscriber_id, import_id)
             SELECT $1, s.id, $2 FROM import_batch b
             JOIN subscribers s ON s.msisdn = b.msisdn
             ORDER BY b.ord
             ON CONFLICT DO NOTHING",
        )
        .bind(self.list_id)
        .bind(self.import_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        sqlx::query("TRUNCATE import_batch")
            .execute(&mut **tx)
            .await?;
        self.staged += rows.len() as u64;
        Ok(())
    }

    async fn commit(mut self: Box<Self>, meta: &ImportMeta) -> Result<ImportCounts> {
        let tx = &mut self.tx;
        let already_present: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM import_present")
            .fetch_one(&mut **tx)
            .await?;
        let already_present = already_present as u64;
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
        // The temporary tables go with the commit (ON COMMIT DROP).
        self.tx.commit().await?;
        Ok(counts)
    }
}
