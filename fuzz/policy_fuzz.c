/*
 * policy_fuzz.c — IAM policy documents (key, identity and trust policies).
 *
 * Input: one byte choosing the policy kind, then the document's text.
 * policy_parse() must accept it or say why; a parsed policy is evaluated
 * for a few requests (root, a user, an assumed role, a service principal,
 * with condition values of every kind), which must not fault whatever the
 * statements say.
 */
#include <stdlib.h>
#include <string.h>

#include "support.h"
#include "core/json.h"
#include "policy/policy.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void evaluate_all(const struct policy *p)
{
	static const char *const ips[] = {"10.0.0.1", "2001:db8::1"};
	json_t *ctx = json_pack("{s:s,s:s}", "app", "demo", "Department", "");
	json_t *tags = json_pack("[{s:s,s:s}]", "TagKey", "env", "TagValue", "prod");
	json_t *ops = json_pack("[s,s]", "Encrypt", "Decrypt");
	static const struct {
		const char *arn, *account, *role, *service, *action, *resource;
	} who[] = {
		{"arn:aws:iam::111122223333:root", "111122223333", NULL, NULL, "kms:Encrypt",
		 "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
		{"arn:aws:iam::111122223333:user/alice", "111122223333", NULL, NULL,
		 "kms:PutKeyPolicy", "*"},
		{"arn:aws:sts::444455556666:assumed-role/R/s", "444455556666",
		 "arn:aws:iam::444455556666:role/R", NULL, "kms:CreateGrant",
		 "arn:aws:kms:eu-west-1:111122223333:key/k"},
		{"arn:aws:iam::111122223333:root", "111122223333", NULL, "kms.amazonaws.com",
		 "sts:AssumeRole", "arn:aws:iam::111122223333:role/R"},
	};
	for (size_t i = 0; i < sizeof who / sizeof who[0]; i++) {
		struct policy_req r;
		memset(&r, 0, sizeof r);
		r.principal_arn = who[i].arn;
		r.principal_account = who[i].account;
		r.role_arn = who[i].role;
		r.service = who[i].service;
		r.action = who[i].action;
		r.resource = who[i].resource;
		(void)policy_req_add_str(&r, "kms:CallerAccount", who[i].account);
		(void)policy_req_add_str(&r, "aws:SecureTransport", i % 2 ? "true" : "false");
		(void)policy_req_add_str(&r, "aws:SourceIp", ips[i % 2]);
		(void)policy_req_add_str(&r, "aws:CurrentTime", "2024-01-01T00:00:00Z");
		(void)policy_req_add_str(&r, "kms:GrantIsForAWSResource", "false");
		(void)policy_req_add_str(&r, "kms:RecipientAttestation:ImageSha384", "");
		(void)policy_req_add_str(&r, "aws:EpochTime", "1700000000");
		(void)policy_req_add_str(&r, "aws:username", i % 2 ? "alice" : NULL);
		(void)policy_req_add(
			&r, (struct policy_value){
				    .key = "kms:EncryptionContext:", .kind = PV_MAP, .json = ctx});
		(void)policy_req_add(&r, (struct policy_value){.key = "kms:EncryptionContextKeys",
							       .kind = PV_MAP_KEYS,
							       .json = ctx});
		(void)policy_req_add(&r, (struct policy_value){.key = "aws:ResourceTag/",
							       .kind = PV_TAGS,
							       .json = tags});
		(void)policy_req_add(&r, (struct policy_value){.key = "aws:TagKeys",
							       .kind = PV_TAG_KEYS,
							       .json = tags});
		(void)policy_req_add(&r, (struct policy_value){.key = "kms:GrantOperations",
							       .kind = PV_JSON_LIST,
							       .json = ops});
		(void)policy_req_add(&r, (struct policy_value){.key = "kms:ResourceAliases",
							       .kind = PV_STRINGS,
							       .values = ips,
							       .n = 2});
		struct policy_result res;
		policy_evaluate(p, &r, &res);
		if (res.explicit_deny && res.deny_sid == NULL)
			abort();
		(void)policy_allows(p, &r);
	}
	(void)policy_uses_key(p, "aws:SecureTransport");
	(void)policy_statement_count(p);
	json_decref(ctx);
	json_decref(tags);
	json_decref(ops);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		kjson_init();
		init = true;
	}
	if (size < 1 || size > POLICY_MAX_BYTES + 64)
		return 0;
	enum policy_kind kind = data[0] % 3 == 0   ? POLICY_RESOURCE
				: data[0] % 3 == 1 ? POLICY_IDENTITY
						   : POLICY_TRUST;
	struct kbuf msg;
	kbuf_init(&msg, 4096);
	struct policy *p = NULL;
	k_status rc = policy_parse(kslice_make(data + 1, size - 1), kind, &p, &msg);
	if (k_ok(rc)) {
		evaluate_all(p);
		policy_free(p);
	} else if (k_is(rc, K_E_MALFORMED_POLICY) && msg.len == 0) {
		abort(); /* a refusal says why */
	}
	kbuf_release(&msg);
	return 0;
}
