/*
 * rotation.h — the contract between the three rooms of rotation:
 *
 *   rotation_schedule.c  RotationRules: rate() and cron() expressions,
 *                        their validation and the next rotation date;
 *   rotation.c           the runner: the four steps on a thread of their
 *                        own, an executable's process, the outcome, the
 *                        scheduled work and the shutdown;
 *   rotation_http.c      calling a rotation function that is an http://
 *                        endpoint (libcurl).
 *
 * What the rest of secrets/ calls (sm_rotation_start, sm_next_rotation,
 * sm_validate_rules...) is declared in secrets/internal.h; this header
 * holds what the rooms share among themselves and what the unit tests
 * reach.
 */
#ifndef KINKO_SECRETS_ROTATION_H
#define KINKO_SECRETS_ROTATION_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

/* One rotation (or RotateImmediately=false test) as its thread sees it. */
struct rot_job {
	char ns[64];
	char account[13];
	char region[40];
	char name[520];
	char arn[700];
	char token[80];
	char fn[2100];
	bool test; /* RotateImmediately=false: testSecret only */
};

/* ---- schedule expressions (rotation_schedule.c) ---------------------- */

/*
 * "rate(N days)" (N 1..1000) or "rate(N hours)" (N 1..24000), with the
 * singular for N = 1, in seconds; 0 for anything else, including a
 * malformed rate().
 */
int64_t sm_rate_seconds(const char *se);

/*
 * True if se is "cron(minutes hours day-of-month month day-of-week year)"
 * with six valid fields (see rotation_schedule.c for what a field may be).
 */
bool sm_cron_valid(const char *se);

/*
 * The first whole minute after `from` (Unix seconds, UTC) that the cron()
 * expression se names; 0 if se is not a valid cron() or names no minute
 * in the next five years.
 */
int64_t sm_cron_next(const char *se, int64_t from);

/* ---- runner state the function callers read (rotation.c) ------------- */

/* True once secrets_shutdown() began: no step starts, a running one ends. */
bool sm_rotation_stopping(void);

/*
 * Copies the endpoint rotation functions call kinko back at
 * (secrets_set_endpoint) into out, NUL-terminated.
 */
#define SM_ENDPOINT_MAX 256
void sm_rotation_endpoint(char out[SM_ENDPOINT_MAX]);

/* Milliseconds on the monotonic clock. */
int64_t sm_mono_ms(void);

/* ---- executables, and what both kinds of function get (rotation_exec.c) */

/* An entry's timeout_seconds (1..900), 300 when absent or out of range. */
int64_t sm_function_timeout(const json_t *entry);

/*
 * The identity whose credentials the function gets: the one named by the
 * entry's access_key_id ("test" when it names none), which must belong to
 * the job's account. On K_OK *ak_out points into the entry or is the
 * literal "test", and *sk_out into the identity table: both stay valid
 * while the configuration is loaded, and the secret key is not copied.
 * *named tells whether the entry named the key. On failure the reason
 * (with no secret) is noted in msg.
 */
K_MUST_CHECK k_status sm_function_identity(const struct rot_job *j, const json_t *entry,
					   const char **ak_out, const struct ksecret **sk_out,
					   bool *named, struct kbuf *msg);

/*
 * Runs the entry's command with the event (NUL-terminated) on its standard
 * input and the function's credentials in its environment; K_OK when it
 * exits with status 0. Ends it after the entry's timeout, and when kinko
 * stops (sm_rotation_stopping). On failure the reason is noted in msg.
 */
K_MUST_CHECK k_status sm_rotation_exec(const struct rot_job *j, const json_t *entry,
				       const char *event, struct kbuf *msg);

/* ---- the HTTP client (rotation_http.c) ------------------------------- */

/*
 * POSTs the event (the Lambda event JSON, NUL-terminated) to the entry's
 * http:// url with the headers docs/SECRETS.md lists; K_OK on a 2xx
 * answer. Gives up after the entry's timeout, and at once when kinko
 * stops (sm_rotation_stopping). On failure the reason is noted in msg.
 */
K_MUST_CHECK k_status sm_rotation_post(const struct rot_job *j, const json_t *entry,
				       const char *event, struct kbuf *msg);

#endif
