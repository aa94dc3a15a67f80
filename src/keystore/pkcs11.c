/*
 * pkcs11.c — the token store's key operations (keystore/pkcs11.h).
 *
 * A material version is an AES-256 secret key object in the token, found
 * by its CKA_ID: the KMS key's UUID and the version (4 bytes, big endian).
 * The reference kept in the key document is
 *     pkcs11:v1:<token id>:<CKA_ID in hex>
 * Blobs keep the layout of docs/CIPHERTEXT.md (header, AES-256-GCM
 * ciphertext, tag; AAD = header || canonical encryption context); inside a
 * token the GCM key is the object itself and the IV is the first 12 bytes
 * of the header's nonce, since a token cannot run kinko's HKDF.
 */
#include "keystore/p11_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/wipe.h"
#include "crypto/crypto.h"
#include "core/banned.h"

#define P11_ID_LEN 20 /* UUID (16) and version (4) */
#define P11_IV_LEN 12
#define P11_TAG_LEN 16
#define P11_REF_PREFIX "pkcs11:v1:"

struct p11_key {
	struct keystore_key base; /* first: the handle callers hold */
	struct p11_token *token;  /* NULL if the configuration no longer declares it */
	char token_id[P11_CLUSTER_ID_LEN + 1];
	uint8_t ids[][P11_ID_LEN]; /* version i+1 is ids[i] */
};

static const struct p11_key *p11k(const struct keystore_key *h)
{
	return (const struct p11_key *)(const void *)h;
}

static void object_id(const uint8_t key_id[16], uint32_t version, uint8_t out[P11_ID_LEN])
{
	memcpy(out, key_id, 16);
	out[16] = (uint8_t)(version >> 24);
	out[17] = (uint8_t)(version >> 16);
	out[18] = (uint8_t)(version >> 8);
	out[19] = (uint8_t)version;
}

static K_MUST_CHECK k_status append_ref(const char *token, const uint8_t id[P11_ID_LEN],
					struct kbuf *ref)
{
	GUARD(kbuf_appendf(ref, "%s%s:", P11_REF_PREFIX, token));
	return kbuf_append_hex(ref, id, P11_ID_LEN);
}

static K_MUST_CHECK k_status generate_in(struct p11_token *t, CK_SESSION_HANDLE s,
					 const uint8_t id[P11_ID_LEN], const char *arn)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE type = CKK_AES;
	CK_ULONG len = 32;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	char label[256];
	snprintf(label, sizeof label, "kinko %s", arn);
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &cls, sizeof cls},	   {CKA_KEY_TYPE, &type, sizeof type},
		{CKA_VALUE_LEN, &len, sizeof len}, {CKA_TOKEN, &yes, sizeof yes},
		{CKA_PRIVATE, &yes, sizeof yes},   {CKA_SENSITIVE, &yes, sizeof yes},
		{CKA_EXTRACTABLE, &no, sizeof no}, {CKA_ENCRYPT, &yes, sizeof yes},
		{CKA_DECRYPT, &yes, sizeof yes},   {CKA_WRAP, &no, sizeof no},
		{CKA_UNWRAP, &no, sizeof no},	   {CKA_ID, (void *)(uintptr_t)id, P11_ID_LEN},
		{CKA_LABEL, label, strlen(label)},
	};
	CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
	CK_OBJECT_HANDLE obj;
	CK_RV rv = t->f->C_GenerateKey(s, &mech, tmpl, sizeof tmpl / sizeof tmpl[0], &obj);
	if (rv != CKR_OK) {
		LOG_ERROR("token %s: key generation refused (0x%lx)", t->id, (unsigned long)rv);
		if (p11_rv_lost(rv))
			p11_mark_lost(t, rv);
		return K_E_INVALID_STATE;
	}
	return K_OK;
}

k_status keystore_p11_generate(const char *id, const uint8_t key_id[16], const char *arn,
			       struct kbuf *ref)
{
	struct p11_token *t = p11_token_find(id);
	if (t == NULL)
		return K_E_INVALID_STATE;
	uint8_t oid[P11_ID_LEN];
	object_id(key_id, 1, oid);
	CK_SESSION_HANDLE s;
	GUARD(p11_take(t, &s));
	k_status rc = generate_in(t, s, oid, arn);
	p11_put(t, s, k_failed(rc));
	if (k_ok(rc))
		rc = append_ref(id, oid, ref);
	return rc;
}

/* "pkcs11:v1:<token>:<40 hex digits>" into its token id and object id. */
static K_MUST_CHECK k_status parse_ref(struct kslice r, char token[P11_CLUSTER_ID_LEN + 1],
				       uint8_t id[P11_ID_LEN])
{
	size_t pre = strlen(P11_REF_PREFIX);
	if (r.len != pre + P11_CLUSTER_ID_LEN + 1 + 2 * P11_ID_LEN ||
	    memcmp(r.ptr, P11_REF_PREFIX, pre) != 0 || r.ptr[pre + P11_CLUSTER_ID_LEN] != ':')
		return K_E_INTERNAL;
	memcpy(token, r.ptr + pre, P11_CLUSTER_ID_LEN);
	token[P11_CLUSTER_ID_LEN] = 0;
	const uint8_t *hex = r.ptr + pre + P11_CLUSTER_ID_LEN + 1;
	for (size_t i = 0; i < P11_ID_LEN; i++) {
		unsigned v = 0;
		for (size_t j = 0; j < 2; j++) {
			uint8_t ch = hex[2 * i + j];
			unsigned d = ch >= '0' && ch <= '9'   ? (unsigned)(ch - '0')
				     : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
							      : 16u;
			if (d == 16)
				return K_E_INTERNAL;
			v = v * 16 + d;
		}
		id[i] = (uint8_t)v;
	}
	return K_OK;
}

static K_MUST_CHECK k_status p11_open(const char *arn, const uint8_t key_id[16],
				      const struct kslice *refs, uint32_t n,
				      struct keystore_key **out)
{
	struct p11_key *k = calloc(1, sizeof *k + (size_t)n * P11_ID_LEN);
	if (k == NULL)
		return K_E_INTERNAL;
	for (uint32_t i = 0; i < n; i++) {
		char token[P11_CLUSTER_ID_LEN + 1];
		if (k_failed(parse_ref(refs[i], token, k->ids[i])) ||
		    (i > 0 && strcmp(token, k->token_id) != 0)) {
			LOG_ERROR("key %s: material reference %u is damaged", arn, i + 1);
			free(k);
			return K_E_INTERNAL;
		}
		kstr_copy(k->token_id, sizeof k->token_id, token);
	}
	k->token = p11_token_find(k->token_id);
	k->base.ops = &keystore_pkcs11;
	atomic_init(&k->base.refs, 1);
	k->base.versions = n;
	memcpy(k->base.key_id, key_id, 16);
	*out = &k->base;
	return K_OK;
}

static void p11_destroy(struct keystore_key *h)
{
	free((void *)h);
}

static bool p11_available(const struct keystore_key *h)
{
	const struct p11_key *k = p11k(h);
	return k->token != NULL && atomic_load(&k->token->state) == P11_CONNECTED;
}

/*
 * The token answered, but holds no object for the version (removed in the
 * token by someone else): that key is unusable, the token is not lost. A
 * value of the vendor range no PKCS#11 module returns to kinko here.
 */
#define P11_RV_OBJECT_MISSING (CKR_VENDOR_DEFINED | 0x6b696e6bUL)

/*
 * No object found: the token itself gone (its answer to C_GetTokenInfo, a
 * lost one), or only this object (P11_RV_OBJECT_MISSING).
 */
static CK_RV object_missing(struct p11_token *t)
{
	CK_TOKEN_INFO info;
	CK_RV rv = t->f->C_GetTokenInfo(t->slot_id, &info);
	if (rv != CKR_OK)
		return p11_rv_lost(rv) ? rv : CKR_TOKEN_NOT_PRESENT;
	return P11_RV_OBJECT_MISSING;
}

/* The object of a version in this session; false if the token has none. */
static bool find_object(struct p11_token *t, CK_SESSION_HANDLE s, const uint8_t id[P11_ID_LEN],
			CK_OBJECT_HANDLE *obj, CK_RV *rv)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &cls, sizeof cls},
		{CKA_ID, (void *)(uintptr_t)id, P11_ID_LEN},
	};
	CK_ULONG n = 0;
	*rv = t->f->C_FindObjectsInit(s, tmpl, 2);
	if (*rv != CKR_OK)
		return false;
	*rv = t->f->C_FindObjects(s, obj, 1, &n);
	CK_RV fin = t->f->C_FindObjectsFinal(s);
	if (*rv == CKR_OK)
		*rv = fin;
	if (*rv == CKR_OK && n == 0)
		*rv = object_missing(t);
	return *rv == CKR_OK;
}

/* One AES-GCM pass in the token: encrypt or decrypt `in` into out (*out_len). */
struct gcm_call {
	const uint8_t *id;
	const uint8_t *iv;
	struct kslice aad, in;
	uint8_t *out;
	CK_ULONG out_len;
	bool decrypt;
};

static CK_RV gcm_in(struct p11_token *t, CK_SESSION_HANDLE s, struct gcm_call *g)
{
	CK_OBJECT_HANDLE obj;
	CK_RV rv;
	if (!find_object(t, s, g->id, &obj, &rv))
		return rv;
	CK_GCM_PARAMS p = {
		.pIv = (CK_BYTE_PTR)(uintptr_t)g->iv,
		.ulIvLen = P11_IV_LEN,
		.ulIvBits = P11_IV_LEN * 8,
		.pAAD = (CK_BYTE_PTR)(uintptr_t)g->aad.ptr,
		.ulAADLen = (CK_ULONG)g->aad.len,
		.ulTagBits = P11_TAG_LEN * 8,
	};
	CK_MECHANISM mech = {CKM_AES_GCM, &p, sizeof p};
	CK_BYTE_PTR in = (CK_BYTE_PTR)(uintptr_t)g->in.ptr;
	if (g->decrypt) {
		rv = t->f->C_DecryptInit(s, &mech, obj);
		if (rv == CKR_OK)
			rv = t->f->C_Decrypt(s, in, (CK_ULONG)g->in.len, g->out, &g->out_len);
	} else {
		rv = t->f->C_EncryptInit(s, &mech, obj);
		if (rv == CKR_OK)
			rv = t->f->C_Encrypt(s, in, (CK_ULONG)g->in.len, g->out, &g->out_len);
	}
	return rv;
}

/* Runs g on a pooled session; a token that went away is marked FAILED. */
static CK_RV gcm_run(const struct p11_key *k, struct gcm_call *g)
{
	CK_SESSION_HANDLE s;
	if (k->token == NULL || k_failed(p11_take(k->token, &s)))
		return CKR_TOKEN_NOT_PRESENT;
	CK_RV rv = gcm_in(k->token, s, g);
	bool lost = p11_rv_lost(rv);
	p11_put(k->token, s, lost);
	if (lost)
		p11_mark_lost(k->token, rv);
	return rv;
}

/* The blob header of docs/CIPHERTEXT.md with a fresh nonce. */
static K_MUST_CHECK k_status make_header(const struct keystore_key *h,
					 uint8_t hdr[CRYPTO_BLOB_HEADER_LEN])
{
	hdr[0] = CRYPTO_BLOB_MAGIC;
	hdr[1] = CRYPTO_BLOB_VERSION;
	memcpy(hdr + 2, h->key_id, 16);
	hdr[18] = (uint8_t)(h->versions >> 24);
	hdr[19] = (uint8_t)(h->versions >> 16);
	hdr[20] = (uint8_t)(h->versions >> 8);
	hdr[21] = (uint8_t)h->versions;
	return crypto_nonce(hdr + 22, CRYPTO_NONCE_LEN);
}

static k_status rv_status(CK_RV rv, bool decrypt)
{
	if (rv == CKR_OK)
		return K_OK;
	if (rv == P11_RV_OBJECT_MISSING) {
		LOG_WARN("token key: the token holds no object for the key's material (removed in "
			 "the token?): the key cannot be used");
		return K_E_INVALID_STATE;
	}
	if (p11_rv_lost(rv))
		return K_E_INVALID_STATE;
	/* SoftHSM2 answers a failed GCM tag check with CKR_GENERAL_ERROR */
	return decrypt ? K_E_INVALID_CIPHERTEXT : K_E_INTERNAL;
}

static K_MUST_CHECK k_status p11_encrypt(const struct keystore_key *h, struct kslice ectx,
					 struct kslice pt, struct kbuf *blob)
{
	const struct p11_key *k = p11k(h);
	if (h->versions == 0)
		return K_E_INVALID_STATE;
	size_t aad_len = CRYPTO_BLOB_HEADER_LEN + ectx.len;
	size_t total = CRYPTO_BLOB_HEADER_LEN + pt.len + P11_TAG_LEN;
	uint8_t *aad = malloc(aad_len), *out = malloc(total);
	k_status rc = K_E_INTERNAL;
	if (aad == NULL || out == NULL)
		goto out;
	GUARD_GOTO(make_header(h, aad));
	if (ectx.len > 0)
		memcpy(aad + CRYPTO_BLOB_HEADER_LEN, ectx.ptr, ectx.len);
	memcpy(out, aad, CRYPTO_BLOB_HEADER_LEN);
	struct gcm_call g = {
		.id = k->ids[h->versions - 1],
		.iv = aad + 22,
		.aad = kslice_make(aad, aad_len),
		.in = pt,
		.out = out + CRYPTO_BLOB_HEADER_LEN,
		.out_len = (CK_ULONG)(pt.len + P11_TAG_LEN),
	};
	GUARD_GOTO(rv_status(gcm_run(k, &g), false));
	ENSURE_GOTO(g.out_len == pt.len + P11_TAG_LEN, K_E_INTERNAL);
	rc = kbuf_append(blob, out, total);
out:
	free(aad);
	free(out);
	return rc;
}

static K_MUST_CHECK k_status p11_decrypt(const struct keystore_key *h,
					 const struct crypto_blob *blob, struct kslice ectx,
					 struct kbuf *pt)
{
	const struct p11_key *k = p11k(h);
	if (h->versions == 0)
		return K_E_INVALID_STATE;
	if (blob->version == 0 || blob->version > h->versions)
		return K_E_INVALID_CIPHERTEXT;
	size_t n = blob->ciphertext.len;
	size_t aad_len = blob->header.len + ectx.len;
	uint8_t *aad = malloc(aad_len), *in = malloc(n + P11_TAG_LEN),
		*out = malloc(n + P11_TAG_LEN);
	k_status rc = K_E_INTERNAL;
	if (aad == NULL || in == NULL || out == NULL)
		goto out;
	memcpy(aad, blob->header.ptr, blob->header.len);
	if (ectx.len > 0)
		memcpy(aad + blob->header.len, ectx.ptr, ectx.len);
	if (n > 0)
		memcpy(in, blob->ciphertext.ptr, n);
	memcpy(in + n, blob->tag.ptr, P11_TAG_LEN);
	struct gcm_call g = {
		.id = k->ids[blob->version - 1],
		.iv = blob->nonce,
		.aad = kslice_make(aad, aad_len),
		.in = kslice_make(in, n + P11_TAG_LEN),
		.out = out,
		.out_len = (CK_ULONG)(n + P11_TAG_LEN),
		.decrypt = true,
	};
	GUARD_GOTO(rv_status(gcm_run(k, &g), true));
	ENSURE_GOTO(g.out_len == n, K_E_INVALID_CIPHERTEXT);
	rc = kbuf_append(pt, out, n);
out:
	if (out != NULL)
		kwipe(out, n + P11_TAG_LEN);
	free(aad);
	free(in);
	free(out);
	return rc;
}

static K_MUST_CHECK k_status p11_generate_data_key(const struct keystore_key *h, struct kslice ectx,
						   struct ksecret *dk, struct kbuf *blob)
{
	uint8_t *p = ksecret_bytes(dk);
	size_t n = ksecret_len(dk);
	k_status rc = crypto_random(p, n);
	if (k_ok(rc))
		rc = p11_encrypt(h, ectx, kslice_make(p, n), blob);
	if (k_failed(rc))
		kwipe(p, n);
	return rc;
}

/*
 * Destroys every object of the token with the CKA_ID `id` in session s
 * (normally one). CKR_OK also when there is none left.
 */
#define P11_ERASE_BATCH 8

static CK_RV destroy_objects(struct p11_token *t, CK_SESSION_HANDLE s, const uint8_t id[P11_ID_LEN],
			     size_t *destroyed)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &cls, sizeof cls},
		{CKA_ID, (void *)(uintptr_t)id, P11_ID_LEN},
	};
	for (;;) {
		CK_OBJECT_HANDLE objs[P11_ERASE_BATCH];
		CK_ULONG n = 0;
		CK_RV rv = t->f->C_FindObjectsInit(s, tmpl, 2);
		if (rv != CKR_OK)
			return rv;
		rv = t->f->C_FindObjects(s, objs, P11_ERASE_BATCH, &n);
		CK_RV fin = t->f->C_FindObjectsFinal(s);
		if (rv == CKR_OK)
			rv = fin;
		if (rv != CKR_OK || n == 0)
			return rv;
		for (CK_ULONG i = 0; i < n; i++) {
			rv = t->f->C_DestroyObject(s, objs[i]);
			if (rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID)
				return rv;
			(*destroyed)++;
		}
	}
}

/*
 * The deletion of a key's material (keyops.h, erase): each version's
 * object is destroyed in the token the references name. A token that is
 * not connected (or goes away meanwhile) answers K_E_INVALID_STATE and
 * keeps whatever was not destroyed yet, for a later call.
 */
static K_MUST_CHECK k_status p11_erase(const struct kslice *refs, uint32_t n)
{
	char token_id[P11_CLUSTER_ID_LEN + 1];
	uint8_t id[P11_ID_LEN];
	GUARD(parse_ref(refs[0], token_id, id));
	struct p11_token *t = p11_token_find(token_id);
	CK_SESSION_HANDLE s;
	if (t == NULL || k_failed(p11_take(t, &s)))
		return K_E_INVALID_STATE;
	k_status rc = K_OK;
	CK_RV rv = CKR_OK;
	size_t destroyed = 0;
	for (uint32_t i = 0; i < n && k_ok(rc) && rv == CKR_OK; i++) {
		char other[P11_CLUSTER_ID_LEN + 1];
		rc = parse_ref(refs[i], other, id);
		if (k_ok(rc) && strcmp(other, token_id) != 0)
			rc = K_E_INTERNAL;
		if (k_ok(rc))
			rv = destroy_objects(t, s, id, &destroyed);
	}
	bool lost = p11_rv_lost(rv);
	p11_put(t, s, lost);
	if (lost)
		p11_mark_lost(t, rv);
	if (rv != CKR_OK) {
		LOG_WARN("token %s: a deleted key's object was not destroyed (0x%lx)", token_id,
			 (unsigned long)rv);
		return K_E_INVALID_STATE;
	}
	if (k_ok(rc))
		LOG_INFO("token %s: destroyed %zu object(s) of a deleted key", token_id, destroyed);
	return rc;
}

/*
 * Plain AES-GCM for the XKS proxy (keyops.h, keystore_gcm). A token cannot
 * derive a key under g->label as the software store does, so the GCM key
 * is the version's object itself and the label is bound in the AAD
 * instead: the token's AAD is the label's length (one byte), the label and
 * g->aad. A blob's AAD starts with CRYPTO_BLOB_MAGIC, which no label's
 * length byte equals (labels are shorter), so neither kind of message is
 * ever accepted as the other. Both draw random 96-bit IVs from one key:
 * AES-GCM's bound of 2^32 messages per key covers the two together.
 */
static K_MUST_CHECK k_status gcm_aad(const struct keystore_gcm *g, struct kbuf *aad)
{
	ENSURE(g->label.len > 0 && g->label.len < CRYPTO_BLOB_MAGIC, K_E_INTERNAL);
	GUARD(kbuf_append_byte(aad, (uint8_t)g->label.len));
	GUARD(kbuf_append(aad, g->label.ptr, g->label.len));
	if (g->aad.len > 0)
		GUARD(kbuf_append(aad, g->aad.ptr, g->aad.len));
	return K_OK;
}

/* The largest AAD a token's GCM call takes: the label's byte and label, and the caller's. */
#define P11_GCM_AAD_MAX (1u + 255u + (64u << 10))

static K_MUST_CHECK k_status p11_gcm_encrypt(const struct keystore_key *h, struct keystore_gcm *g,
					     struct kslice pt, struct kbuf *ct)
{
	const struct p11_key *k = p11k(h);
	ENSURE(h->versions > 0, K_E_INVALID_STATE);
	ENSURE(ct->max - ct->len >= pt.len + P11_TAG_LEN, K_E_VALIDATION);
	struct kbuf aad;
	kbuf_init(&aad, P11_GCM_AAD_MAX);
	uint8_t *out = malloc(pt.len + P11_TAG_LEN);
	k_status rc = out != NULL ? gcm_aad(g, &aad) : K_E_INTERNAL;
	if (k_ok(rc))
		rc = crypto_random(g->iv, sizeof g->iv);
	struct gcm_call c = {
		.id = k->ids[h->versions - 1],
		.iv = g->iv,
		.aad = kbuf_slice(&aad),
		.in = pt,
		.out = out,
		.out_len = (CK_ULONG)(pt.len + P11_TAG_LEN),
	};
	if (k_ok(rc))
		rc = rv_status(gcm_run(k, &c), false);
	if (k_ok(rc) && c.out_len != pt.len + P11_TAG_LEN)
		rc = K_E_INTERNAL;
	if (k_ok(rc)) {
		memcpy(g->tag, out + pt.len, P11_TAG_LEN);
		g->version = h->versions;
		rc = kbuf_append(ct, out, pt.len);
	}
	free(out);
	kbuf_release(&aad);
	return rc;
}

static K_MUST_CHECK k_status p11_gcm_decrypt(const struct keystore_key *h,
					     const struct keystore_gcm *g, struct kslice ct,
					     struct kbuf *pt)
{
	const struct p11_key *k = p11k(h);
	ENSURE(h->versions > 0, K_E_INVALID_STATE);
	ENSURE(g->version >= 1 && g->version <= h->versions, K_E_INVALID_CIPHERTEXT);
	struct kbuf aad;
	kbuf_init(&aad, P11_GCM_AAD_MAX);
	uint8_t *in = malloc(ct.len + P11_TAG_LEN), *out = malloc(ct.len + P11_TAG_LEN);
	k_status rc = in != NULL && out != NULL ? gcm_aad(g, &aad) : K_E_INTERNAL;
	if (k_ok(rc)) {
		if (ct.len > 0)
			memcpy(in, ct.ptr, ct.len);
		memcpy(in + ct.len, g->tag, P11_TAG_LEN);
	}
	struct gcm_call c = {
		.id = k->ids[g->version - 1],
		.iv = g->iv,
		.aad = kbuf_slice(&aad),
		.in = kslice_make(in, ct.len + P11_TAG_LEN),
		.out = out,
		.out_len = (CK_ULONG)(ct.len + P11_TAG_LEN),
		.decrypt = true,
	};
	if (k_ok(rc))
		rc = rv_status(gcm_run(k, &c), true);
	if (k_ok(rc) && c.out_len != ct.len)
		rc = K_E_INVALID_CIPHERTEXT;
	if (k_ok(rc))
		rc = kbuf_append(pt, out, ct.len);
	if (out != NULL)
		kwipe(out, ct.len + P11_TAG_LEN);
	free(in);
	free(out);
	kbuf_release(&aad);
	return rc;
}

const struct keystore_ops keystore_pkcs11 = {
	.name = P11_STORE_NAME,
	.open = p11_open,
	.destroy = p11_destroy,
	.erase = p11_erase,
	.available = p11_available,
	.encrypt = p11_encrypt,
	.decrypt = p11_decrypt,
	.generate_data_key = p11_generate_data_key,
	.gcm_encrypt = p11_gcm_encrypt,
	.gcm_decrypt = p11_gcm_decrypt,
};
