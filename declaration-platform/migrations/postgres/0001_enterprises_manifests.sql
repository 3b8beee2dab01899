-- Enterprises and customs brokers, registered once for the whole province.
CREATE TABLE enterprises (
    code              TEXT PRIMARY KEY,
    request_id        TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('TRADER', 'BROKER')),
    credit_class      TEXT NOT NULL,
    home_house        TEXT NOT NULL,
    suspended         BOOLEAN NOT NULL DEFAULT FALSE,
    suspension_reason TEXT NOT NULL DEFAULT '',
    registered_at     TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);

-- Credit classes are effective-dated (the national scheme changed in 2018, 2021, 2026).
CREATE TABLE credit_class_history (
    code           TEXT NOT NULL REFERENCES enterprises (code),
    credit_class   TEXT NOT NULL,
    effective_from DATE NOT NULL,
    reason         TEXT NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX credit_class_history_code ON credit_class_history (code, effective_from);

-- Manifests, received once at any house and shared by all.
CREATE TABLE manifests (
    bill_of_lading    TEXT PRIMARY KEY,
    request_id        TEXT NOT NULL UNIQUE,
    conveyance        TEXT NOT NULL,
    port_code         TEXT NOT NULL,
    direction         TEXT NOT NULL,
    containers        TEXT NOT NULL,
    arrival_time      TIMESTAMPTZ,
    received_by_house TEXT NOT NULL,
    received_at       TIMESTAMPTZ NOT NULL
);
