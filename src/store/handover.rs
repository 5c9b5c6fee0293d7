//! Carrier-run campaigns, on both backends: a carrier's share of a campaign is handed to the
//! carrier ([`DeliveryMove::HandOver`]: `queued` → `handed`, the row's `gateway` set to
//! `carrier:NAME`), and the carrier's result file is taken back into the same rows
//! ([`DeliveryMove::CarrierResult`], [`DeliveryMove::CarrierPending`]). The statements are the
//! same text on SQLite and PostgreSQL; [`carriers_impl!`] writes `impl Carriers` once for each
//! backend's types.

use serde::Serialize;

use crate::store::contract::DeliveryMove;

/// The `gateway` value of rows handed to `carrier`: which carrier's share a row is in.
pub fn carrier_gateway(carrier: &str) -> String {
    format!("carrier:{carrier}")
}

/// One row of a carrier's share, as the export writes it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct HandedRow {
    #[sqlx(rename = "id")]
    pub delivery_id: i64,
    /// Canonical number (`84…`): the real number, never logged.
    pub msisdn: String,
    pub district: Option<String>,
    /// The subscriber's extra columns (JSON), for personalised texts.
    pub attributes: Option<String>,
    pub state: String,
}

/// What a carrier's result file says about one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CarrierStatus {
    Delivered,
    Failed,
    Expired,
    /// Unknown or still pending at the carrier.
    Unknown,
}

impl CarrierStatus {
    /// The delivery state this result leads to.
    pub fn state(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Unknown => "unknown",
        }
    }
}

/// One good row of a carrier's result file.
#[derive(Clone, Debug)]
pub struct CarrierResult {
    /// Canonical number (`84…`).
    pub msisdn: String,
    pub status: CarrierStatus,
    /// The carrier's own status word, kept in the row's error text.
    pub word: String,
    /// When the carrier says it happened (UTC ms), if the file says.
    pub at_ms: Option<i64>,
}

/// What one result did to the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResultEffect {
    /// The row moved.
    Changed,
    /// The row already says this (the same file imported again), or says a final result
    /// where the file says unknown/pending.
    AlreadyRecorded,
    /// The number is not in this carrier's handed share of the campaign.
    NotInShare,
    /// The row already holds another final result (kept: a final result is never corrected);
    /// the state found.
    Conflict(String),
}

/// `HandOver`: `$1` campaign, `$2` carrier, `$3` `carrier:NAME`. Only while the campaign is
/// running or paused (a cancelled campaign sends nothing more, by any path).
pub(crate) static HAND_OVER_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE deliveries SET state = 'handed', gateway = $3, last_error = NULL,
                 lease_owner = NULL, lease_expires_ms = NULL
             WHERE campaign_id = $1 AND carrier = $2 AND {}
               AND EXISTS (SELECT 1 FROM campaigns c WHERE c.id = deliveries.campaign_id
                           AND c.state IN ('running', 'paused'))",
        DeliveryMove::HandOver.guard()
    )
});

/// `CarrierResult`: `$1` id, `$2` state, `$3` time, `$4` error text or NULL, `$5` `carrier:NAME`.
pub(crate) static RESULT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE deliveries SET state = $2, final_ms = $3, last_error = CAST($4 AS TEXT)
             WHERE id = $1 AND gateway = $5 AND {}",
        DeliveryMove::CarrierResult.guard()
    )
});

/// `CarrierPending`: `$1` id, `$2` error text, `$3` `carrier:NAME`.
pub(crate) static PENDING_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE deliveries SET state = 'unknown', last_error = $2
             WHERE id = $1 AND gateway = $3 AND {}",
        DeliveryMove::CarrierPending.guard()
    )
});

/// The error text a result leaves on its row (`None` for delivered).
pub(crate) fn result_error(carrier: &str, r: &CarrierResult) -> Option<String> {
    match r.status {
        CarrierStatus::Delivered => None,
        s => Some(format!(
            "carrier {carrier} reported {} ({})",
            s.state(),
            r.word
        )),
    }
}

/// Writes `impl Carriers` for one backend store.
macro_rules! carriers_impl {
    ($store:ty) => {
        mod carriers_impl {
            use super::*;
            use crate::store::handover::{
                carrier_gateway, HAND_OVER_SQL, PENDING_SQL, result_error, RESULT_SQL,
            };

            #[async_trait::async_trait]
            impl crate::store::Carriers for $store {
                async fn hand_over(&self, campaign_id: i64, carrier: &str) -> Result<u64> {
                    let mut tx = self.tx().await?;
                    let moved = sqlx::query(HAND_OVER_SQL.as_str())
                        .bind(campaign_id)
                        .bind(carrier)
                        .bind(carrier_gateway(carrier))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    tx.commit().await?;
                    Ok(moved)
                }

                async fn handed_share(&self, campaign_id: i64, carrier: &str) -> Result<Vec<HandedRow>> {
                    Ok(sqlx::query_as::<_, HandedRow>(
                        "SELECT d.id, d.msisdn, d.district, s.attributes, d.state
                 FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
                 WHERE d.campaign_id = $1 AND d.carrier = $2 AND d.gateway = $3 ORDER BY d.id",
                    )
                    .bind(campaign_id)
                    .bind(carrier)
                    .bind(carrier_gateway(carrier))
                    .fetch_all(self.read())
                    .await?)
                }

                /// Every result in file order, in one transaction: a later line about the same
                /// number sees what the earlier one did. The share is read once (by campaign and
                /// carrier, an index prefix), then each move is one statement by primary key: the
                /// plan cannot go wrong on a table the planner has no statistics for yet.
                async fn record_carrier_results(
                    &self,
                    campaign_id: i64,
                    carrier: &str,
                    results: &[CarrierResult],
                ) -> Result<Vec<ResultEffect>> {
                    let mut tx = self.tx().await?;
                    let gateway = carrier_gateway(carrier);
                    let now = now_ms();
                    let share: Vec<(i64, String, String)> = sqlx::query_as(
                        "SELECT id, msisdn, state FROM deliveries
                 WHERE campaign_id = $1 AND carrier = $2 AND gateway = $3",
                    )
                    .bind(campaign_id)
                    .bind(carrier)
                    .bind(&gateway)
                    .fetch_all(&mut *tx)
                    .await?;
                    let mut by_number: std::collections::HashMap<String, (i64, String)> = share
                        .into_iter()
                        .map(|(id, msisdn, state)| (msisdn, (id, state)))
                        .collect();
                    let mut effects = Vec::with_capacity(results.len());
                    for r in results {
                        let Some((id, state)) = by_number.get_mut(&r.msisdn) else {
                            effects.push(ResultEffect::NotInShare);
                            continue;
                        };
                        let id = *id;
                        if state == r.status.state() {
                            effects.push(ResultEffect::AlreadyRecorded);
                            continue;
                        }
                        let moved = match r.status {
                            CarrierStatus::Unknown => sqlx::query(PENDING_SQL.as_str())
                                .bind(id)
                                .bind(result_error(carrier, r))
                                .bind(&gateway)
                                .execute(&mut *tx)
                                .await?
                                .rows_affected(),
                            s => sqlx::query(RESULT_SQL.as_str())
                                .bind(id)
                                .bind(s.state())
                                .bind(r.at_ms.unwrap_or(now))
                                .bind(result_error(carrier, r))
                                .bind(&gateway)
                                .execute(&mut *tx)
                                .await?
                                .rows_affected(),
                        };
                        if moved > 0 {
                            *state = r.status.state().to_string();
                            effects.push(ResultEffect::Changed);
                            continue;
                        }
                        // Refused by the table: the state it is in now (another process may have
                        // moved it since the share was read).
                        let found: String = sqlx::query_scalar("SELECT state FROM deliveries WHERE id = $1")
                            .bind(id)
                            .fetch_one(&mut *tx)
                            .await?;
                        let is_final = crate::store::DeliveryState::parse(&found).is_some_and(|s| s.is_final());
                        *state = found.clone();
                        effects.push(match r.status {
                            // Pending after a final result: the final one stands.
                            CarrierStatus::Unknown if is_final => ResultEffect::AlreadyRecorded,
                            _ if found == r.status.state() => ResultEffect::AlreadyRecorded,
                            _ => ResultEffect::Conflict(found),
                        });
                    }
                    tx.commit().await?;
                    Ok(effects)
                }
            }
        }
    };
}

pub(crate) use carriers_impl;
