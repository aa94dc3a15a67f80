/*
 * secret.h — memory for key material.
 *
 * A ksecret holds key bytes in locked memory: mlock()ed (never swapped),
 * marked MADV_DONTDUMP (never in a core dump) and wiped with kwipe
 * (core/wipe.h) when freed. A small secret (up to KSLAB_MAX_CHUNK bytes
 * with its header) takes a chunk of a locked slab (core/secret_slab.h:
 * 64 bytes for a 32-byte key), a larger one a page-aligned mapping of its
 * own. There is no
 * accessor that returns a char * for printing. The bytes are read only
 * by crypto/ (crypto/tls.c hands the TLS private key to libmicrohttpd),
 * keystore/ and core/ itself: ksecret_append_to() is how a caller hands a
 * secret to something outside kinko in its own form (a rotation
 * function's secret access key, into its process environment or a
 * request header, secrets/rotation_exec.c and rotation_http.c). A new
 * reader elsewhere goes through a function here or in crypto/, or not
 * at all. mlock failure (RLIMIT_MEMLOCK) is tolerated but counted, so that
 * an operator can see it in the logs.
 */
#ifndef KINKO_CORE_SECRET_H
#define KINKO_CORE_SECRET_H

#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"

struct ksecret;

/* A zero-filled secret of `len` bytes (1..1 MiB); NULL when out of memory. */
struct ksecret *ksecret_new(size_t len);
/* A secret holding a copy of p[0..len). NULL when out of memory. */
struct ksecret *ksecret_from(const uint8_t *p, size_t len);
/*
 * Fills s with ksecret_len(s) bytes read from fd at offset off, so that
 * key bytes read from a file pass through no other memory. K_E_INTERNAL
 * on a short read or an error (s wiped then).
 */
K_MUST_CHECK k_status ksecret_pread(struct ksecret *s, int fd, long long off);
/*
 * The whole of the file at path, without its final newlines (a secret
 * kept in a file by hand), as a new secret; NULL when the file cannot be
 * read, is empty (once trimmed) or holds more than max bytes.
 */
struct ksecret *ksecret_read_file(const char *path, size_t max);
/* Wipes and frees; NULL is allowed. */
void ksecret_free(struct ksecret *s);
size_t ksecret_len(const struct ksecret *s);
/*
 * Appends the bytes in base64 to out: how a secret that is the answer to
 * a request (a data key, a shared secret) is rendered without its bytes
 * passing through the caller. K_E_VALIDATION if out cannot hold them.
 */
K_MUST_CHECK k_status ksecret_append_base64(const struct ksecret *s, struct kbuf *out);
/*
 * Appends the raw bytes to out, for a caller that must hand the secret on
 * in its own form (an environment block, a header line). out must be a
 * buffer that is released with kbuf_release or kbuf_reset, which zero it:
 * the copy is then wiped with the rest. K_E_VALIDATION if out cannot hold
 * them (out unchanged).
 */
K_MUST_CHECK k_status ksecret_append_to(struct kbuf *out, const struct ksecret *s);
/* The bytes. For crypto/, keystore/ and the readers listed above. Valid until ksecret_free. */
uint8_t *ksecret_bytes(struct ksecret *s);
const uint8_t *ksecret_cbytes(const struct ksecret *s);
/*
 * A per-thread scratch secret for short-lived key material (a data key on
 * its way to the client): the same locked, no-dump memory as ksecret_new,
 * allocated once per thread instead of once per request (mmap, mlock and
 * munmap on every call cost more than the cryptography). At most
 * KSECRET_SCRATCH_MAX bytes; NULL if larger or out of memory. The bytes are
 * zero on return. Give it back with ksecret_scratch_done() (which wipes it)
 * before the next ksecret_scratch() call on the same thread; never free it.
 */
#define KSECRET_SCRATCH_MAX 8192
struct ksecret *ksecret_scratch(size_t len);
void ksecret_scratch_done(struct ksecret *s);

/*
 * Number of secrets allocated and not yet freed (for diagnostics and for
 * tests that check that a holder of key material let it go).
 */
unsigned long ksecret_live(void);

/*
 * Number of mlock calls that failed since start (a slab of small secrets
 * or a large secret's own mapping; /metrics). The first failure is
 * logged with the fix (raise RLIMIT_MEMLOCK).
 */
unsigned long ksecret_mlock_failures(void);
/* Bytes of secret memory locked now (/metrics). */
unsigned long ksecret_locked_bytes(void);
/* Locked bytes a cached symmetric key's material takes (one slab chunk). */
#define KSECRET_KEY_LOCKED_BYTES 64u
/*
 * Logs, once at start, RLIMIT_MEMLOCK against what key material needs:
 * a warning with the numbers and the fix when an mlock already failed or
 * the limit holds fewer than want_keys keys of KSECRET_KEY_LOCKED_BYTES,
 * an information line otherwise.
 */
void ksecret_report_memlock(unsigned long want_keys);

#endif
