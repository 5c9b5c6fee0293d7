-- Indexes for the auditors' report (issue 7). Each report figure is one ordered scan of a
-- covering index, with no temporary B-tree: SQLite has no hash aggregate, so a GROUP BY that
-- is not in index order sorts every row first.

-- carrier x district x state in one scan: by_state, by_carrier and by_district all come from it.
CREATE INDEX deliveries_report_cube ON deliveries (campaign_id, carrier, district, state);

-- deliveries over time: Vietnam hour (UTC+7, no DST) x carrier x state of everything submitted.
CREATE INDEX deliveries_report_hour ON deliveries
    (campaign_id, (submitted_ms + 25200000) / 3600000, carrier, state)
    WHERE submitted_ms IS NOT NULL;

-- first and last submission (two O(log n) look-ups).
CREATE INDEX deliveries_report_submitted ON deliveries (campaign_id, submitted_ms)
    WHERE submitted_ms IS NOT NULL;

-- receipt delay histogram: submitted -> final state reported by a receipt.
CREATE INDEX deliveries_report_receipt ON deliveries (campaign_id, final_ms - submitted_ms)
    WHERE state IN ('delivered', 'failed', 'expired');

-- what failed and why.
CREATE INDEX deliveries_report_errors ON deliveries (campaign_id, state, last_error)
    WHERE state IN ('rejected', 'failed', 'expired', 'unknown');

-- attempts by outcome and the submit latency histogram in one scan; it has the same leading
-- columns as attempts_campaign, which it replaces (one index less on the dispatcher's inserts).
CREATE INDEX attempts_report ON attempts (campaign_id, outcome, latency_ms);
DROP INDEX attempts_campaign;

-- error codes of the tries that did not succeed.
CREATE INDEX attempts_report_codes ON attempts (campaign_id, outcome, http_status, gateway_code)
    WHERE outcome <> 'submitted';
