/*
 * sigv4_header.c — the Authorization header of a request kinko itself
 * sends (sigv4.h, sigv4_authorization): the XKS client and the client of
 * peer deployments sign with the same canonical request, string to sign
 * and signature that kinko's API verifies.
 */
#include "auth/internal.h"

#include <stdio.h>
#include <time.h>

#include "core/clock.h"

#include "core/banned.h"

k_status sigv4_authorization(const struct sigv4_request *req, struct kslice signed_headers,
			     const char amz_date[17], const struct sigv4_signer *who, char *out,
			     size_t n)
{
	char scope_date[9];
	snprintf(scope_date, sizeof scope_date, "%.8s", amz_date);
	struct kbuf creq, sts;
	kbuf_init(&creq, SIGV4_MAX_CANONICAL_REQUEST);
	kbuf_init(&sts, SIGV4_MAX_CANONICAL_REQUEST);
	uint8_t sig[32];
	k_status rc = sigv4_canonical_request(req, signed_headers, &creq);
	if (k_ok(rc))
		rc = sigv4_string_to_sign(amz_date, scope_date, who->region, who->service,
					  kbuf_slice(&creq), &sts);
	if (k_ok(rc))
		rc = sigv4_sign(who->secret, scope_date, who->region, who->service,
				kbuf_slice(&sts), sig);
	kbuf_release(&creq);
	kbuf_release(&sts);
	GUARD(rc);
	char hex[65];
	for (size_t i = 0; i < sizeof sig; i++)
		snprintf(hex + 2 * i, 3, "%02x", sig[i]);
	int w = snprintf(out, n,
			 "Authorization: AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
			 "SignedHeaders=%.*s, Signature=%s",
			 who->access_key_id, scope_date, who->region, who->service,
			 (int)signed_headers.len, (const char *)signed_headers.ptr, hex);
	return w > 0 && (size_t)w < n ? K_OK : K_E_VALIDATION;
}

void sigv4_amz_date_now(char out[17])
{
	sigv4_amz_date_at(kclock_now(), out);
}

void sigv4_amz_date_at(int64_t when, char out[17])
{
	time_t t = (time_t)when;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}
