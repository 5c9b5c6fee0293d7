-- The dispatcher's hot path writes every delivery twice (queued → sending → submitted), and
-- every index that holds `state` is rewritten each time. The indexes it needs only hold the
-- rows in the state they look for, so a transition leaves or enters them at most once:
--
-- * the queue: due rows of a campaign, in order (claim, next due time);
-- * rows in flight, by worker (heartbeat, recovery, takeover, release);
-- * rows waiting for a receipt, by age (expiry of receipts that never came).
DROP INDEX deliveries_claim;
CREATE INDEX deliveries_queue ON deliveries (campaign_id, next_attempt_ms)
    WHERE state = 'queued';
CREATE INDEX deliveries_in_flight ON deliveries (campaign_id, lease_owner)
    WHERE state = 'claimed' OR state = 'sending';
DROP INDEX deliveries_state_submitted;
CREATE INDEX deliveries_awaiting_receipt ON deliveries (submitted_ms)
    WHERE state = 'submitted';
