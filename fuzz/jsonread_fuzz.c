/*
 * jsonread_fuzz.c — the strict JSON reader (core/jsonread.h) against
 * jansson's loader with the flags the pipeline used
 * (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY).
 *
 * Input: any bytes. Both must accept the same texts (but for one jansson
 * quirk, below), and what they accept
 * must be the same value (json_equal); a refusal must say why, at an
 * offset inside the text.
 */
#include <ctype.h>
#include <stdlib.h>

#include "support.h"
#include "core/jsonread.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	json_t *mine = NULL;
	struct kjson_status why;
	k_status rc = kjson_read(kslice_make(data, size), &mine, &why);
	json_error_t e;
	json_t *theirs = size > 0 ? json_loadb((const char *)data, size,
					       JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e)
				  : NULL;
	/*
	 * jansson ends a number or a literal (true, false, null) at a NUL byte
	 * and reads on after it, anywhere in the text ("0\0", "[[8\0]]"); this
	 * reader refuses the NUL, where it stands.
	 */
	bool nul_after_number = theirs != NULL && k_failed(rc) && why.position > 0 &&
				why.position < size && data[why.position] == 0 &&
				isalnum(data[why.position - 1]);
	if (k_ok(rc) != (theirs != NULL) && !nul_after_number)
		abort();
	if (k_ok(rc) && !json_equal(mine, theirs))
		abort();
	if (k_failed(rc) && (why.error == KJSON_OK || why.position > size))
		abort();
	json_decref(mine);
	json_decref(theirs);
	return 0;
}
