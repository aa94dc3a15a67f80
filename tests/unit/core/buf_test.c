#include "core/buf.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "core/secret.h"
#include "testlib.h"

static void test_bounded_append(void)
{
	struct kbuf b;
	kbuf_init(&b, 8);
	CHECK(k_ok(kbuf_append_str(&b, "abcd")));
	CHECK(k_ok(kbuf_append_str(&b, "efgh")));
	CHECK(k_is(kbuf_append_str(&b, "i"), K_E_VALIDATION));
	CHECK_EQ_INT(b.len, 8);
	CHECK_STR(kbuf_cstr(&b), "abcdefgh");
	CHECK(kbuf_valid(&b));
	kbuf_release(&b);
	CHECK(kbuf_valid(&b));
}

static void test_cursor(void)
{
	const uint8_t data[] = {0x00, 0x00, 0x01, 0x02, 0xAA};
	struct kcursor c = kcursor_make(kslice_make(data, sizeof data));
	uint32_t v = 0;
	CHECK(k_ok(kcursor_read_u32be(&c, &v)));
	CHECK_EQ_INT(v, 0x102);
	CHECK(k_is(kcursor_read_u32be(&c, &v), K_E_VALIDATION));
	CHECK_EQ_INT(c.pos, 4); /* failed read does not advance */
	uint8_t u = 0;
	CHECK(k_ok(kcursor_read_u8(&c, &u)));
	CHECK_EQ_INT(u, 0xAA);
	CHECK(kcursor_valid(&c));
}

/* Each way a kbuf or kcursor can be broken is caught by its _valid function. */
static void test_invariants(void)
{
	struct kbuf b;
	kbuf_init(&b, 16);
	CHECK(kbuf_valid(&b));
	CHECK(!kbuf_valid(NULL));
	b.len = 1; /* no allocation, yet not empty */
	CHECK(!kbuf_valid(&b));
	b.len = 0;
	CHECK(k_ok(kbuf_append_str(&b, "abc")));
	CHECK(kbuf_valid(&b));
	b.ptr[b.len] = 'x'; /* the trailing NUL overwritten */
	CHECK(!kbuf_valid(&b));
	b.ptr[b.len] = 0;
	size_t len = b.len;
	b.len = b.cap; /* no room left for the NUL */
	CHECK(!kbuf_valid(&b));
	b.len = len;
	size_t max = b.max;
	b.max = 2; /* holds more than its maximum */
	CHECK(!kbuf_valid(&b));
	b.max = max;
	CHECK(kbuf_valid(&b));
	kbuf_release(&b);

	const uint8_t data[] = {1, 2, 3};
	struct kcursor c = kcursor_make(kslice_make(data, sizeof data));
	CHECK(kcursor_valid(&c));
	CHECK(!kcursor_valid(NULL));
	c.pos = 4; /* past the end */
	CHECK(!kcursor_valid(&c));
	c = kcursor_make(kslice_make(NULL, 3)); /* a slice that is not one */
	CHECK(!kcursor_valid(&c));
	c = kcursor_make(kslice_make(NULL, 0));
	CHECK(kcursor_valid(&c));
}

#ifdef KINKO_DEBUG
/* Runs f in a child; true if the child was killed by SIGABRT. */
static bool aborts(void (*f)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 2);
		f();
		_exit(0);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return false;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void append_to_corrupted_kbuf(void)
{
	struct kbuf b;
	kbuf_init(&b, 16);
	if (k_failed(kbuf_append_str(&b, "abc")))
		return;
	b.ptr[b.len] = 'x';
	if (k_failed(kbuf_append_str(&b, "d")))
		return;
}

static void read_from_corrupted_cursor(void)
{
	const uint8_t data[] = {1, 2, 3};
	struct kcursor c = kcursor_make(kslice_make(data, sizeof data));
	c.pos = 5;
	uint8_t u;
	if (k_failed(kcursor_read_u8(&c, &u)))
		return;
}

static void append_to_sound_kbuf(void)
{
	struct kbuf b;
	kbuf_init(&b, 16);
	if (k_ok(kbuf_append_str(&b, "abc")))
		kbuf_release(&b);
}

/* Debug builds check the invariants on entry: a corrupted object stops the process. */
static void test_invariants_checked(void)
{
	CHECK(aborts(append_to_corrupted_kbuf));
	CHECK(aborts(read_from_corrupted_cursor));
	CHECK(!aborts(append_to_sound_kbuf));
}
#endif

static void test_base64(void)
{
	struct kbuf b;
	kbuf_init(&b, 1024);
	CHECK(k_ok(kbuf_append_base64(&b, (const uint8_t *)"hello", 5)));
	CHECK_STR(kbuf_cstr(&b), "aGVsbG8=");
	struct kbuf d;
	kbuf_init(&d, 1024);
	CHECK(k_ok(kbuf_decode_base64(&d, kbuf_slice(&b))));
	CHECK_STR(kbuf_cstr(&d), "hello");
	kbuf_reset(&d);
	CHECK(k_is(kbuf_decode_base64(&d, KSLICE_LIT("aGVsbG8")), K_E_VALIDATION));
	CHECK(k_is(kbuf_decode_base64(&d, KSLICE_LIT("aGV*bG8=")), K_E_VALIDATION));
	CHECK(k_ok(kbuf_decode_base64(&d, KSLICE_LIT(""))));
	CHECK_EQ_INT(d.len, 0);
	kbuf_release(&b);
	kbuf_release(&d);
}

static void test_secret(void)
{
	struct ksecret *s = ksecret_from((const uint8_t *)"0123456789abcdef", 16);
	CHECK(s != NULL);
	CHECK_EQ_INT(ksecret_len(s), 16);
	CHECK(memcmp(ksecret_cbytes(s), "0123456789abcdef", 16) == 0);
	ksecret_free(s);
	CHECK(ksecret_new(0) == NULL);
}

/* RFC 4648 section 10's vectors, and every length up to 300 against OpenSSL's encoder (used before). */
static void test_base64_vectors(void)
{
	static const char *const v[][2] = {{"", ""},
					   {"f", "Zg=="},
					   {"fo", "Zm8="},
					   {"foo", "Zm9v"},
					   {"foob", "Zm9vYg=="},
					   {"fooba", "Zm9vYmE="},
					   {"foobar", "Zm9vYmFy"}};
	struct kbuf b;
	kbuf_init(&b, 1024);
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		kbuf_clear(&b);
		CHECK(k_ok(kbuf_append_base64(&b, (const uint8_t *)v[i][0], strlen(v[i][0]))));
		CHECK_STR(kbuf_cstr(&b), v[i][1]);
	}
	uint8_t in[300];
	unsigned char ref[4 * 100 + 1];
	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (uint8_t)(i * 151 + 7);
	for (size_t n = 0; n <= sizeof in; n++) {
		kbuf_clear(&b);
		CHECK(k_ok(kbuf_append_base64(&b, in, n)));
		int w = EVP_EncodeBlock(ref, in, (int)n);
		CHECK_EQ_INT(b.len, (size_t)w);
		CHECK(memcmp(b.ptr, ref, b.len) == 0);
		CHECK(kbuf_valid(&b));
	}
	/* An append lands after what the buffer holds; one past the cap fails and leaves it unchanged. */
	struct kbuf s;
	kbuf_init(&s, 6);
	CHECK(k_ok(kbuf_append_str(&s, "x:")));
	CHECK(k_ok(kbuf_append_base64(&s, (const uint8_t *)"fo", 2)));
	CHECK_STR(kbuf_cstr(&s), "x:Zm8=");
	CHECK(k_is(kbuf_append_base64(&s, (const uint8_t *)"f", 1), K_E_VALIDATION));
	CHECK_STR(kbuf_cstr(&s), "x:Zm8=");
	kbuf_release(&s);
	kbuf_release(&b);
}

int main(void)
{
	RUN(test_bounded_append);
	RUN(test_cursor);
	RUN(test_invariants);
#ifdef KINKO_DEBUG
	RUN(test_invariants_checked);
#endif
	RUN(test_base64);
	RUN(test_base64_vectors);
	RUN(test_secret);
	return tl_summary();
}
