/*
 * audit_prune.c — `kinko audit prune` (audit_prune.h): the flags, then
 * audit_prune (src/audit/prune.c) does the work.
 */
#include "cli/audit_prune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "core/banned.h"

/* Ten years: a longer retention is no retention. */
#define PRUNE_MAX_DAYS 3650L

static int prune_usage(FILE *f, int rc)
{
	fprintf(f,
		"usage: kinko audit prune DIR --older-than DAYS [--archive DIR2]\n"
		"  moves to DIR2 (or, without --archive, deletes) the audit log files of DIR\n"
		"  sealed more than DAYS days ago (never the newest sealed file nor the one being\n"
		"  written) and leaves a signed checkpoint so that `kinko audit verify DIR` "
		"passes;\n"
		"  `kinko audit verify DIR --archive DIR2` checks both as one trail\n");
	return rc;
}

int cli_audit_prune(int argc, char **argv)
{
	struct audit_prune_options o = {.older_than_s = -1};
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0)
			return prune_usage(stdout, 0);
		if (strcmp(a, "--older-than") == 0 && next != NULL) {
			char *end = NULL;
			long days = strtol(next, &end, 10);
			if (end == next || *end != 0 || days < 0 || days > PRUNE_MAX_DAYS) {
				fprintf(stderr,
					"kinko audit prune: --older-than takes a number of days "
					"from 0 to %ld, not %s\n",
					PRUNE_MAX_DAYS, next);
				return 2;
			}
			o.older_than_s = (int64_t)days * 86400;
			i++;
		} else if (strcmp(a, "--archive") == 0 && next != NULL) {
			o.archive = argv[++i];
		} else if (strncmp(a, "--", 2) != 0 && o.dir == NULL) {
			o.dir = a;
		} else {
			return prune_usage(stderr, 2);
		}
	}
	if (o.dir == NULL || o.older_than_s < 0)
		return prune_usage(stderr, 2);
	o.now = (int64_t)time(NULL);
	return audit_prune(&o, stdout) < 0 ? 1 : 0;
}
