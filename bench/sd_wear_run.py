#!/usr/bin/env python3
"""One run of bench/sd_wear_bench.sh: start `machub serve` on a fresh data folder, optionally
fill its journal first, drive `machub loadgen`, stop the hub, and print one JSON line with
the bytes it made the kernel write per acknowledged sale.

    sd_wear_run.py BINARY WORKDIR TERMINALS DURATION_S RATE PREFILL_S

RATE 0 is a closed loop (each terminal sends its next sale when the last was answered);
above 0 it is an open loop of RATE sales/s in total (Poisson gaps), a store's pace.
PREFILL_S > 0 first fills the journal with a closed loop of 8 terminals for that long,
waits until status shows the whole fill uploaded and restarts the hub, so the indexes are
the size of weeks of sales, not empty, and nothing of the fill is counted.

Two counts, both from the hub's own I/O accounting (write_bytes of /proc/PID/io, the
same figure getrusage reports as ru_oublock x 512 once it has exited):
  - at_read: from the start of the measured load to 3 s after it, before SIGTERM;
  - through_exit: the same start to the hub's exit, so work the hub deferred (a
    checkpoint waiting for more WAL, the last batch) is counted against these sales.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request


def write_bytes(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    raise RuntimeError("no write_bytes in /proc/PID/io")


def loadgen(binary, port, tokens, terminals, duration, rate, seed):
    cmd = [binary, "loadgen", "--url", f"http://127.0.0.1:{port}", "--tokens", tokens,
           "--terminals", str(terminals), "--duration", str(duration), "--rate", str(rate),
           "--retry-percent", "0", "--refund-percent", "2", "--seed", str(seed)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def terminal_tokens(binary, data, path, count):
    """Creates `count` terminal tokens T001.. in `data`, their lines in the file `path`."""
    with open(path, "w") as f:
        subprocess.run([binary, "token", "create", "--data-dir", data, "--count", str(count),
                        "--prefix", "T"], stdout=f, stderr=subprocess.DEVNULL, check=True)


def start_hub(binary, data, ready, extra_args=(), log=None):
    """Starts `machub serve` on `data` (any port, no rate limit) and waits until it listens.
    Returns the process and its port."""
    if os.path.exists(ready):
        os.remove(ready)
    hub = subprocess.Popen([binary, "serve", "--data-dir", data, "--listen", "127.0.0.1:0",
                            "--ready-file", ready, "--rate-per-terminal", "0",
                            "--demo-token", "false", "--log-level", "warn", *extra_args],
                           stdout=log, stderr=subprocess.STDOUT if log else None)
    for _ in range(400):
        if os.path.exists(ready) and os.path.getsize(ready) > 0:
            break
        time.sleep(0.05)
    with open(ready) as f:
        return hub, f.read().strip()


def wait_uploaded(port, token, limit_s=300):
    """Waits until the hub's status (a manager's token) shows no sale left to upload."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/status",
                                     headers={"Authorization": f"Bearer {token}"})
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(request, timeout=5) as response:
            if json.load(response)["backlog"]["sales"] == 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the fill's backlog did not upload in {limit_s} s")


def main():
    binary, work, terminals, duration, rate, prefill = sys.argv[1:7]
    terminals, rate, prefill = int(terminals), float(rate), float(prefill)
    data = os.path.join(work, f"data-{terminals}-{rate:g}")
    os.makedirs(data)
    tokens = os.path.join(work, f"tokens-{terminals}-{rate:g}")
    terminal_tokens(binary, data, tokens, max(terminals, 8))
    manager = subprocess.run([binary, "token", "create", "--data-dir", data, "--terminal", "M01",
                              "--role", "manager"], capture_output=True, text=True,
                             check=True).stdout.split()[1]
    ready = os.path.join(work, "ready")
    log = open(os.path.join(work, f"hub-{terminals}-{rate:g}.log"), "w")

    def start():
        return start_hub(binary, data, ready, log=log)

    prefilled = 0
    hub = None
    try:
        if prefill > 0:
            # Fill, let the upload catch up, and stop: the hub's exit copies the whole WAL
            # into the database, so none of the fill's writes land in the measured window.
            hub, port = start()
            prefilled = loadgen(binary, port, tokens, 8, prefill, 0, 2)["acked"]
            wait_uploaded(port, manager)
            hub.terminate()
            hub.wait()
        hub, port = start()
        time.sleep(1.5)  # start-up writes (schema, first checkpoint) are not per-sale
        before = write_bytes(hub.pid)
        measured_from_ms = int(time.time() * 1000)
        result = loadgen(binary, port, tokens, terminals, duration, rate, 1)
        time.sleep(3)
        at_read = write_bytes(hub.pid)
        hub.terminate()
        _, _, usage = os.wait4(hub.pid, 0)
        hub.returncode = 0
        through_exit = usage.ru_oublock * 512
    finally:
        if hub is not None and hub.returncode is None:
            hub.kill()
            hub.wait()
    acked = result["acked"]
    print(json.dumps({
        "terminals": terminals, "rate": rate, "prefilled": prefilled, "acked": acked,
        "at_read": (at_read - before) / acked if acked else float("nan"),
        "through_exit": (through_exit - before) / acked if acked else float("nan"),
        "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"], "data": data,
        "measured_from_ms": measured_from_ms}))


if __name__ == "__main__":
    main()
