/*
 * ops.c — the XKS proxy's four operations over kinko's keys (proxy.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "config/xks.h"
#include "core/arn.h"
#include "crypto/aead.h"
#include "crypto/crypto.h"
#include "keystore/keyops.h"
#include "keystore/pkcs11.h"
#include "kms/keystores.h"
#include "kms/kms.h"
#include "xks/internal.h"
#include "core/json.h"
#include "core/banned.h"

#define XKS_VENDOR "kinko"
#define XKS_MODEL "kinko XKS proxy 1"

/*
 * The kinko key an external key id names: KeyNotFoundException when the
 * configuration names none or the key is not in the store. The snapshot
 * is the caller's (kms_key_unref).
 */
static K_MUST_CHECK k_status find_key(struct xks_call *c, struct kms_key **out)
{
	char id[CONFIG_XKS_MAX_KEY_ID + 1];
	snprintf(id, sizeof id, "%.*s", (int)c->key_id.len, (const char *)c->key_id.ptr);
	const char *arn = config_xks_key_arn(id);
	struct k_arn a;
	if (arn == NULL || !k_arn_parse_cstr(arn, &a)) {
		kbuf_note(c->msg, "No external key %s is configured", id);
		return K_E_NOT_FOUND;
	}
	char ns[64], key[64];
	snprintf(ns, sizeof ns, "%.*s:%.*s", (int)a.account.len, (const char *)a.account.ptr,
		 (int)a.region.len, (const char *)a.region.ptr);
	snprintf(key, sizeof key, "%.*s", (int)a.id.len, (const char *)a.id.ptr);
	k_status rc = K_OK;
	if (a.kind == K_ARN_ALIAS) {
		char alias[ALIAS_NAME_MAX + 1];
		snprintf(alias, sizeof alias, "%.*s", (int)a.resource.len,
			 (const char *)a.resource.ptr);
		rc = kms_alias_lookup(ns, alias, key);
	}
	snprintf(c->key_account, sizeof c->key_account, "%.*s", (int)a.account.len,
		 (const char *)a.account.ptr);
	if (k_ok(rc))
		rc = kms_key_get(ns, key, out);
	if (k_is(rc, K_E_NOT_FOUND)) {
		kbuf_note(c->msg, "The key of external key %s does not exist", id);
		return K_E_NOT_FOUND;
	}
	return rc;
}

/*
 * Encrypt and Decrypt need an Enabled SYMMETRIC_DEFAULT key with material.
 * A key held in a PKCS#11 token whose store is not connected, or whose
 * token went away, is Unavailable: the spec's InvalidStateException ("the
 * specified external key or key store is disabled, deactivated or
 * blocked").
 */
static K_MUST_CHECK k_status usable(struct xks_call *c, const struct kms_key *k)
{
	enum kms_key_state state = kms_key_state_now(k);
	if (state == KS_UNAVAILABLE) {
		kbuf_note(c->msg, "The key store of the external key is not connected");
		return K_E_INVALID_STATE;
	}
	if (state != KS_ENABLED) {
		kbuf_note(c->msg, "The external key is %s", kms_state_name(state));
		return K_E_INVALID_STATE;
	}
	if (k->spec == NULL || strcmp(k->spec, "SYMMETRIC_DEFAULT") != 0) {
		kbuf_note(c->msg, "The external key is not an AES-256 key");
		return K_E_INVALID_KEY_USAGE;
	}
	if (keystore_key_versions(k->handle) == 0) {
		kbuf_note(c->msg, "The external key has no key material");
		return K_E_INVALID_STATE;
	}
	return K_OK;
}

static K_MUST_CHECK k_status append_b64_member(struct kbuf *out, const char *name, struct kslice v,
					       bool first)
{
	GUARD(kbuf_appendf(out, "%s\"%s\":\"", first ? "" : ",", name));
	GUARD(kbuf_append_base64(out, v.ptr, v.len));
	return kbuf_append_byte(out, '"');
}

/*
 * GetKeyMetadata. "keySpec ... The XKS Proxy must use the string AES_256
 * to indicate a 256-bit AES key", keyUsage "ENCRYPT" and "DECRYPT",
 * keyStatus ENABLED or DISABLED. A kinko key of another spec is described
 * as it is (a KMS client refuses it: "keySpec is not AES_256").
 */
static K_MUST_CHECK k_status op_metadata(struct xks_call *c)
{
	struct kms_key *k = NULL;
	GUARD(find_key(c, &k));
	bool aes = k->spec != NULL && strcmp(k->spec, "SYMMETRIC_DEFAULT") == 0;
	const char *usage = k->usage != NULL ? k->usage : "";
	const char *usages = strcmp(usage, "ENCRYPT_DECRYPT") == 0 ? "\"ENCRYPT\",\"DECRYPT\""
			     : strcmp(usage, "KEY_AGREEMENT") == 0 ? "\"DERIVE\""
								   : "\"SIGN\",\"VERIFY\"";
	k_status rc = kbuf_appendf(
		c->response, "{\"keySpec\":\"%s\",\"keyUsage\":[%s],\"keyStatus\":\"%s\"}",
		aes		  ? "AES_256"
		: k->spec != NULL ? k->spec
				  : "",
		usages, kms_key_state_now(k) == KS_ENABLED ? "ENABLED" : "DISABLED");
	kms_key_unref(k);
	return rc;
}

/* Encrypt's ciphertextMetadata for material version v. */
static void metadata_of(uint32_t v, uint8_t md[XKS_METADATA_LEN])
{
	md[0] = XKS_METADATA_FORMAT;
	md[1] = (uint8_t)(v >> 24);
	md[2] = (uint8_t)(v >> 16);
	md[3] = (uint8_t)(v >> 8);
	md[4] = (uint8_t)v;
}

/*
 * Appendix C: the CDIV is computed over the encrypt output first, then a
 * decrypt of that output must give the plaintext back, before the answer
 * is sent ("If the decryption fails, return an error").
 */
static K_MUST_CHECK k_status cdiv_checked(const struct kms_key *k, struct keystore_gcm *g,
					  struct kslice md, struct kslice pt, struct kslice ct,
					  uint8_t cdiv[XKS_CDIV_LEN], struct xks_call *c)
{
	GUARD(xks_cdiv(kbuf_slice(&c->req->aad), md, kslice_make(g->iv, sizeof g->iv), ct,
		       kslice_make(g->tag, sizeof g->tag), cdiv));
	struct kbuf back;
	kbuf_init(&back, XKS_MAX_PLAINTEXT);
	k_status rc = keystore_gcm_decrypt(k->handle, g, ct, &back);
	if (k_ok(rc) && (back.len != pt.len || !crypto_memeq(back.ptr, pt.ptr, pt.len)))
		rc = K_E_INTERNAL;
	kbuf_release(&back);
	return rc;
}

static K_MUST_CHECK k_status encrypt_answer(struct xks_call *c, const struct keystore_gcm *g,
					    struct kslice md, struct kslice ct, const uint8_t *cdiv)
{
	struct kbuf *o = c->response;
	GUARD(kbuf_append_byte(o, '{'));
	GUARD(append_b64_member(o, "ciphertext", ct, true));
	GUARD(append_b64_member(o, "ciphertextMetadata", md, false));
	GUARD(append_b64_member(o, "initializationVector", kslice_make(g->iv, sizeof g->iv),
				false));
	GUARD(append_b64_member(o, "authenticationTag", kslice_make(g->tag, sizeof g->tag), false));
	if (cdiv != NULL)
		GUARD(append_b64_member(o, "ciphertextDataIntegrityValue",
					kslice_make(cdiv, XKS_CDIV_LEN), false));
	return kbuf_append_byte(o, '}');
}

static K_MUST_CHECK k_status op_encrypt(struct xks_call *c)
{
	struct kms_key *k = NULL;
	uint8_t md[XKS_METADATA_LEN], cdiv[XKS_CDIV_LEN];
	struct kbuf aad, ct;
	kbuf_init(&aad, XKS_MAX_AAD + XKS_METADATA_LEN + 3);
	kbuf_init(&ct, XKS_MAX_PLAINTEXT + XKS_TAG_LEN); /* the tag passes through it */
	struct keystore_gcm g = {.label = KSLICE_LIT(XKS_GCM_LABEL)};
	struct kslice pt = kbuf_slice(&c->req->plaintext);
	k_status rc = find_key(c, &k);
	if (k_ok(rc))
		rc = usable(c, k);
	/* The version is known only after the encryption: the newest one, read first. */
	if (k_ok(rc)) {
		metadata_of(keystore_key_versions(k->handle), md);
		rc = xks_gcm_aad(kbuf_slice(&c->req->aad), kslice_make(md, sizeof md), &aad);
	}
	if (k_ok(rc)) {
		g.aad = kbuf_slice(&aad);
		rc = keystore_gcm_encrypt(k->handle, &g, pt, &ct);
	}
	if (k_is(rc, K_E_INVALID_STATE))
		kbuf_note(c->msg, "The key store of the external key is unavailable");
	if (k_ok(rc) && g.version != keystore_key_versions(k->handle))
		rc = K_E_INTERNAL;
	if (k_ok(rc) && c->req->want_cdiv)
		rc = cdiv_checked(k, &g, kslice_make(md, sizeof md), pt, kbuf_slice(&ct), cdiv, c);
	if (k_ok(rc))
		rc = encrypt_answer(c, &g, kslice_make(md, sizeof md), kbuf_slice(&ct),
				    c->req->want_cdiv ? cdiv : NULL);
	kms_key_unref(k);
	kbuf_release(&aad);
	kbuf_release(&ct);
	return rc;
}

/* The material version a ciphertextMetadata of kinko's names; false if it is not one. */
static bool metadata_version(const struct xks_request *r, uint32_t *v)
{
	const uint8_t *m = r->ciphertext_metadata.ptr;
	if (!r->has_ciphertext_metadata || r->ciphertext_metadata.len != XKS_METADATA_LEN ||
	    m[0] != XKS_METADATA_FORMAT)
		return false;
	*v = (uint32_t)m[1] << 24 | (uint32_t)m[2] << 16 | (uint32_t)m[3] << 8 | m[4];
	return true;
}

static K_MUST_CHECK k_status op_decrypt(struct xks_call *c)
{
	struct kms_key *k = NULL;
	struct kbuf aad, pt;
	kbuf_init(&aad, XKS_MAX_AAD + XKS_METADATA_LEN + 3);
	kbuf_init(&pt, XKS_MAX_PLAINTEXT);
	struct keystore_gcm g = {.label = KSLICE_LIT(XKS_GCM_LABEL)};
	const struct xks_request *r = c->req;
	k_status rc = find_key(c, &k);
	if (k_ok(rc))
		rc = usable(c, k);
	/* kinko makes 12-byte IVs and its own metadata: anything else is not its ciphertext. */
	if (k_ok(rc) && (!metadata_version(r, &g.version) || r->iv.len != XKS_IV_LEN))
		rc = K_E_INVALID_CIPHERTEXT;
	if (k_ok(rc))
		rc = xks_gcm_aad(kbuf_slice(&r->aad), kbuf_slice(&r->ciphertext_metadata), &aad);
	if (k_ok(rc)) {
		memcpy(g.iv, r->iv.ptr, sizeof g.iv);
		memcpy(g.tag, r->tag.ptr, sizeof g.tag);
		g.aad = kbuf_slice(&aad);
		rc = keystore_gcm_decrypt(k->handle, &g, kbuf_slice(&r->ciphertext), &pt);
	}
	if (k_is(rc, K_E_INVALID_STATE) && c->msg->len == 0)
		kbuf_note(c->msg, "The key store of the external key is unavailable");
	if (k_is(rc, K_E_INVALID_CIPHERTEXT))
		kbuf_note(c->msg, "The request was rejected because the specified ciphertext, "
				  "or additional authenticated data is corrupted, missing, or "
				  "otherwise invalid.");
	if (k_ok(rc))
		rc = kbuf_append_str(c->response, "{");
	if (k_ok(rc))
		rc = append_b64_member(c->response, "plaintext", kbuf_slice(&pt), true);
	if (k_ok(rc))
		rc = kbuf_append_byte(c->response, '}');
	kms_key_unref(k);
	kbuf_release(&aad);
	kbuf_release(&pt);
	return rc;
}

/*
 * GetHealthStatus: "the health-check SHOULD be deep rather than shallow"
 * and "SHOULD do so using a test key ... rather than a key associated
 * with a KMS key". kinko makes a throw-away key and runs the same GCM
 * round trip that Encrypt and Decrypt run; a failure answers
 * healthStatus UNAVAILABLE (the answer itself is still 200).
 */
static bool deep_check(void)
{
	struct ksecret *test = crypto_random_secret(CRYPTO_KEY_LEN);
	uint8_t iv[CRYPTO_AEAD_IV_LEN], tag[CRYPTO_AEAD_TAG_LEN];
	struct kbuf ct, back;
	kbuf_init(&ct, XKS_TAG_LEN * 2);
	kbuf_init(&back, XKS_TAG_LEN * 2);
	struct kslice pt = KSLICE_LIT("kinko xks health");
	bool ok = test != NULL &&
		  k_ok(crypto_aead_seal(test, KSLICE_LIT(XKS_GCM_LABEL), KSLICE_LIT("health"), pt,
					iv, &ct, tag)) &&
		  k_ok(crypto_aead_open(test, KSLICE_LIT(XKS_GCM_LABEL), kslice_make(iv, sizeof iv),
					KSLICE_LIT("health"), kbuf_slice(&ct),
					kslice_make(tag, sizeof tag), &back)) &&
		  kslice_eq(kbuf_slice(&back), pt);
	ksecret_free(test);
	kbuf_release(&ct);
	kbuf_release(&back);
	return ok;
}

/*
 * ekmFleetDetails: the software store first (its deep check), then each
 * PKCS#11 token of the configuration ("hsm_tokens"), whose keys the proxy
 * may serve: ACTIVE when it is connected and answers, UNAVAILABLE when its
 * store is not connected or it went away. "The response MUST have at
 * least one and no more than ten entries in ekmFleetDetails."
 */
#define XKS_MAX_FLEET_ENTRIES 10

static json_t *fleet_details(void)
{
	const char *node = cluster_node_id()[0] != 0 ? cluster_node_id() : "kinko";
	json_t *list = json_pack("[{s:s,s:s,s:s}]", "id", node, "model", "kinko software key store",
				 "healthStatus", deep_check() ? "ACTIVE" : "UNAVAILABLE");
	size_t n = keystore_p11_token_count();
	for (size_t i = 0; list != NULL && i < n && i + 1 < XKS_MAX_FLEET_ENTRIES; i++) {
		const char *id = keystore_p11_token_id(i);
		json_array_append_new(list,
				      json_pack("{s:s,s:s,s:s}", "id", id, "model", "PKCS#11 token",
						"healthStatus",
						keystore_p11_probe(id) ? "ACTIVE" : "UNAVAILABLE"));
	}
	return list;
}

static K_MUST_CHECK k_status op_health(struct xks_call *c)
{
	json_t *fleet = fleet_details();
	json_t *o = fleet != NULL
			    ? json_pack("{s:i,s:s,s:s,s:s,s:o}", "xksProxyFleetSize", 1,
					"xksProxyVendor", XKS_VENDOR, "xksProxyModel", XKS_MODEL,
					"ekmVendor", XKS_VENDOR, "ekmFleetDetails", fleet)
			    : NULL;
	char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	ENSURE(text != NULL, K_E_INTERNAL);
	k_status rc = kbuf_append_str(c->response, text);
	kjson_free(text);
	return rc;
}

k_status xks_run(struct xks_call *c)
{
	switch (c->req->op) {
	case XKS_OP_METADATA:
		return op_metadata(c);
	case XKS_OP_ENCRYPT:
		return op_encrypt(c);
	case XKS_OP_DECRYPT:
		return op_decrypt(c);
	case XKS_OP_HEALTH:
		return op_health(c);
	case XKS_OP_NONE:
	default:
		return K_E_INTERNAL;
	}
}
