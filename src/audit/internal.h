/*
 * internal.h — shared between the audit module's files; not a public contract.
 */
#ifndef KINKO_AUDIT_INTERNAL_H
#define KINKO_AUDIT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"

#define AUDIT_LOG_PREFIX "kinko-audit-"
#define AUDIT_LOG_SUFFIX ".jsonl"
#define AUDIT_DIGEST_SUFFIX ".jsonl.digest"
#define AUDIT_MAX_LINE (1u << 20)

/*
 * Queues one record (type "event" or "intent", its event JSON text) and
 * waits until it is written as the sync mode promises. K_E_INTERNAL if it
 * could not be written.
 */
K_MUST_CHECK k_status audit_writer_append(const char *type, const char *event_json, size_t len);

/* Lists the log files of dir (names only), sorted; caller frees with audit_free_names. */
K_MUST_CHECK k_status audit_list_logs(const char *dir, char ***names, size_t *n);
void audit_free_names(char **names, size_t n);
/* Reads a whole file into buf (bounded by buf's max). */
K_MUST_CHECK k_status audit_read_file(const char *path, struct kbuf *buf);
/* SHA-256 as lower-case hex (65 bytes with the NUL). */
void audit_sha256_hex(const void *p, size_t n, char out[65]);
void audit_hex(const uint8_t *p, size_t n, char *out);

#endif
