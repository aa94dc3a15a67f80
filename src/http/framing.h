/*
 * framing.h — where a request's body ends, decided from its head alone.
 *
 * A front end and a back end that disagree on where a body ends let a
 * client hide a second request inside the first (request smuggling). So
 * before a byte of body is read, the head is checked against RFC 9112
 * §6 and anything ambiguous is refused, never guessed at:
 *
 *   Content-Length and Transfer-Encoding together      400
 *   Content-Length that is not one plain number         400
 *   (several lines, "5, 5", signs, spaces inside)
 *   Transfer-Encoding naming a coding other than        501
 *   "chunked"
 *   chunked given twice, Transfer-Encoding on several   400
 *   lines, or an empty coding list
 *   Content-Length above the operation's body limit     413
 *
 * The caller answers with that status and closes the connection (RFC
 * 9112 §6.1: "the server MUST close the connection after responding to
 * such a request"), without reading the body.
 */
#ifndef KINKO_HTTP_FRAMING_H
#define KINKO_HTTP_FRAMING_H

#include <stddef.h>
#include <stdint.h>
#include "auth/sigv4.h"

/*
 * Checks the framing headers among h[0..n). Returns 0 when the body's
 * extent is unambiguous (none, a Content-Length of at most max_body, or
 * chunked), else the HTTP status to refuse with (400, 413 or 501); *why
 * then names the reason in a short static phrase for the log and the
 * answer.
 */
int http_framing_check(const struct http_header *h, size_t n, uint64_t max_body, const char **why);

#endif
