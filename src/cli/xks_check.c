/*
 * xks_check.c — `kinko xks check` (xks_check.h): the checks an XKS proxy
 * must pass to serve AWS KMS, run through kinko's own XKS client: health,
 * key metadata, Encrypt/Decrypt round trips with and without AAD (with
 * the CDIV checked), tampered input, a wrong signature and an unknown key
 * refused with the spec's errors.
 */
#include "cli/xks_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/secret.h"
#include "xks/client.h"
#include "core/banned.h"

/* The longest secret access key file read. */
#define XKS_CHECK_MAX_SECRET 1024

struct check_run {
	struct xks_client_options o;
	const char *key_id;
	struct xks_request_metadata md;
	int failed;
};

static void report(struct check_run *r, const char *name, bool ok, const char *detail)
{
	printf("%-4s %-38s %s\n", ok ? "ok" : "FAIL", name, detail);
	if (!ok)
		r->failed++;
}

/*
 * What a refusal said: "401 AuthenticationFailedException
 * (XksProxyIncorrectAuthenticationCredentialException)", or the kinko
 * status and the transport's reason.
 */
static void said(k_status rc, const struct xks_client_error *e, char *out, size_t n)
{
	if (e->has_proxy_error)
		snprintf(out, n, "%ld %s (%s)", e->http_status, xks_error_name(e->proxy_error),
			 k_status_name(rc));
	else
		snprintf(out, n, "%s: %s", k_status_name(rc), e->message);
}

static void check_health(struct check_run *r)
{
	struct xks_health h;
	struct xks_client_error e;
	struct xks_request_metadata md = {.kms_operation = "KmsHealthCheck",
					  .kms_request_id = r->md.kms_request_id};
	char line[400];
	k_status rc = xks_client_health(&r->o, &md, &h, &e);
	if (k_ok(rc))
		snprintf(line, sizeof line, "%s %s, %zu key manager(s), the first %s", h.vendor,
			 h.model, h.n_ekm, h.ekm[0].health_status);
	else
		said(rc, &e, line, sizeof line);
	report(r, "GetHealthStatus", k_ok(rc) && strcmp(h.ekm[0].health_status, "UNAVAILABLE"),
	       line);
}

static void check_metadata(struct check_run *r)
{
	struct xks_key_metadata m;
	struct xks_client_error e;
	char line[400];
	k_status rc = xks_client_key_metadata(&r->o, r->key_id, &r->md, &m, &e);
	bool enc = false, dec = false;
	for (size_t i = 0; k_ok(rc) && i < m.n_key_usage; i++) {
		enc = enc || strcmp(m.key_usage[i], "ENCRYPT") == 0;
		dec = dec || strcmp(m.key_usage[i], "DECRYPT") == 0;
	}
	if (k_ok(rc))
		snprintf(line, sizeof line, "keySpec %s, keyStatus %s, ENCRYPT %s, DECRYPT %s",
			 m.key_spec, m.key_status, enc ? "yes" : "no", dec ? "yes" : "no");
	else
		said(rc, &e, line, sizeof line);
	report(r, "GetKeyMetadata",
	       k_ok(rc) && strcmp(m.key_spec, "AES_256") == 0 && enc && dec &&
		       strcmp(m.key_status, "ENABLED") == 0,
	       line);
}

/*
 * Encrypt then Decrypt; then, when `tamper` is set, Decrypt again with
 * the AAD changed and with a flipped ciphertext byte, both of which must
 * be InvalidCiphertextException.
 */
static void round_trip(struct check_run *r, const char *name, struct kslice aad, bool has_aad)
{
	struct xks_ciphertext c;
	struct xks_client_error e;
	struct kbuf pt;
	struct kslice msg = KSLICE_LIT("kinko xks check: the plaintext of a round trip");
	char line[400] = "";
	xks_ciphertext_init(&c);
	kbuf_init(&pt, XKS_MAX_PLAINTEXT);
	struct xks_request_metadata md = r->md;
	md.kms_operation = "Encrypt";
	k_status rc = xks_client_encrypt(&r->o, r->key_id, &md, msg, aad, has_aad, &c, &e);
	md.kms_operation = "Decrypt";
	if (k_ok(rc))
		rc = xks_client_decrypt(&r->o, r->key_id, &md, &c, aad, has_aad, &pt, &e);
	bool same = k_ok(rc) && kslice_eq(kbuf_slice(&pt), msg);
	if (k_ok(rc))
		snprintf(line, sizeof line, "%zu bytes, IV %zu bytes, CDIV matches, %s",
			 c.ciphertext.len, c.iv_len, same ? "plaintext back" : "plaintext DIFFERS");
	else
		said(rc, &e, line, sizeof line);
	report(r, name, same, line);
	if (same && has_aad) {
		kbuf_reset(&pt);
		struct kslice other = KSLICE_LIT("another context");
		rc = xks_client_decrypt(&r->o, r->key_id, &md, &c, other, true, &pt, &e);
		said(rc, &e, line, sizeof line);
		report(r, "Decrypt, other AAD refused",
		       k_failed(rc) && e.has_proxy_error &&
			       e.proxy_error == XKS_E_INVALID_CIPHERTEXT,
		       k_ok(rc) ? "it decrypted" : line);
		c.ciphertext.ptr[0] ^= 1;
		rc = xks_client_decrypt(&r->o, r->key_id, &md, &c, aad, true, &pt, &e);
		said(rc, &e, line, sizeof line);
		report(r, "Decrypt, tampered ciphertext refused",
		       k_failed(rc) && e.has_proxy_error &&
			       e.proxy_error == XKS_E_INVALID_CIPHERTEXT,
		       k_ok(rc) ? "it decrypted" : line);
	}
	xks_ciphertext_release(&c);
	kbuf_release(&pt);
}

/* A call that must be refused with `want` (and the HTTP status of the spec's table). */
static void refused(struct check_run *r, const char *name, const struct xks_client_options *o,
		    const char *key_id, enum xks_error want)
{
	struct xks_key_metadata m;
	struct xks_client_error e;
	char line[400];
	k_status rc = xks_client_key_metadata(o, key_id, &r->md, &m, &e);
	said(rc, &e, line, sizeof line);
	report(r, name,
	       k_failed(rc) && e.has_proxy_error && e.proxy_error == want &&
		       e.http_status == xks_error_status(want),
	       k_ok(rc) ? "it was accepted" : line);
}

static void run_checks(struct check_run *r)
{
	check_health(r);
	check_metadata(r);
	round_trip(r, "Encrypt/Decrypt without AAD", kslice_make("", 0), false);
	round_trip(r, "Encrypt/Decrypt with AAD", KSLICE_LIT("project=nile,department=marketing"),
		   true);
	/*
	 * The same access key id with another secret: a wrong signature. Its
	 * length differs from the proxy's secret, so it differs without a
	 * byte of that secret being read.
	 */
	static const char other[] = "kinko-xks-check-wrong-secret-x";
	size_t n = sizeof other - 1;
	if (ksecret_len(r->o.secret) == n)
		n--;
	struct ksecret *wrong = ksecret_from((const uint8_t *)other, n);
	if (wrong != NULL) {
		struct xks_client_options bad = r->o;
		bad.secret = wrong;
		refused(r, "wrong signature refused", &bad, r->key_id, XKS_E_AUTHENTICATION_FAILED);
		ksecret_free(wrong);
	}
	refused(r, "unknown key refused", &r->o, "kinko-xks-check-no-such-key",
		XKS_E_KEY_NOT_FOUND);
}

static bool parse_flags(int argc, char **argv, struct check_run *r, const char **secret_file)
{
	for (int i = 0; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];
		if (strcmp(a, "--endpoint") == 0)
			r->o.endpoint = v;
		else if (strcmp(a, "--uri-path") == 0)
			r->o.uri_path = v;
		else if (strcmp(a, "--access-key-id") == 0)
			r->o.access_key_id = v;
		else if (strcmp(a, "--secret-file") == 0)
			*secret_file = v;
		else if (strcmp(a, "--ca-file") == 0)
			r->o.ca_file = v;
		else if (strcmp(a, "--key-id") == 0)
			r->key_id = v;
		else if (strcmp(a, "--region") == 0)
			r->o.region = v;
		else if (strcmp(a, "--timeout-ms") == 0)
			r->o.timeout_ms = strtol(v, NULL, 10);
		else
			return false;
	}
	return r->o.endpoint != NULL && r->o.uri_path != NULL && r->o.access_key_id != NULL &&
	       *secret_file != NULL && r->key_id != NULL && argc % 2 == 0;
}

int cli_xks_check(int argc, char **argv)
{
	struct check_run r;
	memset(&r, 0, sizeof r);
	const char *secret_file = NULL;
	r.o.region = "us-east-1";
	r.md = (struct xks_request_metadata){
		.aws_principal_arn = "arn:aws:iam::000000000000:user/kinko-xks-check",
		.kms_key_arn = "arn:aws:kms:us-east-1:000000000000:key/"
			       "00000000-0000-0000-0000-000000000000",
		.kms_operation = "DescribeKey",
		.kms_request_id = "00000000-0000-4000-8000-00000000c4ec",
	};
	if (!parse_flags(argc, argv, &r, &secret_file)) {
		fprintf(stderr, "kinko xks check: give --endpoint, --uri-path, --access-key-id, "
				"--secret-file and --key-id (kinko help xks check)\n");
		return 2;
	}
	struct ksecret *secret = ksecret_read_file(secret_file, XKS_CHECK_MAX_SECRET);
	if (secret == NULL) {
		fprintf(stderr, "kinko xks check: cannot read a secret from %s\n", secret_file);
		return 2;
	}
	r.o.secret = secret;
	run_checks(&r);
	ksecret_free(secret);
	printf("%s: %d check(s) failed\n", r.failed ? "FAIL" : "ok", r.failed);
	return r.failed ? 1 : 0;
}
