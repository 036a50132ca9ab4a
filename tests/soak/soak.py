#!/usr/bin/env python3
"""Soak test for `machub serve`: steady open-loop load, the hub's RSS sampled, and a verdict
on whether memory grows.

  soak.py --machub BIN [--duration 120] [--terminals 8] [--rate 400] [--interval 2]
          [--sync dir|refused|off] [--batch-max-sales 1000] [--work DIR]
          [--samples-out FILE.csv]
          [--max-slope-kb-per-min 512] [--max-step-kb 4096]
      Starts the hub (fresh journal in a temporary folder, or the one in --work DIR),
      drives it with `machub loadgen --rate R` (open loop, R sales/s in total over the
      terminals) for the duration, reads VmRSS from /proc/PID/status every --interval s,
      and exits 1 when the RSS grows (see analyze()), when loadgen reports a failure, or
      when the hub dies. Upload batches of 1000 sales (not the hub's 5000) by default:
      a batch is encoded and gzipped in memory, so smaller batches keep the allocator's
      plateaus (the noise) small and run the per-batch code paths 5x as often.

  soak.py --machub BIN --fill N --work DIR
      Fills DIR's journal with at least N unsynced sales (hub with sync off, closed-loop
      loadgen at 64 terminals, in 30 s rounds), for a run on a large backlog afterwards:
      `soak.py --machub BIN --work DIR --sync refused` (the backlog stays) or `--sync dir`
      (the hub drains it to DIR/s3 while under load).

  soak.py --analyze FILE.csv [--rate R]
      Judges the samples of an earlier run again (e.g. with other limits).

  soak.py --self-test
      The verdict's negative and positive controls: synthetic series (flat with noise,
      warm-up ramp, sawtooth, a 1 KB/sale leak, a 64 B/sale leak) and two real processes
      sampled through the same /proc reader (one that leaks, one that does not). Exits 1
      if any verdict is wrong.

Sync modes: `dir` uploads to a local folder (the embedded default; steady state: the
backlog stays small), `refused` points the hub at an S3 endpoint on a closed loopback
port (the cloud is unreachable, the backlog grows by every sale), `off` disables upload.

Python 3 standard library only.
"""

import argparse
import json
import math
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time


# ---------------------------------------------------------------------------- analysis


def least_squares_slope(points):
    """Slope of the least-squares line through (x, y) points; 0 for fewer than 2."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def analyze(samples, sales_per_s, max_slope_kb_per_min, max_step_kb):
    """samples: [(seconds since start, rss_kb)]. The run is cut into thirds by time: the
    first is warm-up (SQLite page caches, connection buffers, allocator arenas fill up)
    and is ignored; growth is judged on the middle and last thirds with two measures:

      slope  least-squares slope of RSS over the middle + last thirds, KB/min;
      step   median RSS of the last third minus median of the middle third, KB.

    The RSS is said to grow when BOTH exceed their limits: a leak raises both, while a
    one-off allocator plateau or a sawtooth moves at most one of them much. The hub's
    real noise is of that kind: an upload batch (up to 5000 sales) is encoded and gzipped
    in memory, and glibc keeps or returns those megabytes in steps of 2-3 MB.
    With the defaults (512 KB/min, 4096 KB) at 400 sales/s: a leak of 1 KB per sale
    (24 MB/min, ~16 MB between the third medians of a 2-minute run) fails both limits by
    4-45x, a 3 MB plateau passes; over 30 minutes a leak of 32 bytes per sale (750 KB/min,
    ~7.5 MB between the third medians) fails.
    """
    if len(samples) < 9:
        return {"ok": False, "reason": f"too few samples ({len(samples)}; need >= 9)"}
    t_end = samples[-1][0]
    third = t_end / 3
    middle = [s for s in samples if third <= s[0] < 2 * third]
    last = [s for s in samples if s[0] >= 2 * third]
    if len(middle) < 3 or len(last) < 3:
        return {"ok": False, "reason": "too few samples after warm-up"}
    judged = middle + last
    slope_kb_per_s = least_squares_slope(judged)
    slope_kb_per_min = slope_kb_per_s * 60
    med_middle = statistics.median(r for _, r in middle)
    med_last = statistics.median(r for _, r in last)
    step_kb = med_last - med_middle
    bytes_per_sale = slope_kb_per_s * 1024 / sales_per_s if sales_per_s > 0 else float("nan")
    slope_bad = slope_kb_per_min > max_slope_kb_per_min
    step_bad = step_kb > max_step_kb
    grows = slope_bad and step_bad
    rss = [r for _, r in samples]
    post = [r for _, r in judged]
    return {
        "ok": not grows,
        "reason": ("RSS grows" if grows else "no growth trend"),
        "samples": len(samples),
        "rss_first_kb": rss[0],
        "rss_last_kb": rss[-1],
        "rss_max_kb": max(rss),
        "post_warmup_min_kb": min(post),
        "post_warmup_median_kb": statistics.median(post),
        "post_warmup_max_kb": max(post),
        "median_middle_third_kb": med_middle,
        "median_last_third_kb": med_last,
        "step_kb": round(step_kb, 1),
        "slope_kb_per_min": round(slope_kb_per_min, 1),
        "slope_bytes_per_sale": round(bytes_per_sale, 2),
        "limits": {"slope_kb_per_min": max_slope_kb_per_min, "step_kb": max_step_kb},
        "slope_over_limit": slope_bad,
        "step_over_limit": step_bad,
    }


# ---------------------------------------------------------------------------- processes


def read_status_kb(pid, field):
    """VmRSS / VmHWM of a process in KB, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class Sampler(threading.Thread):
    """Reads VmRSS of `pid` every `interval` s until stop() (or the process is gone)."""

    def __init__(self, pid, interval):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples = []
        self.stop_event = threading.Event()
        self.t0 = time.monotonic()

    def run(self):
        next_at = self.t0
        while not self.stop_event.is_set():
            rss = read_status_kb(self.pid, "VmRSS")
            if rss is None:
                return
            self.samples.append((time.monotonic() - self.t0, rss))
            next_at += self.interval
            self.stop_event.wait(max(0.0, next_at - time.monotonic()))

    def stop(self):
        self.stop_event.set()
        self.join()


def closed_port():
    """A loopback port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Hub:
    def __init__(self, machub, work, sync, log_path, batch_max_sales=0):
        self.machub = machub
        self.work = work
        data = os.path.join(work, "data")
        ready = os.path.join(work, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        args = [machub, "serve", "--data-dir", data, "--listen", "127.0.0.1:0",
                "--ready-file", ready, "--demo-token", "false", "--log-level", "warn",
                "--rate-per-terminal", "0"]
        if batch_max_sales > 0:
            args += ["--sync-batch-max-sales", str(batch_max_sales)]
        if sync == "off":
            args += ["--sync-enabled", "false"]
        elif sync == "dir":
            args += ["--sync-dir", os.path.join(work, "s3")]
        elif sync == "refused":
            args += ["--sync-bucket", "soak", "--sync-endpoint",
                     f"http://127.0.0.1:{closed_port()}", "--sync-addressing", "path",
                     "--sync-access-key-id", "SOAKTESTKEY", "--sync-secret-access-key",
                     "soak-test-secret", "--sync-catalog-interval-s", "0"]
        else:
            raise ValueError(sync)
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120  # opening a 1M-sale journal can take a while
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}; see {log_path}")
            try:
                with open(ready) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("hub did not become ready in 120 s")

    @property
    def pid(self):
        return self.proc.pid

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def ensure_tokens(machub, work, terminals):
    """Creates `terminals` terminals in work/data once; returns the loadgen credentials file."""
    path = os.path.join(work, "terminals.txt")
    if os.path.exists(path):
        with open(path) as f:
            have = sum(1 for line in f if line.strip())
        if have >= terminals:
            return path
        raise RuntimeError(f"{path} has {have} terminals, fewer than {terminals}")
    os.makedirs(os.path.join(work, "data"), exist_ok=True)
    with open(path, "w") as out:
        subprocess.run([machub, "token", "create", "--data-dir", os.path.join(work, "data"),
                        "--count", str(max(terminals, 64)), "--prefix", "T"],
                       stdout=out, stderr=subprocess.DEVNULL, check=True)
    return path


def run_loadgen(machub, url, tokens, terminals, duration, rate, extra=()):
    args = [machub, "loadgen", "--url", url, "--tokens", tokens, "--terminals", str(terminals),
            "--duration", str(duration), "--rate", str(rate), *extra]
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    report = json.loads(lines[-1]) if lines else {}
    return proc.returncode, report, proc.stderr


def journal_counts(work):
    db = os.path.join(work, "data", "journal.db")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        # A sale is uploaded when an uploaded batch covers its seq (schema v3 keeps only the
        # batch state; v2 also flagged each row). Batches are contiguous and never overlap.
        total, = con.execute("SELECT count(*) FROM sales").fetchone()
        uploaded, = con.execute(
            "SELECT coalesce(sum(last_seq - first_seq + 1), 0) FROM batches "
            "WHERE state = 'uploaded'").fetchone()
    finally:
        con.close()
    return total, total - uploaded


# ---------------------------------------------------------------------------- modes


def print_summary(result):
    keys = ["samples", "rss_first_kb", "rss_last_kb", "rss_max_kb", "post_warmup_min_kb",
            "post_warmup_median_kb", "post_warmup_max_kb", "median_middle_third_kb",
            "median_last_third_kb", "step_kb", "slope_kb_per_min", "slope_bytes_per_sale"]
    for k in keys:
        if k in result:
            print(f"  {k:24s} {result[k]}")
    if "limits" in result:
        print(f"  limits                   slope <= {result['limits']['slope_kb_per_min']} KB/min"
              f" or step <= {result['limits']['step_kb']} KB")


def soak(args):
    own = args.work is None
    work = args.work or tempfile.mkdtemp(prefix="machub-soak-")
    os.makedirs(work, exist_ok=True)
    tokens = ensure_tokens(args.machub, work, args.terminals)
    before = journal_counts(work) if os.path.exists(os.path.join(work, "data", "journal.db")) \
        else (0, 0)
    hub = Hub(args.machub, work, args.sync, os.path.join(work, "hub.log"), args.batch_max_sales)
    print(f"soak: hub pid {hub.pid} on {hub.url}, sync={args.sync}, journal before: "
          f"{before[0]} sales ({before[1]} unsynced); {args.terminals} terminals at "
          f"{args.rate} sales/s for {args.duration} s, RSS every {args.interval} s", flush=True)
    sampler = Sampler(hub.pid, args.interval)
    sampler.start()
    rc, report, lg_err = run_loadgen(args.machub, hub.url, tokens, args.terminals,
                                     args.duration, args.rate)
    sampler.stop()
    hwm = read_status_kb(hub.pid, "VmHWM")
    alive = hub.proc.poll() is None
    hub_rc = hub.stop()
    after = journal_counts(work)
    samples = sampler.samples
    if args.samples_out:
        with open(args.samples_out, "w") as f:
            f.write("t_s,rss_kb\n")
            for t, r in samples:
                f.write(f"{t:.1f},{r}\n")
    achieved = report.get("throughput_per_s", 0.0)
    result = analyze(samples, achieved or args.rate, args.max_slope_kb_per_min,
                     args.max_step_kb)
    print(f"loadgen: exit {rc}, acked {report.get('acked')}, {achieved} sales/s, "
          f"p50 {report.get('p50_ms')} ms, p99 {report.get('p99_ms')} ms, "
          f"statuses {report.get('by_status')}, conn_errors {report.get('conn_errors')}")
    print(f"journal after: {after[0]} sales ({after[1]} unsynced); hub peak RSS (VmHWM) "
          f"{hwm} KB = {hwm / 1024 if hwm else 0:.1f} MB")
    # A sparse trace: about 12 samples spread over the run.
    step = max(1, len(samples) // 12)
    trace = " ".join(f"{t:.0f}s:{r / 1024:.1f}" for t, r in samples[::step])
    print(f"RSS MB over time: {trace}")
    print_summary(result)
    failures = []
    if not result["ok"]:
        failures.append(result["reason"])
    if rc != 0:
        failures.append(f"loadgen exit {rc}: {lg_err.strip().splitlines()[-1:] }")
    if not alive:
        failures.append(f"hub died during the run (exit {hub_rc})")
    if achieved < 0.5 * args.rate:
        failures.append(f"load not applied: {achieved} sales/s < half of {args.rate}")
    print("verdict:", "FAIL: " + "; ".join(failures) if failures else "PASS (no growth trend)")
    print("summary-json:", json.dumps({**result, "hub_vmhwm_kb": hwm,
                                       "sales_per_s": achieved, "sync": args.sync,
                                       "journal_sales_after": after[0],
                                       "unsynced_after": after[1]}))
    if own and not args.keep:
        subprocess.run(["rm", "-rf", work])
    elif own:
        print(f"work dir kept: {work}")
    return 1 if failures else 0


def fill(args):
    if args.work is None:
        print("--fill needs --work DIR", file=sys.stderr)
        return 2
    os.makedirs(args.work, exist_ok=True)
    tokens = ensure_tokens(args.machub, args.work, 64)
    hub = Hub(args.machub, args.work, "off", os.path.join(args.work, "hub.log"))
    t0 = time.monotonic()
    try:
        while True:
            total, unsynced = journal_counts(args.work)
            print(f"fill: {unsynced} unsynced sales after {time.monotonic() - t0:.0f} s",
                  flush=True)
            if unsynced >= args.fill:
                break
            rc, report, err = run_loadgen(args.machub, hub.url, tokens, 64, 30, 0,
                                          ["--retry-percent", "0"])
            if rc != 0:
                print(f"fill: loadgen exit {rc}: {err}", file=sys.stderr)
                return 1
    finally:
        hub.stop()
    return 0


# ---------------------------------------------------------------------------- self-test


def synthetic(kind, duration=120.0, interval=2.0, rate=400.0, seed=7, leak_bytes=0):
    """An RSS series in KB: a warm-up ramp to ~22 MB, Gaussian noise (sigma 150 KB), and
    `kind` on top; `leak_bytes` per sale at `rate` sales/s for kind "leak"."""
    rng = random.Random(seed)
    out = []
    n = int(duration / interval) + 1
    for i in range(n):
        t = i * interval
        base = 22000 - 6000 * math.exp(-t / 8)
        noise = rng.gauss(0, 150)
        if kind == "flat":
            extra = 0
        elif kind == "sawtooth":  # an 8 MB buffer held for 10 s of every 25 s
            extra = 8192 if (t % 25) < 10 else 0
        elif kind == "spike":  # a single 10 MB spike in the last third
            extra = 10240 if abs(t - duration * 0.83) < interval / 2 else 0
        elif kind == "plateau":  # the heap steps up 3 MB once, just after the 2/3 mark
            extra = 3072 if t > duration * 0.7 else 0
        elif kind == "leak":
            extra = t * rate * leak_bytes / 1024
        else:
            raise ValueError(kind)
        out.append((t, base + noise + extra))
    return out


def sample_process(code, seconds, interval):
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        sampler = Sampler(proc.pid, interval)
        sampler.start()
        time.sleep(seconds)
        sampler.stop()
        return sampler.samples
    finally:
        proc.kill()
        proc.wait()


def self_test(args):
    limits = (args.max_slope_kb_per_min, args.max_step_kb)
    # (label, kind, duration s, sample interval s, leak bytes/sale, expected verdict ok)
    cases = [("2 min flat", "flat", 120, 2, 0, True),
             ("2 min sawtooth", "sawtooth", 120, 2, 0, True),
             ("2 min spike", "spike", 120, 2, 0, True),
             ("2 min plateau", "plateau", 120, 2, 0, True),
             ("2 min 1 KB/sale leak", "leak", 120, 2, 1024, False),
             ("2 min 512 B/sale leak", "leak", 120, 2, 512, False),
             ("30 min flat", "flat", 1800, 5, 0, True),
             ("30 min sawtooth", "sawtooth", 1800, 5, 0, True),
             ("30 min plateau", "plateau", 1800, 5, 0, True),
             ("30 min 32 B/sale leak", "leak", 1800, 5, 32, False)]
    wrong = 0
    for label, kind, duration, interval, leak_bytes, want_ok in cases:
        for seed in range(1, 11):
            r = analyze(synthetic(kind, duration, interval, 400.0, seed, leak_bytes), 400.0,
                        *limits)
            if r["ok"] != want_ok:
                wrong += 1
                print(f"WRONG: {label} seed {seed}: ok={r['ok']} want {want_ok}: {r}")
        print(f"synthetic {label:24s} -> {'pass' if r['ok'] else 'FAIL'} (want "
              f"{'pass' if want_ok else 'FAIL'}; 10 seeds): slope {r['slope_kb_per_min']} "
              f"KB/min, step {r['step_kb']} KB")
    # Real processes through the same /proc sampler: 40 samples over 10 s. The leaking one
    # keeps 1 MB more every 0.25 s (4 MB/s: as 10 KB per sale at 400 sales/s).
    leak = ("import time\nkeep = []\nwhile True:\n"
            "    keep.append(bytearray(1 << 20))\n    time.sleep(0.25)\n")
    steady = ("import time\nbuf = bytearray(8 << 20)\nwhile True:\n"
              "    tmp = bytearray(1 << 20); del tmp\n    time.sleep(0.25)\n")
    for name, code, want_ok in [("leaking process", leak, False),
                                ("steady process", steady, True)]:
        samples = sample_process(code, 10, 0.25)
        r = analyze(samples, 400.0, *limits)
        verdict_ok = r.get("ok") is want_ok and len(samples) >= 30
        if not verdict_ok:
            wrong += 1
        print(f"{name:16s} -> {'pass' if r.get('ok') else 'FAIL'} (want "
              f"{'pass' if want_ok else 'FAIL'}): {len(samples)} samples, slope "
              f"{r.get('slope_kb_per_min')} KB/min, step {r.get('step_kb')} KB"
              f"{'' if verdict_ok else '  <-- WRONG'}")
    print("self-test:", "OK" if wrong == 0 else f"{wrong} wrong verdicts")
    return 0 if wrong == 0 else 1


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--machub", help="path to the machub binary")
    p.add_argument("--duration", type=float, default=120, help="seconds of load (default 120)")
    p.add_argument("--terminals", type=int, default=8)
    p.add_argument("--rate", type=float, default=400, help="total sales/s (open loop)")
    p.add_argument("--interval", type=float, default=2, help="seconds between RSS samples")
    p.add_argument("--sync", choices=["dir", "refused", "off"], default="dir")
    p.add_argument("--batch-max-sales", type=int, default=1000,
                   help="the hub's sync.batch_max_sales (0: its default, 5000)")
    p.add_argument("--work", help="work folder (reused if it holds a journal)")
    p.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    p.add_argument("--samples-out", help="write the RSS samples as CSV")
    p.add_argument("--max-slope-kb-per-min", type=float, default=512)
    p.add_argument("--max-step-kb", type=float, default=4096)
    p.add_argument("--analyze", metavar="CSV",
                   help="only judge the samples of an earlier run (--samples-out), at --rate")
    p.add_argument("--fill", type=int, help="fill --work's journal with N unsynced sales")
    p.add_argument("--self-test", action="store_true")
    args = p.parse_args()
    if args.self_test:
        return self_test(args)
    if args.analyze:
        with open(args.analyze) as f:
            samples = [(float(t), float(r)) for t, r in
                       (line.strip().split(",") for line in f if line[:1].isdigit())]
        result = analyze(samples, args.rate, args.max_slope_kb_per_min, args.max_step_kb)
        print_summary(result)
        print("verdict:", "PASS (no growth trend)" if result["ok"] else "FAIL: " + result["reason"])
        return 0 if result["ok"] else 1
    if not args.machub:
        p.error("--machub is required")
    if args.fill:
        return fill(args)
    return soak(args)


if __name__ == "__main__":
    sys.exit(main())
