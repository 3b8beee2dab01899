-- Modification and cancellation requests: forwarded to the sub-centre that reviews
-- the declaration (through the outbox), decided there, applied here.
CREATE TABLE change_requests (
    id                 TEXT PRIMARY KEY,
    request_id         TEXT NOT NULL UNIQUE,
    declaration_number TEXT NOT NULL REFERENCES declarations (declaration_number),
    kind               TEXT NOT NULL,
    state              TEXT NOT NULL,
    reason             TEXT NOT NULL,
    proposed_content   BLOB,
    deciding_house     TEXT NOT NULL DEFAULT '',
    requested_by       TEXT NOT NULL,
    requested_at       TEXT NOT NULL,
    decided_at         TEXT,
    decision_reason    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX change_requests_declaration ON change_requests (declaration_number, state);
