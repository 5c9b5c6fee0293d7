-- smscast schema, PostgreSQL dialect; mirrors migrations/sqlite/0001_initial.sql column for
-- column. Times are BIGINT milliseconds since the Unix epoch (UTC); reports convert to
-- Asia/Ho_Chi_Minh (UTC+7, no daylight saving). Integers are BIGINT so both backends decode
-- to i64.

CREATE TABLE subscribers (
    id            BIGSERIAL PRIMARY KEY,
    msisdn        TEXT    NOT NULL UNIQUE,      -- canonical 84 + 9 digits
    carrier       TEXT    NOT NULL,
    district      TEXT,
    attributes    TEXT,                         -- JSON object of extra CSV columns, or NULL
    first_seen_ms BIGINT  NOT NULL
);

CREATE TABLE lists (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_ms BIGINT  NOT NULL
);

CREATE TABLE imports (
    id               BIGSERIAL PRIMARY KEY,
    list_id          BIGINT  NOT NULL REFERENCES lists(id),
    file_name        TEXT    NOT NULL,
    sha256           TEXT    NOT NULL,
    rows_read        BIGINT  NOT NULL,
    imported         BIGINT  NOT NULL,
    already_present  BIGINT  NOT NULL,
    duplicates       BIGINT  NOT NULL,
    rejected         BIGINT  NOT NULL,
    legacy_converted BIGINT  NOT NULL,
    operator         TEXT    NOT NULL,
    created_ms       BIGINT  NOT NULL
);

CREATE TABLE list_members (
    list_id       BIGINT  NOT NULL REFERENCES lists(id),
    subscriber_id BIGINT  NOT NULL REFERENCES subscribers(id),
    import_id     BIGINT  NOT NULL REFERENCES imports(id),
    PRIMARY KEY (list_id, subscriber_id)
);

CREATE TABLE opt_outs (
    msisdn     TEXT    PRIMARY KEY,
    source     TEXT    NOT NULL,
    created_ms BIGINT  NOT NULL
);

CREATE TABLE campaigns (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    list_id        BIGINT  NOT NULL REFERENCES lists(id),
    message_text   TEXT    NOT NULL,            -- exactly as sent (NFC, folded if asked)
    encoding       TEXT    NOT NULL,            -- GSM-7 | UCS-2
    segments       BIGINT  NOT NULL,
    characters     BIGINT  NOT NULL,
    sender         TEXT    NOT NULL,
    gateway        TEXT    NOT NULL,
    rate           DOUBLE PRECISION NOT NULL,   -- messages per second
    window_start   BIGINT  NOT NULL,            -- minutes after local midnight
    window_end     BIGINT  NOT NULL,            -- minutes after local midnight, 1440 = end of day
    starts_ms      BIGINT,                      -- not before (UTC ms), NULL = now
    ends_ms        BIGINT,                      -- send-by deadline (UTC ms), NULL = none
    max_attempts   BIGINT  NOT NULL,
    cap_hours      BIGINT  NOT NULL DEFAULT 24, -- at most one message per number per N hours, across campaigns; 0 = off
    state          TEXT    NOT NULL,            -- draft|running|paused|completed|cancelled
    state_reason   TEXT,
    suppressed     BIGINT  NOT NULL DEFAULT 0,
    created_by     TEXT    NOT NULL,
    created_ms     BIGINT  NOT NULL,
    launched_ms    BIGINT,
    completed_ms   BIGINT
);

CREATE TABLE deliveries (
    id               BIGSERIAL PRIMARY KEY,
    campaign_id      BIGINT  NOT NULL REFERENCES campaigns(id),
    subscriber_id    BIGINT  NOT NULL REFERENCES subscribers(id),
    msisdn           TEXT    NOT NULL,          -- snapshot at launch
    carrier          TEXT    NOT NULL,
    district         TEXT,
    state            TEXT    NOT NULL,          -- queued|claimed|sending|submitted|delivered|failed|expired|rejected|unknown|suppressed
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT  NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_ms BIGINT,
    gateway          TEXT,
    gateway_id       TEXT,
    message_text     TEXT,                      -- the text as sent, when the campaign is personalised
    last_error       TEXT,
    submitted_ms     BIGINT,
    final_ms         BIGINT,
    UNIQUE (campaign_id, subscriber_id)
);
CREATE INDEX deliveries_claim ON deliveries (campaign_id, state, next_attempt_ms);
CREATE INDEX deliveries_gateway_id ON deliveries (gateway_id);
CREATE INDEX deliveries_msisdn ON deliveries (msisdn);

CREATE TABLE attempts (
    id           BIGSERIAL PRIMARY KEY,
    campaign_id  BIGINT  NOT NULL REFERENCES campaigns(id),
    delivery_id  BIGINT  NOT NULL REFERENCES deliveries(id),
    attempt_no   BIGINT  NOT NULL,
    worker       TEXT    NOT NULL,
    started_ms   BIGINT  NOT NULL,
    latency_ms   BIGINT,
    http_status  BIGINT,
    gateway_code TEXT,
    outcome      TEXT    NOT NULL,              -- submitted|retry|gave_up|rejected|in_doubt|recovered_*
    error        TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);
CREATE INDEX attempts_campaign ON attempts (campaign_id, outcome);

CREATE TABLE receipts (
    id          BIGSERIAL PRIMARY KEY,
    received_ms BIGINT  NOT NULL,
    gateway     TEXT    NOT NULL,
    gateway_id  TEXT,
    delivery_id BIGINT,
    status      TEXT    NOT NULL,
    raw         TEXT    NOT NULL,
    matched     BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX receipts_delivery ON receipts (delivery_id);

CREATE TABLE workers (
    id           TEXT    PRIMARY KEY,
    campaign_id  BIGINT  NOT NULL,
    host         TEXT    NOT NULL,
    pid          BIGINT  NOT NULL,
    started_ms   BIGINT  NOT NULL,
    heartbeat_ms BIGINT  NOT NULL,
    sent         BIGINT  NOT NULL DEFAULT 0,
    stopped_ms   BIGINT
);

CREATE TABLE audit_log (
    id        BIGSERIAL PRIMARY KEY,
    at_ms     BIGINT  NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    details   TEXT    NOT NULL,                 -- JSON
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
