/*
 * curl_init.h — libcurl's one global initialization, for every HTTP
 * client of kinko (Secrets Manager's HTTP rotation functions, the XKS
 * client).
 *
 * libcurl is initialized once per process, and the first initialization
 * decides its allocator for good. kinko's clients send and receive
 * secrets through it (a rotation function's credentials, an XKS proxy's
 * plaintext), so libcurl gets a wiping allocator: each block carries its
 * size and is wiped before it is freed, and a reallocation always copies
 * into a new block and wipes the old one.
 */
#ifndef KINKO_CORE_CURL_INIT_H
#define KINKO_CORE_CURL_INIT_H

#include "core/result.h"

/*
 * Initializes libcurl with the wiping allocator on the first call (thread
 * safe); later calls return the first one's outcome. K_E_INTERNAL when
 * libcurl could not start.
 */
K_MUST_CHECK k_status kcurl_global_init(void);

#endif
