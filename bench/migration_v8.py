#!/usr/bin/env python3
"""What the v8 migration (sales rebuilt without its UNIQUE id index, docs/JOURNAL.md "v8")
costs at the first start of the new binary.

    bench/migration_v8.py OLD_BINARY NEW_BINARY [SALES]   (default 100000 sales)

OLD_BINARY (schema v7) fills a journal with about SALES sales from 8 loadgen terminals;
NEW_BINARY then runs `machub journal verify` on it twice. The first run migrates and
verifies, the second only verifies, so their difference is the migration. Prints both
times, the database size before and after, and the bytes the first run wrote
(/proc/PID/io of the child, from its rusage: the copy, its WAL and the checkpoint).
"""
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from sd_wear_run import loadgen, start_hub, terminal_tokens  # bench/, next to this script


def timed_verify(binary, data):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    done = subprocess.run([binary, "journal", "verify", "--data-dir", data],
                          capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"journal verify failed: {done.stdout}{done.stderr}")
    # ru_oublock counts 512-byte blocks written by the child.
    return elapsed, (after.ru_oublock - before.ru_oublock) * 512


def main():
    old, new = sys.argv[1], sys.argv[2]
    sales = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
    work = tempfile.mkdtemp(prefix="machub-migration-")
    try:
        data = os.path.join(work, "data")
        os.makedirs(data)
        tokens = os.path.join(work, "tokens")
        terminal_tokens(old, data, tokens, 8)
        hub, port = start_hub(old, data, os.path.join(work, "ready"))
        try:
            stored = 0
            while stored < sales:
                stored += loadgen(old, port, tokens, 8, 5, 0, stored + 1)["acked"]
        finally:
            hub.terminate()
            hub.wait()
        db = os.path.join(data, "journal.db")
        size_before = os.path.getsize(db)
        migrate_s, written = timed_verify(new, data)
        verify_s, _ = timed_verify(new, data)
        print(f"sales: {stored}; journal {size_before / 1e6:.1f} MB -> "
              f"{os.path.getsize(db) / 1e6:.1f} MB")
        print(f"first start of the new binary (migration + verify): {migrate_s:.2f} s, "
              f"{written / 1e6:.1f} MB written")
        print(f"verify alone: {verify_s:.2f} s; the migration: {migrate_s - verify_s:.2f} s "
              f"({(migrate_s - verify_s) / stored * 1e6:.1f} us per sale)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
