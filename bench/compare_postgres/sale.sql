-- One sale per transaction, in ONE statement (one round trip, the best case for PostgreSQL).
-- the terminal's receipt counter is bumped, the sale row (canonical JSON of ~0.5-1.5 KB
-- built server-side, its SHA-256) and its 1-10 lines (uniform, as src/app/salegen.cc)
-- are inserted; the implicit transaction commits with synchronous_commit=on.
-- Not done here, unlike machub, the hash chain (prev_hash is zeros: chaining in SQL would
-- serialize every commit on the chain head's row lock), JSON parsing and validation.
\set nlines random(1, 10)
\set salt random(1, 1000000)
WITH t AS (
  UPDATE terminals SET last_receipt = last_receipt + 1
   WHERE terminal_id = 'T' || lpad((:client_id + 1)::text, 3, '0')
  RETURNING terminal_id, last_receipt
), l AS (
  SELECT g AS line_no,
         lpad((((g * 7 + :salt) % 12) + 1)::text, 4, '0') AS sku,
         'Product ' || (((g * 7 + :salt) % 12) + 1) AS name,
         1000 * (1 + (g + :salt) % 3) AS qty_milli,
         100 + ((g * 997 + :salt) % 1900) AS unit_price,
         82500 AS tax_rate_micro
    FROM generate_series(1, :nlines) g
), lc AS (
  SELECT l.*, qty_milli * unit_price / 1000 AS net,
         (qty_milli * unit_price / 1000 * tax_rate_micro + 500000) / 1000000 AS tax
    FROM l
), c AS (
  SELECT t.terminal_id, t.last_receipt, gen_random_uuid()::text AS id,
         (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms,
         (SELECT sum(net + tax) FROM lc) AS total
    FROM t
), j AS (
  SELECT c.*,
         '{"id":"' || c.id || '","terminal_id":"' || c.terminal_id ||
         '","type":"sale","created_at":"' ||
         (to_json(clock_timestamp() AT TIME ZONE 'UTC') #>> '{}') || 'Z' ||
         '","currency":"USD","cashier":"c-7","lines":[' ||
         (SELECT string_agg('{"sku":"' || sku || '","name":"' || name || '","qty":"' ||
                            (qty_milli / 1000) || '","unit_price":"' || (unit_price / 100) ||
                            '.' || lpad((unit_price % 100)::text, 2, '0') ||
                            '","tax_rate":"0.0825","net":"' || net || '","tax":"' || tax ||
                            '"}', ',' ORDER BY line_no) FROM lc) ||
         '],"payments":[{"method":"card","amount":"' || c.total ||
         '","card_token":"tok_a1b2c3d4e5f6a7b8c9d0e1f2","last4":"4242","brand":"visa",' ||
         '"auth_code":"A12345"}],"total":"' || c.total || '"}' AS canonical
    FROM c
), s AS (
  INSERT INTO sales (id, terminal_id, receipt_no, type, created_at_ms, received_at_ms,
                     clock_skew, currency, total, change, canonical, prev_hash, hash)
  SELECT id, terminal_id, terminal_id || '-' || lpad(last_receipt::text, 6, '0'), 'sale',
         now_ms, now_ms, false, 'USD', total, 0, canonical, decode(repeat('00', 32), 'hex'),
         sha256(convert_to(canonical, 'UTF8'))
    FROM j
  RETURNING seq
)
INSERT INTO sale_lines (seq, line_no, sku, name, qty_milli, unit_price, discount,
                        tax_rate_micro, net, tax)
SELECT s.seq, lc.line_no, lc.sku, lc.name, lc.qty_milli, lc.unit_price, 0, lc.tax_rate_micro,
       lc.net, lc.tax
  FROM s, lc;
