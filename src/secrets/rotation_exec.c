/*
 * rotation_exec.c — running a rotation function that is a local
 * executable: its environment (the credentials a Lambda gets from its
 * role, the endpoint to call kinko back at), a child process in a group of
 * its own with the event on its standard input, and waiting for it within
 * the entry's timeout or until kinko stops.
 *
 * The secret access key leaves the identity table only into the child's
 * environment block, which is wiped as soon as the child is spawned.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/json.h"
#include "core/log.h"
#include "core/secret.h"
#include "crypto/crypto.h"
#include "secrets/internal.h"
#include "secrets/rotation.h"
#include "secrets/secrets.h"
#include "core/banned.h"

#define MAX_TIMEOUT_S 900 /* Lambda's own limit */
/* A function's standard error in kinko's log: at most this many lines of this many bytes per run. */
#define STDERR_MAX_LINES 200u
#define STDERR_MAX_LINE 512u

/*
 * A function without a log_file writes its standard error into a pipe
 * that kinko reads while it waits, and each line goes to kinko's own log
 * prefixed with the function's ARN (as a Lambda's output goes to its log
 * group). Bounded: a line is cut at STDERR_MAX_LINE bytes, and after
 * STDERR_MAX_LINES lines the rest of the run's output is read and dropped,
 * which the log says once.
 */
struct errlog {
	int fd; /* the pipe's read end, non-blocking; -1: none */
	const char *arn;
	char line[STDERR_MAX_LINE + 1];
	size_t n;
	unsigned lines;
};

static void errlog_emit(struct errlog *e)
{
	e->line[e->n] = 0;
	if (e->lines < STDERR_MAX_LINES)
		LOG_INFO("rotation function %s: %s", e->arn, e->line);
	else if (e->lines == STDERR_MAX_LINES)
		LOG_WARN("rotation function %s: more than %u lines on standard error; the rest "
			 "of this run's is dropped",
			 e->arn, STDERR_MAX_LINES);
	e->lines++;
	e->n = 0;
}

/* Reads what the pipe holds now; at the end (`last`), also the unfinished line. */
static void errlog_drain(struct errlog *e, bool last)
{
	char chunk[4096];
	while (e->fd >= 0) {
		ssize_t r = read(e->fd, chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r; i++) {
			if (chunk[i] == '\n' || e->n == STDERR_MAX_LINE)
				errlog_emit(e);
			if (chunk[i] != '\n')
				e->line[e->n++] = chunk[i];
		}
	}
	if (last && e->n > 0)
		errlog_emit(e);
}

/* A small growable list of "K=V" strings for a child's environment. */
struct envlist {
	char *v[64];
	size_t n;
};

static void env_add(struct envlist *e, const char *k, const char *val, size_t val_len)
{
	if (e->n + 1 >= sizeof e->v / sizeof e->v[0])
		return;
	size_t n = strlen(k) + 1 + val_len + 1;
	char *s = malloc(n);
	if (s == NULL)
		return;
	snprintf(s, n, "%s=%.*s", k, (int)val_len, val);
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
}

/*
 * Adds K=<the secret's bytes>. The bytes pass through a buffer that is
 * wiped when released, so only the environment block (wiped by env_free)
 * keeps them.
 */
static void env_add_secret(struct envlist *e, const char *k, const struct ksecret *s)
{
	struct kbuf val;
	kbuf_init(&val, ksecret_len(s));
	if (k_ok(ksecret_append_to(&val, s)))
		env_add(e, k, (const char *)val.ptr, val.len);
	kbuf_release(&val);
}

static void env_free(struct envlist *e)
{
	for (size_t i = 0; i < e->n; i++) {
		crypto_wipe(e->v[i], strlen(e->v[i]));
		free(e->v[i]);
	}
	e->n = 0;
}

/*
 * The identity whose credentials the function gets: the one named by the
 * entry's access_key_id (dev mode: "test"), which must belong to the
 * secret's account — a Lambda's role is in the account that owns the
 * function. *named tells whether the entry named it.
 */
k_status sm_function_identity(const struct rot_job *j, const json_t *entry, const char **ak_out,
			      const struct ksecret **sk_out, bool *named, struct kbuf *msg)
{
	const char *ak = json_string_value(json_object_get(entry, "access_key_id"));
	*named = ak != NULL;
	if (ak == NULL)
		ak = "test";
	const struct identity *id = NULL;
	struct kslice none = {0};
	if (k_failed(config_lookup_access_key(ak, &none, &id))) {
		kbuf_note(msg, "the access key %s of the rotation function is not configured", ak);
		return K_E_SM_INVALID_REQUEST;
	}
	struct principal p;
	identity_principal(id, ak, &p);
	if (strcmp(p.account, j->account) != 0) {
		kbuf_note(msg,
			  "the access key %s of the rotation function belongs to another account",
			  ak);
		return K_E_SM_INVALID_REQUEST;
	}
	*ak_out = ak;
	*sk_out = identity_secret(id);
	return K_OK;
}

/*
 * An executable's environment. The secret key leaves the identity table
 * only into the child's environment block, which is wiped after the spawn.
 */
static K_MUST_CHECK k_status function_env(const struct rot_job *j, const json_t *entry,
					  struct envlist *e, struct kbuf *msg)
{
	const char *ak = NULL;
	const struct ksecret *sk = NULL;
	bool named;
	GUARD(sm_function_identity(j, entry, &ak, &sk, &named, msg));
	env_add(e, "PATH", "/usr/local/bin:/usr/bin:/bin", 28);
	env_add(e, "LANG", "C.UTF-8", 7);
	env_add(e, "AWS_ACCESS_KEY_ID", ak, strlen(ak));
	env_add_secret(e, "AWS_SECRET_ACCESS_KEY", sk);
	env_add(e, "AWS_REGION", j->region, strlen(j->region));
	env_add(e, "AWS_DEFAULT_REGION", j->region, strlen(j->region));
	char ep[SM_ENDPOINT_MAX];
	sm_rotation_endpoint(ep);
	env_add(e, "AWS_ENDPOINT_URL", ep, strlen(ep));
	env_add(e, "SECRETS_MANAGER_ENDPOINT", ep, strlen(ep));
	env_add(e, "KINKO_ENDPOINT", ep, strlen(ep));
	env_add(e, "AWS_CONFIG_FILE", "/dev/null", 9);
	env_add(e, "AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 9);
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)json_object_get(entry, "environment"), k, v)
		env_add(e, k, json_string_value(v), json_string_length(v));
	return K_OK;
}

int64_t sm_function_timeout(const json_t *entry)
{
	json_int_t t = json_integer_value(json_object_get(entry, "timeout_seconds"));
	return t > 0 && t <= MAX_TIMEOUT_S ? t : 300;
}

/*
 * A function runs in a process group of its own, so that ending it ends
 * what it started too (a shell script's own children), with the signal
 * mask and dispositions a fresh process has: kinko blocks SIGTERM, SIGINT
 * and SIGHUP in all its threads and ignores SIGPIPE and SIGXFSZ, and a
 * child would inherit both.
 */
static void spawn_attr_init(posix_spawnattr_t *attr)
{
	sigset_t none, dfl;
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGXFSZ);
	posix_spawnattr_init(attr);
	posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
					       POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(attr, 0);
	posix_spawnattr_setsigmask(attr, &none);
	posix_spawnattr_setsigdefault(attr, &dfl);
}

enum child_end {
	CHILD_EXITED,
	CHILD_TIMED_OUT,
	CHILD_STOPPED,
	CHILD_LOST
};
enum child_state {
	ENDED,
	RUNNING,
	GONE
};

/*
 * Whether the function's process has ended, waiting at most ms for it.
 * It is not reaped here, so its pid, which is also its process group's
 * id, cannot be taken by another process while the group is signalled.
 */
static enum child_state ended_within(pid_t pid, int64_t ms)
{
	int64_t until = sm_mono_ms() + ms;
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		int r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
		if (r == 0 && si.si_pid == pid)
			return ENDED;
		if (r < 0 && errno != EINTR)
			return GONE;
		if (r == 0 && sm_mono_ms() >= until)
			return RUNNING;
		if (r == 0) {
			struct timespec ts = {0, 20 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
}

/* Kills what is left of the function's process group, then reaps the function. */
static void reap(pid_t pid, int *status)
{
	kill(-pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
}

/*
 * Waits for the function's process: until it exits, its timeout passes
 * (its group is killed), or kinko stops. At a stop its group gets SIGTERM,
 * and SIGKILL after SM_STOP_GRACE_S; a process that not even SIGKILL ends
 * within a second more (stuck in the kernel) is left behind, so that the
 * shutdown stays bounded. Whatever the end, what is left of the group
 * (a shell script's own children) is killed when the function is reaped.
 */
static enum child_end wait_child(pid_t pid, int64_t timeout_s, int *status, struct errlog *err)
{
	int64_t deadline = sm_mono_ms() + timeout_s * 1000;
	for (;;) {
		errlog_drain(err, false);
		enum child_state st = ended_within(pid, 20);
		if (st == ENDED) {
			reap(pid, status);
			return CHILD_EXITED;
		}
		if (st == GONE)
			return CHILD_LOST;
		bool stop = sm_rotation_stopping();
		if (!stop && sm_mono_ms() <= deadline)
			continue;
		if (stop) {
			LOG_INFO("shutdown: ending the rotation function (pid %ld)", (long)pid);
			kill(-pid, SIGTERM);
			st = ended_within(pid, SM_STOP_GRACE_S * 1000);
		}
		kill(-pid, SIGKILL);
		if (st == RUNNING)
			st = ended_within(pid, 1000);
		if (st == ENDED)
			reap(pid, status);
		else
			LOG_WARN("the rotation function (pid %ld) did not end after SIGKILL; left "
				 "behind",
				 (long)pid);
		return stop ? CHILD_STOPPED : CHILD_TIMED_OUT;
	}
}

/*
 * Starts the function's process: the event on its standard input (the
 * pipe `in`), its output to the entry's log_file, or else standard output
 * to /dev/null and standard error into the pipe `err` (struct errlog).
 */
static int spawn_function(pid_t *pid, char **argv, char **envp, const char *log_file, int in,
			  int err)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log_file ? log_file : "/dev/null",
					 O_WRONLY | O_APPEND | O_CREAT, 0600);
	if (log_file != NULL)
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	else
		posix_spawn_file_actions_adddup2(&fa, err, 2);
	posix_spawnattr_t attr;
	spawn_attr_init(&attr);
	int e = posix_spawnp(pid, argv[0], &fa, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return e;
}

static void write_event(int fd, const char *event)
{
	size_t len = strlen(event), off = 0;
	while (off < len) {
		ssize_t w = write(fd, event + off, len - off);
		if (w <= 0 && errno != EINTR)
			break;
		if (w > 0)
			off += (size_t)w;
	}
	close(fd);
}

/* The outcome of a run as a status, with the reason in msg. */
static K_MUST_CHECK k_status child_outcome(enum child_end end, int status, const json_t *entry,
					   struct kbuf *msg)
{
	if (end == CHILD_TIMED_OUT) {
		kbuf_note(msg, "timed out after %lld seconds",
			  (long long)sm_function_timeout(entry));
		return K_E_SM_INTERNAL;
	}
	if (end == CHILD_STOPPED) {
		kbuf_note(msg, "%s", "ended at shutdown: kinko stopped while the step ran");
		return K_E_SM_INTERNAL;
	}
	if (end == CHILD_LOST) {
		kbuf_note(msg, "%s", "lost the function's process");
		return K_E_SM_INTERNAL;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return K_OK;
	if (WIFEXITED(status))
		kbuf_note(msg, "exited with status %d", WEXITSTATUS(status));
	else
		kbuf_note(msg, "killed by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return K_E_SM_INTERNAL;
}

k_status sm_rotation_exec(const struct rot_job *j, const json_t *entry, const char *event,
			  struct kbuf *msg)
{
	json_t *cmd = json_object_get(entry, "command");
	size_t argc = json_array_size(cmd);
	if (argc == 0 || argc > 32) {
		kbuf_note(msg, "%s", "bad command");
		return K_E_SM_INVALID_REQUEST;
	}
	char *argv[33];
	for (size_t i = 0; i < argc; i++)
		argv[i] = (char *)json_string_value(json_array_get(cmd, i));
	argv[argc] = NULL;
	struct envlist env = {0};
	k_status rc = function_env(j, entry, &env, msg);
	const char *log_file = json_string_value(json_object_get(entry, "log_file"));
	int fds[2] = {-1, -1}, efd[2] = {-1, -1};
	if (k_ok(rc) &&
	    (pipe2(fds, O_CLOEXEC) != 0 || (log_file == NULL && pipe2(efd, O_CLOEXEC) != 0)))
		rc = K_E_SM_INTERNAL;
	pid_t pid = 0;
	int err = k_ok(rc) ? spawn_function(&pid, argv, env.v, log_file, fds[0], efd[1]) : 0;
	env_free(&env);
	if (fds[0] >= 0)
		close(fds[0]);
	if (efd[1] >= 0)
		close(efd[1]);
	if (k_ok(rc) && err != 0) {
		kbuf_note(msg, "cannot start %s: %s", argv[0], strerror(err));
		rc = K_E_SM_INTERNAL;
	}
	if (k_failed(rc)) {
		if (fds[1] >= 0)
			close(fds[1]);
		if (efd[0] >= 0)
			close(efd[0]);
		return rc;
	}
	if (efd[0] >= 0)
		fcntl(efd[0], F_SETFL, O_NONBLOCK);
	struct errlog elog = {.fd = efd[0],
			      .arn = json_string_value(json_object_get(entry, "arn"))};
	write_event(fds[1], event);
	int status = 0;
	enum child_end end = wait_child(pid, sm_function_timeout(entry), &status, &elog);
	errlog_drain(&elog, true);
	if (efd[0] >= 0)
		close(efd[0]);
	return child_outcome(end, status, entry, msg);
}
