-- Delivery receipts: every receipt as received (raw + parsed), and what it did.
-- `matched`: 0 pending (its message is not found yet, or its submission is not recorded yet),
-- 1 matched to `delivery_id`, 2 unmatched (no message found within the grace period).
-- Rows are never deleted; the parsed fields never change; only the match columns
-- (`matched`, `delivery_id`, `effect`) are filled in when the receipt is matched.
-- PostgreSQL dialect of migrations/sqlite/0002_receipts.sql.

ALTER TABLE receipts ADD COLUMN reference TEXT;          -- our reference, when the callback carries it
ALTER TABLE receipts ADD COLUMN gateway_status TEXT;     -- the gateway's own status word or code
ALTER TABLE receipts ADD COLUMN error_code TEXT;
ALTER TABLE receipts ADD COLUMN effect TEXT;             -- applied | no_change | pending | unmatched

-- Partial: only pending receipts are indexed, so the match pass stays cheap however many
-- receipts were ever stored.
CREATE INDEX receipts_pending ON receipts (id) WHERE matched = 0;
CREATE INDEX receipts_matched ON receipts (matched);
CREATE INDEX deliveries_state_submitted ON deliveries (state, submitted_ms);
