/*
 * banned.h — functions kinko code may not call (after git's banned.h).
 *
 * The build force-includes this file into every translation unit
 * (`-include src/core/banned.h` in the Makefile's CFLAGS), so it is seen
 * before any system header. That is why it does not #define the names
 * away, as git's does: a macro would also rewrite the declarations in
 * <string.h> and <stdio.h> that come after it. Instead it declares each
 * function, with the prototype the C library uses, marked deprecated; the
 * library's own declaration later merges with this one and keeps the
 * mark. Any call to, or address taken of, one of these functions in
 * kinko code is then a -Wdeprecated-declarations warning, which -Werror
 * makes a compile error. Uses inside system headers are not reported.
 *
 * What to use instead: kbuf_append / kbuf_appendf (core/buf.h) for
 * copying and formatting, the kcursor readers for splitting and for
 * numbers (or strtoll with its end pointer and errno checked).
 */
#ifndef KINKO_CORE_BANNED_H
#define KINKO_CORE_BANNED_H

#include <stdarg.h>
#include <stddef.h>

#define KINKO_BANNED(why) __attribute__((deprecated("banned in kinko: " why)))

KINKO_BANNED("no bound; use kbuf_append") char *strcpy(char *dst, const char *src);
KINKO_BANNED("no bound; use kbuf_append") char *strcat(char *dst, const char *src);
KINKO_BANNED("may not terminate; use kbuf_append")
char *strncpy(char *dst, const char *src, size_t n);
KINKO_BANNED("no bound; use kbuf_appendf") int sprintf(char *dst, const char *fmt, ...);
KINKO_BANNED("no bound; use kbuf_appendf") int vsprintf(char *dst, const char *fmt, va_list ap);
KINKO_BANNED("hidden state; use a kcursor") char *strtok(char *s, const char *delim);
KINKO_BANNED("no error report; use strtoll") int atoi(const char *s);
KINKO_BANNED("no error report; use strtoll") long atol(const char *s);
KINKO_BANNED("no bound") char *gets(char *s);

#endif
