-- Tax bills: one per declaration; lines as JSON (exact decimals as strings).
CREATE TABLE tax_bills (
    declaration_number  TEXT PRIMARY KEY,
    id                  TEXT NOT NULL UNIQUE,
    enterprise_code     TEXT NOT NULL,
    broker_code         TEXT NOT NULL DEFAULT '',
    house_code          TEXT NOT NULL,
    tariff_version      INTEGER NOT NULL,
    payment_method      TEXT NOT NULL,
    state               TEXT NOT NULL,
    guarantee_reference TEXT NOT NULL DEFAULT '',
    lines               TEXT NOT NULL,
    total_duty_fen      INTEGER NOT NULL,
    total_vat_fen       INTEGER NOT NULL,
    total_fen           INTEGER NOT NULL,
    rounding            TEXT NOT NULL,
    due_date            TEXT,
    assessed_at         TEXT NOT NULL,
    paid_at             TEXT,
    payment_reference   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX tax_bills_due ON tax_bills (state, due_date);

-- Inspections 查验: ordered after a RED lane's review or by immediate control.
CREATE TABLE inspections (
    declaration_number TEXT PRIMARY KEY,
    id                 TEXT NOT NULL UNIQUE,
    round              INTEGER NOT NULL DEFAULT 1,
    state              TEXT NOT NULL,
    reason             TEXT NOT NULL,
    ordered_by_house   TEXT NOT NULL,
    site_kind          TEXT NOT NULL DEFAULT '',
    site_code          TEXT NOT NULL DEFAULT '',
    smart_lock         INTEGER NOT NULL DEFAULT 0,
    vehicle_tracking   INTEGER NOT NULL DEFAULT 0,
    route              TEXT NOT NULL DEFAULT '[]',
    corridor_metres    REAL NOT NULL DEFAULT 0,
    vehicle_plate      TEXT NOT NULL DEFAULT '',
    lock_id            TEXT NOT NULL DEFAULT '',
    tracker_id         TEXT NOT NULL DEFAULT '',
    discrepancy        INTEGER NOT NULL DEFAULT 0,
    result_details     TEXT NOT NULL DEFAULT '',
    ordered_at         TEXT NOT NULL,
    completed_at       TEXT
);

-- Positions and seal events reported by trackers and smart locks.
CREATE TABLE transport_events (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    declaration_number TEXT NOT NULL,
    device_id          TEXT NOT NULL,
    kind               TEXT NOT NULL,
    latitude           REAL,
    longitude          REAL,
    at_site            TEXT NOT NULL DEFAULT '',
    occurred_at        TEXT NOT NULL
);
CREATE INDEX transport_events_declaration ON transport_events (declaration_number, id);

-- Holds on goods; at most one open hold per declaration and reason.
CREATE TABLE holds (
    id                 TEXT PRIMARY KEY,
    declaration_number TEXT NOT NULL,
    reason             TEXT NOT NULL,
    details            TEXT NOT NULL,
    raised_at          TEXT NOT NULL,
    open               INTEGER NOT NULL DEFAULT 1,
    lifted_at          TEXT,
    lifted_by          TEXT NOT NULL DEFAULT '',
    lift_reason        TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX holds_open ON holds (declaration_number, reason) WHERE open;

-- The electronic release record the gates decide from.
CREATE TABLE releases (
    declaration_number TEXT PRIMARY KEY,
    port_code          TEXT NOT NULL,
    integrated_mode    INTEGER NOT NULL,
    released_at        TEXT NOT NULL,
    exited_at          TEXT,
    exit_gate          TEXT NOT NULL DEFAULT ''
);
CREATE TABLE release_containers (
    declaration_number TEXT NOT NULL REFERENCES releases (declaration_number),
    container_number   TEXT NOT NULL,
    PRIMARY KEY (declaration_number, container_number)
);

-- Gate decisions by the gate's request id: a retry gets the first answer.
CREATE TABLE gate_checks (
    request_id TEXT PRIMARY KEY,
    gate_id    TEXT NOT NULL,
    decision   TEXT NOT NULL,
    decided_at TEXT NOT NULL
);

-- Hand-offs to the declaration and review platforms (customs_common::outbox).
CREATE TABLE field_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    locked_until    INTEGER,
    done_at         TEXT
);
CREATE INDEX field_outbox_due ON field_outbox (next_attempt_at) WHERE done_at IS NULL;
