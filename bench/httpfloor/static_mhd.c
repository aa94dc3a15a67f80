/*
 * static_mhd.c — libmicrohttpd set up as kinko sets it up (epoll, a thread
 * pool, turbo, suspend/resume allowed, 24 KiB per connection), answering
 * every request with the same static "200 ok" after reading its body, as
 * kinko's glue does: a response made per request from the answer's
 * buffer with its two headers ("per-request"), or one response made at
 * start and queued for every request ("shared"). A yardstick for
 * bench/httpfloor/run.sh, not part of kinko.
 *
 *   static_mhd PORT THREADS per-request|shared
 */
#include <microhttpd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char body[] = "ok";
static struct MHD_Response *shared;
static int marker;

static struct MHD_Response *make(void)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(2, (void *)body, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/x-amz-json-1.1");
	MHD_add_response_header(r, "x-amzn-RequestId", "00000000-0000-0000-0000-000000000000");
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	if (*con_cls == NULL) {
		*con_cls = &marker;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (shared != NULL)
		return MHD_queue_response(conn, 200, shared);
	struct MHD_Response *r = make();
	enum MHD_Result ret = MHD_queue_response(conn, 200, r);
	MHD_destroy_response(r);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: static_mhd PORT THREADS per-request|shared\n");
		return 2;
	}
	if (strcmp(argv[3], "shared") == 0)
		shared = make();
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_TURBO |
			 MHD_ALLOW_SUSPEND_RESUME;
	struct MHD_Daemon *d =
		MHD_start_daemon(flags, (uint16_t)atoi(argv[1]), NULL, NULL, on_request, NULL,
				 MHD_OPTION_THREAD_POOL_SIZE, (unsigned)atoi(argv[2]),
				 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(24u << 10),
				 MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_LISTEN_BACKLOG_SIZE,
				 1024u, MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "cannot start\n");
		return 1;
	}
	pause();
	MHD_stop_daemon(d);
	return 0;
}
