/*
 * pkcs11_test.c — the token store (keystore/pkcs11.h) against a throw-away
 * SoftHSM2 token: connecting (a wrong PIN, a missing token), generating a
 * key inside the token, Encrypt/Decrypt/GenerateDataKey round trips in the
 * blob format of CIPHERTEXT.md, a wrong context and tampering refused, a
 * disconnected token's keys unavailable, and, read straight through the
 * module, the key's bytes refused (CKA_VALUE is sensitive, not
 * extractable); the root key's token going away (FAILED, fail closed) and
 * coming back (connected again). Skipped when SoftHSM2 is not installed.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <p11-kit/pkcs11.h>

#include "core/secret.h"
#include "crypto/crypto.h"
#include "keystore/keyops.h"
#include "keystore/pkcs11.h"
#include "testlib.h"
#include "core/banned.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN_ID "cluster-abcdefghij2"
#define LABEL "kinko-test"
#define PIN "1234567"
#define ARN "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
#define TEST_BUF 8192

static const uint8_t key_id[16] = {0x12, 0x34, 0xab, 0xcd, 0x12, 0xab, 0x34, 0xcd,
				   0x56, 0xef, 0x12, 0x34, 0x56, 0x78, 0x90, 0xab};
static struct kbuf ref;

static void test_connect_errors(void)
{
	enum p11_conn_error why = P11_ERR_NONE;
	CHECK_STATUS(keystore_p11_connect(TOKEN_ID, kslice_cstr("wrong-pin"), &why),
		     K_E_INVALID_STATE);
	CHECK_EQ_INT(why, P11_ERR_INVALID_CREDENTIALS);
	CHECK_EQ_INT(keystore_p11_state(TOKEN_ID, NULL), P11_FAILED);
	CHECK_STATUS(keystore_p11_connect("cluster-zzzzzzzzzz2", kslice_cstr(PIN), &why),
		     K_E_INVALID_STATE);
	CHECK_EQ_INT(why, P11_ERR_CLUSTER_NOT_FOUND);
	CHECK(!keystore_p11_id_valid("cluster-ABC"));
	CHECK(!keystore_p11_id_valid("cluster-abcdefghij1")); /* 1 is not base32 */
	CHECK(keystore_p11_id_valid(TOKEN_ID));
	CHECK_STATUS(keystore_p11_trust_anchor_matches(TOKEN_ID, " ANCHOR\r\n"), K_OK);
	CHECK_STATUS(keystore_p11_trust_anchor_matches(TOKEN_ID, "OTHER"), K_E_VALIDATION);
}

static struct keystore_key *open_key(void)
{
	struct keystore_key *h = NULL;
	struct kslice r = kbuf_slice(&ref);
	if (k_failed(keystore_open(&keystore_pkcs11, ARN, key_id, &r, 1, &h)))
		return NULL;
	return h;
}

static void test_round_trips(void)
{
	enum p11_conn_error why;
	CHECK_STATUS(keystore_p11_connect(TOKEN_ID, kslice_cstr(PIN), &why), K_OK);
	CHECK_STATUS(keystore_p11_generate(TOKEN_ID, key_id, ARN, &ref), K_OK);
	struct keystore_key *h = open_key();
	CHECK(h != NULL);
	if (h == NULL)
		return;
	CHECK(keystore_key_available(h));
	struct kbuf blob, pt;
	kbuf_init(&blob, TEST_BUF);
	kbuf_init(&pt, TEST_BUF);
	struct kslice ectx = kslice_cstr("context");
	CHECK_STATUS(keystore_encrypt(h, ectx, kslice_cstr("hello token"), &blob), K_OK);
	CHECK_EQ_INT(blob.len, CRYPTO_BLOB_OVERHEAD + 11);
	struct crypto_blob b;
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&blob), &b), K_OK);
	CHECK(memcmp(b.key_id, key_id, 16) == 0);
	CHECK_EQ_INT(b.version, 1);
	CHECK_STATUS(keystore_decrypt(h, &b, ectx, &pt), K_OK);
	CHECK(kslice_eq_cstr(kbuf_slice(&pt), "hello token"));
	kbuf_reset(&pt);
	CHECK_STATUS(keystore_decrypt(h, &b, kslice_cstr("other"), &pt), K_E_INVALID_CIPHERTEXT);
	blob.ptr[CRYPTO_BLOB_HEADER_LEN] ^= 1;
	CHECK_STATUS(keystore_decrypt(h, &b, ectx, &pt), K_E_INVALID_CIPHERTEXT);
	CHECK_EQ_INT(pt.len, 0);
	/* a data key comes back out of its blob */
	struct ksecret *dk = ksecret_new(32);
	kbuf_reset(&blob);
	CHECK_STATUS(keystore_generate_data_key(h, ectx, dk, &blob), K_OK);
	CHECK_STATUS(crypto_blob_parse(kbuf_slice(&blob), &b), K_OK);
	CHECK_STATUS(keystore_decrypt(h, &b, ectx, &pt), K_OK);
	CHECK(pt.len == 32 && memcmp(pt.ptr, ksecret_cbytes(dk), 32) == 0);
	ksecret_free(dk);
	kbuf_release(&blob);
	kbuf_release(&pt);
	keystore_key_unref(h);
}

/* Straight through the module: the key object exists and its value is refused. */
static void test_value_unreadable(void)
{
	void *dl = dlopen(MODULE, RTLD_NOW | RTLD_LOCAL);
	CHECK(dl != NULL);
	if (dl == NULL)
		return;
	CK_C_GetFunctionList get = NULL;
	void *sym = dlsym(dl, "C_GetFunctionList");
	memcpy(&get, &sym, sizeof get);
	CK_FUNCTION_LIST_PTR f = NULL;
	CHECK(get != NULL && get(&f) == CKR_OK);
	CK_RV rv = f->C_Initialize(NULL);
	CHECK(rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED);
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8;
	CHECK(f->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK && n >= 1);
	CK_SESSION_HANDLE s;
	CHECK(f->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, &s) == CKR_OK);
	rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)(uintptr_t)PIN, 7);
	CHECK(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE find[] = {{CKA_CLASS, &cls, sizeof cls}};
	CK_OBJECT_HANDLE obj;
	CHECK(f->C_FindObjectsInit(s, find, 1) == CKR_OK);
	CHECK(f->C_FindObjects(s, &obj, 1, &n) == CKR_OK && n == 1);
	CHECK(f->C_FindObjectsFinal(s) == CKR_OK);
	uint8_t value[64];
	CK_ATTRIBUTE get_value = {CKA_VALUE, value, sizeof value};
	CHECK(f->C_GetAttributeValue(s, obj, &get_value, 1) == CKR_ATTRIBUTE_SENSITIVE);
	CHECK(get_value.ulValueLen == CK_UNAVAILABLE_INFORMATION);
	CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE, on_token = CK_FALSE;
	CK_ATTRIBUTE flags[] = {{CKA_SENSITIVE, &sensitive, sizeof sensitive},
				{CKA_EXTRACTABLE, &extractable, sizeof extractable},
				{CKA_TOKEN, &on_token, sizeof on_token}};
	CHECK(f->C_GetAttributeValue(s, obj, flags, 3) == CKR_OK);
	CHECK(sensitive == CK_TRUE && extractable == CK_FALSE && on_token == CK_TRUE);
	/* nor can it be wrapped out (CKA_EXTRACTABLE false) */
	CK_MECHANISM wrap = {CKM_AES_KEY_WRAP, NULL, 0};
	CK_ULONG wrapped_len = sizeof value;
	CHECK(f->C_WrapKey(s, &wrap, obj, obj, value, &wrapped_len) != CKR_OK);
	(void)f->C_CloseSession(s);
	/* the module stays loaded: kinko's own connection shares it */
}

static void test_disconnected_unavailable(void)
{
	struct keystore_key *h = open_key();
	CHECK(h != NULL);
	if (h == NULL)
		return;
	keystore_p11_disconnect(TOKEN_ID);
	CHECK(!keystore_key_available(h));
	struct kbuf blob;
	kbuf_init(&blob, TEST_BUF);
	CHECK_STATUS(keystore_encrypt(h, kslice_cstr(""), kslice_cstr("x"), &blob),
		     K_E_INVALID_STATE);
	enum p11_conn_error why;
	CHECK_STATUS(keystore_p11_connect(TOKEN_ID, kslice_cstr(PIN), &why), K_OK);
	CHECK(keystore_key_available(h));
	CHECK_STATUS(keystore_encrypt(h, kslice_cstr(""), kslice_cstr("x"), &blob), K_OK);
	kbuf_release(&blob);
	keystore_key_unref(h);
}

/*
 * The XKS proxy's plain AES-GCM inside the token: a round trip, the AAD and
 * the label bound (another of either is refused), a version the key does
 * not have refused.
 */
static void test_gcm_in_the_token(void)
{
	struct keystore_key *h = open_key();
	CHECK(h != NULL);
	if (h == NULL)
		return;
	struct kbuf ct, pt;
	kbuf_init(&ct, TEST_BUF);
	kbuf_init(&pt, TEST_BUF);
	struct keystore_gcm g = {.label = KSLICE_LIT("kinko/xks/v1"), .aad = KSLICE_LIT("aad")};
	CHECK_STATUS(keystore_gcm_encrypt(h, &g, KSLICE_LIT("hello xks"), &ct), K_OK);
	CHECK(ct.len == 9 && g.version == 1);
	CHECK(memcmp(ct.ptr, "hello xks", 9) != 0);
	CHECK_STATUS(keystore_gcm_decrypt(h, &g, kbuf_slice(&ct), &pt), K_OK);
	CHECK(kslice_eq_cstr(kbuf_slice(&pt), "hello xks"));
	struct keystore_gcm other = g;
	other.aad = KSLICE_LIT("aae");
	CHECK_STATUS(keystore_gcm_decrypt(h, &other, kbuf_slice(&ct), &pt), K_E_INVALID_CIPHERTEXT);
	other = g;
	other.label = KSLICE_LIT("kinko/other/v1");
	CHECK_STATUS(keystore_gcm_decrypt(h, &other, kbuf_slice(&ct), &pt), K_E_INVALID_CIPHERTEXT);
	other = g;
	other.version = 2;
	CHECK_STATUS(keystore_gcm_decrypt(h, &other, kbuf_slice(&ct), &pt), K_E_INVALID_CIPHERTEXT);
	CHECK(pt.len == 9);
	kbuf_release(&ct);
	kbuf_release(&pt);
	keystore_key_unref(h);
}

/*
 * Deletion destroys the key's object: refused while the token is not
 * connected (nothing destroyed), done once it is, and done again (nothing
 * left) without error; the key's handle then fails as for a lost object.
 */
static void test_erase(void)
{
	uint8_t other_id[16];
	memcpy(other_id, key_id, 16);
	other_id[15] ^= 0xff;
	struct kbuf r;
	kbuf_init(&r, KEYSTORE_MAX_REF);
	CHECK_STATUS(keystore_p11_generate(TOKEN_ID, other_id, ARN, &r), K_OK);
	struct kslice refs[1] = {kbuf_slice(&r)};
	struct keystore_key *h = NULL;
	CHECK_STATUS(keystore_open(&keystore_pkcs11, ARN, other_id, refs, 1, &h), K_OK);
	keystore_p11_disconnect(TOKEN_ID);
	CHECK_STATUS(keystore_erase(&keystore_pkcs11, refs, 1), K_E_INVALID_STATE);
	enum p11_conn_error why;
	CHECK_STATUS(keystore_p11_connect(TOKEN_ID, kslice_cstr(PIN), &why), K_OK);
	struct kbuf blob;
	kbuf_init(&blob, TEST_BUF);
	CHECK_STATUS(keystore_encrypt(h, kslice_cstr(""), kslice_cstr("x"), &blob), K_OK);
	CHECK_STATUS(keystore_erase(&keystore_pkcs11, refs, 1), K_OK);
	CHECK_STATUS(keystore_erase(&keystore_pkcs11, refs, 1), K_OK);
	kbuf_reset(&blob);
	CHECK(k_failed(keystore_encrypt(h, kslice_cstr(""), kslice_cstr("x"), &blob)));
	/* the other key of the token is untouched (a lost object marked the token failed) */
	CHECK_STATUS(keystore_p11_connect(TOKEN_ID, kslice_cstr(PIN), &why), K_OK);
	struct keystore_key *first = open_key();
	CHECK(first != NULL);
	kbuf_reset(&blob);
	if (first != NULL)
		CHECK_STATUS(keystore_encrypt(first, kslice_cstr(""), kslice_cstr("x"), &blob),
			     K_OK);
	struct kslice bad = KSLICE_LIT("pkcs11:v1:nonsense");
	CHECK_STATUS(keystore_erase(&keystore_pkcs11, &bad, 1), K_E_INTERNAL);
	CHECK_STATUS(keystore_erase(&keystore_soft, refs, 1), K_OK); /* nothing kept apart */
	keystore_key_unref(first);
	keystore_key_unref(h);
	kbuf_release(&blob);
	kbuf_release(&r);
}

#define ROOT_LABEL "kinko-root-test"
#define ROOT_PIN "7654321-root"
static char test_dir[64];

static k_status root_wrap(struct kbuf *out)
{
	struct ksecret *m = ksecret_from((const uint8_t *)"0123456789abcdef0123456789abcdef", 32);
	if (m == NULL)
		return K_E_INTERNAL;
	kbuf_reset(out);
	k_status rc = keystore_p11_root_wrap(kslice_cstr("aad"), m, out);
	ksecret_free(m);
	return rc;
}

static bool root_unwraps(const struct kbuf *wrapped)
{
	struct ksecret *m = NULL;
	if (k_failed(keystore_p11_root_unwrap(kslice_cstr("aad"), kbuf_slice(wrapped), &m)))
		return false;
	bool same = ksecret_len(m) == 32 &&
		    memcmp(ksecret_cbytes(m), "0123456789abcdef0123456789abcdef", 32) == 0;
	ksecret_free(m);
	return same;
}

/*
 * The root key's token goes away (its folder removed): the token is marked
 * FAILED and calls fail closed; once the folder is back, a call connects
 * it again (no sooner than a second after the last attempt) and what was
 * wrapped before unwraps.
 */
static void test_root_token_lost_and_back(void)
{
	/* SoftHSM2 reads its folder when the module starts: no other token holds it. */
	keystore_p11_disconnect(TOKEN_ID);
	char uri[512], tokens[128], away[128], cmd[512];
	snprintf(cmd, sizeof cmd,
		 "softhsm2-util --init-token --free --label %s --pin %s --so-pin 7654321 "
		 ">/dev/null",
		 ROOT_LABEL, ROOT_PIN);
	CHECK(system(cmd) == 0);
	snprintf(uri, sizeof uri, "pkcs11:token=%s;object=root?module-path=%s", ROOT_LABEL, MODULE);
	snprintf(tokens, sizeof tokens, "%s/tokens", test_dir);
	snprintf(away, sizeof away, "%s/tokens.away", test_dir);
	setenv("KINKO_PKCS11_PIN", ROOT_PIN, 1);
	struct kbuf msg, before, w;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	kbuf_init(&before, TEST_BUF);
	kbuf_init(&w, TEST_BUF);
	CHECK_STATUS(keystore_p11_root_open(uri, &msg), K_OK);
	CHECK_STATUS(root_wrap(&before), K_OK);
	CHECK(root_unwraps(&before));
	CHECK_EQ_INT(keystore_p11_root_state(), P11_CONNECTED);
	CHECK(rename(tokens, away) == 0);
	CHECK(k_failed(root_wrap(&w)));
	CHECK_EQ_INT(keystore_p11_root_state(), P11_FAILED);
	CHECK(k_failed(root_wrap(&w)));
	CHECK(!root_unwraps(&before));
	CHECK_EQ_INT(keystore_p11_root_state(), P11_FAILED);
	CHECK(rename(away, tokens) == 0);
	sleep(2);
	CHECK(root_unwraps(&before));
	CHECK_EQ_INT(keystore_p11_root_state(), P11_CONNECTED);
	CHECK_STATUS(root_wrap(&w), K_OK);
	keystore_p11_root_close();
	kbuf_release(&msg);
	kbuf_release(&before);
	kbuf_release(&w);
}

static bool make_token(const char *dir)
{
	char conf[512], tokens[512], cmd[2048];
	snprintf(tokens, sizeof tokens, "%s/tokens", dir);
	snprintf(conf, sizeof conf, "%s/softhsm2.conf", dir);
	FILE *fp = fopen(conf, "w");
	if (fp == NULL || mkdir(tokens, 0700) != 0)
		return false;
	fprintf(fp, "directories.tokendir = %s\nobjectstore.backend = file\n", tokens);
	fclose(fp);
	setenv("SOFTHSM2_CONF", conf, 1);
	snprintf(cmd, sizeof cmd,
		 "softhsm2-util --init-token --free --label %s --pin %s --so-pin 7654321 "
		 ">/dev/null",
		 LABEL, PIN);
	return system(cmd) == 0;
}

int main(void)
{
	if (access(MODULE, R_OK) != 0) {
		printf("pkcs11_test: SoftHSM2 is not installed; skipped\n");
		return 0;
	}
	char dir[] = "/tmp/kinko-pkcs11-test-XXXXXX";
	if (mkdtemp(dir) == NULL || !make_token(dir)) {
		fprintf(stderr, "cannot make a SoftHSM2 token\n");
		return 1;
	}
	struct p11_token_config cfg = {
		.id = TOKEN_ID, .module = MODULE, .label = LABEL, .trust_anchor = "ANCHOR"};
	if (k_failed(keystore_p11_add_token(&cfg)))
		return 1;
	kbuf_init(&ref, KEYSTORE_MAX_REF);
	RUN(test_connect_errors);
	RUN(test_round_trips);
	RUN(test_value_unreadable);
	RUN(test_disconnected_unavailable);
	RUN(test_gcm_in_the_token);
	RUN(test_erase);
	snprintf(test_dir, sizeof test_dir, "%s", dir);
	RUN(test_root_token_lost_and_back);
	keystore_p11_release_all();
	kbuf_release(&ref);
	tl_remove_tree(dir);
	return tl_summary();
}
