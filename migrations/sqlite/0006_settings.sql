-- Values this database keeps about itself. `reference_key`: the secret that signs the
-- references sent with each message (src/store/reference.rs), made on first use; `created_ms`
-- tells which messages went out before it existed (their old unsigned references still count).
CREATE TABLE settings (
    name       TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
);
