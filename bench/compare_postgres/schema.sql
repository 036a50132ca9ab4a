-- PostgreSQL side of bench/compare_postgres.sh: machub's journal schema
-- (src/journal/sqlite_journal.cc, migrations v1 + v2) with the lines of each sale in a
-- table of their own, as a relational design would keep them.
DROP TABLE IF EXISTS sale_lines, sales, terminals;
CREATE TABLE terminals(
  terminal_id TEXT PRIMARY KEY,
  last_receipt BIGINT NOT NULL
);
CREATE TABLE sales(
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  terminal_id TEXT NOT NULL,
  receipt_no TEXT NOT NULL,
  type TEXT NOT NULL CHECK (type IN ('sale', 'refund', 'void')),
  ref TEXT REFERENCES sales(id),
  created_at_ms BIGINT NOT NULL,
  received_at_ms BIGINT NOT NULL,
  clock_skew BOOLEAN NOT NULL,
  currency TEXT NOT NULL,
  total BIGINT NOT NULL,
  change BIGINT NOT NULL,
  canonical TEXT NOT NULL,
  prev_hash BYTEA NOT NULL,
  hash BYTEA NOT NULL,
  uploaded BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX sales_unuploaded ON sales(seq) WHERE NOT uploaded;
CREATE INDEX sales_ref ON sales(ref) WHERE ref IS NOT NULL;
CREATE TABLE sale_lines(
  seq BIGINT NOT NULL REFERENCES sales(seq),
  line_no INT NOT NULL,
  sku TEXT NOT NULL,
  name TEXT NOT NULL,
  qty_milli BIGINT NOT NULL,
  unit_price BIGINT NOT NULL,
  discount BIGINT NOT NULL,
  tax_rate_micro INT NOT NULL,
  net BIGINT NOT NULL,
  tax BIGINT NOT NULL,
  PRIMARY KEY (seq, line_no)
);
-- One row per pgbench client (client_id 0..N-1 is terminal T001..), as machub keeps one
-- receipt counter per terminal.
INSERT INTO terminals SELECT 'T' || lpad(g::text, 3, '0'), 0 FROM generate_series(1, 256) g;
