-- Mutual-recognition rulings: the durable record the shared store is rebuilt from.
CREATE TABLE rulings (
    id                     TEXT PRIMARY KEY,
    request_id             TEXT NOT NULL UNIQUE,
    kind                   TEXT NOT NULL,
    issuing_house          TEXT NOT NULL,
    holder                 TEXT NOT NULL,
    subject                TEXT NOT NULL,
    hs_code                TEXT,
    price_currency         TEXT,
    price_amount           TEXT,
    origin_country         TEXT,
    quantity_granted_milli BIGINT CHECK (quantity_granted_milli IS NULL OR quantity_granted_milli > 0),
    unit                   TEXT,
    valid_from             DATE NOT NULL,
    valid_until            DATE NOT NULL,
    revoked                BOOLEAN NOT NULL DEFAULT FALSE,
    replaced_by            TEXT,
    revocation_reason      TEXT,
    issued_at              TIMESTAMPTZ NOT NULL,
    CHECK (valid_until >= valid_from)
);
CREATE INDEX rulings_holder ON rulings (holder, kind);

-- Each declaration draws on a licence once.
CREATE TABLE licence_draws (
    ruling_id          TEXT NOT NULL REFERENCES rulings (id),
    declaration_number TEXT NOT NULL,
    quantity_milli     BIGINT NOT NULL CHECK (quantity_milli > 0),
    house_code         TEXT NOT NULL,
    recorded_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (ruling_id, declaration_number)
);
