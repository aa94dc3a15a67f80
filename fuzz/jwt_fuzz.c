/*
 * jwt_fuzz.c — the JSON Web Token reader and signature check
 * (crypto/jwt.h) on arbitrary tokens.
 *
 * Input: the token text. It is decoded (jwt_decode) and checked
 * (jwt_verify) against a fixed key set with one RSA-2048 and one P-256
 * key; whatever the input, both must return a status without a crash or
 * leak, and the decoded parts, when any, must be JSON objects. A forged
 * token must never verify: the fuzzer cannot sign with the keys' private
 * halves, which exist nowhere here.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/jwt.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char jwks_text[] =
	"{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rsa-1\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":"
	"\"lAF"
	"_0TaOTXajmVT6HTGNlKcfOF3NQ8fMt1i9129p6Fe0etL2aHsBq8Xj-WNM8nZ5gy03kGkkY"
	"_Dc3GVcIdLRmtmjQJk3ARY8EIG2ZT0bdelD5aPKg5PcJKoBv9P2TubniISyuoW8ZgiLXg_"
	"2DAARETAfzuvlVyNH82kKXhsccCYWWwcr0OyAWLbALBeq7c-gmPCv-CVDQfgic2C9Yr_JU"
	"7iadv8qUJ4dVxgvjrtOAhfOQ98o8RTLmiWMkPa38_7BjFEOs5PwDWDiuaFfLRW0pkyYh3B"
	"PwLzJrvHLh9NSDQGGI3uRoDFi9a5zfSD0F8fZIVSAr9oqMhlwvZ6dV3U2Sw\",\"e\":\"AQAB"
	"\"},{\"kty\":\"EC\",\"kid\":\"ec-1\",\"crv\":\"P-256\",\"x\":\"-q7L0Oc5iJzgDsQ1ldAlN-K"
	"M5tNa201JuD9hdFiXayw\",\"y\":\"fRICq7yUEqEG9qeiSJvznHK6VXy0I3dGtHdqpSLX4Fw"
	"\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static json_t *jwks;
	if (jwks == NULL)
		jwks = json_loads(jwks_text, 0, NULL);
	if (jwks == NULL || size > JWT_MAX_TOKEN)
		return 0;
	char *token = malloc(size + 1);
	if (token == NULL)
		return 0;
	memcpy(token, data, size);
	token[size] = 0;
	json_t *header = NULL, *claims = NULL;
	if (k_ok(jwt_decode(token, &header, &claims)) &&
	    (!json_is_object(header) || !json_is_object(claims)))
		abort();
	json_decref(header);
	json_decref(claims);
	k_ignore(jwt_verify(token, jwks));
	free(token);
	return 0;
}
