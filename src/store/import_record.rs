//! The import's own record, as both backends write it: the list (made on first use) and the
//! `imports` row, opened empty when an import begins and filled in at its commit. The rows
//! themselves are staged per dialect (`COPY` on PostgreSQL, multi-row inserts on SQLite).
//! [`import_record_for!`] writes the functions once for each backend's connection type.

/// Writes `open` and `close` for one backend's connection type.
macro_rules! import_record_for {
    ($conn:ty) => {
        mod import_record {
            use anyhow::Result;

            use crate::store::{ImportCounts, ImportMeta};

            /// Makes the list if it is new and opens an empty `imports` row (filled in at
            /// commit; nobody sees it before): `(list_id, import_id)`.
            pub(super) async fn open(conn: &mut $conn, list: &str, now: i64) -> Result<(i64, i64)> {
                sqlx::query(
                    "INSERT INTO lists (name, created_ms) VALUES ($1, $2)
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(list)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                let list_id: i64 = sqlx::query_scalar("SELECT id FROM lists WHERE name = $1")
                    .bind(list)
                    .fetch_one(&mut *conn)
                    .await?;
                let import_id: i64 = sqlx::query_scalar(
                    "INSERT INTO imports (list_id, file_name, sha256, rows_read, imported,
                         already_present, duplicates, rejected, legacy_converted, operator,
                         created_ms)
                     VALUES ($1, '', '', 0, 0, 0, 0, 0, 0, '', $2) RETURNING id",
                )
                .bind(list_id)
                .bind(now)
                .fetch_one(&mut *conn)
                .await?;
                Ok((list_id, import_id))
            }

            /// Fills in the `imports` row with what the import read and did.
            pub(super) async fn close(
                conn: &mut $conn,
                meta: &ImportMeta,
                counts: &ImportCounts,
            ) -> Result<()> {
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
                .bind(counts.import_id)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use import_record_for;
