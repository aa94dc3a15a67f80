/*
 * format.c — the CloudTrail event of an API call, written straight into a
 * byte buffer as compact JSON.
 *
 * Every call is audited, so this is on the hot path of every request. It
 * used to build a jansson tree of the event, serialise it with json_dumps
 * and read it back for the last-use index, which cost about a third of an
 * Encrypt call. Here the event is written in one pass: the fixed members
 * straight from what the pipeline hands over (struct audit_call_info), requestParameters and
 * responseElements by walking the (already parsed) request and response
 * trees with the redaction rules applied on the way. The member order and
 * the rules are those of the CloudTrail record contents reference
 * (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html)
 * and AWS's KMS examples
 * (https://docs.aws.amazon.com/kms/latest/developerguide/logging-using-cloudtrail.html).
 *
 * Strings are escaped as JSON requires, and any byte sequence that is not
 * valid UTF-8 (a raw User-Agent header, say) becomes U+FFFD, so a line is
 * always valid JSON whatever the client sent.
 */
#include "audit/audit.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "audit/internal.h"
#include "core/arn.h"
#include "core/jsonw.h"
#include "crypto/uuid.h"
#include "core/banned.h"

#define MAX_USER_AGENT 1000

/* ,"name": — member names here are literals that need no escaping. */
static void member(struct kjw *w, const char *name)
{
	KJW_LIT(w, ",\"");
	kjw_raw(w, name, strlen(name));
	KJW_LIT(w, "\":");
}

static void member_str(struct kjw *w, const char *name, const char *v)
{
	member(w, name);
	kjw_cstr(w, v);
}

/* Members never copied into the log, at any depth (names compared case-insensitively). */
static const char *const sensitive[] = {
	"Plaintext",
	"CiphertextBlob",
	"SecretString",
	"SecretBinary",
	"KeyMaterial",
	"EncryptedKeyMaterial",
	"ImportToken",
	"Message",
	"Signature",
	"Mac",
	"PrivateKeyPlaintext",
	"PrivateKeyCiphertextBlob",
	"SharedSecret",
	"RandomPassword",
	"SecretAccessKey",
	"SessionToken",
	"CiphertextForRecipient",
	"Recipient",
	"PublicKey",
	"GrantTokens",
	"Password",
	"Credentials",
	"SAMLAssertion",
	"WebIdentityToken",
	"KeyStorePassword",   /* a custom key store's token PIN */
	"RawSecretAccessKey", /* an external key store proxy's credential */
	NULL,
};

bool audit_is_sensitive(const char *name)
{
	for (size_t i = 0; sensitive[i] != NULL; i++) {
		if (strcasecmp(name, sensitive[i]) == 0)
			return true;
	}
	return false;
}

/* Maps that hold the caller's own names (encryption contexts) are logged as given. */
static bool is_verbatim(const char *name)
{
	return strstr(name, "EncryptionContext") != NULL;
}

/* Request and response members in the log: sensitive ones dropped, names in camelCase. */
static const struct kjw_redact redaction = {
	.drop = audit_is_sensitive, .verbatim = is_verbatim, .lower_first = true};

static void user_identity(struct kjw *w, const struct audit_who *p)
{
	if (p->account[0] == 0) {
		KJW_LIT(w, "{\"type\":\"Unknown\"}");
		return;
	}
	KJW_LIT(w, "{\"type\":");
	kjw_cstr(w, p->type);
	member_str(w, "principalId", p->principal_id);
	member_str(w, "arn", p->arn);
	member_str(w, "accountId", p->account);
	member_str(w, "accessKeyId", p->access_key);
	/* An IAM user's name: the last part of its ARN's user/PATH/NAME. */
	struct k_arn user;
	if (strcmp(p->type, "IAMUser") == 0 && k_arn_parse_cstr(p->arn, &user) &&
	    user.kind == K_ARN_USER) {
		const char *slash = strrchr(p->arn, '/');
		member_str(w, "userName", slash + 1);
	}
	if (strcmp(p->type, "AssumedRole") == 0) {
		/* arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION acts as arn:aws:iam::ACCOUNT:role/ROLE. */
		struct k_arn a;
		struct kslice role = kslice_make("", 0);
		if (k_arn_parse_cstr(p->arn, &a) && a.kind == K_ARN_ASSUMED_ROLE) {
			const uint8_t *e = memchr(a.id.ptr, '/', a.id.len);
			role = kslice_make(a.id.ptr, e != NULL ? (size_t)(e - a.id.ptr) : a.id.len);
		}
		struct k_arn issuer = k_arn_of("iam", "", p->account, K_ARN_ROLE, NULL);
		issuer.id = role;
		char issuer_arn[K_ARN_BUF];
		size_t issuer_len = k_arn_format(&issuer, issuer_arn, sizeof issuer_arn);
		/* The session issuer's id is the role's, before the ":SESSION". */
		size_t id_len = strcspn(p->principal_id, ":");
		member(w, "sessionContext");
		KJW_LIT(w, "{\"sessionIssuer\":{\"type\":\"Role\",\"principalId\":");
		kjw_str(w, p->principal_id, id_len);
		KJW_LIT(w, ",\"arn\":");
		kjw_str(w, issuer_arn, issuer_len);
		member_str(w, "accountId", p->account);
		member(w, "userName");
		kjw_str(w, (const char *)role.ptr, role.len);
		KJW_LIT(w, "},\"attributes\":{\"mfaAuthenticated\":\"false\"}}");
	}
	KJW_LIT(w, "}");
}

/* A key id: a UUID, or a multi-Region key's "mrk-" and 32 hex digits. */
static bool looks_like_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	bool mrk = strncmp(s, "mrk-", 4) == 0;
	for (int i = mrk ? 4 : 0; i < 36; i++) {
		bool dash = !mrk && (i == 8 || i == 13 || i == 18 || i == 23);
		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* Copies s[0..n) into out (size m), cut to fit, NUL-terminated. */
static void copy_str(char *out, size_t m, const char *s, size_t n)
{
	if (n >= m)
		n = m - 1;
	memcpy(out, s, n);
	out[n] = 0;
}

static void add_resource(struct audit_resources *r, const char *account, const char *type,
			 const char *arn)
{
	for (size_t i = 0; i < r->n; i++) {
		if (strcmp(r->item[i].arn, arn) == 0)
			return;
	}
	if (r->n == AUDIT_MAX_RESOURCES)
		return;
	struct audit_resource *x = &r->item[r->n++];
	copy_str(x->account, sizeof x->account, account, strlen(account));
	copy_str(x->arn, sizeof x->arn, arn, strlen(arn));
	x->type = type;
}

/* A KMS key named by key ARN or key id (aliases name no resource). */
static void add_key(struct audit_resources *r, const struct audit_call_info *c, const char *v)
{
	if (v == NULL)
		return;
	char arn[300];
	struct k_arn a;
	if (k_arn_parse_cstr(v, &a) && k_arn_is(&a, "kms", K_ARN_KEY) &&
	    kslice_eq_cstr(a.partition, "aws")) {
		copy_str(arn, sizeof arn, v, strlen(v));
	} else if (looks_like_uuid(v)) {
		a = k_arn_of("kms", c->region, c->who.account, K_ARN_KEY, v);
		k_arn_format(&a, arn, sizeof arn);
	} else {
		return;
	}
	/* The owner account is the ARN's. */
	char acct[16] = "";
	if (a.account.len > 0)
		copy_str(acct, sizeof acct, (const char *)a.account.ptr, a.account.len);
	add_resource(r, acct, "AWS::KMS::Key", arn);
}

static const char *str_member(json_t *o, const char *k)
{
	return o != NULL ? json_string_value(json_object_get(o, k)) : NULL;
}

/* The resources a call touched: the keys of KMS calls, the secret of Secrets Manager calls. */
static void find_resources(const struct audit_call_info *c, json_t *in, json_t *out,
			   struct audit_resources *r)
{
	const char *src = c->event_source ? c->event_source : "";
	r->n = 0;
	if (strcmp(src, "kms.amazonaws.com") == 0) {
		add_key(r, c, str_member(out, "SourceKeyId"));
		add_key(r, c, str_member(out, "KeyId"));
		add_key(r, c, str_member(json_object_get(out, "KeyMetadata"), "Arn"));
		if (r->n == 0) {
			add_key(r, c, str_member(in, "KeyId"));
			add_key(r, c, str_member(in, "SourceKeyId"));
			add_key(r, c, str_member(in, "DestinationKeyId"));
			add_key(r, c, str_member(in, "TargetKeyId"));
		}
	} else if (strcmp(src, "secretsmanager.amazonaws.com") == 0) {
		const char *arn = str_member(out, "ARN");
		const char *id = str_member(in, "SecretId");
		struct k_arn given;
		if (arn == NULL && k_arn_parse_cstr(id, &given))
			arn = id;
		if (arn != NULL)
			add_resource(r, c->who.account, "AWS::SecretsManager::Secret", arn);
	}
}

/* eventTime: the request's arrival second, formatted once per second per thread. */
static void event_time(int64_t t, char out[32])
{
	static _Thread_local int64_t last = -1;
	static _Thread_local char text[32];
	if (t != last) {
		audit_iso8601(t, text);
		last = t;
	}
	memcpy(out, text, sizeof text);
}

k_status audit_format_call(const struct audit_call_info *c, json_t *in, json_t *out, k_status rc,
			   const char *err_msg, char event_id[37], struct audit_resources *res,
			   struct kbuf *b)
{
	struct kjw w;
	kjw_start(&w, b);
	char when[32];
	event_time(c->now, when);
	crypto_uuid_fast(event_id);
	const char *name = c->event_name != NULL ? c->event_name : "Unknown";
	const char *src = c->event_source != NULL ? c->event_source : "kinko";
	/* The row says whether the call changes state; a call of no known operation is not read-only. */
	bool mutates = c->event_name == NULL || c->mutates;

	KJW_LIT(&w, "{\"eventVersion\":\"1.08\",\"userIdentity\":");
	user_identity(&w, &c->who);
	member_str(&w, "eventTime", when);
	member_str(&w, "eventSource", src);
	member_str(&w, "eventName", name);
	member_str(&w, "awsRegion", c->region[0] ? c->region : "us-east-1");
	member_str(&w, "sourceIPAddress", c->source_ip);
	member(&w, "userAgent");
	if (c->user_agent.len > 0)
		kjw_str(&w, (const char *)c->user_agent.ptr,
			c->user_agent.len < MAX_USER_AGENT ? c->user_agent.len : MAX_USER_AGENT);
	else
		KJW_LIT(&w, "\"\"");
	if (k_failed(rc)) {
		member_str(&w, "errorCode", k_status_name(rc));
		const char *m = err_msg != NULL && err_msg[0] ? err_msg : k_status_message(rc);
		if (m[0] != 0)
			member_str(&w, "errorMessage", m);
	}
	member(&w, "requestParameters");
	if (in != NULL && json_is_object(in) && json_object_size(in) > 0)
		kjw_value_redacted(&w, in, &redaction);
	else
		KJW_LIT(&w, "null");
	/* KMS logs responseElements only for calls that change something. */
	member(&w, "responseElements");
	if (k_ok(rc) && mutates && out != NULL && json_is_object(out) && json_object_size(out) > 0)
		kjw_value_redacted(&w, out, &redaction);
	else
		KJW_LIT(&w, "null");
	member_str(&w, "requestID", c->request_id);
	member_str(&w, "eventID", event_id);
	member(&w, "readOnly");
	if (mutates)
		KJW_LIT(&w, "false");
	else
		KJW_LIT(&w, "true");
	member(&w, "resources");
	find_resources(c, in, out, res);
	if (res->n == 0) {
		KJW_LIT(&w, "null");
	} else {
		KJW_LIT(&w, "[");
		for (size_t i = 0; i < res->n; i++) {
			if (i > 0)
				KJW_LIT(&w, ",");
			KJW_LIT(&w, "{\"accountId\":");
			kjw_cstr(&w, res->item[i].account);
			member_str(&w, "type", res->item[i].type);
			member_str(&w, "ARN", res->item[i].arn);
			KJW_LIT(&w, "}");
		}
		KJW_LIT(&w, "]");
	}
	KJW_LIT(&w, ",\"eventType\":\"AwsApiCall\",\"managementEvent\":true");
	member_str(&w, "recipientAccountId", c->who.account);
	KJW_LIT(&w, ",\"eventCategory\":\"Management\"");
	if (c->secure)
		KJW_LIT(&w, ",\"tlsDetails\":{\"tlsVersion\":\"TLSv1.2+\"}");
	KJW_LIT(&w, "}");
	return kjw_finish(&w);
}
