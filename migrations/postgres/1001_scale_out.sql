-- PostgreSQL only: what many workers on many machines need and one SQLite file does not.
-- Numbered from 1001 so the shared sequence (0001, 0002, …) stays file for file with
-- migrations/sqlite/; sqlx applies a lower-numbered file added later all the same.

-- The shared rate: one token bucket per scope ('campaign:<id>', 'gateway:<name>'), refilled at
-- `rate` tokens per second up to `burst`, on the database's clock so machines' clocks do not
-- matter. Workers take tokens in small batches (see src/dispatch/budget.rs).
CREATE TABLE rate_budget (
    scope        TEXT             PRIMARY KEY,
    rate         DOUBLE PRECISION NOT NULL,
    burst        DOUBLE PRECISION NOT NULL,
    tokens       DOUBLE PRECISION NOT NULL,
    refreshed_ms BIGINT           NOT NULL
);

-- Heartbeats, releases and recovery find a worker's leased rows by owner; only rows in
-- flight are indexed, so the index stays small however large the campaign.
CREATE INDEX deliveries_lease ON deliveries (lease_owner) WHERE state IN ('claimed', 'sending');
