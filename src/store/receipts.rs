//! Delivery receipts, on both backends: append every receipt as received, apply it to its
//! message as the transition table allows ([`DeliveryMove::ReceiptFinal`],
//! [`DeliveryMove::ReceiptEnroute`]), keep the ones that match nothing yet, expire the silent
//! ones.
//!
//! Multi-part messages (Kannel with `receipts_per_part`): each part of a long message goes to
//! the SMSC as its own SMS and the dlr-url is called once per part; the receipt names its part
//! by the SMSC's message id (`NewReceipt::part`, `%F`). Such receipts combine into one state:
//! - `delivered` only once every part has a delivered receipt: distinct parts with a
//!   delivered receipt matched to the message are counted against the message's part count
//!   (a personalised message's own text, else the campaign's `segments`). Until then the
//!   message stays `submitted` (a delivered part of a message in doubt moves it from
//!   `unknown` to `submitted`: the gateway took it). A part's receipt sent twice counts once.
//! - `failed` at the first part that fails, whatever order the parts come in; a part that
//!   `expired` ends the message `expired` (the first non-delivered final part decides, as a
//!   whole-message receipt does; Kannel itself reports an expired part as undelivered, so in
//!   practice this is `failed`).
//! - the validity period still applies: a message whose parts are not all confirmed in time
//!   expires like any other.
//!
//! Receipts that name no part (Twilio, http-json, stock Kannel, which asks a receipt for the
//! first part only, and messages sent before parts were asked for) are about the whole
//! message: the first final one decides.
//!
//! A receipt moves a message only if the message went out through the gateway the receipt was
//! authenticated for, and only by a reference this database signed (or, for messages out
//! before references were signed, the old form). The statements are the same text on SQLite
//! and PostgreSQL; [`receipts_impl!`] writes `impl Receipts` once for each backend's
//! connection types, since sqlx's executors are concrete types per database.

use crate::store::{ReceiptStatus, contract::DeliveryMove};

pub(crate) const PENDING: i64 = 0;
pub(crate) const MATCHED: i64 = 1;
pub(crate) const UNMATCHED: i64 = 2;
/// Pending receipts looked at per transaction.
pub(crate) const MATCH_BATCH: i64 = 1_000;

/// A deadlock or serialization failure (PostgreSQL's codes; SQLite, one writer at a time,
/// never reports them): the transaction was rolled back and may be tried again.
pub(crate) fn is_retryable(e: &anyhow::Error) -> bool {
    e.downcast_ref::<sqlx::Error>()
        .and_then(|e| e.as_database_error())
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01" || c == "40001")
}

/// A stored receipt, as the match step reads it.
pub(crate) struct Target<'a> {
    pub gateway: &'a str,
    pub reference: Option<&'a str>,
    pub gateway_id: Option<&'a str>,
    pub part: Option<&'a str>,
    pub status: ReceiptStatus,
    pub gateway_status: &'a str,
    pub error_code: Option<&'a str>,
    pub received_ms: i64,
}

/// A pending receipt, as the match pass reads it again.
#[derive(sqlx::FromRow)]
pub(crate) struct Pending {
    pub id: i64,
    pub gateway: String,
    pub reference: Option<String>,
    pub gateway_id: Option<String>,
    pub status: String,
    pub gateway_status: Option<String>,
    pub error_code: Option<String>,
    pub received_ms: i64,
    pub part: Option<String>,
}

impl Pending {
    pub fn target(&self) -> Target<'_> {
        Target {
            gateway: &self.gateway,
            reference: self.reference.as_deref(),
            gateway_id: self.gateway_id.as_deref(),
            part: self.part.as_deref(),
            status: status_from(&self.status),
            gateway_status: self.gateway_status.as_deref().unwrap_or(""),
            error_code: self.error_code.as_deref(),
            received_ms: self.received_ms,
        }
    }
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
pub(crate) static ENROUTE_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE deliveries SET state = 'submitted', submitted_ms = COALESCE(submitted_ms, $2),
             last_error = NULL
         WHERE id = $1 AND {}",
        DeliveryMove::ReceiptEnroute.guard()
    )
});

/// `ReceiptFinal`: `$1` id, `$2` state, `$3` received, `$4` error.
pub(crate) static FINAL_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE deliveries SET state = $2, final_ms = $3,
             last_error = COALESCE(CAST($4 AS TEXT), last_error),
             lease_owner = NULL, lease_expires_ms = NULL
         WHERE id = $1 AND {}",
        DeliveryMove::ReceiptFinal.guard()
    )
});

/// `$1` delivery id: the number of parts its message went out in (`segments`) and, for a
/// personalised message, its own text (whose parts are counted instead).
pub(crate) const PART_COUNT_SQL: &str = "SELECT c.segments, d.message_text
     FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id WHERE d.id = $1";

/// `$1` delivery id, `$2` [`MATCHED`], `$3` the receipt being applied: how many distinct parts
/// have a delivered receipt, this one included. Duplicates (Kannel retries) count once.
pub(crate) const PARTS_DELIVERED_SQL: &str = "SELECT COUNT(DISTINCT part) FROM receipts
     WHERE part IS NOT NULL AND status = 'delivered'
       AND ((delivery_id = $1 AND matched = $2) OR id = $3)";

/// Takes the message's row lock (PostgreSQL; SQLite's transaction holds the write lock
/// already) before its parts are counted, so two receivers each holding one of the last two
/// parts do not both count one short: the second waits and then sees the first's part. Not a
/// state change (it writes the state it read).
pub(crate) const LOCK_DELIVERY_SQL: &str = "UPDATE deliveries SET state = state WHERE id = $1";

/// How many parts a message went out in.
pub(crate) fn part_count(segments: i64, personal_text: Option<&str>) -> i64 {
    personal_text
        .map(|t| crate::encoding::analyze(t).segments as i64)
        .unwrap_or(segments)
        .max(1)
}

/// `Expire`: `$1` submitted before, `$2` now, `$3` gateway.
pub(crate) static EXPIRE_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE deliveries SET state = 'expired', final_ms = $2,
             last_error = 'no final delivery receipt within the validity period'
         WHERE {} AND submitted_ms < $1 AND gateway = $3",
        DeliveryMove::Expire.guard()
    )
});

/// Writes `impl Receipts` for one backend store: `$conn` its connection type; `$begin(…)`: the
/// pool's method that starts a write transaction; `$lock`: what the pending-receipts query adds
/// so that two receivers never match the same receipt at once.
macro_rules! receipts_impl {
    ($store:ty, $conn:ty, $begin:ident($($barg:expr),*), $lock:literal) => {
        mod receipts_impl {
            use super::*;
            use crate::store::receipts::{
                Applied, LOCK_DELIVERY_SQL, MATCH_BATCH, MATCHED, PART_COUNT_SQL, PARTS_DELIVERED_SQL,
                PENDING, Pending, Target, UNMATCHED, ENROUTE_SQL, EXPIRE_SQL, FINAL_SQL, part_count,
                receipt_error,
            };

            async fn record(
                mut tx: sqlx::Transaction<'static, <$conn as sqlx::Connection>::Database>,
                refs: &References,
                receipts: &[NewReceipt],
            ) -> Result<Vec<ReceiptEffect>> {
                let mut effects = Vec::with_capacity(receipts.len());
                for r in receipts {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO receipts (received_ms, gateway, gateway_id, status, raw, matched,
                         reference, gateway_status, error_code, effect, part)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10) RETURNING id",
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
                    .bind(&r.part)
                    .fetch_one(&mut *tx)
                    .await?;
                    let target = Target {
                        gateway: &r.gateway,
                        reference: r.reference.as_deref(),
                        gateway_id: r.gateway_id.as_deref(),
                        part: r.part.as_deref(),
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
                    let mut awaiting_parts = false;
                    // A delivered part finalises the message only with every other part.
                    let to = match r.status {
                        ReceiptStatus::Delivered if r.part.is_some() => {
                            sqlx::query(LOCK_DELIVERY_SQL)
                                .bind(delivery_id)
                                .execute(&mut *conn)
                                .await?;
                            let (segments, text): (i64, Option<String>) =
                                sqlx::query_as(PART_COUNT_SQL)
                                    .bind(delivery_id)
                                    .fetch_one(&mut *conn)
                                    .await?;
                            let delivered: i64 = sqlx::query_scalar(PARTS_DELIVERED_SQL)
                                .bind(delivery_id)
                                .bind(MATCHED)
                                .bind(receipt_id)
                                .fetch_one(&mut *conn)
                                .await?;
                            if delivered >= part_count(segments, text.as_deref()) {
                                ReceiptStatus::Delivered
                            } else {
                                // Not every part yet; still proof the gateway took the message.
                                awaiting_parts = !crate::store::contract::DeliveryState::parse(&state)
                                    .is_some_and(|s| s.is_final());
                                ReceiptStatus::Enroute
                            }
                        }
                        status => status,
                    };
                    let changed = if to == ReceiptStatus::Enroute {
                        // Proof that the gateway took a message we were in doubt about.
                        sqlx::query(ENROUTE_SQL.as_str())
                            .bind(delivery_id)
                            .bind(r.received_ms)
                            .execute(&mut *conn)
                            .await?
                            .rows_affected()
                    } else {
                        sqlx::query(FINAL_SQL.as_str())
                            .bind(delivery_id)
                            .bind(to.as_str())
                            .bind(r.received_ms)
                            .bind(receipt_error(r))
                            .execute(&mut *conn)
                            .await?
                            .rows_affected()
                    };
                    if changed > 0 {
                        ReceiptEffect::Applied
                    } else if awaiting_parts {
                        ReceiptEffect::AwaitingParts
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

            #[async_trait::async_trait]
            impl crate::store::Receipts for $store {
                async fn record_receipts(&self, receipts: &[NewReceipt]) -> Result<Vec<ReceiptEffect>> {
                    // Receipts apply in arrival order, so two receivers' batches may lock the same
                    // messages in opposite orders: PostgreSQL then rolls one back, and it is tried
                    // again.
                    let mut tries = 0;
                    loop {
                        tries += 1;
                        match record(self.tx().await?, &self.refs, receipts).await {
                            Err(e) if tries < 3 && crate::store::receipts::is_retryable(&e) => continue,
                            result => return result,
                        }
                    }
                }

                async fn match_pending_receipts(&self, unmatched_before_ms: i64) -> Result<MatchedReceipts> {
                    let mut out = MatchedReceipts::default();
                    let mut after = 0i64;
                    loop {
                        let mut tx = self.read().$begin($($barg),*).await?;
                        let rows: Vec<Pending> = sqlx::query_as(concat!(
                            "SELECT id, gateway, reference, gateway_id, status, gateway_status, error_code,
                            received_ms, part
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
                        after = last.id;
                        let full = rows.len() as i64 == MATCH_BATCH;
                        for p in &rows {
                            match apply(&mut tx, &self.refs, p.id, &p.target()).await? {
                                Applied::Matched(ReceiptEffect::Applied) => out.applied += 1,
                                Applied::Matched(ReceiptEffect::Refused) => out.refused += 1,
                                Applied::Matched(_) => out.no_change += 1,
                                Applied::NotFound if p.received_ms < unmatched_before_ms => {
                                    sqlx::query(
                                        "UPDATE receipts SET matched = $2, effect = 'unmatched' WHERE id = $1",
                                    )
                                    .bind(p.id)
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

                async fn expire_submitted(
                    &self,
                    submitted_before_ms: i64,
                    now_ms: i64,
                    gateways: &[String],
                ) -> Result<u64> {
                    let mut expired = 0;
                    for gateway in gateways {
                        expired += sqlx::query(EXPIRE_SQL.as_str())
                            .bind(submitted_before_ms)
                            .bind(now_ms)
                            .bind(gateway)
                            .execute(self.read())
                            .await?
                            .rows_affected();
                    }
                    Ok(expired)
                }

                async fn receipt_counts(&self) -> Result<ReceiptCounts> {
                    let rows: Vec<(i64, i64)> =
                        sqlx::query_as("SELECT matched, COUNT(*) FROM receipts GROUP BY matched")
                            .fetch_all(self.read())
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
            }
        }
    };
}

pub(crate) use receipts_impl;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_personalised_message_counts_its_own_parts() {
        // The campaign's count, unless the message has its own text.
        assert_eq!(part_count(3, None), 3);
        assert_eq!(part_count(3, Some("Chào anh Nam")), 1);
        assert_eq!(part_count(1, Some(&"a".repeat(161))), 2);
        // A message always has a part.
        assert_eq!(part_count(0, None), 1);
    }
}
