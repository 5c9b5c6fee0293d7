//! Carrier-run campaigns on PostgreSQL: the shared statements of `src/store/handover.rs`.

crate::store::handover::handover_for!(sqlx::Postgres, sqlx::PgPool);
