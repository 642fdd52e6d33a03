/* http1: the request head parser behind central's httpd. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

#define MAX_BODY 1024

static size_t head_end(const char *b, size_t len)
{
	size_t scan = 0;

	return http1_head_end(b, len, &scan);
}

/* Parses s (a whole head, maybe followed by a body) in a copy that lives
 * until the next call; returns http1_parse's code. */
static char buf[8192];

static int parse(const char *s, struct http1_req *rq, int *status, pos_err *e)
{
	size_t len = strlen(s), hl;

	assert_true(len < sizeof buf);
	memcpy(buf, s, len + 1);
	hl = head_end(buf, len);
	assert_true(hl > 0);
	return http1_parse(buf, hl, MAX_BODY, rq, status, e);
}

/* The status a head is refused with (0 when it parses). */
static int refused(const char *s)
{
	struct http1_req rq;
	pos_err e = { 0 };
	int status = -1, rc = parse(s, &rq, &status, &e);

	if (rc == 0)
		return 0;
	assert_int_equal(rc, POS_EINVAL);
	assert_true(e.msg[0] != '\0');
	return status;
}

static void a_usual_request_parses_in_place(void **st)
{
	struct http1_req rq;
	pos_err e = { 0 };
	int status;
	const char *req = "POST /v1/resolve HTTP/1.1\r\nHost: central\r\n"
			  "Content-Type: application/json\r\nContent-Length: 12\r\n"
			  "Authorization:   Bearer abc  \r\n\r\n{\"txn\":\"x\"}X";

	(void)st;
	assert_int_equal(parse(req, &rq, &status, &e), 0);
	assert_int_equal(rq.method, HTTP1_POST);
	assert_string_equal(http1_method_name(rq.method), "POST");
	assert_string_equal(rq.path, "/v1/resolve");
	assert_null(rq.query);
	assert_int_equal(rq.minor, 1);
	assert_true(rq.keep_alive);
	assert_false(rq.expect_continue);
	assert_int_equal(rq.content_length, 12);
	assert_int_equal(rq.head_len, strstr(req, "\r\n\r\n") + 4 - req);
	assert_int_equal(rq.nheaders, 4);
	assert_string_equal(http1_header(&rq, "host"), "central");
	assert_string_equal(http1_header(&rq, "AUTHORIZATION"), "Bearer abc");
	assert_null(http1_header(&rq, "Cookie"));
	/* The body is left alone. */
	assert_memory_equal(buf + rq.head_len, "{\"txn\":\"x\"}X", 12);
}

static void the_head_ends_at_the_first_empty_line_crlf_or_lf(void **st)
{
	(void)st;
	assert_int_equal(head_end("GET / HTTP/1.1\r\nHost: a\r\n", 25), 0);
	assert_int_equal(head_end("GET / HTTP/1.1\r\nHost: a\r\n\r", 26), 0);
	assert_int_equal(head_end("GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", 31), 27);
	assert_int_equal(head_end("GET / HTTP/1.1\nHost: a\n\nbody", 28), 24);
	assert_int_equal(head_end("", 0), 0);
	assert_int_equal(refused("GET /x?a=1&b=2 HTTP/1.1\nHost: a\n\n"), 0);
}

/* Fed a growing buffer, the scan resumes where it stopped and finds the
 * same end as one pass over the whole. */
static void the_head_scan_resumes_on_a_growing_buffer(void **st)
{
	const char *head = "POST /v1/resolve HTTP/1.1\r\nHost: c\r\nContent-Length: 2\r\n\r\n{}";
	size_t len = strlen(head), scan = 0, end = 0, whole = head_end(head, len);

	(void)st;
	for (size_t n = 1; n <= len && !end; n++) {
		end = http1_head_end(head, n, &scan);
		assert_true(scan <= n);
	}
	assert_int_equal(end, whole);
	assert_int_equal(whole, len - 2);
}

static void the_query_is_split_off_the_path(void **st)
{
	struct http1_req rq;
	pos_err e = { 0 };
	int status;

	(void)st;
	assert_int_equal(parse("GET /v1/households/hh_1/baskets?from=2026-01-01&format=csv "
			       "HTTP/1.1\r\nHost: h\r\n\r\n",
			       &rq, &status, &e),
			 0);
	assert_int_equal(rq.method, HTTP1_GET);
	assert_string_equal(rq.path, "/v1/households/hh_1/baskets");
	assert_string_equal(rq.query, "from=2026-01-01&format=csv");
	assert_int_equal(rq.nheaders, 1);
	assert_int_equal(rq.content_length, 0);
}

static void keep_alive_follows_the_version_and_connection(void **st)
{
	struct http1_req rq;
	pos_err e = { 0 };
	int status;

	(void)st;
	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &rq, &status, &e), 0);
	assert_false(rq.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &rq, &status, &e),
			 0);
	assert_true(rq.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: TE, close\r\n\r\n", &rq, &status, &e),
			 0);
	assert_false(rq.keep_alive);
	/* close wins, whatever comes after it. */
	assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
			       &rq, &status, &e),
			 0);
	assert_false(rq.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", &rq, &status, &e),
			 0);
	assert_true(rq.keep_alive);
}

static void expect_100_continue_is_flagged_and_others_refused(void **st)
{
	struct http1_req rq;
	pos_err e = { 0 };
	int status;

	(void)st;
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n",
			       &rq, &status, &e),
			 0);
	assert_true(rq.expect_continue);
	assert_int_equal(refused("POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n"), 417);
	/* HTTP/1.0 cannot take a 100: the expectation is ignored. */
	assert_int_equal(parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &rq, &status, &e), 0);
	assert_false(rq.expect_continue);
}

static void content_length_is_strict(void **st)
{
	struct http1_req rq;
	pos_err e = { 0 };
	int status;

	(void)st;
	assert_int_equal(refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
			 0);
	assert_int_equal(refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
			 400);
	assert_int_equal(refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5x\r\n\r\n"), 400);
	assert_int_equal(refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"), 400);
	assert_int_equal(refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n"), 400);
	assert_int_equal(refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1024\r\n\r\n"), 0);
	/* Over max_body: 413, and the declared length is kept so the server
	 * can read and drop the body before it closes. */
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1025\r\n\r\n", &rq, &status, &e),
			 POS_EINVAL);
	assert_int_equal(status, 413);
	assert_int_equal(rq.content_length, 1025);
	assert_int_equal(refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
			 413);
	assert_int_equal(refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
	assert_int_equal(
		refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
		501);
}

static void malformed_heads_are_refused(void **st)
{
	char many[4096];
	size_t n;

	(void)st;
	assert_int_equal(refused("\r\n\r\n"), 400);
	assert_int_equal(refused("\n\n"), 400);
	assert_int_equal(refused("GET\r\n\r\n"), 400);
	assert_int_equal(refused(" GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
	assert_int_equal(refused("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
	assert_int_equal(refused("GET http://x/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
	assert_int_equal(refused("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
	assert_int_equal(refused("GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
	assert_int_equal(refused("GET / HTTP/1.1 \r\n\r\n"), 400);
	assert_int_equal(refused("GET / HTTP/1\r\n\r\n"), 400);
	assert_int_equal(refused("GET / FTP/1.1\r\n\r\n"), 400);
	assert_int_equal(refused("GET / HTTP/2.0\r\n\r\n"), 505);
	assert_int_equal(refused("GET / HTTP/0.9\r\n\r\n"), 505);
	assert_int_equal(refused("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
	assert_int_equal(refused("GET / HTTP/1.1\r\nHost: h\r\n: a\r\n\r\n"), 400);
	assert_int_equal(refused("GET / HTTP/1.1\r\nHost: h\r\nno colon\r\n\r\n"), 400);
	assert_int_equal(refused("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n folded\r\n\r\n"), 400);
	assert_int_equal(refused("GET / HTTP/1.1\r\nHost: h\r\nA: x\x01y\r\n\r\n"), 400);
	assert_int_equal(refused("GET / HTTP/1.1\r\nHost: h\r\nA: x\ry\r\n\r\n"), 400);
	/* Tabs and bytes over 0x7f are allowed in values. */
	assert_int_equal(refused("GET / HTTP/1.1\r\nHost: h\r\nA: x\ty \xc3\xa9\r\n\r\n"), 0);

	n = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 0; i <= HTTP1_MAX_HEADERS; i++)
		n += (size_t)snprintf(many + n, sizeof many - n, "X-%d: v\r\n", i);
	snprintf(many + n, sizeof many - n, "\r\n");
	assert_int_equal(refused(many), 431);
}

static void http_1_1_needs_one_valid_host(void **st)
{
	struct http1_req rq;
	pos_err e = { 0 };
	int status;

	(void)st;
	assert_int_equal(parse("GET /v1/health HTTP/1.1\r\nAccept: */*\r\n\r\n", &rq, &status, &e),
			 POS_EINVAL);
	assert_int_equal(status, 400);
	assert_non_null(strstr(e.msg, "Host"));
	assert_int_equal(refused("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), 400);
	assert_int_equal(refused("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
	assert_int_equal(refused("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
	assert_int_equal(refused("GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n"), 0);
	assert_int_equal(refused("GET / HTTP/1.1\r\nHost: central.example:8443\r\n\r\n"), 0);
	/* Empty is allowed (RFC 9110 7.2: a target without an authority). */
	assert_int_equal(refused("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 0);
	/* HTTP/1.0 predates Host. */
	assert_int_equal(refused("GET / HTTP/1.0\r\n\r\n"), 0);
	assert_int_equal(refused("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
}

static void authorization_may_come_once_only(void **st)
{
	struct http1_req rq;
	pos_err e = { 0 };
	int status;

	(void)st;
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x\r\n"
			       "authorization: Bearer y\r\n\r\n",
			       &rq, &status, &e),
			 POS_EINVAL);
	assert_int_equal(status, 400);
	assert_non_null(strstr(e.msg, "Authorization is given more than once"));
	/* The message never quotes the credentials. */
	assert_null(strstr(e.msg, "Bearer"));
	assert_int_equal(refused("GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x\r\n\r\n"), 0);
}

static void a_nul_in_the_head_is_refused(void **st)
{
	char head[] = "GET / HTTP/1.1\r\nHost: h\r\nA: x\0y\r\n\r\n";
	struct http1_req rq;
	pos_err e = { 0 };
	int status;
	size_t len = sizeof head - 1;

	(void)st;
	assert_int_equal(head_end(head, len), len);
	assert_int_equal(http1_parse(head, len, MAX_BODY, &rq, &status, &e), POS_EINVAL);
	assert_int_equal(status, 400);
}

static void messages_never_quote_the_request(void **st)
{
	static const char *const heads[] = {
		"GET /card:5555555555554444 HTTP/9.9\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: h\r\nPhone: +15550100234\x01\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5555555555554444x\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: h\r\nExpect: 5555555555554444\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: h\r\n5555555555554444 x\r\n\r\n",
	};

	(void)st;
	for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
		struct http1_req rq;
		pos_err e = { 0 };
		int status;

		assert_int_equal(parse(heads[i], &rq, &status, &e), POS_EINVAL);
		assert_null(strstr(e.msg, "5555"));
		assert_null(strstr(e.msg, "0100234"));
	}
}

static void a_parsed_request_moves_with_its_buffer(void **st)
{
	struct http1_req rq;
	pos_err e = { 0 };
	int status;
	char *copy;

	(void)st;
	assert_int_equal(parse("POST /v1/baskets?x=1 HTTP/1.1\r\nHost: c\r\nContent-Length: 2\r\n\r\n{}",
			       &rq, &status, &e),
			 0);
	copy = malloc(sizeof buf);
	assert_non_null(copy);
	memcpy(copy, buf, sizeof buf);
	http1_relocate(&rq, buf, copy);
	memset(buf, 'z', sizeof buf);
	assert_string_equal(rq.path, "/v1/baskets");
	assert_string_equal(rq.query, "x=1");
	assert_string_equal(http1_header(&rq, "host"), "c");
	assert_true(rq.path >= copy && rq.path < copy + sizeof buf);
	free(copy);
}

static void methods_and_reasons_are_fixed_labels(void **st)
{
	struct http1_req rq;
	pos_err e = { 0 };
	int status;

	(void)st;
	assert_int_equal(parse("BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n", &rq, &status, &e), 0);
	assert_int_equal(rq.method, HTTP1_OTHER);
	assert_string_equal(http1_method_name(rq.method), "OTHER");
	assert_int_equal(parse("DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n", &rq, &status, &e), 0);
	assert_string_equal(http1_method_name(rq.method), "DELETE");
	assert_string_equal(http1_reason(404), "Not Found");
	assert_string_equal(http1_reason(431), "Request Header Fields Too Large");
	assert_string_equal(http1_reason(299), "Status");
}

static void a_bearer_token_is_read_once_for_every_route(void **st)
{
	size_t n = 99;
	const char *t;

	(void)st;
	t = http1_bearer("Bearer   abc.def  \t", &n);
	assert_non_null(t);
	assert_int_equal(n, 7);
	assert_memory_equal(t, "abc.def", 7);
	t = http1_bearer("bEARER x", &n);
	assert_non_null(t);
	assert_int_equal(n, 1);
	assert_null(http1_bearer("Basic abc", &n));
	assert_int_equal(n, 0);
	assert_null(http1_bearer("Bearer", &n));
	assert_null(http1_bearer(NULL, &n));
	t = http1_bearer("Bearer ", &n);
	assert_non_null(t);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_usual_request_parses_in_place),
		cmocka_unit_test(the_head_ends_at_the_first_empty_line_crlf_or_lf),
		cmocka_unit_test(the_head_scan_resumes_on_a_growing_buffer),
		cmocka_unit_test(the_query_is_split_off_the_path),
		cmocka_unit_test(keep_alive_follows_the_version_and_connection),
		cmocka_unit_test(expect_100_continue_is_flagged_and_others_refused),
		cmocka_unit_test(content_length_is_strict),
		cmocka_unit_test(malformed_heads_are_refused),
		cmocka_unit_test(http_1_1_needs_one_valid_host),
		cmocka_unit_test(authorization_may_come_once_only),
		cmocka_unit_test(a_nul_in_the_head_is_refused),
		cmocka_unit_test(messages_never_quote_the_request),
		cmocka_unit_test(a_parsed_request_moves_with_its_buffer),
		cmocka_unit_test(methods_and_reasons_are_fixed_labels),
		cmocka_unit_test(a_bearer_token_is_read_once_for_every_route),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
