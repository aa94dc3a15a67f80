/*
 * sigv4.h — AWS Signature Version 4 verification (Authorization header form).
 *
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
 *
 * The HTTP layer hands over the request exactly as received (method, raw
 * path, raw query string, headers, body). sigv4_parse() reads the
 * Authorization header and X-Amz-Date / X-Amz-Security-Token; the caller
 * then looks up the access key (auth/identity) and calls sigv4_verify()
 * with the secret key. Nothing here allocates key material outside
 * ksecret; derived signing keys are cached per thread and wiped.
 *
 * Errors, as AWS returns them:
 *   no Authorization header                 K_E_MISSING_AUTH
 *   header present but malformed            K_E_INCOMPLETE_SIGNATURE
 *   neither X-Amz-Date nor Date             K_E_INCOMPLETE_SIGNATURE
 *   date more than 5 minutes off            K_E_INVALID_SIGNATURE ("Signature expired: ...")
 *   scope date != request date, wrong
 *   service, "aws4_request" missing         K_E_INVALID_SIGNATURE
 *   signature mismatch                      K_E_INVALID_SIGNATURE
 * A message for the client is written into `msg` (may stay empty, then the
 * error table's default is used).
 */
#ifndef KINKO_AUTH_SIGV4_H
#define KINKO_AUTH_SIGV4_H

#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
#include "core/secret.h"

struct http_header {
	struct kslice name;  /* as received; compared case-insensitively */
	struct kslice value; /* as received, untrimmed */
};

struct sigv4_request {
	struct kslice method; /* "POST" */
	struct kslice path;   /* raw path as on the wire, without the query: "/" */
	struct kslice query;  /* raw query string without '?', may be empty */
	const struct http_header *headers;
	size_t n_headers;
	struct kslice payload; /* the body */
};

#define SIGV4_MAX_ACCESS_KEY 128
#define SIGV4_MAX_REGION 32
#define SIGV4_MAX_SERVICE 32

struct sigv4_auth {
	char access_key[SIGV4_MAX_ACCESS_KEY + 1];
	char scope_date[9]; /* YYYYMMDD from the credential scope */
	char region[SIGV4_MAX_REGION + 1];
	char service[SIGV4_MAX_SERVICE + 1];
	char amz_date[17];	      /* YYYYMMDDTHHMMSSZ */
	int64_t request_time;	      /* amz_date as epoch seconds */
	struct kslice signed_headers; /* "content-type;host;x-amz-date", points into the request */
	uint8_t signature[32];
	struct kslice security_token; /* X-Amz-Security-Token, empty if absent */
};

/* Parses the Authorization header and the date. `msg` gets a client message on error. */
K_MUST_CHECK k_status sigv4_parse(const struct sigv4_request *req, struct sigv4_auth *out,
				  struct kbuf *msg);

/*
 * Checks the date against `now` (epoch seconds, +-5 minutes), the scope's
 * service against `expected_service` (NULL: any), then recomputes the
 * signature with `secret_key` and compares it in constant time.
 */
K_MUST_CHECK k_status sigv4_verify(const struct sigv4_request *req, const struct sigv4_auth *auth,
				   const struct ksecret *secret_key, const char *expected_service,
				   int64_t now, struct kbuf *msg);

/*
 * Checks that each header named in `names` (lowercase, NULL-terminated;
 * NULL: none) is in auth's SignedHeaders whenever the request carries it.
 * K_E_INVALID_SIGNATURE when one is carried but not signed, with the
 * message "There were headers present in the request which were not
 * signed: x-amz-target, content-type." (names in the order given). The
 * API layer asks for x-amz-target and content-type on every JSON-protocol
 * request, as the AWS SDKs always sign them.
 */
K_MUST_CHECK k_status sigv4_require_signed(const struct sigv4_request *req,
					   const struct sigv4_auth *auth, const char *const *names,
					   struct kbuf *msg);

/*
 * Building blocks, exposed for the unit tests (AWS's published examples)
 * and for the benchmark's signer.
 * The canonical request, exactly as AWS defines it.
 */
K_MUST_CHECK k_status sigv4_canonical_request(const struct sigv4_request *req,
					      struct kslice signed_headers, struct kbuf *out);
/* The string to sign for a canonical request. */
K_MUST_CHECK k_status sigv4_string_to_sign(const char *amz_date, const char *scope_date,
					   const char *region, const char *service,
					   struct kslice canonical_request, struct kbuf *out);
/* Signature = HMAC(kSigning, string to sign), 32 bytes into sig. */
K_MUST_CHECK k_status sigv4_sign(const struct ksecret *secret_key, const char *scope_date,
				 const char *region, const char *service,
				 struct kslice string_to_sign, uint8_t sig[32]);

/* Who signs a request kinko sends, and for which credential scope. */
struct sigv4_signer {
	const char *access_key_id;
	const struct ksecret *secret; /* the secret access key's bytes */
	const char *region;
	const char *service;
};
/*
 * The header line "Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
 * Signature=..." that signs req (its headers those signed_headers names) at
 * amz_date (YYYYMMDD'T'HHMMSS'Z'), into out (n bytes): for kinko's own
 * clients (the XKS client, the peer client). K_E_VALIDATION when it does not fit.
 */
K_MUST_CHECK k_status sigv4_authorization(const struct sigv4_request *req,
					  struct kslice signed_headers, const char amz_date[17],
					  const struct sigv4_signer *who, char *out, size_t n);
/* X-Amz-Date for kinko's clock now (the test clock when one is set): YYYYMMDD'T'HHMMSS'Z'. */
void sigv4_amz_date_now(char out[17]);
/* The same for `when` (seconds since the epoch). */
void sigv4_amz_date_at(int64_t when, char out[17]);

/*
 * Limits and details of the functions above (additions to the contract).
 *
 * Bounds, checked by sigv4_parse() / sigv4_canonical_request():
 *   SignedHeaders        at most SIGV4_MAX_SIGNED_HEADERS names, lowercase,
 *                        sorted, no duplicates (K_E_INCOMPLETE_SIGNATURE)
 *   query string         at most SIGV4_MAX_QUERY_PARAMS parameters and
 *   path                 SIGV4_MAX_PATH_SEGMENTS segments (K_E_VALIDATION)
 *   canonical request    at most SIGV4_MAX_CANONICAL_REQUEST bytes in
 *                        sigv4_verify(), else the max of `out` (K_E_VALIDATION)
 * sigv4_parse() additionally returns K_E_INVALID_SIGNATURE when "host" is
 * not signed, when the credential scope's terminator is not aws4_request or
 * its date is not the request's date, and when Signature is not 64 hex
 * digits; credential fields over their size (access key 128, region and
 * service 32) or outside their alphabet (access key [A-Za-z0-9._-],
 * region and service [a-z0-9-]) are K_E_INCOMPLETE_SIGNATURE, and so is a
 * repeated Authorization,
 * X-Amz-Date, X-Amz-Security-Token or (when it is the date used) Date
 * header. `msg` may be NULL; sigv4_parse() and sigv4_verify() empty it on
 * entry, and it never receives the request's signature.
 *
 * sigv4_canonical_request() appends to `out`; on failure `out` is left as
 * it was. A name in `signed_headers` that the request does not carry, or an
 * X-Amz-Content-Sha256 header that is not the payload's real SHA-256, is
 * K_E_INVALID_SIGNATURE; a repeated X-Amz-Content-Sha256 is
 * K_E_INCOMPLETE_SIGNATURE. UNSIGNED-PAYLOAD (an Amazon S3 option) is
 * refused like any other wrong hash: every body kinko acts on is signed.
 *
 * The date window is SIGV4_MAX_SKEW_SECONDS either side of `now`,
 * inclusive. A request early by more is refused with AWS's other message,
 * "Signature not yet current: <date> is still later than <now + 5 min>
 * (<now> + 5 min.)".
 */
#define SIGV4_MAX_SIGNED_HEADERS 64
#define SIGV4_MAX_QUERY_PARAMS 128
#define SIGV4_MAX_PATH_SEGMENTS 128
#define SIGV4_MAX_CANONICAL_REQUEST (256u * 1024u)
#define SIGV4_MAX_SKEW_SECONDS 300

/*
 * The per-thread signing-key cache. Each thread keeps SIGV4_CACHE_SLOTS
 * derived kSigning keys (least recently used is evicted), keyed by access
 * key, scope date, region, service and the SHA-256 of the secret, so a
 * rotated secret never hits a stale key. sigv4_sign(), which has no access
 * key, caches under the empty access key. The keys live in one ksecret per
 * thread; a slot is wiped when evicted and the whole table when the thread
 * exits (a pthread key destructor) or calls sigv4_thread_cleanup().
 */
#define SIGV4_CACHE_SLOTS 16

struct sigv4_cache_stats {
	uint64_t hits;	 /* signing keys found in the calling thread's cache */
	uint64_t misses; /* signing keys derived (and cached) by the calling thread */
};

/* The calling thread's cache counters (zero if it never signed). */
void sigv4_cache_stats_get(struct sigv4_cache_stats *out);

/*
 * Wipes and frees the calling thread's cache and OpenSSL handles now rather
 * than at thread exit. For the main thread at shutdown (thread-exit
 * destructors do not run for it) and for tests. Safe to call at any time;
 * the next signature simply rebuilds the cache.
 */
void sigv4_thread_cleanup(void);

#endif
