/*
 * config.c — settings and the identity table (see config.h).
 */
#include "config/config.h"
#include "config/accounts.h"
#include "config/schema.h"
#include "config/functions.h"
#include "config/oidc.h"
#include "config/peers.h"
#include "config/regions.h"
#include "config/xks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "core/clock.h"
#include "core/log.h"
#include "crypto/crypto.h"
#include "keystore/pkcs11.h"
#include "policy/policy.h"
#include "core/arn.h"
#include "core/banned.h"

struct identity {
	char access_key[SIGV4_MAX_ACCESS_KEY + 1];
	struct ksecret *secret;
	char account[13];
	char type[16];	/* "Root" or "IAMUser" */
	char name[128]; /* user name; empty for root */
	char principal_id[96];
	json_t *policies; /* array of policy documents */
	json_t *tags;	  /* users and roles: {"KEY": "VALUE"}, aws:PrincipalTag/KEY */
	/* Authorization: identity policies parsed once at load; roles and sessions. */
	struct policy **parsed;
	size_t n_parsed;
	bool parsed_borrowed;	       /* sessions borrow their role's */
	char role_arn[256];	       /* roles and sessions: arn:aws:iam::A:role/NAME */
	struct policy *trust;	       /* roles: the trust policy */
	int64_t max_session;	       /* roles: MaxSessionDuration seconds */
	char session[96];	       /* sessions: RoleSessionName */
	uint8_t token_hash[32];	       /* sessions: SHA-256 of the session token */
	int64_t expires;	       /* sessions: epoch seconds */
	struct policy *session_policy; /* sessions: the STS session policy, or NULL */
	json_t *principal_tags; /* sessions: [{"TagKey", "TagValue"}] (aws:PrincipalTag/), or NULL */
};

#define MAX_ROLES 1024
static struct identity *roles;
static size_t n_roles;
/*
 * Temporary credentials of AssumeRole sessions: a bounded table under a
 * rwlock. A slot is reused only once its session has been expired for
 * SESSION_REUSE_GRACE seconds, so a request that looked a session up
 * just before it expired never sees the slot change under it.
 */
#define MAX_SESSIONS 4096
#define SESSION_REUSE_GRACE 900
static struct identity *sessions;
static pthread_rwlock_t sessions_lock = PTHREAD_RWLOCK_INITIALIZER;

#define MAX_IDENTITIES 4096
static struct identity *ids; /* sorted by access key after install */
static size_t n_ids;

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	snprintf(cfg->listen_host, sizeof cfg->listen_host, "127.0.0.1");
	cfg->listen_port = 4599;
	snprintf(cfg->data_dir, sizeof cfg->data_dir, "kinko-data");
	cfg->max_connections = 4096;
	cfg->idle_timeout_s = 60;
	cfg->per_ip_connections = 1024;
	cfg->header_timeout_s = 20;
	cfg->body_timeout_s = 60;
}

static int cmp_identity(const void *a, const void *b)
{
	return strcmp(((const struct identity *)a)->access_key,
		      ((const struct identity *)b)->access_key);
}

/*
 * Unique ids such as AIDA... are derived from the account and user name, so
 * that they are stable across restarts.
 */
static void derive_principal_id(struct identity *id)
{
	if (strcmp(id->type, "Root") == 0) {
		snprintf(id->principal_id, sizeof id->principal_id, "%s", id->account);
		return;
	}
	uint8_t md[CRYPTO_SHA256_LEN];
	char in[256];
	int n = snprintf(in, sizeof in, "%s/%s", id->account, id->name);
	size_t len = n < 0 ? 0 : (size_t)n < sizeof in ? (size_t)n : sizeof in - 1;
	if (k_failed(crypto_sha256(in, len, md)))
		memset(md, 0, sizeof md);
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	char out[22] = "AIDA";
	for (int i = 0; i < 17; i++)
		out[4 + i] = al[md[i] & 31];
	out[21] = 0;
	snprintf(id->principal_id, sizeof id->principal_id, "%s", out);
}

/* Authorization: parses an identity's IAM policies once, at load. */
static K_MUST_CHECK k_status parse_identity_policies(struct identity *id, struct kbuf *msg)
{
	size_t n = json_array_size(id->policies);
	if (n == 0)
		return K_OK;
	id->parsed = calloc(n, sizeof *id->parsed);
	ENSURE(id->parsed != NULL, K_E_INTERNAL);
	for (size_t i = 0; i < n; i++) {
		struct kbuf why;
		kbuf_init(&why, KBUF_NOTE_MAX);
		k_status rc = policy_parse_json(json_array_get(id->policies, i), POLICY_IDENTITY,
						&id->parsed[i], &why);
		if (k_failed(rc)) {
			kbuf_note(msg, "policy %zu of %s %s: %s", i + 1, id->account,
				  id->name[0] ? id->name : "root", kbuf_cstr(&why));
			kbuf_release(&why);
			return K_E_VALIDATION;
		}
		kbuf_release(&why);
		id->n_parsed = i + 1;
	}
	return K_OK;
}

static void identity_clear(struct identity *id)
{
	ksecret_free(id->secret);
	id->secret = NULL;
	json_decref(id->policies);
	id->policies = NULL;
	json_decref(id->tags);
	id->tags = NULL;
	if (!id->parsed_borrowed) {
		for (size_t i = 0; i < id->n_parsed; i++)
			policy_free(id->parsed[i]);
		free(id->parsed);
	}
	id->parsed = NULL;
	id->n_parsed = 0;
	policy_free(id->trust);
	id->trust = NULL;
	policy_free(id->session_policy);
	id->session_policy = NULL;
	json_decref(id->principal_tags);
	id->principal_tags = NULL;
}

static K_MUST_CHECK k_status add_identity(const char *account, const char *type, const char *name,
					  const char *ak, const char *sk, json_t *policies,
					  struct kbuf *msg)
{
	if (n_ids >= MAX_IDENTITIES)
		return K_E_LIMIT_EXCEEDED;
	if (ids == NULL) {
		ids = calloc(MAX_IDENTITIES, sizeof *ids);
		if (ids == NULL)
			return K_E_INTERNAL;
	}
	size_t akl = strlen(ak), skl = strlen(sk);
	if (akl == 0 || akl > SIGV4_MAX_ACCESS_KEY || skl == 0 || skl > 256) {
		kbuf_note(msg, "access key or secret of %s has a bad length", account);
		return K_E_VALIDATION;
	}
	for (size_t i = 0; i < n_ids; i++) {
		if (strcmp(ids[i].access_key, ak) == 0) {
			kbuf_note(msg, "access key %s is declared twice", ak);
			return K_E_VALIDATION;
		}
	}
	struct identity *id = &ids[n_ids];
	memset(id, 0, sizeof *id);
	snprintf(id->access_key, sizeof id->access_key, "%s", ak);
	snprintf(id->account, sizeof id->account, "%s", account);
	snprintf(id->type, sizeof id->type, "%s", type);
	snprintf(id->name, sizeof id->name, "%s", name ? name : "");
	id->secret = ksecret_from((const uint8_t *)sk, skl);
	if (id->secret == NULL)
		return K_E_INTERNAL;
	id->policies = policies ? json_incref(policies) : json_array();
	derive_principal_id(id);
	n_ids++;
	GUARD(parse_identity_policies(id, msg));
	qsort(ids, n_ids, sizeof *ids, cmp_identity);
	return K_OK;
}

k_status config_add_dev_identity(struct kbuf *msg)
{
	for (size_t i = 0; i < n_ids; i++) {
		if (strcmp(ids[i].access_key, "test") == 0) {
			kbuf_note(msg,
				  "--dev adds the access key \"test\" (account 000000000000), but "
				  "the "
				  "configuration already gives that access key to %s%s of account "
				  "%s; "
				  "rename it in the file or serve without --dev",
				  strcmp(ids[i].type, "Root") == 0 ? "the root" : "the user ",
				  ids[i].name, ids[i].account);
			return K_E_VALIDATION;
		}
	}
	return add_identity("000000000000", "Root", NULL, "test", "test", NULL, msg);
}

k_status config_install_dev_identity(void)
{
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	k_status rc = config_add_dev_identity(&msg);
	kbuf_release(&msg);
	return rc;
}

static bool valid_account(const char *a)
{
	if (a == NULL || strlen(a) != 12)
		return false;
	for (int i = 0; i < 12; i++) {
		if (a[i] < '0' || a[i] > '9')
			return false;
	}
	return true;
}

static K_MUST_CHECK k_status load_keys(const char *account, const char *type, const char *name,
				       json_t *keys, json_t *policies, struct kbuf *msg)
{
	size_t i;
	json_t *k;
	if (keys == NULL)
		return K_OK;
	if (!json_is_array(keys)) {
		kbuf_note(msg, "access keys of account %s must be a list", account);
		return K_E_VALIDATION;
	}
	json_array_foreach(keys, i, k)
	{
		const char *ak = json_string_value(json_object_get(k, "access_key_id"));
		const char *sk = json_string_value(json_object_get(k, "secret_access_key"));
		if (ak == NULL || sk == NULL) {
			kbuf_note(msg,
				  "an access key of account %s lacks access_key_id or "
				  "secret_access_key",
				  account);
			return K_E_VALIDATION;
		}
		GUARD(add_identity(account, type, name, ak, sk, policies, msg));
	}
	return K_OK;
}

/*
 * Authorization: roles, "roles": [{"name": "app", "trust_policy": {...},
 * "policies": [...], "max_session_duration": 3600}]. A role has no access
 * keys; principals get its rights through STS AssumeRole.
 */
static K_MUST_CHECK k_status load_roles(const char *account, json_t *list, struct kbuf *msg)
{
	size_t i;
	json_t *r;
	if (list == NULL)
		return K_OK;
	if (!json_is_array(list)) {
		kbuf_note(msg, "roles of account %s must be a list", account);
		return K_E_VALIDATION;
	}
	json_array_foreach(list, i, r)
	{
		const char *name = json_string_value(json_object_get(r, "name"));
		if (name == NULL || name[0] == 0 || strlen(name) > 64 ||
		    strchr(name, '/') != NULL) {
			kbuf_note(msg, "a role of account %s lacks a valid name", account);
			return K_E_VALIDATION;
		}
		json_t *pol = json_object_get(r, "policies");
		json_t *trust = json_object_get(r, "trust_policy");
		if ((pol != NULL && !json_is_array(pol)) || !json_is_object(trust)) {
			kbuf_note(msg,
				  "role %s needs a \"trust_policy\" object and a \"policies\" list",
				  name);
			return K_E_VALIDATION;
		}
		if (n_roles >= MAX_ROLES)
			return K_E_LIMIT_EXCEEDED;
		if (roles == NULL) {
			roles = calloc(MAX_ROLES, sizeof *roles);
			ENSURE(roles != NULL, K_E_INTERNAL);
		}
		struct identity *id = &roles[n_roles];
		memset(id, 0, sizeof *id);
		snprintf(id->account, sizeof id->account, "%s", account);
		snprintf(id->type, sizeof id->type, "%s", "Role");
		snprintf(id->name, sizeof id->name, "%s", name);
		struct k_arn role = k_arn_of("iam", "", account, K_ARN_ROLE, name);
		k_arn_format(&role, id->role_arn, sizeof id->role_arn);
		for (size_t j = 0; j < n_roles; j++) {
			if (strcmp(roles[j].role_arn, id->role_arn) == 0) {
				kbuf_note(msg, "role %s is declared twice", id->role_arn);
				return K_E_VALIDATION;
			}
		}
		json_t *msd = json_object_get(r, "max_session_duration");
		id->max_session = json_is_integer(msd) ? json_integer_value(msd) : 3600;
		if (id->max_session < 900 || id->max_session > 43200) {
			kbuf_note(msg, "role %s: max_session_duration must be 900..43200", name);
			return K_E_VALIDATION;
		}
		id->policies = pol ? json_incref(pol) : json_array();
		id->tags = json_incref(json_object_get(r, "tags"));
		n_roles++;
		struct kbuf why;
		kbuf_init(&why, KBUF_NOTE_MAX);
		k_status rc = policy_parse_json(trust, POLICY_TRUST, &id->trust, &why);
		if (k_failed(rc))
			kbuf_note(msg, "trust policy of role %s: %s", name, kbuf_cstr(&why));
		kbuf_release(&why);
		if (k_failed(rc))
			return K_E_VALIDATION;
		GUARD(parse_identity_policies(id, msg));
		/* AROA... unique ids, as for users. */
		derive_principal_id(id);
		id->principal_id[1] = 'R';
		id->principal_id[2] = 'O';
		id->principal_id[3] = 'A';
	}
	return K_OK;
}

/* A user's "tags" (checked by config_schema_check) on each of its access keys' identities. */
static void set_user_tags(const char *account, const char *name, json_t *tags)
{
	for (size_t i = 0; tags != NULL && i < n_ids; i++) {
		if (strcmp(ids[i].type, "IAMUser") == 0 && strcmp(ids[i].account, account) == 0 &&
		    strcmp(ids[i].name, name) == 0)
			ids[i].tags = json_incref(tags);
	}
}

k_status config_load_accounts(json_t *accounts, struct kbuf *msg)
{
	size_t i, j;
	json_t *acct, *user;
	if (accounts == NULL)
		return K_OK;
	if (!json_is_array(accounts)) {
		kbuf_note(msg, "%s", "\"accounts\" must be a list");
		return K_E_VALIDATION;
	}
	json_array_foreach(accounts, i, acct)
	{
		const char *id = json_string_value(json_object_get(acct, "id"));
		if (!valid_account(id)) {
			kbuf_note(msg, "%s", "each account needs a 12-digit \"id\"");
			return K_E_VALIDATION;
		}
		GUARD(load_keys(id, "Root", NULL, json_object_get(acct, "root_access_keys"), NULL,
				msg));
		json_t *users = json_object_get(acct, "users");
		if (users != NULL && !json_is_array(users)) {
			kbuf_note(msg, "users of account %s must be a list", id);
			return K_E_VALIDATION;
		}
		json_array_foreach(users, j, user)
		{
			const char *name = json_string_value(json_object_get(user, "name"));
			if (name == NULL || name[0] == 0 || strlen(name) > 64) {
				kbuf_note(msg, "a user of account %s lacks a valid name", id);
				return K_E_VALIDATION;
			}
			json_t *pol = json_object_get(user, "policies");
			if (pol != NULL && !json_is_array(pol)) {
				kbuf_note(msg, "policies of user %s must be a list", name);
				return K_E_VALIDATION;
			}
			GUARD(load_keys(id, "IAMUser", name, json_object_get(user, "access_keys"),
					pol, msg));
			set_user_tags(id, name, json_object_get(user, "tags"));
		}
		GUARD(load_roles(id, json_object_get(acct, "roles"), msg));
	}
	return K_OK;
}

void config_release(void)
{
	config_functions_release();
	config_oidc_release();
	config_xks_release();
	config_peers_release();
	config_regions_release();
	keystore_p11_release_all();
	for (size_t i = 0; i < n_ids; i++)
		identity_clear(&ids[i]);
	free(ids);
	ids = NULL;
	n_ids = 0;
	pthread_rwlock_wrlock(&sessions_lock);
	for (size_t i = 0; sessions != NULL && i < MAX_SESSIONS; i++)
		identity_clear(&sessions[i]);
	free(sessions);
	sessions = NULL;
	pthread_rwlock_unlock(&sessions_lock);
	for (size_t i = 0; i < n_roles; i++)
		identity_clear(&roles[i]);
	free(roles);
	roles = NULL;
	n_roles = 0;
}

static config_session_loader session_loader;

void config_set_session_loader(config_session_loader fn)
{
	session_loader = fn;
}

/*
 * Authorization: the session whose access key this is, checked against
 * its token (by SHA-256, compared in constant time). *known says whether
 * the access key is in the table at all.
 */
static K_MUST_CHECK k_status find_session(const char *access_key, const uint8_t token_hash[32],
					  bool *known, const struct identity **out)
{
	k_status rc = K_E_UNRECOGNIZED_CLIENT;
	*known = false;
	pthread_rwlock_rdlock(&sessions_lock);
	for (size_t i = 0; sessions != NULL && i < MAX_SESSIONS; i++) {
		const struct identity *s = &sessions[i];
		if (s->access_key[0] == 0 || strcmp(s->access_key, access_key) != 0)
			continue;
		*known = true;
		if (token_hash == NULL || !crypto_memeq(token_hash, s->token_hash, 32))
			break;
		if (kclock_now() >= s->expires) {
			rc = K_E_EXPIRED_TOKEN;
			break;
		}
		*out = s;
		rc = K_OK;
		break;
	}
	pthread_rwlock_unlock(&sessions_lock);
	return rc;
}

/*
 * A session this node does not hold may have been made by another node
 * sharing the store: the loader (sts/sts.c) installs it from there, once.
 */
static K_MUST_CHECK k_status lookup_session(const char *access_key, const struct kslice *token,
					    const struct identity **out)
{
	uint8_t th[32];
	bool have_token =
		token != NULL && token->len > 0 && k_ok(crypto_sha256(token->ptr, token->len, th));
	bool known = false;
	k_status rc = find_session(access_key, have_token ? th : NULL, &known, out);
	if (!known && have_token && session_loader != NULL && strncmp(access_key, "ASIA", 4) == 0 &&
	    k_ok(session_loader(access_key)))
		rc = find_session(access_key, th, &known, out);
	crypto_wipe(th, sizeof th);
	return rc;
}

k_status config_lookup_access_key(const char *access_key, const struct kslice *token,
				  const struct identity **out)
{
	struct identity key;
	snprintf(key.access_key, sizeof key.access_key, "%s", access_key);
	const struct identity *id =
		ids ? bsearch(&key, ids, n_ids, sizeof *ids, cmp_identity) : NULL;
	if (id == NULL)
		return lookup_session(access_key, token, out);
	/* Long-term keys carry no session token; a token with one is not ours. */
	if (token != NULL && token->len > 0)
		return K_E_UNRECOGNIZED_CLIENT;
	*out = id;
	return K_OK;
}

/* The account of a session access key in the table (loaded from the store if need be). */
static bool session_account(const char *access_key, char out[13])
{
	bool found = false;
	for (int pass = 0; pass < 2 && !found; pass++) {
		pthread_rwlock_rdlock(&sessions_lock);
		for (size_t i = 0; sessions != NULL && i < MAX_SESSIONS && !found; i++) {
			found = strcmp(sessions[i].access_key, access_key) == 0;
			if (found)
				snprintf(out, 13, "%s", sessions[i].account);
		}
		pthread_rwlock_unlock(&sessions_lock);
		if (found || session_loader == NULL || strncmp(access_key, "ASIA", 4) != 0 ||
		    k_failed(session_loader(access_key)))
			break;
	}
	return found;
}

bool config_access_key_account(const char *access_key, char out[13])
{
	struct identity key;
	snprintf(key.access_key, sizeof key.access_key, "%s", access_key);
	const struct identity *id =
		ids ? bsearch(&key, ids, n_ids, sizeof *ids, cmp_identity) : NULL;
	if (id != NULL) {
		snprintf(out, 13, "%s", id->account);
		return true;
	}
	return session_account(access_key, out);
}

const struct ksecret *identity_secret(const struct identity *id)
{
	return id->secret;
}

void identity_principal(const struct identity *id, const char *access_key, struct principal *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->account, sizeof out->account, "%s", id->account);
	snprintf(out->type, sizeof out->type, "%s", id->type);
	snprintf(out->principal_id, sizeof out->principal_id, "%s", id->principal_id);
	snprintf(out->access_key, sizeof out->access_key, "%s", access_key);
	char session[160];
	struct k_arn a = k_arn_of("iam", "", id->account, K_ARN_USER, id->name);
	if (strcmp(id->type, "Root") == 0) {
		a.kind = K_ARN_ROOT;
	} else if (strcmp(id->type, "AssumedRole") == 0) {
		snprintf(session, sizeof session, "%.64s/%.64s", id->name, id->session);
		a = k_arn_of("sts", "", id->account, K_ARN_ASSUMED_ROLE, session);
	} else if (strcmp(id->type, "FederatedUser") == 0) {
		snprintf(session, sizeof session, "federated-user/%.64s", id->session);
		a = k_arn_of("sts", "", id->account, K_ARN_OTHER, session);
	}
	k_arn_format(&a, out->arn, sizeof out->arn);
	out->identity = id;
}

const json_t *identity_policies(const struct identity *id)
{
	return id->policies;
}

/* ---- Authorization: parsed identity policies, roles and STS sessions ---- */

size_t identity_policy_count(const struct identity *id)
{
	return id ? id->n_parsed : 0;
}

const struct policy *identity_policy(const struct identity *id, size_t i)
{
	return id && i < id->n_parsed ? id->parsed[i] : NULL;
}

const char *identity_role_arn(const struct identity *id)
{
	return id && id->role_arn[0] && strcmp(id->type, "AssumedRole") == 0 ? id->role_arn : NULL;
}

const char *identity_type(const struct identity *id)
{
	return id->type;
}

/*
 * The principal's condition keys (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html):
 * aws:username ("This key is included in the request context for IAM
 * users" only), aws:userid (the account id for the root, AIDA... for a
 * user, "AROA...:SESSION" for a role session), aws:PrincipalType
 * (Account, User, AssumedRole) and aws:PrincipalTag/KEY (a user's or a
 * session's role's "tags"). Values are borrowed from the identity table.
 */
void identity_policy_context(const struct identity *id, struct policy_req *r)
{
	if (id == NULL)
		return;
	bool user = strcmp(id->type, "IAMUser") == 0;
	bool session = strcmp(id->type, "AssumedRole") == 0;
	policy_req_add_str(r, "aws:username", user ? id->name : NULL);
	policy_req_add_str(r, "aws:userid", id->principal_id);
	policy_req_add_str(r, "aws:PrincipalType",
			   user				   ? "User"
			   : session			   ? "AssumedRole"
			   : strcmp(id->type, "Root") == 0 ? "Account"
							   : NULL);
	const struct identity *role = session ? config_find_role(id->role_arn) : NULL;
	const json_t *tags = role != NULL ? role->tags : id->tags;
	if (json_is_object(tags))
		policy_req_add(r, (struct policy_value){.key = "aws:PrincipalTag/",
							.kind = PV_MAP,
							.json = tags});
}

const struct identity *config_find_role(const char *role_arn)
{
	for (size_t i = 0; i < n_roles; i++) {
		if (strcmp(roles[i].role_arn, role_arn) == 0)
			return &roles[i];
	}
	return NULL;
}

const struct policy *role_trust_policy(const struct identity *role)
{
	return role->trust;
}

int64_t role_max_session(const struct identity *role)
{
	return role->max_session;
}

const char *identity_unique_id(const struct identity *id)
{
	return id->principal_id;
}

static void random_chars(char *out, size_t n, const char *alphabet, size_t alen)
{
	uint8_t b[128];
	if (n > sizeof b || k_failed(crypto_random(b, n)))
		memset(b, 0, sizeof b);
	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[b[i] % alen];
	out[n] = 0;
	crypto_wipe(b, sizeof b);
}

k_status config_new_session(const struct identity *role, const char *session_name, int64_t expires,
			    const char *policy, json_t *tags, struct config_session *out)
{
	static const char upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	memset(out, 0, sizeof *out);
	snprintf(out->access_key, sizeof out->access_key, "ASIA");
	random_chars(out->access_key + 4, 16, upper, 32);
	random_chars(out->secret, 40, b64, 64);
	snprintf(out->token, sizeof out->token, "IQoJb3JpZ2luX2Vj");
	random_chars(out->token + 16, 128, b64, 64);
	k_status rc = crypto_sha256(out->token, strlen(out->token), out->token_hash);
	struct ksecret *secret =
		k_ok(rc) ? ksecret_from((const uint8_t *)out->secret, strlen(out->secret)) : NULL;
	if (secret != NULL)
		rc = config_install_session(role, session_name, out->access_key, out->token_hash,
					    expires, secret, policy, tags);
	else if (k_ok(rc))
		rc = K_E_INTERNAL;
	if (k_failed(rc))
		crypto_wipe(out, sizeof *out);
	return rc;
}

k_status config_install_session(const struct identity *role, const char *session_name,
				const char *access_key, const uint8_t token_hash[32],
				int64_t expires, struct ksecret *secret, const char *policy,
				json_t *tags)
{
	/* The session policy is parsed first: a session never exists without it. */
	struct policy *sp = NULL;
	struct kbuf why;
	kbuf_init(&why, KBUF_NOTE_MAX);
	k_status prc =
		policy ? policy_parse(kslice_cstr(policy), POLICY_IDENTITY, &sp, &why) : K_OK;
	kbuf_release(&why);
	if (k_failed(prc) || strlen(access_key) > SIGV4_MAX_ACCESS_KEY) {
		ksecret_free(secret);
		return k_failed(prc) ? prc : K_E_VALIDATION;
	}
	int64_t now = kclock_now();
	k_status rc = K_E_LIMIT_EXCEEDED;
	pthread_rwlock_wrlock(&sessions_lock);
	if (sessions == NULL)
		sessions = calloc(MAX_SESSIONS, sizeof *sessions);
	for (size_t i = 0; sessions != NULL && i < MAX_SESSIONS; i++) {
		struct identity *s = &sessions[i];
		if (s->access_key[0] != 0 && now < s->expires + SESSION_REUSE_GRACE)
			continue;
		identity_clear(s);
		memset(s, 0, sizeof *s);
		s->secret = secret;
		secret = NULL;
		snprintf(s->access_key, sizeof s->access_key, "%s", access_key);
		/*
		 * A role's session is its assumed role; a user's is the user
		 * (GetSessionToken) or, named, a federated user (GetFederationToken).
		 */
		bool as_role = strcmp(role->type, "Role") == 0;
		bool federated = !as_role && session_name[0] != 0;
		snprintf(s->account, sizeof s->account, "%s", role->account);
		snprintf(s->type, sizeof s->type, "%s",
			 as_role     ? "AssumedRole"
			 : federated ? "FederatedUser"
				     : role->type);
		snprintf(s->name, sizeof s->name, "%s", role->name);
		snprintf(s->role_arn, sizeof s->role_arn, "%s", role->role_arn);
		snprintf(s->session, sizeof s->session, "%s", session_name);
		memcpy(s->token_hash, token_hash, sizeof s->token_hash);
		if (as_role)
			snprintf(s->principal_id, sizeof s->principal_id, "%.21s:%.64s",
				 role->principal_id, session_name);
		else if (federated)
			snprintf(s->principal_id, sizeof s->principal_id, "%s:%.32s", role->account,
				 session_name);
		else
			snprintf(s->principal_id, sizeof s->principal_id, "%s", role->principal_id);
		s->policies = json_incref(role->policies);
		s->parsed = role->parsed;
		s->n_parsed = role->n_parsed;
		s->parsed_borrowed = true;
		s->expires = expires;
		s->session_policy = sp;
		sp = NULL;
		s->principal_tags = json_array_size(tags) > 0 ? json_incref(tags) : NULL;
		rc = K_OK;
		break;
	}
	pthread_rwlock_unlock(&sessions_lock);
	ksecret_free(secret); /* NULL once installed */
	policy_free(sp);
	return rc;
}

void identity_add_principal_tags(const struct identity *id, struct policy_req *req)
{
	if (id != NULL && id->principal_tags != NULL)
		(void)policy_req_add(req, (struct policy_value){.key = "aws:PrincipalTag/",
								.kind = PV_TAGS,
								.json = id->principal_tags});
}

const json_t *identity_session_tags(const struct identity *id)
{
	return id ? id->principal_tags : NULL;
}

const struct policy *identity_session_policy(const struct identity *id)
{
	return id ? id->session_policy : NULL;
}

/* The simulator: the configured identity behind a principal ARN. */
const struct identity *config_find_principal(const char *arn)
{
	char buf[256];
	for (size_t i = 0; i < n_ids; i++) {
		char name[129];
		snprintf(name, sizeof name, "%.128s", ids[i].name);
		struct k_arn a = k_arn_of("iam", "", ids[i].account, K_ARN_USER, name);
		if (strcmp(ids[i].type, "Root") == 0)
			a.kind = K_ARN_ROOT;
		k_arn_format(&a, buf, sizeof buf);
		if (strcmp(buf, arn) == 0)
			return &ids[i];
	}
	/* arn:aws:sts::A:assumed-role/R/S acts with the role's policies. */
	struct k_arn p;
	if (k_arn_parse_cstr(arn, &p) && k_arn_is(&p, "sts", K_ARN_ASSUMED_ROLE) &&
	    kslice_eq_cstr(p.partition, "aws") && p.region.len == 0 &&
	    p.account.len == K_ARN_ACCOUNT_LEN) {
		const uint8_t *slash = memchr(p.id.ptr, '/', p.id.len);
		struct k_arn role = k_arn_of("iam", "", NULL, K_ARN_ROLE, NULL);
		role.account = p.account;
		role.id = kslice_make(p.id.ptr, (size_t)(slash - p.id.ptr));
		k_arn_format(&role, buf, sizeof buf);
		return config_find_role(buf);
	}
	return config_find_role(arn);
}
