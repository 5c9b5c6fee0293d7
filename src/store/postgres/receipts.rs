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

/// A deadlock or serialization failure: the transaction was rolled back and may be retried.
pub(super) fn is_retryable(e: &anyhow::Error) -> bool {
    e.downcast_ref::<sqlx::Error>()
        .and_then(|e| e.as_database_error())
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01" || c == "40001")
}
