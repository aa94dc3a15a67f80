#!/usr/bin/python3
"""LookupEvents answers of two kinko binaries over the same trail
(docs/PERFORMANCE.md, "The event index's own cost").

    bench/lookup_compare.py BASE_BIN NEW_BIN [WORK_DIR]

Writes a trail with NEW_BIN (keys, Encrypt, Decrypt, DescribeKey,
ListKeys, GenerateDataKey, a failing call, a secret, a key in another
region, a tag), copies the data folder without its event index, and runs
the same LookupEvents calls on both: 15 attribute values, each paged
with MaxResults 7 and 50 and once with an EndTime. Each server indexes
the trail its own way (BASE_BIN builds its index by parsing the trail at
start, NEW_BIN kept its own while the trail was written). The lookups'
own events differ (random ids) and are left out; every other event id
must come back in the same order. Exits 1 on a difference.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import boto3
import botocore.config

CFG = botocore.config.Config(retries={"max_attempts": 1})


def start(binary, data):
    p = subprocess.Popen([binary, "serve", "--dev", "--listen", "127.0.0.1:0", "--data", data,
                          "--log-level", "warn"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    assert "listening on" in line, line
    return p, line.split("listening on ")[1].split()[0]


def cl(ep, svc, region="us-east-1"):
    return boto3.client(svc, endpoint_url=ep, region_name=region, aws_access_key_id="test",
                        aws_secret_access_key="test", config=CFG)


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)


def fill(binary, data):
    p, ep = start(binary, data)
    kms, sm = cl(ep, "kms"), cl(ep, "secretsmanager")
    keys = [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(4)]
    for i in range(120):
        k = keys[i % 4]
        b = kms.encrypt(KeyId=k, Plaintext=b"x")["CiphertextBlob"]
        if i % 3 == 0:
            kms.decrypt(CiphertextBlob=b)
        if i % 5 == 0:
            kms.describe_key(KeyId=k)
        if i % 7 == 0:
            kms.list_keys()
        if i % 11 == 0:
            try:
                kms.describe_key(KeyId="alias/missing")  # a failed call: NotFoundException
            except kms.exceptions.NotFoundException:
                pass
        if i % 13 == 0:
            kms.generate_data_key(KeyId=k, KeySpec="AES_256")
    sm.create_secret(Name="s1", SecretString="v")
    sm.get_secret_value(SecretId="s1")
    cl(ep, "kms", "eu-west-1").create_key()
    kms.tag_resource(KeyId=keys[0], Tags=[{"TagKey": "a", "TagValue": "b"}])
    stop(p)
    # The lookups' own events must fall in later seconds than the trail's,
    # or a lookup bounded by EndTime would mix them in differently.
    time.sleep(2)
    return keys


def lookups(binary, data, keys):
    p, ep = start(binary, data)
    ct = cl(ep, "cloudtrail")
    out = {}
    first = ct.lookup_events(MaxResults=50)["Events"]
    early = first[-1]["EventId"]
    t_mid = first[len(first) // 2]["EventTime"]
    attrs = [("EventName", "Encrypt"), ("EventName", "Decrypt"), ("EventName", "CreateKey"),
             ("EventSource", "kms.amazonaws.com"), ("EventSource", "secretsmanager.amazonaws.com"),
             ("ReadOnly", "true"), ("ReadOnly", "false"), ("Username", "root"),
             ("ResourceType", "AWS::KMS::Key"), ("ResourceName", keys[1]),
             ("ResourceName", "arn:aws:kms:us-east-1:000000000000:key/" + keys[2]),
             ("EventId", early), ("AccessKeyId", "test"), ("EventName", "Nope"), (None, None)]
    for a, v in attrs:
        for mr in (7, 50):
            kw = {"MaxResults": mr}
            if a:
                kw["LookupAttributes"] = [{"AttributeKey": a, "AttributeValue": v}]
            ids, tok, pages = [], None, 0
            while pages < 60:
                if tok:
                    kw["NextToken"] = tok
                r = ct.lookup_events(**kw)
                ids += [e["EventId"] for e in r["Events"]]
                tok = r.get("NextToken")
                pages += 1
                if not tok:
                    break
            out["%s=%s/%d" % (a, v, mr)] = ids
        kw2 = {"MaxResults": 50, "EndTime": t_mid}
        if a:
            kw2["LookupAttributes"] = [{"AttributeKey": a, "AttributeValue": v}]
        out["%s=%s/end" % (a, v)] = [e["EventId"] for e in ct.lookup_events(**kw2)["Events"]]
    stop(p)
    return out


def main():
    base, new = sys.argv[1], sys.argv[2]
    work = sys.argv[3] if len(sys.argv) > 3 else tempfile.mkdtemp(prefix="kinko-lookup-compare-")
    os.makedirs(work, exist_ok=True)
    d_new, d_base = os.path.join(work, "new"), os.path.join(work, "base")
    keys = fill(new, d_new)
    shutil.copytree(d_new, d_base)
    for name in os.listdir(os.path.join(d_base, "audit")):
        if name.startswith("kinko-index.db"):
            os.remove(os.path.join(d_base, "audit", name))
    a, b = lookups(base, d_base, keys), lookups(new, d_new, keys)
    common = set(x for v in a.values() for x in v) & set(x for v in b.values() for x in v)
    bad = 0
    for k in a:
        fa, fb = [x for x in a[k] if x in common], [x for x in b[k] if x in common]
        same = fa == fb and len(a[k]) == len(b[k])
        bad += not same
        print("%s %s: %d events" % ("same" if same else "DIFFERENT", k, len(a[k])))
    print("lookups that differ: %d of %d" % (bad, len(a)))
    if len(sys.argv) <= 3:
        shutil.rmtree(work)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
