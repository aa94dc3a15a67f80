#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<harness>/ (run from anywhere).

The seeds are small, valid (or nearly valid) inputs for each harness, so
the fuzzer starts from the shapes kinko really parses. Re-running it
rewrites the seeds it owns (seed-*) and leaves any other file (regression
inputs, crash reproducers) alone. Placeholders @key, @arn and @blob are
described in fuzz/support.h.
"""
import base64
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

OPS = {
    "CreateKey": [{}, {"Description": "d", "KeyUsage": "ENCRYPT_DECRYPT", "KeySpec": "SYMMETRIC_DEFAULT",
                       "Tags": [{"TagKey": "a", "TagValue": "b"}], "MultiRegion": False},
                  {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
                  {"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY", "Policy": "{\"Version\":\"2012-10-17\"}"}],
    "DescribeKey": [{"KeyId": "@key"}, {"KeyId": "@arn"}, {"KeyId": "alias/aws/s3"},
                    {"KeyId": "@key", "GrantTokens": ["t"]}],
    "ListKeys": [{}, {"Limit": 1}, {"Limit": 2, "Marker": "@key"}],
    "Encrypt": [{"KeyId": "@key", "Plaintext": "aGVsbG8="},
                {"KeyId": "@arn", "Plaintext": "aGVsbG8=", "EncryptionContext": {"a": "b", "c": ""},
                 "EncryptionAlgorithm": "SYMMETRIC_DEFAULT", "DryRun": True}],
    "Decrypt": [{"CiphertextBlob": "@blob", "EncryptionContext": {"k": "v"}},
                {"CiphertextBlob": "@blob", "KeyId": "@key", "EncryptionContext": {"k": "v"}},
                {"CiphertextBlob": "@blob"}],
    "ReEncrypt": [{"CiphertextBlob": "@blob", "SourceEncryptionContext": {"k": "v"},
                   "DestinationKeyId": "@key", "DestinationEncryptionContext": {"x": "y"}}],
    "GenerateDataKey": [{"KeyId": "@key", "KeySpec": "AES_256"}, {"KeyId": "@key", "NumberOfBytes": 16},
                        {"KeyId": "@arn", "KeySpec": "AES_128", "EncryptionContext": {"a": "b"}}],
    "GenerateDataKeyWithoutPlaintext": [{"KeyId": "@key", "KeySpec": "AES_256"},
                                        {"KeyId": "@key", "NumberOfBytes": 1024}],
    "GenerateRandom": [{"NumberOfBytes": 32}, {}, {"NumberOfBytes": 1024}],
    # Later operation groups: their seeds are here so the harness covers
    # them as soon as they are registered.
    "UpdateKeyDescription": [{"KeyId": "@key", "Description": "x"}],
    "EnableKey": [{"KeyId": "@key"}],
    "DisableKey": [{"KeyId": "@key"}],
    "ScheduleKeyDeletion": [{"KeyId": "@key", "PendingWindowInDays": 7}],
    "CancelKeyDeletion": [{"KeyId": "@key"}],
    "CreateAlias": [{"AliasName": "alias/fuzz", "TargetKeyId": "@key"}],
    "UpdateAlias": [{"AliasName": "alias/fuzz", "TargetKeyId": "@key"}],
    "DeleteAlias": [{"AliasName": "alias/fuzz"}],
    "ListAliases": [{}, {"KeyId": "@key", "Limit": 10}],
    "TagResource": [{"KeyId": "@key", "Tags": [{"TagKey": "k", "TagValue": "v"}]}],
    "UntagResource": [{"KeyId": "@key", "TagKeys": ["k"]}],
    "ListResourceTags": [{"KeyId": "@key"}],
    "EnableKeyRotation": [{"KeyId": "@key", "RotationPeriodInDays": 90}],
    "DisableKeyRotation": [{"KeyId": "@key"}],
    "GetKeyRotationStatus": [{"KeyId": "@key"}],
    "RotateKeyOnDemand": [{"KeyId": "@key"}],
    "ListKeyRotations": [{"KeyId": "@key"}],
    "GetKeyPolicy": [{"KeyId": "@key", "PolicyName": "default"}],
    "PutKeyPolicy": [{"KeyId": "@key", "PolicyName": "default", "Policy": json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                "Action": "kms:*", "Resource": "*",
                                                "Condition": {"StringEquals": {"kms:CallerAccount": "000000000000"}}}]})}],
    "ListKeyPolicies": [{"KeyId": "@key"}],
    "CreateGrant": [{"KeyId": "@key", "GranteePrincipal": "arn:aws:iam::000000000000:root",
                     "Operations": ["Encrypt", "Decrypt"], "Constraints": {"EncryptionContextSubset": {"a": "b"}}}],
    "ListGrants": [{"KeyId": "@key"}],
    "Sign": [{"KeyId": "@key", "Message": "aGVsbG8=", "SigningAlgorithm": "RSASSA_PSS_SHA_256"}],
    "Verify": [{"KeyId": "@key", "Message": "aGVsbG8=", "Signature": "AAAA", "SigningAlgorithm": "ECDSA_SHA_256"}],
    "GetPublicKey": [{"KeyId": "@key"}],
    "GenerateMac": [{"KeyId": "@key", "Message": "aGVsbG8=", "MacAlgorithm": "HMAC_SHA_256"}],
    "VerifyMac": [{"KeyId": "@key", "Message": "aGVsbG8=", "Mac": "AAAA", "MacAlgorithm": "HMAC_SHA_256"}],
    "GenerateDataKeyPair": [{"KeyId": "@key", "KeyPairSpec": "ECC_NIST_P256"}],
    "GetParametersForImport": [{"KeyId": "@key", "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
                                "WrappingKeySpec": "RSA_2048"}],
}


SM_OPS = {
    "CreateSecret": [{"Name": "s1", "SecretString": "v", "KmsKeyId": "@key",
                      "Tags": [{"Key": "a", "Value": "b"}], "ClientRequestToken": "t" * 32},
                     {"Name": "s2", "SecretBinary": "AAEC"}],
    "GetSecretValue": [{"SecretId": "s1"}, {"SecretId": "s1", "VersionStage": "AWSPREVIOUS"}],
    "PutSecretValue": [{"SecretId": "s1", "SecretString": "v2", "VersionStages": ["AWSCURRENT"]}],
    "DescribeSecret": [{"SecretId": "s1"}],
    "ListSecrets": [{}, {"Filters": [{"Key": "name", "Values": ["s"]}], "MaxResults": 1}],
    "UpdateSecretVersionStage": [{"SecretId": "s1", "VersionStage": "AWSCURRENT",
                                  "MoveToVersionId": "x", "RemoveFromVersionId": "y"}],
    "DeleteSecret": [{"SecretId": "s1", "RecoveryWindowInDays": 7},
                     {"SecretId": "s2", "ForceDeleteWithoutRecovery": True}],
    "RestoreSecret": [{"SecretId": "s1"}],
    "GetRandomPassword": [{"PasswordLength": 32, "ExcludeCharacters": "abc", "RequireEachIncludedType": True}],
    "PutResourcePolicy": [{"SecretId": "s1", "ResourcePolicy": "{\"Version\":\"2012-10-17\",\"Statement\":[]}"}],
    "RotateSecret": [{"SecretId": "s1", "RotationRules": {"ScheduleExpression": "rate(10 days)"}}],
    "BatchGetSecretValue": [{"SecretIdList": ["s1", "s2"]}],
}


def write(harness, name, data):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def http_request(target, body, extra=()):
    head = ["POST /", "Host: localhost", "Content-Type: application/x-amz-json-1.1",
            "X-Amz-Target: " + target] + list(extra)
    return ("\n".join(head) + "\n\n").encode() + body


def main():
    for op, bodies in OPS.items():
        for i, b in enumerate(bodies):
            body = json.dumps(b, separators=(",", ":")).encode()
            write("kms_json", "%s-%d" % (op, i), op.encode() + b"\n" + body)
            write("api", "%s-%d" % (op, i), b"\x01" + http_request("TrentService." + op, body))
    for op, bodies in SM_OPS.items():
        for i, b in enumerate(bodies):
            body = json.dumps(b, separators=(",", ":")).encode()
            write("kms_json", "sm-%s-%d" % (op, i), b"secretsmanager." + op.encode() + b"\n" + body)
            write("api", "sm-%s-%d" % (op, i), b"\x01" + http_request("secretsmanager." + op, body))
    write("api", "sts-identity", b"\x01" + http_request("AWSSecurityTokenServiceV20110615.GetCallerIdentity", b"{}"))
    write("api", "sts-query", b"\x01POST /\nHost: localhost\nContent-Type: application/x-www-form-urlencoded\n\n"
                              b"Action=GetCallerIdentity&Version=2011-06-15")
    # The pipeline's own refusals: unsigned, bad target, GET, oversized, TLS flag.
    write("api", "unsigned", b"\x00" + http_request("TrentService.ListKeys", b"{}"))
    write("api", "get", b"\x01GET /?Action=ListKeys&Version=2014-11-01\nHost: localhost\n\n")
    write("api", "no-target", b"\x01POST /\nHost: localhost\nContent-Type: application/x-amz-json-1.1\n\n{}")
    write("api", "unknown-op", b"\x01" + http_request("TrentService.Nope", b"{}"))
    write("api", "bad-json", b"\x01" + http_request("TrentService.Encrypt", b"{\"KeyId\":"))
    write("api", "too-large", b"\x05" + http_request("TrentService.Encrypt", b"{}"))
    write("api", "secure", b"\x03" + http_request("TrentService.DescribeKey", b"{\"KeyId\":\"@key\"}"))
    write("api", "json-1.0", b"\x01" + http_request("TrentService.ListKeys", b"{}").replace(b"1.1", b"1.0"))

    # SigV4: signed requests (AWS's published vanilla example and a boto3 one).
    v = ("GET /\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z\n"
         "Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
         "SignedHeaders=host;x-amz-date, "
         "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31\n\n")
    write("sigv4", "vanilla", v.encode())
    write("sigv4", "query", v.replace("GET /", "GET /a/b/../c/./d%20e?b=2&a=1&a=0&c").encode())
    write("sigv4", "post", ("POST /\nHost:localhost\nContent-Type:application/x-amz-json-1.1\n"
                            "X-Amz-Target:TrentService.ListKeys\nX-Amz-Date:20240101T000000Z\n"
                            "X-Amz-Content-Sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\n"
                            "X-Amz-Security-Token:tok\n"
                            "Authorization:AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/kms/aws4_request,"
                            "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target,"
                            "Signature=" + "ab" * 32 + "\n\n{}").encode())
    write("sigv4", "date-header", v.replace("X-Amz-Date:20150830T123600Z", "Date:Sun, 30 Aug 2015 12:36:00 GMT").encode())
    write("sigv4", "multi-value", v.replace("Host:example.amazonaws.com\n",
                                            "Host:example.amazonaws.com\nMy-Header1: a   b \nmy-header1:c\n").replace(
        "host;x-amz-date", "host;my-header1;x-amz-date").encode())

    # Sealed peer transfers (crypto/peerwrap.h): the magic, a key length, junk.
    write("peerwrap", "magic-only", b"KPW1")
    write("peerwrap", "shape", b"KPW1" + (256).to_bytes(2, "big") + bytes(256) + bytes(12) +
          b"payload" + bytes(16))
    write("peerwrap", "short-key", b"KPW1" + (600).to_bytes(2, "big") + bytes(10))
    # Ciphertext blobs: a well-formed header and a few broken ones.
    hdr = bytes([0x4B, 0x01]) + bytes(range(16)) + struct.pack(">I", 1) + bytes(16)
    write("blob", "valid-shape", hdr + b"ciphertext" + bytes(16))
    write("blob", "empty-ct", hdr + bytes(16))
    write("blob", "short", hdr[:20])
    write("blob", "bad-version", bytes([0x4B, 0x02]) + hdr[2:] + bytes(16))
    write("blob", "version-0", hdr[:18] + bytes(4) + hdr[22:] + bytes(17))

    # Encryption contexts.
    for i, c in enumerate([{}, {"a": "bc"}, {"ab": "c"}, {"k": "v", "a": "", "\u00e9": "\u2603"},
                           {"n": 1}, [], "s", {"a": {"b": "c"}}, {"aws:x": "y", "A": "z"}]):
        write("ectx", "ctx-%d" % i, json.dumps(c).encode())
    write("ectx", "nul", b'{"a\\u0000b":"c","a":"d"}')

    # ARNs: every resource form core/arn.h names, and a few near misses.
    arns = ["arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:111122223333:alias/app/prod",
            "arn:aws:secretsmanager:us-east-1:000000000000:secret:db/pw-AbC123",
            "arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:role/path/app",
            "arn:aws:iam::111122223333:user/alice", "arn:aws:sts::111122223333:assumed-role/app/s1",
            "arn:aws:lambda:us-east-1:111122223333:function:rotate", "arn:aws:s3:::bucket",
            "arn:aws:kms:us-east-1:11112222333:key/x", "arn:aws:sts::111122223333:assumed-role/app"]
    for i, a in enumerate(arns):
        write("arn", "arn-%d" % i, a.encode())

    # Policy documents: first byte is the kind (0 key, 1 identity, 2 trust).
    stmt = {"Sid": "s", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:root",
                                                                 "444455556666"]},
            "Action": ["kms:Encrypt", "kms:*Grant*"], "Resource": "*"}
    conds = [
        {"StringEquals": {"kms:CallerAccount": "111122223333"}},
        {"StringLike": {"kms:EncryptionContext:app": "de*"}},
        {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["app"]}},
        {"ForAllValues:StringLike": {"kms:GrantOperations": ["Encrypt", "Decrypt"]}},
        {"Bool": {"aws:SecureTransport": "false"}, "Null": {"kms:GrantIsForAWSResource": "true"}},
        {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}},
        {"NumericLessThanIfExists": {"aws:EpochTime": "1800000000"}},
        {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
        {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/R"}},
        {"StringEqualsIgnoreCase": {"aws:ResourceTag/env": "PROD"}},
    ]
    for i, c in enumerate(conds):
        st = dict(stmt, Condition=c)
        write("policy", "key-%d" % i, b"\x00" + json.dumps({"Version": "2012-10-17", "Statement": [st]}).encode())
    write("policy", "deny", b"\x00" + json.dumps({"Version": "2012-10-17", "Statement": {
        "Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
        "NotAction": "kms:Describe*", "NotResource": "arn:aws:kms:*:*:key/k"}}).encode())
    write("policy", "identity", b"\x01" + json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:*", "Resource": "arn:aws:kms:*:111122223333:key/*"}]}).encode())
    write("policy", "trust", b"\x02" + json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "kms.amazonaws.com"}, "Action": "sts:AssumeRole"}]}).encode())
    write("policy", "variables", b"\x01" + json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:*",
         "Resource": "arn:aws:kms:*:${aws:PrincipalAccount}:key/${kms:EncryptionContext:app, 'k''s'}${*}",
         "Condition": {"StringLike": {"kms:EncryptionContext:app": "${aws:username, 'demo'}${?}${$}"}}}]}).encode())
    write("policy", "bad", b"\x00{\"Statement\":[{\"Effect\":\"Maybe\"}]}")

    # Config files.
    full = {
        "listen": "127.0.0.1:4599", "data_dir": "/var/lib/kinko", "root_key_file": "/var/lib/kinko/root.key",
        "threads": 4, "max_connections": 100, "tls_cert_file": "/etc/kinko/cert.pem",
        "tls_key_file": "/etc/kinko/key.pem",
        "accounts": [{"id": "111122223333",
                      "root_access_keys": [{"access_key_id": "AKIAROOT", "secret_access_key": "s1"}],
                      "users": [{"name": "alice",
                                 "access_keys": [{"access_key_id": "AKIAALICE", "secret_access_key": "s2"}],
                                 "policies": [{"Version": "2012-10-17", "Statement": [
                                     {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}]}]}]}
    write("config", "full", json.dumps(full, indent=1).encode())
    write("config", "empty", b"{}")
    write("config", "listen-v6", b'{"listen":"[::1]:4599"}')
    write("config", "dup-key", b'{"accounts":[{"id":"111122223333","root_access_keys":['
                               b'{"access_key_id":"A","secret_access_key":"s"},'
                               b'{"access_key_id":"A","secret_access_key":"t"}]}]}')

    xks_seeds()


# The XKS proxy API's spec examples (xks_fuzz.c): selector 0 metadata, 1 encrypt,
# 2 decrypt, 3 health; the answers and paths go through the same harness.
XKS_MD = {"awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
          "kmsKeyArn": "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
          "kmsOperation": "Encrypt", "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
          "kmsViaService": "ebs"}


def xks_seeds():
    j = lambda o: json.dumps(o, separators=(",", ":")).encode()
    write("xks", "metadata", b"\x00" + j({"requestMetadata": XKS_MD}))
    write("xks", "encrypt", b"\x01" + j({"requestMetadata": XKS_MD,
          "additionalAuthenticatedData": "cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n",
          "plaintext": "SGVsbG8gV29ybGQh", "encryptionAlgorithm": "AES_GCM",
          "ciphertextDataIntegrityValueAlgorithm": "SHA_256"}))
    write("xks", "decrypt", b"\x02" + j({"requestMetadata": XKS_MD, "encryptionAlgorithm": "AES_GCM",
          "additionalAuthenticatedData": "cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n",
          "ciphertext": "ghxkK1txeDNn3q8Y", "ciphertextMetadata": "a2V5X3ZlcnNpb249MQ==",
          "initializationVector": "HMrlRw85cAJUd5Ax", "authenticationTag": "vBxN2ncH1oEkR8WVXpmyYQ=="}))
    write("xks", "health", b"\x03" + j({"requestMetadata": {"kmsRequestId": "x",
                                                             "kmsOperation": "KmsHealthCheck"}}))
    write("xks", "answer-encrypt", bytes([12 << 2]) + j({"authenticationTag": "vBxN2ncH1oEkR8WVXpmyYQ==",
          "ciphertext": "ghxkK1txeDNn3q8Y", "ciphertextMetadata": "a2V5X3ZlcnNpb249MQ==",
          "initializationVector": "HMrlRw85cAJUd5Ax"}))
    write("xks", "answer-health", b"\x03" + j({"xksProxyFleetSize": 2, "xksProxyVendor": "Acme Corp",
          "xksProxyModel": "Acme XKS Proxy 1.0", "ekmVendor": "Thales Group", "ekmFleetDetails": [
              {"id": "hsm-id-1", "model": "Luna 5.0", "healthStatus": "DEGRADED"}]}))
    write("xks", "answer-error", b"\x00" + j({"errorName": "InvalidCiphertextException",
                                              "errorMessage": "corrupted"}))
    write("xks", "path-encrypt", b"\x00/p/kms/xks/v1/keys/b42c7fbf-de61-441c/encrypt")
    write("xks", "path-health", b"\x00/p/kms/xks/v1/health")


if __name__ == "__main__":
    main()
