#!/usr/bin/env python3
"""A store's day over HTTP with the real binary (issue #8, "Done when").

Three terminals open their drawers, ring up sales (cash with change, card, several tax
rates), T02 refunds a sale rung up on T01, T03 voids one of its own, cash is paid out and
in, the drawers are closed with counted cash, and a manager closes the day with a Z
report. Then the uploaded objects are read back by an independent reader
(tests/tools/recompute_report.py, Python's own gzip/json/decimal) and the Z figures
recomputed from them must equal the hub's to the cent; `machub verify` must pass.

  --sink local   objects in the hub's local folder (the embedded default)
  --sink rgw     objects in a bucket of a throw-away Ceph RGW (tests/peers/rgw.sh),
                 downloaded with awscli before they are read

Exit 0 on success, 1 on a failed check (with what differed), 77 when a peer is missing
(ctest SKIP_RETURN_CODE).
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKIP = 77
CREATED_AT = "2026-12-05T10:00:00.000Z"


def fail(message):
    print("store_day_test: FAIL: " + message, file=sys.stderr)
    sys.exit(1)


class Hub:
    def __init__(self, machub, work, terminals, manager, extra):
        self.work = work
        self.data = os.path.join(work, "data")
        ready = os.path.join(work, "ready")
        args = [machub, "serve", "--store-id", "S042", "--data-dir", self.data,
                "--listen", "127.0.0.1:0", "--ready-file", ready, "--demo-token", "false",
                "--rate-per-terminal", "0", "--sync-batch-max-age-s", "1"]
        for tid, token in terminals.items():
            args += ["--terminal-tokens", tid + ":" + hashlib.sha256(token.encode()).hexdigest()]
        args += ["--manager-tokens",
                 manager[0] + ":" + hashlib.sha256(manager[1].encode()).hexdigest()]
        args += extra
        self.args = args
        self.log = open(os.path.join(work, "hub.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.time() > deadline:
                fail("the hub did not start; see " + self.log.name)
            time.sleep(0.05)
        with open(ready) as f:
            text = f.read().strip()
        # The ready file holds the listening address (HOST:PORT or a bare port).
        self.port = int(text.rsplit(":", 1)[-1].split()[0])

    def request(self, method, path, token, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                     method=method)
        req.add_header("Authorization", "Bearer " + token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def must(status_body, want, what):
    status, body = status_body
    if status not in want:
        fail("%s: HTTP %d %s (wanted %s)" % (what, status, body, want))
    return body


def sale_body(rng, sid, terminal, cash):
    lines = []
    for i in range(rng.randint(1, 4)):
        lines.append({"sku": "SKU-%d" % rng.randint(100, 999),
                      "name": "Item %d" % i,
                      "qty": str(rng.choice([1, 2, 3])),
                      "unit_price": "%d.%02d" % (rng.randint(1, 30), rng.randint(0, 99)),
                      "tax_rate": rng.choice(["0.0825", "0.05", "0"])})
    sale = {"id": sid, "terminal_id": terminal, "type": "sale", "created_at": CREATED_AT,
            "currency": "USD", "lines": lines, "payments": []}
    return sale


def total_of(sale):
    """The sale's total in cents, computed as the hub does (round half up per line)."""
    from decimal import Decimal, ROUND_HALF_UP
    cents = Decimal("0.01")
    total = Decimal(0)
    for line in sale["lines"]:
        net = (Decimal(line["qty"]) * Decimal(line["unit_price"])).quantize(cents, ROUND_HALF_UP)
        tax = (net * Decimal(line["tax_rate"])).quantize(cents, ROUND_HALF_UP)
        total += net + tax
    return total


def run_day(hub, terminals, manager):
    rng = random.Random(8)
    tids = sorted(terminals)
    floats = {"T01": "100.00", "T02": "150.00", "T03": "200.00"}
    for tid in tids:
        must(hub.request("POST", "/v1/events", terminals[tid],
                         {"id": "open-" + tid, "terminal_id": tid, "type": "drawer_open",
                          "created_at": CREATED_AT, "currency": "USD",
                          "amount": floats[tid]}), (201,), "drawer_open " + tid)
    # A second open of the same drawer is refused, and nothing is stored.
    status, body = hub.request("POST", "/v1/events", terminals["T01"],
                               {"id": "open-again", "terminal_id": "T01", "type": "drawer_open",
                                "created_at": CREATED_AT, "currency": "USD", "amount": "1.00"})
    if status != 409 or body.get("error", {}).get("code", body.get("code")) != "drawer_already_open":
        fail("second drawer_open: HTTP %d %s" % (status, body))

    sales = {}
    for n in range(60):
        tid = tids[n % 3]
        sid = "s-%s-%02d" % (tid, n)
        sale = sale_body(rng, sid, tid, cash=n % 2 == 0)
        total = total_of(sale)
        from decimal import Decimal
        if n % 2 == 0:  # cash, rounded up to the next note: change
            tendered = (total // 5 + 1) * 5
            sale["payments"] = [{"method": "cash", "amount": "%.2f" % tendered}]
        else:
            sale["payments"] = [{"method": "card", "amount": "%.2f" % total,
                                 "card_token": "tok_%d" % n, "last4": "4242",
                                 "brand": "visa", "offline": n % 6 == 1}]
        must(hub.request("POST", "/v1/sales", terminals[tid], sale), (201,), "sale " + sid)
        # A retry is a replay, never a second sale.
        must(hub.request("POST", "/v1/sales", terminals[tid], sale), (200,), "retry " + sid)
        sales[sid] = sale

    # T02 refunds one line of a cash sale rung up on T01 (cross-terminal), in cash.
    original = sales["s-T01-00"]
    line = original["lines"][0]
    refund = {"id": "r-1", "terminal_id": "T02", "type": "refund", "ref": "s-T01-00",
              "created_at": CREATED_AT, "currency": "USD",
              "lines": [dict(line, qty="1")], "payments": []}
    refund_total = total_of(refund)
    refund["payments"] = [{"method": "cash", "amount": "%.2f" % refund_total}]
    must(hub.request("POST", "/v1/sales", terminals["T02"], refund), (201,), "refund r-1")
    # T03 voids one of its own card sales.
    victim = sales["s-T03-05"]
    void = {"id": "v-1", "terminal_id": "T03", "type": "void", "ref": "s-T03-05",
            "created_at": CREATED_AT, "currency": "USD", "lines": victim["lines"],
            "payments": victim["payments"]}
    must(hub.request("POST", "/v1/sales", terminals["T03"], void), (201,), "void v-1")

    must(hub.request("POST", "/v1/events", terminals["T01"],
                     {"id": "out-1", "terminal_id": "T01", "type": "cash_out",
                      "created_at": CREATED_AT, "currency": "USD", "amount": "12.50",
                      "reason": "milk for the coffee machine"}), (201,), "cash_out")
    must(hub.request("POST", "/v1/events", terminals["T02"],
                     {"id": "in-1", "terminal_id": "T02", "type": "cash_in",
                      "created_at": CREATED_AT, "currency": "USD", "amount": "20.00",
                      "reason": "change from the bank"}), (201,), "cash_in")

    # The X report (read-only) is for managers only.
    status, _ = hub.request("GET", "/v1/reports/x", terminals["T01"])
    if status != 403:
        fail("a terminal token read the X report: HTTP %d" % status)
    x = must(hub.request("GET", "/v1/reports/x", manager[1]), (200,), "X report")

    for i, tid in enumerate(tids):
        counted = ["300.00", "412.35", "200.00"][i]
        must(hub.request("POST", "/v1/events", terminals[tid],
                         {"id": "close-" + tid, "terminal_id": tid, "type": "drawer_close",
                          "created_at": CREATED_AT, "currency": "USD", "counted": counted}),
             (201,), "drawer_close " + tid)

    z_request = {"id": "z-day-1", "created_at": CREATED_AT}
    status, _ = hub.request("POST", "/v1/reports/z", terminals["T01"], z_request)
    if status != 403:
        fail("a terminal token closed the day: HTTP %d" % status)
    must(hub.request("POST", "/v1/reports/z", manager[1], z_request), (201,), "Z report")
    must(hub.request("POST", "/v1/reports/z", manager[1], z_request), (200,), "Z replay")
    z = must(hub.request("GET", "/v1/sales/z-day-1", manager[1]), (200,), "read the Z entry")
    if z.get("type") != "z_report" or z.get("receipt_no") != "Z1" or z.get("z_number") != 1:
        fail("the Z entry is not Z1: %s" % z)
    return z, x


def wait_uploaded(hub, token, last_seq):
    deadline = time.time() + 60
    while time.time() < deadline:
        status, body = hub.request("GET", "/v1/status", token)
        if status == 200:
            backlog = body.get("backlog", {}).get("sales")
            if backlog == 0 and body.get("journal", {}).get("last_seq", last_seq) >= last_seq:
                return
        time.sleep(0.2)
    fail("the journal was not uploaded within 60 s")


def recompute(objects_dir, z):
    out = subprocess.run([sys.executable, os.path.join(REPO, "tests", "tools",
                                                        "recompute_report.py"),
                          objects_dir, "--from-seq", str(z["first_seq"]), "--to-seq",
                          str(z["last_seq"]), "--currency", z["currency"]],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        fail("recompute_report.py failed: " + out.stderr)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--machub", required=True)
    ap.add_argument("--sink", choices=["local", "rgw"], default="local")
    ap.add_argument("--rgw-sh", default=os.path.join(REPO, "tests", "peers", "rgw.sh"))
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="machub-storeday-")
    rgw_dir = None
    hub = None
    try:
        terminals = {tid: "tok-%s-%s" % (tid, os.urandom(8).hex()) for tid in ("T01", "T02", "T03")}
        manager = ("M01", "tok-manager-" + os.urandom(8).hex())
        extra = []
        env = dict(os.environ)
        if args.sink == "rgw":
            if shutil.which("aws") is None:
                print("store_day_test: SKIP: awscli not installed", file=sys.stderr)
                return SKIP
            rgw_dir = os.path.join(work, "rgw")
            started = subprocess.run([args.rgw_sh, "start", rgw_dir], capture_output=True,
                                     text=True, env=dict(env, RGW_WATCH_PID=str(os.getpid())))
            if started.returncode != 0:
                print("store_day_test: SKIP: rgw.sh start failed: " + started.stderr,
                      file=sys.stderr)
                rgw_dir = None
                return SKIP
            rgw = {}
            with open(os.path.join(rgw_dir, "env")) as f:
                for line in f:
                    if "=" in line:
                        k, v = line.strip().split("=", 1)
                        rgw[k] = v.strip("'\"")
            env["AWS_ACCESS_KEY_ID"] = rgw["RGW_ACCESS_KEY"]
            env["AWS_SECRET_ACCESS_KEY"] = rgw["RGW_SECRET_KEY"]
            env["AWS_DEFAULT_REGION"] = "us-east-1"
            os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                   "AWS_DEFAULT_REGION")})
            subprocess.run(["aws", "s3api", "create-bucket", "--bucket", "storeday",
                            "--endpoint-url", rgw["RGW_ENDPOINT"]], check=True,
                           capture_output=True, env=env)
            extra = ["--sync-bucket", "storeday", "--sync-endpoint", rgw["RGW_ENDPOINT"],
                     "--sync-addressing", "path", "--sync-region", "us-east-1"]
        hub = Hub(args.machub, work, terminals, manager, extra)
        z, x = run_day(hub, terminals, manager)
        wait_uploaded(hub, manager[1], z["seq"])
        hub.stop()
        hub = None

        if args.sink == "local":
            objects = os.path.join(work, "data", "s3")
        else:
            objects = os.path.join(work, "downloaded")
            subprocess.run(["aws", "s3", "cp", "--recursive", "s3://storeday/", objects,
                            "--endpoint-url", rgw["RGW_ENDPOINT"]], check=True,
                           capture_output=True, env=env)
        figures = recompute(objects, z)
        if figures != z["figures"]:
            fail("the Z figures recomputed from the objects differ:\n hub: %s\n objects: %s" %
                 (json.dumps(z["figures"], sort_keys=True), json.dumps(figures, sort_keys=True)))
        # The X report taken before the drawers closed covered the same sales.
        if x["figures"]["sales"] != z["figures"]["sales"]:
            fail("X and Z disagree on the sales: %s vs %s" % (x["figures"]["sales"],
                                                             z["figures"]["sales"]))

        verify = [args.machub, "verify", "--store-id", "S042", "--data-dir",
                  os.path.join(work, "data")] + [a for a in extra if a != "--sync-bucket"
                                                 and a != "storeday"]
        if args.sink == "rgw":
            verify += ["--bucket", "storeday"]
        done = subprocess.run(verify, capture_output=True, text=True, env=env, timeout=120)
        if done.returncode != 0:
            fail("machub verify failed: " + done.stdout + done.stderr)
        report = json.loads(done.stdout.strip().splitlines()[-1])
        # 3 opens, a paid-out, a paid-in, 3 closes and the Z: 9 events, all in the chain.
        if (report.get("events") != 9 or report.get("z_reports_checked") != 1
                or report.get("last_seq", 0) < z["seq"]):
            fail("machub verify did not cover the day's events: %s" % report)
        f = z["figures"]
        print("store_day_test [%s]: Z1 covers seq %d..%d: %d sales, %d refunds, %d voids, "
              "net %s; %d drawers; recomputed from the objects: equal; machub verify: ok" %
              (args.sink, z["first_seq"], z["last_seq"], f["sales"]["count"],
               f["refunds"]["count"], f["voids"]["count"], f["net"]["total"],
               len(f["drawers"])))
        return 0
    finally:
        if hub is not None:
            hub.stop()
        if rgw_dir is not None:
            subprocess.run([args.rgw_sh, "stop", rgw_dir], capture_output=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
