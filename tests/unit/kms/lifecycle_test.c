/*
 * lifecycle_test.c — the key-state table, KMS dates, the due index of the
 * scheduler (against a real SQLite store), and the storage purge used by reset.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/pipeline.h"
#include "kms/kms.h"
#include "scheduler/scheduler.h"
#include "storage/storage.h"
#include "testlib.h"
#include "core/banned.h"

static const struct api_service kms_svc = {.target_prefix = "TrentService."};
static const struct api_service other_svc = {.target_prefix = "secretsmanager."};

static K_MUST_CHECK k_status state_check(const struct api_service *svc, const char *op,
					 enum kms_key_state s, char *msg, size_t n)
{
	/* KMS's own rows say their rule; a made-up row says none. */
	struct api_operation o = {.name = op};
	char target[96];
	snprintf(target, sizeof target, "%s%s", svc->target_prefix, op);
	const struct api_operation *row = api_find_operation(target, NULL);
	struct api_ctx c;
	memset(&c, 0, sizeof c);
	c.service = svc;
	c.op = row != NULL ? row : &o;
	kbuf_init(&c.err_msg, 2048);
	struct kms_key k;
	memset(&k, 0, sizeof k);
	snprintf(k.arn, sizeof k.arn, "arn:aws:kms:us-east-1:000000000000:key/x");
	k.state = s;
	k_status rc = kms_check_key_state(&c, &k);
	snprintf(msg, n, "%s", c.err_msg.len ? kbuf_cstr(&c.err_msg) : "");
	kbuf_release(&c.err_msg);
	return rc;
}

static void test_state_table(void)
{
	char m[256];
	CHECK_STATUS(state_check(&kms_svc, "Encrypt", KS_ENABLED, m, sizeof m), K_OK);
	CHECK_STATUS(state_check(&kms_svc, "Encrypt", KS_DISABLED, m, sizeof m), K_E_DISABLED);
	CHECK_STR(m, "arn:aws:kms:us-east-1:000000000000:key/x is disabled.");
	CHECK_STATUS(state_check(&kms_svc, "Decrypt", KS_PENDING_DELETION, m, sizeof m),
		     K_E_INVALID_STATE);
	CHECK_STR(m, "arn:aws:kms:us-east-1:000000000000:key/x is pending deletion.");
	CHECK_STATUS(state_check(&kms_svc, "Encrypt", KS_PENDING_IMPORT, m, sizeof m),
		     K_E_INVALID_STATE);
	CHECK_STR(m, "arn:aws:kms:us-east-1:000000000000:key/x is pending import.");
	CHECK_STATUS(state_check(&kms_svc, "DescribeKey", KS_PENDING_DELETION, m, sizeof m), K_OK);
	CHECK_STATUS(state_check(&kms_svc, "DeleteAlias", KS_PENDING_DELETION, m, sizeof m), K_OK);
	CHECK_STATUS(state_check(&kms_svc, "TagResource", KS_DISABLED, m, sizeof m), K_OK);
	CHECK_STATUS(state_check(&kms_svc, "TagResource", KS_PENDING_DELETION, m, sizeof m),
		     K_E_INVALID_STATE);
	CHECK_STATUS(state_check(&kms_svc, "EnableKey", KS_PENDING_IMPORT, m, sizeof m),
		     K_E_INVALID_STATE);
	CHECK_STATUS(state_check(&kms_svc, "CancelKeyDeletion", KS_ENABLED, m, sizeof m),
		     K_E_INVALID_STATE);
	CHECK_STR(m, "arn:aws:kms:us-east-1:000000000000:key/x is not pending deletion.");
	CHECK_STATUS(state_check(&kms_svc, "CancelKeyDeletion", KS_PENDING_DELETION, m, sizeof m),
		     K_OK);
	CHECK_STATUS(state_check(&kms_svc, "EnableKeyRotation", KS_DISABLED, m, sizeof m),
		     K_E_DISABLED);
	/* Rows without a rule and other services' operations: the crypto rule. */
	CHECK_STATUS(state_check(&kms_svc, "SomethingNew", KS_DISABLED, m, sizeof m), K_E_DISABLED);
	CHECK_STATUS(state_check(&other_svc, "TagResource", KS_DISABLED, m, sizeof m),
		     K_E_DISABLED);
	CHECK_STATUS(state_check(&kms_svc, "Encrypt", KS_CREATING, m, sizeof m), K_E_INVALID_STATE);
}

static struct storage *st;

static void test_due_id(void)
{
	char a[SCHEDULER_DUE_ID_MAX], b[SCHEDULER_DUE_ID_MAX];
	CHECK_STATUS(scheduler_due_id(99, "t", "1:r", "id", a, sizeof a), K_OK);
	CHECK_STR(a, "000000000000099|t|1:r|id");
	CHECK_STATUS(scheduler_due_id(1000, "t", "1:r", "id", b, sizeof b), K_OK);
	CHECK(strcmp(a, b) < 0); /* ids sort by time */
	CHECK_STATUS(scheduler_due_id(-1, "t", "n", "i", a, sizeof a), K_E_VALIDATION);
	CHECK_STATUS(scheduler_due_id(1, "a|b", "n", "i", a, sizeof a), K_E_VALIDATION);
	CHECK_STATUS(scheduler_due_id(1, "t", "n", "i", a, 8), K_E_VALIDATION);
}

struct seen {
	int n;
	char ids[8][64];
	int64_t whens[8];
};

static K_MUST_CHECK k_status seen_cb(void *arg, int64_t when, const char *ns, const char *id,
				     const char *due_id)
{
	struct seen *s = arg;
	if (s->n < 8) {
		snprintf(s->ids[s->n], 64, "%s/%s", ns, id);
		s->whens[s->n] = when;
		s->n++;
	}
	struct storage_op op;
	scheduler_due_del_op(&op, due_id);
	return storage_apply(st, &op, 1);
}

static void test_due_list(void)
{
	const int64_t times[] = {300, 100, 200, 5000};
	const char *tasks[] = {"x", "x", "y", "x"};
	char ids[4][SCHEDULER_DUE_ID_MAX];
	struct storage_op ops[4];
	for (int i = 0; i < 4; i++) {
		char id[16];
		snprintf(id, sizeof id, "k%d", i);
		CHECK_STATUS(scheduler_due_id(times[i], tasks[i], "1:r", id, ids[i], sizeof ids[i]),
			     K_OK);
		scheduler_due_put_op(&ops[i], ids[i]);
	}
	CHECK_STATUS(storage_apply(st, ops, 4), K_OK);
	struct seen s = {0};
	CHECK_STATUS(scheduler_due_list("x", 1000, seen_cb, &s), K_OK);
	CHECK_EQ_INT(s.n, 2); /* task x, due by 1000, oldest first */
	CHECK_STR(s.ids[0], "1:r/k1");
	CHECK_STR(s.ids[1], "1:r/k0");
	CHECK_EQ_INT(s.whens[0], 100);
	/* The callback deleted them: a second listing finds nothing. */
	struct seen s2 = {0};
	CHECK_STATUS(scheduler_due_list("x", 1000, seen_cb, &s2), K_OK);
	CHECK_EQ_INT(s2.n, 0);
	struct seen s3 = {0};
	CHECK_STATUS(scheduler_due_list("y", 1000, seen_cb, &s3), K_OK);
	CHECK_EQ_INT(s3.n, 1);
}

static int ran;
static K_MUST_CHECK k_status count_task(int64_t now)
{
	(void)now;
	ran++;
	return K_OK;
}

static void test_register_and_run(void)
{
	CHECK_STATUS(scheduler_register("count", count_task), K_OK);
	CHECK_STATUS(scheduler_register(NULL, count_task), K_E_VALIDATION);
	CHECK_STATUS(scheduler_run_now(), K_OK);
	CHECK_EQ_INT(ran, 1);
}

static int failing_runs;
static K_MUST_CHECK k_status flaky_task(int64_t now)
{
	(void)now;
	if (failing_runs > 0) {
		failing_runs--;
		return K_E_INTERNAL;
	}
	return K_OK;
}

/* Counts the lines of path that contain needle. */
static int count_lines(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	int n = 0;
	char line[1024];
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		n += strstr(line, needle) != NULL;
	if (f != NULL)
		fclose(f);
	return n;
}

/*
 * A task that keeps failing (its store down, say) is logged when it starts
 * failing and when it recovers, not at every run.
 */
static void test_failure_logging(void)
{
	char path[] = "/tmp/kinko-sched-log-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	CHECK_STATUS(scheduler_register("flaky", flaky_task), K_OK);
	failing_runs = 5;
	for (int i = 0; i < 5; i++)
		CHECK_STATUS(scheduler_run_now(), K_E_INTERNAL);
	CHECK_STATUS(scheduler_run_now(), K_OK);
	CHECK_STATUS(scheduler_run_now(), K_OK);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	CHECK_EQ_INT(count_lines(path, "task flaky failed"), 1);
	CHECK_EQ_INT(count_lines(path, "task flaky still failing"), 0);
	CHECK_EQ_INT(count_lines(path, "task flaky recovered after 5 failed runs"), 1);
	unlink(path);
}

static K_MUST_CHECK k_status count_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				      int64_t version)
{
	(void)id;
	(void)doc;
	(void)version;
	(*(int *)arg)++;
	return K_OK;
}

static void test_purge(void)
{
	struct storage_op ops[3] = {
		{.op = STORAGE_PUT,
		 .kind = "key",
		 .ns = "111:us-east-1",
		 .id = "a",
		 .doc = kslice_cstr("{}"),
		 .expect = STORAGE_ANY},
		{.op = STORAGE_PUT,
		 .kind = "secret",
		 .ns = "111:eu-west-1",
		 .id = "b",
		 .doc = kslice_cstr("{}"),
		 .expect = STORAGE_ANY},
		{.op = STORAGE_PUT,
		 .kind = "key",
		 .ns = "1111:us-east-1",
		 .id = "c",
		 .doc = kslice_cstr("{}"),
		 .expect = STORAGE_ANY},
	};
	CHECK_STATUS(storage_apply(st, ops, 3), K_OK);
	CHECK_STATUS(storage_purge(st, "111:"), K_OK);
	int n = 0;
	CHECK_STATUS(storage_list(st, "key", NULL, NULL, NULL, 0, count_cb, &n), K_OK);
	CHECK_EQ_INT(n, 1); /* only the other account's key */
	n = 0;
	CHECK_STATUS(storage_list(st, "secret", NULL, NULL, NULL, 0, count_cb, &n), K_OK);
	CHECK_EQ_INT(n, 0);
	CHECK_STATUS(storage_purge(st, ""), K_E_VALIDATION);
	CHECK_STATUS(storage_scrub(st), K_OK);
}

/*
 * KMS dates: new ones carry milliseconds; documents written with whole
 * seconds read as before; a request's milliseconds stay in its second.
 */
static void test_dates(void)
{
	json_t *old = json_integer(1700000000);
	json_t *now = kjson_date(1700000000123);
	CHECK(kjson_date_seconds(old) == 1700000000);
	CHECK(kjson_date_seconds(now) == 1700000000);
	CHECK(json_is_real(now) && json_real_value(now) > 1700000000.12 &&
	      json_real_value(now) < 1700000000.13);
	CHECK(kjson_date_seconds(NULL) == 0);
	json_decref(old);
	json_decref(now);
	int64_t ms = kclock_ms_within(1700000000);
	CHECK(ms >= 1700000000000 && ms <= 1700000000999);
}

int main(void)
{
	char dir[] = "/tmp/kinko-lifecycle-test-XXXXXX";
	if (mkdtemp(dir) == NULL)
		return 1;
	if (k_failed(storage_sqlite_open(dir, &st)))
		return 1;
	struct kbuf msg;
	kbuf_init(&msg, 512);
	CHECK_STATUS(api_register_service(kms_service_table(), &msg), K_OK);
	kbuf_release(&msg);
	RUN(test_state_table);
	RUN(test_due_id);
	RUN(test_dates);
	CHECK_STATUS(scheduler_start(st), K_OK);
	RUN(test_due_list);
	RUN(test_register_and_run);
	RUN(test_failure_logging);
	scheduler_stop();
	RUN(test_purge);
	storage_close(st);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return tl_summary();
}
