/*
 * lastuse.c — the last cryptographic use of each key, fed from the audit
 * stream. The GetKeyLastUsage operation that reads it is in
 * kms/ops_usage.c.
 *
 * The index is a sharded hash map (key ARN -> last use) with a mutex per
 * shard; an update is made after the call's event is durable, off the
 * shared path of other keys. It is rebuilt from the logs at start.
 */
#include "audit/audit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/lock.h"
#include "core/hash.h"
#include "core/banned.h"

#define SHARDS 64

struct use {
	char arn[300];
	char op[48];
	int64_t t;
	char event_id[40];
	char request_id[40];
	struct use *next;
};

static struct {
	pthread_mutex_t mu;
	struct use *head;
} shards[SHARDS];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Atomic int64_t tracking_start;

static void init_shards(void)
{
	for (size_t i = 0; i < SHARDS; i++)
		pthread_mutex_init(&shards[i].mu, NULL);
}

static size_t shard_of(const char *arn)
{
	return (size_t)(khash(arn) % SHARDS);
}

void audit_lastuse_note(const char *arn, const char *op, int64_t t, const char *event_id,
			const char *request_id)
{
	if (arn == NULL || op == NULL)
		return;
	pthread_once(&once, init_shards);
	size_t s = shard_of(arn);
	klock(&shards[s].mu);
	struct use *u = shards[s].head;
	while (u != NULL && strcmp(u->arn, arn) != 0)
		u = u->next;
	if (u == NULL) {
		u = calloc(1, sizeof *u);
		if (u == NULL) {
			pthread_mutex_unlock(&shards[s].mu);
			return;
		}
		kstr_copy(u->arn, sizeof u->arn, arn);
		u->next = shards[s].head;
		shards[s].head = u;
	}
	if (t >= u->t) {
		kstr_copy(u->op, sizeof u->op, op);
		u->t = t;
		kstr_copy(u->event_id, sizeof u->event_id, event_id ? event_id : "");
		kstr_copy(u->request_id, sizeof u->request_id, request_id ? request_id : "");
	}
	pthread_mutex_unlock(&shards[s].mu);
}

void audit_lastuse_set_tracking_start(int64_t t)
{
	atomic_store(&tracking_start, t);
}

int64_t audit_lastuse_tracking_start(void)
{
	return atomic_load(&tracking_start);
}

void audit_lastuse_reset(void)
{
	pthread_once(&once, init_shards);
	for (size_t i = 0; i < SHARDS; i++) {
		pthread_mutex_lock(&shards[i].mu);
		struct use *u = shards[i].head;
		shards[i].head = NULL;
		pthread_mutex_unlock(&shards[i].mu);
		while (u != NULL) {
			struct use *n = u->next;
			free(u);
			u = n;
		}
	}
	atomic_store(&tracking_start, 0);
}

bool audit_lastuse_get(const char *arn, struct audit_lastuse *out)
{
	pthread_once(&once, init_shards);
	size_t s = shard_of(arn);
	bool found = false;
	pthread_mutex_lock(&shards[s].mu);
	for (struct use *u = shards[s].head; u != NULL; u = u->next) {
		if (strcmp(u->arn, arn) == 0) {
			kstr_copy(out->op, sizeof out->op, u->op);
			out->t = u->t;
			kstr_copy(out->event_id, sizeof out->event_id, u->event_id);
			kstr_copy(out->request_id, sizeof out->request_id, u->request_id);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&shards[s].mu);
	return found;
}
