//! Auditors' queries on PostgreSQL: report aggregates and one number's history.

use anyhow::Result;
use sqlx::Row;
use sqlx::postgres::PgPool;

use crate::store::{LookupEvent, ReportData};

pub(super) async fn report_data(p: &PgPool, campaign_id: i64) -> Result<ReportData> {
    let by_state = sqlx::query_as(
        "SELECT state, COUNT(*) FROM deliveries WHERE campaign_id = $1 GROUP BY state ORDER BY state COLLATE \"C\"",
    )
    .bind(campaign_id)
    .fetch_all(p)
    .await?;
    let by_carrier_state = sqlx::query_as(
        "SELECT carrier, state, COUNT(*) FROM deliveries WHERE campaign_id = $1
             GROUP BY carrier, state ORDER BY carrier COLLATE \"C\", state COLLATE \"C\"",
    )
    .bind(campaign_id)
    .fetch_all(p)
    .await?;
    let by_district_state = sqlx::query_as(
        "SELECT COALESCE(district, '(unknown)'), state, COUNT(*) FROM deliveries
             WHERE campaign_id = $1 GROUP BY 1, 2
             ORDER BY COALESCE(district, '(unknown)') COLLATE \"C\", state COLLATE \"C\"",
    )
    .bind(campaign_id)
    .fetch_all(p)
    .await?;
    // Local days in Asia/Ho_Chi_Minh: UTC+7 all year.
    let by_day = sqlx::query_as(
        "SELECT to_char(to_timestamp(submitted_ms / 1000 + 25200) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
                    COUNT(*), COUNT(*) FILTER (WHERE state = 'delivered')
             FROM deliveries WHERE campaign_id = $1 AND submitted_ms IS NOT NULL
             GROUP BY day ORDER BY day",
    )
    .bind(campaign_id)
    .fetch_all(p)
    .await?;
    let errors = sqlx::query_as(
            "SELECT last_error, COUNT(*) FROM deliveries
             WHERE campaign_id = $1 AND last_error IS NOT NULL AND state IN ('rejected', 'failed', 'unknown', 'expired')
             GROUP BY last_error ORDER BY 2 DESC, last_error COLLATE \"C\" LIMIT 20",
        )
        .bind(campaign_id)
        .fetch_all(p)
        .await?;
    let attempts_by_outcome = sqlx::query_as(
        "SELECT outcome, COUNT(*) FROM attempts WHERE campaign_id = $1 GROUP BY outcome ORDER BY outcome COLLATE \"C\"",
    )
    .bind(campaign_id)
    .fetch_all(p)
    .await?;
    let histogram: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT latency_ms, COUNT(*) FROM attempts
             WHERE campaign_id = $1 AND outcome = 'submitted' AND latency_ms IS NOT NULL
             GROUP BY latency_ms ORDER BY latency_ms",
    )
    .bind(campaign_id)
    .fetch_all(p)
    .await?;
    let possible_duplicates: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT a.delivery_id) FROM attempts a
             WHERE a.campaign_id = $1 AND a.outcome IN ('recovered_in_doubt', 'in_doubt')
               AND EXISTS (SELECT 1 FROM attempts b WHERE b.delivery_id = a.delivery_id
                           AND b.outcome = 'submitted' AND b.id > a.id)",
    )
    .bind(campaign_id)
    .fetch_one(p)
    .await?;
    let (first_submit_ms, last_submit_ms): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT MIN(submitted_ms), MAX(submitted_ms) FROM deliveries WHERE campaign_id = $1",
    )
    .bind(campaign_id)
    .fetch_one(p)
    .await?;
    Ok(ReportData {
        by_state,
        by_carrier_state,
        by_district_state,
        by_day,
        errors,
        attempts_by_outcome,
        latency_percentiles_ms: crate::store::percentiles(&histogram),
        possible_duplicates,
        first_submit_ms,
        last_submit_ms,
    })
}

pub(super) async fn lookup(pool: &PgPool, msisdn: &str) -> Result<Vec<LookupEvent>> {
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
