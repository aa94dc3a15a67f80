#include "core/result.h"

struct k_status_row {
	const char *name;
	int http;
	const char *message;
};

static const struct k_status_row rows[K_STATUS_COUNT] = {
#define X(code, name, status, msg) [code] = {name, status, msg},
#include "core/errors.def"
#undef X
};

const char *k_status_name(k_status s)
{
	if ((unsigned)s >= K_STATUS_COUNT)
		return "KMSInternalException";
	return rows[s].name;
}

int k_status_http(k_status s)
{
	if ((unsigned)s >= K_STATUS_COUNT)
		return 500;
	return rows[s].http;
}

const char *k_status_message(k_status s)
{
	if ((unsigned)s >= K_STATUS_COUNT)
		return "An internal error occurred.";
	return rows[s].message;
}
