/*
 * The agent's HTTPS client against a real TLS 1.3 server built in this
 * test (libevent evhttp + bufferevent_openssl, client certificate required
 * and verified), with certificates made by the openssl CLI in a mkdtemp()
 * folder. Client and server share one event loop, so every step is driven
 * by events, never by sleeping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "tls_testkit.h"

/* ---- test server ------------------------------------------------------ */

enum srv_mode {
	SRV_ANSWER,   /* status + body */
	SRV_HANG,     /* never answer */
	SRV_CLOSE,    /* drop the connection without an answer */
	SRV_BIG,      /* answer a body over the client's cap */
	SRV_HOLD,     /* hold /slow until /fast came, then answer both */
};

struct srv {
	struct event_base *base;
	struct evhttp *http;
	SSL_CTX *ctx;
	int port;
	int conns;
	int requests;
	enum srv_mode mode;
	int status;
	const char *answer;
	char cn[128], ou[128];
	char path[256];
	char ctype[128];
	char method[8];
	char relay[80];
	char body[4096];
	size_t body_len;
	struct evhttp_request *held;
};

static struct bufferevent *srv_bevcb(struct event_base *base, void *arg)
{
	struct srv *s = arg;

	s->conns++;
	return tls_accept_bev(base, s->ctx);
}

static void srv_handler(struct evhttp_request *req, void *arg)
{
	struct srv *s = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	X509 *peer = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *ct;

	s->requests++;
	s->cn[0] = s->ou[0] = '\0';
	if (peer) {
		X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, s->cn,
					  sizeof s->cn);
		X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_organizationalUnitName,
					  s->ou, sizeof s->ou);
		X509_free(peer);
	}
	snprintf(s->path, sizeof s->path, "%s", evhttp_request_get_uri(req));
	snprintf(s->method, sizeof s->method, "%s",
		 evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" :
		 evhttp_request_get_command(req) == EVHTTP_REQ_GET  ? "GET" : "OTHER");
	ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	snprintf(s->ctype, sizeof s->ctype, "%s", ct ? ct : "");
	ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Pos-Terminal");
	snprintf(s->relay, sizeof s->relay, "%s", ct ? ct : "");
	s->body_len = evbuffer_get_length(in);
	if (s->body_len >= sizeof s->body)
		s->body_len = sizeof s->body - 1;
	evbuffer_copyout(in, s->body, s->body_len);
	s->body[s->body_len] = '\0';

	switch (s->mode) {
	case SRV_ANSWER:
		tls_reply(req, s->status, s->answer);
		break;
	case SRV_HANG:
		break;
	case SRV_CLOSE:
		/* The client sees the socket end with no answer. */
		shutdown(bufferevent_getfd(bev), SHUT_RDWR);
		break;
	case SRV_BIG: {
		size_t n = 70 * 1024;
		char *big = malloc(n + 1);
		memset(big, 'x', n);
		big[n] = '\0';
		tls_reply(req, 200, big);
		free(big);
		break;
	}
	case SRV_HOLD:
		if (strcmp(s->path, "/slow") == 0) {
			s->held = req;
		} else {
			tls_reply(req, 200, "{\"which\":\"fast\"}");
			if (s->held)
				tls_reply(s->held, 200, "{\"which\":\"slow\"}");
			s->held = NULL;
		}
		break;
	}
}

static int srv_start(struct srv *s, struct event_base *base)
{
	char ca[256], crt[256], key[256];
	struct evhttp_bound_socket *bound;
	struct sockaddr_in sin;
	socklen_t sl = sizeof sin;

	memset(s, 0, sizeof *s);
	s->base = base;
	s->mode = SRV_ANSWER;
	s->status = 201;
	s->answer = "{\"status\":\"created\"}";
	path_of(ca, sizeof ca, "ca.crt");
	path_of(crt, sizeof crt, "srv.crt");
	path_of(key, sizeof key, "srv.key");
	s->ctx = SSL_CTX_new(TLS_server_method());
	if (!s->ctx)
		return -1;
	SSL_CTX_set_min_proto_version(s->ctx, TLS1_3_VERSION);
	if (SSL_CTX_use_certificate_chain_file(s->ctx, crt) != 1 ||
	    SSL_CTX_use_PrivateKey_file(s->ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(s->ctx, ca, NULL) != 1)
		return -1;
	SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	s->http = evhttp_new(base);
	evhttp_set_bevcb(s->http, srv_bevcb, s);
	evhttp_set_gencb(s->http, srv_handler, s);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	bound = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
	if (!bound)
		return -1;
	if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sin, &sl) != 0)
		return -1;
	s->port = ntohs(sin.sin_port);
	return 0;
}

static void srv_stop(struct srv *s)
{
	if (s->http)
		evhttp_free(s->http);
	SSL_CTX_free(s->ctx);
}

/* ---- client helpers --------------------------------------------------- */

struct result {
	int calls;
	long status;
	char body[256];
	size_t len;
	char err[256];
};

static void on_done(long status, const char *body, size_t len, const char *errmsg, void *arg)
{
	struct result *r = arg;

	r->calls++;
	r->status = status;
	r->len = len;
	snprintf(r->body, sizeof r->body, "%.*s", (int)len, body ? body : "");
	snprintf(r->err, sizeof r->err, "%s", errmsg ? errmsg : "");
}

struct fixture {
	struct event_base *base;
	struct srv srv;
	struct http *h;
	struct event *guard;
	int timed_out;
};

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;

	(void)fd;
	(void)what;
	f->timed_out = 1;
}

/* Runs the loop until *count reaches want; the guard only ends a test that
 * has already failed (nothing here waits on it to pass). */
static void run_until(struct fixture *f, const int *count, int want)
{
	struct timeval tv = { 20, 0 };

	f->timed_out = 0;
	evtimer_add(f->guard, &tv);
	while (*count < want && !f->timed_out)
		if (event_base_loop(f->base, EVLOOP_ONCE) != 0)
			break;
	evtimer_del(f->guard);
	assert_false(f->timed_out);
	assert_true(*count >= want);
}

static int http_open(struct fixture *f, const char *ca, const char *cert, const char *key,
		     struct http **out)
{
	char url[64], cap[256], certp[256], keyp[256];
	struct http_opts o;
	pos_err e;

	snprintf(url, sizeof url, "https://127.0.0.1:%d", f->srv.port);
	path_of(cap, sizeof cap, ca);
	path_of(certp, sizeof certp, cert);
	path_of(keyp, sizeof keyp, key);
	o.base_url = url;
	o.ca = cap;
	o.cert = certp;
	o.key = keyp;
	return http_new(f->base, &o, out, &e);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	if (!f)
		return -1;
	f->base = event_base_new();
	f->guard = evtimer_new(f->base, on_guard, f);
	if (srv_start(&f->srv, f->base) != 0)
		return -1;
	if (http_open(f, "ca.crt", "cli.crt", "cli.key", &f->h) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	http_free(f->h);
	srv_stop(&f->srv);
	event_free(f->guard);
	event_base_free(f->base);
	free(f);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_http.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return make_certs();
}

static int group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests ------------------------------------------------------------ */

/* A store controller first, central second: a controller that refuses
 * connections costs the lane nothing but the refusal; the request lands
 * on the next URL within its own timeout. */
static void test_next_url_answers_when_first_refuses(void **state)
{
	struct fixture *f = *state;
	struct result r = { 0 };
	char url[128], cap[256], certp[256], keyp[256];
	struct http_opts o;
	struct http *h = NULL;
	pos_err e;
	int dead = 0;

	{
		/* A port nobody listens on: bound, then closed. */
		struct sockaddr_in sin = { .sin_family = AF_INET };
		socklen_t sl = sizeof sin;
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
		assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
		dead = ntohs(sin.sin_port);
		close(fd);
	}
	snprintf(url, sizeof url, "https://127.0.0.1:%d https://127.0.0.1:%d", dead, f->srv.port);
	path_of(cap, sizeof cap, "ca.crt");
	path_of(certp, sizeof certp, "cli.crt");
	path_of(keyp, sizeof keyp, "cli.key");
	o = (struct http_opts){ .base_url = url, .ca = cap, .cert = certp, .key = keyp };
	assert_int_equal(http_new(f->base, &o, &h, &e), 0);
	assert_int_equal(http_post(h, "/v1/resolve", "{}", 2, 2000, on_done, &r, &e), 0);
	run_until(f, &r.calls, 1);
	assert_int_equal(r.status, 201);
	assert_int_equal(f->srv.requests, 1);
	snprintf(url, sizeof url, "https://127.0.0.1:%d", f->srv.port);
	assert_string_equal(http_current_url(h), url);
	/* The next request goes straight to the one that answered. */
	assert_int_equal(http_post(h, "/v1/resolve", "{}", 2, 2000, on_done, &r, &e), 0);
	run_until(f, &r.calls, 2);
	assert_int_equal(f->srv.requests, 2);
	http_free(h);
}

static void test_post_as_names_the_lane(void **state)
{
	struct fixture *f = *state;
	struct result r = { 0 };
	pos_err e;

	assert_int_equal(http_post_as(f->h, "/v1/baskets", "T-7.a", "{}", 2, 2000, on_done, &r, &e),
			 0);
	run_until(f, &r.calls, 1);
	assert_string_equal(f->srv.relay, "T-7.a");
	assert_int_equal(http_post(f->h, "/v1/baskets", "{}", 2, 2000, on_done, &r, &e), 0);
	run_until(f, &r.calls, 2);
	assert_string_equal(f->srv.relay, "");
	/* Nothing but an id goes into the header. */
	assert_int_equal(http_post_as(f->h, "/v1/baskets", "T1\r\nX: y", "{}", 2, 2000, on_done,
				      &r, &e),
			 POS_EINVAL);
}

static void test_post_carries_body_and_client_certificate(void **state)
{
	struct fixture *f = *state;
	struct result r = { 0 };
	const char *body = "{\"txn\":\"0190a0b0-0000-7000-8000-000000000001\",\"items\":[]}";
	pos_err e;

	assert_int_equal(http_post(f->h, "/v1/baskets", body, strlen(body), 5000, on_done, &r, &e),
			 0);
	assert_int_equal(http_pending(f->h), 1);
	run_until(f, &r.calls, 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, 201);
	assert_string_equal(r.body, "{\"status\":\"created\"}");
	assert_int_equal(http_pending(f->h), 0);
	/* What central would see: identity from the verified certificate. */
	assert_string_equal(f->srv.cn, "T1");
	assert_string_equal(f->srv.ou, "S1");
	assert_string_equal(f->srv.method, "POST");
	assert_string_equal(f->srv.path, "/v1/baskets");
	assert_string_equal(f->srv.ctype, "application/json");
	assert_string_equal(f->srv.body, body);
}

static void test_post_body_is_copied(void **state)
{
	struct fixture *f = *state;
	struct result r = { 0 };
	char body[] = "{\"a\":1}";
	pos_err e;

	assert_int_equal(http_post(f->h, "/x", body, strlen(body), 5000, on_done, &r, &e), 0);
	memset(body, 'Z', sizeof body - 1); /* the caller's buffer is gone */
	run_until(f, &r.calls, 1);
	assert_string_equal(f->srv.body, "{\"a\":1}");
}

static void test_get_returns_status_and_body(void **state)
{
	struct fixture *f = *state;
	struct result r = { 0 };
	pos_err e;

	f->srv.status = 404;
	f->srv.answer = "{\"error\":\"unknown_tid\"}";
	assert_int_equal(http_get(f->h, "/v1/health", 5000, on_done, &r, &e), 0);
	run_until(f, &r.calls, 1);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "{\"error\":\"unknown_tid\"}");
	assert_string_equal(f->srv.method, "GET");
	assert_string_equal(r.err, "");
}

static void test_timeout_calls_back_once_with_status_0(void **state)
{
	struct fixture *f = *state;
	struct result r = { 0 };
	pos_err e;

	f->srv.mode = SRV_HANG;
	assert_int_equal(http_post(f->h, "/v1/resolve", "{}", 2, 300, on_done, &r, &e), 0);
	run_until(f, &r.calls, 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, 0);
	assert_true(strlen(r.err) > 0);
	assert_int_equal(f->srv.requests, 1);
	assert_int_equal(http_pending(f->h), 0);
}

static void test_closed_connection_is_status_0(void **state)
{
	struct fixture *f = *state;
	struct result r = { 0 };
	pos_err e;

	f->srv.mode = SRV_CLOSE;
	assert_int_equal(http_post(f->h, "/v1/baskets", "{}", 2, 5000, on_done, &r, &e), 0);
	run_until(f, &r.calls, 1);
	assert_int_equal(r.status, 0);
	assert_true(strlen(r.err) > 0);
}

static void test_server_from_other_ca_fails_tls(void **state)
{
	struct fixture *f = *state;
	struct result r = { 0 };
	struct http *h2 = NULL;
	pos_err e;

	assert_int_equal(http_open(f, "ca2.crt", "cli.crt", "cli.key", &h2), 0);
	assert_int_equal(http_post(h2, "/v1/baskets", "{}", 2, 5000, on_done, &r, &e), 0);
	run_until(f, &r.calls, 1);
	assert_int_equal(r.status, 0);
	assert_true(strlen(r.err) > 0);
	assert_int_equal(f->srv.requests, 0);
	http_free(h2);
}

static void test_client_cert_from_other_ca_is_refused(void **state)
{
	struct fixture *f = *state;
	struct result r = { 0 };
	struct http *h2 = NULL;
	pos_err e;

	assert_int_equal(http_open(f, "ca.crt", "bad.crt", "bad.key", &h2), 0);
	assert_int_equal(http_post(h2, "/v1/baskets", "{}", 2, 5000, on_done, &r, &e), 0);
	run_until(f, &r.calls, 1);
	assert_int_equal(r.status, 0);
	assert_int_equal(f->srv.requests, 0);
	http_free(h2);
}

static void test_keepalive_two_requests_one_connection(void **state)
{
	struct fixture *f = *state;
	struct result r1 = { 0 }, r2 = { 0 };
	pos_err e;

	assert_int_equal(http_post(f->h, "/v1/baskets", "{}", 2, 5000, on_done, &r1, &e), 0);
	run_until(f, &r1.calls, 1);
	assert_int_equal(http_post(f->h, "/v1/baskets", "{}", 2, 5000, on_done, &r2, &e), 0);
	run_until(f, &r2.calls, 1);
	assert_int_equal(r1.status, 201);
	assert_int_equal(r2.status, 201);
	assert_int_equal(f->srv.requests, 2);
	assert_int_equal(f->srv.conns, 1);
}

static void test_oversize_answer_fails_request(void **state)
{
	struct fixture *f = *state;
	struct result r = { 0 };
	pos_err e;

	f->srv.mode = SRV_BIG;
	assert_int_equal(http_get(f->h, "/big", 5000, on_done, &r, &e), 0);
	run_until(f, &r.calls, 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.err, "size limit"));
}

static void test_requests_in_flight_do_not_block_each_other(void **state)
{
	struct fixture *f = *state;
	struct result slow = { 0 }, fast = { 0 };
	pos_err e;

	/* The server answers /slow only once /fast arrived: a client that
	 * serialised its requests would never finish. */
	f->srv.mode = SRV_HOLD;
	assert_int_equal(http_get(f->h, "/slow", 5000, on_done, &slow, &e), 0);
	assert_int_equal(http_get(f->h, "/fast", 5000, on_done, &fast, &e), 0);
	assert_int_equal(http_pending(f->h), 2);
	run_until(f, &slow.calls, 1);
	run_until(f, &fast.calls, 1);
	assert_string_equal(slow.body, "{\"which\":\"slow\"}");
	assert_string_equal(fast.body, "{\"which\":\"fast\"}");
	assert_int_equal(f->srv.conns, 2);
}

static void test_free_cancels_without_callback(void **state)
{
	struct fixture *f = *state;
	struct result r = { 0 };
	pos_err e;

	f->srv.mode = SRV_HANG;
	assert_int_equal(http_post(f->h, "/v1/baskets", "{}", 2, 5000, on_done, &r, &e), 0);
	run_until(f, &f->srv.requests, 1);
	http_free(f->h);
	f->h = NULL;
	/* Let the loop run what is left; nothing may reach the callback. */
	for (int i = 0; i < 20; i++)
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	assert_int_equal(r.calls, 0);
}

static void test_cancel_drops_only_that_owner(void **state)
{
	struct fixture *f = *state;
	struct result a = { 0 }, b = { 0 };
	pos_err e;

	assert_int_equal(http_post(f->h, "/a", "{}", 2, 5000, on_done, &a, &e), 0);
	assert_int_equal(http_post(f->h, "/b", "{}", 2, 5000, on_done, &b, &e), 0);
	http_cancel(f->h, &a);
	assert_int_equal(http_pending(f->h), 1);
	run_until(f, &b.calls, 1);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.status, 201);
}

struct chain {
	struct http *h;
	struct result second;
	int first_calls;
};

static void on_first_then_post(long status, const char *body, size_t len, const char *errmsg,
			       void *arg)
{
	struct chain *c = arg;
	pos_err e;

	(void)status;
	(void)body;
	(void)len;
	(void)errmsg;
	c->first_calls++;
	assert_int_equal(http_post(c->h, "/v1/baskets", "{}", 2, 5000, on_done, &c->second, &e), 0);
}

static void test_callback_may_start_next_request(void **state)
{
	struct fixture *f = *state;
	struct chain c = { .h = f->h };
	pos_err e;

	assert_int_equal(http_post(f->h, "/v1/baskets", "{}", 2, 5000, on_first_then_post, &c, &e),
			 0);
	run_until(f, &c.second.calls, 1);
	assert_int_equal(c.first_calls, 1);
	assert_int_equal(c.second.status, 201);
	assert_int_equal(f->srv.conns, 1);
}

static void test_new_refuses_plain_http_and_exposed_key(void **state)
{
	struct fixture *f = *state;
	char cap[256], certp[256], keyp[256];
	struct http_opts o;
	struct http *h = NULL;
	pos_err e;

	path_of(cap, sizeof cap, "ca.crt");
	path_of(certp, sizeof certp, "cli.crt");
	path_of(keyp, sizeof keyp, "cli.key");
	o.ca = cap;
	o.cert = certp;
	o.key = keyp;
	o.base_url = "http://127.0.0.1:1";
	assert_int_equal(http_new(f->base, &o, &h, &e), POS_EINVAL);
	assert_null(h);

	o.base_url = "https://127.0.0.1:1";
	o.ca = "/nonexistent/ca.crt";
	assert_int_equal(http_new(f->base, &o, &h, &e), POS_EIO);
	o.ca = cap;

	assert_int_equal(chmod(keyp, 0640), 0);
	assert_int_equal(http_new(f->base, &o, &h, &e), POS_EPERM);
	assert_non_null(strstr(e.msg, "key"));
	assert_int_equal(chmod(keyp, 0600), 0);
	assert_int_equal(http_new(f->base, &o, &h, &e), 0);
	http_free(h);
}

static void test_bad_arguments_are_refused(void **state)
{
	struct fixture *f = *state;
	struct result r = { 0 };
	pos_err e;

	assert_int_equal(http_post(f->h, "v1/baskets", "{}", 2, 5000, on_done, &r, &e), POS_EINVAL);
	assert_int_equal(http_post(f->h, "/v1/baskets", "{}", 2, 0, on_done, &r, &e), POS_EINVAL);
	assert_int_equal(http_post(f->h, "/v1/baskets", NULL, 0, 5000, on_done, &r, &e),
			 POS_EINVAL);
	assert_int_equal(http_pending(f->h), 0);
	assert_int_equal(r.calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_post_carries_body_and_client_certificate, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_post_body_is_copied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_returns_status_and_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_calls_back_once_with_status_0, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_closed_connection_is_status_0, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_from_other_ca_fails_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_cert_from_other_ca_is_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_keepalive_two_requests_one_connection, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_oversize_answer_fails_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requests_in_flight_do_not_block_each_other, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_free_cancels_without_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_drops_only_that_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_callback_may_start_next_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_refuses_plain_http_and_exposed_key, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_next_url_answers_when_first_refuses, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_post_as_names_the_lane, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
