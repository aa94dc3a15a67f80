/*
 * kms_link.c — kms's XKS client (xks/kms_link.h): GetHealthStatus for
 * ConnectCustomKeyStore, its failures as AWS's ConnectionErrorCode;
 * GetKeyMetadata, Encrypt and Decrypt for the keys of external key stores.
 */
#include "xks/kms_link.h"

#include <stdio.h>
#include <string.h>
#include "xks/client.h"
#include "core/banned.h"

static const char *link_ca_file;

const char *xks_connection_error_code(k_status st, const struct xks_client_error *err)
{
	switch (k_code(st)) {
	case KC_OK:
		return NULL;
	case KC_E_XKS_PROXY_URI_UNREACHABLE:
		if (err->has_proxy_error)
			return "XKS_PROXY_TIMED_OUT"; /* ThrottlingException, DependencyTimeoutException */
		if (err->transport == XKS_TRANSPORT_TIMED_OUT)
			return "XKS_PROXY_TIMED_OUT";
		if (err->transport == XKS_TRANSPORT_TLS)
			return "XKS_PROXY_INVALID_TLS_CONFIGURATION";
		return "XKS_PROXY_NOT_REACHABLE";
	case KC_E_XKS_PROXY_INCORRECT_AUTH:
		return "INVALID_CREDENTIALS";
	case KC_E_XKS_PROXY_INVALID_CONFIGURATION:
		return "XKS_PROXY_INVALID_CONFIGURATION";
	case KC_E_INVALID_STATE: /* AccessDeniedException (InvalidCiphertext has no place here) */
		return err->has_proxy_error && err->proxy_error == XKS_E_ACCESS_DENIED
			       ? "XKS_PROXY_ACCESS_DENIED"
			       : "XKS_PROXY_INVALID_RESPONSE";
	default:
		return "XKS_PROXY_INVALID_RESPONSE";
	}
}

static struct xks_client_options options_of(const struct kms_xks_proxy *p)
{
	struct xks_client_options o = {
		.endpoint = p->endpoint,
		.uri_path = p->uri_path,
		.access_key_id = p->access_key_id,
		.secret = p->secret,
		.region = p->region,
		.ca_file = link_ca_file != NULL && link_ca_file[0] != 0 ? link_ca_file : NULL,
		.timeout_ms = p->timeout_ms,
	};
	return o;
}

/* The spec's requestMetadata: who asked KMS for what, on which key. */
static struct xks_request_metadata metadata_of(const struct kms_xks_proxy *p)
{
	struct xks_request_metadata md = {
		.kms_operation = p->operation,
		.kms_request_id = p->request_id,
		.aws_principal_arn = p->principal_arn,
		.kms_key_arn = p->key_arn,
	};
	return md;
}

static const char *health(const struct kms_xks_proxy *p, char *why, size_t why_len)
{
	struct xks_client_options o = options_of(p);
	struct xks_request_metadata md = metadata_of(p);
	struct xks_health h;
	struct xks_client_error err;
	k_status st = xks_client_health(&o, &md, &h, &err);
	const char *code = xks_connection_error_code(st, &err);
	if (code != NULL && why_len > 0)
		snprintf(why, why_len, "%s", err.message);
	return code;
}

/* The client's error, as kms reads it. */
static void failure_of(const struct xks_client_error *err, struct kms_xks_failure *f)
{
	memset(f, 0, sizeof *f);
	if (err->has_proxy_error)
		snprintf(f->proxy_error, sizeof f->proxy_error, "%s",
			 xks_error_name(err->proxy_error));
	f->timed_out = err->transport == XKS_TRANSPORT_TIMED_OUT;
	snprintf(f->why, sizeof f->why, "%s", err->message);
}

static k_status key_metadata(const struct kms_xks_proxy *p, const char *key_id,
			     struct kms_xks_key_info *out, struct kms_xks_failure *f)
{
	struct xks_client_options o = options_of(p);
	struct xks_request_metadata md = metadata_of(p);
	struct xks_key_metadata m;
	struct xks_client_error err;
	k_status rc = xks_client_key_metadata(&o, key_id, &md, &m, &err);
	if (k_failed(rc)) {
		failure_of(&err, f);
		return rc;
	}
	memset(out, 0, sizeof *out);
	snprintf(out->key_spec, sizeof out->key_spec, "%s", m.key_spec);
	snprintf(out->key_status, sizeof out->key_status, "%s", m.key_status);
	for (size_t i = 0; i < m.n_key_usage; i++) {
		out->encrypt |= strcmp(m.key_usage[i], "ENCRYPT") == 0;
		out->decrypt |= strcmp(m.key_usage[i], "DECRYPT") == 0;
	}
	return K_OK;
}

static k_status encrypt(const struct kms_xks_proxy *p, const char *key_id, struct kslice pt,
			struct kslice aad, struct kms_xks_sealed *out, struct kbuf *ct,
			struct kms_xks_failure *f)
{
	struct xks_client_options o = options_of(p);
	struct xks_request_metadata md = metadata_of(p);
	struct xks_ciphertext x;
	struct xks_client_error err;
	xks_ciphertext_init(&x);
	k_status rc = xks_client_encrypt(&o, key_id, &md, pt, aad, true, &x, &err);
	if (k_failed(rc))
		failure_of(&err, f);
	if (k_ok(rc) && (x.iv_len > sizeof out->iv || x.metadata.len > sizeof out->metadata))
		rc = K_E_XKS_PROXY_INVALID_RESPONSE; /* the client checked both already */
	if (k_ok(rc))
		rc = kbuf_append(ct, x.ciphertext.ptr, x.ciphertext.len);
	if (k_ok(rc)) {
		memset(out, 0, sizeof *out);
		memcpy(out->iv, x.iv, x.iv_len);
		out->iv_len = x.iv_len;
		memcpy(out->tag, x.tag, sizeof out->tag);
		memcpy(out->metadata, x.metadata.ptr, x.metadata.len);
		out->metadata_len = x.metadata.len;
	}
	xks_ciphertext_release(&x);
	return rc;
}

static k_status decrypt(const struct kms_xks_proxy *p, const char *key_id,
			const struct kms_xks_sealed *in, struct kslice ct, struct kslice aad,
			struct kbuf *pt, struct kms_xks_failure *f)
{
	struct xks_client_options o = options_of(p);
	struct xks_request_metadata md = metadata_of(p);
	struct xks_ciphertext x;
	struct xks_client_error err;
	xks_ciphertext_init(&x);
	k_status rc = in->iv_len <= sizeof x.iv ? kbuf_append(&x.ciphertext, ct.ptr, ct.len)
						: K_E_INVALID_CIPHERTEXT;
	if (k_ok(rc))
		rc = kbuf_append(&x.metadata, in->metadata, in->metadata_len);
	if (k_ok(rc)) {
		x.has_metadata = in->metadata_len > 0;
		memcpy(x.iv, in->iv, in->iv_len);
		x.iv_len = in->iv_len;
		memcpy(x.tag, in->tag, sizeof x.tag);
		rc = xks_client_decrypt(&o, key_id, &md, &x, aad, true, pt, &err);
		if (k_failed(rc))
			failure_of(&err, f);
	}
	xks_ciphertext_release(&x);
	return rc;
}

static const struct kms_xks_link link = {
	.health = health,
	.key_metadata = key_metadata,
	.encrypt = encrypt,
	.decrypt = decrypt,
};

const struct kms_xks_link *xks_kms_link(const char *ca_file)
{
	link_ca_file = ca_file;
	return &link;
}
