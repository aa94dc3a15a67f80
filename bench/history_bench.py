#!/usr/bin/python3
"""Start-up time and LookupEvents over a long audit trail (docs/PERFORMANCE.md,
"Scale in history").

    bench/history_bench.py --kinko BIN [--base BIN] [--events N] [--data DIR]

Writes the trail through the real API: a few events on their own keys
first (CreateKey, Encrypt, ScheduleKeyDeletion of keys that are then never
used again, so that a lookup for them must reach the trail's start), then
wrk replays one signed Encrypt request (bench/make_requests.py) over 64
keep-alive connections until the trail holds N events. With --data, an
existing folder is reused (its trail is kept; state.json says what the
seeding made).

Then, for each binary (--base first, if given, then --kinko):
  - the time from the process start to its "listening on" line, twice
    (the first start of a binary may build its own files);
  - LookupEvents (5 calls each; --base-runs for --base) by EventName (CreateKey: deep in the trail), by
    ResourceName (a key used only at the start), by Username (root: every
    event), by EventId (an early event) and with no attribute: the median
    of 5 calls in milliseconds, and the number of events returned;
  - the server's peak resident memory (VmHWM) after the lookups.
Everything listens on 127.0.0.1 only and is stopped at the end.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import boto3
import botocore.config

HERE = os.path.dirname(os.path.abspath(__file__))
CFG = botocore.config.Config(retries={"max_attempts": 1}, read_timeout=600)


def start(binary, data, extra=()):
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "serve", "--dev", "--listen", "127.0.0.1:0", "--data", data,
                          "--log-level", "warn", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    took = time.monotonic() - t0
    if "listening on" not in line:
        p.kill()
        sys.exit("kinko did not start: %r" % line)
    return p, line.split("listening on ")[1].split()[0], took


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=600)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def client(endpoint, service="kms"):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test", config=CFG)


def trail_events(data):
    """Records in the trail (every line of every log file)."""
    n = 0
    folder = os.path.join(data, "audit")
    for name in os.listdir(folder):
        if name.startswith("kinko-audit-") and name.endswith(".jsonl"):
            with open(os.path.join(folder, name), "rb") as f:
                while True:
                    b = f.read(1 << 24)
                    if not b:
                        break
                    n += b.count(b"\n")
    return n


def seed(endpoint):
    kms = client(endpoint)
    rare = kms.create_key(Description="history bench: used only at the start")["KeyMetadata"]
    for i in range(10):
        kms.encrypt(KeyId=rare["KeyId"], Plaintext=b"%d" % i)
    gone = kms.create_key()["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=gone["KeyId"], PendingWindowInDays=7)
    ct = client(endpoint, "cloudtrail")
    first = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName",
                                                "AttributeValue": rare["KeyId"]}],
                             MaxResults=1)["Events"][0]
    return {"rare_key": rare["KeyId"], "early_event": first["EventId"]}


def fill(endpoint, data, want, work):
    """wrk runs of 5 to 60 s (a signature lasts 5 minutes), sized at 20,000 calls/s."""
    while trail_events(data) < want:
        seconds = max(5, min(60, (want - trail_events(data)) // 20000 + 1))
        subprocess.run([sys.executable, os.path.join(HERE, "make_requests.py"), "--endpoint",
                        endpoint, "--out", work], check=True, stdout=subprocess.DEVNULL)
        url = endpoint + "/"
        subprocess.run(["wrk", "-t2", "-c64", "-d%ds" % seconds, "-s", os.path.join(work, "Encrypt.lua"),
                        url], check=True, stdout=subprocess.DEVNULL)
        print("bench: the trail holds %d records" % trail_events(data), flush=True)


def timed(fn, runs=5):
    times, n = [], 0
    for _ in range(runs):
        t0 = time.monotonic()
        n = len(fn()["Events"])
        times.append((time.monotonic() - t0) * 1000)
    return statistics.median(times), n


def lookups(endpoint, state, runs):
    ct = client(endpoint, "cloudtrail")

    def by(key, value):
        return lambda: ct.lookup_events(LookupAttributes=[{"AttributeKey": key,
                                                           "AttributeValue": value}])
    rows = [("EventName=CreateKey", by("EventName", "CreateKey")),
            ("ResourceName=<key used at the start>", by("ResourceName", state["rare_key"])),
            ("Username=root", by("Username", "root")),
            ("EventId=<an early event>", by("EventId", state["early_event"])),
            ("(no attribute)", lambda: ct.lookup_events())]
    return [(name,) + timed(fn, runs) for name, fn in rows]


def peak_kib(p):
    with open("/proc/%d/status" % p.pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def measure(label, binary, data, state, runs):
    starts = []
    for _ in range(2):
        p, endpoint, took = start(binary, data)
        starts.append(took)
        stop(p)
    p, endpoint, took = start(binary, data)
    rows = lookups(endpoint, state, runs)
    kib = peak_kib(p)
    stop(p)
    print("\n%s (%s), trail of %d records" % (label, binary, trail_events(data)))
    print("start-up: %s s" % ", ".join("%.2f" % s for s in starts + [took]))
    print("| lookup | median ms (%d calls) | events |" % runs)
    print("|---|---|---|")
    for name, ms, n in rows:
        print("| %s | %.1f | %d |" % (name, ms, n))
    print("peak RSS: %d MiB" % (kib // 1024), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kinko", required=True)
    ap.add_argument("--base", help="a binary to measure first on the same trail")
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--data", help="reuse this data folder (created if missing)")
    ap.add_argument("--base-runs", type=int, default=1,
                    help="calls per lookup for --base (a scan of the whole trail each)")
    a = ap.parse_args()
    data = a.data or tempfile.mkdtemp(prefix="kinko-history-")
    work = os.path.join(data, "bench")
    os.makedirs(work, exist_ok=True)
    state_path = os.path.join(work, "history.json")
    p, endpoint, _ = start(a.kinko, data)
    try:
        if not os.path.exists(state_path):
            with open(state_path, "w") as f:
                json.dump(seed(endpoint), f)
        fill(endpoint, data, a.events, work)
    finally:
        stop(p)
    state = json.load(open(state_path))
    if a.base:
        measure("base", a.base, data, state, a.base_runs)
    measure("kinko", a.kinko, data, state, 5)
    print("data folder: %s" % data)


if __name__ == "__main__":
    main()
