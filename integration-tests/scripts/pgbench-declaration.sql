-- pgbench's declaration-shaped transaction: one declaration with three items and its
-- first lifecycle event, committed together (the ceiling for durable submissions).
\set seq random(1, 1000000000)
BEGIN;
INSERT INTO bench_declaration (declaration_number, request_id, enterprise_code, declaring_office, direction, mode, total_fen, stage, submitted_at)
  VALUES ('5301' || '2026' || '1' || lpad(:seq::text, 9, '0') || :client_id, gen_random_uuid()::text, '4403960001', '5301', 1, 5, 300000, 'SUBMITTED', now())
  ON CONFLICT DO NOTHING;
INSERT INTO bench_item (declaration_number, line_no, hs_code, origin, value_fen)
  VALUES ('5301' || '2026' || '1' || lpad(:seq::text, 9, '0') || :client_id, 1, '8471300000', 'US', 100000),
         ('5301' || '2026' || '1' || lpad(:seq::text, 9, '0') || :client_id, 2, '8517620000', 'US', 100000),
         ('5301' || '2026' || '1' || lpad(:seq::text, 9, '0') || :client_id, 3, '0901210000', 'BR', 100000)
  ON CONFLICT DO NOTHING;
INSERT INTO bench_event (declaration_number, stage, house_code, occurred_at)
  VALUES ('5301' || '2026' || '1' || lpad(:seq::text, 9, '0') || :client_id, 'SUBMITTED', '5300', now());
COMMIT;
