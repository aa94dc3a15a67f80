/*
 * specs_test.c — the key spec table (kms/specs.h) and the small pure
 * helpers of kms.h: key-state names, the reserved alias prefix, key ARNs,
 * tag and key-policy validation, and the refusal AWS gives to changes of
 * an AWS managed key. Negative cases beside each positive one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "req/req.h"
#include "core/secret.h"
#include "kms/kms.h"
#include "kms/specs.h"
#include "testlib.h"
#include "core/banned.h"

static struct api_operation op_tag = {.name = "TagResource", .action = "kms:TagResource"};

static void ctx_init(struct api_ctx *c)
{
	memset(c, 0, sizeof *c);
	c->op = &op_tag;
	snprintf(c->principal.account, sizeof c->principal.account, "111122223333");
	snprintf(c->principal.arn, sizeof c->principal.arn, "arn:aws:iam::111122223333:user/alice");
	snprintf(c->region, sizeof c->region, "eu-west-1");
	snprintf(c->ns, sizeof c->ns, "111122223333:eu-west-1");
	kbuf_init(&c->err_msg, 2048);
}

static const char *msg_of(struct api_ctx *c)
{
	return c->err_msg.len ? kbuf_cstr(&c->err_msg) : "";
}

/* Every spec of the enum has a row of its own name, except those this build cannot create. */
static void test_spec_rows(void)
{
	size_t n = 0;
	for (size_t i = 0; kms_spec_names[i] != NULL; i++, n++) {
		const struct kms_spec *s = kms_spec_find(kms_spec_names[i]);
		CHECK(s != NULL);
		if (strcmp(kms_spec_names[i], "SM2") == 0)
			continue; /* not in the table: this build cannot create it */
		CHECK_STR(s->name, kms_spec_names[i]);
		/* "KeyUsage ... The default value is ENCRYPT_DECRYPT" for every spec. */
		CHECK_STR(s->default_usage, "ENCRYPT_DECRYPT");
		CHECK(s->importable);
		CHECK(s->usages[0] != NULL);
		/* Every allowed usage is a KeyUsage value. */
		for (size_t u = 0; s->usages[u] != NULL; u++) {
			bool known = false;
			for (size_t k = 0; kms_usage_names[k] != NULL; k++)
				known = known || strcmp(kms_usage_names[k], s->usages[u]) == 0;
			CHECK(known);
		}
	}
	CHECK_EQ_INT(n, 14);
	/* Every KeyUsage value is allowed by some spec. */
	for (size_t k = 0; kms_usage_names[k] != NULL; k++) {
		bool someone = false;
		for (size_t i = 0; kms_spec_names[i] != NULL; i++)
			someone = someone || kms_spec_allows_usage(kms_spec_find(kms_spec_names[i]),
								   kms_usage_names[k]);
		CHECK(someone);
	}
}

static void test_spec_unknown(void)
{
	const char *names[] = {"SM2", "", "symmetric_default", "RSA_1024", "HMAC_128", "AES_256"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const struct kms_spec *s = kms_spec_find(names[i]);
		CHECK(s != NULL);
		CHECK_STR(s->name, "");
		CHECK(!s->importable);
		CHECK(!kms_spec_allows_usage(s, "ENCRYPT_DECRYPT"));
		json_t *doc = json_object();
		kms_spec_describe(s, "ENCRYPT_DECRYPT", doc);
		CHECK_EQ_INT(json_object_size(doc), 0);
		json_decref(doc);
	}
}

/* The usage rules of AWS's key spec reference, and their negatives. */
static void test_spec_usages(void)
{
	static const struct {
		const char *spec, *usage;
		bool allowed;
	} rows[] = {
		{"SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", true},
		{"SYMMETRIC_DEFAULT", "SIGN_VERIFY", false},
		{"SYMMETRIC_DEFAULT", "GENERATE_VERIFY_MAC", false},
		{"RSA_2048", "ENCRYPT_DECRYPT", true},
		{"RSA_3072", "SIGN_VERIFY", true},
		{"RSA_4096", "KEY_AGREEMENT", false},
		{"RSA_4096", "GENERATE_VERIFY_MAC", false},
		{"ECC_NIST_P256", "SIGN_VERIFY", true},
		{"ECC_NIST_P384", "KEY_AGREEMENT", true},
		{"ECC_NIST_P521", "ENCRYPT_DECRYPT", false},
		{"ECC_SECG_P256K1", "SIGN_VERIFY", true},
		{"ECC_SECG_P256K1", "KEY_AGREEMENT", false},
		{"ECC_NIST_EDWARDS25519", "SIGN_VERIFY", true},
		{"ECC_NIST_EDWARDS25519", "KEY_AGREEMENT", false},
		{"HMAC_224", "GENERATE_VERIFY_MAC", true},
		{"HMAC_512", "GENERATE_VERIFY_MAC", true},
		{"HMAC_256", "ENCRYPT_DECRYPT", false},
		{"HMAC_384", "SIGN_VERIFY", false},
		{"SYMMETRIC_DEFAULT", "encrypt_decrypt", false},
		{"SYMMETRIC_DEFAULT", "", false},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		tl_current = rows[i].spec;
		CHECK_EQ_INT(kms_spec_allows_usage(kms_spec_find(rows[i].spec), rows[i].usage),
			     rows[i].allowed);
	}
}

/* One algorithm list member, as a JSON text, for a spec and usage. */
static void describe(const char *spec, const char *usage, char *out, size_t n)
{
	json_t *doc = json_object();
	kms_spec_describe(kms_spec_find(spec), usage, doc);
	char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	snprintf(out, n, "%s", s ? s : "");
	free(s);
	json_decref(doc);
}

static void test_spec_describe(void)
{
	char d[512];
	describe("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", d, sizeof d);
	CHECK_STR(d, "{\"EncryptionAlgorithms\":[\"SYMMETRIC_DEFAULT\"]}");
	describe("RSA_2048", "ENCRYPT_DECRYPT", d, sizeof d);
	CHECK_STR(d, "{\"EncryptionAlgorithms\":[\"RSAES_OAEP_SHA_1\",\"RSAES_OAEP_SHA_256\"]}");
	describe("RSA_4096", "SIGN_VERIFY", d, sizeof d);
	CHECK_STR(d, "{\"SigningAlgorithms\":[\"RSASSA_PSS_SHA_256\",\"RSASSA_PSS_SHA_384\","
		     "\"RSASSA_PSS_SHA_512\",\"RSASSA_PKCS1_V1_5_SHA_256\","
		     "\"RSASSA_PKCS1_V1_5_SHA_384\",\"RSASSA_PKCS1_V1_5_SHA_512\"]}");
	describe("ECC_NIST_P256", "SIGN_VERIFY", d, sizeof d);
	CHECK_STR(d, "{\"SigningAlgorithms\":[\"ECDSA_SHA_256\"]}");
	describe("ECC_NIST_P256", "KEY_AGREEMENT", d, sizeof d);
	CHECK_STR(d, "{\"KeyAgreementAlgorithms\":[\"ECDH\"]}");
	describe("ECC_NIST_P384", "SIGN_VERIFY", d, sizeof d);
	CHECK_STR(d, "{\"SigningAlgorithms\":[\"ECDSA_SHA_384\"]}");
	describe("ECC_NIST_P521", "KEY_AGREEMENT", d, sizeof d);
	CHECK_STR(d, "{\"KeyAgreementAlgorithms\":[\"ECDH\"]}");
	describe("ECC_NIST_P521", "SIGN_VERIFY", d, sizeof d);
	CHECK_STR(d, "{\"SigningAlgorithms\":[\"ECDSA_SHA_512\"]}");
	describe("ECC_SECG_P256K1", "SIGN_VERIFY", d, sizeof d);
	CHECK_STR(d, "{\"SigningAlgorithms\":[\"ECDSA_SHA_256\"]}");
	describe("ECC_NIST_EDWARDS25519", "SIGN_VERIFY", d, sizeof d);
	CHECK_STR(d, "{\"SigningAlgorithms\":[\"ED25519_SHA_512\"]}");
	describe("HMAC_224", "GENERATE_VERIFY_MAC", d, sizeof d);
	CHECK_STR(d, "{\"MacAlgorithms\":[\"HMAC_SHA_224\"]}");
	describe("HMAC_512", "GENERATE_VERIFY_MAC", d, sizeof d);
	CHECK_STR(d, "{\"MacAlgorithms\":[\"HMAC_SHA_512\"]}");
}

static void test_state_names(void)
{
	static const char *const names[] = {
		"Enabled",     "Disabled", "PendingDeletion",	     "PendingImport",
		"Unavailable", "Creating", "PendingReplicaDeletion", "Updating"};
	for (int i = 0; i < KS_UNKNOWN; i++) {
		CHECK_STR(kms_state_name((enum kms_key_state)i), names[i]);
		CHECK_EQ_INT(kms_state_parse(names[i]), i);
	}
	CHECK_STR(kms_state_name(KS_UNKNOWN), "Unavailable");
	CHECK_STR(kms_state_name((enum kms_key_state)99), "Unavailable");
	CHECK_EQ_INT(kms_state_parse(NULL), KS_UNKNOWN);
	CHECK_EQ_INT(kms_state_parse(""), KS_UNKNOWN);
	CHECK_EQ_INT(kms_state_parse("enabled"), KS_UNKNOWN);
	CHECK_EQ_INT(kms_state_parse("Enabled "), KS_UNKNOWN);
	CHECK_EQ_INT(kms_state_parse("PendingDeletionX"), KS_UNKNOWN);
}

static void test_alias_reserved(void)
{
	CHECK(kms_alias_reserved("alias/aws/s3"));
	CHECK(kms_alias_reserved("alias/aws/secretsmanager"));
	CHECK(kms_alias_reserved("alias/aws/"));
	CHECK(!kms_alias_reserved("alias/aws"));
	CHECK(!kms_alias_reserved("alias/awsome"));
	CHECK(!kms_alias_reserved("alias/my/aws/key"));
	CHECK(!kms_alias_reserved("aws/s3"));
	CHECK(!kms_alias_reserved(""));
}

static void test_key_arn(void)
{
	struct api_ctx c;
	ctx_init(&c);
	char arn[160];
	kms_key_arn(&c, "1234abcd-12ab-34cd-56ef-1234567890ab", arn, sizeof arn);
	CHECK_STR(arn,
		  "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab");
	/* A short buffer truncates, never overflows. */
	char small[16];
	kms_key_arn(&c, "1234abcd-12ab-34cd-56ef-1234567890ab", small, sizeof small);
	CHECK_EQ_INT(strlen(small), sizeof small - 1);
	kbuf_release(&c.err_msg);
}

/* Validates a Tags list given as JSON text; the message goes to msg. */
static K_MUST_CHECK k_status tags(const char *text, char *msg, size_t n)
{
	struct api_ctx c;
	ctx_init(&c);
	json_t *t = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
	k_status rc = kms_validate_tags(&c, t);
	snprintf(msg, n, "%s", msg_of(&c));
	json_decref(t);
	kbuf_release(&c.err_msg);
	return rc;
}

static void test_tags(void)
{
	char m[512];
	CHECK_STATUS(tags(NULL, m, sizeof m), K_OK);
	CHECK_STATUS(tags("null", m, sizeof m), K_OK);
	CHECK_STATUS(tags("[]", m, sizeof m), K_OK);
	CHECK_STATUS(tags("[{\"TagKey\":\"env\",\"TagValue\":\"prod\"}]", m, sizeof m), K_OK);
	CHECK_STATUS(tags("[{\"TagKey\":\"env\",\"TagValue\":\"\"}]", m, sizeof m), K_OK);
	CHECK_STATUS(tags("{\"TagKey\":\"env\"}", m, sizeof m), K_E_SERIALIZATION);
	CHECK_STR(m, "Unexpected value type for member 'Tags'");
	CHECK_STATUS(tags("[\"env\"]", m, sizeof m), K_E_SERIALIZATION);
	CHECK_STATUS(tags("[{\"TagValue\":\"prod\"}]", m, sizeof m), K_E_VALIDATION);
	CHECK_STATUS(tags("[{\"TagKey\":\"env\"}]", m, sizeof m), K_E_VALIDATION);
	CHECK_STATUS(tags("[{\"TagKey\":\"\",\"TagValue\":\"x\"}]", m, sizeof m), K_E_VALIDATION);
	CHECK_STATUS(tags("[{\"TagKey\":7,\"TagValue\":\"x\"}]", m, sizeof m), K_E_SERIALIZATION);
	CHECK_STATUS(tags("[{\"TagKey\":\"aws:owner\",\"TagValue\":\"x\"}]", m, sizeof m), K_E_TAG);
	CHECK_STR(m, "Tag keys beginning with 'aws:' are reserved.");
	/* "aws" without the colon, and another case, are the caller's. */
	CHECK_STATUS(tags("[{\"TagKey\":\"awsome\",\"TagValue\":\"x\"}]", m, sizeof m), K_OK);

	/* Lengths: TagKey 1..128, TagValue 0..256; at most 50 tags. */
	char key[130], val[258], buf[20000];
	memset(key, 'k', 128);
	key[128] = 0;
	memset(val, 'v', 256);
	val[256] = 0;
	snprintf(buf, sizeof buf, "[{\"TagKey\":\"%s\",\"TagValue\":\"%s\"}]", key, val);
	CHECK_STATUS(tags(buf, m, sizeof m), K_OK);
	key[128] = 'k';
	key[129] = 0;
	snprintf(buf, sizeof buf, "[{\"TagKey\":\"%s\",\"TagValue\":\"x\"}]", key);
	CHECK_STATUS(tags(buf, m, sizeof m), K_E_VALIDATION);
	val[256] = 'v';
	val[257] = 0;
	snprintf(buf, sizeof buf, "[{\"TagKey\":\"k\",\"TagValue\":\"%s\"}]", val);
	CHECK_STATUS(tags(buf, m, sizeof m), K_E_VALIDATION);
	for (int count = 50; count <= 51; count++) {
		size_t len = (size_t)snprintf(buf, sizeof buf, "[");
		for (int i = 0; i < count; i++)
			len += (size_t)snprintf(buf + len, sizeof buf - len,
						"%s{\"TagKey\":\"k%d\",\"TagValue\":\"v\"}",
						i ? "," : "", i);
		snprintf(buf + len, sizeof buf - len, "]");
		CHECK_STATUS(tags(buf, m, sizeof m), count == 50 ? K_OK : K_E_TAG);
	}
}

static K_MUST_CHECK k_status policy(const char *text)
{
	struct api_ctx c;
	ctx_init(&c);
	k_status rc = kms_validate_policy_text(&c, text);
	kbuf_release(&c.err_msg);
	return rc;
}

static void test_policy_text(void)
{
	CHECK_STATUS(policy("{\"Version\":\"2012-10-17\",\"Statement\":[]}"), K_OK);
	CHECK_STATUS(policy("{\"Statement\":{\"Effect\":\"Allow\"}}"), K_OK);
	CHECK_STATUS(policy("{\"Version\":\"2012-10-17\"}"), K_E_MALFORMED_POLICY);
	CHECK_STATUS(policy("{\"Statement\":\"Allow\"}"), K_E_MALFORMED_POLICY);
	CHECK_STATUS(policy("[{\"Statement\":[]}]"), K_E_MALFORMED_POLICY);
	CHECK_STATUS(policy("{\"Statement\":[]"), K_E_MALFORMED_POLICY);
	CHECK_STATUS(policy(""), K_E_MALFORMED_POLICY);
	CHECK_STATUS(policy("{\"Statement\":[],\"Statement\":[]}"), K_E_MALFORMED_POLICY);
}

static void test_aws_managed(void)
{
	struct kms_key k;
	memset(&k, 0, sizeof k);
	snprintf(k.arn, sizeof k.arn, "arn:aws:kms:eu-west-1:111122223333:key/x");
	struct api_ctx c;

	k.doc = json_pack("{s:s}", "KeyManager", "CUSTOMER");
	ctx_init(&c);
	CHECK(!kms_key_is_aws_managed(&k));
	CHECK_STATUS(kms_deny_aws_managed(&c, &k), K_OK);
	CHECK_EQ_INT(c.err_msg.len, 0);
	kbuf_release(&c.err_msg);
	json_decref(k.doc);

	k.doc = json_object(); /* no KeyManager: a customer key */
	CHECK(!kms_key_is_aws_managed(&k));
	json_decref(k.doc);

	k.doc = json_pack("{s:s}", "KeyManager", "aws");
	CHECK(!kms_key_is_aws_managed(&k));
	json_decref(k.doc);

	k.doc = json_pack("{s:s}", "KeyManager", "AWS");
	ctx_init(&c);
	CHECK(kms_key_is_aws_managed(&k));
	CHECK_STATUS(kms_deny_aws_managed(&c, &k), K_E_ACCESS_DENIED);
	CHECK_STR(
		msg_of(&c),
		"User: arn:aws:iam::111122223333:user/alice is not authorized to perform: "
		"kms:TagResource on resource: arn:aws:kms:eu-west-1:111122223333:key/x because no "
		"resource-based policy allows the kms:TagResource action");
	kbuf_release(&c.err_msg);
	json_decref(k.doc);
}

int main(void)
{
	RUN(test_spec_rows);
	RUN(test_spec_unknown);
	RUN(test_spec_usages);
	RUN(test_spec_describe);
	RUN(test_state_names);
	RUN(test_alias_reserved);
	RUN(test_key_arn);
	RUN(test_tags);
	RUN(test_policy_text);
	RUN(test_aws_managed);
	return tl_summary();
}
