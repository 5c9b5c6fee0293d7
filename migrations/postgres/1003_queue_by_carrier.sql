-- The queue by carrier (see migrations/sqlite/0010_queue_by_carrier.sql): each carrier's due
-- rows in claim order, so a claim for one carrier (`… ORDER BY next_attempt_ms, id LIMIT n
-- FOR UPDATE SKIP LOCKED`) still reads n rows from the index.
DROP INDEX deliveries_queue;
CREATE INDEX deliveries_queue ON deliveries (campaign_id, carrier, next_attempt_ms, id)
    WHERE state = 'queued';
