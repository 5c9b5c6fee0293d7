-- smscast schema, SQLite dialect. Times are INTEGER milliseconds since the Unix epoch (UTC);
-- reports convert to Asia/Ho_Chi_Minh (UTC+7, no daylight saving).

CREATE TABLE subscribers (
    id            INTEGER PRIMARY KEY,
    msisdn        TEXT    NOT NULL UNIQUE,      -- canonical 84 + 9 digits
    carrier       TEXT    NOT NULL,
    district      TEXT,
    attributes    TEXT,                         -- JSON object of extra CSV columns, or NULL
    first_seen_ms INTEGER NOT NULL
);

CREATE TABLE lists (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL
);

CREATE TABLE imports (
    id               INTEGER PRIMARY KEY,
    list_id          INTEGER NOT NULL REFERENCES lists(id),
    file_name        TEXT    NOT NULL,
    sha256           TEXT    NOT NULL,
    rows_read        INTEGER NOT NULL,
    imported         INTEGER NOT NULL,
    already_present  INTEGER NOT NULL,
    duplicates       INTEGER NOT NULL,
    rejected         INTEGER NOT NULL,
    legacy_converted INTEGER NOT NULL,
    operator         TEXT    NOT NULL,
    created_ms       INTEGER NOT NULL
);

CREATE TABLE list_members (
    list_id       INTEGER NOT NULL REFERENCES lists(id),
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
    import_id     INTEGER NOT NULL REFERENCES imports(id),
    PRIMARY KEY (list_id, subscriber_id)
) WITHOUT ROWID;

CREATE TABLE opt_outs (
    msisdn     TEXT    PRIMARY KEY,
    source     TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE campaigns (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    list_id        INTEGER NOT NULL REFERENCES lists(id),
    message_text   TEXT    NOT NULL,            -- exactly as sent (NFC, folded if asked)
    encoding       TEXT    NOT NULL,            -- GSM-7 | UCS-2
    segments       INTEGER NOT NULL,
    characters     INTEGER NOT NULL,
    sender         TEXT    NOT NULL,
    gateway        TEXT    NOT NULL,
    rate           REAL    NOT NULL,            -- messages per second
    window_start   INTEGER NOT NULL,            -- minutes after local midnight
    window_end     INTEGER NOT NULL,            -- minutes after local midnight, 1440 = end of day
    starts_ms      INTEGER,                     -- not before (UTC ms), NULL = now
    ends_ms        INTEGER,                     -- send-by deadline (UTC ms), NULL = none
    max_attempts   INTEGER NOT NULL,
    cap_hours      INTEGER NOT NULL DEFAULT 24, -- at most one message per number per N hours, across campaigns; 0 = off
    state          TEXT    NOT NULL,            -- draft|running|paused|completed|cancelled
    state_reason   TEXT,
    suppressed     INTEGER NOT NULL DEFAULT 0,
    created_by     TEXT    NOT NULL,
    created_ms     INTEGER NOT NULL,
    launched_ms    INTEGER,
    completed_ms   INTEGER
);

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    campaign_id      INTEGER NOT NULL REFERENCES campaigns(id),
    subscriber_id    INTEGER NOT NULL REFERENCES subscribers(id),
    msisdn           TEXT    NOT NULL,          -- snapshot at launch
    carrier          TEXT    NOT NULL,
    district         TEXT,
    state            TEXT    NOT NULL,          -- queued|claimed|sending|submitted|delivered|failed|expired|rejected|unknown|suppressed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_ms INTEGER,
    gateway          TEXT,
    gateway_id       TEXT,
    message_text     TEXT,                      -- the text as sent, when the campaign is personalised
    last_error       TEXT,
    submitted_ms     INTEGER,
    final_ms         INTEGER,
    UNIQUE (campaign_id, subscriber_id)
);
CREATE INDEX deliveries_claim ON deliveries (campaign_id, state, next_attempt_ms);
CREATE INDEX deliveries_gateway_id ON deliveries (gateway_id);
CREATE INDEX deliveries_msisdn ON deliveries (msisdn);

CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
    delivery_id  INTEGER NOT NULL REFERENCES deliveries(id),
    attempt_no   INTEGER NOT NULL,
    worker       TEXT    NOT NULL,
    started_ms   INTEGER NOT NULL,
    latency_ms   INTEGER,
    http_status  INTEGER,
    gateway_code TEXT,
    outcome      TEXT    NOT NULL,              -- submitted|retry|gave_up|rejected|in_doubt|recovered_*
    error        TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);
CREATE INDEX attempts_campaign ON attempts (campaign_id, outcome);

CREATE TABLE receipts (
    id          INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    gateway     TEXT    NOT NULL,
    gateway_id  TEXT,
    delivery_id INTEGER,
    status      TEXT    NOT NULL,
    raw         TEXT    NOT NULL,
    matched     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX receipts_delivery ON receipts (delivery_id);

CREATE TABLE workers (
    id           TEXT    PRIMARY KEY,
    campaign_id  INTEGER NOT NULL,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    started_ms   INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL,
    sent         INTEGER NOT NULL DEFAULT 0,
    stopped_ms   INTEGER
);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    details   TEXT    NOT NULL,                 -- JSON
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
