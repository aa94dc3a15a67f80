/*
 * cluster.h — this node's identity and the live nodes sharing its store.
 *
 * Several kinko processes ("nodes") may share one store (PostgreSQL, or
 * for tests one SQLite file on one machine). Each node has a node id:
 * the configured one (`--node-id`, or "node_id" in the configuration),
 * else one generated at first start and kept in DATA_DIR/node-id. The id
 * names the node's leases on scheduled work (scheduler.h) and, later, its
 * audit trail.
 *
 * Liveness: once started, a background thread writes the node's document
 * (kind "node", ns "", id = node id) every CLUSTER_HEARTBEAT_S seconds
 * with the wall-clock time it was last seen; a node whose last heartbeat
 * is older than CLUSTER_NODE_TTL_S is not live. The same thread counts
 * the live nodes after each heartbeat, so reading the count touches no
 * store. No request ever writes a heartbeat.
 *
 * Heartbeats use the system clock, never the test clock (core/clock.h):
 * liveness is about processes, and each node's test clock is its own.
 */
#ifndef KINKO_CLUSTER_CLUSTER_H
#define KINKO_CLUSTER_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/result.h"
#include "storage/storage.h"

#define CLUSTER_NODE_KIND "node"
#define CLUSTER_NODE_ID_MAX 64	       /* characters, [A-Za-z0-9._-] */
#define CLUSTER_NODE_ID_FILE "node-id" /* in the data folder */
#define CLUSTER_HEARTBEAT_S 2
#define CLUSTER_NODE_TTL_S 6 /* three missed heartbeats */

/*
 * Sets this node's id: `configured` if non-NULL and non-empty (checked:
 * 1..CLUSTER_NODE_ID_MAX characters of [A-Za-z0-9._-]), else the id in
 * data_dir/node-id, else a new random one written there (mode 0600).
 * Call once, before cluster_start() and before any other thread runs.
 * K_E_VALIDATION for a bad id (configured or in the file), K_E_INTERNAL
 * if the file cannot be read or written; a reason in msg.
 */
K_MUST_CHECK k_status cluster_node_id_init(const char *configured, const char *data_dir,
					   struct kbuf *msg);

/* This node's id; "" before cluster_node_id_init(). Valid for the whole run. */
const char *cluster_node_id(void);

/* 1 if id is a well-formed node id. */
int cluster_node_id_valid(const char *id);

/*
 * Registers this node in st (its first heartbeat, written before this
 * returns, so that a store that refuses writes stops the start) and starts
 * the heartbeat thread.
 * K_E_STORE_UNAVAILABLE (or the store's error) if the first heartbeat
 * fails, K_E_INTERNAL if the thread cannot start.
 */
K_MUST_CHECK k_status cluster_start(struct storage *st);

/* Stops the heartbeat thread (the node's document stays; it ages out). */
void cluster_stop(void);

/*
 * The number of live nodes as of the last heartbeat (this node included
 * once it has started; at least 1). Lock-free; for the quota shares and
 * /metrics.
 */
unsigned cluster_live_nodes(void);

/*
 * The kinko_cluster_* gauges in Prometheus text (appended to b): the
 * live-node count and this node's id. A metrics source (metrics.h), added
 * by `kinko serve`.
 */
void cluster_metrics(struct kbuf *b);

#endif
