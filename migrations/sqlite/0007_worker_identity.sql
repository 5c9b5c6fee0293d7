-- A worker's process, as its own machine can recognise it: boot id, PID namespace, pid and
-- the process's start time (src/dispatch/liveness.rs). Another process on the same kernel
-- and in the same PID namespace can tell for sure whether that process still runs; anyone
-- else waits for the worker's lease to expire. NULL for workers registered before.
ALTER TABLE workers ADD COLUMN process TEXT;
