/*
 * wire_test.c — the XKS proxy API on the wire (xks/wire.h) and the
 * client's parsers of a proxy's answers (xks/client.h): routes, request
 * bodies (the spec's own examples), the error table, the AAD encoding,
 * the CDIV of the spec's Appendix C, and answers good and bad.
 */
#include <stdlib.h>
#include <string.h>

#include "xks/client.h"
#include "xks/wire.h"
#include "testlib.h"
#include "core/banned.h"

#define T_BUF 4096
#define PATH "/keystores/a/kms/xks/v1"

static k_status route(const char *path, struct xks_route *r)
{
	return xks_route(kslice_cstr(path), PATH, r);
}

static void test_routes(void)
{
	struct xks_route r;
	CHECK_STATUS(route(PATH "/health", &r), K_OK);
	CHECK_EQ_INT(r.op, XKS_OP_HEALTH);
	CHECK_STATUS(route(PATH "/keys/b42c7fbf-de61_441c.ae24/encrypt", &r), K_OK);
	CHECK_EQ_INT(r.op, XKS_OP_ENCRYPT);
	CHECK(kslice_eq_cstr(r.key_id, "b42c7fbf-de61_441c.ae24"));
	CHECK_STATUS(route(PATH "/keys/k/decrypt", &r), K_OK);
	CHECK_EQ_INT(r.op, XKS_OP_DECRYPT);
	CHECK_STATUS(route(PATH "/keys/k/metadata", &r), K_OK);
	CHECK_EQ_INT(r.op, XKS_OP_METADATA);
	/* InvalidUriPathException: another prefix, another operation, a bad key id. */
	const char *bad[] = {
		"/kms/xks/v1/health",
		PATH,
		PATH "/",
		PATH "/healthz",
		PATH "/keys/k/sign",
		PATH "/keys//encrypt",
		PATH "/keys/k",
		PATH "/keys/k/encrypt/x",
		PATH "/keys/k%2F/encrypt",
		PATH "/keys/a b/encrypt",
		"/keystores/b/kms/xks/v1/health",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_STATUS(route(bad[i], &r), K_E_NOT_FOUND_HTTP);
	char longid[300];
	snprintf(longid, sizeof longid, PATH "/keys/%0128d/metadata", 7);
	CHECK_STATUS(route(longid, &r), K_OK);
	snprintf(longid, sizeof longid, PATH "/keys/%0129d/metadata", 7);
	CHECK_STATUS(route(longid, &r), K_E_NOT_FOUND_HTTP);
}

static k_status parse(enum xks_op op, const char *body, struct xks_request *r)
{
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	xks_request_release(r);
	xks_request_init(r);
	k_status rc = xks_request_parse(op, kslice_cstr(body), r, &msg);
	kbuf_release(&msg);
	return rc;
}

#define MD                                                                                         \
	"\"requestMetadata\":{\"awsPrincipalArn\":\"arn:aws:iam::123456789012:user/Alice\","       \
	"\"kmsKeyArn\":\"arn:aws:kms:us-east-2:123456789012:/key/1234abcd\","                      \
	"\"kmsOperation\":\"Encrypt\",\"kmsRequestId\":\"4112f4d6\",\"kmsViaService\":\"ebs\"}"

/* The spec's examples parse, with their members where the spec puts them. */
static void test_spec_examples(void)
{
	struct xks_request r;
	xks_request_init(&r);
	CHECK_STATUS(parse(XKS_OP_ENCRYPT,
			   "{" MD ",\"additionalAuthenticatedData\":"
			   "\"cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n\","
			   "\"plaintext\":\"SGVsbG8gV29ybGQh\",\"encryptionAlgorithm\":\"AES_GCM\","
			   "\"ciphertextDataIntegrityValueAlgorithm\":\"SHA_256\"}",
			   &r),
		     K_OK);
	CHECK(kslice_eq_cstr(kbuf_slice(&r.plaintext), "Hello World!"));
	CHECK(kslice_eq_cstr(kbuf_slice(&r.aad), "project=nile,department=marketing"));
	CHECK(r.has_aad && r.want_cdiv);
	CHECK_STR(r.md.kms_request_id, "4112f4d6");
	CHECK_STR(r.md.kms_via_service, "ebs");
	CHECK_STATUS(parse(XKS_OP_DECRYPT,
			   "{" MD ",\"encryptionAlgorithm\":\"AES_GCM\","
			   "\"ciphertext\":\"ghxkK1txeDNn3q8Y\","
			   "\"ciphertextMetadata\":\"a2V5X3ZlcnNpb249MQ==\","
			   "\"initializationVector\":\"HMrlRw85cAJUd5Ax\","
			   "\"authenticationTag\":\"vBxN2ncH1oEkR8WVXpmyYQ==\"}",
			   &r),
		     K_OK);
	CHECK_EQ_INT(r.ciphertext.len, 12);
	CHECK(kslice_eq_cstr(kbuf_slice(&r.ciphertext_metadata), "key_version=1"));
	CHECK_EQ_INT(r.iv.len, 12);
	CHECK_EQ_INT(r.tag.len, 16);
	CHECK(!r.has_aad);
	/* GetHealthStatus carries only kmsRequestId and kmsOperation. */
	CHECK_STATUS(parse(XKS_OP_HEALTH,
			   "{\"requestMetadata\":{\"kmsRequestId\":\"x\",\"kmsOperation\":"
			   "\"KmsHealthCheck\"}}",
			   &r),
		     K_OK);
	/* GetKeyMetadata without kmsKeyArn (CreateKey), an unknown kmsOperation, a new field. */
	CHECK_STATUS(parse(XKS_OP_METADATA,
			   "{\"requestMetadata\":{\"awsPrincipalArn\":\"p\",\"kmsOperation\":"
			   "\"BulkDescribeKey\",\"kmsRequestId\":\"r\",\"sourceIdentity\":\"s\"}}",
			   &r),
		     K_OK);
	xks_request_release(&r);
}

static void test_request_refusals(void)
{
	struct xks_request r;
	xks_request_init(&r);
	const char *invalid[] = {
		"",
		"[]",
		"{",
		"{\"requestMetadata\":1}",
		/* a required member missing or of the wrong type */
		"{\"requestMetadata\":{\"kmsRequestId\":\"r\",\"kmsKeyArn\":\"k\","
		"\"kmsOperation\":\"Encrypt\"},\"plaintext\":\"\",\"encryptionAlgorithm\":\"AES_"
		"GCM\"}",
		"{" MD ",\"encryptionAlgorithm\":\"AES_GCM\"}",
		"{" MD ",\"plaintext\":\"SGVsbG8=\"}",
		"{" MD ",\"plaintext\":7,\"encryptionAlgorithm\":\"AES_GCM\"}",
		"{" MD ",\"plaintext\":\"SGVsbG8=\",\"encryptionAlgorithm\":\"AES_CBC\"}",
		"{" MD ",\"plaintext\":\"not base64!\",\"encryptionAlgorithm\":\"AES_GCM\"}",
		"{" MD ",\"plaintext\":\"SGVsbG8=\",\"encryptionAlgorithm\":\"AES_GCM\","
		"\"ciphertextDataIntegrityValueAlgorithm\":\"MD5\"}",
		"{" MD ",\"plaintext\":\"SGVsbG8=\",\"plaintext\":\"SGVsbG8=\","
		"\"encryptionAlgorithm\":\"AES_GCM\"}",
	};
	for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
		CHECK_STATUS(parse(XKS_OP_ENCRYPT, invalid[i], &r), K_E_VALIDATION);
	/* Decrypt: the IV is 12 or 16 bytes, the tag 16, the metadata at most 20. */
	CHECK_STATUS(parse(XKS_OP_DECRYPT,
			   "{" MD ",\"encryptionAlgorithm\":\"AES_GCM\",\"ciphertext\":\"AAAA\","
			   "\"initializationVector\":\"AAAAAAAAAAAAAAAAAAAAAA==\","
			   "\"authenticationTag\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}",
			   &r),
		     K_OK);
	CHECK_STATUS(parse(XKS_OP_DECRYPT,
			   "{" MD ",\"encryptionAlgorithm\":\"AES_GCM\",\"ciphertext\":\"AAAA\","
			   "\"initializationVector\":\"AAAAAAAA\","
			   "\"authenticationTag\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}",
			   &r),
		     K_E_VALIDATION);
	CHECK_STATUS(parse(XKS_OP_DECRYPT,
			   "{" MD ",\"encryptionAlgorithm\":\"AES_GCM\",\"ciphertext\":\"AAAA\","
			   "\"initializationVector\":\"AAAAAAAAAAAAAAAA\","
			   "\"authenticationTag\":\"AAAAAAAAAAAAAAAAAAAA\"}",
			   &r),
		     K_E_VALIDATION);
	CHECK_STATUS(parse(XKS_OP_DECRYPT,
			   "{" MD ",\"encryptionAlgorithm\":\"AES_GCM\",\"ciphertext\":\"AAAA\","
			   "\"ciphertextMetadata\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
			   "\"initializationVector\":\"AAAAAAAAAAAAAAAA\","
			   "\"authenticationTag\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}",
			   &r),
		     K_E_VALIDATION);
	/* Past 8192 bytes of plaintext: UnsupportedOperationException. */
	static const char head[] = "{" MD ",\"encryptionAlgorithm\":\"AES_GCM\",\"plaintext\":\"";
	size_t n = (XKS_MAX_PLAINTEXT + 3) / 3 * 4 + 4;
	size_t total = sizeof head - 1 + n + 3;
	char *big = calloc(1, total);
	if (big != NULL) {
		memcpy(big, head, sizeof head - 1);
		memset(big + sizeof head - 1, 'A', n);
		memcpy(big + sizeof head - 1 + n, "\"}", 3);
		CHECK_STATUS(parse(XKS_OP_ENCRYPT, big, &r), K_E_UNSUPPORTED);
		free(big);
	}
	xks_request_release(&r);
}

static void test_errors(void)
{
	CHECK_EQ_INT(xks_error_status(xks_error_of(K_E_INVALID_SIGNATURE)), 401);
	CHECK_STR(xks_error_name(xks_error_of(K_E_UNRECOGNIZED_CLIENT)),
		  "AuthenticationFailedException");
	CHECK_EQ_INT(xks_error_status(xks_error_of(K_E_ACCESS_DENIED)), 403);
	CHECK_STR(xks_error_name(xks_error_of(K_E_NOT_FOUND)), "KeyNotFoundException");
	CHECK_EQ_INT(xks_error_status(xks_error_of(K_E_NOT_FOUND)), 404);
	CHECK_STR(xks_error_name(xks_error_of(K_E_NOT_FOUND_HTTP)), "InvalidUriPathException");
	CHECK_EQ_INT(xks_error_status(xks_error_of(K_E_THROTTLING)), 429);
	CHECK_EQ_INT(xks_error_status(xks_error_of(K_E_UNSUPPORTED)), 501);
	CHECK_EQ_INT(xks_error_status(xks_error_of(K_E_DEPENDENCY_TIMEOUT)), 503);
	CHECK_STR(xks_error_name(xks_error_of(K_E_STORE_UNAVAILABLE)), "InternalException");
	CHECK_EQ_INT(xks_error_status(xks_error_of(K_E_INVALID_CIPHERTEXT)), 400);
	for (int i = 0; i < XKS_E_COUNT; i++) {
		enum xks_error back;
		CHECK(xks_error_parse(xks_error_name((enum xks_error)i), &back) && (int)back == i);
	}
	/* The message is printable ASCII, under 512 characters. */
	struct kbuf b;
	kbuf_init(&b, T_BUF);
	char msg[700];
	memset(msg, 'x', sizeof msg - 1);
	msg[sizeof msg - 1] = 0;
	msg[3] = '\n';
	CHECK_STATUS(xks_error_body(XKS_E_INVALID_STATE, msg, &b), K_OK);
	json_t *o = json_loadb((const char *)b.ptr, b.len, 0, NULL);
	CHECK_STR(json_string_value(json_object_get(o, "errorName")), "InvalidStateException");
	const char *m = json_string_value(json_object_get(o, "errorMessage"));
	CHECK(m != NULL && strlen(m) == XKS_MAX_ERROR_MESSAGE && m[3] == '?');
	json_decref(o);
	kbuf_release(&b);
}

/* The spec's Appendix C example: its CDIV, byte for byte. */
static void test_cdiv_appendix_c(void)
{
	static const uint8_t iv[] = {0x1c, 0xca, 0xe5, 0x47, 0x0f, 0x39,
				     0x70, 0x02, 0x54, 0x77, 0x90, 0x31};
	static const uint8_t ct[] = {0x82, 0x1c, 0x64, 0x2b, 0x5b, 0x71,
				     0x78, 0x33, 0x67, 0xde, 0xaf, 0x18};
	static const uint8_t tag[] = {0xbc, 0x1c, 0x4d, 0xda, 0x77, 0x07, 0xd6, 0x81,
				      0x24, 0x47, 0xc5, 0x95, 0x5e, 0x99, 0xb2, 0x61};
	uint8_t out[XKS_CDIV_LEN];
	CHECK_STATUS(xks_cdiv(KSLICE_LIT("project=nile,department=marketing"),
			      KSLICE_LIT("key_version=1"), kslice_make(iv, sizeof iv),
			      kslice_make(ct, sizeof ct), kslice_make(tag, sizeof tag), out),
		     K_OK);
	struct kbuf b;
	kbuf_init(&b, T_BUF);
	CHECK_STATUS(kbuf_append_base64(&b, out, sizeof out), K_OK);
	CHECK_STR(kbuf_cstr(&b), "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=");
	kbuf_release(&b);
}

/* The AAD given to GCM: 2-byte length, AAD, 1-byte length, metadata. */
static void test_gcm_aad(void)
{
	struct kbuf b;
	kbuf_init(&b, T_BUF);
	CHECK_STATUS(xks_gcm_aad(KSLICE_LIT("ab"), KSLICE_LIT("xyz"), &b), K_OK);
	CHECK_EQ_INT(b.len, 8);
	CHECK(memcmp(b.ptr,
		     "\x00\x02"
		     "ab"
		     "\x03"
		     "xyz",
		     8) == 0);
	kbuf_reset(&b);
	/* No AAD and metadata "ab" differ from AAD "ab" and no metadata. */
	CHECK_STATUS(xks_gcm_aad(kslice_make("", 0), KSLICE_LIT("ab"), &b), K_OK);
	CHECK(memcmp(b.ptr,
		     "\x00\x00\x02"
		     "ab",
		     5) == 0);
	kbuf_release(&b);
}

static void test_answers(void)
{
	struct xks_key_metadata m;
	CHECK_STATUS(xks_answer_metadata(KSLICE_LIT("{\"keySpec\":\"AES_256\",\"keyUsage\":["
						    "\"ENCRYPT\",\"DECRYPT\"],\"keyStatus\":"
						    "\"ENABLED\"}"),
					 &m),
		     K_OK);
	CHECK_EQ_INT(m.n_key_usage, 2);
	CHECK_STR(m.key_usage[1], "DECRYPT");
	CHECK_STATUS(xks_answer_metadata(KSLICE_LIT("{\"keySpec\":\"AES_256\"}"), &m),
		     K_E_XKS_PROXY_INVALID_RESPONSE);
	CHECK_STATUS(xks_answer_metadata(KSLICE_LIT("<html>"), &m), K_E_XKS_PROXY_INVALID_RESPONSE);
	struct xks_health h;
	CHECK_STATUS(
		xks_answer_health(
			KSLICE_LIT(
				"{\"xksProxyFleetSize\":2,\"xksProxyVendor\":\"Acme Corp\","
				"\"xksProxyModel\":\"Acme XKS Proxy 1.0\",\"ekmVendor\":\"Thales "
				"Group\",\"ekmFleetDetails\":[{\"id\":\"hsm-id-1\",\"model\":"
				"\"Luna 5.0\",\"healthStatus\":\"DEGRADED\"},{\"id\":\"hsm-id-2\","
				"\"model\":\"Luna 5.1\",\"healthStatus\":\"ACTIVE\"}]}"),
			&h),
		K_OK);
	CHECK_EQ_INT(h.n_ekm, 2);
	CHECK_STR(h.ekm[1].health_status, "ACTIVE");
	CHECK_STATUS(xks_answer_health(KSLICE_LIT("{\"xksProxyFleetSize\":0,\"xksProxyVendor\":"
						  "\"a\",\"xksProxyModel\":\"b\",\"ekmVendor\":"
						  "\"c\",\"ekmFleetDetails\":[]}"),
				       &h),
		     K_E_XKS_PROXY_INVALID_RESPONSE);
	/* The spec's Encrypt answer, with its CDIV over the request's AAD. */
	struct xks_ciphertext c;
	xks_ciphertext_init(&c);
	struct kslice body =
		KSLICE_LIT("{\"authenticationTag\":\"vBxN2ncH1oEkR8WVXpmyYQ==\",\"ciphertext\":"
			   "\"ghxkK1txeDNn3q8Y\",\"ciphertextDataIntegrityValue\":\"qHA/"
			   "ImC9h5HsLRXqCyPmWgYx7tzyoTp"
			   "lzILbP0fPXsc=\",\"ciphertextMetadata\":\"a2V5X3ZlcnNpb249MQ==\","
			   "\"initializationVector\":\"HMrlRw85cAJUd5Ax\"}");
	struct kslice aad = KSLICE_LIT("project=nile,department=marketing");
	CHECK_STATUS(xks_answer_encrypt(body, 12, &aad, &c), K_OK);
	CHECK_EQ_INT(c.iv_len, 12);
	CHECK(c.has_metadata && c.metadata.len == 13);
	xks_ciphertext_release(&c);
	/* Another AAD: the CDIV does not match. A wrong length: malformed. */
	xks_ciphertext_init(&c);
	struct kslice other = KSLICE_LIT("project=nile");
	CHECK_STATUS(xks_answer_encrypt(body, 12, &other, &c), K_E_XKS_PROXY_INVALID_RESPONSE);
	xks_ciphertext_release(&c);
	xks_ciphertext_init(&c);
	CHECK_STATUS(xks_answer_encrypt(body, 13, NULL, &c), K_E_XKS_PROXY_INVALID_RESPONSE);
	xks_ciphertext_release(&c);
	struct kbuf pt;
	kbuf_init(&pt, T_BUF);
	CHECK_STATUS(
		xks_answer_decrypt(KSLICE_LIT("{\"plaintext\":\"SGVsbG8gV29ybGQh\"}"), 12, &pt),
		K_OK);
	CHECK(kslice_eq_cstr(kbuf_slice(&pt), "Hello World!"));
	kbuf_reset(&pt);
	CHECK_STATUS(
		xks_answer_decrypt(KSLICE_LIT("{\"plaintext\":\"SGVsbG8gV29ybGQh\"}"), 11, &pt),
		K_E_XKS_PROXY_INVALID_RESPONSE);
	CHECK_EQ_INT(pt.len, 0);
	kbuf_release(&pt);
}

static void test_error_mapping(void)
{
	struct xks_client_error e;
	CHECK_STATUS(
		xks_answer_error(
			401, KSLICE_LIT("{\"errorName\":\"AuthenticationFailedException\"}"), &e),
		K_E_XKS_PROXY_INCORRECT_AUTH);
	CHECK(e.has_proxy_error && e.proxy_error == XKS_E_AUTHENTICATION_FAILED);
	CHECK_STATUS(
		xks_answer_error(404, KSLICE_LIT("{\"errorName\":\"KeyNotFoundException\"}"), &e),
		K_E_XKS_KEY_NOT_FOUND);
	CHECK_STATUS(xks_answer_error(
			     404, KSLICE_LIT("{\"errorName\":\"InvalidUriPathException\"}"), &e),
		     K_E_XKS_PROXY_INVALID_CONFIGURATION);
	CHECK_STATUS(
		xks_answer_error(400, KSLICE_LIT("{\"errorName\":\"InvalidStateException\"}"), &e),
		K_E_XKS_KEY_INVALID_CONFIGURATION);
	CHECK_STATUS(xks_answer_error(
			     400, KSLICE_LIT("{\"errorName\":\"InvalidCiphertextException\"}"), &e),
		     K_E_INVALID_STATE);
	CHECK_STATUS(
		xks_answer_error(429, KSLICE_LIT("{\"errorName\":\"ThrottlingException\"}"), &e),
		K_E_XKS_PROXY_URI_UNREACHABLE);
	CHECK_STATUS(xks_answer_error(500, KSLICE_LIT("{\"errorName\":\"InternalException\"}"), &e),
		     K_E_XKS_PROXY_INVALID_RESPONSE);
	/* "an HTTP error code without a JSON-formatted body": malformed. */
	CHECK_STATUS(xks_answer_error(502, KSLICE_LIT("Bad Gateway"), &e),
		     K_E_XKS_PROXY_INVALID_RESPONSE);
	CHECK(!e.has_proxy_error && e.http_status == 502);
	CHECK_STATUS(xks_answer_error(400, KSLICE_LIT("{\"errorName\":\"Nope\"}"), &e),
		     K_E_XKS_PROXY_INVALID_RESPONSE);
}

/* The client's request bodies parse back as the proxy reads them. */
static void test_bodies_round_trip(void)
{
	struct xks_request_metadata md = {.aws_principal_arn = "p",
					  .kms_key_arn = "k",
					  .kms_operation = "Encrypt",
					  .kms_request_id = "r"};
	struct kbuf b, msg;
	kbuf_init(&b, XKS_MAX_BODY);
	kbuf_init(&msg, KBUF_NOTE_MAX);
	CHECK_STATUS(xks_body_encrypt(&md, KSLICE_LIT("data"), KSLICE_LIT("ctx"), true, &b), K_OK);
	struct xks_request r;
	xks_request_init(&r);
	CHECK_STATUS(xks_request_parse(XKS_OP_ENCRYPT, kbuf_slice(&b), &r, &msg), K_OK);
	CHECK(kslice_eq_cstr(kbuf_slice(&r.plaintext), "data"));
	CHECK(kslice_eq_cstr(kbuf_slice(&r.aad), "ctx"));
	CHECK(r.want_cdiv);
	xks_request_release(&r);
	struct xks_ciphertext c;
	xks_ciphertext_init(&c);
	CHECK_STATUS(kbuf_append(&c.ciphertext, "abcd", 4), K_OK);
	c.iv_len = XKS_IV_LEN;
	kbuf_reset(&b);
	CHECK_STATUS(xks_body_decrypt(&md, &c, kslice_make("", 0), false, &b), K_OK);
	xks_request_init(&r);
	CHECK_STATUS(xks_request_parse(XKS_OP_DECRYPT, kbuf_slice(&b), &r, &msg), K_OK);
	CHECK_EQ_INT(r.iv.len, XKS_IV_LEN);
	CHECK(!r.has_aad && !r.has_ciphertext_metadata);
	xks_request_release(&r);
	xks_ciphertext_release(&c);
	kbuf_release(&b);
	kbuf_release(&msg);
}

int main(void)
{
	RUN(test_routes);
	RUN(test_spec_examples);
	RUN(test_request_refusals);
	RUN(test_errors);
	RUN(test_cdiv_appendix_c);
	RUN(test_gcm_aad);
	RUN(test_answers);
	RUN(test_error_mapping);
	RUN(test_bodies_round_trip);
	return tl_summary();
}
