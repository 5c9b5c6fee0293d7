//! Delivery receipts on PostgreSQL: the shared statements of `src/store/receipts.rs`. Match
//! passes take pending receipts with `FOR UPDATE SKIP LOCKED`, so several receivers never
//! apply the same receipt twice.

crate::store::receipts::receipts_for!(
    sqlx::Postgres,
    sqlx::PgConnection,
    sqlx::PgPool,
    begin(),
    " FOR UPDATE SKIP LOCKED"
);
