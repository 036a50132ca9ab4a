#!/usr/bin/env python3
"""Which B-trees each journal commit writes (issue 11, SD-card wear).

    bench/wal_frames.py BINARY [TERMINALS] [SECONDS]   (defaults 1 terminal, 3 s)

Starts `machub serve` on a fresh data folder with checkpoints held off (checkpoint_wal_kb
at 1 GiB, the longest age), drives `machub loadgen` in a closed loop, kills the hub with
SIGKILL so that the WAL stays as written, and reads the WAL file itself: every frame names
the database page it holds, a commit frame ends each transaction. SQLite's `dbstat` table
on a copy maps each page to its table or index. Prints frames per commit by B-tree, sales
per commit and WAL bytes per sale (the frames alone, before the kernel rounds them up to
4 KiB blocks).
"""
import collections
import os
import shutil
import sqlite3
import struct
import sys
import tempfile
import time

from sd_wear_run import loadgen, start_hub, terminal_tokens  # bench/, next to this script


def main():
    binary = sys.argv[1]
    terminals = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3
    work = tempfile.mkdtemp(prefix="machub-wal-frames-")
    try:
        data = os.path.join(work, "data")
        tokens = os.path.join(work, "tokens")
        terminal_tokens(binary, data, tokens, max(terminals, 8))
        hub, port = start_hub(binary, data, os.path.join(work, "ready"),
                              ["--checkpoint-wal-kb", "1048576", "--checkpoint-max-age-s", "86400"])
        try:
            time.sleep(1)
            wal = os.path.join(data, "journal.db-wal")
            start = os.path.getsize(wal)  # start-up commits are not counted
            acked = loadgen(binary, port, tokens, terminals, seconds, 0, 1)["acked"]
            time.sleep(0.5)
        finally:
            hub.kill()
            hub.wait()
        with open(wal, "rb") as f:
            raw = f.read()
        page = struct.unpack(">I", raw[8:12])[0]
        frame = 24 + page
        commits, current = [], []
        for offset in range(32, len(raw) - frame + 1, frame):
            number, commit_size = struct.unpack(">II", raw[offset:offset + 8])
            current.append(number)
            if commit_size:
                if offset >= start:
                    commits.append(current)
                current = []
        # dbstat on a copy (opening the original would checkpoint it on close).
        copy = os.path.join(work, "copy.db")
        shutil.copy(os.path.join(data, "journal.db"), copy)
        shutil.copy(wal, copy + "-wal")
        db = sqlite3.connect(copy)
        owner = dict(db.execute("SELECT pageno, name FROM dbstat").fetchall())
        owner[1] = "page 1 (header, sqlite_schema)"  # the page count grows with each leaf
        packed = db.execute("SELECT avg(length(canonical)) FROM sales").fetchone()[0]
        db.close()
        by_tree = collections.Counter(owner.get(n, "(freed)") for c in commits for n in c)
        frames = sum(len(c) for c in commits)
        print(f"page size {page}, {acked} sales, {len(commits)} commits, "
              f"{acked / len(commits):.2f} sales/commit, {frames / len(commits):.2f} frames/commit, "
              f"{frames * frame / acked:.0f} WAL bytes/sale, stored canonical {packed:.0f} bytes")
        for name, count in by_tree.most_common():
            print(f"  {name:32} {count / len(commits):6.2f} frames/commit")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
