/*
 * config_fuzz.c — the configuration file loader (docs/CONFIG.md).
 *
 * Input: the file's bytes, served from an in-memory file so nothing
 * touches the disk. config_load_file() must either load it or say why,
 * and config_release() must leave nothing behind (LeakSanitizer checks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "support.h"
#include "config/config.h"
#include "core/json.h"
#include "core/log.h"
#include "core/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	if (size > (1u << 20))
		return 0;
	if (fd < 0) {
		kjson_init();
		klog_set_level(KLOG_ERROR);
		fd = memfd_create("kinko-config", 0);
		if (fd < 0)
			abort();
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	struct config cfg;
	config_defaults(&cfg);
	struct kbuf msg;
	kbuf_init(&msg, 4096);
	k_status rc = config_load_file(&cfg, path, &msg);
	if (k_failed(rc) && msg.len == 0)
		abort(); /* a refusal always says why */
	if (cfg.listen_host[sizeof cfg.listen_host - 1] != 0 ||
	    cfg.data_dir[sizeof cfg.data_dir - 1] != 0)
		abort();
	config_release();
	kbuf_release(&msg);
	return 0;
}
