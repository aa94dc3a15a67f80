/*
 * p11_root.c — the root key in a PKCS#11 token (keystore.h):
 *     --root-key 'pkcs11:token=LABEL;object=LABEL?module-path=/path/module.so&pin-source=file:/path/pin'
 * (RFC 7512; the PIN from pin-source, else the KINKO_PKCS11_PIN variable).
 * The root key is an AES-256 secret key object that never leaves the token;
 * keystore_wrap and keystore_unwrap run AES-256-GCM inside it, in the
 * layout crypto_wrap writes (12-byte IV, ciphertext, tag).
 *
 * A token that goes away (p11_rv_lost) is marked FAILED, as pkcs11.c does
 * for the stores' tokens, and logged once: calls fail closed at once
 * instead of trying the token each time. While FAILED, a call first
 * connects again (the module started afresh, the PIN read again from its
 * source), at most once every ROOT_RECONNECT_MS; failed attempts are
 * logged once, and a refused PIN stops them (a locked PIN is worse than a
 * restart).
 */
#include "keystore/p11_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/secret.h"
#include "core/lock.h"
#include "core/wipe.h"
#include "crypto/crypto.h"
#include "core/banned.h"

#define ROOT_URI_MAX P11_URI_VALUE_MAX
#define ROOT_TAG_LEN 16

static struct p11_token *root_token;
static uint8_t root_label[ROOT_URI_MAX];
static size_t root_label_len;

/* Reconnecting a FAILED root token (the URI kept from keystore_p11_root_open). */
#define ROOT_RECONNECT_MS 1000
static struct p11_uri root_uri_kept;
static pthread_mutex_t reconnect_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t reconnect_last_ms;  /* under reconnect_mu */
static bool reconnect_failing;	   /* a failed attempt was logged; under reconnect_mu */
static bool reconnect_pin_refused; /* no more attempts; under reconnect_mu */

/* The PIN from its file (its first line) or from KINKO_PKCS11_PIN. */
static struct ksecret *read_pin(const struct p11_uri *u, struct kbuf *msg)
{
	char line[P11_MAX_PIN + 2] = {0};
	if (u->pin_file[0] != 0) {
		FILE *fp = fopen(u->pin_file, "r");
		bool ok = fp != NULL && fgets(line, sizeof line, fp) != NULL;
		if (fp != NULL)
			fclose(fp);
		if (!ok) {
			kwipe(line, sizeof line);
			kbuf_note(msg, "cannot read the token PIN from %s", u->pin_file);
			return NULL;
		}
	} else {
		const char *env = getenv("KINKO_PKCS11_PIN");
		if (env == NULL || strlen(env) > P11_MAX_PIN) {
			kbuf_note(msg,
				  "the root key's token needs a PIN: pin-source=file:PATH in the "
				  "URI or the KINKO_PKCS11_PIN variable");
			return NULL;
		}
		kstr_copy(line, sizeof line, env);
	}
	line[strcspn(line, "\r\n")] = 0;
	/* A longer first line was cut by fgets: never log in with a part of it. */
	if (strlen(line) > P11_MAX_PIN) {
		kwipe(line, sizeof line);
		kbuf_note(msg, "the token PIN in %s is longer than %d characters", u->pin_file,
			  P11_MAX_PIN);
		return NULL;
	}
	struct ksecret *pin = ksecret_from((const uint8_t *)line, strlen(line));
	kwipe(line, sizeof line);
	return pin;
}

/*
 * The root key object (by label) in this session; when the token has none
 * and `create`, a new one (*created true).
 */
static bool root_object(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *obj, bool create, bool *created)
{
	CK_FUNCTION_LIST_PTR f = root_token->f;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE find[] = {{CKA_CLASS, &cls, sizeof cls},
			       {CKA_LABEL, root_label, root_label_len}};
	CK_ULONG n = 0;
	if (f->C_FindObjectsInit(s, find, 2) != CKR_OK)
		return false;
	CK_RV rv = f->C_FindObjects(s, obj, 1, &n);
	(void)f->C_FindObjectsFinal(s);
	*created = false;
	if (rv == CKR_OK && n == 1)
		return true;
	if (!create)
		return false;
	CK_KEY_TYPE type = CKK_AES;
	CK_ULONG len = 32;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &cls, sizeof cls},	   {CKA_KEY_TYPE, &type, sizeof type},
		{CKA_VALUE_LEN, &len, sizeof len}, {CKA_TOKEN, &yes, sizeof yes},
		{CKA_PRIVATE, &yes, sizeof yes},   {CKA_SENSITIVE, &yes, sizeof yes},
		{CKA_EXTRACTABLE, &no, sizeof no}, {CKA_ENCRYPT, &yes, sizeof yes},
		{CKA_DECRYPT, &yes, sizeof yes},   {CKA_WRAP, &no, sizeof no},
		{CKA_UNWRAP, &no, sizeof no},	   {CKA_LABEL, root_label, root_label_len},
	};
	CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
	*created = true;
	return f->C_GenerateKey(s, &mech, tmpl, sizeof tmpl / sizeof tmpl[0], obj) == CKR_OK;
}

static K_MUST_CHECK k_status root_connect(const struct p11_uri *u, bool create, struct kbuf *msg);

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The root token is not connected: one attempt to connect it again, if due. */
static void reconnect(void)
{
	klock(&reconnect_mu);
	int64_t now = monotonic_ms();
	if (reconnect_pin_refused || atomic_load(&root_token->state) == P11_CONNECTED ||
	    (reconnect_last_ms != 0 && now - reconnect_last_ms < ROOT_RECONNECT_MS)) {
		pthread_mutex_unlock(&reconnect_mu);
		return;
	}
	reconnect_last_ms = now;
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	k_status rc = root_connect(&root_uri_kept, false, &msg);
	if (k_ok(rc)) {
		reconnect_failing = false;
		LOG_INFO("root key token: connected again");
	} else {
		enum p11_conn_error why = (enum p11_conn_error)atomic_load(&root_token->why);
		/* Logged in but the key object is gone: not to be used, and not "lost" again. */
		if (atomic_load(&root_token->state) == P11_CONNECTED)
			p11_token_disconnect(root_token);
		reconnect_pin_refused =
			why == P11_ERR_INVALID_CREDENTIALS || why == P11_ERR_USER_LOCKED_OUT;
		if (!reconnect_failing || reconnect_pin_refused)
			LOG_ERROR("root key token: cannot connect again (%s)%s", kbuf_cstr(&msg),
				  reconnect_pin_refused ? "; no more attempts until a restart"
							: "; trying again while in use");
		reconnect_failing = true;
	}
	kbuf_release(&msg);
	pthread_mutex_unlock(&reconnect_mu);
}

/* AES-256-GCM with the root object: encrypt or decrypt in into out (*out_len). */
static K_MUST_CHECK k_status root_gcm(bool decrypt, const uint8_t iv[CRYPTO_WRAP_IV_LEN],
				      struct kslice aad, struct kslice in, uint8_t *out,
				      CK_ULONG *out_len)
{
	if (root_token == NULL)
		return K_E_INTERNAL;
	if (atomic_load(&root_token->state) != P11_CONNECTED)
		reconnect();
	CK_SESSION_HANDLE s;
	if (k_failed(p11_take(root_token, &s)))
		return K_E_INTERNAL;
	CK_OBJECT_HANDLE obj;
	bool created;
	CK_RV rv = root_object(s, &obj, false, &created) ? CKR_OK : CKR_KEY_HANDLE_INVALID;
	CK_GCM_PARAMS p = {
		.pIv = (CK_BYTE_PTR)(uintptr_t)iv,
		.ulIvLen = CRYPTO_WRAP_IV_LEN,
		.ulIvBits = CRYPTO_WRAP_IV_LEN * 8,
		.pAAD = (CK_BYTE_PTR)(uintptr_t)aad.ptr,
		.ulAADLen = (CK_ULONG)aad.len,
		.ulTagBits = ROOT_TAG_LEN * 8,
	};
	CK_MECHANISM mech = {CKM_AES_GCM, &p, sizeof p};
	CK_FUNCTION_LIST_PTR f = root_token->f;
	CK_BYTE_PTR src = (CK_BYTE_PTR)(uintptr_t)in.ptr;
	if (rv == CKR_OK)
		rv = decrypt ? f->C_DecryptInit(s, &mech, obj) : f->C_EncryptInit(s, &mech, obj);
	if (rv == CKR_OK)
		rv = decrypt ? f->C_Decrypt(s, src, (CK_ULONG)in.len, out, out_len)
			     : f->C_Encrypt(s, src, (CK_ULONG)in.len, out, out_len);
	bool lost = p11_rv_lost(rv);
	p11_put(root_token, s, lost);
	if (lost)
		p11_mark_lost(root_token, rv);
	else if (rv != CKR_OK)
		LOG_ERROR("root key token: AES-GCM %s failed (0x%lx)",
			  decrypt ? "decryption" : "encryption", (unsigned long)rv);
	return rv == CKR_OK ? K_OK : K_E_INTERNAL;
}

k_status keystore_p11_root_wrap(struct kslice aad, const struct ksecret *material, struct kbuf *out)
{
	size_t n = ksecret_len(material);
	ENSURE(out->max - out->len >= CRYPTO_WRAP_OVERHEAD + n, K_E_VALIDATION);
	uint8_t *buf = malloc(CRYPTO_WRAP_OVERHEAD + n);
	ENSURE(buf != NULL, K_E_INTERNAL);
	k_status rc = crypto_nonce(buf, CRYPTO_WRAP_IV_LEN);
	CK_ULONG len = (CK_ULONG)(n + ROOT_TAG_LEN);
	if (k_ok(rc))
		rc = root_gcm(false, buf, aad, kslice_make(ksecret_cbytes(material), n),
			      buf + CRYPTO_WRAP_IV_LEN, &len);
	if (k_ok(rc) && len != n + ROOT_TAG_LEN)
		rc = K_E_INTERNAL;
	if (k_ok(rc))
		rc = kbuf_append(out, buf, CRYPTO_WRAP_OVERHEAD + n);
	free(buf);
	return rc;
}

k_status keystore_p11_root_unwrap(struct kslice aad, struct kslice wrapped, struct ksecret **out)
{
	ENSURE(wrapped.len >= CRYPTO_WRAP_OVERHEAD, K_E_INTERNAL);
	size_t n = wrapped.len - CRYPTO_WRAP_OVERHEAD;
	struct ksecret *scratch = ksecret_new(n + ROOT_TAG_LEN);
	ENSURE(scratch != NULL, K_E_INTERNAL);
	CK_ULONG len = (CK_ULONG)(n + ROOT_TAG_LEN);
	k_status rc = root_gcm(true, wrapped.ptr, aad,
			       kslice_make(wrapped.ptr + CRYPTO_WRAP_IV_LEN, n + ROOT_TAG_LEN),
			       ksecret_bytes(scratch), &len);
	struct ksecret *m = NULL;
	if (k_ok(rc) && len == n)
		m = ksecret_from(ksecret_cbytes(scratch), n);
	ksecret_free(scratch);
	if (m == NULL)
		return K_E_INTERNAL;
	*out = m;
	return K_OK;
}

k_status keystore_p11_root_check_value(uint8_t out[CRYPTO_CHECK_VALUE_LEN])
{
	static const char info[] = "kinko/v1/key-check-value";
	static const uint8_t zero_iv[CRYPTO_WRAP_IV_LEN];
	uint8_t tag[ROOT_TAG_LEN];
	CK_ULONG len = sizeof tag;
	GUARD(root_gcm(false, zero_iv, kslice_make((const uint8_t *)info, sizeof info - 1),
		       kslice_make((const uint8_t *)"", 0), tag, &len));
	return crypto_sha256(tag, sizeof tag, out);
}

bool keystore_p11_root_active(void)
{
	return root_token != NULL;
}

/*
 * Logs in and finds the root key object; makes it when the token has none
 * and `create` (at start only: a token that comes back without its key
 * never gets a new one).
 */
static K_MUST_CHECK k_status root_connect(const struct p11_uri *u, bool create, struct kbuf *msg)
{
	struct ksecret *pin = read_pin(u, msg);
	if (pin == NULL)
		return K_E_VALIDATION;
	enum p11_conn_error why;
	k_status rc = p11_token_connect(root_token,
					kslice_make(ksecret_cbytes(pin), ksecret_len(pin)), &why);
	ksecret_free(pin);
	if (k_failed(rc)) {
		kbuf_note(msg, "cannot log in to the root key's token %s (%s)", u->token,
			  keystore_p11_error_name(why));
		return K_E_VALIDATION;
	}
	CK_SESSION_HANDLE s;
	GUARD(p11_take(root_token, &s));
	CK_OBJECT_HANDLE obj;
	bool created = false;
	bool ok = root_object(s, &obj, create, &created);
	p11_put(root_token, s, false);
	if (!ok) {
		kbuf_note(msg, "the token %s has no usable key %s and cannot make one", u->token,
			  u->object);
		return K_E_VALIDATION;
	}
	if (created)
		LOG_WARN("made a new root key %s in the token %s", u->object, u->token);
	return K_OK;
}

k_status keystore_p11_root_open(const char *uri, struct kbuf *msg)
{
	struct p11_uri *u = calloc(1, sizeof *u);
	if (u == NULL)
		return K_E_INTERNAL;
	k_status rc = p11_uri_parse(uri, u, msg);
	struct p11_token_config cfg = {
		.id = "root-key", .module = u->module, .label = u->token, .slot = -1};
	if (k_ok(rc)) {
		root_uri_kept = *u;
		root_label_len = strlen(u->object);
		memcpy(root_label, u->object, root_label_len);
		root_token = p11_token_new(&cfg);
		rc = root_token != NULL ? root_connect(u, true, msg) : K_E_INTERNAL;
	}
	if (k_failed(rc))
		keystore_p11_root_close();
	free(u);
	return rc;
}

void keystore_p11_root_close(void)
{
	if (root_token == NULL)
		return;
	p11_token_disconnect(root_token);
	p11_token_free(root_token);
	root_token = NULL;
	kwipe(&root_uri_kept, sizeof root_uri_kept);
	klock(&reconnect_mu);
	reconnect_last_ms = 0;
	reconnect_failing = reconnect_pin_refused = false;
	pthread_mutex_unlock(&reconnect_mu);
}

enum p11_state keystore_p11_root_state(void)
{
	return root_token != NULL ? (enum p11_state)atomic_load(&root_token->state)
				  : P11_DISCONNECTED;
}
