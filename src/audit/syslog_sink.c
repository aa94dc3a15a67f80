/*
 * syslog_sink.c — the witness's syslog sink: each period digest as one
 * message (ident "kinko-audit-witness", facility LOG_AUTHPRIV), for a
 * log collector outside the data folder to keep. Its own file because
 * <syslog.h> and core/log.h both define LOG_INFO.
 */
#include <syslog.h>

#include "audit/internal.h"
#include "core/banned.h"

void audit_syslog_open(void)
{
	openlog("kinko-audit-witness", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
}

void audit_syslog_send(const char *line, size_t n)
{
	syslog(LOG_AUTHPRIV | LOG_INFO, "%.*s", (int)n, line);
}

void audit_syslog_close(void)
{
	closelog();
}
