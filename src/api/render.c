/*
 * render.c — the JSON protocol's error responses, from the error table
 * (core/errors.def): handlers return a code and perhaps a message, and
 * only this writes them to the wire. See internal.h.
 */
#include "api/internal.h"

#include "core/json.h"
#include "core/banned.h"

/* Writes {"__type":..., "message":...} for an error code. */
void api_render_error(struct api_request *r, k_status code, const char *msg)
{
	kbuf_reset(&r->response);
	r->status = k_status_http(code);
	r->content_type = "application/x-amz-json-1.1";
	json_t *o = json_object();
	if (o == NULL)
		return;
	json_object_set_new(o, "__type", json_string(k_status_name(code)));
	if (msg != NULL && msg[0] != 0)
		json_object_set_new(o, "message", json_string(msg));
	else if (k_status_message(code)[0] != 0)
		json_object_set_new(o, "message", json_string(k_status_message(code)));
	char *s = json_dumps(o, JSON_COMPACT);
	if (s != NULL) {
		if (k_failed(kbuf_append_str(&r->response, s)))
			kbuf_reset(&r->response);
		kjson_free(s);
	}
	json_decref(o);
}
