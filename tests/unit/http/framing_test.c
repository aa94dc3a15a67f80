#include "http/framing.h"
#include "testlib.h"

#define MAX_BODY 1000u

/* Checks "Name: value" pairs given as a NULL-terminated list of strings. */
static int check(const char *const *pairs, const char **why)
{
	struct http_header h[16];
	size_t n = 0;
	for (; pairs[2 * n] != NULL; n++) {
		h[n].name = kslice_cstr(pairs[2 * n]);
		h[n].value = kslice_cstr(pairs[2 * n + 1]);
	}
	return http_framing_check(h, n, MAX_BODY, why);
}

#define VERDICT(expect, ...)                                                                       \
	do {                                                                                       \
		const char *const pairs_[] = {__VA_ARGS__, NULL};                                  \
		const char *why_ = NULL;                                                           \
		CHECK_EQ_INT(check(pairs_, &why_), expect);                                        \
		CHECK(why_ != NULL);                                                               \
	} while (0)

static void test_plain_requests(void)
{
	VERDICT(0, "Host", "x");
	VERDICT(0, "Content-Length", "0");
	VERDICT(0, "content-length", " 1000 ");
	VERDICT(0, "Transfer-Encoding", "chunked");
	VERDICT(0, "TRANSFER-ENCODING", "Chunked");
	VERDICT(0, "Transfer-Encoding", " , chunked ,"); /* empty list members */
}

static void test_smuggling(void)
{
	/* RFC 9112 §6.1: both, in either order, is refused. */
	VERDICT(400, "Content-Length", "5", "Transfer-Encoding", "chunked");
	VERDICT(400, "Transfer-Encoding", "chunked", "Content-Length", "0");
	/* Lengths that two parsers may read differently. */
	VERDICT(400, "Content-Length", "2", "Content-Length", "40");
	VERDICT(400, "Content-Length", "2", "Content-Length", "2");
	VERDICT(400, "Content-Length", "2, 2");
	VERDICT(400, "Content-Length", "+2");
	VERDICT(400, "Content-Length", "-1");
	VERDICT(400, "Content-Length", "0x10");
	VERDICT(400, "Content-Length", "1 0");
	VERDICT(400, "Content-Length", "");
	/* chunked twice, or no coding at all. */
	VERDICT(400, "Transfer-Encoding", "chunked, chunked");
	VERDICT(400, "Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked");
	VERDICT(400, "Transfer-Encoding", "");
	VERDICT(400, "Transfer-Encoding", "chunked", "Transfer-Encoding", "");
}

static void test_unknown_codings(void)
{
	VERDICT(501, "Transfer-Encoding", "xchunked");
	VERDICT(501, "Transfer-Encoding", "gzip, chunked");
	VERDICT(501, "Transfer-Encoding", "chunked, gzip");
	VERDICT(501, "Transfer-Encoding", "identity");
	VERDICT(501, "Transfer-Encoding", "chunked", "Transfer-Encoding", "gzip");
	/* An unknown coding is refused even beside a Content-Length. */
	VERDICT(501, "Content-Length", "3", "Transfer-Encoding", "x");
}

static void test_too_large(void)
{
	VERDICT(413, "Content-Length", "1001");
	VERDICT(413, "Content-Length", "99999999999999999999999999999999");
}

int main(void)
{
	RUN(test_plain_requests);
	RUN(test_smuggling);
	RUN(test_unknown_codings);
	RUN(test_too_large);
	return tl_summary();
}
