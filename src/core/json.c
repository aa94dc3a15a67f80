#include "core/json.h"

#include <math.h>

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/wipe.h"
#include "core/banned.h"

/* The block's size sits in a header in front of it, so free can wipe it. */
#define HDR (2 * sizeof(size_t))

static void *wiping_alloc(size_t n)
{
	if (n > SIZE_MAX - HDR)
		return NULL;
	size_t *p = malloc(n + HDR);
	if (p == NULL)
		return NULL;
	p[0] = n;
	return (unsigned char *)p + HDR;
}

static void wiping_free(void *ptr)
{
	if (ptr == NULL)
		return;
	size_t *p = (size_t *)(void *)((unsigned char *)ptr - HDR);
	kwipe(ptr, p[0]);
	free(p);
}

void kjson_init(void)
{
	json_set_alloc_funcs(wiping_alloc, wiping_free);
}

void kjson_free(void *p)
{
	json_malloc_t m;
	json_free_t f;
	json_get_alloc_funcs(&m, &f);
	if (f != NULL)
		f(p);
	else
		free(p);
}

json_t *kjson_date(int64_t ms)
{
	return json_real((double)ms / 1000.0);
}

int64_t kjson_date_seconds(const json_t *v)
{
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)floor(json_real_value(v));
	return 0;
}
