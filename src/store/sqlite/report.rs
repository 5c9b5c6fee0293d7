//! Auditors' queries on SQLite: the report's shared queries (`store/report_query.rs`) run
//! concurrently on the reader pool, and one number's history.

crate::store::report_query::report_for!(
    sqlx::SqlitePool,
    sqlx::sqlite::SqliteArguments,
    sqlx::sqlite::SqliteRow,
    str::to_string
);
