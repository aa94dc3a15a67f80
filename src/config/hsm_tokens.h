/*
 * hsm_tokens.h — the PKCS#11 tokens custom key stores may use.
 *
 * The configuration's "hsm_tokens" member (docs/CONFIG.md) lists them:
 *     {"id": "cluster-abcdefghij2", "module": "/usr/lib/softhsm/libsofthsm2.so",
 *      "token_label": "kinko", "trust_anchor_file": "customerCA.crt"}
 * (or "slot" instead of "token_label"). Each becomes a token of
 * keystore/pkcs11.h; CreateCustomKeyStore's CloudHsmClusterId names one.
 */
#ifndef KINKO_CONFIG_HSM_TOKENS_H
#define KINKO_CONFIG_HSM_TOKENS_H

#include <jansson.h>
#include "core/buf.h"
#include "core/result.h"

/*
 * Declares the tokens of the list (NULL: none). The trust anchor file is
 * read now, relative to the configuration file's folder unless absolute.
 * K_E_VALIDATION with a reason in msg for a bad entry.
 */
K_MUST_CHECK k_status config_hsm_tokens_load(const json_t *list, const char *cfg_path,
					     struct kbuf *msg);

#endif
