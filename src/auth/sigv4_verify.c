/*
 * sigv4_verify.c — verifying a parsed request: the date window, the
 * scope's service, the signature (recomputed and compared in constant
 * time), and the rule that some headers must be signed when present.
 */
#include "auth/internal.h"

#include <string.h>

#include "crypto/crypto.h"
#include "core/banned.h"

/*
 * "Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z
 * (20150830T124600Z - 5 min.)" and, for a clock ahead of ours, "Signature
 * not yet current: <date> is still later than <now + 5 min> (<now> + 5
 * min.)", both InvalidSignature, as AWS words them.
 */
static K_MUST_CHECK k_status check_freshness(const struct sigv4_auth *auth, int64_t now,
					     struct kbuf *msg)
{
	char now_s[SIGV4_AMZ_DATE_LEN + 1];
	char edge_s[SIGV4_AMZ_DATE_LEN + 1];
	bool expired = now > INT64_MIN + SIGV4_MAX_SKEW_SECONDS &&
		       auth->request_time < now - SIGV4_MAX_SKEW_SECONDS;
	bool early = now < INT64_MAX - SIGV4_MAX_SKEW_SECONDS &&
		     auth->request_time > now + SIGV4_MAX_SKEW_SECONDS;

	if (!expired && !early)
		return K_OK;
	sigv4_format_amz_date(now, now_s);
	sigv4_format_amz_date(expired ? now - SIGV4_MAX_SKEW_SECONDS : now + SIGV4_MAX_SKEW_SECONDS,
			      edge_s);
	sigv4_msg_str(msg, expired ? "Signature expired: " : "Signature not yet current: ");
	sigv4_msg_str(msg, auth->amz_date);
	sigv4_msg_str(msg, expired ? " is now earlier than " : " is still later than ");
	sigv4_msg_str(msg, edge_s);
	sigv4_msg_str(msg, " (");
	sigv4_msg_str(msg, now_s);
	sigv4_msg_str(msg, expired ? " - 5 min.)" : " + 5 min.)");
	return K_E_INVALID_SIGNATURE;
}

/*
 * Empties a per-thread scratch buffer for the next request (wiping what it
 * held). A buffer that grew past SIGV4_SCRATCH_KEEP for an unusually large
 * request is freed instead, so a thread does not keep it for good.
 */
#define SIGV4_SCRATCH_KEEP 8192
static void scratch_done(struct kbuf *b)
{
	if (b->cap > SIGV4_SCRATCH_KEEP)
		kbuf_release(b);
	else
		kbuf_reset(b);
}

/* A sigv4_auth that did not come from sigv4_parse() is a caller bug. */
static bool auth_valid(const struct sigv4_auth *a)
{
	return bounded_len(a->access_key, sizeof a->access_key) <= SIGV4_MAX_ACCESS_KEY &&
	       bounded_len(a->amz_date, sizeof a->amz_date) == SIGV4_AMZ_DATE_LEN &&
	       sigv4_scope_valid(a->scope_date, a->region, a->service) &&
	       a->signed_headers.ptr != NULL && a->signed_headers.len > 0;
}

/*
 * Date window, service, then the signature itself: canonical request,
 * string to sign, HMAC with the (cached) signing key, constant-time
 * comparison. A mismatch leaves `msg` empty, so the client gets AWS's
 * standard text.
 */
k_status sigv4_verify(const struct sigv4_request *req, const struct sigv4_auth *auth,
		      const struct ksecret *secret_key, const char *expected_service, int64_t now,
		      struct kbuf *msg)
{
	k_status rc = K_OK;
	uint8_t sig[32];
	struct sigv4_tls *t = sigv4_tls_get();

	memset(sig, 0, sizeof sig);
	sigv4_msg_clear(msg);
	ENSURE_GOTO(t != NULL, K_E_INTERNAL);
	ENSURE_GOTO(req != NULL && auth != NULL && secret_key != NULL, K_E_INTERNAL);
	ENSURE_GOTO(auth_valid(auth), K_E_INTERNAL);

	GUARD_GOTO(check_freshness(auth, now, msg));
	if (expected_service != NULL && strcmp(auth->service, expected_service) != 0) {
		sigv4_msg_str(msg, "Credential should be scoped to correct service: '");
		sigv4_msg_echo(msg, kslice_cstr(expected_service), SIGV4_MAX_SERVICE);
		sigv4_msg_str(msg, "'. ");
		rc = K_E_INVALID_SIGNATURE;
		goto out;
	}
	GUARD_GOTO(sigv4_canonical_request(req, auth->signed_headers, &t->creq));
	GUARD_GOTO(sigv4_string_to_sign(auth->amz_date, auth->scope_date, auth->region,
					auth->service, kbuf_slice(&t->creq), &t->sts));
	GUARD_GOTO(sigv4_sign_cached(auth->access_key, secret_key, auth->scope_date, auth->region,
				     auth->service, kbuf_slice(&t->sts), sig));
	ENSURE_GOTO(crypto_memeq(sig, auth->signature, sizeof sig), K_E_INVALID_SIGNATURE);
out:
	crypto_wipe(sig, sizeof sig);
	if (t != NULL) {
		scratch_done(&t->creq);
		scratch_done(&t->sts);
	}
	return rc;
}

/*
 * Headers that must be signed when the request carries them. AWS's
 * signing guide: "The CanonicalHeaders list must include the following:
 * HTTP host header. If the Content-Type header is present in the request,
 * it must be added to the CanonicalHeaders list. Any x-amz-* headers that
 * you plan to include in your request must also be added."
 * (https://docs.aws.amazon.com/general/latest/gr/sigv4-create-canonical-request.html,
 * since moved into the IAM User Guide). Amazon S3 refuses an unsigned
 * one with "There were headers present in the request which were not
 * signed", and we answer with the same words. A request whose SignedHeaders passes this check has
 * every listed header covered by the signature, so no one on the way can
 * change it (the operation named by X-Amz-Target, for instance).
 */
k_status sigv4_require_signed(const struct sigv4_request *req, const struct sigv4_auth *auth,
			      const char *const *names, struct kbuf *msg)
{
	struct signed_list list;
	struct kslice ignored;
	bool first = true;

	sigv4_msg_clear(msg);
	ENSURE(req != NULL && auth != NULL, K_E_INTERNAL);
	if (names == NULL)
		return K_OK;
	ENSURE(k_ok(sigv4_signed_headers_split(auth->signed_headers, &list)),
	       K_E_INCOMPLETE_SIGNATURE);
	for (size_t i = 0; names[i] != NULL; i++) {
		if (sigv4_header_find(req, names[i], &ignored) == 0)
			continue;
		bool found = false;
		for (size_t j = 0; j < list.n && !found; j++)
			found = kslice_eq_cstr(list.names[j], names[i]);
		if (found)
			continue;
		sigv4_msg_str(
			msg,
			first ? "There were headers present in the request which were not signed: "
			      : ", ");
		sigv4_msg_str(msg, names[i]);
		first = false;
	}
	if (first)
		return K_OK;
	sigv4_msg_str(msg, ".");
	return K_E_INVALID_SIGNATURE;
}
