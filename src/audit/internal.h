/*
 * internal.h — shared between the audit module's files; not a public contract.
 */
#ifndef KINKO_AUDIT_INTERNAL_H
#define KINKO_AUDIT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "core/buf.h"
#include "core/result.h"
#include "audit/audit.h"

#define AUDIT_LOG_PREFIX "kinko-audit-"
#define AUDIT_LOG_SUFFIX ".jsonl"
#define AUDIT_DIGEST_SUFFIX ".jsonl.digest"
/*
 * A log file's name: AUDIT_LOG_PREFIX, the first record's seq (20 digits),
 * "-NODE_ID" when the node has an id (cluster/cluster.h), AUDIT_LOG_SUFFIX.
 * The fixed-width seq first keeps the names in write order. Buffers for a
 * name hold AUDIT_NAME_MAX bytes, a digest's name AUDIT_NAME_MAX + 8.
 */
#define AUDIT_NAME_MAX 160
#define AUDIT_MAX_LINE (1u << 20)
/* A log or periods file read whole (verification, recovery, lookups). */
#define AUDIT_MAX_FILE (1ull << 34)
/* A digest file (one JSON document per sealed log file). */
#define AUDIT_DIGEST_FILE_MAX (1u << 20)
/* The signing key's public key as PEM, and a PEM file given for verification. */
#define AUDIT_PUBLIC_PEM_MAX 4096
#define AUDIT_PEM_FILE_MAX 16384
/* An Ed25519 signature (64 bytes) as raw bytes or text. */
#define AUDIT_SIGNATURE_MAX 256
/* Period digests (period.c): kinko-periods-<UTC day, YYYYMMDD>.jsonl, one signed line each. */
#define AUDIT_PERIODS_PREFIX "kinko-periods-"
#define AUDIT_PERIODS_SUFFIX ".jsonl"

/*
 * Queues one record (type "event" or "intent", its event JSON text) and
 * waits until it is written as the sync mode promises. K_E_INTERNAL if it
 * could not be written.
 */
K_MUST_CHECK k_status audit_writer_append(const char *type, const char *event_json, size_t len);
struct audit_ixq_entry;
/* The same, with the event's packed members for the index's side queue (ix NULL: none). */
K_MUST_CHECK k_status audit_writer_append_ix(const char *type, const char *event_json, size_t len,
					     const struct audit_ixq_entry *ix);

/* Lists the log files of dir (names only), sorted; caller frees with audit_free_names. */
K_MUST_CHECK k_status audit_list_logs(const char *dir, char ***names, size_t *n);
/* Lists the files of dir named prefix...suffix (names only, unsorted). */
K_MUST_CHECK k_status audit_list_files(const char *dir, const char *prefix, const char *suffix,
				       char ***names, size_t *n);
void audit_free_names(char **names, size_t n);
/* Reads a whole file into buf (bounded by buf's max). */
K_MUST_CHECK k_status audit_read_file(const char *path, struct kbuf *buf);
/* SHA-256 as lower-case hex (65 bytes with the NUL). */
void audit_sha256_hex(const void *p, size_t n, char out[65]);
void audit_hex(const uint8_t *p, size_t n, char *out);

/* ---- period digests (period.c) ---- */

struct audit_signer;

/* A point of the chain: the record seq (0: none yet), its hash, the log file that holds it. */
struct audit_head {
	uint64_t seq;
	char hash[65];
	char file[AUDIT_NAME_MAX];
	int64_t time_ms; /* when a digest named it (read back only) */
};

struct audit_period_options {
	const char *dir;	  /* the log folder */
	int64_t period_ms;	  /* 0: 60 s */
	const char *witness_file; /* NULL: no witness file */
	bool witness_syslog;	  /* also send each digest to syslog (LOG_AUTHPRIV) */
};

enum audit_period_kind {
	AUDIT_PERIOD_START = 0, /* kinko started: covers the time it was not running */
	AUDIT_PERIOD_TICK = 1,	/* a period passed */
	AUDIT_PERIOD_STOP = 2,	/* a clean shutdown: every file sealed */
};

/*
 * Takes up the folder's period digests (a torn last line is cut off) and
 * opens the witness. *committed gets the furthest head that the newest
 * digest of the folder or of the witness file vouches for (signature
 * checked); seq 0 if none. `s` is borrowed until audit_period_close().
 */
K_MUST_CHECK k_status audit_period_open(const struct audit_period_options *o,
					const struct audit_signer *s, struct audit_head *committed,
					struct kbuf *msg);
/* Whether a period ended since the last digest. */
bool audit_period_due(int64_t now_ms);
/*
 * Appends one signed digest naming head (durable on disk) and the span
 * since the previous digest up to now_ms, to the folder and the witness.
 * missing_from (0: none): at a start, the first seq of records a digest
 * had committed to that the log no longer holds.
 */
K_MUST_CHECK k_status audit_period_write(enum audit_period_kind kind, const struct audit_head *head,
					 uint64_t missing_from, int64_t now_ms);
void audit_period_close(void);
/*
 * Parses one digest line and checks its signature with public_pem. K_OK
 * (verified), K_E_KMS_INVALID_SIGNATURE (a digest whose signature does
 * not verify) or K_E_VALIDATION (not a digest; *out NULL). *out is the
 * document, owned by the caller, unless K_E_VALIDATION.
 */
K_MUST_CHECK k_status audit_period_parse(struct kslice line, const char *public_pem, json_t **out);
/* The witness's syslog sink (syslog_sink.c). */
void audit_syslog_open(void);
void audit_syslog_send(const char *line, size_t n);
void audit_syslog_close(void);
/* The name of the periods file for a digest ending at to_ms. */
void audit_period_file_name(int64_t to_ms, char *out, size_t n);

/* ---- the writer (writer.c, chain.c, ring.c, seal.c, recover.c, fileio.c) ---- */

/* Write mode's ring file (ring.c), in the log folder: a header page, then the data. */
#define RING_FILE "kinko-audit.ring"
#define RING_MAGIC "KINKORNG"
#define RING_HEADER 4096u
#define RING_BYTES (4u << 20)
#define RING_DRAIN_MS 10

struct ring_header {
	char magic[8];
	uint32_t version;
	uint32_t unused;
	uint64_t size; /* data bytes after the header page */
	uint64_t head; /* stream bytes written (always a record's end) */
	uint64_t tail; /* stream bytes drained into the log */
};

/*
 * The writer's state. The settings are fixed after audit_open; the file
 * state is the leader's (in write mode: under mu); the ring's is under mu.
 */
struct audit_writer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool leader;
	struct entry *head, *tail;

	/* Settings, fixed after audit_open. */
	char dir[512];
	enum audit_sync sync;
	uint64_t max_bytes;
	int64_t rotate_s;
	struct audit_signer *signer;

	/* Leader-only state (in write mode: under mu). */
	int fd;
	char cur_name[AUDIT_NAME_MAX];
	/* The current file's records (those in the ring too, in write mode) and its bytes on disk. */
	uint64_t cur_records, cur_first_seq, file_bytes;
	int64_t cur_opened;
	char cur_start_prev[65];
	uint64_t next_seq;
	char last_hash[65];
	char prev_digest_name[AUDIT_NAME_MAX + 8];
	char prev_digest_sha[65];
	bool dirty;
	struct kbuf batch;
	/* Where the chain stands at the end of the file's bytes on disk: the next seq, the last hash. */
	uint64_t drained_seq;
	char drained_hash[65];
	char drained_file[AUDIT_NAME_MAX]; /* the file that holds the record before drained_seq */
	bool closed_clean; /* audit_close sealed everything: a "stop" period digest follows */

	/* "write" mode's ring (see below), under mu. */
	int ring_fd;
	struct ring_header *rh; /* the mapped ring file, or NULL */
	uint8_t *ring;		/* its data, after the header page */
	uint64_t ring_size, ring_gen;
	int64_t drain_ms;      /* the flusher drains the ring this often */
	uint64_t rhead, rtail; /* the stream's bytes written and drained */
	bool draining;	       /* the flusher drains [rtail, claim_head) to claim_off, outside mu */
	bool drain_failing;    /* the last drain failed (logged once) */
	uint64_t claim_head, claim_off, claim_seq;
	char claim_hash[65];

	pthread_t flusher;
	bool flusher_started;
};
extern struct audit_writer audit_w;

/* A write (or sync) of the log failed: counted for audit_write_failures() and /metrics. */
void audit_count_failure(void);

/* fileio.c: paths in the log folder and durable writes. */
void audit_path_of(const char *name, char *out, size_t n);
void audit_fsync_dir(void);
/* Writes all of p at off; on failure, errno says why (a short write: ENOSPC). Logs nothing. */
K_MUST_CHECK k_status audit_pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off);
/* Writes a small file durably under a temporary name, then renames it. */
K_MUST_CHECK k_status audit_write_file_atomic(const char *name, struct kslice data);

/* seal.c: the current file, rotation and sealing. */
void audit_digest_name_of(const char *log_name, char *out, size_t n);
/* Seals the queued files in order; stops at the first failure (retried on the next call). */
K_MUST_CHECK k_status audit_seal_pending(void);
/* Queues the current file for sealing by the flusher (rotation). */
K_MUST_CHECK k_status audit_rotate_out(void);
/* Seals every queued file and then the current one, now (start-up recovery, shutdown). */
K_MUST_CHECK k_status audit_seal_current(bool recovered);
/* Starts a new log file where the drained part of the chain ends. */
K_MUST_CHECK k_status audit_open_new_file(void);
/* The chain now stands in the current file's bytes at seq (the next one) and hash. */
void audit_note_drained(uint64_t seq, const char *hash);
/* The chain's last record (all of it written), for a period digest. */
void audit_drained_head(struct audit_head *h);
bool audit_rotation_due(void);
/* Under the leader role at shutdown: drains and seals everything; closed_clean says whether it did. */
void audit_seal_for_close(void);

/* ring.c: write mode's ring. */
void audit_ring_unmap(void);
/* Creates (or resets) the ring file, reserves its space and maps it. */
K_MUST_CHECK k_status audit_ring_open(void);
/* Catches a SIGBUS while copying into the ring (installed once). */
void audit_install_sigbus(void);
/* Under the mutex, with no drain in flight: drains the whole ring now. */
K_MUST_CHECK k_status audit_drain_locked(void);
/* The flusher's drain: claims what the ring holds under the mutex, writes it outside. */
void audit_drain_step(void);
/* Whether a call about to write a record of at most n bytes must first wait for the drain in flight. */
bool audit_must_wait_for_drain(size_t n);
/* Write mode: puts one chained batch (ending at seq, hash) into the ring, or into the file. */
K_MUST_CHECK k_status audit_write_ringed(const uint8_t *p, size_t n, uint64_t seq,
					 const char *hash);
/* Under the leader role: drains the ring (write mode); false if records stay in it. */
bool audit_ring_drained(void);

/* recover.c: start-up recovery. */
/* Where the chain stands, once every file and record a crash left behind is sealed. */
K_MUST_CHECK k_status audit_resume_chain(void);
/* After a cut that a period digest exposes: goes on after the committed record; the first missing seq, or 0. */
uint64_t audit_continue_after(const struct audit_head *committed);

/* ---- the event index's side queue (ixqueue.c) ---- */

/* One event's members, packed by the request thread (at most this many bytes). */
#define AUDIT_IXQ_ENTRY_MAX 4096
struct audit_ixq_entry {
	size_t len; /* 0: not packed (the indexer parses the line) */
	_Alignas(8) uint8_t bytes[AUDIT_IXQ_ENTRY_MAX];
};

/* What the queue holds of record seq; the strings stay valid until audit_ixq_pop(). */
struct audit_ixq_view {
	uint64_t seq;
	int64_t t;
	bool read_only, failed;
	const char *account, *region, *name, *source, *user, *event_id, *access_key, *request_id;
	size_t n_res;
	const char *res; /* n_res (type, ARN) pairs: read them with audit_ixq_resource() */
};

/* Allocates (once) and empties the queue of bytes (0: 8 MiB), and turns it on (audit_index_open). */
K_MUST_CHECK k_status audit_ixq_open(size_t bytes);
/* Stops pushes; called inside the writer's critical section, so none is in flight after. */
void audit_ixq_disable(void);
/* Frees the ring (after audit_ixq_disable). */
void audit_ixq_free(void);
bool audit_ixq_enabled(void);
/* Whether the ring is over a quarter full: the indexer should take it now. */
bool audit_ixq_filling(void);
/* Entries dropped because the ring was full (their lines are parsed instead). */
uint64_t audit_ixq_dropped(void);
/*
 * Packs the members the index takes from the event of a call into *e, as
 * the formatted line says them; false (e->len 0) if they do not fit or
 * hold a byte the line may spell otherwise.
 */
bool audit_ixq_pack(const struct audit_call_info *c, k_status rc, const char *event_id,
		    const struct audit_resources *res, struct audit_ixq_entry *e);
/* The writer, once record seq (packed as p, n) is written; drops it if the ring is full. */
void audit_ixq_push(const uint8_t *p, size_t n, uint64_t seq);
/*
 * The indexer: drops the entries before seq; true with *v if the next one
 * is seq's (pop it after use), false if the queue does not hold it.
 */
bool audit_ixq_take(uint64_t seq, struct audit_ixq_view *v);
/* The next (type, ARN) pair of a view's resources, advancing *cursor (start at v->res). */
const char *audit_ixq_resource(const char **cursor, const char **arn);
void audit_ixq_pop(void);
/* Records the indexer took from the side queue since start (the rest it parsed). */
uint64_t audit_index_from_queue(void);

/* ---- the offline check (verify.c, verify_files.c, verify_periods.c) ---- */

#include <stdio.h>

/* A line of a log file, as verify reads it. */
struct vrec {
	uint64_t seq; /* 0: the line is not a record */
	char prev[65];
	char hash[65];
	size_t file;
	size_t line;
	bool genuine; /* the record that holds its seq in the chain */
	bool flagged;
};

/* A log file (or a digest without one). */
struct vfile {
	char name[300];
	const char *dir; /* the folder that holds it: the log folder or the archive */
	bool exists;
	json_t *digest; /* NULL: none */
	bool digest_ok;
};

/* One check's findings, and the folder's files and records as read. */
struct vstate {
	FILE *out;
	long problems;
	long warnings;
	struct vrec *recs;
	size_t n_recs, cap_recs;
	struct vfile *files;
	size_t n_files, cap_files;
	char node[72];	  /* the trail's node id (kinkoNode), "" until a record names one */
	bool mixed_nodes; /* a record of another node was reported */
};

/* Prints one problem line (counted in v->problems). */
__attribute__((format(printf, 2, 3))) void audit_verify_problem(struct vstate *v, const char *fmt,
								...);
/* The file of v named name, or NULL. */
struct vfile *audit_verify_file_named(struct vstate *v, const char *name);
/* qsort order of struct vrec pointers: by seq, then where they stand. */
int audit_verify_cmp_seq(const void *a, const void *b);
/* The name of the file that holds r. */
const char *audit_verify_fname(struct vstate *v, const struct vrec *r);
/* Layer 2: each file against its digest; collects the records. */
K_MUST_CHECK k_status audit_verify_files(struct vstate *v, const char *dir);
/* Layer 3: sequence and chain across all files. */
void audit_verify_records(struct vstate *v);
/* Layer 4: the end of the trail (period digests, the witness, "now"). */
K_MUST_CHECK k_status audit_verify_periods(struct vstate *v, const char *dir, const char *pem,
					   const struct audit_verify_options *o);

#endif
