/*
 * record_test.c — the parts of a secret's document that need no store:
 * staging labels (add, remove, owner, and the moves of PutSecretValue and
 * UpdateSecretVersionStage, where AWSCURRENT leaves AWSPREVIOUS behind),
 * whether a secret has a value, its primary Region, its dates (integer
 * seconds from older documents, milliseconds as reals from newer ones),
 * ARN suffixes and version ids.
 */
#include <stdio.h>
#include <string.h>

#include "req/req.h"
#include "secrets/internal.h"
#include "testlib.h"
#include "core/banned.h"

static void secret_init(struct sm_secret *s, const char *json)
{
	memset(s, 0, sizeof *s);
	s->doc = json_loads(json, 0, NULL);
	CHECK(s->doc != NULL);
}

/* The labels of version vid as "A,B" (in stored order), "-" when the version does not exist. */
static const char *labels(struct sm_secret *s, const char *vid)
{
	static char out[256];
	json_t *v = json_object_get(sm_versions(s), vid);
	if (v == NULL)
		return "-";
	out[0] = 0;
	size_t i, n = 0;
	json_t *e;
	json_array_foreach(json_object_get(v, "Stages"), i, e)
	{
		n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", i ? "," : "",
				      json_string_value(e));
	}
	return out;
}

static void test_stage_add_remove(void)
{
	struct sm_secret s;
	secret_init(&s, "{\"Versions\":{\"v1\":{},\"v2\":{\"Stages\":[\"AWSCURRENT\"]}}}");
	json_t *v1 = json_object_get(sm_versions(&s), "v1");
	CHECK(!sm_version_has_stage(v1, "AWSCURRENT"));
	sm_stage_add(v1, "blue");
	sm_stage_add(v1, "blue"); /* no duplicate */
	sm_stage_add(v1, "green");
	CHECK_STR(labels(&s, "v1"), "blue,green");
	CHECK(sm_version_has_stage(v1, "blue"));
	CHECK(!sm_version_has_stage(v1, "Blue")); /* labels are case-sensitive */
	sm_stage_remove(v1, "nothing");		  /* absent: no change */
	CHECK_STR(labels(&s, "v1"), "blue,green");
	sm_stage_remove(v1, "blue");
	CHECK_STR(labels(&s, "v1"), "green");
	CHECK_STR(sm_stage_owner(&s, "AWSCURRENT"), "v2");
	CHECK_STR(sm_stage_owner(&s, "green"), "v1");
	CHECK(sm_stage_owner(&s, "AWSPENDING") == NULL);
	sm_secret_release(&s);
	CHECK(s.doc == NULL);
}

/* "If this operation moves the staging label AWSCURRENT from another version
 * to this version, then Secrets Manager also automatically moves the staging
 * label AWSPREVIOUS to the version that AWSCURRENT was removed from." */
static void test_stage_move(void)
{
	struct sm_secret s;
	secret_init(&s,
		    "{\"Versions\":{\"v1\":{\"Stages\":[\"AWSCURRENT\"]},\"v2\":{\"Stages\":[]},"
		    "\"v3\":{}}}");
	sm_stage_move(&s, "AWSCURRENT", "v2");
	CHECK_STR(labels(&s, "v1"), "AWSPREVIOUS");
	CHECK_STR(labels(&s, "v2"), "AWSCURRENT");
	sm_stage_move(&s, "AWSCURRENT", "v3");
	CHECK_STR(labels(&s, "v1"), "");
	CHECK_STR(labels(&s, "v2"), "AWSPREVIOUS");
	CHECK_STR(labels(&s, "v3"), "AWSCURRENT");
	/* Onto the version that has it already: nothing moves. */
	sm_stage_move(&s, "AWSCURRENT", "v3");
	CHECK_STR(labels(&s, "v2"), "AWSPREVIOUS");
	CHECK_STR(labels(&s, "v3"), "AWSCURRENT");
	/* Back onto AWSPREVIOUS's version: the two swap. */
	sm_stage_move(&s, "AWSCURRENT", "v2");
	CHECK_STR(labels(&s, "v2"), "AWSCURRENT");
	CHECK_STR(labels(&s, "v3"), "AWSPREVIOUS");
	/* Other labels move alone. */
	sm_stage_move(&s, "AWSPENDING", "v1");
	CHECK_STR(labels(&s, "v1"), "AWSPENDING");
	sm_stage_move(&s, "AWSPENDING", "v3");
	CHECK_STR(labels(&s, "v1"), "");
	CHECK_STR(labels(&s, "v3"), "AWSPREVIOUS,AWSPENDING");
	CHECK_STR(labels(&s, "v2"), "AWSCURRENT");
	/* AWSCURRENT onto a version that had no label before, when nobody had it. */
	sm_secret_release(&s);
	secret_init(&s, "{\"Versions\":{\"a\":{}}}");
	sm_stage_move(&s, "AWSCURRENT", "a");
	CHECK_STR(labels(&s, "a"), "AWSCURRENT");
	CHECK(sm_stage_owner(&s, "AWSPREVIOUS") == NULL);
	sm_secret_release(&s);
	/* Exactly one owner of each label, after a run of moves. */
	secret_init(&s, "{\"Versions\":{\"a\":{},\"b\":{},\"c\":{},\"d\":{}}}");
	const char *order[] = {"a", "b", "c", "b", "d", "a", "a", "c"};
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
		sm_stage_move(&s, "AWSCURRENT", order[i]);
	int cur = 0, prev = 0;
	const char *vid;
	json_t *v;
	json_object_foreach(sm_versions(&s), vid, v)
	{
		cur += sm_version_has_stage(v, "AWSCURRENT");
		prev += sm_version_has_stage(v, "AWSPREVIOUS");
	}
	CHECK_EQ_INT(cur, 1);
	CHECK_EQ_INT(prev, 1);
	CHECK_STR(sm_stage_owner(&s, "AWSCURRENT"), "c");
	CHECK_STR(sm_stage_owner(&s, "AWSPREVIOUS"), "a");
	sm_secret_release(&s);
}

static void test_versions_and_value(void)
{
	struct sm_secret s;
	secret_init(&s, "{\"Name\":\"db\"}");
	CHECK(!sm_has_value(&s));
	json_t *v = sm_versions(&s); /* made on first use */
	CHECK(json_is_object(v));
	CHECK(sm_versions(&s) == v);
	json_object_set_new(v, "r", json_pack("{s:b}", "NoValue", 1));
	CHECK(!sm_has_value(&s)); /* reserved by RotateSecret only */
	json_object_set_new(v, "x", json_object());
	CHECK(sm_has_value(&s));
	sm_secret_release(&s);
	secret_init(&s, "{\"Versions\":[]}"); /* a damaged document: replaced by an object */
	CHECK(json_is_object(sm_versions(&s)));
	sm_secret_release(&s);
}

static void test_names_and_flags(void)
{
	struct sm_secret s;
	secret_init(&s, "{}");
	CHECK_STR(sm_name(&s), "");
	CHECK_STR(sm_arn(&s), "");
	CHECK(!sm_deleted(&s));
	CHECK(!sm_is_replica(&s));
	sm_secret_release(&s);
	secret_init(&s, "{\"Name\":\"app/"
			"db\",\"ARN\":\"arn:aws:secretsmanager:us-east-1:1:secret:app/db-AbCdEf\","
			"\"DeletedDate\":1767225600.5,\"IsReplica\":true}");
	CHECK_STR(sm_name(&s), "app/db");
	CHECK_STR(sm_arn(&s), "arn:aws:secretsmanager:us-east-1:1:secret:app/db-AbCdEf");
	CHECK(sm_deleted(&s));
	CHECK(sm_is_replica(&s));
	sm_secret_release(&s);
	secret_init(&s, "{\"DeletedDate\":0,\"IsReplica\":\"true\"}");
	CHECK(!sm_deleted(&s));
	CHECK(!sm_is_replica(&s));
	sm_secret_release(&s);
}

static bool primary(const char *json, char *out, size_t n)
{
	json_t *doc = json_loads(json, 0, NULL);
	out[0] = 0;
	bool r = sm_primary_region(doc, out, n);
	json_decref(doc);
	return r;
}

static void test_primary_region(void)
{
	char r[32];
	CHECK(primary("{\"PrimaryRegion\":\"eu-west-1\"}", r, sizeof r));
	CHECK_STR(r, "eu-west-1");
	/* A primary with replicas: its own Region, from its ARN. */
	CHECK(primary("{\"ARN\":\"arn:aws:secretsmanager:ap-south-1:111122223333:secret:x-AbCdEf\","
		      "\"ReplicationStatus\":[{\"Region\":\"eu-west-1\"}]}",
		      r, sizeof r));
	CHECK_STR(r, "ap-south-1");
	/* Not replicated. */
	CHECK(!primary(
		"{\"ARN\":\"arn:aws:secretsmanager:ap-south-1:111122223333:secret:x-AbCdEf\"}", r,
		sizeof r));
	CHECK(!primary("{\"ARN\":\"arn:aws:secretsmanager:ap-south-1:1:secret:x\","
		       "\"ReplicationStatus\":[]}",
		       r, sizeof r));
	/* ARNs it cannot read. */
	CHECK(!primary("{\"ARN\":\"arn:aws:kms:ap-south-1:1:key/x\",\"ReplicationStatus\":[{}]}", r,
		       sizeof r));
	CHECK(!primary(
		"{\"ARN\":\"arn:aws:secretsmanager::1:secret:x\",\"ReplicationStatus\":[{}]}", r,
		sizeof r));
	CHECK(!primary("{\"ARN\":\"arn:aws:secretsmanager:ap-south-1\",\"ReplicationStatus\":[{}]}",
		       r, sizeof r));
	CHECK(!primary("{\"ReplicationStatus\":[{}]}", r, sizeof r));
	/* A Region longer than the buffer is refused, not cut. */
	char small[6];
	CHECK(!primary("{\"ARN\":\"arn:aws:secretsmanager:ap-south-1:1:secret:x\","
		       "\"ReplicationStatus\":[{}]}",
		       small, sizeof small));
}

static void test_dates(void)
{
	json_t *i = json_integer(1767225600), *r = json_real(1767225600.999), *s = json_string("x");
	CHECK_EQ_INT(kjson_date_seconds(i), 1767225600);
	CHECK_EQ_INT(kjson_date_seconds(r), 1767225600);
	CHECK_EQ_INT(kjson_date_seconds(s), 0);
	CHECK_EQ_INT(kjson_date_seconds(NULL), 0);
	CHECK_EQ_INT(sm_date_cmp(i, r), -1);
	CHECK_EQ_INT(sm_date_cmp(r, i), 1);
	CHECK_EQ_INT(sm_date_cmp(i, i), 0);
	CHECK_EQ_INT(sm_date_cmp(NULL, i), -1); /* absent first */
	CHECK_EQ_INT(sm_date_cmp(i, NULL), 1);
	CHECK_EQ_INT(sm_date_cmp(NULL, NULL), 0);
	CHECK_EQ_INT(sm_date_cmp(s, i), -1);
	json_t *d = kjson_date(1767225600123);
	CHECK(json_is_real(d));
	CHECK_EQ_INT(kjson_date_seconds(d), 1767225600);
	CHECK(json_real_value(d) > 1767225600.12 && json_real_value(d) < 1767225600.13);
	json_decref(d);
	json_decref(i);
	json_decref(r);
	json_decref(s);
	CHECK_EQ_INT(sm_day(1767225600 + 86399), 1767225600);
	CHECK_EQ_INT(sm_day(1767225600), 1767225600);
	CHECK_EQ_INT(sm_day(1767225600 + 86400), 1767225600 + 86400);
	/* Milliseconds within the request's second, whatever the clock says. */
	int64_t ms = kclock_ms_within(1767225600);
	CHECK(ms >= 1767225600000 && ms <= 1767225600999);
}

static void test_ids(void)
{
	char suffix[7], other[7];
	sm_random_suffix(suffix);
	sm_random_suffix(other);
	CHECK_EQ_INT(strlen(suffix), 6);
	CHECK_EQ_INT(
		strspn(suffix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
		6);
	CHECK(strcmp(suffix, other) != 0);
	char id[37];
	sm_uuid(id);
	CHECK_EQ_INT(strlen(id), 36);
	CHECK(id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-');
	CHECK(id[14] == '4'); /* version 4 */
}

int main(void)
{
	RUN(test_stage_add_remove);
	RUN(test_stage_move);
	RUN(test_versions_and_value);
	RUN(test_names_and_flags);
	RUN(test_primary_region);
	RUN(test_dates);
	RUN(test_ids);
	return tl_summary();
}
