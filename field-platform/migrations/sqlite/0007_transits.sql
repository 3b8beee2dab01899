-- Transit 转关 (DOMAIN.md 3): a TRANSIT declaration's goods travel under seal between
-- two houses; the declaration is released only once its transit is written off.
CREATE TABLE transits (
    declaration_number TEXT PRIMARY KEY,
    state              TEXT NOT NULL,
    departure_house    TEXT NOT NULL,
    destination_house  TEXT NOT NULL,
    vehicle_plate      TEXT NOT NULL,
    -- JSON array of the seals put on at departure.
    seal_numbers       TEXT NOT NULL DEFAULT '[]',
    -- The smart lock and the tracker fitted with the seals, if any: their reports
    -- while the vehicle is sealed can raise holds.
    lock_id            TEXT NOT NULL DEFAULT '',
    tracker_id         TEXT NOT NULL DEFAULT ''
);

-- Every step taken, in order: who, at which house, when, and what they noted.
CREATE TABLE transit_steps (
    declaration_number TEXT NOT NULL REFERENCES transits (declaration_number),
    seq                INTEGER NOT NULL,
    state              TEXT NOT NULL,
    actor              TEXT NOT NULL,
    house_code         TEXT NOT NULL,
    at                 TEXT NOT NULL,
    note               TEXT NOT NULL DEFAULT '',
    -- The client's request id: a repeat returns the transit as this step left it.
    request_id         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (declaration_number, seq)
);
CREATE UNIQUE INDEX transit_steps_request ON transit_steps (declaration_number, request_id)
    WHERE request_id <> '';
