/*
 * schema_test.c — the configuration file's shape (config/schema.c):
 * unknown members with the nearest known name, wrong types and ranges,
 * each named by its JSON path.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "config/config.h"
#include "config/schema.h"
#include "core/json.h"
#include "testlib.h"

/* Checks `text`; returns whether it passed, leaving the message in msg. */
static int check(const char *text, struct kbuf *msg)
{
	json_error_t err;
	json_t *root = json_loads(text, 0, &err);
	if (root == NULL) {
		fprintf(stderr, "bad test JSON: %s\n", err.text);
		return -1;
	}
	kbuf_reset(msg);
	k_status rc = config_schema_check(root, msg);
	json_decref(root);
	return k_ok(rc) ? 1 : 0;
}

static int says(struct kbuf *msg, const char *want)
{
	if (strstr(kbuf_cstr(msg), want) != NULL)
		return 1;
	fprintf(stderr, "message %s lacks %s\n", kbuf_cstr(msg), want);
	return 0;
}

static void test_accepts_every_documented_member(void)
{
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	CHECK_EQ_INT(check("{}", &msg), 1);
	CHECK_EQ_INT(check("{\"listen\": \"127.0.0.1:4599\", \"data_dir\": \"/var/lib/kinko\","
			   "\"store\": \"sqlite:/var/lib/kinko\", \"root_key_file\": "
			   "\"/etc/kinko/root.key\","
			   "\"root_key_in_data_dir_ok\": false, \"threads\": 0, "
			   "\"max_connections\": 4096,"
			   "\"per_ip_connections\": 1024, \"idle_timeout_s\": 60, "
			   "\"header_timeout_s\": 20,"
			   "\"body_timeout_s\": 60, \"tls_cert_file\": \"c.pem\", "
			   "\"tls_key_file\": \"k.pem\","
			   "\"regions\": [\"local-1\"], \"" CONFIG_TEST_MODE_SWITCH "\": false,"
			   "\"audit_digest_seconds\": 60, \"audit_witness_file\": \"/w\","
			   "\"audit_witness_syslog\": true,"
			   "\"accounts\": [{\"id\": \"111122223333\","
			   "  \"root_access_keys\": [{\"access_key_id\": \"A\", "
			   "\"secret_access_key\": \"S\"}],"
			   "  \"users\": [{\"name\": \"alice\", \"access_keys\": [],"
			   "              \"policies\": [{\"Version\": \"2012-10-17\", "
			   "\"Statement\": []}]}],"
			   "  \"roles\": [{\"name\": \"r\", \"trust_policy\": {}, \"policies\": [],"
			   "              \"max_session_duration\": 3600}]}],"
			   "\"rotation_functions\": [{\"arn\": "
			   "\"arn:aws:lambda:us-east-1:1:function:f\","
			   "  \"command\": [\"/bin/true\"], \"access_key_id\": \"A\","
			   "  \"environment\": {\"X\": \"1\"}, \"timeout_seconds\": 30, "
			   "\"log_file\": \"/l\"}]}",
			   &msg),
		     1);
	kbuf_release(&msg);
}

static void test_unknown_members_named_with_nearest(void)
{
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	CHECK_EQ_INT(check("{\"max_conections\": 10}", &msg), 0);
	CHECK(says(&msg, "unknown member \"max_conections\""));
	CHECK(says(&msg, "did you mean \"max_connections\""));
	CHECK_EQ_INT(
		check("{\"accounts\": [{\"id\": \"1\", \"users\": [{}, {\"acces_keys\": []}]}]}",
		      &msg),
		0);
	CHECK(says(&msg, "\"accounts[0].users[1].acces_keys\""));
	CHECK(says(&msg, "\"access_keys\""));
	/* Nothing near: no suggestion. */
	CHECK_EQ_INT(check("{\"zzzzzzzz\": 1}", &msg), 0);
	CHECK(says(&msg, "unknown member \"zzzzzzzz\""));
	CHECK(strstr(kbuf_cstr(&msg), "did you mean") == NULL);
	kbuf_release(&msg);
}

static void test_types_and_ranges(void)
{
	struct kbuf msg;
	kbuf_init(&msg, 1024);
	CHECK_EQ_INT(check("{\"listen\": 4599}", &msg), 0);
	CHECK(says(&msg, "\"listen\" must be a string, not a number"));
	CHECK_EQ_INT(check("{\"threads\": 1000}", &msg), 0);
	CHECK(says(&msg, "\"threads\" must be from 0 to 256, not 1000"));
	CHECK_EQ_INT(check("{\"threads\": 2.5}", &msg), 0);
	CHECK(says(&msg, "\"threads\" must be a whole number"));
	CHECK_EQ_INT(check("{\"root_key_in_data_dir_ok\": \"yes\"}", &msg), 0);
	CHECK(says(&msg, "\"root_key_in_data_dir_ok\" must be true or false, not a string"));
	CHECK_EQ_INT(check("{\"accounts\": {}}", &msg), 0);
	CHECK(says(&msg, "\"accounts\" must be a list of objects, not an object"));
	CHECK_EQ_INT(check("{\"accounts\": [{\"roles\": [{\"max_session_duration\": 60}]}]}", &msg),
		     0);
	CHECK(says(&msg,
		   "\"accounts[0].roles[0].max_session_duration\" must be from 900 to 43200"));
	CHECK_EQ_INT(check("{\"rotation_functions\": [{\"command\": [\"/x\", 3]}]}", &msg), 0);
	CHECK(says(&msg, "\"rotation_functions[0].command[1]\" must be a string, not a number"));
	CHECK_EQ_INT(check("{\"rotation_functions\": [{\"environment\": {\"A\": 1}}]}", &msg), 0);
	CHECK(says(&msg, "\"rotation_functions[0].environment.A\" must be a string"));
	CHECK_EQ_INT(check("{\"regions\": [\"a\", null]}", &msg), 0);
	CHECK(says(&msg, "\"regions[1]\" must be a string, not null"));
	CHECK_EQ_INT(check("[]", &msg), 0);
	kbuf_release(&msg);
}

int main(void)
{
	kjson_init();
	RUN(test_accepts_every_documented_member);
	RUN(test_unknown_members_named_with_nearest);
	RUN(test_types_and_ranges);
	return tl_summary();
}
