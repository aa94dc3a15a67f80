/*
 * mrk_peer_import.c — multi-Region keys with imported material
 * (Origin=EXTERNAL) replicated to a peer deployment (mrk_peer.h;
 * docs/REGIONS.md "Across deployments").
 *
 * Imported material never travels: as in AWS, the replica is created
 * PendingImport and takes the same material by its own ImportKeyMaterial.
 * So that the peer can refuse other material without ever holding this
 * one, the replica's document carries "MaterialCommitment", a commitment
 * to the primary's material made inside keystore/ (crypto/commit.h);
 * keystore_import compares the imported material with it.
 */
#include "kms/mrk_peer.h"

#include <string.h>

#include "core/json.h"
#include "keystore/peer.h"
#include "kms/store.h"
#include "core/banned.h"

/* The commitment in base64 (44 characters) and the NUL. */
#define COMMITMENT_TEXT_MAX 64

bool kms_mrk_is_external(json_t *doc)
{
	const char *origin = json_string_value(json_object_get(doc, "Origin"));
	return origin != NULL && strcmp(origin, "EXTERNAL") == 0;
}

k_status kms_mrk_peer_commit(struct api_ctx *c, const struct kms_key *k, json_t *doc)
{
	json_t *m = json_array_get(json_object_get(k->doc, "Materials"), 0);
	const char *ref = json_string_value(json_object_get(m, "Wrapped"));
	json_int_t version = json_integer_value(json_object_get(m, "Version"));
	if (ref == NULL || version < 1 || version > UINT32_MAX)
		return api_fail(c, K_E_INVALID_STATE,
				"%s has no imported key material; import it before replicating the "
				"key to a Region another deployment serves.",
				k->arn);
	struct kbuf text;
	kbuf_init(&text, COMMITMENT_TEXT_MAX);
	k_status rc = keystore_peer_commitment(kms_doc_material_arn(k->doc), (uint32_t)version,
					       kslice_cstr(ref), &text);
	if (k_ok(rc))
		json_object_set_new(doc, "MaterialCommitment", json_string(kbuf_cstr(&text)));
	kbuf_release(&text);
	return rc;
}
