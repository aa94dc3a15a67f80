/*
 * policy_share_test.c — key policies parsed once per text and shared
 * (authz_parse_key_policy, kms/authz.h): the same text gives the same
 * parsed policy; a policy a key holds stays usable after its slot is
 * taken by another text (run under valgrind and ASan in CI); invalid
 * text is never kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/hash.h"
#include "kms/authz.h"
#include "policy/policy.h"
#include "testlib.h"
#include "core/banned.h"

#define ARN "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

/* The slot count of kms/authz.c's table. */
#define SLOTS 1024

static void policy_text(unsigned sid, char *out, size_t n)
{
	snprintf(out, n,
		 "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"s%u\",\"Effect\":"
		 "\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::111122223333:root\"},"
		 "\"Action\":\"kms:*\",\"Resource\":\"*\"}]}",
		 sid);
}

static struct policy *parse(const char *text)
{
	json_t *doc = json_pack("{s:s, s:s}", "Arn", ARN, "Policy", text);
	struct policy *p = authz_parse_key_policy(doc);
	json_decref(doc);
	return p;
}

/* Whether p lets the account's root encrypt (reads every statement). */
static bool root_may_encrypt(const struct policy *p)
{
	struct policy_req r;
	memset(&r, 0, sizeof r);
	r.principal_arn = "arn:aws:iam::111122223333:root";
	r.principal_account = "111122223333";
	r.action = "kms:Encrypt";
	r.resource = ARN;
	struct policy_result res;
	policy_evaluate(p, &r, &res);
	return res.allow_direct && !res.explicit_deny;
}

static void test_same_text_same_policy(void)
{
	char a[512], b[512];
	policy_text(1, a, sizeof a);
	policy_text(2, b, sizeof b);
	struct policy *p1 = parse(a), *p2 = parse(a), *q = parse(b);
	CHECK(p1 != NULL && q != NULL);
	CHECK(p1 == p2);
	CHECK(p1 != q);
	policy_free(p1);
	CHECK(root_may_encrypt(p2)); /* the other owner's reference is intact */
	policy_free(p2);
	struct policy *again = parse(a); /* the table kept one reference */
	CHECK(again == p2);
	CHECK(root_may_encrypt(again));
	policy_free(again);
	policy_free(q);
}

/* Two texts of one slot: the first's holder keeps a working policy. */
static void test_replaced_slot_keeps_holders(void)
{
	char a[512], b[512];
	policy_text(1000, a, sizeof a);
	size_t slot = (size_t)(khash(a) % SLOTS);
	unsigned sid = 1001;
	for (;; sid++) {
		policy_text(sid, b, sizeof b);
		if ((size_t)(khash(b) % SLOTS) == slot)
			break;
	}
	struct policy *held = parse(a);
	struct policy *other = parse(b); /* takes the slot */
	CHECK(held != NULL && other != NULL && held != other);
	CHECK(root_may_encrypt(held));
	struct policy *fresh = parse(a); /* parsed again: the slot holds b now */
	CHECK(fresh != NULL && fresh != held);
	CHECK(root_may_encrypt(fresh));
	struct policy *a_again = parse(a);
	CHECK(a_again == fresh);	/* a's second parse took the slot back */
	CHECK(root_may_encrypt(other)); /* b's holder: b's policy left the slot, not its owner */
	policy_free(a_again);
	policy_free(held);
	policy_free(other);
	policy_free(fresh);
}

static void test_invalid_text_not_kept(void)
{
	CHECK(parse("{\"Version\":\"2012-10-17\"}") == NULL);
	CHECK(parse("{\"Version\":\"2012-10-17\"}") == NULL);
	CHECK(parse("not json") == NULL);
	json_t *doc = json_pack("{s:s}", "Arn", ARN);
	CHECK(authz_parse_key_policy(doc) == NULL);
	json_decref(doc);
}

int main(void)
{
	RUN(test_same_text_same_policy);
	RUN(test_replaced_slot_keeps_holders);
	RUN(test_invalid_text_not_kept);
	return tl_summary();
}
