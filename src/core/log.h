/*
 * log.h — the server's diagnostic log (stderr). Never pass plaintext,
 * key material, secret values or signatures to it.
 */
#ifndef KINKO_CORE_LOG_H
#define KINKO_CORE_LOG_H

enum klog_level { KLOG_DEBUG = 0, KLOG_INFO = 1, KLOG_WARN = 2, KLOG_ERROR = 3 };

void klog_set_level(enum klog_level lvl);
void klog(enum klog_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_DEBUG(...) klog(KLOG_DEBUG, __VA_ARGS__)
#define LOG_INFO(...) klog(KLOG_INFO, __VA_ARGS__)
#define LOG_WARN(...) klog(KLOG_WARN, __VA_ARGS__)
#define LOG_ERROR(...) klog(KLOG_ERROR, __VA_ARGS__)

#endif
