/*
 * query.c — the AWS query protocol that STS speaks: form-encoded request
 * bodies in, XML responses and errors out. The routing of such a request
 * (Action= instead of X-Amz-Target) is part of the pipeline in dispatch.c.
 * See internal.h.
 */
#include "api/internal.h"

#include <stdio.h>
#include <string.h>

#include "core/banned.h"

static int hexval(uint8_t ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* application/x-www-form-urlencoded: '+' is a space, %XX a byte. */
static K_MUST_CHECK k_status form_decode(struct kslice in, struct kbuf *out)
{
	for (size_t i = 0; i < in.len; i++) {
		uint8_t ch = in.ptr[i];
		if (ch == '+') {
			ch = ' ';
		} else if (ch == '%') {
			ENSURE(i + 2 < in.len, K_E_VALIDATION);
			int hi = hexval(in.ptr[i + 1]), lo = hexval(in.ptr[i + 2]);
			ENSURE(hi >= 0 && lo >= 0, K_E_VALIDATION);
			ch = (uint8_t)(hi * 16 + lo);
			i += 2;
		}
		GUARD(kbuf_append_byte(out, ch));
	}
	return K_OK;
}

/* The form body as a JSON object of strings ("RoleArn": "..."). */
k_status api_parse_form(struct kslice body, json_t **out)
{
	json_t *o = json_object();
	ENSURE(o != NULL, K_E_INTERNAL);
	struct kbuf name, value;
	kbuf_init(&name, API_MAX_QUERY_NAME);
	kbuf_init(&value, API_DEFAULT_BODY);
	k_status rc = K_OK;
	size_t start = 0;
	for (size_t i = 0; i <= body.len && k_ok(rc); i++) {
		if (i < body.len && body.ptr[i] != '&')
			continue;
		struct kslice pair = kslice_make(body.ptr + start, i - start);
		start = i + 1;
		if (pair.len == 0)
			continue;
		size_t eq = 0;
		while (eq < pair.len && pair.ptr[eq] != '=')
			eq++;
		kbuf_reset(&name);
		kbuf_reset(&value);
		rc = form_decode(kslice_make(pair.ptr, eq), &name);
		if (k_ok(rc) && eq < pair.len)
			rc = form_decode(kslice_make(pair.ptr + eq + 1, pair.len - eq - 1), &value);
		if (k_ok(rc) && ((name.len && memchr(name.ptr, 0, name.len) != NULL) ||
				 (value.len && memchr(value.ptr, 0, value.len) != NULL)))
			rc = K_E_VALIDATION;
		if (k_ok(rc) &&
		    json_object_set_new(o, kbuf_cstr(&name), json_string(kbuf_cstr(&value))) != 0)
			rc = K_E_VALIDATION; /* not UTF-8 */
	}
	kbuf_release(&name);
	kbuf_release(&value);
	if (k_failed(rc)) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return K_OK;
}

/* XML text: & < > " ' escaped. */
static void xml_text(struct kbuf *b, const char *s)
{
	for (; s != NULL && *s; s++) {
		k_status rc;
		switch (*s) {
		case '&':
			rc = kbuf_append_str(b, "&amp;");
			break;
		case '<':
			rc = kbuf_append_str(b, "&lt;");
			break;
		case '>':
			rc = kbuf_append_str(b, "&gt;");
			break;
		case '"':
			rc = kbuf_append_str(b, "&quot;");
			break;
		case '\'':
			rc = kbuf_append_str(b, "&apos;");
			break;
		default:
			rc = kbuf_append_byte(b, (uint8_t)*s);
			break;
		}
		if (k_failed(rc))
			return;
	}
}

/* A JSON object as XML elements, members in order; lists as <member> items. */
static void xml_value(struct kbuf *b, const json_t *v)
{
	const char *k;
	json_t *m;
	size_t i;
	char num[32];
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, k, m)
		{
			kbuf_note(b, "<%s>", k);
			xml_value(b, m);
			kbuf_note(b, "</%s>", k);
		}
		break;
	case JSON_ARRAY:
		json_array_foreach(v, i, m)
		{
			kbuf_note(b, "%s", "<member>");
			xml_value(b, m);
			kbuf_note(b, "%s", "</member>");
		}
		break;
	case JSON_STRING:
		xml_text(b, json_string_value(v));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
		xml_text(b, num);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		xml_text(b, json_is_true(v) ? "true" : "false");
		break;
	default:
		break;
	}
}

/*
 * The query protocol's response
 * (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html):
 * <OpResponse xmlns=...><OpResult>...</OpResult><ResponseMetadata>
 * <RequestId>...</RequestId></ResponseMetadata></OpResponse>.
 */
void api_render_query(struct api_request *r, const struct api_ctx *c, const json_t *out)
{
	const char *op = c->op->name;
	kbuf_reset(&r->response);
	r->status = 200;
	r->content_type = "text/xml";
	kbuf_note(&r->response, "<%sResponse xmlns=\"%s\">\n<%sResult>", op,
		  c->service->xml_namespace ? c->service->xml_namespace : "", op);
	xml_value(&r->response, out);
	kbuf_note(&r->response,
		  "</%sResult>\n<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>\n</"
		  "%sResponse>\n",
		  op, r->request_id, op);
}

/*
 * The query protocol's errors
 * (https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html):
 * <ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>
 * <Message>...</Message></Error><RequestId>...</RequestId></ErrorResponse>.
 * STS names some errors differently from the JSON services.
 */
void api_render_query_error(struct api_request *r, const struct api_ctx *c, k_status code,
			    const char *msg)
{
	const char *name = k_status_name(code);
	int status = k_status_http(code);
	switch (k_code(code)) {
	case KC_E_ACCESS_DENIED:
		name = "AccessDenied";
		status = 403;
		break;
	case KC_E_UNRECOGNIZED_CLIENT:
		name = "InvalidClientTokenId";
		status = 403;
		break;
	case KC_E_INVALID_SIGNATURE:
		name = "SignatureDoesNotMatch";
		status = 403;
		break;
	case KC_E_EXPIRED_TOKEN:
		name = "ExpiredToken";
		break;
	case KC_E_VALIDATION:
	case KC_E_SERIALIZATION:
		name = "ValidationError";
		break;
	case KC_E_UNKNOWN_OPERATION:
		name = "InvalidAction";
		break;
	case KC_E_MALFORMED_POLICY:
		name = "MalformedPolicyDocument";
		break;
	default:
		break;
	}
	if (msg == NULL || msg[0] == 0)
		msg = k_status_message(code);
	kbuf_reset(&r->response);
	r->status = status;
	r->content_type = "text/xml";
	kbuf_note(&r->response,
		  "<ErrorResponse xmlns=\"%s\">\n<Error><Type>%s</Type><Code>%s</Code><Message>",
		  c->service && c->service->xml_namespace ? c->service->xml_namespace : "",
		  status >= 500 ? "Receiver" : "Sender", name);
	xml_text(&r->response, msg);
	kbuf_note(&r->response, "</Message></Error>\n<RequestId>%s</RequestId>\n</ErrorResponse>\n",
		  r->request_id);
}
