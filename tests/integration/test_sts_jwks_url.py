"""AssumeRoleWithWebIdentity with the provider's key set fetched over
HTTPS (jwks_url, jwks_ca_file): a local HTTPS server (Python's http.server
behind ssl, its certificate made with the openssl command in a temporary
folder) serves the JWKS; a token signed by its key gets credentials, a
rotated key (a new kid) is picked up, and with the server down the keys
already fetched keep working. TLS is verified: a provider without the CA
file fetches nothing."""
import http.server
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from helpers import allow, private_server
from test_sts_web_identity import anon, claims, code, rsa_jwk, sign

A = "333333333333"
ISSUER = "https://oidc.example.test/cluster-1"
PROVIDER = "oidc.example.test/cluster-1"
UNTRUSTED = "https://oidc.example.test/untrusted"
KEY_1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_3 = rsa.generate_private_key(public_exponent=65537, key_size=2048)

SERVED = {"jwks": {"keys": [rsa_jwk(KEY_1, "kid-1")]}, "hits": 0}


class JwksHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        SERVED["hits"] += 1
        body = json.dumps(SERVED["jwks"]).encode()
        self.send_response(200 if self.path == "/keys" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def make_cert(d):
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def https():
    d = tempfile.mkdtemp(prefix="kinko-jwks-https-")
    cert, key = make_cert(d)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), JwksHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield {"url": "https://127.0.0.1:%d/keys" % httpd.server_address[1], "ca": cert,
           "httpd": httpd}
    httpd.shutdown()
    httpd.server_close()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def srv(https):
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::%s:oidc-provider/%s" % (A, PROVIDER)},
         "Action": "sts:AssumeRoleWithWebIdentity",
         "Condition": {"StringEquals": {PROVIDER + ":aud": "sts.amazonaws.com"}}}]}
    config = {
        "accounts": [{
            "id": A,
            "root_access_keys": [{"access_key_id": "AKIAROOTJWKSURL", "secret_access_key": "root-j"}],
            "roles": [{"name": "k8s-app", "trust_policy": trust,
                       "policies": [allow(["kms:Encrypt", "kms:Decrypt"])]}],
        }],
        "oidc_providers": [
            {"account": A, "url": ISSUER, "client_ids": ["sts.amazonaws.com"],
             "jwks_url": https["url"], "jwks_ca_file": https["ca"], "jwks_refresh_seconds": 3600},
            {"account": A, "url": UNTRUSTED, "client_ids": ["sts.amazonaws.com"],
             "jwks_url": https["url"]},
        ],
    }
    yield from private_server(config, "kinko-jwks-url-")


def assume(srv, token):
    return anon(srv).assume_role_with_web_identity(
        RoleArn="arn:aws:iam::%s:role/k8s-app" % A, RoleSessionName="pod", WebIdentityToken=token)


def log_text(srv):
    with open(srv.log_path, errors="replace") as f:
        return f.read()


def encrypts(srv, r):
    creds = r["Credentials"]
    kms = srv.client("kms", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                     token=creds["SessionToken"])
    root = srv.client("kms", key="AKIAROOTJWKSURL", secret="root-j")
    key = root.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"from a web identity")["CiphertextBlob"]
    return kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from a web identity"


def test_jwks_from_https_rotation_and_outage(srv, https):
    # Fetched at start: a token signed by the served key works.
    r = assume(srv, sign(claims(iss=ISSUER), kid="kid-1", key=KEY_1))
    assert encrypts(srv, r)
    hits = SERVED["hits"]

    # TLS is verified: the provider without the CA file has no keys, and says why.
    with pytest.raises(ClientError) as e:
        assume(srv, sign(claims(iss=UNTRUSTED), kid="kid-1", key=KEY_1))
    assert code(e) == "InvalidIdentityToken"
    assert "JWKS of arn:aws:iam::%s:oidc-provider/oidc.example.test/untrusted" % A in log_text(srv)

    # The provider rotates: a token with the new kid makes kinko fetch once more.
    SERVED["jwks"] = {"keys": [rsa_jwk(KEY_2, "kid-2")]}
    r = assume(srv, sign(claims(iss=ISSUER), kid="kid-2", key=KEY_2))
    assert encrypts(srv, r)
    assert SERVED["hits"] == hits + 1

    # Unknown kids do not make kinko fetch again at once (rate-limited).
    with pytest.raises(ClientError) as e:
        assume(srv, sign(claims(iss=ISSUER), kid="kid-9", key=KEY_3))
    assert code(e) == "InvalidIdentityToken"
    assert SERVED["hits"] == hits + 1

    # The server goes away: the keys fetched last keep working; a fetch that
    # fails (asked for by an unknown kid, past the rate limit) is logged and
    # keeps them.
    https["httpd"].shutdown()
    https["httpd"].server_close()
    time.sleep(10.5)
    with pytest.raises(ClientError) as e:
        assume(srv, sign(claims(iss=ISSUER), kid="kid-3", key=KEY_3))
    assert code(e) == "InvalidIdentityToken"
    failed = [line for line in log_text(srv).splitlines()
              if "oidc-provider/%s from" % PROVIDER in line and "the last good keys stay" in line]
    assert failed, log_text(srv)[-2000:]
    r = assume(srv, sign(claims(iss=ISSUER), kid="kid-2", key=KEY_2))
    assert encrypts(srv, r)


@pytest.mark.parametrize("provider,want", [
    ({"jwks_url": "http://127.0.0.1:1/keys"}, "jwks_url must be an https:// URL"),
    ({"jwks_url": "https://127.0.0.1:1/keys", "jwks_file": "x.json"},
     'give either "jwks_file" or "jwks_url"'),
    ({}, 'give either "jwks_file" or "jwks_url"'),
    ({"jwks_file": "x.json", "jwks_ca_file": "ca.pem"}, "go with jwks_url"),
    ({"jwks_url": "https://127.0.0.1:1/keys", "jwks_refresh_seconds": 5},
     '"oidc_providers[0].jwks_refresh_seconds" must be from 60 to 86400, not 5'),
])
def test_jwks_url_configuration_refused(tmp_path, provider, want):
    from test_config_errors import serve
    p = {"account": A, "url": ISSUER, "client_ids": ["sts.amazonaws.com"]}
    p.update(provider)
    r, data = serve(tmp_path, {"oidc_providers": [p]})
    assert r.returncode != 0
    assert want in r.stderr, r.stderr
