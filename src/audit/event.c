/*
 * event.c — CloudTrail events for API calls and for kinko's own work.
 *
 * The shape follows the CloudTrail record contents reference
 * (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html)
 * and AWS's KMS examples
 * (https://docs.aws.amazon.com/kms/latest/developerguide/logging-using-cloudtrail.html):
 * requestParameters are the request members in camelCase; KMS logs
 * responseElements only for calls that change something ("responseElements":
 * null for Encrypt, Decrypt, DescribeKey ...); the key is named in
 * "resources" as {"accountId", "type": "AWS::KMS::Key", "ARN"}.
 * Members that carry plaintext, ciphertext, key material, secret values,
 * signatures or credentials are never copied.
 */
#include "audit/audit.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/rand.h>

#include "audit/internal.h"
#include "core/clock.h"
#include "core/json.h"
#include "metrics/metrics.h"
#include "core/uuid.h"
#include "core/banned.h"

void audit_iso8601(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

bool audit_parse_iso8601(const char *s, int64_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		return false;
	if (*end == '.') {
		end++;
		while (isdigit((unsigned char)*end))
			end++;
	}
	if (*end != 'Z' || end[1] != 0)
		return false;
	*out = (int64_t)timegm(&tm);
	return true;
}

/* A random (version 4) UUID; a per-thread seed and counter keep it cheap. */
static void new_event_id(char out[37])
{
	kuuid_fast(out);
}

/* Members never copied into the log, at any depth (names compared case-insensitively). */
static const char *const sensitive[] = {
	"Plaintext", "CiphertextBlob", "SecretString", "SecretBinary", "KeyMaterial",
	"EncryptedKeyMaterial", "ImportToken", "Message", "Signature", "Mac",
	"PrivateKeyPlaintext", "PrivateKeyCiphertextBlob", "SharedSecret", "RandomPassword",
	"SecretAccessKey", "SessionToken", "CiphertextForRecipient", "Recipient", "PublicKey",
	"GrantTokens", "Password", "Credentials", "SAMLAssertion", "WebIdentityToken",
	NULL,
};

static bool is_sensitive(const char *name)
{
	for (size_t i = 0; sensitive[i] != NULL; i++) {
		if (strcasecmp(name, sensitive[i]) == 0)
			return true;
	}
	return false;
}

/* "KeyId" -> "keyId"; a name with its first letter lowered. */
static void camel(const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s", name);
	if (out[0] != 0)
		out[0] = (char)tolower((unsigned char)out[0]);
}

/*
 * Copies a request or response member tree for the log: sensitive members
 * dropped, member names in camelCase. Maps that hold the caller's own
 * names (encryption contexts) keep their keys as given.
 */
json_t *audit_redact(json_t *v, bool top_level)
{
	if (json_is_array(v)) {
		json_t *a = json_array();
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) json_array_append_new(a, audit_redact(e, false));
		return a;
	}
	if (!json_is_object(v))
		return json_deep_copy(v);
	json_t *o = json_object();
	const char *k;
	json_t *e;
	json_object_foreach(v, k, e) {
		if (is_sensitive(k))
			continue;
		char name[128];
		camel(k, name, sizeof name);
		if (strstr(k, "EncryptionContext") != NULL)
			json_object_set_new(o, name, json_deep_copy(e));
		else
			json_object_set_new(o, name, audit_redact(e, false));
	}
	(void)top_level;
	return o;
}

bool audit_op_mutates(const char *event_source, const char *op)
{
	static const char *const crypto[] = {
		"Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
		"GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateRandom", "Sign",
		"Verify", "GenerateMac", "VerifyMac", "DeriveSharedSecret", "GetCallerIdentity",
		"ValidateResourcePolicy", "GetRandomPassword", "BatchGetSecretValue", NULL,
	};
	static const char *const readers[] = {"Describe", "Get", "List", "Lookup", NULL};
	if (op == NULL)
		return false;
	for (size_t i = 0; crypto[i] != NULL; i++) {
		if (strcmp(op, crypto[i]) == 0)
			return false;
	}
	for (size_t i = 0; readers[i] != NULL; i++) {
		if (strncmp(op, readers[i], strlen(readers[i])) == 0)
			return false;
	}
	/* The test-mode service's clock and reset calls change state too. */
	(void)event_source;
	return true;
}

static json_t *user_identity(const struct api_ctx *c)
{
	const struct principal *p = &c->principal;
	json_t *u = json_object();
	if (p->account[0] == 0) {
		json_object_set_new(u, "type", json_string("Unknown"));
		return u;
	}
	json_object_set_new(u, "type", json_string(p->type));
	json_object_set_new(u, "principalId", json_string(p->principal_id));
	json_object_set_new(u, "arn", json_string(p->arn));
	json_object_set_new(u, "accountId", json_string(p->account));
	json_object_set_new(u, "accessKeyId", json_string(p->access_key));
	const char *slash = strrchr(p->arn, '/');
	if (strcmp(p->type, "IAMUser") == 0 && slash != NULL)
		json_object_set_new(u, "userName", json_string(slash + 1));
	if (strcmp(p->type, "AssumedRole") == 0) {
		/* arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION */
		const char *ar = strstr(p->arn, ":assumed-role/");
		char role[128] = "";
		if (ar != NULL) {
			const char *r = ar + strlen(":assumed-role/");
			const char *e = strchr(r, '/');
			snprintf(role, sizeof role, "%.*s", (int)(e ? (size_t)(e - r) : strlen(r)), r);
		}
		char issuer_arn[300], issuer_id[128];
		snprintf(issuer_arn, sizeof issuer_arn, "arn:aws:iam::%s:role/%s", p->account, role);
		snprintf(issuer_id, sizeof issuer_id, "%s", p->principal_id);
		char *colon = strchr(issuer_id, ':');
		if (colon != NULL)
			*colon = 0;
		json_t *issuer = json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "Role", "principalId",
					   issuer_id, "arn", issuer_arn, "accountId", p->account,
					   "userName", role);
		json_t *attrs = json_pack("{s:s}", "mfaAuthenticated", "false");
		json_object_set_new(u, "sessionContext",
				    json_pack("{s:o,s:o}", "sessionIssuer", issuer, "attributes", attrs));
	}
	return u;
}

static bool looks_like_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* Adds a KMS key resource for a key ARN or key id (aliases are skipped). */
static void add_key_resource(const struct api_ctx *c, json_t *res, const char *v)
{
	if (v == NULL)
		return;
	char arn[300];
	if (strncmp(v, "arn:aws:kms:", 12) == 0 && strstr(v, ":key/") != NULL)
		snprintf(arn, sizeof arn, "%s", v);
	else if (looks_like_uuid(v))
		snprintf(arn, sizeof arn, "arn:aws:kms:%s:%s:key/%s", c->region, c->principal.account, v);
	else
		return;
	size_t i;
	json_t *e;
	json_array_foreach(res, i, e) {
		if (strcmp(json_string_value(json_object_get(e, "ARN")) ?: "", arn) == 0)
			return;
	}
	/* The owner account is the one in the ARN. */
	char acct[16] = "";
	const char *p = arn;
	for (int field = 0; field < 4 && p != NULL; field++) {
		p = strchr(p, ':');
		if (p != NULL)
			p++;
	}
	if (p != NULL)
		snprintf(acct, sizeof acct, "%.*s", (int)strcspn(p, ":"), p);
	json_array_append_new(res, json_pack("{s:s,s:s,s:s}", "accountId", acct, "type",
					     "AWS::KMS::Key", "ARN", arn));
}

static const char *str_member(json_t *o, const char *k)
{
	return o != NULL ? json_string_value(json_object_get(o, k)) : NULL;
}

static json_t *resources(const struct api_ctx *c, json_t *in, json_t *out)
{
	json_t *res = json_array();
	const char *src = c->service ? c->service->event_source : "";
	if (strcmp(src, "kms.amazonaws.com") == 0) {
		add_key_resource(c, res, str_member(out, "SourceKeyId"));
		add_key_resource(c, res, str_member(out, "KeyId"));
		add_key_resource(c, res, str_member(json_object_get(out, "KeyMetadata"), "Arn"));
		if (json_array_size(res) == 0) {
			add_key_resource(c, res, str_member(in, "KeyId"));
			add_key_resource(c, res, str_member(in, "SourceKeyId"));
			add_key_resource(c, res, str_member(in, "DestinationKeyId"));
			add_key_resource(c, res, str_member(in, "TargetKeyId"));
		}
	} else if (strcmp(src, "secretsmanager.amazonaws.com") == 0) {
		const char *arn = str_member(out, "ARN");
		if (arn == NULL && str_member(in, "SecretId") != NULL &&
		    strncmp(str_member(in, "SecretId"), "arn:", 4) == 0)
			arn = str_member(in, "SecretId");
		if (arn != NULL)
			json_array_append_new(res, json_pack("{s:s,s:s,s:s}", "accountId",
							     c->principal.account, "type",
							     "AWS::SecretsManager::Secret", "ARN", arn));
	}
	if (json_array_size(res) == 0) {
		json_decref(res);
		return json_null();
	}
	return res;
}

static const char *op_name_of(const struct api_ctx *c)
{
	return c->op != NULL ? c->op->name : "Unknown";
}

json_t *audit_build_event(struct api_ctx *c, json_t *in, json_t *out, k_status rc,
			  const char *err_msg, char event_id[37])
{
	char when[32];
	audit_iso8601(c->now, when);
	new_event_id(event_id);
	const char *name = op_name_of(c);
	const char *src = c->service ? c->service->event_source : "kinko";
	bool mutates = audit_op_mutates(src, name);
	const struct http_header *ua = api_header(c->req, "user-agent");
	char agent[1024] = "";
	if (ua != NULL)
		snprintf(agent, sizeof agent, "%.*s", (int)(ua->value.len < 1000 ? ua->value.len : 1000),
			 (const char *)ua->value.ptr);

	json_t *e = json_object();
	if (e == NULL)
		return NULL;
	json_object_set_new(e, "eventVersion", json_string("1.08"));
	json_object_set_new(e, "userIdentity", user_identity(c));
	json_object_set_new(e, "eventTime", json_string(when));
	json_object_set_new(e, "eventSource", json_string(src));
	json_object_set_new(e, "eventName", json_string(name));
	json_object_set_new(e, "awsRegion", json_string(c->region[0] ? c->region : "us-east-1"));
	json_object_set_new(e, "sourceIPAddress", json_string(c->req->source_ip));
	json_object_set_new(e, "userAgent", json_stringn(agent, strlen(agent)));
	if (rc != K_OK) {
		json_object_set_new(e, "errorCode", json_string(k_status_name(rc)));
		const char *m = err_msg != NULL && err_msg[0] ? err_msg : k_status_message(rc);
		if (m[0] != 0)
			json_object_set_new(e, "errorMessage", json_string(m));
	}
	json_t *rp = in != NULL && json_object_size(in) > 0 ? audit_redact(in, true) : json_null();
	json_object_set_new(e, "requestParameters", rp);
	json_t *re = json_null();
	if (rc == K_OK && mutates && out != NULL && json_object_size(out) > 0)
		re = audit_redact(out, true);
	json_object_set_new(e, "responseElements", re);
	json_object_set_new(e, "requestID", json_string(c->req->request_id));
	json_object_set_new(e, "eventID", json_string(event_id));
	json_object_set_new(e, "readOnly", json_boolean(!mutates));
	json_object_set_new(e, "resources", resources(c, in, out));
	json_object_set_new(e, "eventType", json_string("AwsApiCall"));
	json_object_set_new(e, "managementEvent", json_true());
	json_object_set_new(e, "recipientAccountId", json_string(c->principal.account));
	json_object_set_new(e, "eventCategory", json_string("Management"));
	if (c->req->secure)
		json_object_set_new(e, "tlsDetails", json_pack("{s:s}", "tlsVersion", "TLSv1.2+"));
	return e;
}

static k_status write_event(const char *type, json_t *e)
{
	char *s = json_dumps(e, JSON_COMPACT);
	ENSURE(s != NULL, K_E_INTERNAL);
	k_status rc = audit_writer_append(type, s, strlen(s));
	kjson_free(s);
	return rc;
}

/* The KMS operations whose success GetKeyLastUsage reports. */
static bool tracked_crypto_op(const char *name)
{
	static const char *const ops[] = {
		"Decrypt", "DeriveSharedSecret", "Encrypt", "GenerateDataKey", "GenerateDataKeyPair",
		"GenerateDataKeyPairWithoutPlaintext", "GenerateDataKeyWithoutPlaintext", "GenerateMac",
		"ReEncrypt", "Sign", "Verify", "VerifyMac", NULL,
	};
	for (size_t i = 0; ops[i] != NULL; i++) {
		if (strcmp(name, ops[i]) == 0)
			return true;
	}
	return false;
}

void audit_lastuse_from_event(json_t *e)
{
	const char *src = json_string_value(json_object_get(e, "eventSource"));
	const char *name = json_string_value(json_object_get(e, "eventName"));
	if (src == NULL || name == NULL || strcmp(src, "kms.amazonaws.com") != 0 ||
	    json_object_get(e, "errorCode") != NULL || !tracked_crypto_op(name))
		return;
	int64_t t = 0;
	const char *when = json_string_value(json_object_get(e, "eventTime"));
	if (when == NULL || !audit_parse_iso8601(when, &t))
		return;
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(e, "resources"), i, r) {
		audit_lastuse_note(json_string_value(json_object_get(r, "ARN")), name, t,
				   json_string_value(json_object_get(e, "eventID")),
				   json_string_value(json_object_get(e, "requestID")));
	}
}

k_status audit_intent(struct api_ctx *c)
{
	if (!audit_enabled() || c->op == NULL)
		return K_OK;
	const char *src = c->service ? c->service->event_source : "kinko";
	if (!audit_op_mutates(src, c->op->name))
		return K_OK;
	char when[32];
	audit_iso8601(c->now, when);
	json_t *e = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s}}", "eventTime", when,
			      "eventSource", src, "eventName", c->op->name, "awsRegion", c->region,
			      "requestID", c->req->request_id, "recipientAccountId",
			      c->principal.account, "sourceIPAddress", c->req->source_ip,
			      "userIdentity", "arn", c->principal.arn);
	ENSURE(e != NULL, K_E_INTERNAL);
	k_status rc = write_event("intent", e);
	json_decref(e);
	return rc;
}

k_status audit_call(struct api_ctx *c, json_t *in, json_t *out, k_status rc, const char *err_msg)
{
	if (!audit_enabled())
		return K_OK;
	char event_id[37];
	json_t *e = audit_build_event(c, in, out, rc, err_msg, event_id);
	ENSURE(e != NULL, K_E_INTERNAL);
	k_status wrc = write_event("event", e);
	if (wrc == K_OK)
		audit_lastuse_from_event(e);
	json_decref(e);
	return wrc;
}

k_status audit_emit_service_event(const char *event_source, const char *event_name,
				  const char *account, const char *region, const char *resource_arn,
				  const char *resource_type, json_t *details, k_status outcome)
{
	if (strcmp(event_name, "RotateKey") == 0)
		metrics_rotation(outcome == K_OK);
	if (!audit_enabled())
		return K_OK;
	char when[32], event_id[37], request_id[37];
	audit_iso8601(kclock_now(), when);
	new_event_id(event_id);
	new_event_id(request_id);
	json_t *e = json_object();
	ENSURE(e != NULL, K_E_INTERNAL);
	json_object_set_new(e, "eventVersion", json_string("1.08"));
	json_object_set_new(e, "userIdentity", json_pack("{s:s,s:s}", "accountId", account,
							 "invokedBy", event_source));
	json_object_set_new(e, "eventTime", json_string(when));
	json_object_set_new(e, "eventSource", json_string(event_source));
	json_object_set_new(e, "eventName", json_string(event_name));
	json_object_set_new(e, "awsRegion", json_string(region));
	json_object_set_new(e, "sourceIPAddress", json_string(event_source));
	json_object_set_new(e, "userAgent", json_string(event_source));
	if (outcome != K_OK) {
		json_object_set_new(e, "errorCode", json_string(k_status_name(outcome)));
		json_object_set_new(e, "errorMessage", json_string(k_status_message(outcome)));
	}
	json_object_set_new(e, "requestParameters", json_null());
	json_object_set_new(e, "responseElements", json_null());
	json_object_set_new(e, "requestID", json_string(request_id));
	json_object_set_new(e, "eventID", json_string(event_id));
	json_object_set_new(e, "readOnly", json_false());
	if (resource_arn != NULL)
		json_object_set_new(e, "resources",
				    json_pack("[{s:s,s:s,s:s}]", "accountId", account, "type",
					      resource_type ? resource_type : "AWS::KMS::Key", "ARN",
					      resource_arn));
	else
		json_object_set_new(e, "resources", json_null());
	json_object_set_new(e, "eventType", json_string("AwsServiceEvent"));
	json_object_set_new(e, "managementEvent", json_true());
	json_object_set_new(e, "recipientAccountId", json_string(account));
	if (details != NULL)
		json_object_set(e, "serviceEventDetails", details);
	json_object_set_new(e, "eventCategory", json_string("Management"));
	k_status rc = write_event("event", e);
	json_decref(e);
	return rc;
}
