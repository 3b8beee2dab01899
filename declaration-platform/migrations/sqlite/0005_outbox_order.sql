-- Hand-offs with the same key (what they are about: OutboxJob::key) are delivered in
-- the order they were written: the relay claims only the oldest pending job of a key,
-- so a later one never overtakes an earlier one waiting out a back-off. Pending jobs
-- take their key from their payload, as OutboxJob::key gives it.
ALTER TABLE outbox ADD COLUMN job_key TEXT;
UPDATE outbox SET job_key = COALESCE(json_extract(payload, '$.declaration_number'), json_extract(payload, '$.holder'), json_extract(payload, '$.change_request_id')) WHERE done_at IS NULL;
CREATE INDEX outbox_pending_by_key ON outbox (job_key, id) WHERE done_at IS NULL;
