#!/usr/bin/python3
"""GenerateRandom's latency alone and while RSA_4096 keys are being made.

    keygen_bench.py [--runs N] [--seconds S] [--creators C] BIN [BIN ...]

For each binary, in turn and RUNS times over (interleaved, so that every
binary sees the same background load of a shared machine), it starts
`BIN serve --dev` on a free loopback port with a fresh data folder and
measures, on one keep-alive connection, the latency of back-to-back
GenerateRandom calls (32 bytes, one SigV4-signed request replayed: kinko
accepts a signed request again inside its 5-minute window):

    alone   for SECONDS, nothing else running;
    busy    for SECONDS while CREATORS clients (boto3, one thread each)
            each create RSA_4096 keys back to back.

It prints, per binary and run, p50/p99/max of both phases, how many
RSA_4096 keys were made during the busy phase, how many GenerateRandom
calls were made in it and how many the server dropped, then the median of each
figure over the runs. Every answer must be 200; a key whose CreateKey
fails ends the benchmark. Timings are printed, never asserted.

The request threads of the server are its default (one per core); the
client is Python, so its own cost (a few tens of microseconds a call) is
in every figure.
"""
import argparse
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import boto3
import botocore.config
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

BODY = b'{"NumberOfBytes": 32}'


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(binary, data):
    port = free_port()
    proc = subprocess.Popen([binary, "serve", "--dev", "--listen", "127.0.0.1:%d" % port,
                             "--data", data], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("keygen_bench: %s did not start" % binary)


def signed_headers(port):
    req = AWSRequest(method="POST", url="http://127.0.0.1:%d/" % port, data=BODY, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "TrentService.GenerateRandom"})
    SigV4Auth(Credentials("test", "test"), "kms", "us-east-1").add_auth(req)
    return {k: req.headers[k] for k in ("Content-Type", "X-Amz-Target", "X-Amz-Date",
                                         "Authorization")}


def latencies(port, seconds):
    """GenerateRandom back to back for `seconds`: the latencies in ms, and
    how many calls the server dropped (closed the connection without an
    answer: a request left waiting past the server's head timeout is
    closed as a slow client). A dropped call counts with the time it
    waited, and the next call opens a new connection."""
    headers = signed_headers(port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out, dropped = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/", BODY, headers)
            resp = conn.getresponse()
            resp.read()
        except (http.client.HTTPException, OSError):
            out.append((time.perf_counter() - t0) * 1000.0)
            dropped += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            continue
        out.append((time.perf_counter() - t0) * 1000.0)
        if resp.status != 200:
            sys.exit("keygen_bench: GenerateRandom answered %d" % resp.status)
    conn.close()
    return out, dropped


def creators(port, n, stop, made, errors):
    def client():
        return boto3.client("kms", endpoint_url="http://127.0.0.1:%d" % port,
                           region_name="us-east-1", aws_access_key_id="test",
                           aws_secret_access_key="test",
                           config=botocore.config.Config(retries={"max_attempts": 1},
                                                         read_timeout=120))

    def body(kms):
        while not stop.is_set():
            try:
                kms.create_key(KeySpec="RSA_4096", KeyUsage="SIGN_VERIFY")
                made.append(1)
            except Exception as e:  # reported after the run
                errors.append(repr(e))
                return
    # boto3's default session makes clients one at a time
    threads = [threading.Thread(target=body, args=(client(),)) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def one_run(binary, seconds, n_creators):
    data = tempfile.mkdtemp(prefix="kinko-keygen-bench.")
    proc, port = start(binary, data)
    try:
        latencies(port, 1.0)  # warm-up
        alone, alone_dropped = latencies(port, seconds)
        stop, made, errors = threading.Event(), [], []
        threads = creators(port, n_creators, stop, made, errors)
        time.sleep(0.5)  # the first CreateKeys are in flight
        busy, busy_dropped = latencies(port, seconds)
        stop.set()
        for t in threads:
            t.join(120)
        if errors:
            sys.exit("keygen_bench: CreateKey failed: %s" % errors[0])
        return {"alone_p50": pct(alone, 50), "alone_p99": pct(alone, 99),
                "alone_max": max(alone), "busy_p50": pct(busy, 50),
                "busy_p99": pct(busy, 99), "busy_max": max(busy), "keys": len(made),
                "calls": len(busy), "dropped": alone_dropped + busy_dropped}
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data, ignore_errors=True)


COLUMNS = ("alone_p50", "alone_p99", "alone_max", "busy_p50", "busy_p99", "busy_max", "keys",
           "calls", "dropped")


def show(label, r):
    print("%-28s " % label + " ".join(
        ("%9.2f" % r[c]) if isinstance(r[c], float) else ("%9d" % r[c]) for c in COLUMNS))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--creators", type=int, default=4)
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    print("ms; busy = while %d clients create RSA_4096 keys; keys = keys made meanwhile"
          % a.creators)
    print("%-28s " % "binary / run" + " ".join("%9s" % c for c in COLUMNS))
    results = {b: [] for b in a.binaries}
    for run in range(a.runs):
        for b in a.binaries:
            r = one_run(b, a.seconds, a.creators)
            results[b].append(r)
            show("%s #%d" % (b[-24:], run + 1), r)
            sys.stdout.flush()
    for b in a.binaries:
        med = {c: statistics.median(r[c] for r in results[b]) for c in COLUMNS}
        show("median %s" % b[-21:], med)


if __name__ == "__main__":
    main()
