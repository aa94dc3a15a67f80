/*
 * pipeline_test.c — the api/ pipeline with a fake service: the row check
 * refuses incomplete rows, authorization runs before the handler and a
 * denied call never reaches it, a handler that skipped its check fails
 * closed, the row's quota is taken before the body is parsed, and the
 * service's error map names every error the pipeline answers. Also KMS's
 * and Secrets Manager's real tables: they register, and their rows say
 * what the audit trail, GetKeyLastUsage and the secret state rule need;
 * and what the pipeline hands the audit trail of a call, as data.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/pipeline.h"
#include "audit/audit.h"
#include "auth/sigv4.h"
#include "config/config.h"
#include "core/secret.h"
#include "kms/kms.h"
#include "quota/quota.h"
#include "secrets/secrets.h"
#include "testlib.h"
#include "core/banned.h"

/* What happened, in order: 'a' authorize, 'h' handler. */
static char trace[16];
static size_t n_trace;
static k_status authorize_answer;
static bool authorize_sets;

static void note(char ch)
{
	if (n_trace + 1 < sizeof trace)
		trace[n_trace++] = ch;
	trace[n_trace] = 0;
}

static K_MUST_CHECK k_status fake_authorize(struct api_ctx *c, json_t *in)
{
	(void)in;
	note('a');
	if (k_ok(authorize_answer) && authorize_sets)
		c->authorized = true;
	return authorize_answer;
}

static K_MUST_CHECK k_status fake_handler(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)c;
	(void)in;
	note('h');
	json_object_set_new(out, "Done", json_true());
	return K_OK;
}

/* A handler that finds nothing (the generic code, which the service names its own way). */
static K_MUST_CHECK k_status missing_handler(struct api_ctx *c, json_t *in, json_t *out)
{
	(void)in;
	(void)out;
	note('h');
	c->authorized = true;
	return api_fail(c, K_E_NOT_FOUND, "nothing here");
}

#define ROW(nm, res, memb, st, rate)                                                               \
	{                                                                                          \
		.name = nm, .handler = fake_handler, .action = "fake:" nm, .resource = res,        \
		.member = memb, .state = st, .quota = {NULL, rate}, .mutates = false,              \
		.key_use = false, .max_body = 0                                                    \
	}

static const struct api_operation fake_ops[] = {
	ROW("OnKey", API_RES_KEY, "KeyId", API_STATE_CRYPTO, 100),
	ROW("Custom", API_RES_CUSTOM, NULL, API_STATE_NA, 100),
	ROW("Limited", API_RES_NONE, NULL, API_STATE_NA, 1),
	{.name = "Missing",
	 .handler = missing_handler,
	 .action = "fake:Missing",
	 .resource = API_RES_NONE,
	 .state = API_STATE_NA,
	 .quota = {NULL, 100}},
};

/* The fake service's own names: Secrets Manager's, for two generic codes. */
static const struct api_error_map fake_errors[] = {
	{K_E_NOT_FOUND, K_E_SM_NOT_FOUND},
	{K_E_INTERNAL, K_E_SM_INTERNAL},
};

static const struct api_service fake_service = {
	.target_prefix = "FakeService.",
	.signing_name = "kms",
	.event_source = "fake.example",
	.ops = fake_ops,
	.n_ops = sizeof fake_ops / sizeof fake_ops[0],
	.authorize = fake_authorize,
	.resources =
		API_RES_BIT(API_RES_NONE) | API_RES_BIT(API_RES_KEY) | API_RES_BIT(API_RES_CUSTOM),
	.errors = fake_errors,
	.n_errors = sizeof fake_errors / sizeof fake_errors[0],
};

static K_MUST_CHECK k_status check_row(const struct api_operation *op, struct kbuf *msg)
{
	kbuf_reset(msg);
	return api_check_operation(&fake_service, op, msg);
}

/* The check refuses a row that leaves out what the pipeline needs, naming it. */
static void test_row_check(void)
{
	struct kbuf msg;
	kbuf_init(&msg, 512);
	struct api_operation op = fake_ops[0];
	CHECK_STATUS(check_row(&op, &msg), K_OK);

	op.resource = API_RES_UNSET;
	CHECK_STATUS(check_row(&op, &msg), K_E_VALIDATION);
	CHECK_STR(kbuf_cstr(&msg), "operation kms.OnKey has no resource kind");

	op = fake_ops[0];
	op.state = API_STATE_UNSET;
	CHECK_STATUS(check_row(&op, &msg), K_E_VALIDATION);
	CHECK_STR(kbuf_cstr(&msg), "operation kms.OnKey has no key-state rule");

	op = fake_ops[0];
	op.state = API_STATE_NA; /* a key without a rule */
	CHECK_STATUS(check_row(&op, &msg), K_E_VALIDATION);

	op = fake_ops[0];
	op.member = NULL;
	CHECK_STATUS(check_row(&op, &msg), K_E_VALIDATION);
	CHECK_STR(kbuf_cstr(&msg), "operation kms.OnKey has no member naming its resource");

	op = fake_ops[0];
	op.quota.rate = 0;
	CHECK_STATUS(check_row(&op, &msg), K_E_VALIDATION);
	CHECK_STR(kbuf_cstr(&msg), "operation kms.OnKey has no quota");

	op = fake_ops[0];
	op.action = NULL;
	CHECK_STATUS(check_row(&op, &msg), K_E_VALIDATION);

	op = fake_ops[0];
	op.resource = API_RES_SECRET; /* a kind this service does not authorize */
	CHECK_STATUS(check_row(&op, &msg), K_E_VALIDATION);

	/* A secret row needs a secret state rule (any, or manage: not scheduled for deletion). */
	struct api_service with_secrets = fake_service;
	with_secrets.resources |= API_RES_BIT(API_RES_SECRET);
	op = fake_ops[0];
	op.resource = API_RES_SECRET;
	op.member = "SecretId";
	op.state = API_STATE_MANAGE;
	kbuf_reset(&msg);
	CHECK_STATUS(api_check_operation(&with_secrets, &op, &msg), K_OK);
	op.state = API_STATE_ANY;
	CHECK_STATUS(api_check_operation(&with_secrets, &op, &msg), K_OK);
	op.state = API_STATE_NA;
	CHECK_STATUS(api_check_operation(&with_secrets, &op, &msg), K_E_VALIDATION);
	CHECK_STR(kbuf_cstr(&msg), "operation kms.OnKey has a secret resource without a secret "
				   "state rule (any or manage)");
	op.state = API_STATE_CRYPTO; /* a key rule on a secret */
	kbuf_reset(&msg);
	CHECK_STATUS(api_check_operation(&with_secrets, &op, &msg), K_E_VALIDATION);

	/* A row as an older table would write it: name, handler, action only. */
	struct api_operation thin = {
		.name = "Thin", .handler = fake_handler, .action = "fake:Thin"};
	CHECK_STATUS(check_row(&thin, &msg), K_E_VALIDATION);

	/* A table with one incomplete row is refused whole. */
	struct api_operation bad[2] = {fake_ops[0], thin};
	struct api_service svc = fake_service;
	svc.target_prefix = "BadService.";
	svc.ops = bad;
	svc.n_ops = 2;
	kbuf_reset(&msg);
	CHECK_STATUS(api_register_service(&svc, &msg), K_E_VALIDATION);
	CHECK(api_find_operation("BadService.OnKey", NULL) == NULL);
	kbuf_release(&msg);
}

static void ctx_init(struct api_ctx *c, struct api_request *r, const char *op)
{
	memset(c, 0, sizeof *c);
	c->req = r;
	kbuf_init(&c->err_msg, 1024);
	char target[64];
	snprintf(target, sizeof target, "FakeService.%s", op);
	c->op = api_find_operation(target, &c->service);
	CHECK(c->op != NULL);
}

static K_MUST_CHECK k_status call(const char *op, k_status answer, bool sets)
{
	struct api_request r;
	api_request_init(&r);
	struct api_ctx c;
	ctx_init(&c, &r, op);
	authorize_answer = answer;
	authorize_sets = sets;
	n_trace = 0;
	trace[0] = 0;
	json_t *in = json_object(), *out = json_object();
	k_status rc = api_call(&c, in, out);
	json_decref(in);
	json_decref(out);
	kbuf_release(&c.err_msg);
	api_request_release(&r);
	return rc;
}

static void test_authorize_before_handler(void)
{
	CHECK_STATUS(call("OnKey", K_OK, true), K_OK);
	CHECK_STR(trace, "ah");
	/* Denied: the handler never runs. */
	CHECK_STATUS(call("OnKey", K_E_ACCESS_DENIED, false), K_E_ACCESS_DENIED);
	CHECK_STR(trace, "a");
	/* An authorize step that said OK without authorizing a key row: fail closed. */
	CHECK_STATUS(call("OnKey", K_OK, false), K_E_INTERNAL);
	CHECK_STR(trace, "a");
	/* A custom row's handler that never authorized: its success is refused. */
	CHECK_STATUS(call("Custom", K_OK, false), K_E_INTERNAL);
	CHECK_STR(trace, "ah");
}

/* A signed request for api_handle, as the dev identity ("test"/"test"). */
struct signed_req {
	struct api_request r;
	char date[17], authz[512];
	char target[64];
};

static void sign(struct signed_req *s, const char *op, const char *body)
{
	api_request_init(&s->r);
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(s->date, sizeof s->date, "%Y%m%dT%H%M%SZ", &tm);
	snprintf(s->target, sizeof s->target, "FakeService.%s", op);
	struct api_request *r = &s->r;
	r->method = kslice_cstr("POST");
	r->path = kslice_cstr("/");
	r->query = kslice_cstr("");
	r->body = kslice_cstr(body);
	r->headers[0] = (struct http_header){kslice_cstr("Host"), kslice_cstr("localhost")};
	r->headers[1] = (struct http_header){kslice_cstr("X-Amz-Date"), kslice_cstr(s->date)};
	r->headers[2] = (struct http_header){kslice_cstr("X-Amz-Target"), kslice_cstr(s->target)};
	r->headers[3] = (struct http_header){kslice_cstr("Content-Type"),
					     kslice_cstr("application/x-amz-json-1.1")};
	r->n_headers = 4;
	struct sigv4_request sr = {.method = r->method,
				   .path = r->path,
				   .query = r->query,
				   .headers = r->headers,
				   .n_headers = r->n_headers,
				   .payload = r->body};
	const char *signed_headers = "content-type;host;x-amz-date;x-amz-target";
	struct kbuf creq, sts;
	kbuf_init(&creq, 1 << 16);
	kbuf_init(&sts, 1024);
	struct ksecret *key = ksecret_from((const uint8_t *)"test", 4);
	char day[9];
	memcpy(day, s->date, 8);
	day[8] = 0;
	uint8_t sig[32];
	CHECK(key != NULL);
	CHECK_STATUS(sigv4_canonical_request(&sr, kslice_cstr(signed_headers), &creq), K_OK);
	CHECK_STATUS(
		sigv4_string_to_sign(s->date, day, "us-east-1", "kms", kbuf_slice(&creq), &sts),
		K_OK);
	CHECK_STATUS(sigv4_sign(key, day, "us-east-1", "kms", kbuf_slice(&sts), sig), K_OK);
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", sig[i]);
	snprintf(s->authz, sizeof s->authz,
		 "AWS4-HMAC-SHA256 Credential=test/%s/us-east-1/kms/aws4_request, "
		 "SignedHeaders=%s, Signature=%s",
		 day, signed_headers, hex);
	r->headers[4] = (struct http_header){kslice_cstr("Authorization"), kslice_cstr(s->authz)};
	r->n_headers = 5;
	ksecret_free(key);
	kbuf_release(&creq);
	kbuf_release(&sts);
}

/* The whole pipeline: the row's quota (1/s, a burst of one) is taken before the handler. */
static void test_quota_taken(void)
{
	quota_enable(true);
	struct signed_req s;
	sign(&s, "Limited", "{}");
	authorize_answer = K_OK;
	authorize_sets = true;
	n_trace = 0;
	api_handle(&s.r);
	CHECK_EQ_INT(s.r.status, 200);
	CHECK_STR(trace, "ah");
	api_request_release(&s.r);

	sign(&s, "Limited", "{}");
	n_trace = 0;
	trace[0] = 0;
	api_handle(&s.r);
	CHECK_EQ_INT(s.r.status, 400);
	CHECK(strstr(kbuf_cstr(&s.r.response), "ThrottlingException") != NULL);
	CHECK_STR(trace, ""); /* neither authorize nor handler ran */
	api_request_release(&s.r);

	/* A denied call through the whole pipeline never reaches the handler. */
	sign(&s, "OnKey", "{\"KeyId\":\"k\"}");
	authorize_answer = K_E_ACCESS_DENIED;
	n_trace = 0;
	api_handle(&s.r);
	CHECK_EQ_INT(s.r.status, 400);
	CHECK(strstr(kbuf_cstr(&s.r.response), "AccessDeniedException") != NULL);
	CHECK_STR(trace, "a");
	api_request_release(&s.r);
	quota_enable(false);
}

/* The error map: mapped codes take the service's name, the others pass, no map changes nothing. */
static void test_error_map(void)
{
	CHECK_STATUS(api_service_error(&fake_service, K_E_NOT_FOUND), K_E_SM_NOT_FOUND);
	CHECK_STATUS(api_service_error(&fake_service, K_E_INTERNAL), K_E_SM_INTERNAL);
	CHECK_STATUS(api_service_error(&fake_service, K_E_ACCESS_DENIED), K_E_ACCESS_DENIED);
	CHECK_STATUS(api_service_error(&fake_service, K_OK), K_OK);
	CHECK_STATUS(api_service_error(NULL, K_E_INTERNAL), K_E_INTERNAL);

	/* Through the whole pipeline: a handler's generic error ... */
	struct signed_req s;
	sign(&s, "Missing", "{}");
	authorize_answer = K_OK;
	authorize_sets = true;
	n_trace = 0;
	api_handle(&s.r);
	CHECK_EQ_INT(s.r.status, 400);
	CHECK(strstr(kbuf_cstr(&s.r.response), "\"ResourceNotFoundException\"") != NULL);
	CHECK(strstr(kbuf_cstr(&s.r.response), "nothing here") != NULL);
	CHECK_STR(trace, "ah");
	api_request_release(&s.r);

	/* ... and the pipeline's own failure (an authorize step that failed inside). */
	sign(&s, "OnKey", "{\"KeyId\":\"k\"}");
	authorize_answer = K_E_INTERNAL;
	n_trace = 0;
	api_handle(&s.r);
	CHECK_EQ_INT(s.r.status, 500);
	CHECK(strstr(kbuf_cstr(&s.r.response), "\"InternalServiceError\"") != NULL);
	CHECK(strstr(kbuf_cstr(&s.r.response), "KMSInternalException") == NULL);
	api_request_release(&s.r);
}

/* Secrets Manager's table passes the check; its secret rows carry the secret state rule. */
static void test_secrets_rows(void)
{
	struct kbuf msg;
	kbuf_init(&msg, 512);
	CHECK_STATUS(api_register_service(secrets_service_table(), &msg), K_OK);
	kbuf_release(&msg);
	const struct api_service *svc = NULL;
	const struct api_operation *get = api_find_operation("secretsmanager.GetSecretValue", &svc);
	const struct api_operation *desc =
		api_find_operation("secretsmanager.DescribeSecret", NULL);
	const struct api_operation *create =
		api_find_operation("secretsmanager.CreateSecret", NULL);
	const struct api_operation *del = api_find_operation("secretsmanager.DeleteSecret", NULL);
	const struct api_operation *list = api_find_operation("secretsmanager.ListSecrets", NULL);
	CHECK(get != NULL && desc != NULL && create != NULL && del != NULL && list != NULL);
	CHECK(get->resource == API_RES_SECRET && get->state == API_STATE_MANAGE);
	CHECK(strcmp(get->member, "SecretId") == 0);
	CHECK(desc->resource == API_RES_SECRET && desc->state == API_STATE_ANY);
	CHECK(create->resource == API_RES_CUSTOM && del->resource == API_RES_CUSTOM);
	CHECK(list->resource == API_RES_NONE && list->state == API_STATE_NA);
	/* Its error map: no KMS-only name for the generic codes. */
	CHECK(svc != NULL && svc->release_resource != NULL);
	CHECK_STR(k_status_name(api_service_error(svc, K_E_INTERNAL)), "InternalServiceError");
	CHECK_STR(k_status_name(api_service_error(svc, K_E_NOT_FOUND)),
		  "ResourceNotFoundException");
	CHECK_STR(k_status_name(api_service_error(svc, K_E_CONFLICT)), "InternalServiceError");
	CHECK_STR(k_status_name(api_service_error(svc, K_E_VALIDATION)), "ValidationException");
	static const k_status kms_codes[] = {K_E_INTERNAL,
					     K_E_NOT_FOUND,
					     K_E_DISABLED,
					     K_E_INVALID_STATE,
					     K_E_INVALID_CIPHERTEXT,
					     K_E_INCORRECT_KEY,
					     K_E_INVALID_KEY_USAGE,
					     K_E_INVALID_ARN,
					     K_E_INVALID_MARKER,
					     K_E_INVALID_ALIAS_NAME,
					     K_E_INVALID_GRANT_TOKEN,
					     K_E_INVALID_GRANT_ID,
					     K_E_ALREADY_EXISTS,
					     K_E_TAG,
					     K_E_UNSUPPORTED,
					     K_E_DRY_RUN,
					     K_E_KMS_INVALID_SIGNATURE,
					     K_E_KMS_INVALID_MAC,
					     K_E_EXPIRED_IMPORT_TOKEN,
					     K_E_INVALID_IMPORT_TOKEN,
					     K_E_INCORRECT_KEY_MATERIAL,
					     K_E_CUSTOM_KEY_STORE_NOT_FOUND,
					     K_E_DEPENDENCY_TIMEOUT,
					     K_E_STORE_UNAVAILABLE,
					     K_E_CONFLICT,
					     K_E_NOT_AUTHORIZED};
	for (size_t i = 0; i < sizeof kms_codes / sizeof kms_codes[0]; i++) {
		const char *name = k_status_name(api_service_error(svc, kms_codes[i]));
		CHECK(strstr(name, "KMS") == NULL);
		CHECK(strcmp(name, "NotFoundException") != 0);
		CHECK(strcmp(name, "DisabledException") != 0);
	}
}

/* KMS's own table passes the check; its rows say what the audit trail reads. */
static void test_kms_rows(void)
{
	struct kbuf msg;
	kbuf_init(&msg, 512);
	CHECK_STATUS(api_register_service(kms_service_table(), &msg), K_OK);
	kbuf_release(&msg);
	const struct api_operation *enc = api_find_operation("TrentService.Encrypt", NULL);
	const struct api_operation *desc = api_find_operation("TrentService.DescribeKey", NULL);
	const struct api_operation *del =
		api_find_operation("TrentService.ScheduleKeyDeletion", NULL);
	const struct api_operation *list = api_find_operation("TrentService.ListKeys", NULL);
	CHECK(enc != NULL && desc != NULL && del != NULL && list != NULL);
	CHECK(!enc->mutates && enc->key_use && enc->state == API_STATE_CRYPTO);
	CHECK(!desc->mutates && !desc->key_use && desc->state == API_STATE_ANY);
	CHECK(del->mutates && del->state == API_STATE_MANAGE);
	CHECK(list->resource == API_RES_NONE);
	/* The rows that name their key otherwise: a ciphertext, ReEncrypt's source, a grant. */
	const struct api_service *svc = NULL;
	const struct api_operation *dec = api_find_operation("TrentService.Decrypt", &svc);
	const struct api_operation *re = api_find_operation("TrentService.ReEncrypt", NULL);
	const struct api_operation *retire = api_find_operation("TrentService.RetireGrant", NULL);
	CHECK(dec != NULL && re != NULL && retire != NULL && svc != NULL);
	CHECK(dec->resource == API_RES_CIPHERTEXT && dec->state == API_STATE_CRYPTO);
	CHECK(strcmp(dec->member, "CiphertextBlob") == 0);
	CHECK(re->resource == API_RES_REENCRYPT && re->state == API_STATE_CRYPTO);
	CHECK(retire->resource == API_RES_GRANT && retire->state == API_STATE_ANY);
	CHECK_STR(api_resource_name(API_RES_CIPHERTEXT), "ciphertext");
	CHECK_STR(api_resource_name(API_RES_GRANT), "grant");
	/* No KMS row is left to its handler, and the table check keeps it so. */
	for (size_t i = 0; i < svc->n_ops; i++)
		CHECK(svc->ops[i].resource != API_RES_CUSTOM);
	struct api_operation row = *dec;
	row.resource = API_RES_CUSTOM;
	row.member = NULL;
	kbuf_init(&msg, 512);
	CHECK_STATUS(api_check_operation(svc, &row, &msg), K_E_VALIDATION);
	row = *dec;
	row.member = NULL; /* a ciphertext row names its blob */
	kbuf_reset(&msg);
	CHECK_STATUS(api_check_operation(svc, &row, &msg), K_E_VALIDATION);
	row = *retire;
	row.state = API_STATE_NA; /* a grant's key has a key-state rule */
	kbuf_reset(&msg);
	CHECK_STATUS(api_check_operation(svc, &row, &msg), K_E_VALIDATION);
	kbuf_release(&msg);
	CHECK(api_find_by_event_source("kms.amazonaws.com", "Encrypt") == enc);
	CHECK(api_quota_name_known("symmetric") && api_quota_name_known("CreateKey"));
	CHECK(!api_quota_name_known("nonsense"));

	/* What the audit trail's last-use index is given: the rows with key_use, by event source. */
	size_t n = api_key_use_ops(NULL, 0);
	CHECK(n > 0 && n < 200);
	struct audit_op_name ops[200];
	CHECK_EQ_INT((long long)api_key_use_ops(ops, 200), (long long)n);
	bool saw_encrypt = false, saw_describe = false;
	for (size_t i = 0; i < n && i < 200; i++) {
		CHECK(ops[i].event_source != NULL && ops[i].event_name != NULL);
		const struct api_operation *op =
			api_find_by_event_source(ops[i].event_source, ops[i].event_name);
		CHECK(op != NULL && op->key_use);
		saw_encrypt |= op == enc;
		saw_describe |= op == desc;
	}
	CHECK(saw_encrypt && !saw_describe);
	CHECK_EQ_INT((long long)api_key_use_ops(ops, 1), (long long)n); /* counts past max */
}

/* What the audit trail is handed of a call: the context's caller, row and request, as data. */
static void test_audit_info(void)
{
	static const struct api_operation op = {.name = "CreateAlias", .mutates = true};
	static const struct api_service svc = {.target_prefix = "TrentService.",
					       .event_source = "kms.amazonaws.com"};
	struct api_request r;
	api_request_init(&r);
	r.headers[0].name = kslice_cstr("User-Agent");
	r.headers[0].value = kslice_cstr("boto3/1.26");
	r.n_headers = 1;
	r.secure = true;
	snprintf(r.source_ip, sizeof r.source_ip, "192.0.2.7");
	snprintf(r.request_id, sizeof r.request_id, "11111111-2222-4333-8444-555555555555");
	struct api_ctx c;
	memset(&c, 0, sizeof c);
	c.req = &r;
	c.now = 1738324800;
	struct audit_call_info info;
	/* Before the service and the caller are known: no names, not read-only, nobody. */
	api_audit_info(&c, &info);
	CHECK(info.event_source == NULL && info.event_name == NULL);
	CHECK(info.mutates && !info.key_use);
	CHECK_STR(info.who.account, "");
	CHECK_STR(info.region, "");
	c.service = &svc;
	c.op = &op;
	snprintf(c.region, sizeof c.region, "eu-west-1");
	snprintf(c.principal.account, sizeof c.principal.account, "111122223333");
	snprintf(c.principal.arn, sizeof c.principal.arn, "arn:aws:iam::111122223333:user/alice");
	snprintf(c.principal.type, sizeof c.principal.type, "IAMUser");
	snprintf(c.principal.principal_id, sizeof c.principal.principal_id, "AIDAEXAMPLE");
	snprintf(c.principal.access_key, sizeof c.principal.access_key, "AKIAEXAMPLE");
	api_audit_info(&c, &info);
	CHECK_STR(info.event_source, "kms.amazonaws.com");
	CHECK_STR(info.event_name, "CreateAlias");
	CHECK(info.mutates && !info.key_use && info.secure && info.now == 1738324800);
	CHECK_STR(info.who.account, "111122223333");
	CHECK_STR(info.who.arn, "arn:aws:iam::111122223333:user/alice");
	CHECK_STR(info.who.type, "IAMUser");
	CHECK_STR(info.who.principal_id, "AIDAEXAMPLE");
	CHECK_STR(info.who.access_key, "AKIAEXAMPLE");
	CHECK_STR(info.region, "eu-west-1");
	CHECK_STR(info.request_id, r.request_id);
	CHECK_STR(info.source_ip, "192.0.2.7");
	CHECK(kslice_eq_cstr(info.user_agent, "boto3/1.26"));
	api_request_release(&r);
}

int main(void)
{
	CHECK_STATUS(config_install_dev_identity(), K_OK);
	struct kbuf msg;
	kbuf_init(&msg, 512);
	CHECK_STATUS(api_register_service(&fake_service, &msg), K_OK);
	kbuf_release(&msg);
	RUN(test_row_check);
	RUN(test_authorize_before_handler);
	RUN(test_quota_taken);
	RUN(test_error_map);
	RUN(test_kms_rows);
	RUN(test_audit_info);
	RUN(test_secrets_rows);
	api_reset_services();
	return tl_summary();
}
