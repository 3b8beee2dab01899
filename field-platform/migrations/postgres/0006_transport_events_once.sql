-- A device that resends its buffered events after a broken stream (it cannot know
-- which ones arrived) has each recorded once: the same device, declaration, kind and
-- time is the same event. Repeats already stored keep their first row.
DELETE FROM transport_events
WHERE id NOT IN (SELECT MIN(id) FROM transport_events
                 GROUP BY declaration_number, device_id, kind, occurred_at);
CREATE UNIQUE INDEX transport_events_once
    ON transport_events (declaration_number, device_id, kind, occurred_at);
