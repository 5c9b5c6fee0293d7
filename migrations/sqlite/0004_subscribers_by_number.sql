-- Subscribers keyed by the number itself: `id` is the canonical number as an integer
-- (84912345678), and `msisdn` is computed from it, never stored twice. An import sorted by
-- number then appends to the table instead of inserting at random places in a separate
-- unique index on the text (the cost that dominated a 2-million-row import).
--
-- Existing rows are renumbered, and the list members and deliveries that point at them
-- follow. Foreign keys are checked at commit, when every reference points at the new table.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE subscribers_by_number (
    id            INTEGER PRIMARY KEY,          -- the canonical number, 84 + 9 digits
    carrier       TEXT    NOT NULL,
    district      TEXT,
    attributes    TEXT,                         -- JSON object of extra CSV columns, or NULL
    first_seen_ms INTEGER NOT NULL,
    msisdn        TEXT    GENERATED ALWAYS AS (CAST(id AS TEXT)) VIRTUAL
);

INSERT INTO subscribers_by_number (id, carrier, district, attributes, first_seen_ms)
SELECT CAST(msisdn AS INTEGER), carrier, district, attributes, first_seen_ms
FROM subscribers ORDER BY CAST(msisdn AS INTEGER);

CREATE TEMP TABLE subscriber_renumbering AS
SELECT id AS old_id, CAST(msisdn AS INTEGER) AS new_id FROM subscribers;
CREATE UNIQUE INDEX temp.subscriber_renumbering_old ON subscriber_renumbering (old_id);

-- Dropping the old table makes SQLite look up every row's members and deliveries (foreign
-- keys): without these two indexes, each lookup would scan a whole table.
CREATE INDEX list_members_by_subscriber ON list_members (subscriber_id);
CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id);

DROP TABLE subscribers;
ALTER TABLE subscribers_by_number RENAME TO subscribers;

UPDATE list_members SET subscriber_id =
    (SELECT new_id FROM temp.subscriber_renumbering WHERE old_id = list_members.subscriber_id);
UPDATE deliveries SET subscriber_id =
    (SELECT new_id FROM temp.subscriber_renumbering WHERE old_id = deliveries.subscriber_id);

DROP TABLE temp.subscriber_renumbering;
DROP INDEX list_members_by_subscriber;
DROP INDEX deliveries_by_subscriber;
