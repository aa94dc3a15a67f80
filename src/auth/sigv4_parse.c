/*
 * sigv4_parse.c — reading a request's SigV4 credentials: the Authorization
 * header ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
 * Signature=..."), the request date, and the credential scope.
 *
 * Reference: "Create a signed AWS API request", IAM User Guide,
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
 *
 * Nothing here touches a secret: parsing runs before the access key is
 * even looked up, under the tight limits of sigv4.h.
 */
#include "auth/internal.h"

#include <string.h>

#include "crypto/hmac.h"
#include "core/hex.h"
#include "core/banned.h"

/* ------------------------------------------------------------------ */
/* Request headers                                                     */
/* ------------------------------------------------------------------ */

/* Number of headers named `name` (any case); *first gets the first value. */
size_t sigv4_header_find(const struct sigv4_request *req, const char *name, struct kslice *first)
{
	struct kslice want = kslice_cstr(name);
	size_t n = 0;
	*first = kslice_make("", 0);
	for (size_t i = 0; i < req->n_headers; i++) {
		if (!slice_eq_nocase(req->headers[i].name, want))
			continue;
		if (n == 0)
			*first = req->headers[i].value;
		n++;
	}
	return n;
}

/*
 * Splits SignedHeaders ("content-type;host;x-amz-date"). AWS: "the list of
 * headers that you included in CanonicalHeaders ... sorted and in lowercase,
 * separated by semicolons". We insist on exactly that form, so there is one
 * way to write each canonical request.
 */
k_status sigv4_signed_headers_split(struct kslice list, struct signed_list *out)
{
	struct kcursor c = kcursor_make(list);
	out->n = 0;
	ENSURE(list.len > 0, K_E_INCOMPLETE_SIGNATURE);
	while (true) {
		struct kslice name = cursor_take_until_byte(&c, ';');
		ENSURE(name.len > 0 && slice_all(name, is_lower_tchar), K_E_INCOMPLETE_SIGNATURE);
		ENSURE(out->n < SIGV4_MAX_SIGNED_HEADERS, K_E_INCOMPLETE_SIGNATURE);
		if (out->n > 0) {
			struct kslice prev = out->names[out->n - 1];
			ENSURE(bytes_cmp(prev.ptr, prev.len, name.ptr, name.len) < 0,
			       K_E_INCOMPLETE_SIGNATURE);
		}
		out->names[out->n++] = name;
		if (kcursor_left(&c) == 0)
			break;
		cursor_skip_byte(&c, ';');
		ENSURE(kcursor_left(&c) > 0, K_E_INCOMPLETE_SIGNATURE); /* trailing ';' */
	}
	return K_OK;
}

/* ------------------------------------------------------------------ */
/* Parsing the Authorization header                                    */
/* ------------------------------------------------------------------ */

struct authz_fields {
	struct kslice algorithm;
	struct kslice credential;
	struct kslice signed_headers;
	struct kslice signature;
	bool has_credential, has_signed_headers, has_signature;
};

/*
 * "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
 * The algorithm is the first word; the parameters follow, separated by any
 * run of commas and white space (AWS accepts ", ", "," and " "). Parameter
 * names are case-sensitive; unknown ones are ignored, repeated ones are an
 * error. A parameter without '=' gets AWS's message, which identifies the
 * header by its hash instead of repeating it.
 */
static K_MUST_CHECK k_status authz_tokenize(struct kslice authz, struct authz_fields *f,
					    struct kbuf *msg)
{
	struct kcursor c = kcursor_make(authz);
	memset(f, 0, sizeof *f);
	f->algorithm = cursor_take_until(&c, is_param_sep);

	while (true) {
		cursor_skip(&c, is_param_sep);
		if (kcursor_left(&c) == 0)
			break;
		struct kslice tok = cursor_take_until(&c, is_param_sep);
		struct kcursor tc = kcursor_make(tok);
		struct kslice key = cursor_take_until_byte(&tc, '=');
		if (kcursor_left(&tc) == 0) {
			uint8_t digest[32];
			GUARD(crypto_thread_sha256(authz.ptr, authz.len, digest));
			sigv4_msg_str(
				msg, "Invalid key=value pair (missing equal-sign) in Authorization "
				     "header (hashed with SHA-256 and encoded with Base64): '");
			sigv4_msg_base64(msg, digest, sizeof digest);
			sigv4_msg_str(msg, "'.");
			return K_E_INCOMPLETE_SIGNATURE;
		}
		cursor_skip_byte(&tc, '=');
		struct kslice value = kslice_make(tc.ptr + tc.pos, kcursor_left(&tc));
		bool *seen = NULL;
		struct kslice *slot = NULL;
		if (kslice_eq_cstr(key, "Credential")) {
			seen = &f->has_credential;
			slot = &f->credential;
		} else if (kslice_eq_cstr(key, "SignedHeaders")) {
			seen = &f->has_signed_headers;
			slot = &f->signed_headers;
		} else if (kslice_eq_cstr(key, "Signature")) {
			seen = &f->has_signature;
			slot = &f->signature;
		} else {
			continue;
		}
		if (*seen) {
			sigv4_msg_str(msg, "Authorization header has a duplicate '");
			sigv4_msg_echo(msg, key, 16);
			sigv4_msg_str(msg, "' parameter.");
			return K_E_INCOMPLETE_SIGNATURE;
		}
		*seen = true;
		*slot = value;
	}
	return K_OK;
}

/*
 * The request time: X-Amz-Date if present, else the Date header. Either
 * may appear once. Writes the time in both forms into `a`.
 */
static K_MUST_CHECK k_status parse_request_date(const struct sigv4_request *req,
						struct sigv4_auth *a, struct kbuf *msg)
{
	struct kslice amz, http;
	size_t n_amz = sigv4_header_find(req, "x-amz-date", &amz);
	size_t n_http = sigv4_header_find(req, "date", &http);
	bool ok;
	struct kslice got;

	if (n_amz > 1 || (n_amz == 0 && n_http > 1)) {
		sigv4_msg_str(msg, n_amz > 1 ? "Found multiple 'X-Amz-Date' headers."
					     : "Found multiple 'Date' headers.");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	if (n_amz == 1) {
		got = slice_trim_ows(amz);
		ok = sigv4_parse_amz_date(got, &a->request_time);
	} else {
		got = slice_trim_ows(http);
		ok = sigv4_parse_http_date(got, &a->request_time);
	}
	if (!ok) {
		sigv4_msg_str(msg, "Date must be in ISO-8601 'basic format'. Got '");
		sigv4_msg_echo(msg, got, 64);
		sigv4_msg_str(msg, "'. See http://en.wikipedia.org/wiki/ISO_8601");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	sigv4_format_amz_date(a->request_time, a->amz_date);
	return K_OK;
}

/*
 * Credential = <access key>/<YYYYMMDD>/<region>/<service>/aws4_request.
 * The shape is IncompleteSignature; a scope that does not fit this request
 * (terminator, date) is InvalidSignature with AWS's messages, several at
 * once when several parts are wrong. The service is checked by
 * sigv4_verify(), which knows which one is expected. Like AWS we ignore
 * trailing slashes (".../aws4_request/").
 */
static K_MUST_CHECK k_status parse_credential(struct kslice cred, struct sigv4_auth *a,
					      struct kbuf *msg)
{
	struct kslice parts[5];
	size_t n = 0;
	struct kslice trimmed = cred;
	while (trimmed.len > 0 && trimmed.ptr[trimmed.len - 1] == '/')
		trimmed.len--;
	struct kcursor c = kcursor_make(trimmed);

	while (n < 5) {
		parts[n++] = cursor_take_until_byte(&c, '/');
		if (kcursor_left(&c) == 0)
			break;
		cursor_skip_byte(&c, '/');
	}
	if (n != 5 || kcursor_left(&c) > 0) {
		sigv4_msg_str(msg, "Credential must have exactly 5 slash-delimited elements, e.g. "
				   "keyid/date/region/service/term, got '");
		sigv4_msg_echo(msg, cred, MSG_ECHO_MAX);
		sigv4_msg_str(msg, "'");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	struct kslice key = parts[0], date = parts[1], region = parts[2], service = parts[3];
	struct kslice term = parts[4];
	if (key.len == 0 || key.len > SIGV4_MAX_ACCESS_KEY || !slice_all(key, is_access_key_char)) {
		sigv4_msg_str(msg, "Credential should contain a valid access key ID, not '");
		sigv4_msg_echo(msg, key, 32);
		sigv4_msg_str(msg, "'. ");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	if (region.len == 0 || region.len > SIGV4_MAX_REGION ||
	    !slice_all(region, is_lower_alnum_dash)) {
		sigv4_msg_str(msg, "Credential should be scoped to a valid region, not '");
		sigv4_msg_echo(msg, region, SIGV4_MAX_REGION);
		sigv4_msg_str(msg, "'. ");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	if (service.len == 0 || service.len > SIGV4_MAX_SERVICE ||
	    !slice_all(service, is_lower_alnum_dash)) {
		sigv4_msg_str(msg, "Credential should be scoped to a valid service, not '");
		sigv4_msg_echo(msg, service, SIGV4_MAX_SERVICE);
		sigv4_msg_str(msg, "'. ");
		return K_E_INCOMPLETE_SIGNATURE;
	}

	struct kslice want_date = kslice_make(a->amz_date, SIGV4_SCOPE_DATE_LEN);
	bool term_ok = kslice_eq_cstr(term, SIGV4_TERMINATOR);
	bool date_ok = kslice_eq(date, want_date);
	if (!term_ok) {
		sigv4_msg_str(msg, "Credential should be scoped with a valid terminator: "
				   "'aws4_request', not '");
		sigv4_msg_echo(msg, term, 32);
		sigv4_msg_str(msg, "'. ");
	}
	if (!date_ok) {
		sigv4_msg_str(
			msg,
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
			"of date from HTTP: '");
		sigv4_msg_echo(msg, date, 16);
		sigv4_msg_str(msg, "' != '");
		sigv4_msg_add(msg, want_date.ptr, want_date.len);
		sigv4_msg_str(msg, "', from '");
		sigv4_msg_str(msg, a->amz_date);
		sigv4_msg_str(msg, "'.");
	}
	ENSURE(term_ok && date_ok, K_E_INVALID_SIGNATURE);

	slice_to_cstr(key, a->access_key, sizeof a->access_key);
	slice_to_cstr(date, a->scope_date, sizeof a->scope_date);
	slice_to_cstr(region, a->region, sizeof a->region);
	slice_to_cstr(service, a->service, sizeof a->service);
	return K_OK;
}

/* SignedHeaders: well formed, within bounds, and "host" among them. */
static K_MUST_CHECK k_status check_signed_headers(struct kslice list, struct kbuf *msg)
{
	struct signed_list names;
	bool host = false;

	if (list.len > 0) {
		if (k_failed(sigv4_signed_headers_split(list, &names))) {
			sigv4_msg_str(
				msg, "SignedHeaders must list at most 64 distinct lowercase header "
				     "names, sorted and separated by ';'.");
			return K_E_INCOMPLETE_SIGNATURE;
		}
		for (size_t i = 0; i < names.n && !host; i++)
			host = kslice_eq_cstr(names.names[i], "host");
	}
	if (!host) {
		/* AWS requires the host to be signed. */
		sigv4_msg_str(msg, "'Host' or ':authority' must be a 'SignedHeader' in the AWS "
				   "Authorization.");
		return K_E_INVALID_SIGNATURE;
	}
	return K_OK;
}

/* The signature is 64 hex digits; anything else cannot match. */
static K_MUST_CHECK k_status parse_signature(struct kslice hex, uint8_t out[32])
{
	ENSURE(hex.len == 64, K_E_INVALID_SIGNATURE);
	for (size_t i = 0; i < 32; i++) {
		int hi = khex_value(hex.ptr[2 * i]);
		int lo = khex_value(hex.ptr[2 * i + 1]);
		ENSURE(hi >= 0 && lo >= 0, K_E_INVALID_SIGNATURE);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return K_OK;
}

/*
 * Reads the Authorization header and the date, checking them in the order
 * AWS does: the parameters are present, the date is readable, "host" is
 * signed, the algorithm is ours, the credential has its five parts and its
 * scope fits the request. `out` is written only on success.
 */
k_status sigv4_parse(const struct sigv4_request *req, struct sigv4_auth *out, struct kbuf *msg)
{
	struct sigv4_auth a;
	struct authz_fields f;
	struct kslice authz, token;
	struct sigv4_tls *t = sigv4_tls_get();

	sigv4_msg_clear(msg);
	ENSURE(req != NULL && out != NULL && t != NULL, K_E_INTERNAL);
	ENSURE(req->headers != NULL || req->n_headers == 0, K_E_INTERNAL);
	memset(&a, 0, sizeof a);

	size_t n_authz = sigv4_header_find(req, "authorization", &authz);
	authz = slice_trim_ows(authz);
	ENSURE(n_authz > 0 && (n_authz > 1 || authz.len > 0), K_E_MISSING_AUTH);
	if (n_authz > 1) {
		sigv4_msg_str(msg, "Found multiple 'Authorization' headers.");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	GUARD(authz_tokenize(authz, &f, msg));

	struct kslice ignored;
	bool has_date = sigv4_header_find(req, "x-amz-date", &ignored) > 0 ||
			sigv4_header_find(req, "date", &ignored) > 0;
	bool has_cred = f.has_credential && f.credential.len > 0;
	bool has_sig = f.has_signature && f.signature.len > 0;
	if (!has_cred || !has_sig || !f.has_signed_headers || !has_date) {
		if (!has_cred)
			sigv4_msg_str(msg,
				      "Authorization header requires 'Credential' parameter. ");
		if (!has_sig)
			sigv4_msg_str(msg, "Authorization header requires 'Signature' parameter. ");
		if (!f.has_signed_headers)
			sigv4_msg_str(msg,
				      "Authorization header requires 'SignedHeaders' parameter. ");
		if (!has_date)
			sigv4_msg_str(msg, "Authorization header requires existence of either a "
					   "'X-Amz-Date' or a 'Date' header. ");
		sigv4_msg_authz_echo(msg, authz, f.signature);
		return K_E_INCOMPLETE_SIGNATURE;
	}

	GUARD(parse_request_date(req, &a, msg));
	GUARD(check_signed_headers(f.signed_headers, msg));
	if (!kslice_eq_cstr(f.algorithm, SIGV4_ALGORITHM)) {
		sigv4_msg_str(msg, "Unsupported AWS 'algorithm': '");
		sigv4_msg_echo(msg, f.algorithm, 32);
		sigv4_msg_str(msg, "' (only " SIGV4_ALGORITHM " for now). ");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	GUARD(parse_credential(f.credential, &a, msg));
	GUARD(parse_signature(f.signature, a.signature));

	size_t n_token = sigv4_header_find(req, "x-amz-security-token", &token);
	if (n_token > 1) {
		sigv4_msg_str(msg, "Found multiple 'X-Amz-Security-Token' headers.");
		return K_E_INCOMPLETE_SIGNATURE;
	}
	a.security_token = slice_trim_ows(token);
	a.signed_headers = f.signed_headers;
	*out = a;
	return K_OK;
}
