"""The chaos run's verdict over objects read back from S3 (python3, standard library only).

Nothing here uses machub code: the objects are downloaded by s3cmd, decompressed with
Python's gzip module and parsed as JSON Lines or CSV following docs/S3_FORMAT.md. The
caller supplies what else it knows independently (the acknowledged ids the load
generators wrote, the journal's (seq, id) rows read with the sqlite3 CLI).

Checks, each one a line in Verdict.checks:
  objects     every object under sales/ decompresses and parses; its key names the seq
              range its rows hold (<store>-<first>-<last>, zero-padded, contiguous)
  lost        every acknowledged id is in S3
  duplicated  no sale id and no seq appears twice across all objects
  seqs        the seqs in S3 run 1..N without a gap
  journal     S3 holds exactly the journal's (seq, id) rows, when the journal is given

judge_dynamodb() judges the DynamoDB sales table the same way, from items read back with
awscli (docs/DYNAMODB.md): "ddb items" (well-formed, this store), "ddb lost", "ddb
duplicated" (entry_id or seq twice), "ddb seqs", "ddb journal", and "ddb vs S3" (for
every seq in both, the same id and entry_hash = the S3 row's hash).
"""

import csv
import gzip
import io
import json
import os
import re

KEY_RE = re.compile(
    r"(?:^|/)sales/store=(?P<store>[^/]+)/date=(?P<date>\d{4}-\d{2}-\d{2})/"
    r"(?P=store)-(?P<first>\d{12})-(?P<last>\d{12})\.(?P<fmt>jsonl|csv)\.gz$")


class Verdict:
    def __init__(self):
        self.checks = []  # (name, ok, detail)
        self.objects = 0
        self.sales_in_s3 = 0
        self.acked = 0
        self.lost = []
        self.dup_ids = []
        self.dup_seqs = []
        self.unacked_stored = 0
        self.max_seq = 0
        self.s3_rows = {}  # seq -> (id, hash or None), from the S3 objects (judge only)

    @property
    def duplicated(self):
        return len(self.dup_ids) + len(self.dup_seqs)

    def ok(self):
        return all(c[1] for c in self.checks)

    def add(self, name, ok, detail):
        self.checks.append((name, bool(ok), detail))


def parse_object(key, data, hashes=None):
    """Returns [(seq, id)] in file order (one entry per sale). Raises ValueError. With a
    dict `hashes`, also stores each row's `hash` (hex) under its seq when the row has one."""
    raw = gzip.decompress(data)
    text = raw.decode("utf-8")
    fmt = "csv" if key.endswith(".csv.gz") else "jsonl"
    sales = []
    if fmt == "jsonl":
        if text and not text.endswith("\n"):
            raise ValueError("last line is not newline-terminated")
        for n, line in enumerate(text.split("\n")[:-1], 1):
            row = json.loads(line)
            if not isinstance(row, dict) or "id" not in row or "seq" not in row:
                raise ValueError("line %d: no id/seq" % n)
            if not isinstance(row["seq"], int):
                raise ValueError("line %d: seq is not an integer" % n)
            sales.append((row["seq"], row["id"]))
            if hashes is not None and "hash" in row:
                hashes[row["seq"]] = row["hash"]
        return sales
    reader = csv.DictReader(io.StringIO(text, newline=""))
    need = {"seq", "sale_id", "line_no"}
    if reader.fieldnames is None or not need.issubset(reader.fieldnames):
        raise ValueError("CSV header lacks %s" % sorted(need))
    # One row per line item: a sale starts at line_no 1 and its rows are consecutive. A
    # sale written twice in one object shows up as a second line_no 1 for its id.
    current = None
    expect_line = 0
    for n, row in enumerate(reader, 2):
        seq, sid, line_no = int(row["seq"]), row["sale_id"], int(row["line_no"])
        if line_no == 1:
            sales.append((seq, sid))
            if hashes is not None and row.get("hash"):
                hashes[seq] = row["hash"]
            current, expect_line = (seq, sid), 2
        else:
            if current != (seq, sid) or line_no != expect_line:
                raise ValueError("row %d: line_no %d of %s out of order" % (n, line_no, sid))
            expect_line += 1
    return sales


def judge(objects, acked, journal_rows=None, show=10):
    """objects: {key: gz bytes} for every object under sales/; acked: iterable of ids;
    journal_rows: [(seq, id)] from the journal, or None. Returns a Verdict."""
    v = Verdict()
    acked = set(acked)
    v.acked = len(acked)
    id_count, seq_count = {}, {}
    s3_pairs = {}  # seq -> {ids}
    bad = []
    hashes = {}
    for key in sorted(objects):
        v.objects += 1
        m = KEY_RE.search(key)
        if not m:
            bad.append("%s: key does not follow the layout" % key)
            continue
        try:
            sales = parse_object(key, objects[key], hashes)
        except (OSError, EOFError, ValueError, UnicodeDecodeError, KeyError) as e:
            bad.append("%s: %s" % (key, e))
            continue
        first, last = int(m.group("first")), int(m.group("last"))
        seqs = [s for s, _ in sales]
        if seqs != list(range(first, last + 1)):
            bad.append("%s: rows are not seqs %d..%d in order (%d rows, first %s, last %s)" %
                       (key, first, last, len(seqs), seqs[0] if seqs else "-",
                        seqs[-1] if seqs else "-"))
        for seq, sid in sales:
            v.sales_in_s3 += 1
            id_count[sid] = id_count.get(sid, 0) + 1
            seq_count[seq] = seq_count.get(seq, 0) + 1
            s3_pairs.setdefault(seq, set()).add(sid)
            v.s3_rows[seq] = (sid, hashes.get(seq))
    v.add("objects", not bad and v.objects > 0,
          "%d objects parsed%s" % (v.objects, "; " + "; ".join(bad[:show]) if bad else ""))

    v.lost = sorted(acked - id_count.keys())
    v.add("lost", not v.lost, "%d acknowledged ids not in S3%s" %
          (len(v.lost), (": " + ", ".join(v.lost[:show])) if v.lost else ""))

    v.dup_ids = sorted(i for i, n in id_count.items() if n > 1)
    v.dup_seqs = sorted(s for s, n in seq_count.items() if n > 1)
    v.add("duplicated", not v.dup_ids and not v.dup_seqs,
          "%d ids and %d seqs more than once%s" %
          (len(v.dup_ids), len(v.dup_seqs),
           (": " + ", ".join(v.dup_ids[:show])) if v.dup_ids else ""))
    v.unacked_stored = len(id_count.keys() - acked)

    v.max_seq = max(seq_count) if seq_count else 0
    missing = [s for s in range(1, v.max_seq + 1) if s not in seq_count]
    v.add("seqs", seq_count and not missing and min(seq_count) == 1,
          "seq 1..%d, %d missing%s" % (v.max_seq, len(missing),
                                       (": " + ", ".join(map(str, missing[:show])))
                                       if missing else ""))

    if journal_rows is not None:
        j = dict(journal_rows)
        not_uploaded = sorted(s for s in j if j[s] not in s3_pairs.get(s, ()))
        not_in_journal = sorted(s for s in s3_pairs if s not in j or s3_pairs[s] != {j[s]})
        differ = not_uploaded + not_in_journal
        v.add("journal", len(j) > 0 and not differ,
              "%d journal rows; %d not in S3 under their seq, %d S3 seqs not as in the "
              "journal%s" % (len(j), len(not_uploaded), len(not_in_journal),
                             (": seqs " + ", ".join(map(str, differ[:show]))) if differ else ""))
    return v


def judge_dynamodb(items, acked, journal_rows=None, s3_rows=None, store=None, show=10):
    """items: the sales table's items as read back (dicts with entry_id, seq (int),
    store_id, entry_hash); acked: iterable of ids; journal_rows: [(seq, id)] or None;
    s3_rows: {seq: (id, hash or None)} from judge() or None. Returns a Verdict whose
    counters (sales_in_s3 = items, lost, dup_ids, dup_seqs, unacked_stored, max_seq)
    describe the table."""
    v = Verdict()
    acked = set(acked)
    v.acked = len(acked)
    id_count, seq_count, by_seq = {}, {}, {}
    bad = []
    for n, it in enumerate(items):
        sid, seq, h = it.get("entry_id"), it.get("seq"), it.get("entry_hash")
        if not isinstance(sid, str) or not sid or not isinstance(seq, int) or \
                not isinstance(h, str) or not re.fullmatch(r"[0-9a-f]{64}", h) or \
                (store is not None and it.get("store_id") != store):
            bad.append("item %d: %s" % (n, json.dumps(it, sort_keys=True)[:200]))
            continue
        v.sales_in_s3 += 1
        id_count[sid] = id_count.get(sid, 0) + 1
        seq_count[seq] = seq_count.get(seq, 0) + 1
        by_seq.setdefault(seq, set()).add((sid, h))
    v.objects = len(items)
    v.add("ddb items", not bad and items,
          "%d items read back%s" % (len(items), "; " + "; ".join(bad[:show]) if bad else ""))

    v.lost = sorted(acked - id_count.keys())
    v.add("ddb lost", not v.lost, "%d acknowledged ids not in the table%s" %
          (len(v.lost), (": " + ", ".join(v.lost[:show])) if v.lost else ""))
    v.dup_ids = sorted(i for i, c in id_count.items() if c > 1)
    v.dup_seqs = sorted(s for s, c in seq_count.items() if c > 1)
    v.add("ddb duplicated", not v.dup_ids and not v.dup_seqs,
          "%d entry_ids and %d seqs more than once%s" %
          (len(v.dup_ids), len(v.dup_seqs),
           (": " + ", ".join(v.dup_ids[:show])) if v.dup_ids else ""))
    v.unacked_stored = len(id_count.keys() - acked)

    v.max_seq = max(seq_count) if seq_count else 0
    missing = [s for s in range(1, v.max_seq + 1) if s not in seq_count]
    v.add("ddb seqs", seq_count and not missing and min(seq_count) == 1,
          "seq 1..%d, %d missing%s" % (v.max_seq, len(missing),
                                       (": " + ", ".join(map(str, missing[:show])))
                                       if missing else ""))
    if journal_rows is not None:
        j = dict(journal_rows)
        not_written = sorted(s for s in j if j[s] not in {i for i, _ in by_seq.get(s, ())})
        not_in_journal = sorted(s for s in by_seq
                                if s not in j or {i for i, _ in by_seq[s]} != {j[s]})
        differ = not_written + not_in_journal
        v.add("ddb journal", len(j) > 0 and not differ,
              "%d journal rows; %d not in the table under their seq, %d table seqs not as "
              "in the journal%s" % (len(j), len(not_written), len(not_in_journal),
                                    (": seqs " + ", ".join(map(str, differ[:show])))
                                    if differ else ""))
    if s3_rows is not None:
        compared, differ = 0, []
        for seq, pairs in sorted(by_seq.items()):
            if seq not in s3_rows:
                continue
            sid, h = s3_rows[seq]
            compared += 1
            if any(i != sid or (h is not None and eh != h) for i, eh in pairs):
                differ.append(seq)
        hashed = sum(1 for s in by_seq if s in s3_rows and s3_rows[s][1] is not None)
        v.add("ddb vs S3", not differ,
              "%d seqs in both (%d with the S3 hash), %d differ in id or entry_hash%s" %
              (compared, hashed, len(differ),
               (": seqs " + ", ".join(map(str, differ[:show]))) if differ else ""))
    return v


def load_tree(root):
    """{relative path with /: bytes} for every file under root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            key = os.path.relpath(path, root).replace(os.sep, "/")
            with open(path, "rb") as fh:
                out[key] = fh.read()
    return out


def read_acked(paths):
    ids = set()
    for p in paths:
        with open(p, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    ids.add(line)
    return ids
