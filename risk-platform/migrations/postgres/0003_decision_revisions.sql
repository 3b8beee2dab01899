-- One decision per revision of a declaration: 0 as submitted, n after its n-th approved
-- modification (whose content is checked and screened again).
ALTER TABLE screening_decisions ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE screening_decisions DROP CONSTRAINT screening_decisions_declaration_number_key;
ALTER TABLE screening_decisions
    ADD CONSTRAINT screening_decisions_declaration_revision UNIQUE (declaration_number, revision);
