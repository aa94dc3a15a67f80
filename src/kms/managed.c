/*
 * managed.c — AWS managed keys (alias/aws/<service>), created on first use.
 *
 * "AWS managed keys are KMS keys in your account that are created,
 * managed, and used on your behalf by an AWS service integrated with AWS
 * KMS." Their alias is aws/<service-name>, their KeyManager is "AWS", and
 * the service creates them the first time it needs one.
 * https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key
 *
 * Creation is race-safe without a lock: the key document and its alias
 * are written in one atomic storage apply, the alias with the "must not
 * exist" precondition. Of two requests racing to create the key, one
 * applies both records; the other's apply changes nothing (K_E_CONFLICT)
 * and it resolves the alias the winner wrote.
 */
#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"
#include "kms/kms.h"
#include "kms/store.h"
#include "scheduler/scheduler.h"
#include "kms/specs.h"
#include "core/json.h"
#include "crypto/uuid.h"
#include "core/arn.h"
#include "core/banned.h"

static void managed_uuid(char out[37])
{
	crypto_uuid_random(out);
}

/* The descriptions AWS gives its managed keys. */
static void managed_description(const char *service, char *out, size_t n)
{
	if (strcmp(service, "secretsmanager") == 0)
		snprintf(out, n,
			 "Default key that protects my Secrets Manager data when no other key is "
			 "defined");
	else
		snprintf(out, n,
			 "Default key that protects my %s data when no other key is defined",
			 service);
}

/*
 * The key policy of an AWS managed key: principals of the account may use
 * the key only through the service (kms:ViaService) and the account may
 * read its metadata. This is the shape of the policy AWS attaches to
 * aws/secretsmanager ("auto-secretsmanager-2").
 */
static char *managed_policy(const char *service, const char *region, const char *account)
{
	char via[160], via_any[160], root[K_ARN_BUF], id[96];
	snprintf(via, sizeof via, "%s.%s.amazonaws.com", service, region);
	snprintf(via_any, sizeof via_any, "%s.*.amazonaws.com", service);
	struct k_arn root_arn = k_arn_of("iam", "", account, K_ARN_ROOT, NULL);
	k_arn_format(&root_arn, root, sizeof root);
	snprintf(id, sizeof id, "auto-%s-2", service);
	const char *sid = "Allow access through the service for all principals in the account that "
			  "are authorized to use it";
	json_t *p =
		json_pack("{s:s, s:s, s:["
			  "{s:s, s:s, s:{s:s}, s:[s,s,s,s,s], s:s, s:{s:{s:s, s:s}}},"
			  "{s:s, s:s, s:{s:s}, s:s, s:s, s:{s:{s:s}, s:{s:s}}},"
			  "{s:s, s:s, s:{s:s}, s:[s,s,s,s], s:s}]}",
			  "Version", "2012-10-17", "Id", id, "Statement", "Sid", sid, "Effect",
			  "Allow", "Principal", "AWS", "*", "Action", "kms:Encrypt", "kms:Decrypt",
			  "kms:ReEncrypt*", "kms:CreateGrant", "kms:DescribeKey", "Resource", "*",
			  "Condition", "StringEquals", "kms:ViaService", via, "kms:CallerAccount",
			  account, "Sid", sid, "Effect", "Allow", "Principal", "AWS", "*", "Action",
			  "kms:GenerateDataKey*", "Resource", "*", "Condition", "StringEquals",
			  "kms:CallerAccount", account, "StringLike", "kms:ViaService", via_any,
			  "Sid", "Allow direct access to key metadata to the account", "Effect",
			  "Allow", "Principal", "AWS", root, "Action", "kms:Describe*", "kms:Get*",
			  "kms:List*", "kms:RevokeGrant", "Resource", "*");
	if (p == NULL)
		return NULL;
	char *s = json_dumps(p, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(p);
	return s;
}

#define MANAGED_PERIOD_DAYS 365

/* The first automatic rotation of a managed key created now. */
static int64_t managed_next_rotation(const struct api_ctx *c)
{
	return c->now + (int64_t)MANAGED_PERIOD_DAYS * 86400;
}

/* Builds the key document and the alias document of a new managed key. */
static K_MUST_CHECK k_status managed_docs(struct api_ctx *c, const char *service, const char *id,
					  const char *alias, char **key_text, char **alias_text)
{
	char arn[160], desc[160], alias_arn[300];
	kms_key_arn(c, id, arn, sizeof arn);
	managed_description(service, desc, sizeof desc);
	struct k_arn a = k_arn_of("kms", c->region, c->principal.account, K_ARN_OTHER, alias);
	k_arn_format(&a, alias_arn, sizeof alias_arn);
	const struct kms_spec *ks = kms_spec_find("SYMMETRIC_DEFAULT");
	char *pol = managed_policy(service, c->region, c->principal.account);
	struct kbuf wrapped;
	kbuf_init(&wrapped, KEYSTORE_MAX_REF);
	json_t *doc = NULL, *adoc = NULL;
	k_status rc = K_OK;
	ENSURE_GOTO(pol != NULL && ks != NULL, K_E_INTERNAL);
	doc = json_pack(
		"{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:[]}",
		"KeyId", id, "Arn", arn, "AWSAccountId", c->principal.account, "Region", c->region,
		"CreationDate", kjson_date(api_now_ms(c)), "Description", desc, "KeyUsage",
		"ENCRYPT_DECRYPT", "KeySpec", "SYMMETRIC_DEFAULT", "CustomerMasterKeySpec",
		"SYMMETRIC_DEFAULT", "KeyState", "Enabled", "Origin", "AWS_KMS", "KeyManager",
		"AWS", "MultiRegion", 0, "Policy", pol, "Tags");
	ENSURE_GOTO(doc != NULL, K_E_INTERNAL);
	kms_spec_describe(ks, "ENCRYPT_DECRYPT", doc);
	/* "AWS KMS automatically rotates AWS managed keys every year (approximately
	 * 365 days)." (https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html)
	 * The first rotation is due a period after creation; kms_managed_key
	 * writes its due record with the key, as EnableKeyRotation does. */
	json_object_set_new(doc, "KeyRotationEnabled", json_true());
	json_object_set_new(doc, "RotationPeriodInDays", json_integer(MANAGED_PERIOD_DAYS));
	json_object_set_new(doc, "NextRotationDate", json_integer(managed_next_rotation(c)));
	GUARD_GOTO(keystore_generate(keystore_find(NULL), "SYMMETRIC_DEFAULT", arn, &wrapped));
	json_t *mats = json_pack("[{s:i, s:s, s:I}]", "Version", 1, "Wrapped", kbuf_cstr(&wrapped),
				 "Created", (json_int_t)c->now);
	ENSURE_GOTO(mats != NULL, K_E_INTERNAL);
	json_object_set_new(doc, "Materials", mats);
	adoc = json_pack("{s:s, s:s, s:s, s:o, s:o}", "AliasName", alias, "AliasArn", alias_arn,
			 "TargetKeyId", id, "CreationDate", kjson_date(api_now_ms(c)),
			 "LastUpdatedDate", kjson_date(api_now_ms(c)));
	ENSURE_GOTO(adoc != NULL, K_E_INTERNAL);
	*key_text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	*alias_text = json_dumps(adoc, JSON_COMPACT | JSON_SORT_KEYS);
	ENSURE_GOTO(*key_text != NULL && *alias_text != NULL, K_E_INTERNAL);
out:
	json_decref(doc);
	json_decref(adoc);
	kjson_free(pol);
	kbuf_release(&wrapped);
	return rc;
}

k_status kms_managed_key(struct api_ctx *c, const char *service, struct kms_key **out)
{
	char alias[160];
	snprintf(alias, sizeof alias, "alias/aws/%s", service);
	for (int attempt = 0; attempt < 3; attempt++) {
		k_status rc = kms_resolve_key(c, alias, true, out);
		if (!k_is(rc, K_E_NOT_FOUND))
			return rc;
		kbuf_reset(&c->err_msg);
		char id[37];
		managed_uuid(id);
		char *key_text = NULL, *alias_text = NULL;
		char due[SCHEDULER_DUE_ID_MAX];
		rc = managed_docs(c, service, id, alias, &key_text, &alias_text);
		if (k_ok(rc))
			rc = scheduler_due_id(managed_next_rotation(c), KMS_ROTATE_TASK, c->ns, id,
					      due, sizeof due);
		if (k_ok(rc)) {
			/* The key, its alias and its rotation's due record: all or none. */
			struct storage_op ops[3] = {
				{.op = STORAGE_PUT,
				 .kind = "key",
				 .ns = c->ns,
				 .id = id,
				 .doc = kslice_cstr(key_text),
				 .expect = STORAGE_ABSENT},
				{.op = STORAGE_PUT,
				 .kind = "alias",
				 .ns = c->ns,
				 .id = alias,
				 .doc = kslice_cstr(alias_text),
				 .expect = STORAGE_ABSENT},
			};
			scheduler_due_put_op(&ops[2], due);
			rc = storage_apply(kms_store(), ops, 3);
		}
		kjson_free(key_text);
		kjson_free(alias_text);
		/* K_E_CONFLICT: another request created it first; resolve theirs. */
		if (k_failed(rc) && !k_is(rc, K_E_CONFLICT))
			return rc;
	}
	return kms_resolve_key(c, alias, true, out);
}
