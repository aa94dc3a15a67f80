#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/banned.h"

static enum klog_level min_level = KLOG_INFO;
static char log_path[1024];

void klog_set_level(enum klog_level lvl)
{
	min_level = lvl;
}

void klog(enum klog_level lvl, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	if (lvl < min_level)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	char ts[32];
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s kinko %s: %s\n", ts, names[lvl], line);
}

/*
 * Opens the log file and moves it onto descriptor 2. dup2 replaces the
 * descriptor atomically, so a thread writing a line at that moment writes
 * it whole to the old file or to the new one.
 */
static int switch_stderr(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return errno;
	fflush(stderr);
	int e = dup2(fd, STDERR_FILENO) < 0 ? errno : 0;
	close(fd);
	return e;
}

k_status klog_open_file(const char *path, struct kbuf *msg)
{
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof log_path) {
		kbuf_note(msg, "%s", "the log file path is empty or too long");
		return K_E_VALIDATION;
	}
	int e = switch_stderr(path);
	if (e != 0) {
		kbuf_note(msg, "cannot open the log file %s: %s", path, strerror(e));
		return K_E_VALIDATION;
	}
	memcpy(log_path, path, n + 1);
	return K_OK;
}

k_status klog_reopen(void)
{
	if (log_path[0] == 0)
		return K_OK;
	int e = switch_stderr(log_path);
	if (e != 0) {
		LOG_ERROR("cannot reopen the log file %s: %s (still writing to the old one)",
			  log_path, strerror(e));
		return K_E_INTERNAL;
	}
	return K_OK;
}
