-- Launch in chunks: a campaign's deliveries are created from its list in chunks that each
-- commit, so sending starts on the first chunk. `launch_after` is the last list member
-- (subscriber id) copied so far; NULL once every member is there (and for campaigns launched
-- before). A campaign cannot complete while it is not NULL (src/store/contract.rs).
ALTER TABLE campaigns ADD COLUMN launch_after BIGINT;

-- Leases per worker: a worker's heartbeat renews its own row, not each of its leased
-- deliveries. A delivery in flight is recoverable once both its own lease (set when it was
-- claimed or marked) and its worker's lease have run out.
ALTER TABLE workers ADD COLUMN lease_expires_ms BIGINT;
