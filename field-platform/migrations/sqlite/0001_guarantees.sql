-- General guarantees and their durable ledger: the system of record from which the
-- shared store's balances can always be rebuilt.
CREATE TABLE guarantees (
    reference           TEXT PRIMARY KEY,
    request_id          TEXT NOT NULL UNIQUE,
    bank                TEXT NOT NULL,
    holder              TEXT NOT NULL,
    amount_fen          INTEGER NOT NULL CHECK (amount_fen > 0),
    valid_from          TEXT NOT NULL,
    valid_until         TEXT NOT NULL,
    access_hash         TEXT NOT NULL,
    suspended           INTEGER NOT NULL DEFAULT 0,
    suspension_reason   TEXT NOT NULL DEFAULT '',
    registered_by_house TEXT NOT NULL,
    registered_at       TEXT NOT NULL,
    CHECK (valid_until >= valid_from)
);
CREATE INDEX guarantees_holder ON guarantees (holder);

-- One row per reservation and per release; a declaration reserves and releases once.
CREATE TABLE guarantee_ledger (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    reference          TEXT NOT NULL REFERENCES guarantees (reference),
    declaration_number TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('RESERVE', 'RELEASE')),
    amount_fen         INTEGER NOT NULL CHECK (amount_fen > 0),
    house_code         TEXT NOT NULL,
    recorded_at        TEXT NOT NULL,
    UNIQUE (reference, declaration_number, kind)
);

-- Enterprises barred from summary tax payment: discredited, or in arrears.
CREATE TABLE holder_restrictions (
    holder     TEXT NOT NULL,
    reason     TEXT NOT NULL CHECK (reason IN ('DISCREDITED', 'ARREARS')),
    note       TEXT NOT NULL DEFAULT '',
    since      TEXT NOT NULL,
    PRIMARY KEY (holder, reason)
);
