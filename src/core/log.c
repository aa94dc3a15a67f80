#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum klog_level min_level = KLOG_INFO;

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
