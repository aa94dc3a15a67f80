/*
 * store.h — the store the KMS service works on, for the files of kms/ only.
 *
 * The store is a service handed to each service at its start: kms_init(st)
 * here, secrets_init(st), metrics_register_store_gauges(st),
 * testmode_init(st), scheduler_start(st). Each keeps the handle it was
 * given; no service reaches into another's. The handle is set once, before
 * any request or scheduled work runs, and is read without a lock after.
 */
#ifndef KINKO_KMS_STORE_H
#define KINKO_KMS_STORE_H

#include "storage/storage.h"

/* The handle given to kms_init (borrowed; NULL before kms_init). */
struct storage *kms_store(void);

#endif
