/*
 * regions.h — the regions kinko serves.
 *
 * A request's region is the one in its SigV4 credential scope. kinko
 * serves AWS's regions (the commercial, AWS GovCloud (US) and China
 * partitions) and the names the configuration file adds under "regions"
 * (docs/CONFIG.md); any other name is refused before the access key is
 * looked up (InvalidSignatureException, "Credential should be scoped to a
 * valid region, not 'NAME'.", docs/AUTHORIZATION.md).
 *
 * The added names are set once while the configuration loads, before
 * serving, and only read after, so lookups take no lock.
 */
#ifndef KINKO_CONFIG_REGIONS_H
#define KINKO_CONFIG_REGIONS_H

#include <jansson.h>
#include <stdbool.h>
#include "core/buf.h"
#include "core/result.h"

/* At most this many names added by the configuration. */
#define REGIONS_MAX_ADDED 64

/* True if `region` (NUL-terminated) is AWS's or an added one. NULL: false. */
bool config_region_known(const char *region);

/*
 * Adds the configuration's "regions" member: a list of names, each 1 to
 * SIGV4_MAX_REGION characters of [a-z0-9-], neither starting nor ending
 * with '-'. NULL (member absent) adds nothing. K_E_VALIDATION with a
 * reason in `msg` for anything else; names already known are accepted
 * and ignored. K_E_LIMIT_EXCEEDED past REGIONS_MAX_ADDED.
 */
K_MUST_CHECK k_status config_regions_load(const json_t *list, struct kbuf *msg);

/* Forgets the added names (AWS's stay). */
void config_regions_release(void);

#endif
