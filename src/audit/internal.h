/*
 * internal.h — shared between the audit module's files; not a public contract.
 */
#ifndef KINKO_AUDIT_INTERNAL_H
#define KINKO_AUDIT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "core/buf.h"
#include "core/result.h"

#define AUDIT_LOG_PREFIX "kinko-audit-"
#define AUDIT_LOG_SUFFIX ".jsonl"
#define AUDIT_DIGEST_SUFFIX ".jsonl.digest"
#define AUDIT_MAX_LINE (1u << 20)
/* Period digests (period.c): kinko-periods-<UTC day, YYYYMMDD>.jsonl, one signed line each. */
#define AUDIT_PERIODS_PREFIX "kinko-periods-"
#define AUDIT_PERIODS_SUFFIX ".jsonl"

/*
 * Queues one record (type "event" or "intent", its event JSON text) and
 * waits until it is written as the sync mode promises. K_E_INTERNAL if it
 * could not be written.
 */
K_MUST_CHECK k_status audit_writer_append(const char *type, const char *event_json, size_t len);

/* Lists the log files of dir (names only), sorted; caller frees with audit_free_names. */
K_MUST_CHECK k_status audit_list_logs(const char *dir, char ***names, size_t *n);
/* Lists the files of dir named prefix...suffix (names only, unsorted). */
K_MUST_CHECK k_status audit_list_files(const char *dir, const char *prefix, const char *suffix,
				       char ***names, size_t *n);
void audit_free_names(char **names, size_t n);
/* Reads a whole file into buf (bounded by buf's max). */
K_MUST_CHECK k_status audit_read_file(const char *path, struct kbuf *buf);
/* SHA-256 as lower-case hex (65 bytes with the NUL). */
void audit_sha256_hex(const void *p, size_t n, char out[65]);
void audit_hex(const uint8_t *p, size_t n, char *out);


/* ---- period digests (period.c) ---- */

struct audit_signer;

/* A point of the chain: the record seq (0: none yet), its hash, the log file that holds it. */
struct audit_head {
	uint64_t seq;
	char hash[65];
	char file[96];
	int64_t time_ms; /* when a digest named it (read back only) */
};

struct audit_period_options {
	const char *dir;          /* the log folder */
	int64_t period_ms;        /* 0: 60 s */
	const char *witness_file; /* NULL: no witness file */
	bool witness_syslog;      /* also send each digest to syslog (LOG_AUTHPRIV) */
};

enum audit_period_kind {
	AUDIT_PERIOD_START = 0, /* kinko started: covers the time it was not running */
	AUDIT_PERIOD_TICK = 1,  /* a period passed */
	AUDIT_PERIOD_STOP = 2,  /* a clean shutdown: every file sealed */
};

/*
 * Takes up the folder's period digests (a torn last line is cut off) and
 * opens the witness. *committed gets the furthest head that the newest
 * digest of the folder or of the witness file vouches for (signature
 * checked); seq 0 if none. `s` is borrowed until audit_period_close().
 */
K_MUST_CHECK k_status audit_period_open(const struct audit_period_options *o,
					const struct audit_signer *s, struct audit_head *committed,
					struct kbuf *msg);
/* Whether a period ended since the last digest. */
bool audit_period_due(int64_t now_ms);
/*
 * Appends one signed digest naming head (durable on disk) and the span
 * since the previous digest up to now_ms, to the folder and the witness.
 * missing_from (0: none): at a start, the first seq of records a digest
 * had committed to that the log no longer holds.
 */
K_MUST_CHECK k_status audit_period_write(enum audit_period_kind kind, const struct audit_head *head,
					 uint64_t missing_from, int64_t now_ms);
void audit_period_close(void);
/*
 * Parses one digest line and checks its signature with public_pem. K_OK
 * (verified), K_E_KMS_INVALID_SIGNATURE (a digest whose signature does
 * not verify) or K_E_VALIDATION (not a digest; *out NULL). *out is the
 * document, owned by the caller, unless K_E_VALIDATION.
 */
K_MUST_CHECK k_status audit_period_parse(struct kslice line, const char *public_pem, json_t **out);
/* The witness's syslog sink (syslog_sink.c). */
void audit_syslog_open(void);
void audit_syslog_send(const char *line, size_t n);
void audit_syslog_close(void);
/* The name of the periods file for a digest ending at to_ms. */
void audit_period_file_name(int64_t to_ms, char *out, size_t n);

#endif
