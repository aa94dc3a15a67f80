"""One signed request as a wrk Lua script, for the bench scripts.

    import wrkscript
    wrkscript.write(work, run, url, body, headers, service="kms",
                    creds=("test", "test"), ctx=None)

Signs the POST of body (a JSON text) to url with SigV4 for service in
us-east-1, sends it once (it must be answered 200: a signing problem shows
here, not as a wall of errors in wrk), and writes WORK/RUN.lua: the method,
body and signed headers (not Host or Content-Length, which wrk sets), and a
done() hook that prints one line "BENCH requests=... rps=... p50_us=...
p99_us=... non2xx=..." (non2xx counts every failed request). A signature
stays valid for 5 minutes, and kinko accepts a signed request more than
once inside that window, so wrk replays the one request.
"""
import json
import os
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

DONE_HOOK = '''
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
            + summary.errors.write + summary.errors.timeout
  io.write(string.format("BENCH requests=%d rps=%.1f p50_us=%d p99_us=%d non2xx=%d\\n",
    summary.requests, summary.requests / secs, latency:percentile(50),
    latency:percentile(99), bad))
end'''

KMS_HEADERS = {"Content-Type": "application/x-amz-json-1.1"}


def kms_target(op):
    """The headers of a KMS JSON request for operation op."""
    return dict(KMS_HEADERS, **{"X-Amz-Target": "TrentService." + op})


def write(work, run, url, body, headers, service="kms", creds=("test", "test"), ctx=None):
    req = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials(*creds), service, "us-east-1").add_auth(req)
    signed = dict(req.headers.items())
    check = urllib.request.Request(url, data=body.encode(), headers=signed, method="POST")
    with urllib.request.urlopen(check, context=ctx) as r:
        assert r.status == 200, (run, r.status)
    lua = ['wrk.method = "POST"', "wrk.body = %s" % json.dumps(body)]
    for k, v in signed.items():
        if k.lower() not in ("host", "content-length"):
            lua.append("wrk.headers[%s] = %s" % (json.dumps(k), json.dumps(v)))
    lua.append(DONE_HOOK)
    with open(os.path.join(work, run + ".lua"), "w") as f:
        f.write("\n".join(lua) + "\n")
