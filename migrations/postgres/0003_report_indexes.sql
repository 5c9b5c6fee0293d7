-- Indexes for the auditors' report (issue 7), mirroring migrations/sqlite/0003_report_indexes.sql
-- in PostgreSQL's dialect (expressions in parentheses).

CREATE INDEX deliveries_report_cube ON deliveries (campaign_id, carrier, district, state);

CREATE INDEX deliveries_report_hour ON deliveries
    (campaign_id, ((submitted_ms + 25200000) / 3600000), carrier, state)
    WHERE submitted_ms IS NOT NULL;

CREATE INDEX deliveries_report_submitted ON deliveries (campaign_id, submitted_ms)
    WHERE submitted_ms IS NOT NULL;

CREATE INDEX deliveries_report_receipt ON deliveries (campaign_id, (final_ms - submitted_ms))
    WHERE state IN ('delivered', 'failed', 'expired');

CREATE INDEX deliveries_report_errors ON deliveries (campaign_id, state, last_error)
    WHERE state IN ('rejected', 'failed', 'expired', 'unknown');

CREATE INDEX attempts_report ON attempts (campaign_id, outcome, latency_ms);
DROP INDEX attempts_campaign;

CREATE INDEX attempts_report_codes ON attempts (campaign_id, outcome, http_status, gateway_code)
    WHERE outcome <> 'submitted';
