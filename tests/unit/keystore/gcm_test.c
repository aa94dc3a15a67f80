/*
 * gcm_test.c — the key-operations interface's plain AES-GCM
 * (keystore_gcm_encrypt / keystore_gcm_decrypt, the XKS proxy's
 * cryptography) on the software store: round trips, every input bound
 * (label, AAD, IV, tag, ciphertext, material version), rotation, and a key
 * without material.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keystore/keyops.h"
#include "keystore/keystore.h"
#include "testlib.h"
#include "core/banned.h"

#define ARN "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
#define GCM_TEST_REF_MAX (4u << 10)
#define GCM_TEST_BUF 256

static const uint8_t key_id[16] = {0x12, 0x34, 0xab, 0xcd, 0x12, 0xab, 0x34, 0xcd,
				   0x56, 0xef, 0x12, 0x34, 0x56, 0x78, 0x90, 0xab};

static struct keystore_key *soft_key(struct kbuf *ref)
{
	struct keystore_key *h = NULL;
	if (k_failed(keystore_generate(&keystore_soft, "SYMMETRIC_DEFAULT", ARN, ref)))
		return NULL;
	struct kslice r = kbuf_slice(ref);
	if (k_failed(keystore_open(&keystore_soft, ARN, key_id, &r, 1, &h)))
		return NULL;
	return h;
}

static void test_round_trip_and_bindings(void)
{
	struct kbuf ref, ct, pt;
	kbuf_init(&ref, GCM_TEST_REF_MAX);
	kbuf_init(&ct, GCM_TEST_BUF);
	kbuf_init(&pt, GCM_TEST_BUF);
	struct keystore_key *h = soft_key(&ref);
	CHECK(h != NULL);
	if (h == NULL)
		return;
	struct keystore_gcm g = {.label = KSLICE_LIT("kinko/xks/v1"), .aad = KSLICE_LIT("aad")};
	struct kslice msg = KSLICE_LIT("Hello World!");
	CHECK_STATUS(keystore_gcm_encrypt(h, &g, msg, &ct), K_OK);
	CHECK_EQ_INT(ct.len, msg.len);
	CHECK_EQ_INT(g.version, 1);
	CHECK(memcmp(ct.ptr, msg.ptr, msg.len) != 0);
	CHECK_STATUS(keystore_gcm_decrypt(h, &g, kbuf_slice(&ct), &pt), K_OK);
	CHECK(kslice_eq(kbuf_slice(&pt), msg));

	/* Every input is bound: another label, AAD, IV, tag, version or byte fails. */
	struct keystore_gcm bad = g;
	bad.label = KSLICE_LIT("kinko/other/v1");
	kbuf_reset(&pt);
	CHECK_STATUS(keystore_gcm_decrypt(h, &bad, kbuf_slice(&ct), &pt), K_E_INVALID_CIPHERTEXT);
	CHECK_EQ_INT(pt.len, 0);
	bad = g;
	bad.aad = KSLICE_LIT("aae");
	CHECK_STATUS(keystore_gcm_decrypt(h, &bad, kbuf_slice(&ct), &pt), K_E_INVALID_CIPHERTEXT);
	bad = g;
	bad.iv[0] ^= 1;
	CHECK_STATUS(keystore_gcm_decrypt(h, &bad, kbuf_slice(&ct), &pt), K_E_INVALID_CIPHERTEXT);
	bad = g;
	bad.tag[15] ^= 1;
	CHECK_STATUS(keystore_gcm_decrypt(h, &bad, kbuf_slice(&ct), &pt), K_E_INVALID_CIPHERTEXT);
	bad = g;
	bad.version = 2;
	CHECK_STATUS(keystore_gcm_decrypt(h, &bad, kbuf_slice(&ct), &pt), K_E_INVALID_CIPHERTEXT);
	bad.version = 0;
	CHECK_STATUS(keystore_gcm_decrypt(h, &bad, kbuf_slice(&ct), &pt), K_E_INVALID_CIPHERTEXT);
	ct.ptr[0] ^= 1;
	CHECK_STATUS(keystore_gcm_decrypt(h, &g, kbuf_slice(&ct), &pt), K_E_INVALID_CIPHERTEXT);
	CHECK_EQ_INT(pt.len, 0);

	/* Two encryptions of the same message differ (a new IV each time). */
	struct keystore_gcm g2 = g;
	struct kbuf ct2;
	kbuf_init(&ct2, GCM_TEST_BUF);
	CHECK_STATUS(keystore_gcm_encrypt(h, &g2, msg, &ct2), K_OK);
	CHECK(memcmp(g.iv, g2.iv, sizeof g.iv) != 0);
	kbuf_release(&ct2);
	keystore_key_unref(h);
	kbuf_release(&ref);
	kbuf_release(&ct);
	kbuf_release(&pt);
}

/* After rotation, new messages use version 2 and version 1's still decrypt. */
static void test_rotation(void)
{
	struct kbuf ref, ref2, ct1, ct2, pt;
	kbuf_init(&ref, GCM_TEST_REF_MAX);
	kbuf_init(&ref2, GCM_TEST_REF_MAX);
	kbuf_init(&ct1, GCM_TEST_BUF);
	kbuf_init(&ct2, GCM_TEST_BUF);
	kbuf_init(&pt, GCM_TEST_BUF);
	struct keystore_key *h = soft_key(&ref), *h2 = NULL;
	CHECK(h != NULL);
	struct keystore_gcm g1 = {.label = KSLICE_LIT("l"), .aad = KSLICE_LIT("")};
	struct keystore_gcm g2 = g1;
	CHECK_STATUS(keystore_gcm_encrypt(h, &g1, KSLICE_LIT("one"), &ct1), K_OK);
	CHECK_STATUS(keystore_new_version(h, "SYMMETRIC_DEFAULT", ARN, &ref2, &h2), K_OK);
	if (h2 != NULL) {
		CHECK_STATUS(keystore_gcm_encrypt(h2, &g2, KSLICE_LIT("two"), &ct2), K_OK);
		CHECK_EQ_INT(g2.version, 2);
		CHECK_STATUS(keystore_gcm_decrypt(h2, &g1, kbuf_slice(&ct1), &pt), K_OK);
		CHECK(kslice_eq_cstr(kbuf_slice(&pt), "one"));
		/* The old handle does not have version 2. */
		CHECK_STATUS(keystore_gcm_decrypt(h, &g2, kbuf_slice(&ct2), &pt),
			     K_E_INVALID_CIPHERTEXT);
	}
	keystore_key_unref(h);
	keystore_key_unref(h2);
	kbuf_release(&ref);
	kbuf_release(&ref2);
	kbuf_release(&ct1);
	kbuf_release(&ct2);
	kbuf_release(&pt);
}

/* A key without material, and an output buffer too small, are refused and leave nothing. */
static void test_refusals(void)
{
	struct keystore_key *none = NULL;
	struct kbuf small;
	kbuf_init(&small, 4);
	CHECK_STATUS(keystore_open(&keystore_soft, ARN, key_id, NULL, 0, &none), K_OK);
	struct keystore_gcm g = {.label = KSLICE_LIT("l")};
	if (none != NULL)
		CHECK_STATUS(keystore_gcm_encrypt(none, &g, KSLICE_LIT("x"), &small),
			     K_E_INVALID_STATE);
	keystore_key_unref(none);
	struct kbuf ref;
	kbuf_init(&ref, GCM_TEST_REF_MAX);
	struct keystore_key *h = soft_key(&ref);
	CHECK_STATUS(keystore_gcm_encrypt(h, &g, KSLICE_LIT("longer than four"), &small),
		     K_E_VALIDATION);
	CHECK_EQ_INT(small.len, 0);
	keystore_key_unref(h);
	kbuf_release(&ref);
	kbuf_release(&small);
}

int main(void)
{
	char dir[] = "/tmp/kinko-gcm-test-XXXXXX";
	if (mkdtemp(dir) == NULL)
		return 1;
	char path[256];
	snprintf(path, sizeof path, "%s/root.key", dir);
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	if (k_failed(keystore_open_file(path, true, &msg))) {
		fprintf(stderr, "root key: %s\n", kbuf_cstr(&msg));
		return 1;
	}
	kbuf_release(&msg);
	RUN(test_round_trip_and_bindings);
	RUN(test_rotation);
	RUN(test_refusals);
	keystore_close();
	unlink(path);
	rmdir(dir);
	return tl_summary();
}
