#!/usr/bin/python3
"""Encrypt over many keys against Encrypt on one key (docs/PERFORMANCE.md,
"Scale in keys").

    bench/keys_bench.py --kinko BIN [--keys N] [--seconds S] [--data DIR]
                        [--first-args ARGS] [--wait-warm]

Creates N symmetric keys (default 100,000) through the API from 8 client
threads (a data folder given with --data keeps them for the next run),
then signs one Encrypt request of 100 bytes per key (SigV4, valid 5
minutes) and writes two wrk scripts: every request on one key, and each
request on a key drawn at random among the N. Runs, with wrk -t2 -c64:
  1. warm-up: every key in turn (--warmup seconds, default 30), then
     warm: one key, N keys, one key, N keys (S seconds each, default 8);
  2. after a restart: N keys for 3 s at once, then S seconds, then one key;
     with --wait-warm, first waits until the server's start-up pass has
     loaded the key cache (kinko_kms_warm_running 0 in /metrics);
With --restart-only (keys made by an earlier run in --data), only part 2,
--rounds times, alternating --kinko and --base when given: each start
signs the requests first, then starts the binary and runs wrk at once;
--fresh-audit gives each start an empty audit folder (--audit-dir), so
that every start begins with an empty event index.
Prints requests/s, the ratio N keys / one key of each pair, the
server's resident memory (VmRSS) with one key used and with N keys used,
the locked bytes and the key cache's size from /metrics, and how long the
start-up pass took. --first-args passes extra `kinko serve` arguments to
the start of part 1 (e.g. "--warm-keys 0", so that the memory with one key
used is measured before any key is loaded). Everything listens on 127.0.0.1 only
and is stopped at the end.
"""
import argparse
import concurrent.futures
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import boto3
import botocore.config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_requests import DONE_HOOK, lua_string, sign  # noqa: E402

CFG = botocore.config.Config(retries={"max_attempts": 3}, max_pool_connections=16)


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(binary, data, port, metrics_port, extra=()):
    """The same port at each start, so the signed requests stay valid across a restart."""
    p = subprocess.Popen([binary, "serve", "--dev", "--listen", "127.0.0.1:%d" % port,
                          "--data", data,
                          "--log-level", "warn", "--metrics-listen",
                          "127.0.0.1:%d" % metrics_port] + list(extra),
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    if "listening on" not in line:
        p.kill()
        sys.exit("kinko did not start: %r" % line)
    return p, line.split("listening on ")[1].split()[0]


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait()


def make_keys(endpoint, n, path):
    have = json.load(open(path)) if os.path.exists(path) else []
    local = threading.local()

    def one(_):
        if not hasattr(local, "c"):
            local.c = boto3.session.Session().client("kms", endpoint_url=endpoint, region_name="us-east-1",
                                   aws_access_key_id="test", aws_secret_access_key="test",
                                   config=CFG)
        return local.c.create_key()["KeyMetadata"]["KeyId"]
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        have += list(ex.map(one, range(max(0, n - len(have)))))
    with open(path, "w") as f:
        json.dump(have, f)
    print("bench: %d keys (%.0f s to create the missing ones)" % (len(have),
                                                                 time.monotonic() - t0))
    return have[:n]


def write_script(path, endpoint, keys, walk=False):
    """One signed Encrypt per key, in a data file beside the script (a Lua
    chunk holds at most 65,536 constants); each wrk request picks one at
    random."""
    plaintext = "QUFB" * 33 + "QQ=="  # 100 bytes, base64
    with open(path + ".tsv", "w") as f:
        for k in keys:
            body = json.dumps({"KeyId": k, "Plaintext": plaintext})
            h = sign(endpoint, "Encrypt", body)
            f.write("%s\t%s\t%s\n" % (body, h["X-Amz-Date"], h["Authorization"]))
    host = endpoint.split("://", 1)[1].rstrip("/")
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write('wrk.headers["Content-Type"] = "application/x-amz-json-1.1"\n')
        f.write('wrk.headers["X-Amz-Target"] = "TrentService.Encrypt"\n')
        f.write('wrk.headers["Host"] = %s\n' % lua_string(host))
        f.write("local reqs = {}\n"
                "for line in io.lines(%s) do\n"
                '  local b, d, a = line:match("^(.-)\\t(.-)\\t(.*)$")\n'
                "  reqs[#reqs + 1] = {b, d, a}\n"
                "end\n" % lua_string(path + ".tsv"))
        # walk: each wrk thread goes through the keys in turn from a random start.
        f.write("local i = math.random(#reqs)\n")
        f.write("request = function()\n"
                + ("  i = i % #reqs + 1\n  local r = reqs[i]\n" if walk else
                   "  local r = reqs[math.random(#reqs)]\n"))
        f.write(
                '  wrk.headers["X-Amz-Date"] = r[2]\n'
                '  wrk.headers["Authorization"] = r[3]\n'
                '  return wrk.format("POST", "/", nil, r[1])\n'
                "end\n")
        f.write(DONE_HOOK)


def wrk(script, endpoint, seconds):
    out = subprocess.run(["wrk", "-t2", "-c64", "-d%ds" % seconds, "--latency", "-s", script,
                          endpoint + "/"], check=True, capture_output=True, text=True).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH ")), "")
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    if not f or int(f["non2xx"]) != 0 or int(f["read_err"]) != 0:
        sys.exit("wrk failed or got errors:\n" + out)
    return float(f["rps"]), int(f["p50_us"]), int(f["p99_us"])


def rss_mib(p):
    with open("/proc/%d/status" % p.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def metric(metrics_port, name):
    """One value from /metrics; -1 if the server has no such metric."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port).read().decode()
    m = re.search(r"^%s ([0-9.]+)" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else -1


def locked(metrics_port):
    return int(metric(metrics_port, "kinko_secret_locked_bytes"))


def wait_warm(metrics_port, limit=300):
    """Seconds until the start-up pass ended (-1: no pass in this server)."""
    t0 = time.monotonic()
    while metric(metrics_port, "kinko_kms_warm_running") == 1:
        if time.monotonic() - t0 > limit:
            sys.exit("the key cache was still loading after %d s" % limit)
        time.sleep(0.05)
    return metric(metrics_port, "kinko_kms_warm_seconds")


def restart_rows(a, data, keys):
    """Part 2 only, base and new interleaved: one row per start."""
    mport, port = free_port(), free_port()
    endpoint = "http://127.0.0.1:%d" % port
    work = os.path.join(data, "bench")
    one, many = os.path.join(work, "one.lua"), os.path.join(work, "many.lua")
    bins = [("new", a.kinko)] + ([("base", a.base)] if a.base else [])
    print("| binary | round | start s | %d keys (3 s) | %d keys (%d s) | one key (%d s) | "
          "%d keys (%d s) | ratios |" % (len(keys), len(keys), a.seconds, a.seconds, len(keys),
                                         a.seconds))
    print("|---|---|---|---|---|---|---|---|")
    for r in range(1, a.rounds + 1):
        for name, binary in (bins if r % 2 else bins[::-1]):
            write_script(one, endpoint, keys[:1])
            write_script(many, endpoint, keys)
            extra = []
            if a.fresh_audit:
                extra = ["--audit-dir", tempfile.mkdtemp(prefix="audit-", dir=work)]
            t0 = time.monotonic()
            p, _ = start(binary, data, port, mport, extra)
            up = time.monotonic() - t0
            try:
                f = wrk(many, endpoint, 3)
                m1 = wrk(many, endpoint, a.seconds)
                o = wrk(one, endpoint, a.seconds)
                m2 = wrk(many, endpoint, a.seconds)
            finally:
                stop(p)
            print("| %s | %d | %.2f | %.0f | %.0f | %.0f | %.0f | %.2f, %.2f, %.2f |" % (
                name, r, up, f[0], m1[0], o[0], m2[0], f[0] / o[0], m1[0] / o[0], m2[0] / o[0]),
                flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kinko", required=True)
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--data")
    ap.add_argument("--warmup", type=int, default=30,
                    help="seconds of using every key in turn before the warm runs")
    ap.add_argument("--first-args", default="",
                    help="extra kinko serve arguments for the warm runs' start")
    ap.add_argument("--wait-warm", action="store_true",
                    help="after the restart, wait for the key cache's start-up pass")
    ap.add_argument("--restart-only", action="store_true",
                    help="only the runs right after a start, on keys an earlier run made")
    ap.add_argument("--base", help="with --restart-only: a second binary, run alternately")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fresh-audit", action="store_true",
                    help="with --restart-only: an empty audit folder at each start")
    a = ap.parse_args()
    if a.restart_only:
        if not a.data:
            sys.exit("--restart-only needs --data (a folder an earlier run made keys in)")
        keys = json.load(open(os.path.join(a.data, "bench", "keys.json")))[:a.keys]
        random.shuffle(keys)
        restart_rows(a, a.data, keys)
        return
    data = a.data or tempfile.mkdtemp(prefix="kinko-keys-")
    work = os.path.join(data, "bench")
    os.makedirs(work, exist_ok=True)
    mport, port = free_port(), free_port()
    p, endpoint = start(a.kinko, data, port, mport)
    try:
        keys = make_keys(endpoint, a.keys, os.path.join(work, "keys.json"))
        t0 = time.monotonic()
        stop(p)
        print("stopped in %.2f s" % (time.monotonic() - t0))
        p, endpoint = start(a.kinko, data, port, mport, a.first_args.split())
        random.shuffle(keys)
        one, many = os.path.join(work, "one.lua"), os.path.join(work, "many.lua")
        write_script(one, endpoint, keys[:1])
        write_script(many, endpoint, keys)
        walk = os.path.join(work, "walk.lua")
        write_script(walk, endpoint, keys, walk=True)
        base_rss = rss_mib(p)
        # Warm-up: every key used at least once (a random draw needs ~12 draws a key for that).
        w = wrk(walk, endpoint, a.warmup)
        print("warm-up: every key in turn for %d s, %.0f req/s" % (a.warmup, w[0]))
        print("| run | one key req/s | %d keys req/s | ratio | p99 µs one / many |" % len(keys))
        print("|---|---|---|---|---|")
        for r in (1, 2):
            o = wrk(one, endpoint, a.seconds)
            m = wrk(many, endpoint, a.seconds)
            print("| warm %d | %.0f | %.0f | %.2f | %d / %d |" % (r, o[0], m[0], m[0] / o[0],
                                                              o[2], m[2]), flush=True)
        cached = metric(mport, "kinko_kms_cached_keys")
        rss = rss_mib(p)
        print("RSS: %d MiB after start, %d MiB with %d keys used; locked %d bytes; "
              "%d keys cached%s" % (base_rss, rss, len(keys), locked(mport), cached,
                                    ", %.1f KiB a cached key" % ((rss - base_rss) * 1024 / cached)
                                    if cached > 0 else ""))
        # Signatures last 5 minutes: sign again just before the restart.
        t0 = time.monotonic()
        write_script(one, endpoint, keys[:1])
        write_script(many, endpoint, keys)
        print("signed the requests again in %.1f s" % (time.monotonic() - t0))
        t0 = time.monotonic()
        stop(p)
        print("stopped in %.2f s" % (time.monotonic() - t0))
        t0 = time.monotonic()
        p, endpoint = start(a.kinko, data, port, mport)
        print("restarted in %.2f s" % (time.monotonic() - t0))
        if a.wait_warm:
            secs = wait_warm(mport)
            print("key cache loaded by the start-up pass in %.2f s (%.2f s after the "
                  "restart began); %d keys cached, RSS %d MiB" % (
                      secs, time.monotonic() - t0, metric(mport, "kinko_kms_cached_keys"),
                      rss_mib(p)))
        first = wrk(many, endpoint, 3)
        after = wrk(many, endpoint, a.seconds)
        o = wrk(one, endpoint, a.seconds)
        print("after a restart: %d keys %.0f req/s in the first 3 s, %.0f req/s next "
              "(one key %.0f req/s: ratio %.2f, %.2f)" % (len(keys), first[0], after[0], o[0],
                                                         first[0] / o[0], after[0] / o[0]))
        if metric(mport, "kinko_kms_warm_seconds") >= 0:
            print("start-up pass: %.2f s; keys %s" % (
                metric(mport, "kinko_kms_warm_seconds"),
                ", ".join("%s %d" % (r, metric(mport, 'kinko_kms_warm_keys{result="%s"}' % r))
                          for r in ("loaded", "already_cached", "changed", "failed"))))
    finally:
        stop(p)
    print("data folder: %s" % data)


if __name__ == "__main__":
    main()
