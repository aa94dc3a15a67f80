/*
 * authz.c — KMS authorization (see authz.h).
 */
#include "kms/authz.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config/config.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "storage/storage.h"
#include "kms/grants.h"
#include "kms/kms.h"
#include "kms/store.h"
#include "policy/policy.h"
#include "core/arn.h"
#include "core/banned.h"

/* Everything a decision depends on, from a live request or the simulator. */
struct inputs {
	const char *arn; /* the caller */
	const char *account;
	const char *role_arn; /* assumed-role sessions */
	bool root;	      /* the account's root principal */
	const struct identity *id;
	const char *action;
	const char *resource; /* key ARN, alias ARN or "*" */
	bool has_key;	      /* false: identity-only check */
	const char *key_account;
	const json_t *key_doc;	   /* NULL for identity-only checks */
	const struct kms_key *key; /* its grants (kms/grants.h); NULL in the simulator */
	const struct policy *key_policy;
	const char *via_service;
	const json_t *ec;
	const char *alg;
	const json_t *grant_ops;
	const json_t *request_tags;
	const char *request_alias;
	const char *source_ip;
	bool secure;
	const char *region; /* aws:RequestedRegion */
	int64_t now;
	const json_t *extra;   /* simulator: extra condition values */
	const json_t *aliases; /* kms:ResourceAliases, when a policy asks for it */
};

enum verdict {
	V_ALLOW,
	V_DENY_RESOURCE, /* explicit deny in the key policy */
	V_DENY_IDENTITY, /* explicit deny in an identity policy */
	V_NO_RESOURCE,	 /* no key-policy statement allows */
	V_NO_IDENTITY,	 /* the key policy delegates, no identity policy allows */
};

struct decision {
	enum verdict v;
	const char *by; /* "key policy", "identity policy", "grant", "root" */
	const char *sid;
	int index;	      /* statement (or identity policy) index */
	const char *grant_id; /* NULL, or gid: the grant that allowed */
	char gid[KMS_GRANT_ID_LEN + 1];
};

/*
 * Parsed key policies shared by text: most keys carry the same default
 * policy, so 100,000 cached keys need a handful of parsed policies, not
 * 100,000 (a parse per key load and its memory per key). A slot holds the
 * last policy of its hash (a collision replaces it; the text is compared
 * in full, so it only costs a parse); keys hold their own references, so
 * a policy replaced here lives on while a key uses it. Only key loads take
 * the lock, never a request's authorization.
 */
#define POLICY_SLOTS 1024

static struct {
	pthread_mutex_t mu;
	struct {
		char *text;
		struct policy *p;
	} slot[POLICY_SLOTS];
} shared_policies = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct policy *shared_policy_find(const char *text, size_t i)
{
	struct policy *p = NULL;
	pthread_mutex_lock(&shared_policies.mu);
	if (shared_policies.slot[i].text != NULL && strcmp(shared_policies.slot[i].text, text) == 0)
		p = policy_ref(shared_policies.slot[i].p);
	pthread_mutex_unlock(&shared_policies.mu);
	return p;
}

static void shared_policy_keep(const char *text, size_t i, struct policy *p)
{
	char *copy = strdup(text);
	if (copy == NULL)
		return;
	pthread_mutex_lock(&shared_policies.mu);
	char *old_text = shared_policies.slot[i].text;
	struct policy *old = shared_policies.slot[i].p;
	shared_policies.slot[i].text = copy;
	shared_policies.slot[i].p = policy_ref(p);
	pthread_mutex_unlock(&shared_policies.mu);
	free(old_text);
	policy_free(old);
}

struct policy *authz_parse_key_policy(const json_t *doc)
{
	const char *text = json_string_value(json_object_get(doc, "Policy"));
	if (text == NULL || text[0] == 0)
		return NULL;
	size_t i = (size_t)(khash(text) % POLICY_SLOTS);
	struct policy *p = shared_policy_find(text, i);
	if (p != NULL)
		return p;
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	if (k_failed(policy_parse(kslice_cstr(text), POLICY_RESOURCE, &p, &msg)))
		LOG_WARN("key %s has an unusable policy: %s",
			 json_string_value(json_object_get(doc, "Arn")), kbuf_cstr(&msg));
	else
		shared_policy_keep(text, i, p);
	kbuf_release(&msg);
	return p;
}

/* Text the request context borrows: aws:CurrentTime, aws:EpochTime. */
struct req_bufs {
	char time[32];
	char epoch[24];
};

/* The request's global keys: time, region, the principal's own keys. */
static void fill_global(const struct inputs *in, struct policy_req *r, struct req_bufs *b)
{
	time_t t = (time_t)in->now;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(b->time, sizeof b->time, "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(b->epoch, sizeof b->epoch, "%lld", (long long)in->now);
	policy_req_add_str(r, "aws:CurrentTime", b->time);
	policy_req_add_str(r, "aws:EpochTime", b->epoch);
	policy_req_add_str(r, "aws:RequestedRegion", in->region);
	/* Session tags first: a session's tag wins over its role's tag of the same key. */
	identity_add_principal_tags(in->id, r);
	identity_policy_context(in->id, r);
}

/* The condition keys of a request (authz.h lists them). */
/* The key's condition keys: spec, usage, origin, tags, aliases, and the algorithm. */
static void fill_key(const struct inputs *in, const char *op, struct policy_req *r)
{
	if (in->key_doc == NULL) {
		policy_req_add_str(r, "kms:EncryptionAlgorithm", in->alg);
		return;
	}
	const char *spec = json_string_value(json_object_get(in->key_doc, "KeySpec"));
	policy_req_add_str(r, "kms:KeySpec", spec);
	policy_req_add_str(r, "kms:KeyUsage",
			   json_string_value(json_object_get(in->key_doc, "KeyUsage")));
	policy_req_add_str(r, "kms:KeyOrigin",
			   json_string_value(json_object_get(in->key_doc, "Origin")));
	const json_t *tags = json_object_get(in->key_doc, "Tags");
	if (json_is_array(tags))
		policy_req_add(r, (struct policy_value){.key = "aws:ResourceTag/",
							.kind = PV_TAGS,
							.json = tags});
	if (json_is_array(in->aliases))
		policy_req_add(r, (struct policy_value){.key = "kms:ResourceAliases",
							.kind = PV_JSON_LIST,
							.json = in->aliases});
	const char *alg = in->alg;
	/* The symmetric operations' algorithm is SYMMETRIC_DEFAULT when the request names none. */
	if (alg == NULL && spec != NULL && strcmp(spec, "SYMMETRIC_DEFAULT") == 0 &&
	    (strcmp(op, "Encrypt") == 0 || strcmp(op, "Decrypt") == 0 ||
	     strncmp(op, "ReEncrypt", 9) == 0 || strncmp(op, "GenerateDataKey", 15) == 0))
		alg = "SYMMETRIC_DEFAULT";
	policy_req_add_str(r, "kms:EncryptionAlgorithm", alg);
}

static void fill_req(const struct inputs *in, struct policy_req *r, struct req_bufs *b)
{
	memset(r, 0, sizeof *r);
	r->principal_arn = in->arn;
	r->principal_account = in->account;
	r->role_arn = in->role_arn;
	r->action = in->action;
	r->resource = in->resource;
	fill_global(in, r, b);
	policy_req_add_str(r, "aws:PrincipalArn", in->role_arn ? in->role_arn : in->arn);
	policy_req_add_str(r, "aws:PrincipalAccount", in->account);
	policy_req_add_str(r, "kms:CallerAccount", in->account);
	policy_req_add_str(r, "aws:SourceIp",
			   in->source_ip && in->source_ip[0] ? in->source_ip : NULL);
	policy_req_add_str(r, "aws:SecureTransport", in->secure ? "true" : "false");
	policy_req_add_str(r, "kms:ViaService", in->via_service);
	policy_req_add_str(r, "kms:RequestAlias", in->request_alias);
	if (json_is_object(in->ec)) {
		policy_req_add(r, (struct policy_value){.key = "kms:EncryptionContext:",
							.kind = PV_MAP,
							.json = in->ec});
		policy_req_add(r, (struct policy_value){.key = "kms:EncryptionContextKeys",
							.kind = PV_MAP_KEYS,
							.json = in->ec});
	}
	if (json_is_array(in->grant_ops))
		policy_req_add(r, (struct policy_value){.key = "kms:GrantOperations",
							.kind = PV_JSON_LIST,
							.json = in->grant_ops});
	if (json_is_array(in->request_tags)) {
		policy_req_add(r, (struct policy_value){.key = "aws:RequestTag/",
							.kind = PV_TAGS,
							.json = in->request_tags});
		policy_req_add(r, (struct policy_value){.key = "aws:TagKeys",
							.kind = PV_TAG_KEYS,
							.json = in->request_tags});
	}
	const char *op = in->action + (strncmp(in->action, "kms:", 4) == 0 ? 4 : 0);
	if (strcmp(op, "CreateGrant") == 0 || strcmp(op, "ListGrants") == 0 ||
	    strcmp(op, "RevokeGrant") == 0)
		policy_req_add_str(r, "kms:GrantIsForAWSResource",
				   in->via_service ? "true" : "false");
	fill_key(in, op, r);
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)in->extra, k, v)
	{
		if (json_is_string(v))
			policy_req_add_str(r, k, json_string_value(v));
		else if (json_is_array(v))
			policy_req_add(r, (struct policy_value){
						  .key = k, .kind = PV_JSON_LIST, .json = v});
	}
}

/*
 * Grants (https://docs.aws.amazon.com/kms/latest/developerguide/grants.html):
 * the grantee may perform the grant's operations on its key; constraints
 * apply to cryptographic operations: "EncryptionContextEquals ... the
 * encryption context in the request is the same", "EncryptionContextSubset
 * ... includes the key-value pairs specified in this constraint".
 */
static const char *grant_allows(const struct inputs *in, char gid[KMS_GRANT_ID_LEN + 1])
{
	const char *op = in->action + (strncmp(in->action, "kms:", 4) == 0 ? 4 : 0);
	if (in->key != NULL)
		return kms_grants_allow(in->key, in->arn, in->role_arn, op, in->ec, gid) ? gid
											 : NULL;
	/* The simulator: the grants come in the document it was given. */
	const json_t *grants = in->key_doc ? json_object_get(in->key_doc, "Grants") : NULL;
	uint32_t bit = kms_grant_op_bit(op);
	size_t i;
	const json_t *g;
	json_array_foreach(grants, i, g)
	{
		const char *grantee = json_string_value(json_object_get(g, "GranteePrincipal"));
		if (grantee == NULL || !(strcmp(grantee, in->arn) == 0 ||
					 (in->role_arn && strcmp(grantee, in->role_arn) == 0)))
			continue;
		if ((kms_grant_ops_mask(json_object_get(g, "Operations")) & bit) == 0 || bit == 0)
			continue;
		if (kms_grant_constraints_hold(json_object_get(g, "Constraints"), in->ec))
			return json_string_value(json_object_get(g, "GrantId"));
	}
	return NULL;
}

/*
 * An STS session policy bounds its session: "The resulting session's
 * permissions are the intersection of the role's identity-based policy
 * and the session policies"
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session).
 * A Deny in it refuses; without an Allow in it nothing is allowed. True
 * when the session policy decided (a refusal, in *d).
 */
static bool session_policy_refuses(const struct inputs *in, const struct policy_req *req,
				   struct decision *d)
{
	const struct policy *sp = identity_session_policy(in->id);
	if (sp == NULL)
		return false;
	struct policy_result sr;
	policy_evaluate(sp, req, &sr);
	if (!sr.explicit_deny && sr.allow_direct)
		return false;
	d->v = sr.explicit_deny ? V_DENY_IDENTITY : V_NO_IDENTITY;
	d->by = "session policy";
	d->index = sr.explicit_deny ? sr.deny_index : -1;
	d->sid = sr.explicit_deny ? sr.deny_sid : "";
	return true;
}

/* IAM's evaluation logic for one request (authz.h, "The rules"). */
static void decide(const struct inputs *in, struct decision *d)
{
	memset(d, 0, sizeof *d);
	d->index = -1;
	d->sid = "";
	struct req_bufs bufs;
	struct policy_req req;
	fill_req(in, &req, &bufs);

	struct policy_result kp = {
		.deny_index = -1, .allow_index = -1, .deny_sid = "", .allow_sid = ""};
	if (in->has_key)
		policy_evaluate(in->key_policy, &req, &kp);
	bool id_allow = false;
	int id_allow_idx = -1;
	const char *id_allow_sid = "";
	size_t n = identity_policy_count(in->id);
	for (size_t i = 0; i < n; i++) {
		struct policy_result ir;
		policy_evaluate(identity_policy(in->id, i), &req, &ir);
		if (ir.explicit_deny) {
			d->v = V_DENY_IDENTITY;
			d->by = "identity policy";
			d->index = (int)i;
			d->sid = ir.deny_sid;
			return;
		}
		if (ir.allow_direct && !id_allow) {
			id_allow = true;
			id_allow_idx = (int)i;
			id_allow_sid = ir.allow_sid;
		}
	}
	if (session_policy_refuses(in, &req, d))
		return;
	if (kp.explicit_deny) {
		d->v = V_DENY_RESOURCE;
		d->by = "key policy";
		d->index = kp.deny_index;
		d->sid = kp.deny_sid;
		return;
	}
	/* The root user has every identity permission in its own account. */
	bool identity_ok = id_allow || in->root;
	if (!in->has_key) {
		d->v = identity_ok ? V_ALLOW : V_NO_IDENTITY;
		d->by = in->root ? "root" : "identity policy";
		d->index = id_allow_idx;
		d->sid = id_allow_sid;
		return;
	}
	bool same = in->key_account != NULL && strcmp(in->key_account, in->account) == 0;
	if (same && kp.allow_direct) {
		d->v = V_ALLOW;
		d->by = "key policy";
		d->index = kp.allow_index;
		d->sid = kp.allow_sid;
		return;
	}
	if ((kp.allow_direct || kp.allow_account) && identity_ok) {
		d->v = V_ALLOW;
		d->by = id_allow ? "key policy and identity policy" : "key policy";
		d->index = kp.allow_index;
		d->sid = kp.allow_sid;
		return;
	}
	d->grant_id = grant_allows(in, d->gid);
	if (d->grant_id != NULL) {
		d->v = V_ALLOW;
		d->by = "grant";
		return;
	}
	d->v = (kp.allow_direct || kp.allow_account) ? V_NO_IDENTITY : V_NO_RESOURCE;
}

static void deny_message(const struct inputs *in, const struct decision *d, char *out, size_t n)
{
	const char *why;
	switch (d->v) {
	case V_DENY_RESOURCE:
		why = "with an explicit deny in a resource-based policy";
		break;
	case V_DENY_IDENTITY:
		why = d->by != NULL && strcmp(d->by, "session policy") == 0
			      ? "with an explicit deny in a session policy"
			      : "with an explicit deny in an identity-based policy";
		break;
	case V_NO_IDENTITY:
		why = d->by != NULL && strcmp(d->by, "session policy") == 0
			      ? "because no session policy allows the"
			      : "because no identity-based policy allows the";
		break;
	case V_NO_RESOURCE:
	default:
		why = "because no resource-based policy allows the";
		break;
	}
	bool explicit_deny = d->v == V_DENY_RESOURCE || d->v == V_DENY_IDENTITY;
	snprintf(out, n, "User: %s is not authorized to perform: %s on resource: %s %s%s%s%s",
		 in->arn, in->action, in->resource, why, explicit_deny ? "" : " ",
		 explicit_deny ? "" : in->action, explicit_deny ? "" : " action");
}

static void inputs_from_ctx(struct api_ctx *c, const char *action, struct inputs *in)
{
	memset(in, 0, sizeof *in);
	const struct identity *id = c->principal.identity;
	in->arn = c->principal.arn;
	in->account = c->principal.account;
	in->id = id;
	in->role_arn = id ? identity_role_arn(id) : NULL;
	in->root = strcmp(c->principal.type, "Root") == 0;
	in->action = action;
	in->resource = "*";
	in->via_service = c->authz.via_service;
	in->ec = c->authz.encryption_context;
	in->alg = c->authz.encryption_algorithm;
	in->grant_ops = c->authz.grant_operations;
	in->request_tags = c->authz.request_tags;
	in->request_alias = c->authz.request_alias;
	in->source_ip = c->req ? c->req->source_ip : NULL;
	in->secure = c->req ? c->req->secure : false;
	in->region = c->region[0] ? c->region : NULL;
	in->now = c->now;
}

static K_MUST_CHECK k_status finish(struct api_ctx *c, const struct inputs *in,
				    const struct decision *d)
{
	if (d->v == V_ALLOW) {
		c->authorized = true;
		return K_OK;
	}
	char msg[1024];
	deny_message(in, d, msg, sizeof msg);
	LOG_DEBUG("access denied: %s", msg);
	return api_fail(c, K_E_ACCESS_DENIED, "%s", msg);
}

struct alias_scan {
	const char *key_id;
	json_t *names;
};

static K_MUST_CHECK k_status alias_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				      int64_t version)
{
	struct alias_scan *a = arg;
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	const char *t = json_string_value(json_object_get(j, "TargetKeyId"));
	if (t != NULL && strcmp(t, a->key_id) == 0)
		json_array_append_new(a->names, json_string(id));
	json_decref(j);
	return K_OK;
}

/*
 * kms:ResourceAliases: the key's aliases are read from storage only when
 * a policy that applies to this request has a condition on them, so the
 * common path stays free of storage reads.
 */
static json_t *resource_aliases(const struct kms_key *k, const struct identity *id)
{
	bool needed = policy_uses_key(k->policy, "kms:ResourceAliases");
	for (size_t i = 0; !needed && i < identity_policy_count(id); i++)
		needed = policy_uses_key(identity_policy(id, i), "kms:ResourceAliases");
	if (!needed || kms_store() == NULL)
		return NULL;
	struct alias_scan a = {.key_id = k->id, .names = json_array()};
	if (a.names != NULL && k_failed(storage_list(kms_store(), "alias", k->ns, "alias/", NULL,
						     10000, alias_cb, &a))) {
		json_decref(a.names);
		return NULL;
	}
	return a.names;
}

k_status authz_key_action(struct api_ctx *c, const struct kms_key *k, const char *action)
{
	struct inputs in;
	inputs_from_ctx(c, action, &in);
	in.resource = k->arn;
	in.has_key = true;
	in.key_doc = k->doc;
	in.key = k;
	in.key_policy = k->policy;
	in.key_account = json_string_value(json_object_get(k->doc, "AWSAccountId"));
	json_t *aliases = resource_aliases(k, in.id);
	in.aliases = aliases;
	struct decision d;
	decide(&in, &d);
	json_decref(aliases);
	return finish(c, &in, &d);
}

k_status authz_key(struct api_ctx *c, const struct kms_key *k)
{
	const char *action = c->authz.action ? c->authz.action : c->op ? c->op->action : NULL;
	if (action == NULL)
		return K_OK; /* an internal call outside any operation */
	return authz_key_action(c, k, action);
}

k_status authz_identity(struct api_ctx *c, const char *action, const char *resource)
{
	struct inputs in;
	inputs_from_ctx(c, action, &in);
	in.resource = resource;
	struct decision d;
	decide(&in, &d);
	return finish(c, &in, &d);
}

k_status authz_check_new_key_policy(struct api_ctx *c, const char *text, const struct kms_key *k,
				    bool bypass)
{
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	struct policy *p = NULL;
	k_status rc = policy_parse(kslice_cstr(text), POLICY_RESOURCE, &p, &msg);
	if (k_failed(rc)) {
		rc = api_fail(c, rc, "%s", kbuf_cstr(&msg));
		kbuf_release(&msg);
		return rc;
	}
	kbuf_release(&msg);
	if (bypass) {
		policy_free(p);
		return K_OK;
	}
	struct inputs in;
	inputs_from_ctx(c, "kms:PutKeyPolicy", &in);
	in.has_key = true;
	in.key_policy = p;
	in.key_doc = k ? k->doc : NULL;
	in.key = k;
	in.resource = k ? k->arn : "*";
	in.key_account = k ? json_string_value(json_object_get(k->doc, "AWSAccountId"))
			   : c->principal.account;
	in.ec = NULL;
	in.grant_ops = NULL;
	struct decision d;
	decide(&in, &d);
	policy_free(p);
	if (d.v == V_ALLOW && (d.grant_id == NULL))
		return K_OK;
	return api_fail(
		c, K_E_MALFORMED_POLICY,
		"The new key policy will not allow you to update the key policy in the future.");
}

/* A grant token is base64url of "kgt1" + account(12) + key uuid(36) + grant id(64). */
k_status authz_check_grant_tokens(struct api_ctx *c, const json_t *tokens)
{
	size_t i;
	const json_t *t;
	json_array_foreach(tokens, i, t)
	{
		const char *s = json_string_value(t);
		bool ok = s != NULL && strncmp(s, "a2d0", 4) == 0 && strlen(s) >= 40;
		for (const char *p = s; ok && *p; p++)
			ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '=';
		if (!ok)
			return api_fail(c, K_E_INVALID_GRANT_TOKEN, "Invalid grant token: %.64s",
					s ? s : "");
	}
	return K_OK;
}

/* The simulator's answer: the decision, its reason, and what decided it. */
static void simulate_report(const struct inputs *in, const struct decision *d,
			    const struct identity *identity, json_t *out)
{
	char reason[1024];
	if (d->v == V_ALLOW)
		snprintf(reason, sizeof reason, "%s may perform %s on %s (allowed by the %s)",
			 in->arn, in->action, in->resource, d->by ? d->by : "policy");
	else
		deny_message(in, d, reason, sizeof reason);
	json_object_set_new(out, "Decision",
			    json_string(d->v == V_ALLOW ? "allowed"
					: (d->v == V_DENY_RESOURCE || d->v == V_DENY_IDENTITY)
						? "explicitDeny"
						: "implicitDeny"));
	json_object_set_new(out, "Reason", json_string(reason));
	json_t *det = json_object();
	if (d->by != NULL)
		json_object_set_new(det, "DecidedBy", json_string(d->by));
	if (d->index >= 0) {
		json_object_set_new(det, "StatementIndex", json_integer(d->index));
		json_object_set_new(det, "Sid", json_string(d->sid ? d->sid : ""));
	}
	if (d->grant_id != NULL)
		json_object_set_new(det, "GrantId", json_string(d->grant_id));
	json_object_set_new(det, "Principal", json_string(in->arn));
	if (in->role_arn != NULL)
		json_object_set_new(det, "Role", json_string(in->role_arn));
	json_object_set_new(det, "IdentityPolicies",
			    json_integer((json_int_t)identity_policy_count(identity)));
	json_object_set_new(
		det, "CrossAccount",
		json_boolean(in->key_account != NULL && strcmp(in->key_account, in->account) != 0));
	json_object_set_new(out, "Details", det);
}

json_t *authz_simulate(const char *principal_arn, const struct identity *identity,
		       const json_t *key_doc, const char *action, const json_t *context,
		       const json_t *values)
{
	struct inputs in;
	memset(&in, 0, sizeof in);
	in.arn = principal_arn;
	char account[13] = "";
	struct k_arn pa;
	bool parsed = k_arn_parse_cstr(principal_arn, &pa);
	if (parsed && pa.account.len == K_ARN_ACCOUNT_LEN)
		memcpy(account, pa.account.ptr, K_ARN_ACCOUNT_LEN);
	in.account = account;
	in.id = identity;
	in.role_arn = identity ? identity_role_arn(identity) : NULL;
	char role_buf[256];
	/* arn:aws:sts::A:assumed-role/R/S acts with role arn:aws:iam::A:role/R. */
	if (in.role_arn == NULL && parsed && pa.kind == K_ARN_ASSUMED_ROLE) {
		const uint8_t *slash = memchr(pa.id.ptr, '/', pa.id.len);
		struct k_arn role = k_arn_of("iam", "", account, K_ARN_ROLE, NULL);
		role.id = kslice_make(pa.id.ptr, (size_t)(slash - pa.id.ptr));
		k_arn_format(&role, role_buf, sizeof role_buf);
		in.role_arn = role_buf;
	}
	in.root = parsed && pa.kind == K_ARN_ROOT;
	in.action = action;
	in.key_doc = key_doc;
	in.has_key = key_doc != NULL;
	in.resource = key_doc ? json_string_value(json_object_get(key_doc, "Arn")) : "*";
	if (in.resource == NULL)
		in.resource = "*";
	in.key_account =
		key_doc ? json_string_value(json_object_get(key_doc, "AWSAccountId")) : NULL;
	in.ec = context;
	in.extra = values;
	in.now = (int64_t)time(NULL);
	const json_t *sv = json_object_get(values, "kms:ViaService");
	in.via_service = json_string_value(sv);
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	struct policy *kp = NULL;
	json_t *out = json_object();
	if (key_doc != NULL) {
		const char *text = json_string_value(json_object_get(key_doc, "Policy"));
		if (text != NULL &&
		    k_failed(policy_parse(kslice_cstr(text), POLICY_RESOURCE, &kp, &msg)))
			json_object_set_new(out, "KeyPolicyError", json_string(kbuf_cstr(&msg)));
	}
	in.key_policy = kp;
	struct decision d;
	decide(&in, &d);
	simulate_report(&in, &d, identity, out);
	policy_free(kp);
	kbuf_release(&msg);
	return out;
}
