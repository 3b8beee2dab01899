-- One decision per revision of a declaration: 0 as submitted, n after its n-th approved
-- modification (whose content is checked and screened again). SQLite cannot drop a
-- column's UNIQUE, so the table is rebuilt.
CREATE TABLE screening_decisions_by_revision (
    decision_id        TEXT PRIMARY KEY,
    declaration_number TEXT NOT NULL,
    revision           INTEGER NOT NULL DEFAULT 0,
    decision           TEXT NOT NULL,
    parameters_version INTEGER NOT NULL,
    credit_class       TEXT NOT NULL,
    decided_at         TEXT NOT NULL,
    UNIQUE (declaration_number, revision)
);
INSERT INTO screening_decisions_by_revision
    (decision_id, declaration_number, revision, decision, parameters_version, credit_class, decided_at)
SELECT decision_id, declaration_number, 0, decision, parameters_version, credit_class, decided_at
FROM screening_decisions;
DROP TABLE screening_decisions;
ALTER TABLE screening_decisions_by_revision RENAME TO screening_decisions;
