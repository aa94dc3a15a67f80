/*
 * arn_test.c — ARN parsing and formatting: every resource form, every bound, refusals.
 */
#include <string.h>

#include "core/arn.h"
#include "testlib.h"
#include "core/banned.h"

static bool eq(struct kslice s, const char *want)
{
	return kslice_eq_cstr(s, want);
}

static void test_key_and_alias(void)
{
	struct k_arn a;
	CHECK(k_arn_parse_cstr(
		"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", &a));
	CHECK(eq(a.partition, "aws") && eq(a.service, "kms") && eq(a.region, "us-east-1"));
	CHECK(eq(a.account, "111122223333"));
	CHECK(a.kind == K_ARN_KEY && eq(a.id, "1234abcd-12ab-34cd-56ef-1234567890ab"));
	CHECK(k_arn_is(&a, "kms", K_ARN_KEY) && !k_arn_is(&a, "kms", K_ARN_ALIAS));
	CHECK(eq(a.resource, "key/1234abcd-12ab-34cd-56ef-1234567890ab"));
	CHECK(k_arn_parse_cstr("arn:aws:kms:eu-west-1:111122223333:alias/my/app", &a));
	CHECK(a.kind == K_ARN_ALIAS && eq(a.id, "my/app") && eq(a.resource, "alias/my/app"));
	/* A prefix with nothing after it names nothing. */
	CHECK(!k_arn_parse_cstr("arn:aws:kms:us-east-1:111122223333:key/", &a));
	CHECK(!k_arn_parse_cstr("arn:aws:kms:us-east-1:111122223333:alias/", &a));
}

static void test_secret_and_principals(void)
{
	struct k_arn a;
	CHECK(k_arn_parse_cstr("arn:aws:secretsmanager:us-east-1:000000000000:secret:db/pw-AbC123",
			       &a));
	CHECK(a.kind == K_ARN_SECRET && eq(a.id, "db/pw-AbC123") &&
	      k_arn_is(&a, "secretsmanager", K_ARN_SECRET));
	CHECK(k_arn_parse_cstr("arn:aws:iam::111122223333:root", &a));
	CHECK(a.kind == K_ARN_ROOT && a.id.len == 0 && a.region.len == 0 && eq(a.service, "iam"));
	CHECK(k_arn_parse_cstr("arn:aws:iam::111122223333:role/path/app", &a));
	CHECK(a.kind == K_ARN_ROLE && eq(a.id, "path/app"));
	CHECK(k_arn_parse_cstr("arn:aws:iam::111122223333:user/alice", &a));
	CHECK(a.kind == K_ARN_USER && eq(a.id, "alice"));
	CHECK(k_arn_parse_cstr("arn:aws:sts::111122223333:assumed-role/app/session-1", &a));
	CHECK(a.kind == K_ARN_ASSUMED_ROLE && eq(a.id, "app/session-1"));
	CHECK(!k_arn_parse_cstr("arn:aws:sts::111122223333:assumed-role/app", &a));
	CHECK(!k_arn_parse_cstr("arn:aws:sts::111122223333:assumed-role//s", &a));
	CHECK(!k_arn_parse_cstr("arn:aws:sts::111122223333:assumed-role/app/", &a));
	/* Other resources keep their whole text as id; "rooted" is not root. */
	CHECK(k_arn_parse_cstr("arn:aws:lambda:us-east-1:111122223333:function:rotate", &a));
	CHECK(a.kind == K_ARN_OTHER && eq(a.id, "function:rotate"));
	CHECK(k_arn_parse_cstr("arn:aws:iam::111122223333:rooted", &a));
	CHECK(a.kind == K_ARN_OTHER);
	/* The account may be empty (S3 style). */
	CHECK(k_arn_parse_cstr("arn:aws:s3:::bucket", &a));
	CHECK(a.account.len == 0 && eq(a.resource, "bucket"));
}

static void test_refused(void)
{
	struct k_arn a;
	const char *bad[] = {
		NULL,
		"",
		"arn",
		"arn:",
		"ARN:aws:kms:us-east-1:111122223333:key/x",
		"arn:aws:kms:us-east-1:111122223333",	 /* five fields */
		"arn:aws:kms:us-east-1:111122223333:",	 /* empty resource */
		"arn::kms:us-east-1:111122223333:key/x", /* empty partition */
		"arn:aws::us-east-1:111122223333:key/x", /* empty service */
		"arn:AWS:kms:us-east-1:111122223333:key/x",
		"arn:aws:KMS:us-east-1:111122223333:key/x",
		"arn:aws:kms:us_east_1:111122223333:key/x",
		"arn:aws:kms:us-east-1:11112222333:key/x",   /* 11 digits */
		"arn:aws:kms:us-east-1:1111222233334:key/x", /* 13 digits */
		"arn:aws:kms:us-east-1:11112222333a:key/x",
		"arn:aws:kms:us-east-1:*:key/x",
		"arn:aws:kms:us-east-1:111122223333:key/a\tb",
		"arn:aws:kms:us-east-1:111122223333:key/\x7f",
		"key/1234",
		"alias/x",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&a, 0x5a, sizeof a);
		CHECK(!k_arn_parse_cstr(bad[i], &a));
		CHECK(a.kind == K_ARN_OTHER && a.resource.len == 0); /* zeroed */
	}
	/* A NUL inside the slice is not printable. */
	CHECK(!k_arn_parse(kslice_make("arn:aws:kms:r:111122223333:key/a\0b", 33), &a));
}

/* Fills s with prefix and then ch up to n characters. */
static void fill(char *s, size_t n, const char *prefix, char ch)
{
	size_t pl = strlen(prefix);
	memcpy(s, prefix, pl);
	memset(s + pl, ch, n - pl);
	s[n] = '\0';
}

static void test_bounds(void)
{
	struct k_arn a;
	char s[K_ARN_MAX + 64], part[K_ARN_MAX];
	/* Partition, service and region: at their bound, and one past it. */
	fill(part, K_ARN_PARTITION_MAX, "", 'p');
	snprintf(s, sizeof s, "arn:%s:kms:r:111122223333:key/x", part);
	CHECK(k_arn_parse_cstr(s, &a) && a.partition.len == K_ARN_PARTITION_MAX);
	fill(part, K_ARN_PARTITION_MAX + 1, "", 'p');
	snprintf(s, sizeof s, "arn:%s:kms:r:111122223333:key/x", part);
	CHECK(!k_arn_parse_cstr(s, &a));
	fill(part, K_ARN_SERVICE_MAX, "", 's');
	snprintf(s, sizeof s, "arn:aws:%s:r:111122223333:key/x", part);
	CHECK(k_arn_parse_cstr(s, &a) && a.service.len == K_ARN_SERVICE_MAX);
	fill(part, K_ARN_SERVICE_MAX + 1, "", 's');
	snprintf(s, sizeof s, "arn:aws:%s:r:111122223333:key/x", part);
	CHECK(!k_arn_parse_cstr(s, &a));
	fill(part, K_ARN_REGION_MAX, "", 'r');
	snprintf(s, sizeof s, "arn:aws:kms:%s:111122223333:key/x", part);
	CHECK(k_arn_parse_cstr(s, &a) && a.region.len == K_ARN_REGION_MAX);
	fill(part, K_ARN_REGION_MAX + 1, "", 'r');
	snprintf(s, sizeof s, "arn:aws:kms:%s:111122223333:key/x", part);
	CHECK(!k_arn_parse_cstr(s, &a));
	/* The whole ARN: K_ARN_MAX bytes parse, one more does not. */
	fill(s, K_ARN_MAX, "arn:aws:kms:r:111122223333:key/", 'k');
	CHECK(k_arn_parse_cstr(s, &a) &&
	      a.id.len == K_ARN_MAX - strlen("arn:aws:kms:r:111122223333:key/"));
	fill(s, K_ARN_MAX + 1, "arn:aws:kms:r:111122223333:key/", 'k');
	CHECK(!k_arn_parse_cstr(s, &a));
}

static void test_format(void)
{
	char out[K_ARN_BUF];
	struct k_arn a = k_arn_of("kms", "us-east-1", "111122223333", K_ARN_KEY, "abc");
	CHECK_EQ_INT((int)k_arn_format(&a, out, sizeof out), 42);
	CHECK_STR(out, "arn:aws:kms:us-east-1:111122223333:key/abc");
	a = k_arn_of("iam", NULL, "111122223333", K_ARN_ROOT, NULL);
	CHECK(k_arn_format(&a, out, sizeof out) > 0);
	CHECK_STR(out, "arn:aws:iam::111122223333:root");
	a = k_arn_of("secretsmanager", "eu-west-1", "000000000000", K_ARN_SECRET, "n-AbC123");
	CHECK(k_arn_format(&a, out, sizeof out) > 0);
	CHECK_STR(out, "arn:aws:secretsmanager:eu-west-1:000000000000:secret:n-AbC123");
	a = k_arn_of("sts", "", "111122223333", K_ARN_ASSUMED_ROLE, "r/s");
	CHECK(k_arn_format(&a, out, sizeof out) > 0);
	CHECK_STR(out, "arn:aws:sts::111122223333:assumed-role/r/s");
	/* A parsed ARN formats back to its text. */
	const char *texts[] = {"arn:aws:kms:us-east-1:111122223333:alias/x",
			       "arn:aws-cn:lambda:cn-north-1:111122223333:function:f",
			       "arn:aws:iam::111122223333:user/a/b", "arn:aws:s3:::bucket"};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		struct k_arn p;
		CHECK(k_arn_parse_cstr(texts[i], &p));
		CHECK(k_arn_format(&p, out, sizeof out) == strlen(texts[i]));
		CHECK_STR(out, texts[i]);
	}
	/* As snprintf: the full length always, and a cut, NUL-terminated text when short. */
	a = k_arn_of("kms", "us-east-1", "111122223333", K_ARN_KEY, "abc");
	char small[43];
	CHECK_EQ_INT((int)k_arn_format(&a, small, 43), 42);
	CHECK_EQ_INT((int)k_arn_format(&a, small, 42), 42);
	CHECK_STR(small, "arn:aws:kms:us-east-1:111122223333:key/ab");
	CHECK_EQ_INT((int)k_arn_format(&a, small, 5), 42);
	CHECK_STR(small, "arn:");
	CHECK_EQ_INT((int)k_arn_format(&a, small, 0), 0);
	CHECK_STR(k_arn_kind_prefix(K_ARN_OTHER), "");
	CHECK_STR(k_arn_kind_prefix(K_ARN_ALIAS), "alias/");
}

int main(void)
{
	RUN(test_key_and_alias);
	RUN(test_secret_and_principals);
	RUN(test_refused);
	RUN(test_bounds);
	RUN(test_format);
	return tl_summary();
}
