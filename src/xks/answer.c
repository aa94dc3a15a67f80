/*
 * answer.c — the XKS client's side of the wire: request bodies and the
 * parsers of the proxy's answers (client.h). Everything a proxy says is
 * untrusted: each answer is parsed whole, with its sizes checked, before
 * any of it is used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "crypto/crypto.h"
#include "xks/client.h"
#include "core/banned.h"

void xks_ciphertext_init(struct xks_ciphertext *c)
{
	memset(c, 0, sizeof *c);
	kbuf_init(&c->ciphertext, XKS_MAX_PLAINTEXT);
	kbuf_init(&c->metadata, XKS_MAX_CIPHERTEXT_METADATA);
}

void xks_ciphertext_release(struct xks_ciphertext *c)
{
	kbuf_release(&c->ciphertext);
	kbuf_release(&c->metadata);
}

/* ---- request bodies ---- */

static json_t *metadata_json(const struct xks_request_metadata *md)
{
	json_t *o = json_object();
	const struct {
		const char *name, *value;
	} f[] = {
		{"awsPrincipalArn", md->aws_principal_arn}, {"awsSourceVpc", md->aws_source_vpc},
		{"awsSourceVpce", md->aws_source_vpce},	    {"kmsKeyArn", md->kms_key_arn},
		{"kmsOperation", md->kms_operation},	    {"kmsRequestId", md->kms_request_id},
		{"kmsViaService", md->kms_via_service},
	};
	for (size_t i = 0; o != NULL && i < sizeof f / sizeof f[0]; i++) {
		if (f[i].value != NULL)
			json_object_set_new(o, f[i].name, json_string(f[i].value));
	}
	return o;
}

/* Sets name to the base64 of v. */
static K_MUST_CHECK k_status set_b64(json_t *o, const char *name, struct kslice v)
{
	struct kbuf b;
	kbuf_init(&b, XKS_MAX_BODY);
	k_status rc = kbuf_append_base64(&b, v.ptr, v.len);
	if (k_ok(rc) && json_object_set_new(o, name, json_stringn((const char *)b.ptr, b.len)) != 0)
		rc = K_E_INTERNAL;
	kbuf_release(&b);
	return rc;
}

/* Appends o's compact text to out and drops o. */
static K_MUST_CHECK k_status dump(json_t *o, struct kbuf *out)
{
	char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	ENSURE(text != NULL, K_E_INTERNAL);
	k_status rc = kbuf_append_str(out, text);
	kjson_free(text);
	return rc;
}

k_status xks_body_metadata(const struct xks_request_metadata *md, struct kbuf *out)
{
	json_t *o = json_object();
	if (o != NULL)
		json_object_set_new(o, "requestMetadata", metadata_json(md));
	return dump(o, out);
}

k_status xks_body_encrypt(const struct xks_request_metadata *md, struct kslice pt,
			  struct kslice aad, bool has_aad, struct kbuf *out)
{
	json_t *o = json_object();
	ENSURE(o != NULL, K_E_INTERNAL);
	json_object_set_new(o, "requestMetadata", metadata_json(md));
	json_object_set_new(o, "encryptionAlgorithm", json_string("AES_GCM"));
	json_object_set_new(o, "ciphertextDataIntegrityValueAlgorithm", json_string("SHA_256"));
	k_status rc = set_b64(o, "plaintext", pt);
	if (k_ok(rc) && has_aad)
		rc = set_b64(o, "additionalAuthenticatedData", aad);
	if (k_failed(rc)) {
		json_decref(o);
		return rc;
	}
	return dump(o, out);
}

k_status xks_body_decrypt(const struct xks_request_metadata *md, const struct xks_ciphertext *in,
			  struct kslice aad, bool has_aad, struct kbuf *out)
{
	json_t *o = json_object();
	ENSURE(o != NULL, K_E_INTERNAL);
	json_object_set_new(o, "requestMetadata", metadata_json(md));
	json_object_set_new(o, "encryptionAlgorithm", json_string("AES_GCM"));
	k_status rc = set_b64(o, "ciphertext", kbuf_slice(&in->ciphertext));
	if (k_ok(rc) && in->has_metadata)
		rc = set_b64(o, "ciphertextMetadata", kbuf_slice(&in->metadata));
	if (k_ok(rc))
		rc = set_b64(o, "initializationVector", kslice_make(in->iv, in->iv_len));
	if (k_ok(rc))
		rc = set_b64(o, "authenticationTag", kslice_make(in->tag, sizeof in->tag));
	if (k_ok(rc) && has_aad)
		rc = set_b64(o, "additionalAuthenticatedData", aad);
	if (k_failed(rc)) {
		json_decref(o);
		return rc;
	}
	return dump(o, out);
}

/* ---- answers ---- */

#define INVALID K_E_XKS_PROXY_INVALID_RESPONSE

static json_t *parse_object(struct kslice body)
{
	json_error_t e;
	if (body.len == 0 || body.len > XKS_MAX_BODY)
		return NULL;
	json_t *o = json_loadb((const char *)body.ptr, body.len, JSON_REJECT_DUPLICATES, &e);
	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* A string member copied into dst (n bytes); false if absent, not a string or too long. */
static bool copy_str(json_t *o, const char *name, char *dst, size_t n)
{
	json_t *v = json_object_get(o, name);
	if (!json_is_string(v) || json_string_length(v) >= n)
		return false;
	kstr_copy(dst, n, json_string_value(v));
	return true;
}

/* A base64 member decoded into b (its cap bounds it). */
static K_MUST_CHECK k_status get_b64(json_t *o, const char *name, struct kbuf *b)
{
	json_t *v = json_object_get(o, name);
	ENSURE(json_is_string(v), INVALID);
	ENSURE(k_ok(kbuf_decode_base64(b,
				       kslice_make(json_string_value(v), json_string_length(v)))),
	       INVALID);
	return K_OK;
}

/* The mapping of client.h's table. */
static k_status status_of(enum xks_error e)
{
	switch (e) {
	case XKS_E_AUTHENTICATION_FAILED:
		return K_E_XKS_PROXY_INCORRECT_AUTH;
	case XKS_E_INVALID_URI_PATH:
		return K_E_XKS_PROXY_INVALID_CONFIGURATION;
	case XKS_E_KEY_NOT_FOUND:
		return K_E_XKS_KEY_NOT_FOUND;
	case XKS_E_INVALID_STATE:
	case XKS_E_INVALID_KEY_USAGE:
		return K_E_XKS_KEY_INVALID_CONFIGURATION;
	case XKS_E_INVALID_CIPHERTEXT:
	case XKS_E_ACCESS_DENIED:
		return K_E_INVALID_STATE;
	case XKS_E_THROTTLING:
	case XKS_E_DEPENDENCY_TIMEOUT:
		return K_E_XKS_PROXY_URI_UNREACHABLE;
	case XKS_E_VALIDATION:
	case XKS_E_UNSUPPORTED_OPERATION:
	case XKS_E_INTERNAL:
	case XKS_E_COUNT:
	default:
		return INVALID;
	}
}

k_status xks_answer_error(long http_status, struct kslice body, struct xks_client_error *err)
{
	json_t *o = parse_object(body);
	const char *name = json_string_value(json_object_get(o, "errorName"));
	enum xks_error e = XKS_E_INTERNAL;
	bool known = xks_error_parse(name, &e);
	if (err != NULL) {
		err->http_status = http_status;
		err->has_proxy_error = known;
		err->proxy_error = e;
		const char *m = json_string_value(json_object_get(o, "errorMessage"));
		if (known)
			snprintf(err->message, sizeof err->message,
				 "the proxy answered %ld %s%s%.180s", http_status, name,
				 m != NULL ? ": " : "", m != NULL ? m : "");
		else
			snprintf(err->message, sizeof err->message,
				 "the proxy answered %ld without an error name of the XKS API",
				 http_status);
	}
	json_decref(o);
	return known ? status_of(e) : INVALID;
}

k_status xks_answer_metadata(struct kslice body, struct xks_key_metadata *out)
{
	memset(out, 0, sizeof *out);
	json_t *o = parse_object(body);
	json_t *u = json_object_get(o, "keyUsage");
	k_status rc =
		o != NULL && copy_str(o, "keySpec", out->key_spec, sizeof out->key_spec) &&
				copy_str(o, "keyStatus", out->key_status, sizeof out->key_status) &&
				json_is_array(u) && json_array_size(u) <= XKS_MAX_KEY_USAGES
			? K_OK
			: INVALID;
	size_t i;
	json_t *e;
	json_array_foreach(u, i, e)
	{
		if (k_failed(rc) || !json_is_string(e) ||
		    json_string_length(e) >= sizeof out->key_usage[0]) {
			rc = INVALID;
			break;
		}
		kstr_copy(out->key_usage[out->n_key_usage++], sizeof out->key_usage[0],
			  json_string_value(e));
	}
	json_decref(o);
	return rc;
}

/* "The response MUST have at least one and no more than ten entries in ekmFleetDetails." */
static K_MUST_CHECK k_status fleet(json_t *list, struct xks_health *out)
{
	ENSURE(json_is_array(list) && json_array_size(list) >= 1 &&
		       json_array_size(list) <= XKS_MAX_FLEET,
	       INVALID);
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
	{
		struct xks_health_ekm *d = &out->ekm[out->n_ekm++];
		ENSURE(json_is_object(e) && copy_str(e, "id", d->id, sizeof d->id) &&
			       copy_str(e, "model", d->model, sizeof d->model) &&
			       copy_str(e, "healthStatus", d->health_status,
					sizeof d->health_status),
		       INVALID);
	}
	return K_OK;
}

k_status xks_answer_health(struct kslice body, struct xks_health *out)
{
	memset(out, 0, sizeof *out);
	json_t *o = parse_object(body);
	json_t *size = json_object_get(o, "xksProxyFleetSize");
	k_status rc =
		o != NULL && json_is_integer(size) && json_integer_value(size) > 0 &&
				copy_str(o, "xksProxyVendor", out->vendor, sizeof out->vendor) &&
				copy_str(o, "xksProxyModel", out->model, sizeof out->model) &&
				copy_str(o, "ekmVendor", out->ekm_vendor, sizeof out->ekm_vendor)
			? K_OK
			: INVALID;
	if (k_ok(rc)) {
		out->fleet_size = (long)json_integer_value(size);
		rc = fleet(json_object_get(o, "ekmFleetDetails"), out);
	}
	json_decref(o);
	return rc;
}

/* IV, tag and CDIV of an Encrypt answer, checked for size. */
static K_MUST_CHECK k_status iv_tag(json_t *o, struct xks_ciphertext *out)
{
	struct kbuf iv, tag;
	kbuf_init(&iv, XKS_IV_LEN_LONG);
	kbuf_init(&tag, XKS_TAG_LEN);
	k_status rc = get_b64(o, "initializationVector", &iv);
	if (k_ok(rc))
		rc = get_b64(o, "authenticationTag", &tag);
	/* "The initialization vector MUST be either 12 bytes (96 bits) or 16 bytes"; the tag 16. */
	if (k_ok(rc) &&
	    ((iv.len != XKS_IV_LEN && iv.len != XKS_IV_LEN_LONG) || tag.len != XKS_TAG_LEN))
		rc = INVALID;
	if (k_ok(rc)) {
		memcpy(out->iv, iv.ptr, iv.len);
		out->iv_len = iv.len;
		memcpy(out->tag, tag.ptr, XKS_TAG_LEN);
	}
	kbuf_release(&iv);
	kbuf_release(&tag);
	return rc;
}

static K_MUST_CHECK k_status check_cdiv(json_t *o, struct kslice aad,
					const struct xks_ciphertext *c)
{
	uint8_t want[XKS_CDIV_LEN];
	struct kbuf got;
	kbuf_init(&got, XKS_CDIV_LEN);
	k_status rc = get_b64(o, "ciphertextDataIntegrityValue", &got);
	if (k_ok(rc))
		rc = xks_cdiv(aad, kbuf_slice(&c->metadata), kslice_make(c->iv, c->iv_len),
			      kbuf_slice(&c->ciphertext), kslice_make(c->tag, XKS_TAG_LEN), want);
	if (k_ok(rc) && (got.len != XKS_CDIV_LEN || !crypto_memeq(got.ptr, want, XKS_CDIV_LEN)))
		rc = INVALID;
	kbuf_release(&got);
	return rc;
}

k_status xks_answer_encrypt(struct kslice body, size_t pt_len, const struct kslice *aad_for_cdiv,
			    struct xks_ciphertext *out)
{
	json_t *o = parse_object(body);
	k_status rc = o != NULL ? get_b64(o, "ciphertext", &out->ciphertext) : INVALID;
	/* "the length of the ciphertext MUST be the same as the length of the plaintext" */
	if (k_ok(rc) && out->ciphertext.len != pt_len)
		rc = INVALID;
	if (k_ok(rc))
		rc = iv_tag(o, out);
	out->has_metadata = o != NULL && json_object_get(o, "ciphertextMetadata") != NULL;
	/* "If the size of the ciphertext Metadata exceeds 20 bytes, KMS will reject the response" */
	if (k_ok(rc) && out->has_metadata)
		rc = get_b64(o, "ciphertextMetadata", &out->metadata);
	if (k_ok(rc) && aad_for_cdiv != NULL)
		rc = check_cdiv(o, *aad_for_cdiv, out);
	json_decref(o);
	return rc;
}

k_status xks_answer_decrypt(struct kslice body, size_t ct_len, struct kbuf *pt)
{
	json_t *o = parse_object(body);
	struct kbuf got;
	kbuf_init(&got, XKS_MAX_PLAINTEXT);
	k_status rc = o != NULL ? get_b64(o, "plaintext", &got) : INVALID;
	/* "The size of the plaintext MUST be the same as the size of the ciphertext." */
	if (k_ok(rc) && got.len != ct_len)
		rc = INVALID;
	if (k_ok(rc))
		rc = kbuf_append(pt, got.ptr, got.len);
	kbuf_release(&got);
	json_decref(o);
	return rc;
}
