/*
 * sigv4_canonical.c — the canonical request and the string to sign,
 * exactly as AWS defines them, from the request as it was received.
 *
 * Reference: "Create a signed AWS API request", IAM User Guide,
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
 *
 * Both functions append to the caller's buffer and roll it back (wiping
 * what was written) on failure. The hashes run on crypto/'s per-thread
 * SHA-256 context.
 */
#include "auth/internal.h"

#include <string.h>

#include "crypto/crypto.h"
#include "crypto/hmac.h"
#include "core/hex.h"
#include "core/banned.h"

/* ------------------------------------------------------------------ */
/* Buffer helpers                                                      */
/* ------------------------------------------------------------------ */

/* Cuts `b` back to `len` bytes, wiping the tail (failed appends roll back). */
static void buf_rollback(struct kbuf *b, size_t len)
{
	if (b->ptr == NULL || len >= b->len)
		return;
	crypto_wipe(b->ptr + len, b->len - len);
	b->len = len;
	b->ptr[len] = 0;
}

static void hex_lower(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/*
 * "URI encode every byte except the unreserved characters: 'A'-'Z', 'a'-'z',
 * '0'-'9', '-', '.', '_', and '~'. The space character is a reserved
 * character and must be encoded as "%20" (and not as "+"). Each URI encoded
 * byte is formed by a '%' and the two-digit hexadecimal value of the byte.
 * Letters in the hexadecimal value must be uppercase, for example "%1A"."
 * Runs of unreserved bytes are appended in one call.
 */
static K_MUST_CHECK k_status append_uri_encoded(struct kbuf *out, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i = 0;
	while (i < n) {
		size_t start = i;
		while (i < n && is_unreserved(p[i]))
			i++;
		if (i > start)
			GUARD(kbuf_append(out, p + start, i - start));
		if (i < n) {
			uint8_t esc[3] = {'%', (uint8_t)digits[p[i] >> 4],
					  (uint8_t)digits[p[i] & 15]};
			GUARD(kbuf_append(out, esc, sizeof esc));
			i++;
		}
	}
	return K_OK;
}

/*
 * "Trimall": "Trim any leading or trailing spaces ... Convert sequential
 * spaces to a single space." (AWS's get-header-value-trim example turns
 * "a   b   c" into "a b c", quotes or not.)
 */
static K_MUST_CHECK k_status append_trimall(struct kbuf *out, struct kslice v)
{
	size_t i = 0;
	bool first = true;
	while (i < v.len) {
		while (i < v.len && is_trim_space(v.ptr[i]))
			i++;
		size_t start = i;
		while (i < v.len && !is_trim_space(v.ptr[i]))
			i++;
		if (i == start)
			continue;
		if (!first)
			GUARD(kbuf_append_byte(out, ' '));
		GUARD(kbuf_append(out, v.ptr + start, i - start));
		first = false;
	}
	return K_OK;
}

/*
 * One canonical header line's value: every header of that name, in the
 * order received, trimmed and joined with ','. A signed header the request
 * does not carry cannot have been signed by this request's sender.
 */
static K_MUST_CHECK k_status append_header_values(struct kbuf *out, const struct sigv4_request *req,
						  struct kslice name)
{
	bool found = false;
	for (size_t i = 0; i < req->n_headers; i++) {
		if (!slice_eq_nocase(req->headers[i].name, name))
			continue;
		if (found)
			GUARD(kbuf_append_byte(out, ','));
		GUARD(append_trimall(out, req->headers[i].value));
		found = true;
	}
	ENSURE(found, K_E_INVALID_SIGNATURE);
	return K_OK;
}

/* ------------------------------------------------------------------ */
/* Canonical request                                                   */
/* ------------------------------------------------------------------ */

/*
 * CanonicalURI for every service but S3: "Normalize URI paths according to
 * RFC 3986. Remove redundant and relative path components. Each path
 * segment must be URI-encoded twice". The path we get is the one on the
 * wire, which the client has already encoded once, so encoding each raw
 * segment once more is the second encoding ("/a%20b" -> "/a%2520b", as in
 * AWS's get-space example).
 *
 * Normalization follows the AWS SDKs: empty and "." segments are dropped,
 * ".." drops the previous segment, and a trailing '/' is kept when at
 * least one segment remains. An empty path is "/".
 */
static K_MUST_CHECK k_status canonical_uri(struct kslice path, struct kbuf *out)
{
	struct kslice segs[SIGV4_MAX_PATH_SEGMENTS];
	size_t n = 0;
	struct kcursor c = kcursor_make(path);

	while (kcursor_left(&c) > 0) {
		struct kslice seg = cursor_take_until_byte(&c, '/');
		cursor_skip_byte(&c, '/');
		if (seg.len == 0 || kslice_eq_cstr(seg, "."))
			continue;
		if (kslice_eq_cstr(seg, "..")) {
			if (n > 0)
				n--;
			continue;
		}
		ENSURE(n < SIGV4_MAX_PATH_SEGMENTS, K_E_VALIDATION);
		segs[n++] = seg;
	}
	GUARD(kbuf_append_byte(out, '/'));
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			GUARD(kbuf_append_byte(out, '/'));
		GUARD(append_uri_encoded(out, segs[i].ptr, segs[i].len));
	}
	if (n > 0 && path.ptr[path.len - 1] == '/')
		GUARD(kbuf_append_byte(out, '/'));
	return K_OK;
}

/*
 * One query name or value, canonical: percent-escapes from the wire are
 * decoded and the bytes re-encoded with the SigV4 rules, so "%2f", "%2F"
 * and "/" all come out as "%2F". A '%' not followed by two hex digits is
 * a literal '%', and '+' is a literal '+' (SigV4 never reads it as a
 * space); both match AWS's post-vanilla-query-nonunreserved example.
 */
static K_MUST_CHECK k_status append_query_component(struct kbuf *out, struct kslice s)
{
	for (size_t i = 0; i < s.len; i++) {
		uint8_t c = s.ptr[i];
		if (c == '%' && s.len - i >= 3) {
			int hi = khex_value(s.ptr[i + 1]);
			int lo = khex_value(s.ptr[i + 2]);
			if (hi >= 0 && lo >= 0) {
				c = (uint8_t)(hi << 4 | lo);
				i += 2;
			}
		}
		GUARD(append_uri_encoded(out, &c, 1));
	}
	return K_OK;
}

struct query_param {
	size_t name_off, name_len;
	size_t value_off, value_len;
};

static int query_param_cmp(const uint8_t *base, const struct query_param *a,
			   const struct query_param *b)
{
	int r = bytes_cmp(base + a->name_off, a->name_len, base + b->name_off, b->name_len);
	if (r != 0)
		return r;
	return bytes_cmp(base + a->value_off, a->value_len, base + b->value_off, b->value_len);
}

/*
 * CanonicalQueryString: "URI-encode each parameter name and value ...
 * Sort the parameters by parameter name ... sorting occurs after
 * encoding. If two parameters have the same name, sort by value. ... If
 * a parameter has no value, use an empty string" ("Param1" -> "Param1=").
 * Empty components ("a=1&&b=2") carry no parameter and are skipped.
 * The encoded names and values are collected in one scratch buffer and
 * sorted by insertion (at most SIGV4_MAX_QUERY_PARAMS of them).
 */
static K_MUST_CHECK k_status canonical_query(struct kslice query, struct kbuf *out)
{
	k_status rc = K_OK;
	struct query_param params[SIGV4_MAX_QUERY_PARAMS];
	size_t n = 0;
	struct kbuf enc;
	struct kcursor c = kcursor_make(query);

	kbuf_init(&enc, SIGV4_MAX_CANONICAL_REQUEST);
	while (kcursor_left(&c) > 0) {
		struct kslice pair = cursor_take_until_byte(&c, '&');
		cursor_skip_byte(&c, '&');
		if (pair.len == 0)
			continue;
		ENSURE_GOTO(n < SIGV4_MAX_QUERY_PARAMS, K_E_VALIDATION);
		struct kcursor pc = kcursor_make(pair);
		struct kslice name = cursor_take_until_byte(&pc, '=');
		cursor_skip_byte(&pc, '=');
		struct kslice value = kslice_make(pc.ptr + pc.pos, kcursor_left(&pc));
		struct query_param *p = &params[n];
		p->name_off = enc.len;
		GUARD_GOTO(append_query_component(&enc, name));
		p->name_len = enc.len - p->name_off;
		p->value_off = enc.len;
		GUARD_GOTO(append_query_component(&enc, value));
		p->value_len = enc.len - p->value_off;
		n++;
	}
	if (n == 0)
		goto out;
	for (size_t i = 1; i < n; i++) {
		struct query_param key = params[i];
		size_t j = i;
		while (j > 0 && query_param_cmp(enc.ptr, &params[j - 1], &key) > 0) {
			params[j] = params[j - 1];
			j--;
		}
		params[j] = key;
	}
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			GUARD_GOTO(kbuf_append_byte(out, '&'));
		GUARD_GOTO(append_slice(
			out, kslice_make(enc.ptr + params[i].name_off, params[i].name_len)));
		GUARD_GOTO(kbuf_append_byte(out, '='));
		GUARD_GOTO(append_slice(
			out, kslice_make(enc.ptr + params[i].value_off, params[i].value_len)));
	}
out:
	kbuf_release(&enc);
	return rc;
}

/*
 * The last line: "HexEncode(Hash(RequestPayload))". When the request
 * carries X-Amz-Content-Sha256 the client signed that value instead; we
 * accept it only if it is the payload's real hash, so a client cannot sign
 * one body and send another.
 *
 * UNSIGNED-PAYLOAD is refused too. It is an Amazon S3 option ("set the
 * value to the literal string UNSIGNED-PAYLOAD (unsigned payload option)",
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html);
 * the other services hash the body they received, so such a signature does
 * not match and the answer is InvalidSignatureException with the usual
 * mismatch message. For a KMS every body must be covered by the signature:
 * an unsigned body would let whoever sits on the path swap the plaintext or
 * the key id of a signed request.
 */
static K_MUST_CHECK k_status append_payload_hash(const struct sigv4_request *req, struct kbuf *out)
{
	struct kslice claimed;
	uint8_t digest[32];
	char hex[65];
	size_t n = sigv4_header_find(req, "x-amz-content-sha256", &claimed);

	ENSURE(n <= 1, K_E_INCOMPLETE_SIGNATURE);
	claimed = slice_trim_ows(claimed);
	GUARD(crypto_thread_sha256(req->payload.ptr, req->payload.len, digest));
	hex_lower(digest, sizeof digest, hex);
	if (n == 0)
		return kbuf_append(out, hex, 64);
	ENSURE(slice_eq_nocase(claimed, kslice_make(hex, 64)), K_E_INVALID_SIGNATURE);
	return append_slice(out, claimed); /* what the client hashed into its signature */
}

/*
 * CanonicalRequest =
 *   HTTPRequestMethod + '\n' + CanonicalURI + '\n' + CanonicalQueryString + '\n' +
 *   CanonicalHeaders + '\n' + SignedHeaders + '\n' + HexEncode(Hash(RequestPayload))
 * where CanonicalHeaders is one "name:value\n" line per signed header, so
 * the headers block ends with an empty line.
 */
k_status sigv4_canonical_request(const struct sigv4_request *req, struct kslice signed_headers,
				 struct kbuf *out)
{
	k_status rc = K_OK;
	struct signed_list list;
	struct sigv4_tls *t = sigv4_tls_get();
	size_t start = out != NULL ? out->len : 0;

	ENSURE_GOTO(req != NULL && out != NULL && t != NULL, K_E_INTERNAL);
	ENSURE_GOTO(req->headers != NULL || req->n_headers == 0, K_E_INTERNAL);
	ENSURE_GOTO(req->method.len > 0, K_E_VALIDATION);
	GUARD_GOTO(sigv4_signed_headers_split(signed_headers, &list));

	GUARD_GOTO(append_slice(out, req->method));
	GUARD_GOTO(kbuf_append_byte(out, '\n'));
	GUARD_GOTO(canonical_uri(req->path, out));
	GUARD_GOTO(kbuf_append_byte(out, '\n'));
	GUARD_GOTO(canonical_query(req->query, out));
	GUARD_GOTO(kbuf_append_byte(out, '\n'));
	for (size_t i = 0; i < list.n; i++) {
		GUARD_GOTO(append_slice(out, list.names[i]));
		GUARD_GOTO(kbuf_append_byte(out, ':'));
		GUARD_GOTO(append_header_values(out, req, list.names[i]));
		GUARD_GOTO(kbuf_append_byte(out, '\n'));
	}
	GUARD_GOTO(kbuf_append_byte(out, '\n'));
	GUARD_GOTO(append_slice(out, signed_headers));
	GUARD_GOTO(kbuf_append_byte(out, '\n'));
	GUARD_GOTO(append_payload_hash(req, out));
out:
	if (k_failed(rc) && out != NULL)
		buf_rollback(out, start);
	return rc;
}

/* ------------------------------------------------------------------ */
/* String to sign and signature                                        */
/* ------------------------------------------------------------------ */

bool sigv4_scope_valid(const char *scope_date, const char *region, const char *service)
{
	size_t dl = bounded_len(scope_date, SIGV4_SCOPE_DATE_LEN + 1);
	size_t rl = bounded_len(region, SIGV4_MAX_REGION + 1);
	size_t sl = bounded_len(service, SIGV4_MAX_SERVICE + 1);
	return dl == SIGV4_SCOPE_DATE_LEN && rl > 0 && rl <= SIGV4_MAX_REGION && sl > 0 &&
	       sl <= SIGV4_MAX_SERVICE;
}

/*
 * StringToSign = "AWS4-HMAC-SHA256" + '\n' + RequestDateTime + '\n' +
 *                CredentialScope + '\n' + HexEncode(Hash(CanonicalRequest))
 * with CredentialScope = date/region/service/aws4_request.
 */
k_status sigv4_string_to_sign(const char *amz_date, const char *scope_date, const char *region,
			      const char *service, struct kslice canonical_request,
			      struct kbuf *out)
{
	k_status rc = K_OK;
	uint8_t digest[32];
	char hex[65];
	struct sigv4_tls *t = sigv4_tls_get();
	size_t start = out != NULL ? out->len : 0;

	ENSURE_GOTO(amz_date != NULL && scope_date != NULL && region != NULL && service != NULL &&
			    out != NULL && t != NULL,
		    K_E_INTERNAL);
	ENSURE_GOTO(bounded_len(amz_date, SIGV4_AMZ_DATE_LEN + 1) == SIGV4_AMZ_DATE_LEN,
		    K_E_VALIDATION);
	ENSURE_GOTO(sigv4_scope_valid(scope_date, region, service), K_E_VALIDATION);
	GUARD_GOTO(crypto_thread_sha256(canonical_request.ptr, canonical_request.len, digest));
	hex_lower(digest, sizeof digest, hex);

	GUARD_GOTO(kbuf_append_str(out, SIGV4_ALGORITHM "\n"));
	GUARD_GOTO(kbuf_append_str(out, amz_date));
	GUARD_GOTO(kbuf_append_byte(out, '\n'));
	GUARD_GOTO(kbuf_append_str(out, scope_date));
	GUARD_GOTO(kbuf_append_byte(out, '/'));
	GUARD_GOTO(kbuf_append_str(out, region));
	GUARD_GOTO(kbuf_append_byte(out, '/'));
	GUARD_GOTO(kbuf_append_str(out, service));
	GUARD_GOTO(kbuf_append_str(out, "/" SIGV4_TERMINATOR "\n"));
	GUARD_GOTO(kbuf_append(out, hex, 64));
out:
	if (k_failed(rc) && out != NULL)
		buf_rollback(out, start);
	return rc;
}
