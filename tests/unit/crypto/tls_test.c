/*
 * tls_test.c — crypto/tls.c: the TLS private key read into secret memory
 * and handed out as a NUL-terminated PEM string; files that are missing,
 * empty or too large are refused and leave no secret behind.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/secret.h"
#include "crypto/tls.h"
#include "testlib.h"
#include "core/banned.h"

static char dir[] = "/tmp/kinko-tls-test-XXXXXX";

static const char pem[] = "-----BEGIN PRIVATE KEY-----\n"
			  "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
			  "-----END PRIVATE KEY-----\n";

/* Writes n bytes of p to dir/name; returns the path (static storage). */
static const char *write_file(const char *name, const void *p, size_t n)
{
	static char path[128];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	if (fd < 0)
		return path;
	CHECK(write(fd, p, n) == (ssize_t)n);
	close(fd);
	return path;
}

static void test_load(void)
{
	unsigned long live = ksecret_live();
	struct ksecret *key = NULL;
	CHECK_STATUS(crypto_tls_key_load(write_file("key.pem", pem, strlen(pem)), &key), K_OK);
	CHECK(key != NULL);
	CHECK_EQ_INT(ksecret_live(), live + 1);
	CHECK_EQ_INT(ksecret_len(key), strlen(pem) + 1);
	CHECK_STR(crypto_tls_key_pem(key), pem);
	ksecret_free(key);
	CHECK_EQ_INT(ksecret_live(), live);
}

static void test_missing(void)
{
	struct ksecret *key = (struct ksecret *)1;
	CHECK_STATUS(crypto_tls_key_load("/nonexistent/kinko/key.pem", &key), K_E_VALIDATION);
	CHECK(key == NULL);
	key = (struct ksecret *)1;
	CHECK_STATUS(crypto_tls_key_load("", &key), K_E_VALIDATION);
	CHECK(key == NULL);
}

static void test_empty(void)
{
	unsigned long live = ksecret_live();
	struct ksecret *key = (struct ksecret *)1;
	CHECK_STATUS(crypto_tls_key_load(write_file("empty.pem", "", 0), &key), K_E_VALIDATION);
	CHECK(key == NULL);
	CHECK_EQ_INT(ksecret_live(), live);
}

static void test_too_large(void)
{
	unsigned long live = ksecret_live();
	size_t n = CRYPTO_TLS_MAX_PEM;
	char *big = malloc(n);
	CHECK(big != NULL);
	if (big == NULL)
		return;
	memset(big, 'A', n);
	struct ksecret *key = (struct ksecret *)1;
	/* The NUL must fit too: a file of exactly the limit is refused ... */
	CHECK_STATUS(crypto_tls_key_load(write_file("big.pem", big, n), &key), K_E_VALIDATION);
	CHECK(key == NULL);
	CHECK_EQ_INT(ksecret_live(), live);
	/* ... and one byte less is taken. */
	CHECK_STATUS(crypto_tls_key_load(write_file("big.pem", big, n - 1), &key), K_OK);
	CHECK(key != NULL);
	if (key != NULL) {
		CHECK_EQ_INT(strlen(crypto_tls_key_pem(key)), n - 1);
		ksecret_free(key);
	}
	CHECK_EQ_INT(ksecret_live(), live);
	free(big);
}

static void test_directory(void)
{
	struct ksecret *key = (struct ksecret *)1;
	CHECK_STATUS(crypto_tls_key_load(dir, &key), K_E_VALIDATION);
	CHECK(key == NULL);
}

static void cleanup(void)
{
	static const char *names[] = {"key.pem", "empty.pem", "big.pem"};
	char path[128];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	RUN(test_load);
	RUN(test_missing);
	RUN(test_empty);
	RUN(test_too_large);
	RUN(test_directory);
	cleanup();
	return tl_summary();
}
