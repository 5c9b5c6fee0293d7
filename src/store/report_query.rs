//! The report's queries, shared by both backends: the SQL (with `?` placeholders, bound in
//! order; PostgreSQL numbers them), its parameters built from the filter, and the assembly of
//! the rows into [`ReportData`]. [`reports_impl!`] runs them on each backend.
//!
//! Each report figure is one ordered scan of a covering index (migration 0003): no temporary
//! B-tree, no per-row work in Rust. Every query groups by `campaign_id` first so that the
//! index order serves a report across all campaigns too; rows are merged here.

use std::collections::BTreeMap;

use anyhow::Result;
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::store::{CubeRow, ErrorCodeRow, HourRow, RecipientRow, ReportData, ReportFilter};

/// A `WHERE` clause over `deliveries` and its parameters, built from the filter: only the
/// conditions asked for appear, so the planner sees plain equalities it can use an index for.
#[derive(Clone)]
pub(crate) struct Where {
    pub sql: String,
    pub params: Vec<Param>,
}

#[derive(Clone)]
pub(crate) enum Param {
    I(i64),
    S(String),
}

/// The time of a delivery for `--since`/`--until` (see [`ReportFilter`]).
const DELIVERY_TIME: &str = "COALESCE(deliveries.submitted_ms, deliveries.final_ms,
    (SELECT launched_ms FROM campaigns WHERE campaigns.id = deliveries.campaign_id))";

fn deliveries_where(f: &ReportFilter) -> Where {
    let mut sql = vec!["true".to_string()];
    let mut params = Vec::new();
    if let Some(id) = f.campaign_id {
        sql.push("deliveries.campaign_id = ?".into());
        params.push(Param::I(id));
    }
    if let Some(c) = &f.carrier {
        sql.push("deliveries.carrier = ?".into());
        params.push(Param::S(c.clone()));
    }
    if let Some(d) = &f.district {
        sql.push("deliveries.district = ?".into());
        params.push(Param::S(d.clone()));
    }
    if !f.states.is_empty() {
        let marks = vec!["?"; f.states.len()].join(", ");
        sql.push(format!("deliveries.state IN ({marks})"));
        params.extend(f.states.iter().cloned().map(Param::S));
    }
    if let Some(t) = f.since_ms {
        sql.push(format!("{DELIVERY_TIME} >= ?"));
        params.push(Param::I(t));
    }
    if let Some(t) = f.until_ms {
        sql.push(format!("{DELIVERY_TIME} < ?"));
        params.push(Param::I(t));
    }
    Where {
        sql: sql.join(" AND "),
        params,
    }
}

/// The matching `WHERE` over `attempts`: by campaign alone when that is the whole filter
/// (an index range), else through the selected deliveries.
fn attempts_where(f: &ReportFilter) -> Where {
    if f.is_campaign_only() {
        match f.campaign_id {
            Some(id) => Where {
                sql: "attempts.campaign_id = ?".into(),
                params: vec![Param::I(id)],
            },
            None => Where {
                sql: "true".into(),
                params: vec![],
            },
        }
    } else {
        let d = deliveries_where(f);
        Where {
            sql: format!(
                "attempts.delivery_id IN (SELECT deliveries.id FROM deliveries WHERE {})",
                d.sql
            ),
            params: d.params,
        }
    }
}

/// One statement and its parameters, in binding order.
pub(crate) type Query = (String, Vec<Param>);

fn query(sql: String, wheres: &[&Where]) -> Query {
    (
        sql,
        wheres
            .iter()
            .flat_map(|w| w.params.iter().cloned())
            .collect(),
    )
}

/// `?` placeholders (in binding order) → PostgreSQL's `$1`, `$2`, … (no `?` appears in these
/// statements otherwise).
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// Merges `(value, count)` pairs of several campaigns into one ascending histogram.
fn merge_histogram(pairs: impl IntoIterator<Item = (i64, i64)>) -> Vec<(i64, i64)> {
    let mut m: BTreeMap<i64, i64> = BTreeMap::new();
    for (v, n) in pairs {
        *m.entry(v).or_default() += n;
    }
    m.into_iter().collect()
}

/// The eight queries of a report: cube, hours, span, receipt, errors, attempts, codes,
/// duplicates — run them in this order (concurrently if you like) and pass the rows to
/// [`assemble`].
pub(crate) fn report_queries(f: &ReportFilter) -> [Query; 8] {
    let d = deliveries_where(f);
    let a = attempts_where(f);
    let cube = query(
        format!(
            "SELECT campaign_id, carrier, district, state, COUNT(*) FROM deliveries WHERE {}
             GROUP BY campaign_id, carrier, district, state",
            d.sql
        ),
        &[&d],
    );
    let hours = query(
        format!(
            "SELECT campaign_id, (submitted_ms + 25200000) / 3600000, carrier, state, COUNT(*)
             FROM deliveries WHERE {} AND submitted_ms IS NOT NULL
             GROUP BY campaign_id, (submitted_ms + 25200000) / 3600000, carrier, state",
            d.sql
        ),
        &[&d],
    );
    let span = query(
        format!(
            "SELECT (SELECT MIN(submitted_ms) FROM deliveries WHERE {w} AND submitted_ms IS NOT NULL),
                    (SELECT MAX(submitted_ms) FROM deliveries WHERE {w} AND submitted_ms IS NOT NULL)",
            w = d.sql
        ),
        &[&d, &d],
    );
    let receipt = query(
        format!(
            "SELECT final_ms - submitted_ms, COUNT(*) FROM deliveries
             WHERE {} AND state IN ('delivered', 'failed', 'expired')
               AND final_ms - submitted_ms IS NOT NULL
             GROUP BY campaign_id, final_ms - submitted_ms",
            d.sql
        ),
        &[&d],
    );
    let errors = query(
        format!(
            "SELECT state, last_error, COUNT(*) FROM deliveries
             WHERE {} AND state IN ('rejected', 'failed', 'expired', 'unknown')
             GROUP BY campaign_id, state, last_error",
            d.sql
        ),
        &[&d],
    );
    let attempts = query(
        format!(
            "SELECT outcome, latency_ms, COUNT(*) FROM attempts WHERE {}
             GROUP BY campaign_id, outcome, latency_ms",
            a.sql
        ),
        &[&a],
    );
    let codes = query(
        format!(
            "SELECT outcome, http_status, gateway_code, COUNT(*) FROM attempts
             WHERE {} AND outcome <> 'submitted'
             GROUP BY campaign_id, outcome, http_status, gateway_code",
            a.sql
        ),
        &[&a],
    );
    let duplicates = query(
        format!(
            "SELECT COUNT(DISTINCT attempts.delivery_id) FROM attempts
             WHERE {} AND attempts.outcome IN ('recovered_in_doubt', 'in_doubt')
               AND EXISTS (SELECT 1 FROM attempts b WHERE b.delivery_id = attempts.delivery_id
                           AND b.outcome = 'submitted' AND b.id > attempts.id)",
            a.sql
        ),
        &[&a],
    );
    [
        cube, hours, span, receipt, errors, attempts, codes, duplicates,
    ]
}

/// Builds the report from the rows of [`report_queries`], whatever the backend.
#[allow(clippy::too_many_arguments)]
pub(crate) fn assemble<R: Row>(
    cube: &[R],
    hours: &[R],
    span: &[R],
    receipt: &[R],
    errors: &[R],
    attempts: &[R],
    codes: &[R],
    duplicates: &[R],
) -> Result<ReportData>
where
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut by_outcome: BTreeMap<String, i64> = BTreeMap::new();
    let mut latency = Vec::new();
    for r in attempts {
        let outcome: String = r.try_get(0)?;
        let ms: Option<i64> = r.try_get(1)?;
        let n: i64 = r.try_get(2)?;
        if outcome == "submitted"
            && let Some(ms) = ms
        {
            latency.push((ms, n));
        }
        *by_outcome.entry(outcome).or_default() += n;
    }
    let mut error_map: BTreeMap<(String, Option<String>), i64> = BTreeMap::new();
    for r in errors {
        *error_map.entry((r.try_get(0)?, r.try_get(1)?)).or_default() += r.try_get::<i64, _>(2)?;
    }
    let mut code_map: BTreeMap<(String, Option<i64>, Option<String>), i64> = BTreeMap::new();
    for r in codes {
        *code_map
            .entry((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
            .or_default() += r.try_get::<i64, _>(3)?;
    }
    Ok(ReportData {
        cube: cube
            .iter()
            .map(|r| {
                Ok(CubeRow {
                    campaign_id: r.try_get(0)?,
                    carrier: r.try_get(1)?,
                    district: r.try_get(2)?,
                    state: r.try_get(3)?,
                    count: r.try_get(4)?,
                })
            })
            .collect::<Result<_>>()?,
        hours: hours
            .iter()
            .map(|r| {
                Ok(HourRow {
                    campaign_id: r.try_get(0)?,
                    hour: r.try_get(1)?,
                    carrier: r.try_get(2)?,
                    state: r.try_get(3)?,
                    count: r.try_get(4)?,
                })
            })
            .collect::<Result<_>>()?,
        errors: error_map.into_iter().map(|((s, e), n)| (s, e, n)).collect(),
        error_codes: code_map
            .into_iter()
            .map(|((outcome, http_status, code), count)| ErrorCodeRow {
                outcome,
                http_status,
                code,
                count,
            })
            .collect(),
        attempts_by_outcome: by_outcome.into_iter().collect(),
        latency_histogram: merge_histogram(latency),
        receipt_delay_histogram: merge_histogram(
            receipt
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<_>>>()?,
        ),
        possible_duplicates: duplicates[0].try_get(0)?,
        first_submit_ms: span[0].try_get(0)?,
        last_submit_ms: span[0].try_get(1)?,
    })
}

/// Recipients in error or possibly sent twice (for `--reveal`).
pub(crate) fn recipients_query(f: &ReportFilter) -> Query {
    let d = deliveries_where(f);
    query(
        format!(
            "SELECT msisdn, campaign, carrier, district, state, attempts, last_error, dup FROM (
                 SELECT deliveries.campaign_id, deliveries.id, deliveries.msisdn,
                        (SELECT name FROM campaigns WHERE campaigns.id = deliveries.campaign_id) AS campaign,
                        deliveries.carrier, deliveries.district, deliveries.state, deliveries.attempts,
                        deliveries.last_error,
                        CAST(CASE WHEN EXISTS (SELECT 1 FROM attempts a WHERE a.delivery_id = deliveries.id
                                 AND a.outcome IN ('recovered_in_doubt', 'in_doubt')
                                 AND EXISTS (SELECT 1 FROM attempts b WHERE b.delivery_id = a.delivery_id
                                             AND b.outcome = 'submitted' AND b.id > a.id))
                             THEN 1 ELSE 0 END AS BIGINT) AS dup
                 FROM deliveries WHERE {}) AS r
             WHERE r.state IN ('rejected', 'failed', 'expired', 'unknown') OR (r.attempts > 1 AND r.dup = 1)
             ORDER BY r.campaign_id, r.id",
            d.sql
        ),
        &[&d],
    )
}

/// Decodes the rows of [`recipients_query`].
pub(crate) fn recipient_rows<R: Row>(rows: &[R]) -> Result<Vec<RecipientRow>>
where
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    rows.iter()
        .map(|r| {
            Ok(RecipientRow {
                number: r.try_get(0)?,
                campaign: r.try_get(1)?,
                carrier: r.try_get(2)?,
                district: r.try_get(3)?,
                state: r.try_get(4)?,
                attempts: r.try_get(5)?,
                reason: r.try_get(6)?,
                possible_duplicate: r.try_get::<i64, _>(7)? != 0,
            })
        })
        .collect()
}

/// Writes `impl Reports` for one backend store: `$args` and `$row` are its sqlx types,
/// `$number` turns the shared statement text into its dialect.
macro_rules! reports_impl {
    ($store:ty, $args:ty, $row:ty, $number:path) => {
        mod reports_impl {
            use sqlx::{Arguments, AssertSqlSafe};

            use super::*;
            use crate::store::report_query::{self, Param, Query};

            type Pool = sqlx::Pool<<$row as sqlx::Row>::Database>;

            /// An `attempts` row as one number's history shows it.
            type AttemptRow = (i64, i64, String, Option<i64>, Option<String>, Option<String>, Option<i64>);

            /// One query's rows; the parameters are bound before the future is made, so the queries of
            /// a report can run concurrently on the pool.
            fn rows(p: &Pool, (sql, params): Query) -> impl Future<Output = Result<Vec<$row>>> + '_ {
                let mut args = <$args>::default();
                let bound: Result<()> = params.into_iter().try_for_each(|param| {
                    match param {
                        Param::I(i) => args.add(i),
                        Param::S(s) => args.add(s),
                    }
                    .map_err(|e| anyhow::anyhow!("binding a report parameter: {e}"))
                });
                async move {
                    bound?;
                    Ok(sqlx::query_with(AssertSqlSafe($number(&sql)), args)
                        .fetch_all(p)
                        .await?)
                }
            }

            #[async_trait::async_trait]
            impl crate::store::Reports for $store {
                async fn report_data(&self, f: &ReportFilter) -> Result<ReportData> {
                    let p = self.read();
                    let [
                        cube,
                        hours,
                        span,
                        receipt,
                        errors,
                        attempts,
                        codes,
                        duplicates,
                    ] = report_query::report_queries(f);
                    let (cube, hours, span, receipt, errors, attempts, codes, duplicates) = tokio::try_join!(
                        rows(p, cube),
                        rows(p, hours),
                        rows(p, span),
                        rows(p, receipt),
                        rows(p, errors),
                        rows(p, attempts),
                        rows(p, codes),
                        rows(p, duplicates)
                    )?;
                    report_query::assemble(
                        &cube,
                        &hours,
                        &span,
                        &receipt,
                        &errors,
                        &attempts,
                        &codes,
                        &duplicates,
                    )
                }

                async fn report_recipients(&self, f: &ReportFilter) -> Result<Vec<RecipientRow>> {
                    report_query::recipient_rows(&rows(self.read(), report_query::recipients_query(f)).await?)
                }

                async fn lookup(&self, msisdn: &str) -> Result<Vec<LookupEvent>> {
                    let pool = self.read();
                    let rows: Vec<(i64, String, String, Option<String>, Option<i64>)> = sqlx::query_as(
                        "SELECT d.id, c.name, d.state, d.last_error, c.launched_ms FROM deliveries d
                     JOIN campaigns c ON c.id = d.campaign_id WHERE d.msisdn = $1 ORDER BY d.id",
                    )
                    .bind(msisdn)
                    .fetch_all(pool)
                    .await?;
                    let mut events = Vec::new();
                    for (delivery_id, campaign, state, _, launched) in rows {
                        events.push(LookupEvent {
                            at_ms: launched.unwrap_or(0),
                            campaign: campaign.clone(),
                            delivery_id,
                            kind: "queued".into(),
                            detail: format!("now {state}"),
                        });
                        let attempts: Vec<AttemptRow> = sqlx::query_as(
                            "SELECT started_ms, attempt_no, outcome, http_status, gateway_code, error, latency_ms
                         FROM attempts WHERE delivery_id = $1 ORDER BY id",
                        )
                        .bind(delivery_id)
                        .fetch_all(pool)
                        .await?;
                        for (at_ms, attempt_no, outcome, status, code, error, latency) in attempts {
                            events.push(LookupEvent {
                                at_ms,
                                campaign: campaign.clone(),
                                delivery_id,
                                kind: format!("attempt {attempt_no}: {outcome}"),
                                detail: [
                                    status.map(|s| format!("HTTP {s}")),
                                    code.map(|c| format!("code {c}")),
                                    latency.map(|l| format!("{l} ms")),
                                    error,
                                ]
                                .into_iter()
                                .flatten()
                                .collect::<Vec<_>>()
                                .join(", "),
                            });
                        }
                        let receipts: Vec<(i64, String, String)> = sqlx::query_as(
                            "SELECT received_ms, status, gateway FROM receipts WHERE delivery_id = $1 ORDER BY id",
                        )
                        .bind(delivery_id)
                        .fetch_all(pool)
                        .await?;
                        for (at_ms, status, gateway) in receipts {
                            events.push(LookupEvent {
                                at_ms,
                                campaign: campaign.clone(),
                                delivery_id,
                                kind: "receipt".into(),
                                detail: format!("{status} from {gateway}"),
                            });
                        }
                    }
                    events.sort_by_key(|e| e.at_ms);
                    Ok(events)
                }
            }
        }
    };
}

pub(crate) use reports_impl;
