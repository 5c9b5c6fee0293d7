-- PostgreSQL at scale (issue 19): the dispatcher's indexes hold only the rows in the state
-- they look for, as migrations/sqlite/0005_dispatch_indexes.sql did for SQLite, and the queue
-- index is in claim order, so a claim (`ORDER BY next_attempt_ms, id LIMIT n FOR UPDATE SKIP
-- LOCKED`) reads n rows from the index instead of sorting every queued row of the campaign.

-- The queue: due rows of a campaign, in claim order. Rows leave it when claimed.
DROP INDEX deliveries_claim;
CREATE INDEX deliveries_queue ON deliveries (campaign_id, next_attempt_ms, id)
    WHERE state = 'queued';

-- Rows in flight, by campaign (recovery, release, the in-flight count). Not by worker: with
-- `lease_owner` in it, the planner's generic plan for marking a batch (`id = ANY($1) AND
-- lease_owner = $2`) scanned every row the worker held instead of the batch's primary keys.
DROP INDEX deliveries_lease;
CREATE INDEX deliveries_in_flight ON deliveries (campaign_id)
    WHERE state IN ('claimed', 'sending');

-- Rows waiting for a receipt, by age (expiry). The old (state, submitted_ms) index held every
-- row and, once analysed, tempted the planner to find the rows of a batch through it.
DROP INDEX deliveries_state_submitted;
CREATE INDEX deliveries_awaiting_receipt ON deliveries (submitted_ms)
    WHERE state = 'submitted';

-- Receipts look a message up by the gateway's id, by equality only: a hash index is a third
-- of the B-tree's size for Twilio's 34-character ids.
DROP INDEX deliveries_gateway_id;
CREATE INDEX deliveries_gateway_id ON deliveries USING hash (gateway_id);

-- Every delivery is rewritten three or four times in a few seconds: vacuum and analyse it
-- every 2% of change (the default waits for 20%: 44% of the table was dead space after a
-- campaign), so dead rows are reused while the campaign runs, and leave room on each page for
-- the new versions. Vacuum keeps its default throttle: on a small machine an unthrottled one
-- takes the cores the workers send with.
ALTER TABLE deliveries SET (
    fillfactor = 90,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_insert_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02
);
ALTER TABLE attempts SET (autovacuum_vacuum_insert_scale_factor = 0.05);

-- The high-volume tables take their rows only from set-wise statements that join the rows they
-- reference (import: subscribers; launch: list members; attempts: the deliveries they settle),
-- and nothing in smscast deletes a subscriber, list, campaign or delivery. A foreign key there
-- costs a lookup per row per reference: 17.4 s instead of 1.8 s to add a million list members,
-- and two lookups per message on the send path. SQLite's import runs with its foreign keys
-- off for the same reason. The small tables keep theirs.
ALTER TABLE list_members DROP CONSTRAINT list_members_list_id_fkey,
                         DROP CONSTRAINT list_members_subscriber_id_fkey,
                         DROP CONSTRAINT list_members_import_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_campaign_id_fkey,
                       DROP CONSTRAINT deliveries_subscriber_id_fkey;
ALTER TABLE attempts DROP CONSTRAINT attempts_campaign_id_fkey,
                     DROP CONSTRAINT attempts_delivery_id_fkey;
