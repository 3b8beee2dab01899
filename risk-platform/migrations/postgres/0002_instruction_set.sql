-- The instruction set's counters: instructions ever issued and ever revoked, moved in
-- the transaction of each issue and revocation. Both only grow, so a replica learns
-- whether the set changed by reading this one row, rather than by counting every
-- instruction (20 ms at 100,000).
CREATE TABLE instruction_set (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    issued  BIGINT NOT NULL,
    revoked BIGINT NOT NULL
);
INSERT INTO instruction_set (id, issued, revoked)
SELECT 1, COUNT(*), COUNT(revoked_at) FROM control_instructions;
