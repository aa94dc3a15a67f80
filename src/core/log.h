/*
 * log.h — the server's diagnostic log. Never pass plaintext, key material,
 * secret values or signatures to it.
 *
 * Lines go to standard error. klog_open_file() points standard error at a
 * file instead (so everything the process writes there, libraries
 * included, lands in the one log), and klog_reopen() opens that path again,
 * which is what logrotate expects after it renamed the file: the server
 * reopens on SIGHUP.
 */
#ifndef KINKO_CORE_LOG_H
#define KINKO_CORE_LOG_H

#include "core/buf.h"
#include "core/result.h"

enum klog_level {
	KLOG_DEBUG = 0,
	KLOG_INFO = 1,
	KLOG_WARN = 2,
	KLOG_ERROR = 3
};

void klog_set_level(enum klog_level lvl);
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

#define LOG_DEBUG(...) klog(KLOG_DEBUG, __VA_ARGS__)
#define LOG_INFO(...) klog(KLOG_INFO, __VA_ARGS__)
#define LOG_WARN(...) klog(KLOG_WARN, __VA_ARGS__)
#define LOG_ERROR(...) klog(KLOG_ERROR, __VA_ARGS__)

#endif
