//! Delivery receipts on SQLite: the shared statements of `src/store/receipts.rs`. Match passes
//! take the write lock (`BEGIN IMMEDIATE`): one receiver matches at a time.

crate::store::receipts::receipts_for!(
    sqlx::Sqlite,
    sqlx::SqliteConnection,
    sqlx::SqlitePool,
    begin_with("BEGIN IMMEDIATE"),
    ""
);
