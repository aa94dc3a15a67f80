/*
 * ixqueue.c — the event index's side queue: the members of each written
 * API-call event, as the request already had them, handed to the indexer
 * so that it need not parse the record's line again.
 *
 * The request thread packs its event's members (audit_ixq_pack) before it
 * writes the record; the writer pushes the packed entry, stamped with the
 * record's seq, once the record is written (chain.c, inside the writer's
 * critical section: the mutex in write mode, the leader role in fsync
 * mode, so there is one producer at a time). The indexer thread is the
 * one consumer. The queue is a bounded ring of bytes with a head and a
 * tail that each side moves atomically: a push never waits, and when the
 * ring is full the entry is dropped (counted). The trail stays the record
 * of truth: the indexer still reads every line, takes a line's members
 * from the queue when the entry of its seq is there (and names the same
 * eventID), and parses the line otherwise (after a start, an overflow, or
 * for events that are not API calls).
 */
#include "audit/audit.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "audit/internal.h"
#include "core/arn.h"
#include "core/banned.h"

/* The ring's bytes by default: about 30,000 entries of an Encrypt, over half a second at full speed. */
#define IXQ_BYTES (8u << 20)
#define IXQ_ALIGN 8u

/* An entry in the ring: this header, then its strings, each NUL-terminated. */
struct ixq_head {
	uint32_t size; /* the entry's bytes, header included, a multiple of IXQ_ALIGN; 0: wrap */
	uint8_t flags;
	uint8_t n_res;
	uint16_t unused;
	uint64_t seq;
	int64_t t;
};

#define IXQ_READ_ONLY 1u
#define IXQ_FAILED 2u

static struct {
	uint8_t *buf;
	size_t size;		     /* the ring's bytes, a multiple of IXQ_ALIGN */
	_Atomic uint64_t head, tail; /* bytes pushed and taken since the queue opened */
	_Atomic uint64_t dropped;
	atomic_bool on;
} Q;

k_status audit_ixq_open(size_t bytes)
{
	bytes = bytes > 0 ? (bytes + IXQ_ALIGN - 1) / IXQ_ALIGN * IXQ_ALIGN : IXQ_BYTES;
	if (Q.buf != NULL && Q.size != bytes)
		audit_ixq_free();
	if (Q.buf == NULL)
		Q.buf = aligned_alloc(IXQ_ALIGN, bytes);
	ENSURE(Q.buf != NULL, K_E_INTERNAL);
	Q.size = bytes;
	atomic_store(&Q.head, 0);
	atomic_store(&Q.tail, 0);
	atomic_store(&Q.on, true);
	return K_OK;
}

void audit_ixq_disable(void)
{
	atomic_store(&Q.on, false);
}

void audit_ixq_free(void)
{
	atomic_store(&Q.on, false);
	free(Q.buf);
	Q.buf = NULL;
}

bool audit_ixq_enabled(void)
{
	return atomic_load_explicit(&Q.on, memory_order_relaxed);
}

bool audit_ixq_filling(void)
{
	uint64_t used = atomic_load(&Q.head) - atomic_load(&Q.tail);
	return used > Q.size / 4;
}

uint64_t audit_ixq_dropped(void)
{
	return atomic_load(&Q.dropped);
}

/* Appends s with its NUL; false if it does not fit or holds a byte JSON could rewrite. */
static bool put_str(struct audit_ixq_entry *e, const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return false; /* not ASCII: the line may hold U+FFFD instead */
	}
	if (e->len + n + 1 > sizeof e->bytes)
		return false;
	memcpy(e->bytes + e->len, s, n + 1);
	e->len += n + 1;
	return true;
}

/* CloudTrail's Username, as audit_event_username() reads it back from the event. */
static const char *username_of(const struct audit_who *w)
{
	if (w->account[0] == 0)
		return "";
	if (strcmp(w->type, "Root") == 0)
		return "root";
	const char *slash = strrchr(w->arn, '/');
	struct k_arn a;
	if (strcmp(w->type, "IAMUser") == 0)
		return k_arn_parse_cstr(w->arn, &a) && a.kind == K_ARN_USER ? slash + 1 : "";
	if (strcmp(w->type, "AssumedRole") == 0 && slash != NULL)
		return slash + 1;
	return "";
}

bool audit_ixq_pack(const struct audit_call_info *c, k_status rc, const char *event_id,
		    const struct audit_resources *res, struct audit_ixq_entry *e)
{
	struct ixq_head h = {
		.flags = (uint8_t)((k_failed(rc) ? IXQ_FAILED : 0) |
				   (c->event_name != NULL && !c->mutates ? IXQ_READ_ONLY : 0)),
		.n_res = (uint8_t)res->n,
		.t = c->now};
	memcpy(e->bytes, &h, sizeof h);
	e->len = sizeof h;
	const char *region = c->region[0] ? c->region : "us-east-1";
	bool ok = put_str(e, c->who.account) && put_str(e, region) &&
		  put_str(e, c->event_name != NULL ? c->event_name : "Unknown") &&
		  put_str(e, c->event_source != NULL ? c->event_source : "kinko") &&
		  put_str(e, username_of(&c->who)) && put_str(e, event_id) &&
		  put_str(e, c->who.account[0] ? c->who.access_key : "") &&
		  put_str(e, c->request_id);
	for (size_t i = 0; ok && i < res->n; i++)
		ok = put_str(e, res->item[i].type) && put_str(e, res->item[i].arn);
	e->len = (e->len + IXQ_ALIGN - 1) / IXQ_ALIGN * IXQ_ALIGN;
	if (!ok || e->len > sizeof e->bytes)
		e->len = 0;
	return e->len > 0;
}

void audit_ixq_push(const uint8_t *p, size_t n, uint64_t seq)
{
	if (!audit_ixq_enabled() || n < sizeof(struct ixq_head))
		return;
	uint64_t head = atomic_load_explicit(&Q.head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&Q.tail, memory_order_acquire);
	size_t at = (size_t)(head % Q.size);
	size_t skip = at + n > Q.size ? Q.size - at : 0;
	if (head + skip + n - tail > Q.size) {
		atomic_fetch_add_explicit(&Q.dropped, 1, memory_order_relaxed);
		return;
	}
	if (skip > 0) {
		uint32_t wrap = 0;
		memcpy(Q.buf + at, &wrap, sizeof wrap);
		at = 0;
	}
	memcpy(Q.buf + at, p, n);
	struct ixq_head *h = (struct ixq_head *)(void *)(Q.buf + at);
	h->size = (uint32_t)n;
	h->seq = seq;
	atomic_store_explicit(&Q.head, head + skip + n, memory_order_release);
}

/* The entry at the tail, past any wrap marker; NULL if the queue is empty. */
static const struct ixq_head *front(void)
{
	for (;;) {
		uint64_t tail = atomic_load_explicit(&Q.tail, memory_order_relaxed);
		uint64_t head = atomic_load_explicit(&Q.head, memory_order_acquire);
		if (tail == head)
			return NULL;
		size_t at = (size_t)(tail % Q.size);
		const struct ixq_head *h = (const struct ixq_head *)(void *)(Q.buf + at);
		if (h->size != 0)
			return h;
		atomic_store_explicit(&Q.tail, tail + (Q.size - at), memory_order_release);
	}
}

static const char *next_str(const char **p)
{
	const char *s = *p;
	*p += strlen(s) + 1;
	return s;
}

bool audit_ixq_take(uint64_t seq, struct audit_ixq_view *v)
{
	if (Q.buf == NULL)
		return false;
	const struct ixq_head *h;
	while ((h = front()) != NULL && h->seq < seq)
		audit_ixq_pop();
	if (h == NULL || h->seq != seq)
		return false;
	const char *p = (const char *)(h + 1);
	v->seq = h->seq;
	v->t = h->t;
	v->read_only = (h->flags & IXQ_READ_ONLY) != 0;
	v->failed = (h->flags & IXQ_FAILED) != 0;
	v->account = next_str(&p);
	v->region = next_str(&p);
	v->name = next_str(&p);
	v->source = next_str(&p);
	v->user = next_str(&p);
	v->event_id = next_str(&p);
	v->access_key = next_str(&p);
	v->request_id = next_str(&p);
	v->n_res = h->n_res;
	v->res = p;
	return true;
}

const char *audit_ixq_resource(const char **cursor, const char **arn)
{
	const char *type = next_str(cursor);
	*arn = next_str(cursor);
	return type;
}

void audit_ixq_pop(void)
{
	const struct ixq_head *h = front();
	if (h != NULL)
		atomic_fetch_add_explicit(&Q.tail, h->size, memory_order_release);
}
