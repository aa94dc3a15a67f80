/*
 * rotation.c — the rotation runner (schedules: rotation_schedule.c;
 * executables: rotation_exec.c; http:// endpoints: rotation_http.c).
 *
 * "Secrets Manager rotation uses an AWS Lambda function to update the
 * secret and the database or service. ... the rotation function is
 * invoked four times, once for each step: createSecret, setSecret,
 * testSecret, finishSecret."
 * https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda-functions.html
 *
 * kinko has no Lambda: a rotation function is a local executable or an
 * HTTP endpoint registered under a Lambda-style ARN (config/functions.h).
 * It gets the same event a rotation Lambda gets,
 *   {"SecretId": ARN, "ClientRequestToken": VERSION, "Step": STEP}
 * (on standard input for an executable, as the POST body for an
 * endpoint), and credentials to call kinko back, as a Lambda gets its
 * role's: an executable in its environment (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_REGION, and the endpoint in
 * AWS_ENDPOINT_URL, SECRETS_MANAGER_ENDPOINT and KINKO_ENDPOINT), an
 * endpoint on this machine in X-Kinko-* request headers (rotation_http.c).
 * Exit status 0 (or HTTP 2xx) is success. RotateImmediately=false runs
 * the testSecret step alone (finish_test).
 *
 * Each rotation runs on a thread of its own, so RotateSecret answers at
 * once, as AWS's does. A failed step leaves the labels where the function
 * left them (AWSPENDING on the new version, as AWS leaves it); the
 * outcome is recorded in the secret (DescribeSecret's
 * KinkoRotationStatus) and in the log, without any secret value.
 *
 * At shutdown (secrets_shutdown) no step starts any more, and a running
 * one is ended: an executable's process group gets SIGTERM, then SIGKILL
 * after SM_STOP_GRACE_S, and is reaped; an endpoint's call is abandoned.
 * The rotation is then a failed one at that step, recorded (and its
 * RotationFailed event written) before the audit file is sealed: AWSPENDING
 * stays on the new version, and RotateSecret with that version's
 * ClientRequestToken runs the steps again, as AWS reattempts an unfinished
 * rotation.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "config/config.h"
#include "config/functions.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "scheduler/scheduler.h"
#include "secrets/internal.h"
#include "secrets/rotation.h"
#include "secrets/secrets.h"
#include "core/arn.h"
#include "core/banned.h"

#define TASK_PURGE SM_TASK_PURGE
#define TASK_ROTATE SM_TASK_ROTATE

/*
 * Where rotation functions call kinko back. serve() sets it once the
 * listener knows its port, when worker threads may already run rotation
 * jobs, so it is read and written under a lock and readers take a copy.
 */
static pthread_mutex_t endpoint_lock = PTHREAD_MUTEX_INITIALIZER;
static char endpoint[SM_ENDPOINT_MAX] = "http://127.0.0.1:4599";
static atomic_int running;
static atomic_bool stopping; /* secrets_shutdown() began: no step starts */

int64_t sm_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void secrets_set_endpoint(const char *url)
{
	pthread_mutex_lock(&endpoint_lock);
	snprintf(endpoint, sizeof endpoint, "%s", url);
	pthread_mutex_unlock(&endpoint_lock);
}

void sm_rotation_endpoint(char out[SM_ENDPOINT_MAX])
{
	pthread_mutex_lock(&endpoint_lock);
	memcpy(out, endpoint, SM_ENDPOINT_MAX);
	pthread_mutex_unlock(&endpoint_lock);
}

bool sm_rotation_stopping(void)
{
	return atomic_load(&stopping);
}

/* ---- the due index ----------------------------------------------------- */

/* Due record id part: "<uid>:<first 200 bytes of the name>". */
k_status sm_due_op(const struct sm_secret *s, const char *task, int64_t when, char *id_out,
		   size_t n, struct storage_op *op)
{
	char part[240];
	snprintf(part, sizeof part, "%s:%.200s", json_string_value(json_object_get(s->doc, "Uid")),
		 sm_name(s));
	GUARD(scheduler_due_id(when, task, s->ns, part, id_out, n));
	scheduler_due_put_op(op, id_out);
	return K_OK;
}

struct find_uid {
	const char *uid;
	char name[520];
};

static K_MUST_CHECK k_status find_uid_cb(void *arg, const char *ns, const char *id,
					 struct kslice doc, int64_t version)
{
	struct find_uid *f = arg;
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	const char *uid = json_string_value(json_object_get(j, "Uid"));
	bool hit = uid != NULL && strcmp(uid, f->uid) == 0;
	if (hit)
		snprintf(f->name, sizeof f->name, "%s", id);
	json_decref(j);
	return hit ? K_E_LIMIT_EXCEEDED : K_OK; /* stop at the match */
}

/* Loads the secret a due record names; K_E_NOT_FOUND if it is gone. */
static K_MUST_CHECK k_status load_due(const char *ns, const char *part, struct sm_secret *s)
{
	const char *colon = strchr(part, ':');
	if (colon == NULL)
		return K_E_NOT_FOUND;
	char uid[40];
	snprintf(uid, sizeof uid, "%.*s", (int)(colon - part), part);
	struct find_uid f = {.uid = uid};
	k_status rc = storage_list(sm_store(), "secret", ns, colon + 1, NULL, 0, find_uid_cb, &f);
	if (k_failed(rc) && !k_is(rc, K_E_LIMIT_EXCEEDED))
		return rc;
	if (f.name[0] == 0)
		return K_E_NOT_FOUND;
	return sm_load(ns, f.name, s);
}

static const char *const steps[] = {"createSecret", "setSecret", "testSecret", "finishSecret"};

static K_MUST_CHECK k_status invoke(const struct rot_job *j, const char *step, struct kbuf *msg)
{
	const json_t *entry = config_function(j->fn);
	if (entry == NULL) {
		kbuf_note(msg, "the rotation function %s is not registered in the configuration",
			  j->fn);
		return K_E_SM_NOT_FOUND;
	}
	json_t *ev = json_pack("{s:s, s:s, s:s}", "SecretId", j->arn, "ClientRequestToken",
			       j->token, "Step", step);
	char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	json_decref(ev);
	if (text == NULL)
		return K_E_INTERNAL;
	k_status rc = json_object_get(entry, "url") ? sm_rotation_post(j, entry, text, msg)
						    : sm_rotation_exec(j, entry, text, msg);
	kjson_free(text);
	return rc;
}

/*
 * A context for work done on the secret owner's behalf (no request): the
 * account root calling Secrets Manager's registered RotateSecret row, so
 * that api_call runs it through the same authorize step as a request.
 */
static void job_ctx(struct api_ctx *c, const char *ns, const char *account, const char *region)
{
	memset(c, 0, sizeof *c);
	c->service = secrets_service_table();
	c->op = api_service_op(c->service, "RotateSecret");
	c->now = kclock_now();
	snprintf(c->ns, sizeof c->ns, "%s", ns);
	snprintf(c->region, sizeof c->region, "%s", region);
	snprintf(c->principal.account, sizeof c->principal.account, "%s", account);
	struct k_arn root = k_arn_of("iam", "", account, K_ARN_ROOT, NULL);
	k_arn_format(&root, c->principal.arn, sizeof c->principal.arn);
	snprintf(c->principal.type, sizeof c->principal.type, "Root");
	kbuf_init(&c->err_msg, API_ERROR_MESSAGE_MAX);
}

/*
 * Records the outcome. On success (finishSecret moved AWSCURRENT to the
 * new version) LastRotatedDate is now and the next rotation is scheduled.
 */
/*
 * Secrets Manager's own work goes to the audit trail as AWS logs it:
 * "CloudTrail records these events as non-API service events":
 * RotationStarted, RotationSucceeded, RotationFailed, and for deletion
 * StartSecretVersionDelete / EndSecretVersionDelete
 * (https://docs.aws.amazon.com/secretsmanager/latest/userguide/cloudtrail_log_entries.html),
 * invoked by secretsmanager.amazonaws.com with the secret as the resource.
 * A failure to write the event is logged; the work itself stands.
 */
static K_MUST_CHECK k_status sm_service_event(const char *account, const char *region,
					      const char *arn, const char *event_name)
{
	k_status rc =
		audit_emit_service_event("secretsmanager.amazonaws.com", event_name, account,
					 region, arn, "AWS::SecretsManager::Secret", NULL, K_OK);
	if (k_failed(rc))
		LOG_ERROR("audit: the %s event of secret %s could not be written: %s", event_name,
			  arn, k_status_name(rc));
	return rc;
}

static void finish_job(const struct rot_job *j, const char *failed_step, const char *why)
{
	struct sm_secret s;
	int64_t now = kclock_now();
	char due[SCHEDULER_DUE_ID_MAX + 1];
	struct storage_op op;
	size_t n_ops = 0;
	sm_lock();
	if (k_failed(sm_load(j->ns, j->name, &s)) || strcmp(sm_arn(&s), j->arn) != 0) {
		sm_unlock();
		sm_secret_release(&s);
		LOG_WARN("rotation of secret %s: the secret is gone", j->arn);
		k_ignore(sm_service_event(j->account, j->region, j->arn, "RotationFailed"));
		return;
	}
	json_t *v = json_object_get(sm_versions(&s), j->token);
	if (failed_step == NULL && !sm_version_has_stage(v, "AWSCURRENT")) {
		failed_step = "finishSecret";
		why = "finishSecret did not move AWSCURRENT to the new version";
	}
	json_t *st = json_pack("{s:s, s:s, s:I}", "VersionId", j->token, "Status",
			       failed_step ? "Failed" : "Succeeded", "Date", (json_int_t)now);
	if (failed_step != NULL) {
		json_object_set_new(st, "Step", json_string(failed_step));
		json_object_set_new(st, "Message", json_string(why));
		LOG_WARN("rotation of secret %s (version %s) failed at %s: %s", j->arn, j->token,
			 failed_step, why);
	} else {
		int64_t now_ms = kclock_ms_within(now);
		json_object_set_new(s.doc, "LastRotatedDate", kjson_date(now_ms));
		json_object_set_new(s.doc, "LastChangedDate", kjson_date(now_ms));
		int64_t next =
			json_is_true(json_object_get(s.doc, "RotationEnabled"))
				? sm_next_rotation(json_object_get(s.doc, "RotationRules"), now)
				: 0;
		if (next > 0) {
			json_object_set_new(s.doc, "NextRotationDate", json_integer(next));
			if (k_ok(sm_due_op(&s, TASK_ROTATE, next, due, sizeof due, &op)))
				n_ops = 1;
		}
		LOG_INFO("rotation of secret %s (version %s) succeeded", j->arn, j->token);
	}
	json_object_set_new(s.doc, "KinkoRotationStatus", st);
	k_status rc = sm_save(&s, &op, n_ops);
	sm_unlock();
	sm_secret_release(&s);
	if (k_failed(rc))
		LOG_WARN("rotation of secret %s: cannot record the outcome (%s)", j->arn,
			 k_status_name(rc));
	k_ignore(sm_service_event(j->account, j->region, j->arn,
				  failed_step == NULL && k_ok(rc) ? "RotationSucceeded"
								  : "RotationFailed"));
	if (failed_step == NULL) {
		struct api_ctx c;
		job_ctx(&c, j->ns, j->account, j->region);
		if (k_failed(sm_sync_replicas(&c, j->name)))
			LOG_WARN("rotation of secret %s: cannot update its replicas", j->arn);
		kbuf_release(&c.err_msg);
	}
}

/*
 * The end of RotateImmediately=false's test: "The test creates an
 * AWSPENDING version of the secret and then removes it." The version goes
 * (label, metadata and value) unless something else labelled it
 * meanwhile; the rotation configuration stays as RotateSecret set it,
 * whatever the outcome, which is recorded as KinkoRotationStatus with
 * "Test": true and logged. Nothing else changes: no LastRotatedDate, no
 * new schedule.
 */
static void finish_test(const struct rot_job *j, bool ok, const char *why)
{
	struct sm_secret s;
	int64_t now = kclock_now();
	sm_lock();
	if (k_failed(sm_load(j->ns, j->name, &s)) || strcmp(sm_arn(&s), j->arn) != 0) {
		sm_unlock();
		sm_secret_release(&s);
		LOG_WARN("rotation test of secret %s: the secret is gone", j->arn);
		return;
	}
	json_t *versions = sm_versions(&s);
	json_t *v = json_object_get(versions, j->token);
	struct storage_op del;
	char id[200];
	size_t n_ops = 0;
	if (v != NULL) {
		sm_stage_remove(v, "AWSPENDING");
		if (json_array_size(json_object_get(v, "Stages")) == 0) {
			if (!json_is_true(json_object_get(v, "NoValue"))) {
				sm_value_id(&s, j->token, id, sizeof id);
				del = (struct storage_op){.op = STORAGE_DEL,
							  .kind = "secretvalue",
							  .ns = s.ns,
							  .id = id,
							  .expect = STORAGE_ANY};
				n_ops = 1;
			}
			json_object_del(versions, j->token);
		}
	}
	json_t *st = json_pack("{s:s, s:s, s:I, s:b}", "VersionId", j->token, "Status",
			       ok ? "Succeeded" : "Failed", "Date", (json_int_t)now, "Test", 1);
	if (!ok) {
		json_object_set_new(st, "Step", json_string("testSecret"));
		json_object_set_new(st, "Message", json_string(why));
		LOG_WARN("rotation test of secret %s (version %s) failed at testSecret: %s", j->arn,
			 j->token, why);
	} else {
		LOG_INFO("rotation test of secret %s (version %s) succeeded", j->arn, j->token);
	}
	/* A rotation started meanwhile owns the status. */
	const char *sv = json_string_value(
		json_object_get(json_object_get(s.doc, "KinkoRotationStatus"), "VersionId"));
	if (sv == NULL || strcmp(sv, j->token) == 0)
		json_object_set_new(s.doc, "KinkoRotationStatus", st);
	else
		json_decref(st);
	k_status rc = sm_save(&s, &del, n_ops);
	sm_unlock();
	sm_secret_release(&s);
	if (k_failed(rc))
		LOG_WARN("rotation test of secret %s: cannot remove the test version (%s)", j->arn,
			 k_status_name(rc));
}

static void *job_main(void *arg)
{
	struct rot_job *j = arg;
	const char *failed = NULL;
	struct kbuf msg;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	if (j->test) {
		bool ok = false;
		if (atomic_load(&stopping)) {
			kbuf_note(&msg, "%s", "not started: kinko was shutting down");
		} else {
			LOG_INFO("rotation test of secret %s: testSecret", j->arn);
			ok = k_ok(invoke(j, "testSecret", &msg));
		}
		finish_test(j, ok, msg.len ? kbuf_cstr(&msg) : "the rotation function failed");
		kbuf_release(&msg);
		free(j);
		atomic_fetch_sub(&running, 1);
		return NULL;
	}
	k_ignore(sm_service_event(j->account, j->region, j->arn, "RotationStarted"));
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		kbuf_reset(&msg);
		if (atomic_load(&stopping)) {
			/* The next start (RotateSecret with this token) runs the steps again. */
			kbuf_note(&msg, "%s", "not started: kinko was shutting down");
			failed = steps[i];
			break;
		}
		LOG_INFO("rotation of secret %s: %s", j->arn, steps[i]);
		if (k_failed(invoke(j, steps[i], &msg))) {
			failed = steps[i];
			break;
		}
	}
	finish_job(j, failed, msg.len ? kbuf_cstr(&msg) : "the rotation function failed");
	kbuf_release(&msg);
	free(j);
	atomic_fetch_sub(&running, 1);
	return NULL;
}

static K_MUST_CHECK k_status start_job(struct api_ctx *c, const char *name, const char *token,
				       const char *lambda_arn, bool test)
{
	/* Only reachable while requests and the scheduler still run, before a shutdown. */
	ENSURE(!atomic_load(&stopping), K_E_SM_INTERNAL);
	struct rot_job *j = calloc(1, sizeof *j);
	ENSURE(j != NULL, K_E_INTERNAL);
	struct sm_secret s;
	k_status rc = sm_load(c->ns, name, &s);
	if (k_failed(rc)) {
		free(j);
		return rc;
	}
	snprintf(j->ns, sizeof j->ns, "%s", c->ns);
	snprintf(j->account, sizeof j->account, "%s", c->principal.account);
	snprintf(j->region, sizeof j->region, "%s", c->region);
	snprintf(j->name, sizeof j->name, "%s", name);
	snprintf(j->arn, sizeof j->arn, "%s", sm_arn(&s));
	snprintf(j->token, sizeof j->token, "%s", token);
	snprintf(j->fn, sizeof j->fn, "%s", lambda_arn);
	j->test = test;
	sm_secret_release(&s);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	atomic_fetch_add(&running, 1);
	int err = pthread_create(&t, &attr, job_main, j);
	pthread_attr_destroy(&attr);
	if (err != 0) {
		atomic_fetch_sub(&running, 1);
		free(j);
		return K_E_SM_INTERNAL;
	}
	return K_OK;
}

k_status sm_rotation_start(struct api_ctx *c, const char *name, const char *token,
			   const char *lambda_arn)
{
	return start_job(c, name, token, lambda_arn, false);
}

k_status sm_rotation_test_start(struct api_ctx *c, const char *name, const char *token,
				const char *lambda_arn)
{
	return start_job(c, name, token, lambda_arn, true);
}

/* ---- scheduled work ------------------------------------------------------ */

static void split_ns(const char *ns, char *account, size_t an, char *region, size_t rn)
{
	const char *colon = strchr(ns, ':');
	size_t al = colon ? (size_t)(colon - ns) : strlen(ns);
	snprintf(account, an, "%.*s", (int)al, ns);
	snprintf(region, rn, "%s", colon ? colon + 1 : "");
}

/*
 * "Secrets Manager deletes the secret permanently after the recovery
 * window" — the purge removes the secret and every version's value.
 */
static K_MUST_CHECK k_status due_purge(void *arg, int64_t when, const char *ns, const char *id,
				       const char *due_id)
{
	int64_t now = *(const int64_t *)arg;
	struct sm_secret s;
	struct storage_op del;
	scheduler_due_del_op(&del, due_id);
	sm_lock();
	k_status rc = load_due(ns, id, &s);
	char account[13], region[40], arn[700] = "";
	split_ns(ns, account, sizeof account, region, sizeof region);
	bool purged = false;
	if (k_ok(rc) && sm_deleted(&s) &&
	    json_integer_value(json_object_get(s.doc, "PurgeDate")) <= now) {
		snprintf(arn, sizeof arn, "%s", sm_arn(&s));
		/* The start is durable before anything is deleted; if it cannot
		 * be written the purge waits for the next run. */
		rc = sm_service_event(account, region, arn, "StartSecretVersionDelete");
		if (k_ok(rc))
			rc = sm_purge(ns, &s);
		if (k_ok(rc)) {
			purged = true;
			LOG_INFO("secret %s purged at the end of its recovery window", arn);
		}
	}
	sm_unlock();
	sm_secret_release(&s);
	if (purged)
		k_ignore(sm_service_event(account, region, arn, "EndSecretVersionDelete"));
	if (k_failed(rc) && !k_is(rc, K_E_NOT_FOUND) && !k_is(rc, K_E_CONFLICT))
		return rc;
	return storage_apply(sm_store(), &del, 1);
}

/* A scheduled rotation: RotateSecret on the owner's behalf, when still due. */
static K_MUST_CHECK k_status due_rotate(void *arg, int64_t when, const char *ns, const char *id,
					const char *due_id)
{
	int64_t now = *(const int64_t *)arg;
	struct sm_secret s;
	struct storage_op del;
	scheduler_due_del_op(&del, due_id);
	k_status rc = load_due(ns, id, &s);
	bool due = k_ok(rc) && !sm_deleted(&s) && !sm_is_replica(&s) &&
		   json_is_true(json_object_get(s.doc, "RotationEnabled")) &&
		   json_integer_value(json_object_get(s.doc, "NextRotationDate")) == when &&
		   when <= now;
	char arn[700];
	snprintf(arn, sizeof arn, "%s", k_ok(rc) ? sm_arn(&s) : "");
	sm_secret_release(&s);
	GUARD(storage_apply(sm_store(), &del, 1));
	if (!due)
		return K_OK;
	struct api_ctx c;
	char account[13], region[40];
	split_ns(ns, account, sizeof account, region, sizeof region);
	job_ctx(&c, ns, account, region);
	json_t *in = json_pack("{s:s}", "SecretId", arn);
	json_t *out = json_object();
	rc = c.op != NULL ? api_call(&c, in, out) : K_E_INTERNAL;
	if (k_failed(rc))
		LOG_WARN("scheduled rotation of secret %s not started: %s %s", arn,
			 k_status_name(rc), kbuf_cstr(&c.err_msg));
	json_decref(in);
	json_decref(out);
	kbuf_release(&c.err_msg);
	return K_OK;
}

static K_MUST_CHECK k_status run_due(int64_t now)
{
	k_status rc = scheduler_due_list(TASK_PURGE, now, due_purge, &now);
	k_status rc2 = scheduler_due_list(TASK_ROTATE, now, due_rotate, &now);
	return k_failed(rc) ? rc : rc2;
}

k_status secrets_scheduler_init(void)
{
	return scheduler_register("secrets", run_due);
}

/*
 * Each running rotation ends its step within SM_STOP_GRACE_S (plus a
 * second for SIGKILL) and then records its outcome, which may wait for the
 * store's busy timeout; SM_STOP_WAIT_S covers both.
 */
bool secrets_shutdown(void)
{
	atomic_store(&stopping, true);
	int64_t until = sm_mono_ms() + SM_STOP_WAIT_S * 1000;
	while (atomic_load(&running) > 0 && sm_mono_ms() < until) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	int left = atomic_load(&running);
	if (left > 0)
		LOG_ERROR("shutdown: %d rotations still running after %d s", left, SM_STOP_WAIT_S);
	return left == 0;
}
