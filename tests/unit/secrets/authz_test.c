/*
 * authz_test.c — Secrets Manager authorization without a server: the
 * resource-policy validator's public-access classification and parse
 * errors, and the same-account / cross-account rules of
 * sm_authorize_secret for principals without identity policies (the
 * account root, and a user that only a resource policy can allow).
 */
#include <stdio.h>
#include <string.h>

#include "req/req.h"
#include "secrets/internal.h"
#include "testlib.h"
#include "core/banned.h"

static struct api_operation op_get = {.name = "GetSecretValue",
				      .action = "secretsmanager:GetSecretValue"};

static void ctx_init(struct api_ctx *c, const char *account, const char *arn, const char *type)
{
	memset(c, 0, sizeof *c);
	c->op = &op_get;
	snprintf(c->principal.account, sizeof c->principal.account, "%s", account);
	snprintf(c->principal.arn, sizeof c->principal.arn, "%s", arn);
	snprintf(c->principal.type, sizeof c->principal.type, "%s", type);
	snprintf(c->region, sizeof c->region, "us-east-1");
	snprintf(c->ns, sizeof c->ns, "%s:us-east-1", account);
	kbuf_init(&c->err_msg, 2048);
}

/* Validates `policy`; returns the status, *public and the message in msg. */
static K_MUST_CHECK k_status validate(const char *policy, bool *public, char *msg, size_t n)
{
	struct api_ctx c;
	ctx_init(&c, "111111111111", "arn:aws:iam::111111111111:root", "Root");
	k_status rc = sm_check_resource_policy(&c, policy, public);
	snprintf(msg, n, "%s", c.err_msg.len ? kbuf_cstr(&c.err_msg) : "");
	kbuf_release(&c.err_msg);
	return rc;
}

#define STMT(principal, extra)                                                                     \
	"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","                        \
	"\"Principal\":" principal                                                                 \
	",\"Action\":\"secretsmanager:GetSecretValue\",\"Resource\":\"*\"" extra "}]}"

static void test_public_classification(void)
{
	char msg[1024];
	bool pub = true;
	CHECK_STATUS(validate(STMT("{\"AWS\":\"arn:aws:iam::222222222222:root\"}", ""), &pub, msg,
			      sizeof msg),
		     K_OK);
	CHECK(!pub);
	CHECK_STATUS(validate(STMT("\"*\"", ""), &pub, msg, sizeof msg), K_OK);
	CHECK(pub);
	CHECK_STATUS(validate(STMT("{\"AWS\":\"*\"}", ""), &pub, msg, sizeof msg), K_OK);
	CHECK(pub);
	CHECK_STATUS(
		validate(STMT("{\"AWS\":[\"222222222222\",\"*\"]}", ""), &pub, msg, sizeof msg),
		K_OK);
	CHECK(pub);
	/* Narrowed to one account: not public. */
	CHECK_STATUS(validate(STMT("{\"AWS\":\"*\"}", ",\"Condition\":{\"StringEquals\":{\"aws:"
						      "PrincipalAccount\":\"222222222222\"}}"),
			      &pub, msg, sizeof msg),
		     K_OK);
	CHECK(!pub);
	/* A condition that does not narrow the caller, or narrows it to "*": still public. */
	CHECK_STATUS(validate(STMT("{\"AWS\":\"*\"}",
				   ",\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"true\"}}"),
			      &pub, msg, sizeof msg),
		     K_OK);
	CHECK(pub);
	CHECK_STATUS(
		validate(STMT("{\"AWS\":\"*\"}",
			      ",\"Condition\":{\"StringLike\":{\"aws:PrincipalAccount\":\"*\"}}"),
			 &pub, msg, sizeof msg),
		K_OK);
	CHECK(pub);
	CHECK_STATUS(validate(STMT("{\"AWS\":\"*\"}", ",\"Condition\":{\"StringNotEquals\":{\"aws:"
						      "PrincipalAccount\":\"3\"}}"),
			      &pub, msg, sizeof msg),
		     K_OK);
	CHECK(pub);
	/* A Deny for everyone is not a grant. */
	CHECK_STATUS(validate("{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Deny\","
			      "\"Principal\":\"*\","
			      "\"Action\":\"secretsmanager:*\",\"Resource\":\"*\"}}",
			      &pub, msg, sizeof msg),
		     K_OK);
	CHECK(!pub);
}

static void test_parse_errors(void)
{
	char msg[1024];
	bool pub = false;
	CHECK_STATUS(validate("{not json", &pub, msg, sizeof msg), K_E_SM_MALFORMED_POLICY);
	CHECK(strncmp(msg, "This resource policy contains a syntax error: ", 46) == 0);
	CHECK_STATUS(
		validate(STMT("{\"AWS\":\"arn:aws:iam::12:user/x\"}", ""), &pub, msg, sizeof msg),
		K_E_SM_MALFORMED_POLICY);
	CHECK(strstr(msg, "invalid principals") != NULL);
	CHECK_STATUS(validate("{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
			      "\"Action\":\"secretsmanager:GetSecretValue\",\"Resource\":\"*\"}]}",
			      &pub, msg, sizeof msg),
		     K_E_SM_MALFORMED_POLICY);
	CHECK(strstr(msg, "principal") != NULL);
	CHECK_STATUS(
		validate("{\"Version\":\"2012-10-17\",\"Statement\":[]}", &pub, msg, sizeof msg),
		K_E_SM_MALFORMED_POLICY);
	CHECK_STATUS(validate(STMT("\"*\"", ",\"Condition\":{\"StringEqualz\":{\"a:b\":\"c\"}}"),
			      &pub, msg, sizeof msg),
		     K_E_SM_MALFORMED_POLICY);
	CHECK(strstr(msg, "StringEqualz") != NULL);
}

#define SECRET_ARN "arn:aws:secretsmanager:us-east-1:111111111111:secret:db-AbCdEf"

/* Authorizes GetSecretValue by (account, arn, type) on a secret of account 111111111111. */
static K_MUST_CHECK k_status decide(const char *account, const char *arn, const char *type,
				    const char *policy, char *msg, size_t n)
{
	struct api_ctx c;
	ctx_init(&c, account, arn, type);
	struct sm_secret s;
	memset(&s, 0, sizeof s);
	snprintf(s.ns, sizeof s.ns, "111111111111:us-east-1");
	s.doc = json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "Name", "db", "ARN", SECRET_ARN, "Tags",
			  "Key", "env", "Value", "prod");
	if (policy != NULL)
		json_object_set_new(s.doc, "ResourcePolicy", json_string(policy));
	k_status rc = sm_authorize_secret(&c, &s);
	snprintf(msg, n, "%s", c.err_msg.len ? kbuf_cstr(&c.err_msg) : "");
	sm_secret_release(&s);
	kbuf_release(&c.err_msg);
	return rc;
}

static void test_rules(void)
{
	char msg[1024];
	const char *bob = "arn:aws:iam::111111111111:user/bob";
	const char *xuser = "arn:aws:iam::222222222222:user/x";
	const char *root_b = "arn:aws:iam::222222222222:root";
	/* The root of the secret's account: allowed without any policy. */
	CHECK_STATUS(decide("111111111111", "arn:aws:iam::111111111111:root", "Root", NULL, msg,
			    sizeof msg),
		     K_OK);
	/* A user without identity policies: refused, with AWS's message. */
	CHECK_STATUS(decide("111111111111", bob, "IAMUser", NULL, msg, sizeof msg),
		     K_E_ACCESS_DENIED);
	CHECK_STR(msg, "User: arn:aws:iam::111111111111:user/bob is not authorized to perform: "
		       "secretsmanager:GetSecretValue on resource: " SECRET_ARN
		       " because no identity-based policy allows the secretsmanager:GetSecretValue "
		       "action");
	/* Same account: the resource policy alone allows. */
	const char *allow_bob = STMT("{\"AWS\":\"arn:aws:iam::111111111111:user/bob\"}", "");
	CHECK_STATUS(decide("111111111111", bob, "IAMUser", allow_bob, msg, sizeof msg), K_OK);
	/* ... within its conditions (the secret's tag). */
	CHECK_STATUS(decide("111111111111", bob, "IAMUser",
			    STMT("{\"AWS\":\"arn:aws:iam::111111111111:user/bob\"}",
				 ",\"Condition\":{\"StringEquals\":{\"secretsmanager:ResourceTag/"
				 "env\":\"dev\"}}"),
			    msg, sizeof msg),
		     K_E_ACCESS_DENIED);
	CHECK_STATUS(
		decide("111111111111", bob, "IAMUser",
		       STMT("{\"AWS\":\"arn:aws:iam::111111111111:user/bob\"}",
			    ",\"Condition\":{\"StringEquals\":{\"aws:ResourceTag/env\":\"prod\"}}"),
		       msg, sizeof msg),
		K_OK);
	/* An explicit Deny in the resource policy refuses even the root. */
	CHECK_STATUS(decide("111111111111", "arn:aws:iam::111111111111:root", "Root",
			    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\","
			    "\"Principal\":\"*\","
			    "\"Action\":\"secretsmanager:GetSecretValue\",\"Resource\":\"*\"}]}",
			    msg, sizeof msg),
		     K_E_ACCESS_DENIED);
	CHECK(strstr(msg, "with an explicit deny in a resource-based policy") != NULL);
	/* Another account: without a resource policy, refused even for its root. */
	CHECK_STATUS(decide("222222222222", root_b, "Root", NULL, msg, sizeof msg),
		     K_E_ACCESS_DENIED);
	CHECK(strstr(msg, "because no resource-based policy allows the "
			  "secretsmanager:GetSecretValue action") != NULL);
	/* The resource policy names B: B's root (full identity permissions) is allowed. */
	const char *allow_b = STMT("{\"AWS\":\"222222222222\"}", "");
	CHECK_STATUS(decide("222222222222", root_b, "Root", allow_b, msg, sizeof msg), K_OK);
	/* B's user still needs an identity policy. */
	CHECK_STATUS(decide("222222222222", xuser, "IAMUser", allow_b, msg, sizeof msg),
		     K_E_ACCESS_DENIED);
	CHECK(strstr(msg, "because no identity-based policy allows") != NULL);
	/* A policy naming someone else does not help. */
	CHECK_STATUS(decide("222222222222", xuser, "IAMUser", allow_bob, msg, sizeof msg),
		     K_E_ACCESS_DENIED);
	CHECK(strstr(msg, "because no resource-based policy allows") != NULL);
}

int main(void)
{
	RUN(test_public_classification);
	RUN(test_parse_errors);
	RUN(test_rules);
	return tl_summary();
}
