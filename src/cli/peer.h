/*
 * peer.h — kinko's side of peer deployments in the command layer
 * (multi-Region keys across deployments, docs/REGIONS.md): `kinko peer
 * wrapping-key`, and what `kinko serve` sets up for a "peers" section.
 */
#ifndef KINKO_CLI_PEER_H
#define KINKO_CLI_PEER_H

#include "core/buf.h"
#include "core/result.h"
#include "storage/storage.h"

/*
 * `kinko peer wrapping-key --data DIR [--store URL] [--root-key FILE]`:
 * prints this deployment's wrapping public key (PEM), making the key pair
 * first if the store has none. Exit 0, 1 on failure, 2 usage.
 */
int cli_peer_wrapping_key(int argc, char **argv);

/*
 * For a configuration with a "peers" section: the wrapping key pair
 * loaded (made at the first start) and the KinkoPeer operations
 * registered. Nothing without one. Call with the root key open, before
 * serving; msg gets the reason of a failure.
 */
K_MUST_CHECK k_status cli_peers_open(struct storage *st, struct kbuf *msg);
/* Starts and stops the outbox worker (nothing without peer Regions). */
K_MUST_CHECK k_status cli_peers_start(void);
void cli_peers_stop(void);

#endif
