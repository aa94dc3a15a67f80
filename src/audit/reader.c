/*
 * reader.c — walks the records of a log folder, oldest first.
 * Used by LookupEvents, the last-use index rebuild and the usage report.
 * A file is read whole, one at a time; only complete lines are parsed, so
 * reading while the writer appends is safe.
 */
#include "audit/audit.h"

#include <stdio.h>
#include <string.h>

#include "audit/internal.h"
#include "core/banned.h"

k_status audit_scan(const char *dir, audit_record_cb cb, void *arg)
{
	char **names;
	size_t n;
	GUARD(audit_list_logs(dir, &names, &n));
	k_status rc = K_OK;
	bool go = true;
	for (size_t i = 0; i < n && go; i++) {
		char path[1200];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		struct kbuf b;
		kbuf_init(&b, AUDIT_MAX_FILE);
		if (k_failed(audit_read_file(path, &b))) {
			kbuf_release(&b);
			continue; /* removed meanwhile (rotation never removes; an operator may) */
		}
		size_t pos = 0;
		while (pos < b.len && go) {
			const uint8_t *nl = memchr(b.ptr + pos, '\n', b.len - pos);
			if (nl == NULL)
				break;
			size_t len = (size_t)(nl - (b.ptr + pos));
			json_t *rec = json_loadb((const char *)b.ptr + pos, len, 0, NULL);
			json_t *ev = json_object_get(rec, "event");
			const char *type = json_string_value(json_object_get(rec, "kinkoType"));
			if (json_is_object(ev) && type != NULL)
				go = cb(arg,
					(uint64_t)json_integer_value(
						json_object_get(rec, "kinkoSeq")),
					type, ev, names[i]);
			json_decref(rec);
			pos += len + 1;
		}
		kbuf_release(&b);
	}
	audit_free_names(names, n);
	return rc;
}
