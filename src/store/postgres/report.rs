//! Auditors' queries on PostgreSQL: the report's shared queries (`store/report_query.rs`) run
//! concurrently on the pool, and one number's history.

crate::store::report_query::report_for!(
    sqlx::PgPool,
    sqlx::postgres::PgArguments,
    sqlx::postgres::PgRow,
    crate::store::report_query::numbered
);
