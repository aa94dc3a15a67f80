#!/usr/bin/python3
"""CreateAlias as the number of aliases grows (docs/PERFORMANCE.md, "Scale in
keys").

    bench/alias_bench.py --kinko BIN [--aliases N] [--threads T]

Starts kinko in dev mode (no quotas) on a fresh data folder, and creates N
aliases (default 10,000), each on a new key, as AWS users do (CreateKey,
then CreateAlias on it), from T client threads (default 4). Every 1/5 of
the way it prints the CreateAlias rate over the last window (aliases/s
and the median CreateAlias latency), so the rate at 10,000 aliases can be
set against the rate at the start. Listens on 127.0.0.1 only and stops
everything at the end.
"""
import argparse
import concurrent.futures
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import boto3
import botocore.config

CFG = botocore.config.Config(retries={"max_attempts": 1}, max_pool_connections=16)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kinko", required=True)
    ap.add_argument("--aliases", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    data = tempfile.mkdtemp(prefix="kinko-alias-")
    p = subprocess.Popen([a.kinko, "serve", "--dev", "--listen", "127.0.0.1:0", "--data", data,
                          "--log-level", "warn"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    if "listening on" not in line:
        p.kill()
        sys.exit("kinko did not start: %r" % line)
    endpoint = line.split("listening on ")[1].split()[0]
    local = threading.local()

    def kms():
        if not hasattr(local, "c"):
            local.c = boto3.session.Session().client("kms", endpoint_url=endpoint, region_name="us-east-1",
                                   aws_access_key_id="test", aws_secret_access_key="test",
                                   config=CFG)
        return local.c

    def one(i):
        c = kms()
        key = c.create_key()["KeyMetadata"]["KeyId"]
        t0 = time.monotonic()
        c.create_alias(AliasName="alias/bench-%06d" % i, TargetKeyId=key)
        return time.monotonic() - t0

    step = max(1, a.aliases // 5)
    print("| aliases | CreateAlias/s in the window | median CreateAlias ms |")
    print("|---|---|---|")
    try:
        with concurrent.futures.ThreadPoolExecutor(a.threads) as ex:
            for start in range(0, a.aliases, step):
                t0 = time.monotonic()
                lat = list(ex.map(one, range(start, min(a.aliases, start + step))))
                took = time.monotonic() - t0
                # Each window also makes its keys: the alias rate is of CreateAlias time alone.
                print("| %d-%d | %.0f | %.1f |" % (start, start + len(lat),
                                                  len(lat) * a.threads / sum(lat),
                                                  statistics.median(lat) * 1000), flush=True)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait()
        subprocess.run(["rm", "-rf", data])


if __name__ == "__main__":
    main()
