//! Carrier-run campaigns on SQLite: the shared statements of `src/store/handover.rs`, in
//! write transactions (`BEGIN IMMEDIATE`).

crate::store::handover::handover_for!(sqlx::Sqlite, sqlx::SqlitePool);
