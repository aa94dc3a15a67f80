/*
 * arn.c — one parser and one formatter for ARNs (see arn.h).
 */
#include "core/arn.h"

#include <string.h>

#include "core/banned.h"

static const struct {
	enum k_arn_kind kind;
	const char *prefix;
} kinds[] = {
	{K_ARN_KEY, "key/"},   {K_ARN_ALIAS, "alias/"}, {K_ARN_SECRET, "secret:"},
	{K_ARN_ROLE, "role/"}, {K_ARN_USER, "user/"},	{K_ARN_ASSUMED_ROLE, "assumed-role/"},
	{K_ARN_ROOT, "root"},
};

const char *k_arn_kind_prefix(enum k_arn_kind kind)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (kinds[i].kind == kind)
			return kinds[i].prefix;
	return "";
}

static bool name_char(uint8_t ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
}

/*
 * Reads one field up to the next ':' from c, at most max bytes of
 * [a-z0-9-] (digits only when digits_only). Advances past the colon.
 */
static bool take_field(struct kcursor *c, size_t max, bool digits_only, struct kslice *out)
{
	size_t start = c->pos, n = 0;
	while (c->pos < c->len && c->ptr[c->pos] != ':') {
		uint8_t ch = c->ptr[c->pos];
		if (digits_only ? !(ch >= '0' && ch <= '9') : !name_char(ch))
			return false;
		if (++n > max)
			return false;
		c->pos++;
	}
	if (c->pos == c->len)
		return false; /* no colon: the ARN has too few fields */
	*out = kslice_make(c->ptr + start, n);
	c->pos++;
	return true;
}

static bool printable(struct kslice s)
{
	for (size_t i = 0; i < s.len; i++)
		if (s.ptr[i] < 0x20 || s.ptr[i] >= 0x7f)
			return false;
	return true;
}

/* The kind of a resource and its id; false if a kind's prefix has no valid id. */
static bool classify(struct k_arn *a)
{
	struct kslice r = a->resource;
	a->kind = K_ARN_OTHER;
	a->id = r;
	if (kslice_eq_cstr(r, "root")) {
		a->kind = K_ARN_ROOT;
		a->id = kslice_make(r.ptr + r.len, 0);
		return true;
	}
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		if (kinds[i].kind == K_ARN_ROOT || !kslice_has_prefix(r, kinds[i].prefix))
			continue;
		size_t pl = strlen(kinds[i].prefix);
		if (r.len == pl)
			return false;
		a->kind = kinds[i].kind;
		a->id = kslice_make(r.ptr + pl, r.len - pl);
		break;
	}
	if (a->kind == K_ARN_ASSUMED_ROLE) {
		const uint8_t *slash = memchr(a->id.ptr, '/', a->id.len);
		if (slash == NULL || slash == a->id.ptr || slash == a->id.ptr + a->id.len - 1)
			return false;
	}
	return true;
}

bool k_arn_parse(struct kslice s, struct k_arn *out)
{
	struct k_arn a;
	memset(&a, 0, sizeof a);
	memset(out, 0, sizeof *out);
	if (s.len > K_ARN_MAX || !kslice_has_prefix(s, "arn:") || !printable(s))
		return false;
	struct kcursor c = kcursor_make(s);
	c.pos = 4;
	if (!take_field(&c, K_ARN_PARTITION_MAX, false, &a.partition) || a.partition.len == 0)
		return false;
	if (!take_field(&c, K_ARN_SERVICE_MAX, false, &a.service) || a.service.len == 0)
		return false;
	if (!take_field(&c, K_ARN_REGION_MAX, false, &a.region))
		return false;
	if (!take_field(&c, K_ARN_ACCOUNT_LEN, true, &a.account))
		return false;
	if (a.account.len != 0 && a.account.len != K_ARN_ACCOUNT_LEN)
		return false;
	a.resource = kslice_make(c.ptr + c.pos, c.len - c.pos);
	if (a.resource.len == 0 || !classify(&a))
		return false;
	*out = a;
	return true;
}

bool k_arn_parse_cstr(const char *s, struct k_arn *out)
{
	if (s == NULL) {
		memset(out, 0, sizeof *out);
		return false;
	}
	return k_arn_parse(kslice_make(s, strnlen(s, K_ARN_MAX + 1)), out);
}

bool k_arn_is(const struct k_arn *a, const char *service, enum k_arn_kind kind)
{
	return a->kind == kind && kslice_eq_cstr(a->service, service);
}

struct k_arn k_arn_of(const char *service, const char *region, const char *account,
		      enum k_arn_kind kind, const char *id)
{
	struct k_arn a;
	memset(&a, 0, sizeof a);
	a.partition = KSLICE_LIT("aws");
	a.service = kslice_cstr(service);
	a.region = kslice_cstr(region);
	a.account = kslice_cstr(account);
	a.kind = kind;
	a.id = kslice_cstr(id);
	return a;
}

/* Appends s at *at as far as it fits before out's last byte; *at counts all of s. */
static void put(char *out, size_t n, size_t *at, struct kslice s)
{
	if (*at < n - 1 && s.len > 0) {
		size_t room = n - 1 - *at;
		memcpy(out + *at, s.ptr, s.len < room ? s.len : room);
	}
	*at += s.len;
}

size_t k_arn_format(const struct k_arn *a, char *out, size_t n)
{
	struct kslice colon = KSLICE_LIT(":");
	struct kslice body = a->id;
	if (a->kind == K_ARN_OTHER && a->id.len == 0)
		body = a->resource;
	if (a->kind == K_ARN_ROOT)
		body = kslice_make("", 0);
	const struct kslice parts[] = {KSLICE_LIT("arn:"),
				       a->partition,
				       colon,
				       a->service,
				       colon,
				       a->region,
				       colon,
				       a->account,
				       colon,
				       kslice_cstr(k_arn_kind_prefix(a->kind)),
				       body};
	size_t at = 0;
	if (n == 0)
		return 0;
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
		put(out, n, &at, parts[i]);
	out[at < n ? at : n - 1] = '\0';
	return at;
}
