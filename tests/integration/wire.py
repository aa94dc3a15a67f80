"""The wire-test engine: raw HTTP requests from files, signed when they are
sent, compared with the expected status, headers and body beside them.

A case is a pair of files in a suite folder of tests/wire/:

    NN-name.request    the request as it goes on the wire, unsigned
    NN-name.response   the expected status line, headers and body

The cases of a suite run in file-name order against one server, and values
captured from one response ({{name=uuid}}) can be used by the later
requests and responses of the same suite ({{$name}}). docs/TESTING.md
("Wire tests") describes the format; this module implements it.

Run alone, it sends one suite or case to a running server and prints what
came back, which is how a new .response file is written:

    /usr/bin/python3 tests/integration/wire.py http://127.0.0.1:4599 tests/wire/kms
"""
import datetime
import hashlib
import hmac
import json
import os
import re
import socket
import sys
import urllib.parse
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WIRE_DIR = os.path.join(ROOT, "tests", "wire")

# The dev server's credentials (kinko serve --dev).
DEV_ACCESS_KEY = "test"
DEV_SECRET_KEY = "test"
DEFAULT_REGION = "us-east-1"

# What a {{kind}} placeholder matches inside a string.
PATTERNS = {
    "*": r".*?",
    "uuid": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
}
# Kinds that are a character class: {{hex}} is one or more, {{hex:8}} exactly 8.
CLASSES = {
    "b64": r"[A-Za-z0-9+/=]",
    "hex": r"[0-9a-f]",
    "int": r"[0-9]",
    "alnum": r"[A-Za-z0-9]",
    "word": r"[A-Za-z0-9_-]",
}


def _pattern(kind):
    """The regex of a placeholder kind, or None if there is no such kind."""
    if kind in PATTERNS:
        return PATTERNS[kind]
    base, colon, count = kind.partition(":")
    if base not in CLASSES or (colon and not count.isdigit()):
        return None
    return CLASSES[base] + ("{%s}" % count if colon else "+")
TOKEN = re.compile(r"\{\{([^{}]*)\}\}")


class WireError(Exception):
    """A case file that cannot be read, or a response that does not match."""


# ---- cases ----------------------------------------------------------------------

def suites():
    """[(suite name, [case path without extension, ...]), ...], sorted."""
    out = []
    for name in sorted(os.listdir(WIRE_DIR)):
        d = os.path.join(WIRE_DIR, name)
        if not os.path.isdir(d):
            continue
        cases = sorted(os.path.join(d, f[:-len(".request")]) for f in os.listdir(d)
                       if f.endswith(".request"))
        out.append((name, cases))
    return out


def case_ids():
    """Every case as "suite/name", in running order."""
    return ["%s/%s" % (s, os.path.basename(c)) for s, cases in suites() for c in cases]


def substitute(text, variables):
    """Replaces {{$name}} (a captured variable) and {{host}} in request text."""
    def one(m):
        tok = m.group(1)
        if tok.startswith("$"):
            if tok[1:] not in variables:
                raise WireError("variable %s is not set (did an earlier case of the suite fail?)" % tok)
            return variables[tok[1:]]
        if tok in variables:
            return variables[tok]
        raise WireError("unknown placeholder {{%s}} in a request" % tok)
    return TOKEN.sub(one, text)


def read_request(path, variables):
    """Parses a .request file: (directives, method, target, [(name, value)], body bytes)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    directives = {}
    lines = text.split("\n")
    while lines and lines[0].startswith("#"):
        line = lines.pop(0)
        m = re.match(r"#\s*@([a-z-]+):\s*(.*?)\s*$", line)
        if m:
            directives[m.group(1)] = m.group(2)
    text = substitute("\n".join(lines), variables)
    head, sep, body = text.partition("\n\n")
    if not sep:
        head, body = text.rstrip("\n"), ""
    hlines = head.split("\n")
    parts = hlines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise WireError("%s: the first line is not a request line: %r" % (path, hlines[0]))
    headers = []
    for line in hlines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise WireError("%s: not a header: %r" % (path, line))
        headers.append((name.strip(), value.strip()))
    # A body ends at the end of the file; one trailing newline is the file's, not the body's.
    if body.endswith("\n") and directives.get("keep-newline") != "yes":
        body = body[:-1]
    return directives, parts[0], parts[1], headers, body.encode("utf-8")


def read_response(path, variables):
    """Parses a .response file: (status, [(name, value template)], body template text)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    text = "\n".join(lines)
    head, _, body = text.partition("\n\n")
    hlines = head.strip("\n").split("\n")
    m = re.match(r"^(?:HTTP/1\.1 )?(\d{3})\b", hlines[0])
    if not m:
        raise WireError("%s: the first line is not a status: %r" % (path, hlines[0]))
    headers = []
    for line in hlines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return int(m.group(1)), headers, body.strip()


# ---- SigV4 ----------------------------------------------------------------------

def _uri_encode(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def _canonical_query(query):
    pairs = []
    for part in query.split("&") if query else []:
        k, _, v = part.partition("=")
        pairs.append((_uri_encode(urllib.parse.unquote(k)), _uri_encode(urllib.parse.unquote(v))))
    return "&".join("%s=%s" % kv for kv in sorted(pairs))


def _hmac(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def sign(method, target, headers, body, access_key, secret_key, region, service, when):
    """AWS Signature Version 4 over the given headers (and X-Amz-Date);
    returns the values of the X-Amz-Date and Authorization headers."""
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    path, _, query = target.partition("?")
    signed = {"x-amz-date": amz_date}
    for name, value in headers:
        key = name.lower()
        value = " ".join(value.split())
        signed[key] = signed[key] + "," + value if key in signed else value
    names = sorted(signed)
    canonical = "\n".join([
        method,
        _uri_encode(urllib.parse.unquote(path), safe="/-_.~"),
        _canonical_query(query),
        "".join("%s:%s\n" % (n, signed[n]) for n in names),
        ";".join(names),
        hashlib.sha256(body).hexdigest(),
    ])
    scope = "%s/%s/%s/aws4_request" % (day, region, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    k = _hmac(("AWS4" + secret_key).encode("utf-8"), day)
    for part in (region, service, "aws4_request"):
        k = _hmac(k, part)
    signature = hmac.new(k, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return amz_date, ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                      % (access_key, scope, ";".join(names), signature))


def _service_of(headers, body):
    target = next((v for n, v in headers if n.lower() == "x-amz-target"), "")
    if target.startswith("secretsmanager."):
        return "secretsmanager"
    if target:
        return "kms"
    if b"Action=" in body:
        return "sts"
    return "kms"


def build(path, variables, now=None):
    """The bytes of a case's request, signed now (or at `now`) unless the
    case says otherwise."""
    directives, method, target, headers, body = read_request(path, variables)
    if not any(n.lower() == "content-length" for n, _ in headers) and directives.get("content-length") != "none":
        headers.append(("Content-Length", str(len(body))))
    mode = directives.get("sign", "yes")
    if mode != "no":
        creds = directives.get("credentials", "%s %s" % (DEV_ACCESS_KEY, DEV_SECRET_KEY)).split()
        when = now or datetime.datetime.now(datetime.timezone.utc)
        when += datetime.timedelta(seconds=int(directives.get("clock-skew", "0")))
        # Content-Length and Connection are not signed, as the SDKs do not
        # sign them; @unsigned names more headers to leave out.
        unsigned = {"content-length", "connection"}
        unsigned |= {n.strip().lower() for n in directives.get("unsigned", "").split(",") if n.strip()}
        amz_date, authorization = sign(
            method, target, [h for h in headers if h[0].lower() not in unsigned], body,
            creds[0], creds[1], directives.get("region", DEFAULT_REGION),
            directives.get("service", _service_of(headers, body)), when)
        if mode == "wrong-signature":
            authorization = authorization[:-1] + ("0" if authorization[-1] != "0" else "1")
        elif mode != "yes":
            raise WireError("%s: @sign is yes, no or wrong-signature, not %r" % (path, mode))
        headers = [h for h in headers if h[0].lower() not in ("x-amz-date", "authorization")]
        headers += [("X-Amz-Date", amz_date), ("Authorization", authorization)]
    if not any(n.lower() == "connection" for n, _ in headers):
        headers.append(("Connection", "close"))
    head = "%s %s HTTP/1.1\r\n" % (method, target)
    head += "".join("%s: %s\r\n" % h for h in headers)
    return head.encode("utf-8") + b"\r\n" + body


# ---- sending --------------------------------------------------------------------

def send(host, port, data, timeout=30):
    """Writes the bytes to a new connection and reads the answer to its end:
    (status, {lower-case header: value}, body bytes)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    raw = b"".join(chunks)
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise WireError("no complete response: %r" % raw[:200])
    lines = head.decode("iso-8859-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        n, _, v = line.partition(":")
        headers[n.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        body = out
    elif "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return status, headers, body


# ---- matching -------------------------------------------------------------------

def _string_regex(template, variables, captures):
    """A regex for a template string; names of its capture groups in order."""
    out, pos = [], 0
    for m in TOKEN.finditer(template):
        out.append(re.escape(template[pos:m.start()]))
        tok = m.group(1)
        if tok.startswith("$"):
            if tok[1:] not in variables:
                raise WireError("variable %s is not set" % tok)
            out.append(re.escape(variables[tok[1:]]))
        else:
            name, eq, kind = tok.partition("=")
            if not eq:
                name, kind = None, tok
            rx = _pattern(kind)
            if rx is None:
                raise WireError("unknown placeholder {{%s}}" % tok)
            if name:
                captures.append(name)
                out.append("(%s)" % rx)
            else:
                out.append("(?:%s)" % rx)
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return "".join(out)


def match_string(template, actual, variables, where):
    captures = []
    rx = _string_regex(template, variables, captures)
    m = re.fullmatch(rx, actual, re.S)
    if not m:
        raise WireError("%s: %r does not match %r" % (where, actual, template))
    for i, name in enumerate(captures):
        variables[name] = m.group(i + 1)


def match_json(tpl, actual, variables, where="$"):
    """Compares a JSON value with a template (see docs/TESTING.md): objects
    must have exactly the template's members unless it has "...": ...,
    arrays the template's elements unless one of them is "...", and the
    strings "{{any}}" and "{{number}}" stand for whole values."""
    if tpl == "{{any}}":
        return
    if tpl == "{{number}}":
        if isinstance(actual, bool) or not isinstance(actual, (int, float)):
            raise WireError("%s: expected a number, got %r" % (where, actual))
        return
    if isinstance(tpl, dict):
        if not isinstance(actual, dict):
            raise WireError("%s: expected an object, got %r" % (where, actual))
        open_ended = "..." in tpl
        for k, v in tpl.items():
            if k == "...":
                continue
            if k not in actual:
                raise WireError("%s: member %r is missing (got %s)" % (where, k, sorted(actual)))
            match_json(v, actual[k], variables, "%s.%s" % (where, k))
        extra = sorted(set(actual) - set(tpl))
        if extra and not open_ended:
            raise WireError("%s: unexpected members %s" % (where, extra))
        return
    if isinstance(tpl, list):
        if not isinstance(actual, list):
            raise WireError("%s: expected an array, got %r" % (where, actual))
        items = [t for t in tpl if t != "..."]
        if "..." not in tpl:
            if len(items) != len(actual):
                raise WireError("%s: %d elements, expected %d" % (where, len(actual), len(items)))
            for i, (t, a) in enumerate(zip(items, actual)):
                match_json(t, a, variables, "%s[%d]" % (where, i))
            return
        # Open-ended: each template element matches a later element than the previous one.
        pos = 0
        for t in items:
            for i in range(pos, len(actual)):
                trial = dict(variables)
                try:
                    match_json(t, actual[i], trial, "%s[%d]" % (where, i))
                except WireError:
                    continue
                variables.update(trial)
                pos = i + 1
                break
            else:
                raise WireError("%s: no element matches %s" % (where, json.dumps(t)))
        return
    if isinstance(tpl, str):
        if not isinstance(actual, str):
            raise WireError("%s: expected a string, got %r" % (where, actual))
        match_string(tpl, actual, variables, where)
        return
    if tpl != actual or type(tpl) is not type(actual):
        raise WireError("%s: expected %r, got %r" % (where, tpl, actual))


def _xml_strip(el):
    return (el.text or "").strip()


def match_xml(tpl, actual, variables, where=""):
    """Compares XML element by element: the same tags in the same order,
    the same attributes, and text matched as a template string."""
    where = "%s/%s" % (where, tpl.tag)
    if tpl.tag != actual.tag:
        raise WireError("%s: got element %s" % (where, actual.tag))
    if tpl.attrib != actual.attrib:
        raise WireError("%s: attributes %r, expected %r" % (where, actual.attrib, tpl.attrib))
    match_string(_xml_strip(tpl), _xml_strip(actual), variables, where)
    tc, ac = list(tpl), list(actual)
    if len(tc) != len(ac):
        raise WireError("%s: %d children (%s), expected %d" % (
            where, len(ac), [c.tag for c in ac], len(tc)))
    for t, a in zip(tc, ac):
        match_xml(t, a, variables, where)


def check(path, variables, status, headers, body):
    """Compares an answer with the case's .response; captures go into variables."""
    want_status, want_headers, want_body = read_response(path + ".response", variables)
    shown = body.decode("utf-8", "replace")
    if status != want_status:
        raise WireError("status %d, expected %d; body: %s" % (status, want_status, shown))
    for name, value in want_headers:
        if name.lower() not in headers:
            raise WireError("header %s is missing (got %s)" % (name, sorted(headers)))
        match_string(value, headers[name.lower()], variables, "header " + name)
    if want_body == "":
        if body:
            raise WireError("expected an empty body, got %s" % shown)
    elif want_body.startswith("<"):
        match_xml(ET.fromstring(want_body), ET.fromstring(body), variables)
    else:
        try:
            got = json.loads(body)
        except ValueError:
            raise WireError("the body is not JSON: %s" % shown)
        try:
            match_json(json.loads(want_body), got, variables)
        except WireError as e:
            raise WireError("%s\nbody: %s" % (e, shown))


def run_case(case, host, port, variables):
    """Sends one case (path without extension) and checks its answer."""
    variables.setdefault("host", "%s:%d" % (host, port))
    data = build(case + ".request", variables)
    status, headers, body = send(host, port, data)
    check(case, variables, status, headers, body)


def main(argv):
    """wire.py URL PATH: sends a suite (a folder) or one case (its .request
    file) to the server at URL and prints each answer."""
    if len(argv) < 3:
        print(__doc__)
        return 2
    u = urllib.parse.urlsplit(argv[1])
    path = os.path.abspath(argv[2])
    if os.path.isdir(path):
        cases = [os.path.join(path, f[:-len(".request")]) for f in sorted(os.listdir(path))
                 if f.endswith(".request")]
    else:
        cases = [path[:-len(".request")] if path.endswith(".request") else path]
    variables = {"host": "%s:%d" % (u.hostname, u.port)}
    for case in cases:
        try:
            data = build(case + ".request", variables)
        except WireError as e:
            print("== %s: not sent: %s" % (os.path.basename(case), e))
            continue
        status, headers, body = send(u.hostname, u.port, data)
        print("== %s: %d" % (os.path.basename(case), status))
        print(body.decode("utf-8", "replace"))
        if os.path.exists(case + ".response"):
            try:
                check(case, variables, status, headers, body)
                print("-- matches")
            except WireError as e:
                print("-- DIFFERS: %s" % e)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
