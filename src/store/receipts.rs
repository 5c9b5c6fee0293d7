//! Delivery receipts, on both backends: append every receipt as received, apply it to its
//! message as the transition table allows ([`DeliveryMove::ReceiptFinal`],
//! [`DeliveryMove::ReceiptEnroute`]), keep the ones that match nothing yet, expire the silent
//! ones.
//!
//! A receipt moves a message only if the message went out through the gateway the receipt was
//! authenticated for, and only by a reference this database signed (or, for messages out
//! before references were signed, the old form). The statements are the same text on SQLite
//! and PostgreSQL; [`receipts_for!`] writes the functions once for each backend's connection
//! types, since sqlx's executors are concrete types per database.

use crate::store::{ReceiptStatus, contract::DeliveryMove};

pub(crate) const PENDING: i64 = 0;
pub(crate) const MATCHED: i64 = 1;
pub(crate) const UNMATCHED: i64 = 2;
/// Pending receipts looked at per transaction.
pub(crate) const MATCH_BATCH: i64 = 1_000;

/// A stored receipt, as the match step reads it.
pub(crate) struct Target<'a> {
    pub gateway: &'a str,
    pub reference: Option<&'a str>,
    pub gateway_id: Option<&'a str>,
    pub status: ReceiptStatus,
    pub gateway_status: &'a str,
    pub error_code: Option<&'a str>,
    pub received_ms: i64,
}

/// What matching one receipt found.
pub(crate) enum Applied {
    Matched(crate::store::ReceiptEffect),
    /// The message exists, but its submission is not recorded yet.
    Waiting,
    /// No message has this reference or gateway id (yet).
    NotFound,
}

impl Applied {
    pub fn effect(&self) -> crate::store::ReceiptEffect {
        match self {
            Self::Matched(e) => *e,
            Self::Waiting | Self::NotFound => crate::store::ReceiptEffect::Pending,
        }
    }
}

pub(crate) fn status_from(s: &str) -> ReceiptStatus {
    match s {
        "delivered" => ReceiptStatus::Delivered,
        "failed" => ReceiptStatus::Failed,
        "expired" => ReceiptStatus::Expired,
        _ => ReceiptStatus::Enroute,
    }
}

/// The error text a non-delivered final receipt leaves on its message.
pub(crate) fn receipt_error(r: &Target<'_>) -> Option<String> {
    match r.status {
        ReceiptStatus::Delivered | ReceiptStatus::Enroute => None,
        s => Some(format!(
            "receipt: {} ({}{})",
            s.as_str(),
            r.gateway_status,
            r.error_code
                .map(|c| format!(", error {c}"))
                .unwrap_or_default()
        )),
    }
}

/// `ReceiptEnroute`: `$1` id, `$2` received.
pub(crate) fn enroute_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "UPDATE deliveries SET state = 'submitted', submitted_ms = COALESCE(submitted_ms, $2),
             last_error = NULL
         WHERE id = $1 AND {}",
            DeliveryMove::ReceiptEnroute.guard()
        )
    });
    SQL.as_str()
}

/// `ReceiptFinal`: `$1` id, `$2` state, `$3` received, `$4` error.
pub(crate) fn final_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "UPDATE deliveries SET state = $2, final_ms = $3,
             last_error = COALESCE(CAST($4 AS TEXT), last_error),
             lease_owner = NULL, lease_expires_ms = NULL
         WHERE id = $1 AND {}",
            DeliveryMove::ReceiptFinal.guard()
        )
    });
    SQL.as_str()
}

/// `Expire`: `$1` submitted before, `$2` now, `$3` gateway.
pub(crate) fn expire_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "UPDATE deliveries SET state = 'expired', final_ms = $2,
             last_error = 'no final delivery receipt within the validity period'
         WHERE {} AND submitted_ms < $1 AND gateway = $3",
            DeliveryMove::Expire.guard()
        )
    });
    SQL.as_str()
}

/// Writes `record`, `apply`, `match_pending`, `expire` and `counts` for one backend.
/// `$conn`: its connection type; `$pool`: its pool type; `$begin(…)`: the pool's method that
/// starts a write transaction; `$lock`: what the pending-receipts query adds so that two receivers
/// never match the same receipt at once.
macro_rules! receipts_for {
    ($db:ty, $conn:ty, $pool:ty, $begin:ident($($barg:expr),*), $lock:literal) => {
        use anyhow::Result;
        use sqlx::Transaction;

        use crate::store::receipts::{
            Applied, MATCH_BATCH, MATCHED, PENDING, Target, UNMATCHED, enroute_sql, expire_sql,
            final_sql, receipt_error, status_from,
        };
        use crate::store::{
            MatchedReceipts, NewReceipt, ReceiptCounts, ReceiptEffect, ReceiptStatus,
            ReferenceCheck, References,
        };

        pub(super) async fn record(
            mut tx: Transaction<'static, $db>,
            refs: &References,
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
                effects.push(apply(&mut tx, refs, id, &target).await?.effect());
            }
            tx.commit().await?;
            Ok(effects)
        }

        /// Finds the receipt's message (by our signed reference, else by the gateway's id
        /// among the messages that went out through the receipt's gateway) and moves it on
        /// as the table allows. Marks the receipt matched or refused, or leaves it pending.
        async fn apply(
            conn: &mut $conn,
            refs: &References,
            receipt_id: i64,
            r: &Target<'_>,
        ) -> Result<Applied> {
            let mut found: Option<(i64, String, Option<String>)> = None;
            match r.reference.map(|s| refs.check(s)) {
                Some(ReferenceCheck::Signed { campaign, delivery }) => {
                    found = sqlx::query_as(
                        "SELECT id, state, gateway FROM deliveries WHERE id = $1 AND campaign_id = $2",
                    )
                    .bind(delivery)
                    .bind(campaign)
                    .fetch_optional(&mut *conn)
                    .await?;
                }
                Some(ReferenceCheck::Legacy {
                    campaign,
                    delivery,
                    before_ms,
                }) => {
                    // Unsigned: only for a message that was out before references were signed.
                    found = sqlx::query_as(
                        "SELECT id, state, gateway FROM deliveries
                         WHERE id = $1 AND campaign_id = $2 AND submitted_ms < $3",
                    )
                    .bind(delivery)
                    .bind(campaign)
                    .bind(before_ms)
                    .fetch_optional(&mut *conn)
                    .await?;
                }
                Some(ReferenceCheck::Invalid) | None => {}
            }
            if found.is_none()
                && let Some(gid) = r.gateway_id
            {
                found = sqlx::query_as(
                    "SELECT id, state, gateway FROM deliveries WHERE gateway_id = $1 AND gateway = $2
                     ORDER BY id DESC LIMIT 1",
                )
                .bind(gid)
                .bind(r.gateway)
                .fetch_optional(&mut *conn)
                .await?;
            }
            let Some((delivery_id, state, gateway)) = found else {
                return Ok(Applied::NotFound);
            };
            // The submission is not recorded yet: wait, so the outcome does not overwrite the
            // receipt (and the gateway it went through is known).
            if state == "claimed" || state == "sending" {
                sqlx::query("UPDATE receipts SET delivery_id = $2 WHERE id = $1")
                    .bind(receipt_id)
                    .bind(delivery_id)
                    .execute(&mut *conn)
                    .await?;
                return Ok(Applied::Waiting);
            }
            let effect = if gateway.as_deref() != Some(r.gateway) {
                // Never sent, or sent through another gateway than the one this receipt was
                // authenticated for.
                tracing::warn!(
                    receipt = receipt_id,
                    delivery = delivery_id,
                    "receipt through gateway {:?} refused: the message went out through {}",
                    r.gateway,
                    gateway.as_deref().map_or("no gateway (never sent)".to_string(), |g| format!("{g:?}"))
                );
                ReceiptEffect::Refused
            } else {
                let changed = match r.status {
                    ReceiptStatus::Enroute => {
                        // Proof that the gateway took a message we were in doubt about.
                        sqlx::query(enroute_sql())
                            .bind(delivery_id)
                            .bind(r.received_ms)
                            .execute(&mut *conn)
                            .await?
                            .rows_affected()
                    }
                    final_status => sqlx::query(final_sql())
                        .bind(delivery_id)
                        .bind(final_status.as_str())
                        .bind(r.received_ms)
                        .bind(receipt_error(r))
                        .execute(&mut *conn)
                        .await?
                        .rows_affected(),
                };
                if changed > 0 {
                    ReceiptEffect::Applied
                } else {
                    ReceiptEffect::NoChange
                }
            };
            let matched = if effect == ReceiptEffect::Refused {
                UNMATCHED
            } else {
                MATCHED
            };
            sqlx::query(
                "UPDATE receipts SET matched = $2, delivery_id = $3, effect = $4 WHERE id = $1",
            )
            .bind(receipt_id)
            .bind(matched)
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
            pool: &$pool,
            refs: &References,
            unmatched_before_ms: i64,
        ) -> Result<MatchedReceipts> {
            let mut out = MatchedReceipts::default();
            let mut after = 0i64;
            loop {
                let mut tx = pool.$begin($($barg),*).await?;
                let rows: Vec<PendingRow> = sqlx::query_as(concat!(
                    "SELECT id, gateway, reference, gateway_id, status, gateway_status, error_code,
                            received_ms
                     FROM receipts WHERE matched = $3 AND id > $1 ORDER BY id LIMIT $2",
                    $lock
                ))
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
                    let target = Target {
                        gateway,
                        reference: reference.as_deref(),
                        gateway_id: gateway_id.as_deref(),
                        status: status_from(status),
                        gateway_status: gateway_status.as_deref().unwrap_or(""),
                        error_code: error_code.as_deref(),
                        received_ms: *received,
                    };
                    match apply(&mut tx, refs, *id, &target).await? {
                        Applied::Matched(ReceiptEffect::Applied) => out.applied += 1,
                        Applied::Matched(ReceiptEffect::Refused) => out.refused += 1,
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

        pub(super) async fn expire(
            pool: &$pool,
            submitted_before_ms: i64,
            now_ms: i64,
            gateways: &[String],
        ) -> Result<u64> {
            let mut expired = 0;
            for gateway in gateways {
                expired += sqlx::query(expire_sql())
                    .bind(submitted_before_ms)
                    .bind(now_ms)
                    .bind(gateway)
                    .execute(pool)
                    .await?
                    .rows_affected();
            }
            Ok(expired)
        }

        pub(super) async fn counts(pool: &$pool) -> Result<ReceiptCounts> {
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
    };
}

pub(crate) use receipts_for;
