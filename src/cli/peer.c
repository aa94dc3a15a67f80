/*
 * peer.c — `kinko peer wrapping-key` and the serve-time set-up of peer
 * deployments (peer.h).
 */
#include "cli/peer.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/pipeline.h"
#include "cli/usage.h"
#include "config/peers.h"
#include "crypto/peerwrap.h"
#include "keystore/keystore.h"
#include "keystore/peer.h"
#include "kms/mrk_peer.h"
#include "core/banned.h"

#define PATH_MAX_LEN 1100

k_status cli_peers_open(struct storage *st, struct kbuf *msg)
{
	if (!config_peers_present())
		return K_OK;
	k_status rc = keystore_peer_key_load(st, true);
	if (k_failed(rc)) {
		kbuf_note(msg, "the peer wrapping key cannot be loaded or made: %s",
			  k_status_name(rc));
		return rc;
	}
	return api_register_service(kms_peer_service_table(), msg);
}

k_status cli_peers_start(void)
{
	return kms_mrk_peer_sync_start();
}

void cli_peers_stop(void)
{
	kms_mrk_peer_sync_stop();
	keystore_peer_key_release();
}

static bool options(int argc, char **argv, const char **data, const char **store,
		    const char **root_key)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
			*data = argv[++i];
		else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
			*store = argv[++i];
		else if (strcmp(argv[i], "--root-key") == 0 && i + 1 < argc)
			*root_key = argv[++i];
		else
			return false;
	}
	return *data != NULL;
}

int cli_peer_wrapping_key(int argc, char **argv)
{
	const char *data = NULL, *store = NULL, *root_key = NULL;
	if (!options(argc, argv, &data, &store, &root_key)) {
		fprintf(stderr, "usage: kinko peer wrapping-key --data DIR [--store URL] "
				"[--root-key FILE]\n");
		return 2;
	}
	char url[PATH_MAX_LEN], rk[PATH_MAX_LEN];
	snprintf(url, sizeof url, "%s%s",
		 store != NULL ? "" : "sqlite:", store != NULL ? store : data);
	snprintf(rk, sizeof rk, "%s%s", root_key != NULL ? root_key : data,
		 root_key != NULL ? "" : "/root.key");
	struct kbuf msg, pem;
	kbuf_init(&msg, KBUF_NOTE_MAX);
	kbuf_init(&pem, CRYPTO_PEER_MAX_PEM);
	struct storage *st = NULL;
	int ret = 1;
	if (k_failed(keystore_open_file(rk, false, &msg)) || k_failed(storage_open(url, &st, &msg)))
		fprintf(stderr, "kinko peer wrapping-key: %s\n", kbuf_cstr(&msg));
	else if (k_failed(keystore_peer_key_load(st, true)) ||
		 k_failed(keystore_peer_public_pem(&pem)))
		fprintf(stderr, "kinko peer wrapping-key: the wrapping key cannot be loaded or "
				"made (is this the store's root key?)\n");
	else
		ret = fwrite(pem.ptr, 1, pem.len, stdout) == pem.len ? 0 : 1;
	keystore_peer_key_release();
	if (st != NULL)
		storage_close(st);
	keystore_close();
	kbuf_release(&pem);
	kbuf_release(&msg);
	return ret;
}
