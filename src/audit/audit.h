/*
 * audit.h — the audit trail: one CloudTrail-format event per API call,
 * written durably before the response, in hash-chained log files whose
 * digests kinko signs (docs/AUDIT.md).
 *
 * The log folder holds:
 *   kinko-audit-<first seq, 20 digits>.jsonl   log files, one record a line
 *   kinko-audit-<first seq>.jsonl.digest       the signed digest of a sealed file
 *   kinko-audit-public.pem                     the Ed25519 public key of the digests
 * A record line is
 *   {"event":{...},"kinkoType":"event"|"intent","kinkoSeq":N,"kinkoPrev":"<hex SHA-256 of record N-1's line>"}
 * (the chain members last, so that a call hashes the rest before it takes
 * the writer's mutex; files written before put them first, and readers
 * take either) and its hash is SHA-256 over the line's bytes without the
 * newline. The
 * sequence and the chain run across files. A file is sealed (rotation by
 * size or age, shutdown, or on the next start after a crash) by a digest
 * naming its byte count, record count and seq range, the last
 * record's hash and the previous digest's SHA-256, signed with kinko's
 * audit key (Ed25519, kept in the data folder wrapped under the root key).
 * Every period (and at each start and stop) a period digest, appended to
 * kinko-periods-<UTC day>.jsonl and to the witness if one is set, names
 * the chain's durable head, so that the end of the trail is committed too
 * (period.c).
 *
 * The request thread formats its event (format.c). In "fsync" mode writing
 * is a group commit: the thread queues the record and waits; whichever
 * waiting thread finds no writer active becomes the writer for everything
 * queued (one write(2) and one fdatasync), then wakes the others. In
 * "write" mode each thread copies its own record, under the writer's
 * mutex, into a ring file that stays mapped (kinko-audit.ring in the log
 * folder); a background thread drains it into the log file with plain
 * writes every 10 ms and runs fdatasync every AUDIT_FLUSH_MS (see
 * docs/AUDIT.md for what each mode promises). A failed write fails every
 * call in that batch and changes nothing (a torn write is cut back); in
 * write mode a failed drain keeps the records in the ring, and calls fail
 * once the ring is full. The next call tries again, so kinko recovers by
 * itself when space returns.
 *
 * Thread safety: every function may be called from any thread after
 * audit_open() and before audit_close().
 */
#ifndef KINKO_AUDIT_AUDIT_H
#define KINKO_AUDIT_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "core/buf.h"
#include "core/result.h"

#define AUDIT_FLUSH_MS 200
#define AUDIT_PUBLIC_KEY_FILE "kinko-audit-public.pem"

/* An operation as the trail names it: eventSource and eventName. */
struct audit_op_name {
	const char *event_source; /* "kms.amazonaws.com" */
	const char *event_name;	  /* "Encrypt" */
};

/*
 * What the trail records of one API call, filled by the pipeline. Strings
 * are borrowed for the call and never NULL ("" where unknown), except
 * event_source and event_name, NULL when the call named no known service
 * or operation.
 */
struct audit_call_info {
	struct audit_who {	     /* the caller; account "" when not authenticated */
		const char *account; /* 12-digit account id */
		const char *arn;
		const char *type; /* "Root", "IAMUser", "AssumedRole" */
		const char *principal_id;
		const char *access_key;
	} who;
	const char *event_source; /* the service: "kms.amazonaws.com" (NULL: "kinko") */
	const char *event_name;	  /* the operation: "Encrypt" (NULL: "Unknown") */
	bool mutates;		  /* changes state: an intent record first, readOnly false */
	bool key_use;		  /* a success is a use of the keys the event names */
	const char *region;	  /* the credential's region ("": us-east-1) */
	const char *request_id;
	const char *source_ip;
	struct kslice user_agent; /* the User-Agent header as received (empty: none) */
	bool secure;		  /* arrived over TLS */
	int64_t now;		  /* the arrival time, seconds since the epoch */
};

enum audit_sync {
	AUDIT_SYNC_FSYNC = 0, /* each call waits for its batch's fdatasync */
	AUDIT_SYNC_WRITE =
		1, /* each call copies its record into the mapped ring; drain and fdatasync every AUDIT_FLUSH_MS */
};

struct audit_options {
	const char *dir;      /* the log folder (created 0700 if missing) */
	const char *key_file; /* the signing key file (created 0600 if missing) */
	enum audit_sync sync;
	uint64_t max_file_bytes; /* rotate when a file would pass this (0: 64 MiB) */
	int64_t rotate_seconds;	 /* rotate a file this old (0: 3600) */
	int64_t drain_ms; /* write mode: drain the ring this often, and sync no more often (0: 10 ms; tests set it long) */
	int64_t period_ms; /* a signed period digest this often, even with no call (0: 60 s) */
	int64_t index_ms;  /* the event index catches up this often (0: 1 s) */
	size_t index_queue_bytes; /* the index's side queue (0: 8 MiB; tests set it small) */
	size_t index_close_max;	  /* records a clean stop indexes at most (0: 50,000) */
	const char *witness_file; /* NULL: none; else each period digest is appended there too */
	bool witness_syslog;	  /* each period digest also to syslog (LOG_AUTHPRIV) */
	/*
	 * The operations whose successes are uses of the key they name (the
	 * rows' key_use), read while the event index (below) takes up the
	 * records written after its checkpoint; borrowed for the call. None: the index starts empty.
	 */
	const struct audit_op_name *key_use_ops;
	size_t n_key_use_ops;
};

/*
 * Opens the trail: loads or creates the signing key, writes the public
 * key file, seals a file left unsealed by a crash, continues the chain,
 * rebuilds the last-use index and starts the flusher. `msg` gets a
 * reason on failure.
 */
K_MUST_CHECK k_status audit_open(const struct audit_options *o, struct kbuf *msg);
/* Seals the current file and stops. Safe to call when not open. */
void audit_close(void);
bool audit_enabled(void);
const char *audit_dir(void);
/*
 * Brings the log files up to every record written so far: write mode
 * keeps the newest records in its ring for up to AUDIT_FLUSH_MS.
 * LookupEvents calls it before it reads the log.
 */
void audit_drain(void);

/*
 * Before the handler of a state-changing call: writes a durable intent
 * record (request id, operation, caller). If it cannot be written the
 * call must fail with K_E_INTERNAL before acting, so nothing changes.
 * K_OK without writing for calls that change nothing or when audit is off.
 */
K_MUST_CHECK k_status audit_intent(const struct audit_call_info *call);

/*
 * After the handler, before the response is rendered: writes the call's
 * event (rc and the error message decide errorCode/errorMessage) and waits
 * until it is written as the sync mode promises. Not K_OK: the event could
 * not be written; the caller answers with an internal error instead.
 * `in` and `out` may be NULL. Never logs plaintext, key material or a
 * secret value: members holding them are dropped.
 */
K_MUST_CHECK k_status audit_call(const struct audit_call_info *call, json_t *in, json_t *out,
				 k_status rc, const char *err_msg);

/*
 * For work kinko does by itself (the scheduler's rotations and deletions):
 * writes an "AwsServiceEvent" event the way AWS logs RotateKey and
 * DeleteKey: userIdentity {"accountId", "invokedBy": event_source},
 * sourceIPAddress and userAgent = event_source, the key as the resource,
 * and `details` (borrowed; may be NULL) as serviceEventDetails.
 *   event_source  "kms.amazonaws.com"
 *   event_name    "RotateKey", "DeleteKey", ...
 *   account, region  the key's account and region
 *   resource_arn  the key ARN (NULL: none); resource_type "AWS::KMS::Key"
 *   outcome       K_OK, or the failure (errorCode/errorMessage are set)
 * Returns K_OK once durable (as audit_call); K_OK at once if audit is off.
 */
K_MUST_CHECK k_status audit_emit_service_event(const char *event_source, const char *event_name,
					       const char *account, const char *region,
					       const char *resource_arn, const char *resource_type,
					       json_t *details, k_status outcome);

/* Number of audit writes that failed since start (for /metrics). */
uint64_t audit_write_failures(void);

/* ---- building events (event.c) ---- */

/* "2025-01-31T12:00:00Z" for a time in seconds since the epoch. */
void audit_iso8601(int64_t t, char out[32]);
/* Parses the same form (also with fractional seconds); false if malformed. */
bool audit_parse_iso8601(const char *s, int64_t *out);
/* The resources (keys, secrets) an event names, at most AUDIT_MAX_RESOURCES. */
#define AUDIT_MAX_RESOURCES 6
struct audit_resources {
	size_t n;
	struct audit_resource {
		char account[16];
		const char *type; /* "AWS::KMS::Key", "AWS::SecretsManager::Secret" */
		char arn[300];
	} item[AUDIT_MAX_RESOURCES];
};

/*
 * Appends the CloudTrail event of a call to b as one line of compact JSON
 * (format.c), without building a JSON tree. `event_id` receives the
 * eventID (a UUID), `res` the resources named in the event. `in` and `out`
 * may be NULL. Members that carry plaintext, ciphertext, key material,
 * secret values, signatures or credentials are never copied.
 */
K_MUST_CHECK k_status audit_format_call(const struct audit_call_info *call, json_t *in, json_t *out,
					k_status rc, const char *err_msg, char event_id[37],
					struct audit_resources *res, struct kbuf *b);
/* Whether a request or response member is never logged (compared case-insensitively). */
bool audit_is_sensitive(const char *name);

/* ---- reading logs (reader.c) ---- */

/*
 * Calls cb for every record of every log file in dir, in file and line
 * order (oldest first). `line` is the whole record; `event` its "event"
 * member (borrowed). Only complete lines are read. cb returns false to stop.
 */
typedef bool (*audit_record_cb)(void *arg, uint64_t seq, const char *type, json_t *event,
				const char *file);
K_MUST_CHECK k_status audit_scan(const char *dir, audit_record_cb cb, void *arg);

/* ---- the offline verifier (verify.c, verify_files.c, verify_periods.c) ---- */

/*
 * Checks a log folder: signatures and chain of the digests, each file
 * against its digest, and the record chain across files. Prints one line
 * per problem to `out` naming the file and record (changed, removed,
 * inserted, reordered, truncated), then a summary. `public_key_pem` NULL:
 * the folder's kinko-audit-public.pem. Returns the number of problems
 * (0: intact), or -1 if the folder or key cannot be read.
 */
long audit_verify_dir(const char *dir, const char *public_key_pem, FILE *out);

struct audit_verify_options {
	const char *dir;
	const char *public_key; /* a PEM file; NULL: the folder's kinko-audit-public.pem */
	const char *
		witness; /* the witness file (its lines, or syslog lines holding them); NULL: none */
	int64_t now_ms;	 /* the trail should reach this time; 0: the current time */
	char *node_out;	 /* NULL, or 72 bytes: the node id its records name ("" if none) */
	const char *archive; /* an archive of pruned files (audit_prune) verified with dir as one */
};
/*
 * audit_verify_dir with the end of the trail checked against a witness
 * and a time: also names period digests that are missing, changed or
 * held by the witness alone, and records they commit to that are gone.
 * *warnings gets the number of WARNING lines (the trail intact but ending
 * before now_ms, or without period digests).
 */
long audit_verify(const struct audit_verify_options *o, FILE *out, long *warnings);

/* ---- retention (prune.c) ---- */

/*
 * The checkpoint a prune leaves in the log folder: the last pruned file's
 * signed digest, byte for byte (docs/AUDIT.md, "Retention").
 */
#define AUDIT_PRUNE_CHECKPOINT "kinko-pruned-checkpoint.json"

struct audit_prune_options {
	const char *dir;      /* the log folder */
	const char *archive;  /* move the files here (created 0700); NULL: delete them */
	int64_t older_than_s; /* prune files sealed more than this long before now */
	int64_t now;	      /* seconds since the epoch */
};
/*
 * Moves (or deletes) the oldest sealed log files, with their digests,
 * sealed before now - older_than_s: a run from the oldest, never the
 * newest sealed file nor the file being written. First writes the
 * checkpoint AUDIT_PRUNE_CHECKPOINT (durably), so the remaining trail
 * verifies. Prints what it does to `out`. Returns the number of files
 * pruned, or -1 (with the reason on `out`).
 */
long audit_prune(const struct audit_prune_options *o, FILE *out);

/* ---- signing (sign.c) ---- */

struct audit_signer;
/*
 * Loads the Ed25519 signing key kept in path wrapped under the root key
 * (keystore_wrap; the keystore must be open), or creates it (mode 0600).
 * A raw 32-byte seed left by an earlier build is wrapped and replaced.
 */
K_MUST_CHECK k_status audit_signer_open(const char *path, struct audit_signer **out,
					struct kbuf *msg);
void audit_signer_free(struct audit_signer *s);
/* The public key as PEM (appended to out) and its SHA-256 fingerprint (hex). */
K_MUST_CHECK k_status audit_signer_public_pem(const struct audit_signer *s, struct kbuf *out);
const char *audit_signer_fingerprint(const struct audit_signer *s);
/* Signs msg; the base64 signature is appended to sig_b64. */
K_MUST_CHECK k_status audit_sign(const struct audit_signer *s, struct kslice msg,
				 struct kbuf *sig_b64);
/*
 * Verifies a base64 signature with a PEM public key; K_OK or
 * K_E_KMS_INVALID_SIGNATURE (K_E_VALIDATION if the PEM holds no public
 * key). `fpr_out` (65 bytes, may be NULL) gets the key's fingerprint, or
 * "" if it is not an Ed25519 key.
 */
K_MUST_CHECK k_status audit_verify_signature(const char *public_pem, struct kslice msg,
					     const char *sig_b64, char *fpr_out);

/* ---- the last-use index (lastuse.c; GetKeyLastUsage reads it) ---- */

/* The last successful cryptographic use of one key. */
struct audit_lastuse {
	char op[48];	     /* the operation's name, e.g. "Encrypt" */
	int64_t t;	     /* when, in seconds since the epoch */
	char event_id[40];   /* the audit event's eventID */
	char request_id[40]; /* the call's request id */
};

/* Records a successful cryptographic use of a key (from the audit stream). */
void audit_lastuse_note(const char *key_arn, const char *op, int64_t t, const char *event_id,
			const char *request_id);
/*
 * The same for a use read back at start (the event index's kept uses, the
 * trail's backlog), which comes before every use a call noted since the
 * start: in the same second as one of those, it does not replace it.
 */
void audit_lastuse_note_past(const char *key_arn, const char *op, int64_t t, const char *event_id,
			     const char *request_id);
/* The time tracking began (the oldest event in the logs, or the first start). */
int64_t audit_lastuse_tracking_start(void);
void audit_lastuse_set_tracking_start(int64_t t);
void audit_lastuse_reset(void);
/*
 * Feeds the index from one logged event (used while rebuilding it): a
 * success of one of key_use_ops is a use of each key the event names.
 */
void audit_lastuse_from_event(json_t *event, const struct audit_op_name *key_use_ops, size_t n_ops);
/*
 * Copies the last use of the key `key_arn` into `*out`; true if the index
 * has one, false (and `*out` untouched) if the key has not been used since
 * tracking began.
 */
bool audit_lastuse_get(const char *key_arn, struct audit_lastuse *out);

/*
 * Cluster-wide last use (docs/CLUSTER.md, "Key last use"): records of
 * kind AUDIT_LASTUSE_KIND (ns "ACCOUNT:REGION" as the key's, id = key ARN) hold the latest use any
 * node reported. audit_lastuse_share_start() starts a thread that writes
 * this node's new uses there about once a second, in batches (never on
 * the call that used the key); audit_lastuse_share_stop() writes what is
 * left and stops it. audit_lastuse_get_cluster() is audit_lastuse_get()
 * over this node's index and the store's record, the later one winning
 * (the store alone if this node never saw the key used).
 */
#define AUDIT_LASTUSE_KIND "key-last-use"
struct storage;
K_MUST_CHECK k_status audit_lastuse_share_start(struct storage *st);
void audit_lastuse_share_stop(void);
bool audit_lastuse_get_cluster(const char *key_arn, struct audit_lastuse *out);

/*
 * The events of every node for LookupEvents (ctindex.c): with
 * audit_ctindex_start() each written event is also queued and written to
 * the store in the background (kind AUDIT_CTINDEX_KIND, ns
 * "ACCOUNT:REGION", id "%015lld|NODE|EVENT_ID"); audit_ctindex_note() is
 * the queueing, a no-op while it is off. audit_ctindex_list_others() calls
 * cb(arg, node, event_id, event) for the indexed events of the other
 * nodes in ns whose time is in [from, to] (to < 0: no bound; from 0: from
 * the start), oldest first, until cb returns false.
 */
#define AUDIT_CTINDEX_KIND "ct-event"
K_MUST_CHECK k_status audit_ctindex_start(struct storage *st);
void audit_ctindex_stop(void);
bool audit_ctindex_enabled(void);
void audit_ctindex_note(const char *event_json, size_t len);
typedef bool (*audit_ctindex_cb)(void *arg, const char *node, const char *event_id, json_t *event);
K_MUST_CHECK k_status audit_ctindex_list_others(const char *ns, int64_t from, int64_t to,
						audit_ctindex_cb cb, void *arg);

/*
 * The event index (indexer.c; storage/event_index.h): a SQLite file in
 * the log folder, AUDIT_INDEX_FILE, kept up with the trail by a thread
 * about once a second, with a checkpoint (the last record it covers).
 * audit_open() loads the key uses it keeps and reads at most one batch
 * of the records after its checkpoint; the thread reads the rest of that
 * backlog after the server listens. LookupEvents queries it.
 */
#define AUDIT_INDEX_FILE "kinko-index.db"
#include "storage/event_index.h"
/*
 * Opens the index, loads its key uses, reads at most one batch of the
 * trail after its checkpoint and starts the thread, which reads the rest
 * (audit_open).
 */
K_MUST_CHECK k_status audit_index_open(const struct audit_options *o, struct kbuf *msg);
/*
 * Whether every record the trail held when the index opened is indexed
 * (and fed to the last-use index). Until then LookupEvents answers from
 * what is indexed so far, and the last use of a key may be in the part
 * not yet read.
 */
bool audit_index_backlog_read(void);
/* When the index opened (seconds): a key use noted later than this is not in the backlog. */
int64_t audit_index_opened_at(void);
/* Stops the thread, indexes what is left, closes (audit_close). */
void audit_index_close(void);
/*
 * Indexes at most max records written since the checkpoint, now (after
 * audit_drain(), so that a lookup sees the calls answered before it);
 * nothing while the thread reads the start's backlog (the caller does not
 * wait for it). K_E_UNSUPPORTED when the index is not open.
 */
K_MUST_CHECK k_status audit_index_sync(size_t max);
/* Runs a query on the index (event_index_query); K_E_UNSUPPORTED when it is not open. */
K_MUST_CHECK k_status audit_index_query(const struct event_index_query *q, event_index_hit_cb cb,
					void *arg);
/* Records indexed since start (for /metrics and the start-up log). */
uint64_t audit_index_records(void);
/*
 * Reads the record the index places at (file, off, len) in the log
 * folder; *rec is the whole record (its "event" member is the event),
 * owned by the caller. K_E_NOT_FOUND if the file is gone or the bytes
 * there are not record seq.
 */
K_MUST_CHECK k_status audit_read_event(const char *file, uint64_t off, uint32_t len, uint64_t seq,
				       json_t **rec);
/* CloudTrail's Username of an event: the IAM user name, "root", or the role session name; NULL if none. */
const char *audit_event_username(json_t *event);

/* ---- the usage and cost report (usage.c) ---- */

struct audit_usage_options {
	const char *dir;    /* the audit folder */
	int64_t from, to;   /* the period [from, to) in seconds */
	const char *prices; /* a price table file (JSON), NULL: AWS list prices */
	bool json;	    /* JSON output instead of a table */
};
/* Writes the report to out; returns 0, or 1 with a reason on stderr. */
int audit_usage_report(const struct audit_usage_options *o, FILE *out);
/* Writes the default price table as JSON. */
void audit_usage_print_prices(FILE *out);

#endif
