//! Lists and campaigns as both backends read and write them: the same statements and row types
//! for SQLite and PostgreSQL ([`campaigns_impl!`] writes `impl Lists` and `impl Campaigns` once
//! for each backend), and the launch's chunk copy ([`launch_chunk_for!`]).

pub(crate) const SELECT: &str =
    "SELECT c.*, l.name AS list_name FROM campaigns c JOIN lists l ON l.id = c.list_id";
pub(crate) const BY_ID: &str = "SELECT c.*, l.name AS list_name FROM campaigns c JOIN lists l ON l.id = c.list_id WHERE c.id = $1";
pub(crate) const BY_NAME: &str = "SELECT c.*, l.name AS list_name FROM campaigns c JOIN lists l ON l.id = c.list_id WHERE c.name = $1";

/// The SQL condition "this delivery's lease has run out", for recovery on both backends
/// (`$2` is now): its own lease (set when it was claimed or marked) has expired, and its
/// worker holds no live lease either. Workers renew only their own row
/// (`Queue::heartbeat`), so a heartbeat costs one row however many deliveries
/// the worker holds. A literal, for `concat!`.
macro_rules! lease_run_out {
    () => {
        "(lease_expires_ms < $2 AND NOT EXISTS (SELECT 1 FROM workers w
              WHERE w.id = deliveries.lease_owner AND w.lease_expires_ms >= $2))"
    };
}
pub(crate) use lease_run_out;

/// Writes `impl Lists` and `impl Campaigns` for one backend store (`$db` its database type),
/// over its `read()`, `write()` and `tx()`; the statistics after a launch are the backend's own
/// (`launched_rows`). `$for_update`: its suffix locking rows for the transaction; `launch_lock`
/// reads `list_id, launch_after` of campaign `$1` and holds it for the transaction, no row when
/// another worker holds it; then the `Lists` methods the backend writes itself (`begin_import`).
macro_rules! campaigns_impl {
    ($store:ty, $db:ty, $for_update:literal, launch_lock: $lock:literal, { $($lists:tt)* }) => {
        pub(super) mod campaigns_impl {
            use sqlx::AssertSqlSafe;

            use super::*;
            use crate::store::campaigns::{BY_ID, BY_NAME, SELECT};

            /// This database's reference key, made on first use when `writable`; a read-only
            /// look at a database from before the key gets none (references unsigned).
            pub(super) async fn references(
                pool: &sqlx::Pool<$db>,
                writable: bool,
            ) -> Result<crate::store::References> {
                use crate::store::{REFERENCE_KEY_INSERT, REFERENCE_KEY_SELECT, References};
                if writable {
                    sqlx::query(REFERENCE_KEY_INSERT)
                        .bind(References::new_key())
                        .bind(now_ms())
                        .execute(pool)
                        .await?;
                }
                let key: Option<(String, i64)> = sqlx::query_as(REFERENCE_KEY_SELECT)
                    .fetch_optional(pool)
                    .await
                    .unwrap_or(None);
                Ok(References::new(key.as_ref().map(|(k, at)| (k.as_str(), *at))))
            }

            /// Why a campaign move changed nothing: the state the campaign is in now.
            pub(crate) async fn refused(pool: &sqlx::Pool<$db>, id: i64, m: CampaignMove) -> Result<Refused> {
                let found: Option<String> = sqlx::query_scalar("SELECT state FROM campaigns WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
                Ok(Refused {
                    campaign: id,
                    attempted: m,
                    found: found.map(|s| CampaignState::parse(&s)).transpose()?,
                })
            }

            #[async_trait::async_trait]
            impl crate::store::Lists for $store {
                $($lists)*

                async fn previous_import(&self, list: &str, sha256: &str) -> Result<Option<PreviousImport>> {
                    Ok(sqlx::query_as(
                        "SELECT i.id, i.created_ms, i.imported FROM imports i JOIN lists l ON l.id = i.list_id
                     WHERE l.name = $1 AND i.sha256 = $2 ORDER BY i.id LIMIT 1",
                    )
                    .bind(list)
                    .bind(sha256)
                    .fetch_optional(self.read())
                    .await?)
                }

                /// Every list with its members by carrier and by district (most first, then by
                /// name in byte order: sorted here, so both backends agree whatever their
                /// collation).
                async fn lists(&self) -> Result<Vec<crate::store::ListSummary>> {
                    let mut lists: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM lists")
                        .fetch_all(self.read())
                        .await?;
                    lists.sort_by(|a, b| a.1.as_bytes().cmp(b.1.as_bytes()));
                    let most_first = |rows: &mut Vec<(String, i64)>| {
                        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.as_bytes().cmp(b.0.as_bytes())))
                    };
                    let mut out = Vec::with_capacity(lists.len());
                    for (id, name) in lists {
                        let mut by_carrier: Vec<(String, i64)> = sqlx::query_as(
                            "SELECT s.carrier, COUNT(*) FROM list_members m
                         JOIN subscribers s ON s.id = m.subscriber_id
                         WHERE m.list_id = $1 GROUP BY s.carrier",
                        )
                        .bind(id)
                        .fetch_all(self.read())
                        .await?;
                        let mut by_district: Vec<(String, i64)> = sqlx::query_as(
                            "SELECT COALESCE(s.district, '(none)'), COUNT(*) FROM list_members m
                         JOIN subscribers s ON s.id = m.subscriber_id
                         WHERE m.list_id = $1 GROUP BY 1",
                        )
                        .bind(id)
                        .fetch_all(self.read())
                        .await?;
                        most_first(&mut by_carrier);
                        most_first(&mut by_district);
                        let members = by_carrier.iter().map(|(_, n)| n).sum();
                        out.push(crate::store::ListSummary {
                            id,
                            name,
                            members,
                            by_carrier,
                            by_district,
                        });
                    }
                    Ok(out)
                }

                async fn list_size(&self, list: &str) -> Result<Option<i64>> {
                    let row: Option<(i64, i64)> = sqlx::query_as(
                        "SELECT l.id, (SELECT COUNT(*) FROM list_members m WHERE m.list_id = l.id)
                     FROM lists l WHERE l.name = $1",
                    )
                    .bind(list)
                    .fetch_optional(self.read())
                    .await?;
                    Ok(row.map(|(_, n)| n))
                }

                /// A page of a list's members, in subscriber order, read along the membership key
                /// (ordering on `s.id`, the same value, would sort every remaining member per page
                /// on SQLite).
                async fn list_members_page(&self, list: &str, after_subscriber_id: i64, limit: u32) -> Result<Vec<crate::store::MemberFields>> {
                    Ok(sqlx::query_as(
                        "SELECT s.id, s.msisdn, s.district, s.attributes FROM lists l
                     JOIN list_members m ON m.list_id = l.id
                     JOIN subscribers s ON s.id = m.subscriber_id
                     WHERE l.name = $1 AND m.subscriber_id > $2
                     ORDER BY m.subscriber_id LIMIT $3",
                    )
                    .bind(list)
                    .bind(after_subscriber_id)
                    .bind(i64::from(limit))
                    .fetch_all(self.read())
                    .await?)
                }

                async fn add_opt_outs(&self, msisdns: &[String], source: &str) -> Result<u64> {
                    Ok(sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO opt_outs (msisdn, source, created_ms)
                     SELECT value, $2, $3 FROM {} WHERE true ON CONFLICT DO NOTHING",
                        rows("$1", "text")
                    )))
                    .bind(list(msisdns))
                    .bind(source)
                    .bind(now_ms())
                    .execute(self.write())
                    .await?
                    .rows_affected())
                }

                async fn remove_opt_outs(&self, msisdns: &[String]) -> Result<u64> {
                    Ok(sqlx::query(AssertSqlSafe(format!(
                        "DELETE FROM opt_outs WHERE msisdn {}",
                        id_in("$1")
                    )))
                    .bind(list(msisdns))
                    .execute(self.write())
                    .await?
                    .rows_affected())
                }
            }

            #[async_trait::async_trait]
            impl crate::store::Campaigns for $store {
                async fn create_campaign(&self, c: &NewCampaign) -> Result<i64> {
                    check_campaign_name(&c.name)?;
                    let list_id: Option<i64> = sqlx::query_scalar("SELECT id FROM lists WHERE name = $1")
                        .bind(&c.list)
                        .fetch_optional(self.read())
                        .await?;
                    let Some(list_id) = list_id else {
                        bail!("there is no list named {:?}: see `smscast lists`", c.list);
                    };
                    let id = sqlx::query_scalar(
                        "INSERT INTO campaigns (name, list_id, message_text, encoding, segments, characters, sender,
                         gateway, rate, window_start, window_end, starts_ms, ends_ms, max_attempts, cap_hours,
                         state, created_by, created_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'draft', $16, $17)
                     RETURNING id",
                    )
                    .bind(&c.name)
                    .bind(list_id)
                    .bind(&c.message_text)
                    .bind(&c.encoding)
                    .bind(c.segments)
                    .bind(c.characters)
                    .bind(&c.sender)
                    .bind(&c.gateway)
                    .bind(c.rate)
                    .bind(c.window_start)
                    .bind(c.window_end)
                    .bind(c.starts_ms)
                    .bind(c.ends_ms)
                    .bind(c.max_attempts)
                    .bind(c.cap_hours)
                    .bind(&c.created_by)
                    .bind(now_ms())
                    .fetch_one(self.read())
                    .await
                    .map_err(|e| match &e {
                        sqlx::Error::Database(d) if d.is_unique_violation() => {
                            anyhow::anyhow!("a campaign named {:?} exists already: choose another name", c.name)
                        }
                        _ => e.into(),
                    })?;
                    Ok(id)
                }

                /// By `#id`, name, or a bare number (a legacy all-digit name first, else the id).
                async fn campaign(&self, key: &str) -> Result<Option<Campaign>> {
                    let by_id = |id: i64| sqlx::query_as::<_, Campaign>(BY_ID).bind(id);
                    let by_name = |name: &str| sqlx::query_as::<_, Campaign>(BY_NAME).bind(name.to_string());
                    Ok(match CampaignKey::parse(key) {
                        CampaignKey::Id(id) => by_id(id).fetch_optional(self.read()).await?,
                        CampaignKey::Name(name) => by_name(name).fetch_optional(self.read()).await?,
                        CampaignKey::NameOrId(name, id) => match by_name(name).fetch_optional(self.read()).await? {
                            Some(row) => Some(row),
                            None => by_id(id).fetch_optional(self.read()).await?,
                        },
                    })
                }

                async fn campaigns(&self) -> Result<Vec<Campaign>> {
                    Ok(sqlx::query_as(SELECT).fetch_all(self.read()).await?)
                }

                /// One move of the table, in one statement that checks the current state.
                async fn move_campaign(&self, id: i64, m: CampaignMove, reason: Option<&str>) -> Result<()> {
                    let moved = sqlx::query(m.statement())
                        .bind(id)
                        .bind(reason)
                        .bind(now_ms())
                        .execute(self.write())
                        .await?
                        .rows_affected();
                    if moved == 0 {
                        return Err(refused(self.write(), id, m).await?.into());
                    }
                    Ok(())
                }

                async fn begin_launch(&self, campaign_id: i64, chunk: i64) -> Result<Option<LaunchChunk>> {
                    if let Some(first) = launch_chunk::begin(self.tx().await?, campaign_id, chunk).await? {
                        self.launched_rows().await?;
                        return Ok(Some(first));
                    }
                    let refused = refused(self.write(), campaign_id, CampaignMove::Launch).await?;
                    if refused.found == Some(CampaignState::Running) {
                        // Another process launched it a moment ago: join it.
                        return Ok(None);
                    }
                    Err(refused.into())
                }

                async fn continue_launch(&self, campaign_id: i64, chunk: i64) -> Result<LaunchProgress> {
                    let progress = launch_chunk::next(self.tx().await?, $lock, campaign_id, chunk).await?;
                    if matches!(&progress, LaunchProgress::Copied(c) if c.done) {
                        self.launched_rows().await?;
                    }
                    Ok(progress)
                }

                /// Counted in the report cube's order (campaign, carrier, district, state): SQLite
                /// has no hash aggregate, so `GROUP BY state` alone would sort every delivery first
                /// (a sorter of a million rows at the end of a large `send`); this way only the
                /// few hundred (carrier, district, state) groups are sorted.
                async fn state_counts(&self, campaign_id: i64) -> Result<Vec<(String, i64)>> {
                    Ok(sqlx::query_as(
                        "SELECT state, CAST(SUM(n) AS BIGINT) FROM (
                         SELECT carrier, district, state, COUNT(*) AS n FROM deliveries
                         WHERE campaign_id = $1 GROUP BY carrier, district, state) cube
                     GROUP BY state",
                    )
                    .bind(campaign_id)
                    .fetch_all(self.read())
                    .await?)
                }

                async fn held_by_cap(&self, campaign_id: i64) -> Result<(i64, Option<i64>)> {
                    // `last_error` is written by `mark_in_flight`. Each carrier's queue is read
                    // from `now` on (the queue index is per carrier): only the rows held.
                    Ok(sqlx::query_as(AssertSqlSafe(format!(
                        "SELECT COUNT(*), MAX(next_attempt_ms) FROM deliveries
                     WHERE campaign_id = $1 AND carrier {} AND state = 'queued'
                       AND last_error LIKE 'per-number cap:%' AND next_attempt_ms > $2",
                        id_in("$3")
                    )))
                    .bind(campaign_id)
                    .bind(now_ms())
                    .bind(list(&crate::msisdn::Carrier::names()))
                    .fetch_one(self.read())
                    .await?)
                }

                async fn cap_conflicts(&self, campaign_id: i64, cap_ms: i64) -> Result<i64> {
                    Ok(sqlx::query_scalar(
                        "SELECT COUNT(*) FROM deliveries d
                     WHERE d.campaign_id = $1 AND d.state = 'queued'
                       AND EXISTS (SELECT 1 FROM deliveries o
                                   WHERE o.msisdn = d.msisdn AND o.campaign_id <> d.campaign_id
                                     AND (o.submitted_ms > $3 - $2
                                          OR o.state = 'sending' OR o.state = 'unknown'))",
                    )
                    .bind(campaign_id)
                    .bind(cap_ms)
                    .bind(now_ms())
                    .fetch_one(self.read())
                    .await?)
                }

                /// The operator's decision on the rows in doubt: resend them, or give them up.
                async fn reconcile(&self, campaign_id: i64, resend: bool) -> Result<u64> {
                    let mut tx = self.tx().await?;
                    let (outcome, sql) = if resend {
                        (
                            "reconciled_resend",
                            "UPDATE deliveries SET state = 'queued', next_attempt_ms = 0
                         WHERE campaign_id = $1 AND state = 'unknown'",
                        )
                    } else {
                        (
                            "reconciled_give_up",
                            "UPDATE deliveries SET state = 'failed', final_ms = $2,
                             last_error = 'in doubt; the operator chose not to resend'
                         WHERE campaign_id = $1 AND state = 'unknown'",
                        )
                    };
                    if !$for_update.is_empty() {
                        // The rows decided on are locked first, so the attempts rows and the
                        // update agree even with a worker recovering the same campaign.
                        sqlx::query(concat!(
                            "SELECT id FROM deliveries WHERE campaign_id = $1 AND state = 'unknown'
                         ORDER BY id",
                            $for_update
                        ))
                        .bind(campaign_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    sqlx::query(
                        "INSERT INTO attempts (campaign_id, delivery_id, attempt_no, worker, started_ms,
                         outcome, error)
                     SELECT campaign_id, id, attempts, 'operator', $2, $3, 'smscast reconcile'
                     FROM deliveries WHERE campaign_id = $1 AND state = 'unknown' ORDER BY id",
                    )
                    .bind(campaign_id)
                    .bind(now_ms())
                    .bind(outcome)
                    .execute(&mut *tx)
                    .await?;
                    let mut decide = sqlx::query(sql).bind(campaign_id);
                    if !resend {
                        decide = decide.bind(now_ms());
                    }
                    let n = decide.execute(&mut *tx).await?.rows_affected();
                    if resend && n > 0 {
                        // Only a completed campaign reopens; a paused or cancelled one stays.
                        sqlx::query(CampaignMove::Reopen.statement())
                            .bind(campaign_id)
                            .bind(None::<String>)
                            .bind(now_ms())
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(n)
                }
            }
        }
    };
}

pub(crate) use campaigns_impl;

/// Writes [`copy_chunk`](self) for one backend's database type: the launch's chunk copy, the
/// same statements on both backends. The caller holds the campaign (PostgreSQL: the row
/// locked; SQLite: the write transaction) and has read `list_id` and `launch_after`.
macro_rules! launch_chunk_for {
    ($db:ty) => {
        pub(crate) mod launch_chunk {
            use anyhow::Result;

            use crate::store::{CampaignMove, LaunchChunk, LaunchProgress, now_ms};

            /// The Launch move and the first chunk, in the caller's transaction (committed on
            /// success); `None` when the move was refused (the caller says why).
            pub(crate) async fn begin(
                mut tx: sqlx::Transaction<'static, $db>,
                campaign_id: i64,
                chunk: i64,
            ) -> Result<Option<LaunchChunk>> {
                let launched = sqlx::query(CampaignMove::Launch.statement())
                    .bind(campaign_id)
                    .bind(None::<String>)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if launched == 0 {
                    return Ok(None);
                }
                let list_id: i64 =
                    sqlx::query_scalar("SELECT list_id FROM campaigns WHERE id = $1")
                        .bind(campaign_id)
                        .fetch_one(&mut *tx)
                        .await?;
                let first = copy(&mut tx, campaign_id, list_id, 0, chunk).await?;
                tx.commit().await?;
                Ok(Some(first))
            }

            /// The next chunk of a launch in progress. `lock` reads `list_id, launch_after`
            /// of campaign `$1` and holds it for the transaction (no row: another worker holds
            /// it).
            pub(crate) async fn next(
                mut tx: sqlx::Transaction<'static, $db>,
                lock: &'static str,
                campaign_id: i64,
                chunk: i64,
            ) -> Result<LaunchProgress> {
                let Some((list_id, after)): Option<(i64, Option<i64>)> = sqlx::query_as(lock)
                    .bind(campaign_id)
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Ok(LaunchProgress::Busy);
                };
                let Some(after) = after else {
                    return Ok(LaunchProgress::Done);
                };
                let copied = copy(&mut tx, campaign_id, list_id, after, chunk).await?;
                tx.commit().await?;
                Ok(LaunchProgress::Copied(copied))
            }

            pub(crate) async fn copy(
                tx: &mut sqlx::Transaction<'static, $db>,
                campaign_id: i64,
                list_id: i64,
                after: i64,
                chunk: i64,
            ) -> Result<LaunchChunk> {
                // The chunk's last member, read from the membership key in order; none when
                // fewer than `chunk` remain (this chunk finishes the launch).
                let upto: Option<i64> = sqlx::query_scalar(
                    "SELECT subscriber_id FROM list_members
                     WHERE list_id = $1 AND subscriber_id > $2
                     ORDER BY subscriber_id LIMIT 1 OFFSET $3",
                )
                .bind(list_id)
                .bind(after)
                .bind(chunk - 1)
                .fetch_optional(&mut **tx)
                .await?;
                let through = upto.unwrap_or(i64::MAX);
                sqlx::query(
                    "INSERT INTO deliveries (campaign_id, subscriber_id, msisdn, carrier, district, state)
                     SELECT $1, s.id, s.msisdn, s.carrier, s.district,
                            CASE WHEN EXISTS (SELECT 1 FROM opt_outs o WHERE o.msisdn = s.msisdn)
                                 THEN 'suppressed' ELSE 'queued' END
                     FROM list_members m JOIN subscribers s ON s.id = m.subscriber_id
                     WHERE m.list_id = $2 AND m.subscriber_id > $3 AND m.subscriber_id <= $4
                     ORDER BY m.subscriber_id
                     ON CONFLICT (campaign_id, subscriber_id) DO NOTHING",
                )
                .bind(campaign_id)
                .bind(list_id)
                .bind(after)
                .bind(through)
                .execute(&mut **tx)
                .await?;
                let (queued, suppressed): (i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*) FILTER (WHERE state <> 'suppressed'),
                            COUNT(*) FILTER (WHERE state = 'suppressed')
                     FROM deliveries
                     WHERE campaign_id = $1 AND subscriber_id > $2 AND subscriber_id <= $3",
                )
                .bind(campaign_id)
                .bind(after)
                .bind(through)
                .fetch_one(&mut **tx)
                .await?;
                sqlx::query(
                    "UPDATE campaigns SET launch_after = $2, suppressed = suppressed + $3
                     WHERE id = $1",
                )
                .bind(campaign_id)
                .bind(upto)
                .bind(suppressed)
                .execute(&mut **tx)
                .await?;
                Ok(LaunchChunk {
                    queued: queued as u64,
                    suppressed: suppressed as u64,
                    done: upto.is_none(),
                })
            }
        }
    };
}

pub(crate) use launch_chunk_for;
