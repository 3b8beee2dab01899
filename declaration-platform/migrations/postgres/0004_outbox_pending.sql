-- The relay claims due jobs in id order among those not done. Done jobs stay for the
-- record, so the table only grows: an index on next_attempt_at left SQLite scanning
-- the whole table in id order on every claim. This one holds only pending jobs, in
-- the order they are claimed.
DROP INDEX outbox_due;
CREATE INDEX outbox_pending ON outbox (id) WHERE done_at IS NULL;
