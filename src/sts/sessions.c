/*
 * sessions.c — AssumeRole sessions kept in the store, so that every node
 * sharing the store and the root key accepts them (see sts.h).
 */
#include "sts/sts.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/json.h"
#include "core/log.h"
#include "core/secret.h"
#include "keystore/keystore.h"
#include "scheduler/scheduler.h"
#include "core/banned.h"

/* A session's secret wrapped under the root key, and its base64 in the record. */
#define STS_SESSION_WRAPPED_MAX 4096u
#define STS_SESSION_B64_MAX (2u * STS_SESSION_WRAPPED_MAX)
/* The session token's SHA-256 in hex, with room to spare. */
#define STS_TOKEN_HASH_HEX_MAX 128u

static struct storage *store;

/* The wrapped secret is bound to its access key: a record moved to another id does not unwrap. */
static struct kslice session_aad(const char *access_key)
{
	return kslice_cstr(access_key);
}

/*
 * The record of one session: the role and session name it acts as, its
 * expiry, the SHA-256 of its token and its secret access key wrapped
 * under the root key. Written with a due record that removes it
 * STS_SESSION_KEEP_S after it expires, in one apply.
 */
static K_MUST_CHECK k_status build_record(const char *role_arn, const char *session_name,
					  const struct config_session *cs, int64_t expires,
					  const char *session_policy, const json_t *tags,
					  char **text)
{
	*text = NULL;
	struct ksecret *secret = ksecret_from((const uint8_t *)cs->secret, strlen(cs->secret));
	ENSURE(secret != NULL, K_E_INTERNAL);
	struct kbuf wrapped, b64, th;
	kbuf_init(&wrapped, STS_SESSION_WRAPPED_MAX);
	kbuf_init(&b64, STS_SESSION_B64_MAX);
	kbuf_init(&th, STS_TOKEN_HASH_HEX_MAX);
	k_status rc = keystore_wrap(session_aad(cs->access_key), secret, &wrapped);
	ksecret_free(secret);
	GUARD_GOTO(rc);
	GUARD_GOTO(kbuf_append_base64(&b64, wrapped.ptr, wrapped.len));
	GUARD_GOTO(kbuf_append_base64(&th, cs->token_hash, sizeof cs->token_hash));
	json_t *d = json_pack("{s:s, s:s, s:I, s:s%, s:s%}", "RoleArn", role_arn, "RoleSessionName",
			      session_name, "Expires", (json_int_t)expires, "TokenSha256",
			      (const char *)th.ptr, th.len, "WrappedSecret", (const char *)b64.ptr,
			      b64.len);
	ENSURE_GOTO(d != NULL, K_E_INTERNAL);
	if (session_policy != NULL)
		json_object_set_new(d, "Policy", json_string(session_policy));
	if (tags != NULL)
		json_object_set(d, "Tags", (json_t *)tags);
	*text = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	ENSURE_GOTO(*text != NULL, K_E_INTERNAL);
out:
	kbuf_release(&wrapped);
	kbuf_release(&b64);
	kbuf_release(&th);
	return rc;
}

k_status sts_session_save(const char *role_arn, const char *session_name,
			  const struct config_session *cs, int64_t expires,
			  const char *session_policy, const json_t *tags)
{
	ENSURE(store != NULL, K_E_INTERNAL);
	char *text = NULL;
	GUARD(build_record(role_arn, session_name, cs, expires, session_policy, tags, &text));
	char due_id[SCHEDULER_DUE_ID_MAX];
	k_status rc = scheduler_due_id(expires + STS_SESSION_KEEP_S, STS_EXPIRE_TASK, "",
				       cs->access_key, due_id, sizeof due_id);
	if (k_ok(rc)) {
		struct storage_op ops[2] = {
			{.op = STORAGE_PUT,
			 .kind = STS_SESSION_KIND,
			 .ns = "",
			 .id = cs->access_key,
			 .doc = kslice_cstr(text),
			 .expect = STORAGE_ABSENT},
		};
		scheduler_due_put_op(&ops[1], due_id);
		rc = storage_apply(store, ops, 2);
	}
	kjson_free(text);
	return rc;
}

/*
 * The session loader (config_set_session_loader): a session this node
 * does not hold, read from the store, unwrapped and installed. It acts as
 * this node's own configuration of the role says (the nodes of a cluster
 * share one configuration); a role this node does not know refuses it.
 */
static K_MUST_CHECK k_status load_session(const char *access_key)
{
	ENSURE(store != NULL, K_E_NOT_FOUND);
	struct kbuf doc, wrapped, th;
	kbuf_init(&doc, STORAGE_MAX_DOC);
	kbuf_init(&wrapped, STS_SESSION_WRAPPED_MAX);
	kbuf_init(&th, STS_TOKEN_HASH_HEX_MAX);
	json_t *j = NULL;
	struct ksecret *secret = NULL;
	k_status rc = storage_get(store, STS_SESSION_KIND, "", access_key, &doc, NULL);
	GUARD_GOTO(rc);
	j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	const char *role_arn = json_string_value(json_object_get(j, "RoleArn"));
	const char *name = json_string_value(json_object_get(j, "RoleSessionName"));
	json_t *exp = json_object_get(j, "Expires");
	json_t *tj = json_object_get(j, "TokenSha256");
	json_t *wj = json_object_get(j, "WrappedSecret");
	ENSURE_GOTO(role_arn != NULL && name != NULL && json_is_integer(exp) &&
			    json_is_string(tj) && json_is_string(wj),
		    K_E_INTERNAL);
	/* A role's session names the role; a GetSessionToken session its user (or root). */
	const struct identity *role = config_find_principal(role_arn);
	if (role == NULL) {
		LOG_WARN("sts: session %s names the role %s, which this node's configuration lacks",
			 access_key, role_arn);
		rc = K_E_NOT_FOUND;
		goto out;
	}
	GUARD_GOTO(kbuf_decode_base64(&th,
				      kslice_make(json_string_value(tj), json_string_length(tj))));
	ENSURE_GOTO(th.len == 32, K_E_INTERNAL);
	GUARD_GOTO(kbuf_decode_base64(&wrapped,
				      kslice_make(json_string_value(wj), json_string_length(wj))));
	GUARD_GOTO(keystore_unwrap(session_aad(access_key), kbuf_slice(&wrapped), &secret));
	/* With its session policy and tags at once: a session never exists without them. */
	rc = config_install_session(role, name, access_key, th.ptr, json_integer_value(exp), secret,
				    json_string_value(json_object_get(j, "Policy")),
				    json_object_get(j, "Tags"));
	secret = NULL; /* the table took it */
out:
	if (k_failed(rc) && !k_is(rc, K_E_NOT_FOUND))
		LOG_WARN("sts: cannot load session %s from the store: %s", access_key,
			 k_status_name(rc));
	ksecret_free(secret);
	json_decref(j);
	kbuf_release(&doc);
	kbuf_release(&wrapped);
	kbuf_release(&th);
	return rc;
}

/* The scheduled removal of a session record some time after it expired. */
static K_MUST_CHECK k_status expire_one(void *arg, int64_t when, const char *ns, const char *id,
					const char *due_id)
{
	(void)arg;
	(void)when;
	(void)ns;
	struct storage_op ops[2] = {
		{.op = STORAGE_DEL,
		 .kind = STS_SESSION_KIND,
		 .ns = "",
		 .id = id,
		 .expect = STORAGE_ANY},
	};
	scheduler_due_del_op(&ops[1], due_id);
	return storage_apply(store, ops, 2);
}

static K_MUST_CHECK k_status run_due_expiry(int64_t now)
{
	return scheduler_due_list(STS_EXPIRE_TASK, now, expire_one, NULL);
}

k_status sts_init(struct storage *st)
{
	ENSURE(st != NULL, K_E_VALIDATION);
	store = st;
	config_set_session_loader(load_session);
	return scheduler_register("sts.expire", run_due_expiry);
}
