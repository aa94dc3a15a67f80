/*
 * log.h — the server's diagnostic log. Never pass plaintext, key material,
 * secret values or signatures to it.
 *
 * Lines go to standard error. klog_open_file() points standard error at a
 * file instead (so everything the process writes there, libraries
 * included, lands in the one log), and klog_reopen() opens that path again,
 * which is what logrotate expects after it renamed the file: the server
 * reopens on SIGHUP.
 *
 * Each line is written whole with one write(2): in text
 * ("2026-12-07T07:50:01.123Z kinko info: ...") or, after
 * klog_set_format(KLOG_JSON), as one JSON object per line with the
 * members time, level and message (and a request line's fields).
 *
 * Request lines (klog_request) of a busy thread are kept: a thread whose
 * last request line came less than KLOG_BUSY_NS before keeps the new one
 * in a buffer of its own (KLOG_PEND_BYTES, at most PIPE_BUF, so one write
 * of whole lines stays whole on a pipe), written when it fills, before
 * the thread's next other line, when the thread ends, at exit, by
 * klog_flush(), and by a thread ("kinko-log") every KLOG_FLUSH_MS. So a
 * lone request's line is written at once, and under load one write(2)
 * carries a dozen lines; a kill -9 may lose the last KLOG_FLUSH_MS of
 * request lines (the audit trail, not this log, is the record of calls).
 */
#ifndef KINKO_CORE_LOG_H
#define KINKO_CORE_LOG_H

#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"

enum klog_level {
	KLOG_DEBUG = 0,
	KLOG_INFO = 1,
	KLOG_WARN = 2,
	KLOG_ERROR = 3
};

/* The longest line written; longer ones are cut (and still end in a newline). */
#define KLOG_MAX_LINE 2048
#define KLOG_PEND_BYTES 4096
#define KLOG_BUSY_NS 200000
#define KLOG_FLUSH_MS 10

enum klog_format {
	KLOG_TEXT = 0,
	KLOG_JSON = 1
};

void klog_set_level(enum klog_level lvl);
/* Whether a line at `lvl` would be written. */
bool klog_enabled(enum klog_level lvl);
void klog_set_format(enum klog_format f);
enum klog_format klog_get_format(void);
/* "text" or "json"; K_E_VALIDATION for anything else (out unchanged). */
K_MUST_CHECK k_status klog_parse_format(const char *name, enum klog_format *out);
void klog(enum klog_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Opens `path` for appending (created with mode 0600) and makes it the
 * process's standard error (dup2, so writers never see a closed
 * descriptor). The path is kept for klog_reopen(). K_E_VALIDATION (with a
 * reason in msg) if it cannot be opened; standard error is unchanged then.
 */
K_MUST_CHECK k_status klog_open_file(const char *path, struct kbuf *msg);
/*
 * Opens the path given to klog_open_file() again and switches standard
 * error to it. K_OK without a log file; K_E_INTERNAL if the open failed,
 * in which case the old file stays in use. Call from one thread at a time
 * (the server's main thread, on SIGHUP).
 */
K_MUST_CHECK k_status klog_reopen(void);

/*
 * The request line: one per API call, written by the pipeline after the
 * response is rendered. Every member may be NULL ("-" in text, null in
 * JSON). None of them may carry plaintext, key material, secret values,
 * signatures or the request body: the caller passes identifiers only.
 */
struct klog_request {
	const char *request_id;
	const char *principal;	/* the caller's ARN, NULL before authentication */
	const char *access_key; /* the access key id a refused signature named */
	const char *service;	/* "kms", "secretsmanager" */
	const char *operation;	/* "Encrypt" */
	const char *resource;	/* the key's or secret's ARN, when known */
	const char *error_code; /* the exception name, NULL on success */
	int status;		/* the HTTP status answered */
	double latency_ms;
};
void klog_request(enum klog_level lvl, const struct klog_request *r);
/* Writes the request lines busy threads keep (see above); the server calls it as it stops. */
void klog_flush(void);
/* How close request lines must come to be kept (KLOG_BUSY_NS; 0: never kept). For tests. */
void klog_set_busy_ns(int64_t ns);

#define LOG_DEBUG(...) klog(KLOG_DEBUG, __VA_ARGS__)
#define LOG_INFO(...) klog(KLOG_INFO, __VA_ARGS__)
#define LOG_WARN(...) klog(KLOG_WARN, __VA_ARGS__)
#define LOG_ERROR(...) klog(KLOG_ERROR, __VA_ARGS__)

#endif
