#!/usr/bin/env python3
"""The chaos run: machub under load while the hub is SIGKILLed, the S3 store (Ceph RGW)
goes down and freezes, and the network in between misbehaves; then the cloud comes back,
the backlog drains, and the result is judged from independent evidence.

  tests/chaos/chaos_run.py [--duration S] [--kill-interval S] [--rgw-interval S]
                           [--proxy-interval S] [--terminals N] [--loadgens K] [--rate R]
                           [--format jsonl|csv] [--min-kills N] [--machub BIN]
                           [--dynamodb [on|auto|off]] ...
  tests/chaos/chaos_run.py --self-test       the verdict on fabricated objects (no peers)

Pieces (all real processes on loopback, each stopped by PID at the end, even on failure):
  RGW          tests/peers/rgw.sh start DIR (a throw-away Ceph cluster with radosgw)
  fault proxy  tests/peers/fault_proxy between the hub and RGW, driven on its control port
  hub          machub serve, sync to the bucket through the proxy; SIGKILLed every
               ~--kill-interval s and restarted on the same data dir and port (one restart
               in five is itself SIGKILLed 0-0.3 s into its start)
  load         K x machub loadgen, N terminals in all, --rate sales/s in total; retries
               with the same ids and writes every acknowledged id to its acked file
Chaos schedules (random gaps around the given means; kinds in shuffled rounds so every
kind occurs): RGW stop-gateway/start-gateway and freeze/thaw held 1-8 s; proxy modes
reset, reset-after N, blackhole, latency MS and pass, each followed by `drop` (reset
the open connections, since a mode applies to new ones).
With --dynamodb: dynalite (tests/peers/dynalite.sh) is a second sink of the hub behind a
second fault proxy, with its own schedules (own random generator): dynalite stopped
(`dynalite.sh outage`, data and port kept) held 1-8 s, and the same proxy modes. dynalite
4.0.0 dies on a request aborted mid-body; the run restarts it (counted: one more outage).
The drain waits for both backlogs; the sales table is scanned with awscli.

Verdict: see verdict.py and docs/RELIABILITY.md ("Chaos run"). Exit 0 pass, 1 fail,
77 skipped (RGW or s3cmd missing; with --dynamodb on also dynalite or awscli), 2 usage.
"""

import argparse
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verdict as verdict_mod  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SKIP = 77
STORE = "S001"
BUCKET = "chaos"
DDB_SALES_TABLE = "machub-sales"

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # Children get SIGKILL when this driver dies (a CTest timeout kills only the driver).
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setpgid(0, 0)


def log(msg):
    sys.stderr.write("[chaos %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class Failure(Exception):
    pass


class Procs:
    """Every process this run starts; stop_all() ends the ones still running."""

    def __init__(self):
        self.procs = []

    def start(self, argv, log_path, env=None, stdout=None):
        out = open(log_path, "ab")
        e = dict(os.environ)
        if env:
            e.update(env)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=stdout if stdout is not None else out, stderr=out, env=e,
                             preexec_fn=_die_with_parent)
        out.close()
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def run(argv, timeout, env=None, check=True, what=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, env=e,
                           preexec_fn=_die_with_parent)
    except subprocess.TimeoutExpired:
        raise Failure("%s: no answer within %d s (hang)" % (what or argv[0], timeout))
    if check and r.returncode != 0:
        raise Failure("%s: exit %d\n%s%s" % (what or " ".join(argv[:3]), r.returncode,
                                             r.stdout.decode(errors="replace")[-2000:],
                                             r.stderr.decode(errors="replace")[-2000:]))
    return r


class Rgw:
    def __init__(self, script, dir_):
        self.script, self.dir = script, dir_
        self.env = {}

    def cmd(self, what, timeout=60):
        return run(["bash", self.script, what, self.dir], timeout,
                   env={"RGW_WATCH_PID": str(os.getpid())}, what="rgw.sh " + what)

    def start(self):
        self.cmd("start", timeout=120)
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                if "=" in line:
                    k, v = line.strip().split("=", 1)
                    self.env[k] = v

    def stop(self):
        try:
            run(["bash", self.script, "stop", self.dir], 60, check=False)
        except Failure:
            pass


class Dynalite:
    """tests/peers/dynalite.sh on DIR: start, outage (stopped, data and port kept), stop."""

    def __init__(self, script, dir_):
        self.script, self.dir = script, dir_
        self.env = {}

    def cmd(self, what, timeout=60):
        # A start can fail when the fresh dynalite dies at once (see revive): the hub's
        # first request aborted by the proxy. Up to five tries.
        for attempt in range(5 if what == "start" else 1):
            try:
                r = run(["bash", self.script, what, self.dir], timeout,
                        env={"DYNALITE_WATCH_PID": str(os.getpid())},
                        what="dynalite.sh " + what)
                break
            except Failure:
                if attempt == 4 or what != "start":
                    raise
                time.sleep(0.2)
        if what == "start":
            with open(os.path.join(self.dir, "env")) as f:
                self.env = dict(line.strip().split("=", 1) for line in f if "=" in line)
        return r

    def alive(self):
        try:
            with open("/proc/%s/status" % self.env.get("DYNALITE_PID", "0")) as f:
                return not any(line.startswith("State:") and line.split()[1] in "ZX"
                               for line in f)
        except OSError:
            return False

    def revive(self):
        """dynalite 4.0.0 throws on a request aborted mid-body (index.js: `req.on('error',
        function (err) { throw err })`), so a reset from the fault proxy can end it. For
        the hub that is one more outage (connection refused); the run restarts it on the
        same port and data, and counts it. Returns True when it had to."""
        if self.alive():
            return False
        self.cmd("start")
        return True

    def stop(self):
        try:
            run(["bash", self.script, "stop", self.dir], 60, check=False)
        except Failure:
            pass


def aws_binary():
    """Debian's awscli first (scripts/install-deps.sh --test), else an `aws` on PATH."""
    return "/usr/bin/aws" if os.access("/usr/bin/aws", os.X_OK) else shutil.which("aws")


# awscli talks to dynalite only (loopback); dynalite checks no signature.
AWS_ENV = {"AWS_ACCESS_KEY_ID": "MACHUBCHAOSDUMMY0000",
           "AWS_SECRET_ACCESS_KEY": "machubChaosDummySecret00000000000000000000",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": "",
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}


def aws_dynamodb(endpoint, *a, timeout=300):
    r = run([aws_binary(), "dynamodb"] + list(a) + ["--endpoint-url", endpoint, "--output",
                                                    "json"], timeout, env=AWS_ENV,
            what="aws dynamodb " + a[0])
    out = r.stdout.decode()
    return json.loads(out[out.find("{"):]) if "{" in out else {}


def scan_sales(endpoint):
    """Every item of the sales table, read with awscli (which follows LastEvaluatedKey
    itself), as dicts: entry_id, seq (int), store_id, entry_hash."""
    out = aws_dynamodb(endpoint, "scan", "--table-name", DDB_SALES_TABLE,
                       "--projection-expression", "entry_id, seq, store_id, entry_hash",
                       "--page-size", "1000")
    items = []
    for it in out.get("Items", []):
        items.append({"entry_id": it.get("entry_id", {}).get("S"),
                      "seq": int(it["seq"]["N"]) if "seq" in it else None,
                      "store_id": it.get("store_id", {}).get("S"),
                      "entry_hash": it.get("entry_hash", {}).get("S")})
    if out.get("NextToken") or out.get("LastEvaluatedKey"):
        raise Failure("aws dynamodb scan stopped before the end of the table")
    return items


class Proxy:
    def __init__(self, procs, binary, target_port, log_path):
        self.p = procs.start([binary, "--target", "127.0.0.1:%d" % target_port,
                              "--exit-with-parent"], log_path, stdout=subprocess.PIPE)
        line = self.p.stdout.readline().decode()
        fields = dict(kv.split("=") for kv in line.split())
        if "port" not in fields:
            raise Failure("fault_proxy did not start: %r" % line)
        self.port, self.control = int(fields["port"]), int(fields["control"])
        self.sock = socket.create_connection(("127.0.0.1", self.control), timeout=10)
        self.rfile = self.sock.makefile("r")

    def send(self, command):
        self.sock.sendall((command + "\n").encode())
        answer = self.rfile.readline().strip()
        if not answer.startswith("ok"):
            raise Failure("fault_proxy %r: %r" % (command, answer))
        return answer


class Hub:
    """machub serve on a fixed data dir; restarts reuse the first run's port."""

    def __init__(self, procs, args, work, sync_args):
        self.procs, self.args, self.work, self.sync_args = procs, args, work, sync_args
        self.data = os.path.join(work, "data")
        self.ready = os.path.join(work, "hub.ready")
        self.log = os.path.join(work, "hub.log")
        self.port = 0
        self.p = None
        self.starts = 0

    def argv(self):
        return [self.args.machub, "serve", "--data-dir", self.data, "--store-id", STORE,
                "--listen", "127.0.0.1:%d" % self.port, "--ready-file", self.ready,
                "--demo-token", "false", "--rate-per-terminal", "0"] + self.sync_args

    def _launch(self):
        """Starts one hub process (a stale ready file never counts)."""
        try:
            os.unlink(self.ready)
        except FileNotFoundError:
            pass
        self.p = self.procs.start(self.argv(), self.log)
        self.starts += 1

    def start(self):
        deadline = time.time() + 30
        while True:
            self._launch()
            while time.time() < deadline:
                if os.path.exists(self.ready):
                    with open(self.ready) as f:
                        text = f.read().strip()
                    if text:
                        self.port = int(text)
                        return
                if self.p.poll() is not None:
                    break
                time.sleep(0.02)
            if self.p.poll() is None:
                raise Failure("hub not ready within 30 s (hang at start); see %s" % self.log)
            # Exited at start: the port may be briefly taken by another test; try again.
            if time.time() >= deadline:
                raise Failure("hub exits at start (%d); see %s" % (self.p.returncode, self.log))
            time.sleep(0.3)

    def kill_during_start(self, delay):
        """Starts the hub and SIGKILLs it `delay` s later, ready or not."""
        self._launch()
        time.sleep(delay)
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
        self.p.wait(timeout=10)

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def kill(self):
        if not self.alive():
            raise Failure("the hub exited by itself (status %s) before a kill; see %s" %
                          (self.p.returncode, self.log))
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(timeout=10)

    def status(self, token):
        req = urllib.request.Request("http://127.0.0.1:%d/v1/status" % self.port,
                                     headers={"Authorization": "Bearer " + token})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())


def s3cmd(cfg, *a, timeout=300):
    return run(["s3cmd", "-c", cfg, "--no-progress"] + list(a), timeout,
               what="s3cmd " + a[0]).stdout.decode()


def download(cfg, dest):
    """Every object under sales/, as {key: bytes}; listed and fetched by s3cmd."""
    listing = s3cmd(cfg, "ls", "--recursive", "s3://%s/" % BUCKET)
    keys = [line.split("s3://%s/" % BUCKET, 1)[1] for line in listing.splitlines()
            if "s3://%s/" % BUCKET in line]
    sales_keys = [k for k in keys if k.startswith("sales/")]
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    if sales_keys:
        s3cmd(cfg, "get", "--recursive", "s3://%s/sales/" % BUCKET, dest + "/")
    got = verdict_mod.load_tree(dest)
    objects = {}
    for k in sales_keys:
        rel = k[len("sales/"):]
        if rel not in got:
            raise Failure("s3cmd listed %s but did not download it" % k)
        objects[k] = got[rel]
    return objects, keys


def sqlite(db, sql):
    return run(["sqlite3", "-readonly", db, sql], 120, what="sqlite3").stdout.decode()


class Schedule:
    """Events at random gaps around a mean; kinds drawn in shuffled rounds."""

    def __init__(self, rng, mean, kinds):
        self.rng, self.mean, self.kinds, self.round = rng, mean, list(kinds), []
        self.next_at = time.time() + self.gap()

    def gap(self):
        return self.rng.uniform(0.1 * self.mean, 1.9 * self.mean)

    def kind(self):
        if not self.round:
            self.round = list(self.kinds)
            self.rng.shuffle(self.round)
        return self.round.pop()


def chaos(args):
    for tool in ("s3cmd", "sqlite3", "radosgw", "ceph-mon", "ceph-osd"):
        if shutil.which(tool) is None:
            print("SKIP: %s not installed (scripts/install-deps.sh --test)" % tool)
            return SKIP
    for f in (args.machub, args.fault_proxy, args.rgw_sh):
        if not os.path.exists(f):
            print("chaos: %s not found (build it, or pass --machub/--fault-proxy)" % f)
            return 2
    rng = random.Random(args.seed)
    work = args.work_dir or tempfile.mkdtemp(prefix="machub-chaos-")
    os.makedirs(work, exist_ok=True)
    procs = Procs()
    rgw = Rgw(args.rgw_sh, os.path.join(work, "rgw"))
    dynalite = Dynalite(args.dynalite_sh, os.path.join(work, "dynalite"))
    ddb = None  # {"endpoint": direct, "proxy": Proxy} once the DynamoDB part runs
    ddb_skip = None  # why the DynamoDB part was skipped (--dynamodb auto)
    counts = {"kills": 0}
    outages = {}
    proxy_modes = {}
    result = {"ok": False}
    log("work dir %s, seed %d" % (work, args.seed))

    def on_signal(signum, _frame):
        raise Failure("interrupted by signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        try:
            rgw.start()
        except Failure as e:
            print("SKIP: RGW does not start here: %s" % str(e).splitlines()[0])
            return SKIP
        rgw_port = int(rgw.env["RGW_PORT"])
        key, secret = rgw.env["RGW_ACCESS_KEY"], rgw.env["RGW_SECRET_KEY"]
        cfg = os.path.join(work, "s3cfg")
        with open(cfg, "w") as f:
            f.write("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = 127.0.0.1:%d\n"
                    "host_bucket = 127.0.0.1:%d\nuse_https = False\nbucket_location = us-east-1\n"
                    "signature_v2 = False\n" % (key, secret, rgw_port, rgw_port))
        s3cmd(cfg, "mb", "s3://" + BUCKET)
        log("RGW on %d, bucket %s" % (rgw_port, BUCKET))

        proxy = Proxy(procs, args.fault_proxy, rgw_port, os.path.join(work, "proxy.log"))
        log("fault proxy %d -> %d (control %d)" % (proxy.port, rgw_port, proxy.control))

        # DynamoDB as a second sink: dynalite behind its own fault proxy.
        ddb_args = []
        if args.dynamodb != "off":
            why = None
            if aws_binary() is None:
                why = "awscli not installed"
            elif shutil.which("node") is None:
                why = "node not installed"
            else:
                try:
                    dynalite.cmd("start", timeout=180)
                except Failure as e:
                    why = "dynalite does not start: %s" % str(e).splitlines()[0]
            if why:
                if args.dynamodb == "on":
                    print("SKIP: %s (scripts/install-deps.sh --test)" % why)
                    return SKIP
                ddb_skip = why
                log("DynamoDB part SKIPPED: %s (scripts/install-deps.sh --test); S3 only" % why)
            else:
                d_port = int(dynalite.env["DYNALITE_PORT"])
                ddb = {"endpoint": "http://127.0.0.1:%d" % d_port,
                       "proxy": Proxy(procs, args.fault_proxy, d_port,
                                      os.path.join(work, "proxy-dynamodb.log"))}
                aws_env = ["--sync-access-key-id", key, "--sync-secret-access-key", secret]
                run([args.machub, "dynamodb", "create-tables", "--sync-dynamodb-endpoint",
                     ddb["endpoint"], "--data-dir", os.path.join(work, "ddb-admin")] + aws_env,
                    120, what="machub dynamodb create-tables")
                ddb_args = ["--sync-dynamodb-enabled", "true", "--sync-dynamodb-endpoint",
                            "http://127.0.0.1:%d" % ddb["proxy"].port,
                            "--sync-dynamodb-request-timeout-ms", "4000",
                            "--sync-dynamodb-stores-interval-s", "1"]
                log("dynalite on %d behind fault proxy %d (control %d); tables created" %
                    (d_port, ddb["proxy"].port, ddb["proxy"].control))

        common = ["--sync-bucket", BUCKET, "--sync-addressing", "path",
                  "--sync-region", "us-east-1", "--sync-access-key-id", key,
                  "--sync-secret-access-key", secret, "--sync-format", args.format,
                  "--sync-retention-days", "0", "--sync-min-free-disk-mb", "0",
                  "--sync-min-free-disk-percent", "0", "--sync-catalog-interval-s", "0"]
        via_proxy = ["--sync-endpoint", "http://127.0.0.1:%d" % proxy.port]
        direct = ["--sync-endpoint", "http://127.0.0.1:%d" % rgw_port]
        hub = Hub(procs, args, work, common + via_proxy + [
            "--sync-batch-max-sales", str(args.batch_max_sales), "--sync-batch-max-age-s", "1",
            "--sync-request-timeout-ms", "4000", "--sync-backoff-cap-ms", "2000",
            "--sync-probe-interval-ms", "500"] + ddb_args)

        tokens = run([args.machub, "token", "create", "--count", str(args.terminals),
                      "--prefix", "T", "--data-dir", hub.data], 30,
                     what="machub token create").stdout.decode().split("\n")
        tokens = [t for t in tokens if t.strip()]
        # /v1/status needs a manager token (docs/API.md, roles).
        status_token = run([args.machub, "token", "create", "--terminal", "M01", "--role",
                            "manager", "--data-dir", hub.data], 30,
                           what="machub token create --role manager").stdout.decode().split()[1]
        hub.start()
        log("hub on port %d" % hub.port)

        # K load generators, each with its own slice of the terminals.
        loadgens = []
        per = [args.terminals // args.loadgens + (1 if i < args.terminals % args.loadgens else 0)
               for i in range(args.loadgens)]
        offset = 0
        for i, n in enumerate(per):
            tf = os.path.join(work, "tokens-%d.txt" % i)
            with open(tf, "w") as f:
                f.write("\n".join(tokens[offset:offset + n]) + "\n")
            offset += n
            acked = os.path.join(work, "acked-%d.txt" % i)
            report = open(os.path.join(work, "loadgen-%d.json" % i), "wb")
            p = procs.start([args.machub, "loadgen", "--url", "http://127.0.0.1:%d" % hub.port,
                             "--tokens", tf, "--terminals", str(n), "--duration",
                             str(args.duration), "--rate", str(args.rate / args.loadgens),
                             "--acked", acked, "--retry-percent", "5", "--refund-percent", "5",
                             "--timeout-ms", "5000"],
                            os.path.join(work, "loadgen-%d.log" % i), stdout=report)
            report.close()
            loadgens.append((p, acked, os.path.join(work, "loadgen-%d.json" % i)))
        log("%d load generators, %d terminals, %.0f sales/s for %d s" %
            (args.loadgens, args.terminals, args.rate, args.duration))

        # --- the chaos ---
        kill_s = Schedule(rng, args.kill_interval, ["kill"])
        rgw_s = Schedule(rng, args.rgw_interval, ["stop-gateway", "freeze"])
        proxy_s = Schedule(rng, args.proxy_interval,
                           ["reset", "reset-after", "blackhole", "latency", "pass"])
        rgw_state, rgw_until = "up", 0.0
        # The DynamoDB faults run on their own generator, so a seed gives the same S3 and
        # kill schedule with or without --dynamodb.
        d_rng = random.Random(args.seed * 7919 + 1)
        ddb_s = Schedule(d_rng, args.dynamodb_interval, ["outage"])
        dproxy_s = Schedule(d_rng, args.dynamodb_proxy_interval,
                            ["reset", "reset-after", "blackhole", "latency", "pass"])
        ddb_state, ddb_until = "up", 0.0
        ddb_outages, ddb_modes = 0, {}
        # The last --dynamodb-calm s have no DynamoDB faults (the hub's kills and the S3
        # faults go on): the sink's backlog drains at dynalite's pace (~700 items/s) while
        # the run goes on, rather than in a long drain after it.
        ddb_calm_at = time.time() + max(0, args.duration - args.dynamodb_calm)
        ddb_calm = False
        end = time.time() + args.duration
        while True:
            now = time.time()
            if now >= end:
                break
            for p, _, _ in loadgens:
                if p.poll() is not None and time.time() < end - 2:
                    raise Failure("a load generator exited early (%d); see %s/loadgen-*.log" %
                                  (p.returncode, work))
            if now >= kill_s.next_at:
                kill_s.next_at = now + kill_s.gap()  # kill to kill: restarts take no turn
                hub.kill()
                counts["kills"] += 1
                # One restart in five is killed again while it starts (journal recovery,
                # the listener, the first upload attempt): a crash loop.
                if rng.random() < 0.2:
                    hub.kill_during_start(rng.uniform(0.0, 0.3))
                    counts["kills"] += 1
                    counts["start_kills"] = counts.get("start_kills", 0) + 1
                hub.start()
            if rgw_state != "up" and now >= rgw_until:
                rgw.cmd("start-gateway" if rgw_state == "stopped" else "thaw")
                rgw_state = "up"
                rgw_s.next_at = time.time() + rgw_s.gap()
            elif rgw_state == "up" and now >= rgw_s.next_at:
                kind = rgw_s.kind()
                rgw.cmd(kind)
                outages[kind] = outages.get(kind, 0) + 1
                rgw_state = "stopped" if kind == "stop-gateway" else "frozen"
                rgw_until = time.time() + rng.uniform(1, 8)
            if ddb and ddb_state == "up" and dynalite.revive():
                counts["ddb_crashes"] = counts.get("ddb_crashes", 0) + 1
            if ddb and not ddb_calm and now >= ddb_calm_at:
                ddb_calm = True
                log("DynamoDB faults end (the last %d s are calm for DynamoDB)" %
                    args.dynamodb_calm)
                ddb_until = now
                ddb["proxy"].send("pass")
                ddb["proxy"].send("drop")
            if ddb and ddb_state != "up" and now >= ddb_until:
                dynalite.cmd("start")
                ddb_state = "up"
                ddb_s.next_at = time.time() + ddb_s.gap()
            elif ddb and not ddb_calm and ddb_state == "up" and now >= ddb_s.next_at:
                ddb_s.kind()
                dynalite.cmd("outage")  # stopped; its data and port are kept
                ddb_outages += 1
                ddb_state = "stopped"
                ddb_until = time.time() + d_rng.uniform(1, 8)
            if ddb and not ddb_calm and now >= dproxy_s.next_at:
                mode = dproxy_s.kind()
                cmd = {"reset-after": "reset-after %d" % d_rng.randint(1, 20000),
                       "latency": "latency %d" % d_rng.randint(50, 1500)}.get(mode, mode)
                ddb["proxy"].send(cmd)
                ddb["proxy"].send("drop")
                ddb_modes[mode] = ddb_modes.get(mode, 0) + 1
                dproxy_s.next_at = time.time() + d_rng.uniform(
                    1, 2 * args.dynamodb_proxy_interval - 1)
            if now >= proxy_s.next_at:
                mode = proxy_s.kind()
                cmd = {"reset-after": "reset-after %d" % rng.randint(1, 20000),
                       "latency": "latency %d" % rng.randint(50, 1500)}.get(mode, mode)
                proxy.send(cmd)
                proxy.send("drop")  # a mode applies to new connections: reset the open ones
                proxy_modes[mode] = proxy_modes.get(mode, 0) + 1
                proxy_s.next_at = time.time() + rng.uniform(1, 2 * args.proxy_interval - 1)
            time.sleep(0.02)

        # --- the cloud comes back; the backlog drains ---
        log("chaos over: %d kills; letting the cloud back" % counts["kills"])
        if rgw_state == "stopped":
            rgw.cmd("start-gateway")
        elif rgw_state == "frozen":
            rgw.cmd("thaw")
        proxy.send("pass")
        proxy.send("drop")  # no connection keeps an earlier mode (say, latency) into the drain
        if ddb:
            if ddb_state != "up":
                dynalite.cmd("start")
            ddb["proxy"].send("pass")
            ddb["proxy"].send("drop")
        if not hub.alive():
            raise Failure("the hub exited by itself (%s); see %s" % (hub.p.returncode, hub.log))
        lg_reports = []
        for p, _, rep in loadgens:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise Failure("a load generator did not end 60 s after its duration (hang)")
            with open(rep) as f:
                text = f.read().strip()
            lg_reports.append((p.returncode, json.loads(text.splitlines()[-1]) if text else {}))
        drain_start = time.time()
        last = None
        while True:
            try:
                st = hub.status(status_token)
                last = st
                if st["backlog"]["sales"] == 0 and (
                        not ddb or st["cloud"]["dynamodb"]["backlog"] == 0):
                    break
            except (OSError, ValueError, KeyError) as e:
                last = repr(e)
            if not hub.alive():
                raise Failure("the hub exited by itself during the drain; see %s" % hub.log)
            if ddb and dynalite.revive():
                counts["ddb_crashes"] = counts.get("ddb_crashes", 0) + 1
            if time.time() - drain_start > args.drain_timeout:
                raise Failure("backlog not drained within %d s (hang?): %s" %
                              (args.drain_timeout, json.dumps(last)[:800]))
            time.sleep(0.5)
        drain_s = time.time() - drain_start
        log("backlog drained in %.1f s; stopping the hub" % drain_s)
        hub.p.send_signal(signal.SIGTERM)
        try:
            rc = hub.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise Failure("the hub did not stop within 30 s of SIGTERM (hang)")
        if rc != 0:
            raise Failure("the hub exited %d on SIGTERM; see %s" % (rc, hub.log))
        proxy_stats = proxy.send("stats")
        ddb_proxy_stats = ddb["proxy"].send("stats") if ddb else ""

        # --- the verdict ---
        checks = []  # (name, ok, detail)
        once = run([args.machub, "sync", "--once", "--data-dir", hub.data, "--store-id", STORE,
                    "--give-up-after-ms", "30000"] + common + direct, 120, check=False,
                   what="machub sync --once")
        checks.append(("sync --once", once.returncode == 0,
                       "exit %d (nothing left to upload after the drain)" % once.returncode))
        objects, all_keys = download(cfg, os.path.join(work, "download"))
        acked = verdict_mod.read_acked([a for _, a, _ in loadgens])
        db = os.path.join(hub.data, "journal.db")
        rows = []
        for line in sqlite(db, "SELECT seq, id FROM sales ORDER BY seq").splitlines():
            seq, sid = line.split("|", 1)
            rows.append((int(seq), sid))
        v = verdict_mod.judge(objects, acked, rows)
        checks += v.checks
        dv = None
        if ddb:
            t0 = time.time()
            items = scan_sales(ddb["endpoint"])
            dv = verdict_mod.judge_dynamodb(items, acked, rows, v.s3_rows, STORE)
            checks += dv.checks
            log("sales table read back with awscli in %.1f s (%d items)" %
                (time.time() - t0, len(items)))
        ver = run([args.machub, "verify", "--bucket", BUCKET, "--store-id", STORE,
                   "--data-dir", os.path.join(work, "verify-data")] + common + direct,
                  300, check=False, what="machub verify")
        ver_out = (ver.stdout.decode(errors="replace").strip().splitlines() or [""])[-1]
        checks.append(("machub verify", ver.returncode == 0,
                       "exit %d %s" % (ver.returncode, ver_out[:300])))
        integ = sqlite(db, "PRAGMA integrity_check").strip()
        checks.append(("integrity_check", integ == "ok", "sqlite3 CLI: " + integ[:300]))
        jv = run([args.machub, "journal", "verify", "--data-dir", hub.data, "--store-id", STORE],
                 300, check=False, what="machub journal verify")
        checks.append(("journal verify", jv.returncode == 0,
                       "exit %d %s" % (jv.returncode, jv.stdout.decode(errors="replace")
                                       .strip()[-300:])))
        lg_ok = all(rc == 0 and r.get("retry_mismatch", 1) == 0 and r.get("unexpected", 1) == 0
                    for rc, r in lg_reports)
        checks.append(("loadgen", lg_ok, "; ".join(
            "exit %d acked=%s retry_ok=%s retry_mismatch=%s unexpected=%s conn_errors=%s" %
            (rc, r.get("acked"), r.get("retry_ok"), r.get("retry_mismatch"),
             r.get("unexpected"), r.get("conn_errors")) for rc, r in lg_reports)))
        checks.append(("enough chaos", counts["kills"] >= args.min_kills and
                       len(acked) >= args.min_acked,
                       "%d kills (need %d), %d acked (need %d)" %
                       (counts["kills"], args.min_kills, len(acked), args.min_acked)))
        passed = all(c[1] for c in checks)

        # --- negative control: the same verdict must fail on a tampered bucket ---
        neg = None
        if args.negative_control and passed and objects:
            src = sorted(objects)[len(objects) // 2]
            m = verdict_mod.KEY_RE.search(src)
            dup_key = "sales/store=%s/date=%s/%s-%012d-%012d.%s.gz" % (
                STORE, m.group("date"), STORE, v.max_seq + 1,
                v.max_seq + 1 + int(m.group("last")) - int(m.group("first")), m.group("fmt"))
            s3cmd(cfg, "cp", "s3://%s/%s" % (BUCKET, src), "s3://%s/%s" % (BUCKET, dup_key))
            tampered, _ = download(cfg, os.path.join(work, "download-tampered"))
            nv = verdict_mod.judge(tampered, acked | {"chaos-negative-control-never-sent"})
            nver = run([args.machub, "verify", "--bucket", BUCKET, "--store-id", STORE,
                        "--data-dir", os.path.join(work, "verify-data")] + common + direct,
                       300, check=False, what="machub verify (tampered)")
            s3cmd(cfg, "del", "s3://%s/%s" % (BUCKET, dup_key))
            neg = (not nv.ok() and nv.duplicated > 0 and len(nv.lost) == 1 and
                   nver.returncode != 0)
            checks.append(("negative control", neg,
                           "copy of %s as %s plus one fabricated acked id: verdict %s "
                           "(lost=%d duplicated=%d), machub verify exit %d" %
                           (src.rsplit("/", 1)[1], dup_key.rsplit("/", 1)[1],
                            "FAIL as expected" if not nv.ok() else "PASS (wrong!)",
                            len(nv.lost), nv.duplicated, nver.returncode)))
            passed = passed and neg
        # The same for the sales table: one item copied under a new seq (its entry_id
        # twice) and one fabricated acked id must fail the DynamoDB verdict.
        if args.negative_control and passed and dv is not None and items:
            src = items[len(items) // 2]
            new_seq = dv.max_seq + 1
            fake = {"store_id": {"S": STORE}, "seq": {"N": str(new_seq)},
                    "entry_id": {"S": src["entry_id"]}, "entry_hash": {"S": src["entry_hash"]}}
            aws_dynamodb(ddb["endpoint"], "put-item", "--table-name", DDB_SALES_TABLE,
                         "--item", json.dumps(fake))
            tampered = scan_sales(ddb["endpoint"])
            aws_dynamodb(ddb["endpoint"], "delete-item", "--table-name", DDB_SALES_TABLE,
                         "--key", json.dumps({"store_id": {"S": STORE},
                                              "seq": {"N": str(new_seq)}}))
            ndv = verdict_mod.judge_dynamodb(tampered, acked | {"chaos-ddb-never-sent"}, rows,
                                             v.s3_rows, STORE)
            dneg = not ndv.ok() and ndv.duplicated > 0 and len(ndv.lost) == 1
            checks.append(("ddb negative", dneg,
                           "item of seq %d copied as seq %d plus one fabricated acked id: "
                           "verdict %s (lost=%d duplicated=%d)" %
                           (src["seq"], new_seq,
                            "FAIL as expected" if not ndv.ok() else "PASS (wrong!)",
                            len(ndv.lost), ndv.duplicated)))
            passed = passed and dneg

        # What the hub itself went through (its JSON log lines).
        hub_events = {}
        with open(hub.log, errors="replace") as f:
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("event") == "sync_state":
                    k = "sync %s->%s" % (ev.get("from"), ev.get("to"))
                    hub_events[k] = hub_events.get(k, 0) + 1

        # What RGW saw (its own access log): the hub's PUTs of sales objects by status. A
        # 412 is a re-send of an object already stored (after a kill or a lost answer).
        puts = {}
        rgw_log = os.path.join(rgw.dir, "log", "client.rgw.a.log")
        if os.path.exists(rgw_log):
            with open(rgw_log, errors="replace") as f:
                for line in f:
                    if "beast:" in line and '"PUT /%s/sales/' % BUCKET in line and \
                            "machub/" in line:
                        code = line.split('HTTP/1.1" ', 1)[-1].split(" ", 1)[0]
                        puts[code] = puts.get(code, 0) + 1

        # --- the summary ---
        lg_sum = {k: sum(r.get(k, 0) or 0 for _, r in lg_reports)
                  for k in ("sent", "acked", "created", "refunds", "retry_ok", "conn_errors",
                            "timeouts")}
        print("==== chaos run summary")
        print("duration            %d s chaos + %.1f s drain (seed %d, format %s)" %
              (args.duration, drain_s, args.seed, args.format))
        print("load                %d loadgen processes, %d terminals, %.0f sales/s offered" %
              (args.loadgens, args.terminals, args.rate))
        print("kills               %d (SIGKILL, restart on the same data dir; %d of them "
              "while the hub was starting)" % (counts["kills"], counts.get("start_kills", 0)))
        print("outages             %s" % (", ".join("%s %d" % kv for kv in sorted(outages.items()))
                                          or "none"))
        print("proxy modes         %s (each followed by drop); %s" %
              (", ".join("%s %d" % kv for kv in sorted(proxy_modes.items())) or "none",
               proxy_stats))
        if ddb:
            print("dynamodb faults     dynalite stopped %d times (1-8 s), and restarted %d "
                  "times after it died of an aborted request (a dynalite bug: one more "
                  "outage); proxy modes %s (each followed by drop); %s" %
                  (ddb_outages, counts.get("ddb_crashes", 0),
                   ", ".join("%s %d" % kv for kv in sorted(ddb_modes.items())) or "none",
                   ddb_proxy_stats))
        print("hub sync states     %s" % (", ".join(
            "%s %d" % kv for kv in sorted(hub_events.items())) or "none"))
        print("RGW PUTs of sales   %s (RGW's access log; 412: already stored, decided by MD5; "
              "500 there: the proxy reset the upload)" %
              (", ".join("%s %d" % kv for kv in sorted(puts.items())) or "none"))
        print("loadgen             sent %d, acked %d (%d created), refunds %d, retries ok %d, "
              "connection errors %d, timeouts %d" %
              (lg_sum["sent"], lg_sum["acked"], lg_sum["created"], lg_sum["refunds"],
               lg_sum["retry_ok"], lg_sum["conn_errors"], lg_sum["timeouts"]))
        print("sales acknowledged  %d distinct ids" % len(acked))
        print("in S3               %d sales in %d objects (%d keys in the bucket); "
              "stored but never acked: %d" %
              (v.sales_in_s3, v.objects, len(all_keys), v.unacked_stored))
        print("journal             %d rows, last seq %d" % (len(rows), rows[-1][0] if rows else 0))
        print("lost                %d" % len(v.lost))
        print("duplicated          %d" % v.duplicated)
        if dv is not None:
            print("dynamodb            %d acked, %d lost, %d duplicated (%d items in %s, "
                  "read with awscli; stored but never acked: %d)" %
                  (len(acked), len(dv.lost), dv.duplicated, dv.sales_in_s3, DDB_SALES_TABLE,
                   dv.unacked_stored))
        else:
            print("dynamodb            %s" % ("SKIPPED: " + ddb_skip if ddb_skip
                                              else "not part of this run (--dynamodb off)"))
        for name, ok, detail in checks:
            print("%-4s %-16s %s" % ("ok" if ok else "FAIL", name, detail))
        print("verdict             %s" % ("PASS" if passed else "FAIL"))
        result["ok"] = passed
        return 0 if passed else 1
    except Failure as e:
        print("==== chaos run summary")
        print("kills               %d" % counts["kills"])
        print("outages             %s" % outages)
        print("FAIL: %s" % e)
        print("verdict             FAIL (evidence kept in %s)" % work)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        procs.stop_all()
        rgw.stop()
        dynalite.stop()
        if result["ok"] and not args.keep and not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
        elif not result["ok"]:
            log("kept %s for inspection" % work)


def self_test():
    """The verdict against fabricated objects: a clean set passes, and each defect fails."""
    import gzip

    def hx(seq):  # a fabricated chain hash per seq (64 hex digits)
        return ("%02x" % (seq % 256)) * 32

    def obj(rows, fmt="jsonl"):
        if fmt == "jsonl":
            text = "".join(json.dumps({"id": i, "seq": s, "total": "1.00", "hash": hx(s)}) +
                           "\n" for s, i in rows)
        else:
            text = "store_id,seq,sale_id,line_no,sku,hash\n" + "".join(
                "S001,%d,%s,%d,X,%s\n" % (s, i, n, hx(s)) for s, i in rows for n in (1, 2))
        return gzip.compress(text.encode())

    def key(first, last, fmt="jsonl"):
        return "sales/store=S001/date=2026-11-27/S001-%012d-%012d.%s.gz" % (first, last, fmt)

    rows = [(s, "id-%d" % s) for s in range(1, 21)]
    acked = {"id-%d" % s for s in range(1, 20)}  # id-20 stored but never acked: fine
    failures = []
    cases = [0]

    def case(name, objects, want_ok, acked_ids=acked, journal=rows, **want):
        cases[0] += 1
        v = verdict_mod.judge(objects, acked_ids, journal)
        got = {"lost": len(v.lost), "duplicated": v.duplicated}
        bad = v.ok() != want_ok or any(got[k] != n for k, n in want.items())
        print("%-4s %-38s verdict %s, lost=%d duplicated=%d; %s" %
              ("FAIL" if bad else "ok", name, "PASS" if v.ok() else "FAIL", got["lost"],
               got["duplicated"], "; ".join(c[0] + ": " + c[2] for c in v.checks if not c[1])
               or "all checks ok"))
        if bad:
            failures.append(name)

    for fmt in ("jsonl", "csv"):
        clean = {key(1, 10, fmt): obj(rows[:10], fmt), key(11, 20, fmt): obj(rows[10:], fmt)}
        case("%s clean" % fmt, clean, True, lost=0, duplicated=0)
        case("%s acked id missing" % fmt, clean, False, acked_ids=acked | {"id-99"}, lost=1)
        dup = dict(clean)
        dup[key(21, 30, fmt)] = obj(rows[:10], fmt)
        case("%s object copied under a new key" % fmt, dup, False, duplicated=20)
        inner = {key(1, 11, fmt): obj(rows[:10] + [rows[3]], fmt), key(11, 20, fmt):
                 obj(rows[10:], fmt)}
        case("%s one sale twice in an object" % fmt, inner, False)
        same_seq = {key(1, 10, fmt): obj(rows[:10], fmt),
                    key(10, 20, fmt): obj([(10, "id-other")] + rows[10:], fmt)}
        case("%s seq 10 with two ids" % fmt, same_seq, False, duplicated=1)
        gap = {key(1, 10, fmt): obj(rows[:10], fmt), key(12, 20, fmt): obj(rows[11:], fmt)}
        case("%s seq 11 missing (acked id lost)" % fmt, gap, False, lost=1)
        trunc = dict(clean)
        trunc[key(11, 20, fmt)] = clean[key(11, 20, fmt)][:-12]
        case("%s truncated gzip" % fmt, trunc, False)
    clean = {key(1, 10): obj(rows[:10]), key(11, 20): obj(rows[10:])}
    case("journal row never uploaded", clean, False, journal=rows + [(21, "id-21")])

    # The DynamoDB side: items as awscli returns them, judged against the S3 rows.
    s3_rows = verdict_mod.judge(clean, acked, rows).s3_rows

    def item(seq, sid, h=None, store="S001"):
        return {"entry_id": sid, "seq": seq, "store_id": store, "entry_hash": h or hx(seq)}

    def dcase(name, items, want_ok, acked_ids=acked, journal=rows, **want):
        cases[0] += 1
        v = verdict_mod.judge_dynamodb(items, acked_ids, journal, s3_rows, "S001")
        got = {"lost": len(v.lost), "duplicated": v.duplicated}
        bad = v.ok() != want_ok or any(got[k] != n for k, n in want.items())
        print("%-4s %-38s verdict %s, lost=%d duplicated=%d; %s" %
              ("FAIL" if bad else "ok", name, "PASS" if v.ok() else "FAIL", got["lost"],
               got["duplicated"], "; ".join(c[0] + ": " + c[2] for c in v.checks if not c[1])
               or "all checks ok"))
        if bad:
            failures.append(name)

    table = [item(s, i) for s, i in rows]
    dcase("ddb clean", table, True, lost=0, duplicated=0)
    dcase("ddb acked id missing", table, False, acked_ids=acked | {"id-99"}, lost=1)
    dcase("ddb item lost (seq 5)", [it for it in table if it["seq"] != 5], False, lost=1)
    dcase("ddb item duplicated (new seq)", table + [item(21, "id-7", hx(7))], False,
          duplicated=1)
    dcase("ddb seq 9 twice", table + [item(9, "id-other")], False, duplicated=1)
    dcase("ddb entry_hash differs from S3", table[:-1] + [item(20, "id-20", "ab" * 32)],
          False, lost=0, duplicated=0)
    dcase("ddb item of another store", table + [item(21, "id-21", store="S002")], False)
    dcase("ddb item not in the journal", table + [item(21, "id-21")], False, duplicated=0)
    dcase("ddb empty table", [], False, lost=len(acked))
    print("self-test: %d passed, %d failed" % (cases[0] - len(failures), len(failures)))
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    build = os.environ.get("MACHUB_BUILD_DIR", os.path.join(REPO, "build", "dev"))
    ap.add_argument("--machub", default=os.environ.get(
        "MACHUB_BINARY", os.path.join(build, "src", "app", "machub")))
    proxy = os.path.join(build, "tests", "peers", "fault_proxy")
    ap.add_argument("--fault-proxy", default=os.environ.get(
        "MACHUB_FAULT_PROXY", proxy))
    ap.add_argument("--rgw-sh", default=os.path.join(REPO, "tests", "peers", "rgw.sh"))
    ap.add_argument("--duration", type=int, default=150, help="seconds of chaos")
    ap.add_argument("--kill-interval", type=float, default=5.0, help="mean s between kills")
    ap.add_argument("--rgw-interval", type=float, default=12.0,
                    help="mean s between RGW outages (each held 1-8 s)")
    ap.add_argument("--proxy-interval", type=float, default=4.0,
                    help="mean s between fault proxy mode switches")
    ap.add_argument("--dynamodb", nargs="?", const="on", default="off",
                    choices=("off", "on", "auto"),
                    help="DynamoDB (dynalite) as a second sink: on (skip the run, 77, when "
                    "dynalite or awscli is missing), auto (then S3 only, with a message)")
    ap.add_argument("--dynamodb-calm", type=int, default=25,
                    help="no DynamoDB faults in the last S s of the chaos (kills go on)")
    ap.add_argument("--dynalite-sh", default=os.path.join(REPO, "tests", "peers", "dynalite.sh"))
    ap.add_argument("--dynamodb-interval", type=float, default=12.0,
                    help="mean s between dynalite outages (each held 1-8 s)")
    ap.add_argument("--dynamodb-proxy-interval", type=float, default=4.0,
                    help="mean s between mode switches of the DynamoDB fault proxy")
    ap.add_argument("--terminals", type=int, default=16)
    ap.add_argument("--loadgens", type=int, default=2, help="load generator processes")
    ap.add_argument("--rate", type=float, default=120, help="offered sales/s in total")
    ap.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    ap.add_argument("--batch-max-sales", type=int, default=100)
    ap.add_argument("--drain-timeout", type=int, default=240)
    ap.add_argument("--min-kills", type=int, default=0, help="fail with fewer kills")
    ap.add_argument("--min-acked", type=int, default=500, help="fail with fewer acked sales")
    ap.add_argument("--seed", type=int, default=None, help="chaos schedule seed (random)")
    ap.add_argument("--work-dir", help="keep everything here (default: a temp dir, removed "
                    "on success)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir on success")
    ap.add_argument("--no-negative-control", dest="negative_control", action="store_false")
    ap.add_argument("--self-test", action="store_true",
                    help="run the verdict on fabricated objects and exit")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1 << 31)
    if args.loadgens < 1 or args.terminals < args.loadgens:
        ap.error("need --terminals >= --loadgens >= 1")
    return chaos(args)


if __name__ == "__main__":
    sys.exit(main())
