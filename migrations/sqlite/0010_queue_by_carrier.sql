-- The queue by carrier. Each carrier's gateway has its own rate, and a list in number order
-- holds long runs of one carrier (032–039 are all Viettel): with one queue the dispatcher
-- paced whole runs through one gateway while the others waited. Each carrier's due rows are
-- now claimed apart, in their own order (next due time, then id), reading only the rows taken.
DROP INDEX deliveries_queue;
CREATE INDEX deliveries_queue ON deliveries (campaign_id, carrier, next_attempt_ms)
    WHERE state = 'queued';
