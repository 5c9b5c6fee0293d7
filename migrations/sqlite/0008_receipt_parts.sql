-- Multi-part messages: a Kannel gateway with `receipts_per_part` sends one receipt per part of
-- a concatenated message, each naming the part by the SMSC's message id (`%F` in the dlr-url). `part` keeps it, so a
-- message is delivered only once every part has a delivered receipt, and a part's receipt
-- sent twice counts once (src/store/receipts.rs). NULL for receipts that name no part
-- (Twilio, http-json, stock Kannel, and receipts of messages sent before this column).
ALTER TABLE receipts ADD COLUMN part TEXT;
