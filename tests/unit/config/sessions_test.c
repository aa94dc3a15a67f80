/*
 * sessions_test.c — roles and the STS session table of config/: a session
 * is found by its access key only with its exact token, expires on the
 * (test) clock, and has its role's parsed identity policies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/json.h"
#include "testlib.h"

static const char cfg_text[] =
	"{\"accounts\":[{\"id\":\"111122223333\","
	"\"users\":[{\"name\":\"alice\",\"access_keys\":[{\"access_key_id\":\"AKIAALICE\",\"secret_"
	"access_key\":\"s\"}],"
	"\"policies\":[{\"Version\":\"2012-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":"
	"\"sts:AssumeRole\",\"Resource\":\"*\"}}]}],"
	"\"roles\":[{\"name\":\"app\",\"trust_policy\":{\"Statement\":{\"Effect\":\"Allow\","
	"\"Principal\":{\"AWS\":\"111122223333\"},\"Action\":\"sts:AssumeRole\"}},"
	"\"policies\":[{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"kms:*\",\"Resource\":\"*"
	"\"}},"
	"{\"Statement\":{\"Effect\":\"Deny\",\"Action\":\"kms:Decrypt\",\"Resource\":\"*\"}}]}]}]}";

static const char bad_role[] =
	"{\"accounts\":[{\"id\":\"111122223333\",\"roles\":[{\"name\":\"x\",\"trust_policy\":"
	"{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"sts:AssumeRole\"}}}]}]}";

static const char bad_identity_policy[] =
	"{\"accounts\":[{\"id\":\"111122223333\",\"users\":[{\"name\":\"bob\",\"access_keys\":"
	"[{\"access_key_id\":\"AKIABOB\",\"secret_access_key\":\"s\"}],\"policies\":[{"
	"\"Statement\":"
	"{\"Effect\":\"Allow\",\"Action\":\"kms:*\",\"Resource\":\"*\",\"Condition\":{\"Bogus\":{"
	"\"a\":\"b\"}}}}]}]}]}";

static char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/kinko-cfgtest-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? path : NULL;
}

static K_MUST_CHECK k_status load(const char *text, struct kbuf *msg)
{
	struct config cfg;
	config_defaults(&cfg);
	char *path = write_tmp(text);
	if (path == NULL)
		return K_E_INTERNAL;
	k_status rc = config_load_file(&cfg, path, msg);
	unlink(path);
	return rc;
}

static void test_sessions(void)
{
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	CHECK(k_ok(load(cfg_text, &msg)));
	const struct identity *role = config_find_role("arn:aws:iam::111122223333:role/app");
	CHECK(role != NULL);
	CHECK(config_find_role("arn:aws:iam::111122223333:role/none") == NULL);
	CHECK_EQ_INT(identity_policy_count(role), 2);
	CHECK(role_trust_policy(role) != NULL);
	CHECK_EQ_INT(role_max_session(role), 3600);
	CHECK(strncmp(identity_unique_id(role), "AROA", 4) == 0);

	const struct identity *alice = NULL;
	struct kslice none = {0};
	CHECK(k_ok(config_lookup_access_key("AKIAALICE", &none, &alice)));
	CHECK_EQ_INT(identity_policy_count(alice), 1);
	CHECK(identity_role_arn(alice) == NULL);
	CHECK(config_find_principal("arn:aws:iam::111122223333:user/alice") == alice);

	struct config_session cs;
	CHECK(k_ok(config_new_session(role, "job-1", kclock_now() + 900, NULL, NULL, &cs)));
	CHECK(strncmp(cs.access_key, "ASIA", 4) == 0 && strlen(cs.access_key) == 20);
	CHECK(strlen(cs.secret) == 40 && strlen(cs.token) > 100);

	const struct identity *s = NULL;
	struct kslice tok = kslice_cstr(cs.token);
	CHECK(k_ok(config_lookup_access_key(cs.access_key, &tok, &s)));
	CHECK(s != NULL);
	CHECK_STR(identity_type(s), "AssumedRole");
	CHECK_STR(identity_role_arn(s), "arn:aws:iam::111122223333:role/app");
	CHECK_EQ_INT(identity_policy_count(s), 2);
	CHECK(identity_policy(s, 0) == identity_policy(role, 0));
	struct principal p;
	identity_principal(s, cs.access_key, &p);
	CHECK_STR(p.arn, "arn:aws:sts::111122223333:assumed-role/app/job-1");
	CHECK(strstr(p.principal_id, ":job-1") != NULL);
	CHECK(config_find_principal(p.arn) == role);
	CHECK(identity_session_policy(s) == NULL && identity_session_tags(s) == NULL);

	/* A session policy that does not parse makes no session; one that does is kept. */
	struct config_session sp;
	CHECK(k_is(
		config_new_session(role, "bad-policy", kclock_now() + 900, "{not json", NULL, &sp),
		K_E_MALFORMED_POLICY));
	json_t *tags = json_pack("[{s:s, s:s}]", "TagKey", "Project", "TagValue", "blue");
	CHECK(k_ok(config_new_session(role, "scoped", kclock_now() + 900,
				      "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":"
				      "\"Allow\",\"Action\":\"kms:Encrypt\",\"Resource\":\"*\"}]}",
				      tags, &sp)));
	json_decref(tags);
	const struct identity *scoped = NULL;
	struct kslice stok = kslice_cstr(sp.token);
	CHECK(k_ok(config_lookup_access_key(sp.access_key, &stok, &scoped)));
	CHECK(identity_session_policy(scoped) != NULL);
	CHECK_EQ_INT(json_array_size(identity_session_tags(scoped)), 1);
	/* A user's session (GetSessionToken) is the user; a named one a federated user. */
	struct config_session us;
	CHECK(k_ok(config_new_session(alice, "", kclock_now() + 900, NULL, NULL, &us)));
	const struct identity *as = NULL;
	struct kslice utok = kslice_cstr(us.token);
	CHECK(k_ok(config_lookup_access_key(us.access_key, &utok, &as)));
	identity_principal(as, us.access_key, &p);
	CHECK_STR(p.arn, "arn:aws:iam::111122223333:user/alice");
	CHECK(k_ok(config_new_session(alice, "bob", kclock_now() + 900, NULL, NULL, &us)));
	utok = kslice_cstr(us.token);
	CHECK(k_ok(config_lookup_access_key(us.access_key, &utok, &as)));
	identity_principal(as, us.access_key, &p);
	CHECK_STR(p.arn, "arn:aws:sts::111122223333:federated-user/bob");

	/* The token must match exactly. */
	char wrong[sizeof cs.token];
	snprintf(wrong, sizeof wrong, "%s", cs.token);
	wrong[20] = wrong[20] == 'A' ? 'B' : 'A';
	struct kslice wt = kslice_cstr(wrong);
	CHECK(k_is(config_lookup_access_key(cs.access_key, &wt, &s), K_E_UNRECOGNIZED_CLIENT));
	CHECK(k_is(config_lookup_access_key(cs.access_key, &none, &s), K_E_UNRECOGNIZED_CLIENT));
	struct kslice shorter = kslice_make(cs.token, strlen(cs.token) - 1);
	CHECK(k_is(config_lookup_access_key(cs.access_key, &shorter, &s), K_E_UNRECOGNIZED_CLIENT));
	/* A long-term key with a token is not ours either. */
	CHECK(k_is(config_lookup_access_key("AKIAALICE", &tok, &alice), K_E_UNRECOGNIZED_CLIENT));

	/* Expiry on the test clock. */
	kclock_enable_test_mode();
	CHECK(k_ok(kclock_advance(901)));
	CHECK(k_is(config_lookup_access_key(cs.access_key, &tok, &s), K_E_EXPIRED_TOKEN));

	/* Many sessions: the table is bounded but reuses long-expired slots. */
	k_status last = K_OK;
	for (int i = 0; i < 5000 && k_ok(last); i++) {
		struct config_session t;
		last = config_new_session(role, "many", kclock_now() + 900, NULL, NULL, &t);
	}
	CHECK(k_is(last, K_E_LIMIT_EXCEEDED));
	CHECK(k_ok(kclock_advance(3600)));
	struct config_session again;
	CHECK(k_ok(config_new_session(role, "later", kclock_now() + 900, NULL, NULL, &again)));
	config_release();
	kbuf_release(&msg);
}

static void test_bad_config(void)
{
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	CHECK(k_is(load(bad_role, &msg), K_E_VALIDATION));
	CHECK(strstr(kbuf_cstr(&msg), "trust policy of role x") != NULL);
	config_release();
	kbuf_reset(&msg);
	CHECK(k_is(load(bad_identity_policy, &msg), K_E_VALIDATION));
	CHECK(strstr(kbuf_cstr(&msg), "Bogus") != NULL);
	config_release();
	kbuf_release(&msg);
}

int main(void)
{
	kjson_init();
	RUN(test_sessions);
	RUN(test_bad_config);
	return tl_summary();
}
