-- A credit-class change dated in the future takes effect on its day: the change is
-- applied (the enterprise's class set to the one in force, a DISCREDITED change handed
-- to the field platform) when it is recorded if it is due, else by the declaration
-- platform's watch on that day. Changes recorded before this column existed were applied
-- then if they were due; those that were not are applied by the watch.
ALTER TABLE credit_class_history ADD COLUMN applied_at TIMESTAMPTZ;
UPDATE credit_class_history SET applied_at = recorded_at WHERE effective_from <= CAST(recorded_at AS DATE);
CREATE INDEX credit_class_history_pending ON credit_class_history (effective_from) WHERE applied_at IS NULL;
