#!/usr/bin/env python3
# Size of the id index (id, seq, hash, received_at_ms), WITHOUT ROWID, per million sales.
import os, sqlite3, sys, uuid, hashlib, tempfile, time
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
path = os.path.join(tempfile.mkdtemp(), "ids.db")
db = sqlite3.connect(path)
db.execute("PRAGMA page_size=4096")
db.execute("CREATE TABLE ids(id TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash BLOB NOT NULL,"
           " received_at_ms INTEGER NOT NULL) WITHOUT ROWID")
t0 = time.time()
with db:
    db.executemany("INSERT INTO ids VALUES(?,?,?,?)",
                   ((str(uuid.uuid4()), i, hashlib.sha256(str(i).encode()).digest(),
                     1764921600000 + i) for i in range(1, n + 1)))
dt = time.time() - t0
db.close()
size = os.path.getsize(path)
print(f"{n} ids: {size/1e6:.1f} MB on disk, {size/n:.1f} bytes/sale, insert {n/dt:.0f}/s (random UUIDv4 ids)")
