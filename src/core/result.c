#include "core/result.h"

struct k_status_row {
	const char *name;
	int http;
	const char *message;
};

static const struct k_status_row rows[K_STATUS_COUNT] = {
#define X(code, name, status, msg) [KC_##code] = {name, status, msg},
#include "core/errors.def"
#undef X
};

/* Every row of errors.def has its K_ value in result.h. */
#define X(code, name, status, msg)                                                                 \
	_Static_assert(sizeof(K_##code) == sizeof(k_status),                                       \
		       "errors.def row " #code " has no K_" #code " in result.h");
#include "core/errors.def"
#undef X

const char *k_status_name(k_status s)
{
	if ((unsigned)s.code >= K_STATUS_COUNT)
		return "KMSInternalException";
	return rows[s.code].name;
}

int k_status_http(k_status s)
{
	if ((unsigned)s.code >= K_STATUS_COUNT)
		return 500;
	return rows[s.code].http;
}

const char *k_status_message(k_status s)
{
	if ((unsigned)s.code >= K_STATUS_COUNT)
		return "An internal error occurred.";
	return rows[s.code].message;
}
