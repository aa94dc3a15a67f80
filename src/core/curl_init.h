/*
 * curl_init.h — libcurl's one global initialization, for every HTTP
 * client of kinko (Secrets Manager's HTTP rotation functions, the XKS
 * client).
 *
 * libcurl is initialized once per process, and the first initialization
 * decides its allocator for good. kinko's clients send and receive
 * secrets through it (a rotation function's credentials, an XKS proxy's
 * plaintext), so libcurl gets a wiping allocator: each block carries its
 * size and is wiped before it is freed, and a reallocation always copies
 * into a new block and wipes the old one.
 */
#ifndef KINKO_CORE_CURL_INIT_H
#define KINKO_CORE_CURL_INIT_H

#include <curl/curl.h>
#include <stdbool.h>

#include "core/buf.h"
#include "core/result.h"

/*
 * Initializes libcurl with the wiping allocator on the first call (thread
 * safe); later calls return the first one's outcome. K_E_INTERNAL when
 * libcurl could not start.
 */
K_MUST_CHECK k_status kcurl_global_init(void);

/* A verified POST of kinko's signed clients (the XKS client, the peer client). */
struct kcurl_post {
	const char *url;
	const char *protocols;	    /* "https", or "http,https" */
	long timeout_ms;	    /* the whole call, and the connection within it */
	const char *ca_file;	    /* PEM CAs; NULL or "": the system's */
	struct curl_slist *headers; /* the request's header lines */
	struct kslice body;	    /* the request's body (must outlive the call) */
	struct kbuf *answer;	    /* the answer's body is appended; past its cap the
					transfer stops with CURLE_WRITE_ERROR */
	char *errbuf;		    /* CURL_ERROR_SIZE bytes: libcurl's reason */
};
/*
 * Sets e for p: TLS peer and host verified, no signals, the body posted
 * and the answer collected. False when libcurl refused an option.
 */
bool kcurl_set_post(CURL *e, const struct kcurl_post *p);

#endif
