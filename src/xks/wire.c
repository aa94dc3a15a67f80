/*
 * wire.c — the XKS proxy API's routes, request bodies and errors (wire.h).
 */
#include "xks/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "core/json.h"
#include "core/banned.h"

/* ---- operations and routes ---- */

const char *xks_op_name(enum xks_op op)
{
	switch (op) {
	case XKS_OP_METADATA:
		return "GetKeyMetadata";
	case XKS_OP_ENCRYPT:
		return "Encrypt";
	case XKS_OP_DECRYPT:
		return "Decrypt";
	case XKS_OP_HEALTH:
		return "GetHealthStatus";
	case XKS_OP_NONE:
	default:
		return "";
	}
}

/* "uppercase or lowercase letters A through Z, the digits 0 through 9, the hyphen, the period and the underscore" */
static bool key_id_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

/* The operation a key route's last segment names. */
static enum xks_op key_op(struct kslice last)
{
	if (kslice_eq_cstr(last, "metadata"))
		return XKS_OP_METADATA;
	if (kslice_eq_cstr(last, "encrypt"))
		return XKS_OP_ENCRYPT;
	if (kslice_eq_cstr(last, "decrypt"))
		return XKS_OP_DECRYPT;
	return XKS_OP_NONE;
}

k_status xks_route(struct kslice path, const char *uri_path, struct xks_route *out)
{
	memset(out, 0, sizeof *out);
	size_t pl = strlen(uri_path);
	ENSURE(path.len > pl && memcmp(path.ptr, uri_path, pl) == 0, K_E_NOT_FOUND_HTTP);
	struct kslice rest = kslice_make(path.ptr + pl, path.len - pl);
	if (kslice_eq_cstr(rest, "/health")) {
		out->op = XKS_OP_HEALTH;
		return K_OK;
	}
	ENSURE(kslice_has_prefix(rest, "/keys/"), K_E_NOT_FOUND_HTTP);
	rest = kslice_make(rest.ptr + 6, rest.len - 6);
	const uint8_t *slash = rest.len > 0 ? memchr(rest.ptr, '/', rest.len) : NULL;
	ENSURE(slash != NULL, K_E_NOT_FOUND_HTTP);
	struct kslice id = kslice_make(rest.ptr, (size_t)(slash - rest.ptr));
	struct kslice last = kslice_make(slash + 1, rest.len - id.len - 1);
	ENSURE(id.len >= 1 && id.len <= 128, K_E_NOT_FOUND_HTTP);
	for (size_t i = 0; i < id.len; i++)
		ENSURE(key_id_char(id.ptr[i]), K_E_NOT_FOUND_HTTP);
	out->op = key_op(last);
	ENSURE(out->op != XKS_OP_NONE, K_E_NOT_FOUND_HTTP);
	out->key_id = id;
	return K_OK;
}

/* ---- requests ---- */

void xks_request_init(struct xks_request *r)
{
	memset(r, 0, sizeof *r);
	/* Base64 decodes into at most 3/4 of its text; the caps are the decoded sizes. */
	kbuf_init(&r->plaintext, XKS_MAX_PLAINTEXT);
	kbuf_init(&r->ciphertext, XKS_MAX_PLAINTEXT);
	kbuf_init(&r->aad, XKS_MAX_AAD);
	kbuf_init(&r->ciphertext_metadata, XKS_MAX_CIPHERTEXT_METADATA);
	kbuf_init(&r->iv, XKS_IV_LEN_LONG);
	kbuf_init(&r->tag, XKS_TAG_LEN);
}

void xks_request_release(struct xks_request *r)
{
	json_decref(r->root);
	r->root = NULL;
	kbuf_release(&r->plaintext);
	kbuf_release(&r->ciphertext);
	kbuf_release(&r->aad);
	kbuf_release(&r->ciphertext_metadata);
	kbuf_release(&r->iv);
	kbuf_release(&r->tag);
}

/* A string member of o: K_OK with *out NULL when absent and optional. */
static K_MUST_CHECK k_status member_str(json_t *o, const char *where, const char *name,
					bool required, const char **out, struct kbuf *msg)
{
	json_t *v = json_object_get(o, name);
	*out = NULL;
	if (v == NULL && !required)
		return K_OK;
	if (v == NULL) {
		kbuf_note(msg, "%s%s is required", where, name);
		return K_E_VALIDATION;
	}
	if (!json_is_string(v) || json_string_length(v) > XKS_MAX_METADATA_STRING) {
		kbuf_note(msg, "%s%s must be a string of at most %d characters", where, name,
			  XKS_MAX_METADATA_STRING);
		return K_E_VALIDATION;
	}
	*out = json_string_value(v);
	return K_OK;
}

/*
 * requestMetadata, as each operation's "Request Payload Parameters" list
 * it: awsPrincipalArn is required except for GetHealthStatus, kmsKeyArn
 * for Encrypt and Decrypt ("OPTIONAL" for GetKeyMetadata, absent from
 * GetHealthStatus), kmsOperation and kmsRequestId always.
 */
static K_MUST_CHECK k_status parse_metadata(enum xks_op op, json_t *root,
					    struct xks_request_metadata *md, struct kbuf *msg)
{
	static const char where[] = "requestMetadata.";
	json_t *o = json_object_get(root, "requestMetadata");
	if (!json_is_object(o)) {
		kbuf_note(msg, "requestMetadata is required and must be an object");
		return K_E_VALIDATION;
	}
	bool key_op = op != XKS_OP_HEALTH;
	bool crypto = op == XKS_OP_ENCRYPT || op == XKS_OP_DECRYPT;
	GUARD(member_str(o, where, "awsPrincipalArn", key_op, &md->aws_principal_arn, msg));
	GUARD(member_str(o, where, "awsSourceVpc", false, &md->aws_source_vpc, msg));
	GUARD(member_str(o, where, "awsSourceVpce", false, &md->aws_source_vpce, msg));
	GUARD(member_str(o, where, "kmsKeyArn", crypto, &md->kms_key_arn, msg));
	GUARD(member_str(o, where, "kmsOperation", true, &md->kms_operation, msg));
	GUARD(member_str(o, where, "kmsRequestId", true, &md->kms_request_id, msg));
	GUARD(member_str(o, where, "kmsViaService", false, &md->kms_via_service, msg));
	return K_OK;
}

/*
 * A base64 member decoded into b (whose cap is the decoded bound). Absent
 * and optional: K_OK, *present false. Larger than the cap: `too_big`.
 */
static K_MUST_CHECK k_status member_b64(json_t *root, const char *name, bool required,
					struct kbuf *b, bool *present, k_status too_big,
					struct kbuf *msg)
{
	json_t *v = json_object_get(root, name);
	if (present != NULL)
		*present = v != NULL;
	if (v == NULL && !required)
		return K_OK;
	if (v == NULL) {
		kbuf_note(msg, "%s is required", name);
		return K_E_VALIDATION;
	}
	if (!json_is_string(v)) {
		kbuf_note(msg, "%s must be a Base64 string", name);
		return K_E_VALIDATION;
	}
	size_t n = json_string_length(v);
	if (n / 4 * 3 > b->max + 2) {
		kbuf_note(msg, "%s is longer than %zu bytes", name, b->max);
		return too_big;
	}
	if (k_failed(kbuf_decode_base64(b, kslice_make(json_string_value(v), n)))) {
		if (n / 4 * 3 > b->max) {
			kbuf_note(msg, "%s is longer than %zu bytes", name, b->max);
			return too_big;
		}
		kbuf_note(msg, "%s is not valid Base64", name);
		return K_E_VALIDATION;
	}
	return K_OK;
}

/* encryptionAlgorithm: "For the v1 specification, this MUST be AES_GCM." */
static K_MUST_CHECK k_status parse_algorithm(json_t *root, struct kbuf *msg)
{
	const char *alg;
	GUARD(member_str(root, "", "encryptionAlgorithm", true, &alg, msg));
	if (strcmp(alg, "AES_GCM") != 0) {
		kbuf_note(msg, "encryptionAlgorithm must be AES_GCM");
		return K_E_VALIDATION;
	}
	return K_OK;
}

static K_MUST_CHECK k_status parse_encrypt(struct xks_request *r, struct kbuf *msg)
{
	const char *cdiv;
	GUARD(member_b64(r->root, "plaintext", true, &r->plaintext, NULL, K_E_UNSUPPORTED, msg));
	GUARD(parse_algorithm(r->root, msg));
	GUARD(member_b64(r->root, "additionalAuthenticatedData", false, &r->aad, &r->has_aad,
			 K_E_UNSUPPORTED, msg));
	GUARD(member_str(r->root, "", "ciphertextDataIntegrityValueAlgorithm", false, &cdiv, msg));
	if (cdiv != NULL && strcmp(cdiv, "SHA_256") != 0) {
		kbuf_note(msg, "ciphertextDataIntegrityValueAlgorithm must be SHA_256");
		return K_E_VALIDATION;
	}
	r->want_cdiv = cdiv != NULL;
	return K_OK;
}

static K_MUST_CHECK k_status parse_decrypt(struct xks_request *r, struct kbuf *msg)
{
	GUARD(member_b64(r->root, "ciphertext", true, &r->ciphertext, NULL, K_E_UNSUPPORTED, msg));
	GUARD(member_b64(r->root, "ciphertextMetadata", false, &r->ciphertext_metadata,
			 &r->has_ciphertext_metadata, K_E_VALIDATION, msg));
	GUARD(parse_algorithm(r->root, msg));
	GUARD(member_b64(r->root, "additionalAuthenticatedData", false, &r->aad, &r->has_aad,
			 K_E_UNSUPPORTED, msg));
	GUARD(member_b64(r->root, "initializationVector", true, &r->iv, NULL, K_E_VALIDATION, msg));
	GUARD(member_b64(r->root, "authenticationTag", true, &r->tag, NULL, K_E_VALIDATION, msg));
	if (r->iv.len != XKS_IV_LEN && r->iv.len != XKS_IV_LEN_LONG) {
		kbuf_note(msg, "initializationVector must be 12 or 16 bytes");
		return K_E_VALIDATION;
	}
	if (r->tag.len != XKS_TAG_LEN) {
		kbuf_note(msg, "authenticationTag must be 16 bytes");
		return K_E_VALIDATION;
	}
	return K_OK;
}

k_status xks_request_parse(enum xks_op op, struct kslice body, struct xks_request *r,
			   struct kbuf *msg)
{
	json_error_t err;
	r->op = op;
	if (body.len > XKS_MAX_BODY) {
		kbuf_note(msg, "The request body is larger than %u bytes", XKS_MAX_BODY);
		return K_E_VALIDATION;
	}
	r->root = json_loadb((const char *)body.ptr, body.len, JSON_REJECT_DUPLICATES, &err);
	if (!json_is_object(r->root)) {
		kbuf_note(msg, "The request body is not a JSON object");
		return K_E_VALIDATION;
	}
	GUARD(parse_metadata(op, r->root, &r->md, msg));
	switch (op) {
	case XKS_OP_ENCRYPT:
		return parse_encrypt(r, msg);
	case XKS_OP_DECRYPT:
		return parse_decrypt(r, msg);
	case XKS_OP_METADATA:
	case XKS_OP_HEALTH:
		return K_OK;
	case XKS_OP_NONE:
	default:
		return K_E_INTERNAL;
	}
}

/* ---- errors ---- */

static const struct {
	const char *name;
	int status;
} errors[XKS_E_COUNT] = {
	[XKS_E_VALIDATION] = {"ValidationException", 400},
	[XKS_E_INVALID_STATE] = {"InvalidStateException", 400},
	[XKS_E_INVALID_CIPHERTEXT] = {"InvalidCiphertextException", 400},
	[XKS_E_INVALID_KEY_USAGE] = {"InvalidKeyUsageException", 400},
	[XKS_E_AUTHENTICATION_FAILED] = {"AuthenticationFailedException", 401},
	[XKS_E_ACCESS_DENIED] = {"AccessDeniedException", 403},
	[XKS_E_KEY_NOT_FOUND] = {"KeyNotFoundException", 404},
	[XKS_E_INVALID_URI_PATH] = {"InvalidUriPathException", 404},
	[XKS_E_THROTTLING] = {"ThrottlingException", 429},
	[XKS_E_UNSUPPORTED_OPERATION] = {"UnsupportedOperationException", 501},
	[XKS_E_DEPENDENCY_TIMEOUT] = {"DependencyTimeoutException", 503},
	[XKS_E_INTERNAL] = {"InternalException", 500},
};

enum xks_error xks_error_of(k_status st)
{
	switch (k_code(st)) {
	case KC_E_VALIDATION:
		return XKS_E_VALIDATION;
	case KC_E_INVALID_STATE:
		return XKS_E_INVALID_STATE;
	case KC_E_INVALID_CIPHERTEXT:
		return XKS_E_INVALID_CIPHERTEXT;
	case KC_E_INVALID_KEY_USAGE:
		return XKS_E_INVALID_KEY_USAGE;
	case KC_E_INVALID_SIGNATURE:
	case KC_E_MISSING_AUTH:
	case KC_E_INCOMPLETE_SIGNATURE:
	case KC_E_UNRECOGNIZED_CLIENT:
		return XKS_E_AUTHENTICATION_FAILED;
	case KC_E_ACCESS_DENIED:
		return XKS_E_ACCESS_DENIED;
	case KC_E_NOT_FOUND:
		return XKS_E_KEY_NOT_FOUND;
	case KC_E_NOT_FOUND_HTTP:
		return XKS_E_INVALID_URI_PATH;
	case KC_E_THROTTLING:
		return XKS_E_THROTTLING;
	case KC_E_UNSUPPORTED:
		return XKS_E_UNSUPPORTED_OPERATION;
	case KC_E_DEPENDENCY_TIMEOUT:
		return XKS_E_DEPENDENCY_TIMEOUT;
	default:
		return XKS_E_INTERNAL;
	}
}

const char *xks_error_name(enum xks_error e)
{
	return e < XKS_E_COUNT ? errors[e].name : errors[XKS_E_INTERNAL].name;
}

int xks_error_status(enum xks_error e)
{
	return e < XKS_E_COUNT ? errors[e].status : 500;
}

bool xks_error_parse(const char *name, enum xks_error *out)
{
	for (int i = 0; i < XKS_E_COUNT; i++) {
		if (name != NULL && strcmp(errors[i].name, name) == 0) {
			*out = (enum xks_error)i;
			return true;
		}
	}
	return false;
}

k_status xks_error_body(enum xks_error e, const char *message, struct kbuf *out)
{
	char clean[XKS_MAX_ERROR_MESSAGE + 1];
	size_t n = 0;
	for (; message != NULL && message[n] != 0 && n < XKS_MAX_ERROR_MESSAGE; n++) {
		unsigned char c = (unsigned char)message[n];
		clean[n] = c >= 0x20 && c <= 0x7e ? (char)c : '?';
	}
	clean[n] = 0;
	json_t *o = json_object();
	if (o == NULL)
		return K_E_INTERNAL;
	json_object_set_new(o, "errorName", json_string(xks_error_name(e)));
	if (n > 0)
		json_object_set_new(o, "errorMessage", json_string(clean));
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (text == NULL)
		return K_E_INTERNAL;
	k_status rc = kbuf_append_str(out, text);
	kjson_free(text);
	return rc;
}

/* ---- AAD and CDIV ---- */

k_status xks_gcm_aad(struct kslice aad, struct kslice ciphertext_metadata, struct kbuf *out)
{
	ENSURE(aad.len <= 0xffff && ciphertext_metadata.len <= 0xff, K_E_VALIDATION);
	uint8_t len2[2] = {(uint8_t)(aad.len >> 8), (uint8_t)(aad.len & 0xff)};
	GUARD(kbuf_append(out, len2, sizeof len2));
	if (aad.len > 0)
		GUARD(kbuf_append(out, aad.ptr, aad.len));
	GUARD(kbuf_append_byte(out, (uint8_t)ciphertext_metadata.len));
	if (ciphertext_metadata.len > 0)
		GUARD(kbuf_append(out, ciphertext_metadata.ptr, ciphertext_metadata.len));
	return K_OK;
}

/* What the CDIV hashes: every field at its largest. */
#define XKS_CDIV_INPUT_MAX                                                                         \
	(XKS_MAX_AAD + XKS_MAX_CIPHERTEXT_METADATA + XKS_IV_LEN_LONG + XKS_MAX_PLAINTEXT +         \
	 XKS_TAG_LEN)

k_status xks_cdiv(struct kslice aad, struct kslice ciphertext_metadata, struct kslice iv,
		  struct kslice ciphertext, struct kslice tag, uint8_t out[XKS_CDIV_LEN])
{
	const struct kslice parts[] = {aad, ciphertext_metadata, iv, ciphertext, tag};
	struct kbuf all;
	kbuf_init(&all, XKS_CDIV_INPUT_MAX);
	k_status rc = K_OK;
	for (size_t i = 0; i < sizeof parts / sizeof parts[0] && k_ok(rc); i++) {
		if (parts[i].len > 0)
			rc = kbuf_append(&all, parts[i].ptr, parts[i].len);
	}
	if (k_ok(rc))
		rc = crypto_sha256(all.ptr, all.len, out);
	kbuf_release(&all);
	return rc;
}
