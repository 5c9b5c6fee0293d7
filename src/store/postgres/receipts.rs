//! Delivery receipts on PostgreSQL: the same semantics as `src/store/sqlite/receipts.rs`.
//! Append every receipt, apply it to its message without ever leaving a final state (every
//! state change re-checks the current state in its `WHERE`, so a concurrent outcome or
//! receipt cannot be overwritten), keep the ones that match nothing yet, expire the silent
//! ones. Match passes take pending receipts with `FOR UPDATE SKIP LOCKED`, so several
//! receivers never apply the same receipt twice.

use anyhow::Result;
use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Postgres, Transaction};

use crate::store::{
    MatchedReceipts, NewReceipt, ReceiptCounts, ReceiptEffect, ReceiptStatus, parse_reference,
};

const PENDING: i64 = 0;
const MATCHED: i64 = 1;
const UNMATCHED: i64 = 2;
/// Pending receipts looked at per transaction.
const MATCH_BATCH: i64 = 1_000;

pub(super) async fn record(
    mut tx: Transaction<'static, Postgres>,
    receipts: &[NewReceipt],
) -> Result<Vec<ReceiptEffect>> {
    let mut effects = Vec::with_capacity(receipts.len());
    for r in receipts {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO receipts (received_ms, gateway, gateway_id, status, raw, matched,
                 reference, gateway_status, error_code, effect)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending') RETURNING id",
        )
        .bind(r.received_ms)
        .bind(&r.gateway)
        .bind(&r.gateway_id)
        .bind(r.status.as_str())
        .bind(&r.raw)
        .bind(PENDING)
        .bind(&r.reference)
        .bind(&r.gateway_status)
        .bind(&r.error_code)
        .fetch_one(&mut *tx)
        .await?;
        let target = Target {
            gateway: &r.gateway,
            reference: r.reference.as_deref(),
            gateway_id: r.gateway_id.as_deref(),
            status: r.status,
            gateway_status: &r.gateway_status,
            error_code: r.error_code.as_deref(),
            received_ms: r.received_ms,
        };
        effects.push(apply(&mut tx, id, &target).await?.effect());
    }
    tx.commit().await?;
    Ok(effects)
}

/// A stored receipt, as the match step reads it.
struct Target<'a> {
    gateway: &'a str,
    reference: Option<&'a str>,
    gateway_id: Option<&'a str>,
    status: ReceiptStatus,
    gateway_status: &'a str,
    error_code: Option<&'a str>,
    received_ms: i64,
}

/// What [`apply`] found.
enum Applied {
    Matched(ReceiptEffect),
    /// The message exists, but its submission is not recorded yet.
    Waiting,
    /// No message has this reference or gateway id (yet).
    NotFound,
}

impl Applied {
    fn effect(&self) -> ReceiptEffect {
        match self {
            Self::Matched(e) => *e,
            Self::Waiting | Self::NotFound => ReceiptEffect::Pending,
        }
    }
}

/// Finds the receipt's message (by our reference, else by the gateway's id) and moves it on
/// if the receipt says something new. Marks the receipt matched, or leaves it pending.
async fn apply(conn: &mut PgConnection, receipt_id: i64, r: &Target<'_>) -> Result<Applied> {
    let mut found: Option<(i64, String)> = None;
    if let Some((campaign, delivery)) = r.reference.and_then(parse_reference) {
        found =
            sqlx::query_as("SELECT id, state FROM deliveries WHERE id = $1 AND campaign_id = $2")
                .bind(delivery)
                .bind(campaign)
                .fetch_optional(&mut *conn)
                .await?;
    }
    if found.is_none()
        && let Some(gid) = r.gateway_id
    {
        found = sqlx::query_as(
            "SELECT id, state FROM deliveries WHERE gateway_id = $1 AND gateway = $2
             ORDER BY id DESC LIMIT 1",
        )
        .bind(gid)
        .bind(r.gateway)
        .fetch_optional(&mut *conn)
        .await?;
    }
    let Some((delivery_id, state)) = found else {
        return Ok(Applied::NotFound);
    };
    // The submission is not recorded yet: wait, so the outcome does not overwrite the receipt.
    if state == "claimed" || state == "sending" {
        sqlx::query("UPDATE receipts SET delivery_id = $2 WHERE id = $1")
            .bind(receipt_id)
            .bind(delivery_id)
            .execute(&mut *conn)
            .await?;
        return Ok(Applied::Waiting);
    }
    let changed = match r.status {
        ReceiptStatus::Enroute => {
            // Proof that the gateway took a message we were in doubt about.
            sqlx::query(
                "UPDATE deliveries SET state = 'submitted', submitted_ms = COALESCE(submitted_ms, $2),
                     last_error = NULL
                 WHERE id = $1 AND state = 'unknown'",
            )
            .bind(delivery_id)
            .bind(r.received_ms)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        }
        final_status => {
            let error = match final_status {
                ReceiptStatus::Delivered => None,
                _ => Some(format!(
                    "receipt: {} ({}{})",
                    final_status.as_str(),
                    r.gateway_status,
                    r.error_code
                        .map(|c| format!(", error {c}"))
                        .unwrap_or_default()
                )),
            };
            // Only from a non-final state: a late or repeated receipt never moves a final one.
            sqlx::query(
                "UPDATE deliveries SET state = $2, final_ms = $3,
                     last_error = COALESCE($4::text, last_error),
                     lease_owner = NULL, lease_expires_ms = NULL
                 WHERE id = $1 AND state IN ('submitted', 'unknown', 'queued')",
            )
            .bind(delivery_id)
            .bind(final_status.as_str())
            .bind(r.received_ms)
            .bind(error)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        }
    };
    let effect = if changed > 0 {
        ReceiptEffect::Applied
    } else {
        ReceiptEffect::NoChange
    };
    sqlx::query("UPDATE receipts SET matched = $2, delivery_id = $3, effect = $4 WHERE id = $1")
        .bind(receipt_id)
        .bind(MATCHED)
        .bind(delivery_id)
        .bind(effect.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(Applied::Matched(effect))
}

type PendingRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    i64,
);

pub(super) async fn match_pending(
    pool: &PgPool,
    unmatched_before_ms: i64,
) -> Result<MatchedReceipts> {
    let mut out = MatchedReceipts::default();
    let mut after = 0i64;
    loop {
        let mut tx = pool.begin().await?;
        // SKIP LOCKED: a receipt another receiver is matching right now is its business.
        let rows: Vec<PendingRow> = sqlx::query_as(
            "SELECT id, gateway, reference, gateway_id, status, gateway_status, error_code,
                    received_ms
             FROM receipts WHERE matched = $3 AND id > $1 ORDER BY id LIMIT $2
             FOR UPDATE SKIP LOCKED",
        )
        .bind(after)
        .bind(MATCH_BATCH)
        .bind(PENDING)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else {
            tx.commit().await?;
            break;
        };
        after = last.0;
        let full = rows.len() as i64 == MATCH_BATCH;
        for (id, gateway, reference, gateway_id, status, gateway_status, error_code, received) in
            &rows
        {
            let status = match status.as_str() {
                "delivered" => ReceiptStatus::Delivered,
                "failed" => ReceiptStatus::Failed,
                "expired" => ReceiptStatus::Expired,
                _ => ReceiptStatus::Enroute,
            };
            let target = Target {
                gateway,
                reference: reference.as_deref(),
                gateway_id: gateway_id.as_deref(),
                status,
                gateway_status: gateway_status.as_deref().unwrap_or(""),
                error_code: error_code.as_deref(),
                received_ms: *received,
            };
            match apply(&mut tx, *id, &target).await? {
                Applied::Matched(ReceiptEffect::Applied) => out.applied += 1,
                Applied::Matched(_) => out.no_change += 1,
                Applied::NotFound if *received < unmatched_before_ms => {
                    sqlx::query(
                        "UPDATE receipts SET matched = $2, effect = 'unmatched' WHERE id = $1",
                    )
                    .bind(id)
                    .bind(UNMATCHED)
                    .execute(&mut *tx)
                    .await?;
                    out.unmatched += 1;
                }
                Applied::NotFound | Applied::Waiting => out.still_pending += 1,
            }
        }
        tx.commit().await?;
        if !full {
            break;
        }
    }
    Ok(out)
}

pub(super) async fn expire(pool: &PgPool, submitted_before_ms: i64, now_ms: i64) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE deliveries SET state = 'expired', final_ms = $2,
             last_error = 'no final delivery receipt within the validity period'
         WHERE state = 'submitted' AND submitted_ms < $1",
    )
    .bind(submitted_before_ms)
    .bind(now_ms)
    .execute(pool)
    .await?
    .rows_affected())
}

pub(super) async fn counts(pool: &PgPool) -> Result<ReceiptCounts> {
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT matched, COUNT(*) FROM receipts GROUP BY matched")
            .fetch_all(pool)
            .await?;
    let mut c = ReceiptCounts::default();
    for (m, n) in rows {
        c.total += n;
        match m {
            PENDING => c.pending += n,
            MATCHED => c.matched += n,
            UNMATCHED => c.unmatched += n,
            _ => {}
        }
    }
    Ok(c)
}

/// A deadlock or serialization failure: the transaction was rolled back and may be retried.
pub(super) fn is_retryable(e: &anyhow::Error) -> bool {
    e.downcast_ref::<sqlx::Error>()
        .and_then(|e| e.as_database_error())
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01" || c == "40001")
}
