-- Ledger, transport-event and outbox ids come from the rowid, as SQLite gives it (one
-- more than the largest): rows are never deleted here, so ids still only grow.
-- AUTOINCREMENT kept a counter in sqlite_sequence besides, a page more written by every
-- transaction that inserts into one of these tables (a gate PASS writes its EXITED
-- report to the outbox). SQLite cannot drop the keyword from a table, so each is
-- rebuilt with its rows and indexes.
--
-- Gate checks are found only by their request id: kept in the b-tree of that key
-- alone (WITHOUT ROWID) rather than in a table of rowids and an index of the key
-- beside it, each check writes one b-tree instead of two.
CREATE TABLE gate_checks_keyed (
    request_id    TEXT PRIMARY KEY,
    gate_id       TEXT NOT NULL,
    decision      TEXT NOT NULL,
    decided_at    TEXT NOT NULL,
    vehicle_plate TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
INSERT INTO gate_checks_keyed (request_id, gate_id, decision, decided_at, vehicle_plate)
SELECT request_id, gate_id, decision, decided_at, vehicle_plate FROM gate_checks;
DROP TABLE gate_checks;
ALTER TABLE gate_checks_keyed RENAME TO gate_checks;

CREATE TABLE guarantee_ledger_rowid (
    id                 INTEGER PRIMARY KEY,
    reference          TEXT NOT NULL REFERENCES guarantees (reference),
    declaration_number TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('RESERVE', 'RELEASE')),
    amount_fen         INTEGER NOT NULL CHECK (amount_fen > 0),
    house_code         TEXT NOT NULL,
    recorded_at        TEXT NOT NULL,
    UNIQUE (reference, declaration_number, kind)
);
INSERT INTO guarantee_ledger_rowid
    (id, reference, declaration_number, kind, amount_fen, house_code, recorded_at)
SELECT id, reference, declaration_number, kind, amount_fen, house_code, recorded_at
FROM guarantee_ledger;
DROP TABLE guarantee_ledger;
ALTER TABLE guarantee_ledger_rowid RENAME TO guarantee_ledger;

CREATE TABLE transport_events_rowid (
    id                 INTEGER PRIMARY KEY,
    declaration_number TEXT NOT NULL,
    device_id          TEXT NOT NULL,
    kind               TEXT NOT NULL,
    latitude           REAL,
    longitude          REAL,
    at_site            TEXT NOT NULL DEFAULT '',
    occurred_at        TEXT NOT NULL
);
INSERT INTO transport_events_rowid
    (id, declaration_number, device_id, kind, latitude, longitude, at_site, occurred_at)
SELECT id, declaration_number, device_id, kind, latitude, longitude, at_site, occurred_at
FROM transport_events;
DROP TABLE transport_events;
ALTER TABLE transport_events_rowid RENAME TO transport_events;
CREATE INDEX transport_events_declaration ON transport_events (declaration_number, id);
CREATE UNIQUE INDEX transport_events_once
    ON transport_events (declaration_number, device_id, kind, occurred_at);

CREATE TABLE field_outbox_rowid (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    locked_until    INTEGER,
    done_at         TEXT,
    job_key         TEXT
);
INSERT INTO field_outbox_rowid
    (id, kind, payload, attempts, last_error, created_at, next_attempt_at, locked_until, done_at, job_key)
SELECT id, kind, payload, attempts, last_error, created_at, next_attempt_at, locked_until, done_at, job_key
FROM field_outbox;
DROP TABLE field_outbox;
ALTER TABLE field_outbox_rowid RENAME TO field_outbox;
CREATE INDEX field_outbox_pending ON field_outbox (id) WHERE done_at IS NULL;
CREATE INDEX field_outbox_pending_by_key ON field_outbox (job_key, id) WHERE done_at IS NULL;

DELETE FROM sqlite_sequence WHERE name IN ('guarantee_ledger', 'transport_events', 'field_outbox');
