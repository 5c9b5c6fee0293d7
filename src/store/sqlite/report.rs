//! Auditors' queries on SQLite: the report's shared queries (`store/report_query.rs`) run
//! concurrently on the reader pool, and one number's history.

use anyhow::Result;
use sqlx::sqlite::{SqliteArguments, SqlitePool, SqliteRow};
use sqlx::{Arguments, AssertSqlSafe, Row};

use crate::store::report_query::{self, Param, Query};
use crate::store::{LookupEvent, RecipientRow, ReportData, ReportFilter};

/// One query's rows; the parameters are bound before the future is made, so the queries of
/// a report can run concurrently on the pool.
fn rows(p: &SqlitePool, (sql, params): Query) -> impl Future<Output = Result<Vec<SqliteRow>>> + '_ {
    let mut args = SqliteArguments::default();
    let bound: Result<()> = params.into_iter().try_for_each(|param| {
        match param {
            Param::I(i) => args.add(i),
            Param::S(s) => args.add(s),
        }
        .map_err(|e| anyhow::anyhow!("binding a report parameter: {e}"))
    });
    async move {
        bound?;
        Ok(sqlx::query_with(AssertSqlSafe(sql), args)
            .fetch_all(p)
            .await?)
    }
}

pub(super) async fn report_data(p: &SqlitePool, f: &ReportFilter) -> Result<ReportData> {
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

pub(super) async fn recipients(p: &SqlitePool, f: &ReportFilter) -> Result<Vec<RecipientRow>> {
    report_query::recipient_rows(&rows(p, report_query::recipients_query(f)).await?)
}

pub(super) async fn lookup(pool: &SqlitePool, msisdn: &str) -> Result<Vec<LookupEvent>> {
    let rows = sqlx::query(
        "SELECT d.id, c.name, d.state, d.last_error, c.launched_ms FROM deliveries d
             JOIN campaigns c ON c.id = d.campaign_id WHERE d.msisdn = $1 ORDER BY d.id",
    )
    .bind(msisdn)
    .fetch_all(pool)
    .await?;
    let mut events = Vec::new();
    for r in &rows {
        let delivery_id: i64 = r.get(0);
        let campaign: String = r.get(1);
        let state: String = r.get(2);
        let launched: Option<i64> = r.get(4);
        events.push(LookupEvent {
            at_ms: launched.unwrap_or(0),
            campaign: campaign.clone(),
            delivery_id,
            kind: "queued".into(),
            detail: format!("now {state}"),
        });
        let attempts = sqlx::query(
            "SELECT started_ms, attempt_no, outcome, http_status, gateway_code, error, latency_ms
                 FROM attempts WHERE delivery_id = $1 ORDER BY id",
        )
        .bind(delivery_id)
        .fetch_all(pool)
        .await?;
        for a in &attempts {
            let status: Option<i64> = a.get(3);
            let code: Option<String> = a.get(4);
            let error: Option<String> = a.get(5);
            let latency: Option<i64> = a.get(6);
            events.push(LookupEvent {
                at_ms: a.get(0),
                campaign: campaign.clone(),
                delivery_id,
                kind: format!("attempt {}: {}", a.get::<i64, _>(1), a.get::<String, _>(2)),
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
        let receipts = sqlx::query(
            "SELECT received_ms, status, gateway FROM receipts WHERE delivery_id = $1 ORDER BY id",
        )
        .bind(delivery_id)
        .fetch_all(pool)
        .await?;
        for rc in &receipts {
            events.push(LookupEvent {
                at_ms: rc.get(0),
                campaign: campaign.clone(),
                delivery_id,
                kind: "receipt".into(),
                detail: format!("{} from {}", rc.get::<String, _>(1), rc.get::<String, _>(2)),
            });
        }
    }
    events.sort_by_key(|e| e.at_ms);
    Ok(events)
}
