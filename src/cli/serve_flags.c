/*
 * serve_flags.c — `kinko serve`'s command line (see serve_internal.h):
 * server, path and audit flags; the list is cli/usage.c's.
 */
#include "cli/serve_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/usage.h"
#include "config/functions.h"
#include "core/log.h"
#include "kms/key_warm.h"
#include "quota/quota.h"
#include "core/banned.h"

/* --log-level: one of the four levels, anything else refused with their names. */
static enum flag_taken parse_log_level(const char *v)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	static const enum klog_level levels[] = {KLOG_DEBUG, KLOG_INFO, KLOG_WARN, KLOG_ERROR};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcmp(v, names[i]) == 0) {
			klog_set_level(levels[i]);
			return FLAG_VALUE;
		}
	}
	fprintf(stderr, "kinko serve: --log-level takes debug, info, warn or error, not \"%s\"\n",
		v);
	return FLAG_ERROR;
}

/* A server flag that takes a value (`next`, not NULL). */
static enum flag_taken parse_server_value(struct serve_state *s, const char *a, const char *next)
{
	struct serve_flags *f = &s->f;
	if (strcmp(a, "--listen") == 0)
		f->listen = next;
	else if (strcmp(a, "--data") == 0)
		f->data = next;
	else if (strcmp(a, "--config") == 0)
		f->config_path = next;
	else if (strcmp(a, "--store") == 0)
		f->store_url = next;
	else if (strcmp(a, "--seed") == 0)
		f->seed_file = next;
	else if (strcmp(a, "--node-id") == 0)
		f->node_id = next;
	else if (strcmp(a, "--root-key") == 0)
		f->root_key = next;
	else if (strcmp(a, "--tls-cert") == 0)
		f->tls_cert = next;
	else if (strcmp(a, "--tls-key") == 0)
		f->tls_key = next;
	else if (strcmp(a, "--log-file") == 0)
		f->log_file = next;
	else if (strcmp(a, "--xks-listen") == 0)
		f->xks_listen = next;
	else if (strcmp(a, "--xks-client-ca") == 0)
		f->xks_client_ca = next;
	else if (strcmp(a, "--xks-proxy-ca") == 0)
		f->xks_proxy_ca = next;
	else if (strcmp(a, "--log-format") == 0) {
		enum klog_format lf;
		if (k_failed(klog_parse_format(next, &lf))) {
			fprintf(stderr, "kinko: --log-format takes text or json, not %s\n", next);
			return FLAG_ERROR;
		}
		klog_set_format(lf);
		f->log_format = next;
	} else if (strcmp(a, "--warm-keys") == 0) {
		char *end = NULL;
		f->warm_keys = strtoll(next, &end, 10);
		if (end == next || *end != 0 || f->warm_keys < 0) {
			fprintf(stderr, "kinko: --warm-keys takes a number of keys (0: none)\n");
			return FLAG_ERROR;
		}
	} else if (strcmp(a, "--threads") == 0)
		s->cfg.threads = (unsigned)strtoul(next, NULL, 10);
	else if (strcmp(a, "--log-level") == 0)
		return parse_log_level(next);
	else if (strcmp(a, "--rotation-function") == 0) {
		/* Secrets Manager: a local rotation function, ARN=PATH. */
		struct kbuf fmsg;
		kbuf_init(&fmsg, KBUF_NOTE_MAX);
		k_status rc = config_functions_add_cli(next, &fmsg);
		if (k_failed(rc))
			fprintf(stderr, "kinko: %s\n", kbuf_cstr(&fmsg));
		kbuf_release(&fmsg);
		return k_ok(rc) ? FLAG_VALUE : FLAG_ERROR;
	} else
		return FLAG_UNKNOWN;
	return FLAG_VALUE;
}

/* The server's own flags: where it listens, where its data and keys are, how it logs. */
static enum flag_taken parse_server_flag(struct serve_state *s, const char *a, const char *next)
{
	if (strcmp(a, "--dev") == 0)
		s->cfg.dev = true;
	else if (strcmp(a, "--test-mode") == 0)
		s->cfg.test_mode = true;
	else if (strcmp(a, "--tls-self-signed") == 0)
		s->f.tls_self_signed = true;
	else if (strcmp(a, "--allow-root-key-in-data") == 0)
		s->f.allow_root_key_in_data = true;
	else if (strcmp(a, "--shared-store") == 0)
		s->f.shared_store = true;
	else
		return next != NULL ? parse_server_value(s, a, next) : FLAG_UNKNOWN;
	return FLAG_SWITCH;
}

/* An audit, metrics or quota flag that takes a value (`next`, not NULL). */
static enum flag_taken parse_audit_value(struct serve_flags *f, const char *a, const char *next)
{
	if (strcmp(a, "--audit-dir") == 0) {
		f->audit_dir = next;
	} else if (strcmp(a, "--audit-sync") == 0) {
		if (strcmp(next, "fsync") != 0 && strcmp(next, "write") != 0) {
			fprintf(stderr, "kinko: --audit-sync takes fsync or write\n");
			return FLAG_ERROR;
		}
		f->audit.sync = strcmp(next, "write") == 0 ? AUDIT_SYNC_WRITE : AUDIT_SYNC_FSYNC;
	} else if (strcmp(a, "--audit-max-file-bytes") == 0) {
		f->audit.max_file_bytes = strtoull(next, NULL, 10);
	} else if (strcmp(a, "--audit-rotate-seconds") == 0) {
		f->audit.rotate_seconds = strtoll(next, NULL, 10);
	} else if (strcmp(a, "--audit-digest-seconds") == 0) {
		long long sec = strtoll(next, NULL, 10);
		if (sec < 1 || sec > 86400) {
			fprintf(stderr, "kinko: --audit-digest-seconds takes 1 to 86400\n");
			return FLAG_ERROR;
		}
		f->audit.period_ms = sec * 1000;
	} else if (strcmp(a, "--audit-index-seconds") == 0) {
		long long sec = strtoll(next, NULL, 10);
		if (sec < 1 || sec > 86400) {
			fprintf(stderr, "kinko: --audit-index-seconds takes 1 to 86400\n");
			return FLAG_ERROR;
		}
		f->audit.index_ms = sec * 1000;
	} else if (strcmp(a, "--audit-witness") == 0) {
		f->audit.witness_file = next;
	} else if (strcmp(a, "--metrics-listen") == 0) {
		f->metrics_listen = next;
	} else if (strcmp(a, "--quotas") == 0) {
		if (strcmp(next, "aws") != 0 && strcmp(next, "off") != 0) {
			fprintf(stderr, "kinko: --quotas takes aws or off\n");
			return FLAG_ERROR;
		}
		f->quotas_mode = next;
	} else if (strcmp(a, "--quota") == 0) {
		/* Checked against the operation tables once they are registered. */
		if (f->n_quota_specs == MAX_QUOTA_SPECS) {
			fprintf(stderr, "kinko: too many --quota\n");
			return FLAG_ERROR;
		}
		f->quota_specs[f->n_quota_specs++] = next;
		f->quota_overridden = true;
	} else {
		return FLAG_UNKNOWN;
	}
	return FLAG_VALUE;
}

/* The audit trail's, the metrics listener's and the quotas' flags. */
static enum flag_taken parse_audit_flag(struct serve_flags *f, const char *a, const char *next)
{
	if (strcmp(a, "--no-audit") == 0)
		f->no_audit = true;
	else if (strcmp(a, "--audit-witness-syslog") == 0)
		f->audit.witness_syslog = true;
	else
		return next != NULL ? parse_audit_value(f, a, next) : FLAG_UNKNOWN;
	return FLAG_SWITCH;
}

int serve_parse_flags(struct serve_state *s, int argc, char **argv)
{
	/*
	 * Default: a call returns once its event is in the audit ring (it
	 * survives a crash of kinko); a flusher drains the ring into the log
	 * every 10 ms and fdatasyncs it every 200 ms.
	 * --audit-sync fsync makes each call wait for the disk as well.
	 */
	s->f.audit.sync = AUDIT_SYNC_WRITE;
	s->f.warm_keys = KMS_WARM_MAX_KEYS_DEFAULT;
	for (int i = 0; i < argc; i++) {
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;
		enum flag_taken t = parse_server_flag(s, argv[i], next);
		if (t == FLAG_UNKNOWN)
			t = parse_audit_flag(&s->f, argv[i], next);
		if (t == FLAG_ERROR)
			return 2;
		if (t == FLAG_UNKNOWN) {
			cli_bad_option(cli_command_find("serve", NULL, NULL), argv[i],
				       next == NULL);
			return 2;
		}
		if (t == FLAG_VALUE)
			i++;
	}
	return 0;
}
