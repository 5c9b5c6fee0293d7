//! The queue's bookkeeping as both backends write it: workers, the dispatcher's write cycle
//! and its mark, recovery of dead workers' rows, release, what is due, and the audit chain,
//! one statement text for SQLite and PostgreSQL. [`queue_impl!`] writes `impl Queue` and
//! `impl Audit` once for each backend's types (reconcile and opt-outs, which use the same
//! dialect bits, are in src/store/campaigns.rs).
//!
//! What still differs is supplied by the backend module that invokes the macros:
//! - `id_in(param)`: "is in this bound list" (`= ANY($1)` / `IN (SELECT value FROM
//!   json_each($1))`), and `list(items)`, the list as that parameter wants it (an array / JSON);
//! - `rows(param, sql_type)`: a bound list as a table with one column, `value`;
//! - `serialise_audit(tx)`: makes appends to the audit chain take turns (PostgreSQL: an
//!   advisory lock; SQLite: nothing, its write transaction is exclusive already);
//! - `CLAIM_LEASES`: whether a claim leases its rows (PostgreSQL) or only reads them (SQLite,
//!   where the mark leases them), and `lock_numbers(tx, ids)`, which makes two workers marking
//!   one number for two campaigns take turns (PostgreSQL; SQLite's writer is alone already);
//! - `record_in(tx, worker, outcomes, now)`: settles a batch of outcomes, returning the stale
//!   ones and the submissions (per row through SQLite's C API; one `UNNEST` on PostgreSQL);
//! - `cycle_tx()`: the write cycle's transaction (PostgreSQL's plans each statement once per
//!   connection; SQLite's is its ordinary write transaction);
//! - the row-lock suffixes (`" ORDER BY id FOR UPDATE"`… on PostgreSQL, empty on SQLite, where
//!   one writer holds the whole file): statements that touch many rows lock them in id order
//!   first, so two of them never wait on each other in a circle.

/// The settle's `UPDATE … SET` ([`DeliveryMove::Settle`](crate::store::DeliveryMove)) for
/// both backends' `record_in`: `v` names the outcome's values (state, gateway, gateway id,
/// next attempt, final time, time answered, text, error), `row` the updated row's columns
/// (`""` or `"deliveries."`).
pub(crate) fn settle_sql(v: [&str; 8], row: &str) -> String {
    let [
        state,
        gateway,
        gateway_id,
        next,
        final_ms,
        done,
        text,
        error,
    ] = v;
    format!(
        "UPDATE deliveries SET state = {state}, gateway = {gateway},
             gateway_id = COALESCE({gateway_id}, {row}gateway_id),
             next_attempt_ms = COALESCE({next}, {row}next_attempt_ms),
             final_ms = COALESCE({final_ms}, {row}final_ms),
             submitted_ms = CASE WHEN {state} = 'submitted' THEN {done} ELSE {row}submitted_ms END,
             message_text = COALESCE({text}, {row}message_text),
             last_error = {error}, lease_owner = NULL, lease_expires_ms = NULL"
    )
}

/// Writes `impl Queue` and `impl Audit` for one backend store: its database type, its suffix
/// locking rows for the transaction and the one skipping rows locked by others, then any
/// `Queue` methods the backend writes itself (`claim`; `rate_grant` on PostgreSQL).
macro_rules! queue_impl {
    ($store:ty, $db:ty, $for_update:literal, $skip_locked:literal, { $($own:tt)* }) => {
        mod queue_impl {
            use sqlx::AssertSqlSafe;

            use super::*;
            use crate::audit;
            use crate::store::campaigns::lease_run_out;
            use crate::store::contract::cap_hold_sql;

            type Tx = Transaction<'static, $db>;

            /// The dispatcher's hot path (see [`Queue::write_cycle`](crate::store::Queue::write_cycle)):
            /// what came back, and what goes out next, in one commit. Where rows are locked
            /// (PostgreSQL), every row of the cycle is locked first, in one order, so two
            /// cycles (or a cycle and a receipt) never wait on each other in a circle.
            async fn write_cycle(
                mut tx: Tx,
                now: i64,
                worker: &str,
                outcomes: &[Outcome],
                mark: Option<&Mark>,
            ) -> Result<(u64, Vec<(i64, i64)>)> {
                if !$for_update.is_empty() {
                    let mut ids: Vec<i64> = outcomes.iter().map(|o| o.delivery_id).collect();
                    ids.extend(mark.iter().flat_map(|m| m.ids.iter().copied()));
                    sqlx::query(AssertSqlSafe(format!(
                        "SELECT id FROM deliveries WHERE id {} ORDER BY id{}",
                        id_in("$1"),
                        $for_update
                    )))
                    .bind(list(&ids))
                    .execute(&mut *tx)
                    .await?;
                }
                let stale = if outcomes.is_empty() {
                    0
                } else {
                    let (stale, submitted) = record_in(&mut tx, worker, outcomes, now).await?;
                    if submitted > 0 {
                        sqlx::query("UPDATE workers SET sent = sent + $1 WHERE id = $2")
                            .bind(submitted)
                            .bind(worker)
                            .execute(&mut *tx)
                            .await?;
                    }
                    stale
                };
                let marked = match mark {
                    Some(m) => mark_in(&mut tx, worker, m, now).await?,
                    None => Vec::new(),
                };
                tx.commit().await?;
                Ok((stale, marked))
            }

            /// Marks one group in flight inside `tx` (see
            /// [`Queue::mark_in_flight`](crate::store::Queue::mark_in_flight)). Where a claim leased the rows
            /// (PostgreSQL; the heartbeat extends the lease), only this worker's are marked, and
            /// a row set aside lets its lease go; where it only read them (SQLite), the rows
            /// are leased here, and only those due. `$1` ids, `$2` worker (unused on SQLite),
            /// then each statement's own values.
            async fn mark_in(
                tx: &mut Tx,
                worker: &str,
                m: &Mark,
                now: i64,
            ) -> Result<Vec<(i64, i64)>> {
                let (picked, held, let_go, lease, due) = if CLAIM_LEASES {
                    let let_go = "lease_owner = NULL, lease_expires_ms = NULL,";
                    let held = "state = 'queued', lease_owner = NULL, lease_expires_ms = NULL,";
                    (" AND lease_owner = $2", held, let_go, "", "")
                } else {
                    let lease = ", lease_owner = $2, lease_expires_ms = $3";
                    ("", "", "", lease, " AND next_attempt_ms <= $4")
                };
                let picked = format!("id {}{picked}", id_in("$1"));
                if m.cap_ms > 0 {
                    lock_numbers(tx, &m.ids).await?;
                    sqlx::query(AssertSqlSafe(cap_hold_sql(&picked, "$3", "$4", held)))
                        .bind(list(&m.ids))
                        .bind(worker)
                        .bind(m.cap_ms)
                        .bind(now)
                        .execute(&mut **tx)
                        .await?;
                }
                sqlx::query(AssertSqlSafe(format!(
                    "UPDATE deliveries SET state = 'suppressed', {let_go}
                         final_ms = $3, last_error = 'opted out after launch'
                     WHERE {picked} AND {}
                       AND msisdn IN (SELECT msisdn FROM opt_outs)",
                    DeliveryMove::SuppressOptedOut.guard()
                )))
                .bind(list(&m.ids))
                .bind(worker)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                let marking = format!(
                    "UPDATE deliveries SET state = 'sending', attempts = attempts + 1{lease}
                     WHERE {picked} AND {}{due}
                     RETURNING id, attempts",
                    DeliveryMove::Mark.guard()
                );
                let mut marking = sqlx::query_as(AssertSqlSafe(marking))
                    .bind(list(&m.ids))
                    .bind(worker);
                if !CLAIM_LEASES {
                    marking = marking.bind(m.lease_until_ms).bind(now);
                }
                Ok(marking.fetch_all(&mut **tx).await?)
            }

            /// Takes back what dead workers (or workers whose lease ran out) held. Rows
            /// locked by another transaction are skipped: they belong to a live worker
            /// recording them, or to another worker recovering them.
            async fn recover(
                mut tx: Tx,
                campaign_id: i64,
                now_ms: i64,
                dead_workers: &[String],
                gateway_dedups: bool,
            ) -> Result<Recovered> {
                let dead = |state: &str| {
                    format!(
                        "SELECT id FROM deliveries
                         WHERE campaign_id = $1 AND state = '{state}'
                           AND (lease_owner {} OR {})
                         ORDER BY id{}",
                        id_in("$3"),
                        lease_run_out!(),
                        $skip_locked
                    )
                };
                let requeued = sqlx::query(AssertSqlSafe(format!(
                    "UPDATE deliveries SET state = 'queued', lease_owner = NULL, lease_expires_ms = NULL
                     WHERE id IN ({})",
                    dead("claimed")
                )))
                .bind(campaign_id)
                .bind(now_ms)
                .bind(list(dead_workers))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let (outcome, next_state, note) = if gateway_dedups {
                    (
                        "recovered_resend",
                        "queued",
                        "worker stopped while the request may have been on the wire; resending with the same reference (the gateway deduplicates)",
                    )
                } else {
                    (
                        "recovered_in_doubt",
                        "unknown",
                        "worker stopped while the request may have been on the wire; the gateway may have taken it (smscast reconcile decides)",
                    )
                };
                // The rows are taken first, so the attempts rows are exactly the rows moved.
                let ids: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(dead("sending")))
                    .bind(campaign_id)
                    .bind(now_ms)
                    .bind(list(dead_workers))
                    .fetch_all(&mut *tx)
                    .await?;
                if !ids.is_empty() {
                    sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO attempts (campaign_id, delivery_id, attempt_no, worker,
                             started_ms, outcome, error)
                         SELECT campaign_id, id, attempts, lease_owner, $2, $3, $4
                         FROM deliveries WHERE id {} ORDER BY id",
                        id_in("$1")
                    )))
                    .bind(list(&ids))
                    .bind(now_ms)
                    .bind(outcome)
                    .bind(note)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(AssertSqlSafe(format!(
                        "UPDATE deliveries SET state = $2, lease_owner = NULL,
                             lease_expires_ms = NULL, last_error = $3
                         WHERE id {}",
                        id_in("$1")
                    )))
                    .bind(list(&ids))
                    .bind(next_state)
                    .bind(note)
                    .execute(&mut *tx)
                    .await?;
                }
                // A dead worker is written off only once none of its rows is left: on
                // PostgreSQL its dying session may still hold locks on some (skipped above),
                // and only a worker not written off is looked at again at once.
                sqlx::query(AssertSqlSafe(format!(
                    "UPDATE workers SET stopped_ms = COALESCE(stopped_ms, $1) WHERE id {}
                       AND NOT EXISTS (SELECT 1 FROM deliveries
                                       WHERE campaign_id = $3 AND lease_owner = workers.id
                                         AND (state = 'claimed' OR state = 'sending'))",
                    id_in("$2")
                )))
                .bind(now_ms)
                .bind(list(dead_workers))
                .bind(campaign_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                let in_doubt = ids.len() as u64;
                Ok(Recovered {
                    requeued,
                    resend: if gateway_dedups { in_doubt } else { 0 },
                    unknown: if gateway_dedups { 0 } else { in_doubt },
                })
            }

            #[async_trait::async_trait]
            impl crate::store::Queue for $store {
                async fn register_worker(&self, id: &str, campaign_id: i64, host: &str, pid: i64, process: Option<&str>) -> Result<()> {
                    let now = now_ms();
                    sqlx::query(
                        "INSERT INTO workers (id, campaign_id, host, pid, started_ms, heartbeat_ms, process)
                     VALUES ($1, $2, $3, $4, $5, $5, $6)",
                    )
                    .bind(id)
                    .bind(campaign_id)
                    .bind(host)
                    .bind(pid)
                    .bind(now)
                    .bind(process)
                    .execute(self.write())
                    .await?;
                    Ok(())
                }

                /// The worker's heartbeat: one row, whatever number of deliveries it holds.
                async fn heartbeat(&self, worker: &str, lease_until_ms: i64) -> Result<()> {
                    sqlx::query(
                        "UPDATE workers SET heartbeat_ms = $1, lease_expires_ms = $2 WHERE id = $3",
                    )
                    .bind(now_ms())
                    .bind(lease_until_ms)
                    .bind(worker)
                    .execute(self.write())
                    .await?;
                    Ok(())
                }

                /// A stopped worker's lease ends with it: rows it left behind (none, normally) are
                /// recoverable as soon as their own lease runs out.
                async fn stop_worker(&self, worker: &str) -> Result<()> {
                    sqlx::query(
                        "UPDATE workers SET stopped_ms = $1, lease_expires_ms = NULL WHERE id = $2",
                    )
                        .bind(now_ms())
                        .bind(worker)
                        .execute(self.write())
                        .await?;
                    Ok(())
                }

                async fn workers(&self, campaign_id: i64) -> Result<Vec<WorkerInfo>> {
                    Ok(sqlx::query_as(
                        "SELECT id, host, pid, started_ms, heartbeat_ms, sent, stopped_ms, process FROM workers
                     WHERE campaign_id = $1 ORDER BY started_ms",
                    )
                    .bind(campaign_id)
                    .fetch_all(self.read())
                    .await?)
                }

                async fn recover(&self, campaign_id: i64, now_ms: i64, dead: &[String], dedups: bool) -> Result<Recovered> {
                    recover(self.tx().await?, campaign_id, now_ms, dead, dedups).await
                }

                async fn write_cycle(&self, worker: &str, outcomes: &[Outcome], mark: Option<&Mark>) -> Result<(u64, Vec<(i64, i64)>)> {
                    let now = now_ms();
                    write_cycle(self.cycle_tx().await?, now, worker, outcomes, mark).await
                }

                /// A worker's claimed rows back to the queue (found through the in-flight index of
                /// its campaign).
                async fn release(&self, campaign_id: i64, worker: &str) -> Result<u64> {
                    let guard = DeliveryMove::Release.guard();
                    Ok(sqlx::query(AssertSqlSafe(format!(
                        "UPDATE deliveries SET state = 'queued', lease_owner = NULL, lease_expires_ms = NULL
                     WHERE id IN (SELECT id FROM deliveries
                                  WHERE campaign_id = $2 AND lease_owner = $1 AND {guard}
                                  ORDER BY id{})
                       AND lease_owner = $1 AND {guard}",
                        $for_update
                    )))
                    .bind(worker)
                    .bind(campaign_id)
                    .execute(self.write())
                    .await?
                    .rows_affected())
                }

                async fn release_unsent(&self, worker: &str, ids: &[i64]) -> Result<u64> {
                    Ok(sqlx::query(AssertSqlSafe(format!(
                        "UPDATE deliveries SET state = 'queued', attempts = attempts - 1,
                         lease_owner = NULL, lease_expires_ms = NULL
                     WHERE id IN (SELECT id FROM deliveries WHERE id {} ORDER BY id{})
                       AND lease_owner = $2 AND {}",
                        id_in("$1"),
                        $for_update,
                        DeliveryMove::ReleaseUnsent.guard()
                    )))
                    .bind(list(ids))
                    .bind(worker)
                    .execute(self.write())
                    .await?
                    .rows_affected())
                }

                /// Each carrier's queue asked apart (the queue index is per carrier): one index
                /// look-up each, whatever the campaign's size.
                async fn next_due_ms(&self, campaign_id: i64) -> Result<Option<i64>> {
                    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
                        "SELECT MIN((SELECT MIN(d.next_attempt_ms) FROM deliveries d
                                     WHERE d.campaign_id = $1 AND d.carrier = value
                                       AND d.state = 'queued'))
                         FROM {}",
                        rows("$2", "TEXT")
                    )))
                    .bind(campaign_id)
                    .bind(list(&crate::msisdn::Carrier::names()))
                    .fetch_one(self.read())
                    .await?)
                }

                /// Completes the campaign if nothing of it is left to send (each state asked
                /// apart, as SQLite's partial indexes are written).
                async fn complete_if_done(&self, campaign_id: i64) -> Result<bool> {
                    let done = sqlx::query(AssertSqlSafe(format!(
                        "{}
                       AND NOT EXISTS (SELECT 1 FROM deliveries WHERE campaign_id = $1
                                       AND state = 'queued')
                       AND NOT EXISTS (SELECT 1 FROM deliveries WHERE campaign_id = $1
                                       AND (state = 'claimed' OR state = 'sending'))",
                        CampaignMove::Complete.statement()
                    )))
                    .bind(campaign_id)
                    .bind(None::<String>)
                    .bind(now_ms())
                    .execute(self.write())
                    .await?
                    .rows_affected();
                    Ok(done > 0)
                }

                /// Written as the partial index `deliveries_in_flight` is, so SQLite uses it.
                async fn in_flight_count(&self, campaign_id: i64) -> Result<i64> {
                    Ok(sqlx::query_scalar(
                        "SELECT COUNT(*) FROM deliveries
                     WHERE campaign_id = $1 AND (state = 'claimed' OR state = 'sending')",
                    )
                    .bind(campaign_id)
                    .fetch_one(self.read())
                    .await?)
                }

                async fn delivery_attributes(&self, delivery_ids: &[i64]) -> Result<Vec<(i64, Option<String>)>> {
                    Ok(sqlx::query_as(AssertSqlSafe(format!(
                        "SELECT d.id, s.attributes FROM deliveries d
                     JOIN subscribers s ON s.id = d.subscriber_id WHERE d.id {}",
                        id_in("$1")
                    )))
                    .bind(list(delivery_ids))
                    .fetch_all(self.read())
                    .await?)
                }

                fn reference(&self, campaign_id: i64, delivery_id: i64) -> String {
                    self.refs.make(campaign_id, delivery_id)
                }

                $($own)*
            }

            #[async_trait::async_trait]
            impl crate::store::Audit for $store {
                /// Appends one entry to the audit chain, hashed onto the last one.
                async fn audit_append(&self, actor: &str, action: &str, subject: &str, details: &serde_json::Value) -> Result<AuditEntry> {
                    let mut tx = self.tx().await?;
                    let details = details.to_string();
                    serialise_audit(&mut tx).await?;
                    let prev: Option<String> =
                        sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")
                            .fetch_optional(&mut *tx)
                            .await?;
                    let prev_hash = prev.unwrap_or_else(|| audit::GENESIS.to_string());
                    let at_ms = now_ms();
                    let hash = audit::entry_hash(&prev_hash, at_ms, actor, action, subject, &details);
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO audit_log (at_ms, actor, action, subject, details, prev_hash, hash)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    )
                    .bind(at_ms)
                    .bind(actor)
                    .bind(action)
                    .bind(subject)
                    .bind(&details)
                    .bind(&prev_hash)
                    .bind(&hash)
                    .fetch_one(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(AuditEntry {
                        id,
                        at_ms,
                        actor: actor.into(),
                        action: action.into(),
                        subject: subject.into(),
                        details,
                        prev_hash,
                        hash,
                    })
                }

                async fn audit_entries(&self) -> Result<Vec<AuditEntry>> {
                    Ok(sqlx::query_as(
                        "SELECT id, at_ms, actor, action, subject, details, prev_hash, hash FROM audit_log ORDER BY id",
                    )
                    .fetch_all(self.read())
                    .await?)
                }
            }
        }
    };
}

pub(crate) use queue_impl;
