-- The vehicle a gate check presented: kept with the check, and with each exit next to
-- the gate it went through, so that an exit says which truck took the goods out.
-- Exits recorded before this named no vehicle.
ALTER TABLE gate_checks ADD COLUMN vehicle_plate TEXT NOT NULL DEFAULT '';
ALTER TABLE releases ADD COLUMN exit_vehicle TEXT NOT NULL DEFAULT '';
ALTER TABLE release_containers ADD COLUMN exit_vehicle TEXT NOT NULL DEFAULT '';
