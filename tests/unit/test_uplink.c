/*
 * The uplink drains a real spool (SQLite in a mkdtemp() folder) through the
 * real HTTPS client to a small central written in this test: evhttp +
 * bufferevent_openssl, TLS 1.3, client certificate required, with
 * programmable failures (500, dropped connection, 409, invalid, 413 on big
 * batches). Everything runs on one event loop; each run stops on a count
 * of uplink events, and a guard timer only ends a test that already failed.
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
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "spool.h"
#include "uplink.h"
#include "tls_testkit.h"

/* ---- a small central -------------------------------------------------- */

#define MAX_TXN 32

enum fail_kind { FAIL_500, FAIL_CLOSE };

struct central {
	struct evhttp *http;
	SSL_CTX *ctx;
	int port;
	int requests;
	int single_posts;
	int batch_posts;
	int max_batch_accepted;
	int fail_next;             /* the next N requests fail like fail_kind */
	enum fail_kind fail_kind;
	int fail_status;           /* FAIL_500 answers this status when set */
	int batch_limit;           /* a batch bigger than this gets 413; 0 = none */
	const char *conflict_txn;  /* answered 409 / "conflict" */
	const char *invalid_txn;   /* answered 400 / "invalid" */
	char stored[MAX_TXN][40];  /* committed baskets */
	int stores[MAX_TXN];       /* how often each was committed */
	int nstored;
	int posts_of[MAX_TXN];     /* how often each stored txn was posted */
	char seen[MAX_TXN][40];
	int seen_posts[MAX_TXN];
	int nseen;
};

static struct bufferevent *central_bevcb(struct event_base *base, void *arg)
{
	struct central *c = arg;

	return tls_accept_bev(base, c->ctx);
}

static void central_count_post(struct central *c, const char *txn)
{
	for (int i = 0; i < c->nseen; i++)
		if (strcmp(c->seen[i], txn) == 0) {
			c->seen_posts[i]++;
			return;
		}
	if (c->nseen < MAX_TXN) {
		snprintf(c->seen[c->nseen], sizeof c->seen[0], "%s", txn);
		c->seen_posts[c->nseen++] = 1;
	}
}

static int central_posts_of(const struct central *c, const char *txn)
{
	for (int i = 0; i < c->nseen; i++)
		if (strcmp(c->seen[i], txn) == 0)
			return c->seen_posts[i];
	return 0;
}

static int central_stores_of(const struct central *c, const char *txn)
{
	for (int i = 0; i < c->nstored; i++)
		if (strcmp(c->stored[i], txn) == 0)
			return c->stores[i];
	return 0;
}

/* Returns "created", "duplicate", "conflict" or "invalid" and stores. */
static const char *central_take(struct central *c, const char *txn)
{
	central_count_post(c, txn);
	if (c->conflict_txn && strcmp(txn, c->conflict_txn) == 0)
		return "conflict";
	if (c->invalid_txn && strcmp(txn, c->invalid_txn) == 0)
		return "invalid";
	for (int i = 0; i < c->nstored; i++)
		if (strcmp(c->stored[i], txn) == 0)
			return "duplicate";
	if (c->nstored < MAX_TXN) {
		snprintf(c->stored[c->nstored], sizeof c->stored[0], "%s", txn);
		c->stores[c->nstored++]++;
	}
	return "created";
}

static void central_handler(struct evhttp_request *req, void *arg)
{
	struct central *c = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *uri = evhttp_request_get_uri(req);
	size_t len = evbuffer_get_length(in);
	char *buf = malloc(len + 1);
	json_t *root;

	c->requests++;
	evbuffer_copyout(in, buf, len);
	buf[len] = '\0';
	root = json_loadb(buf, len, 0, NULL);
	free(buf);
	if (c->fail_next > 0) {
		c->fail_next--;
		if (c->fail_kind == FAIL_CLOSE) {
			struct evhttp_connection *evcon = evhttp_request_get_connection(req);
			shutdown(bufferevent_getfd(evhttp_connection_get_bufferevent(evcon)),
				 SHUT_RDWR);
		} else {
			tls_reply(req, c->fail_status ? c->fail_status : 500,
				      "{\"error\":\"try_later\"}");
		}
		goto out;
	}
	if (!root) {
		tls_reply(req, 400, "{\"error\":\"bad_json\"}");
		goto out;
	}
	if (strcmp(uri, "/v1/baskets") == 0) {
		const char *txn = json_string_value(json_object_get(root, "txn"));
		c->single_posts++;
		const char *st = central_take(c, txn ? txn : "");
		if (strcmp(st, "created") == 0)
			tls_reply(req, 201, "{\"status\":\"created\"}");
		else if (strcmp(st, "duplicate") == 0)
			tls_reply(req, 200, "{\"status\":\"duplicate\"}");
		else if (strcmp(st, "conflict") == 0)
			tls_reply(req, 409, "{\"error\":\"txn_conflict\",\"detail\":\"other content\"}");
		else
			tls_reply(req, 400, "{\"error\":\"bad_gtin\",\"detail\":\"check digit\"}");
	} else if (strcmp(uri, "/v1/baskets:batch") == 0) {
		json_t *baskets = json_object_get(root, "baskets"), *b;
		json_t *results = json_array();
		size_t i;
		c->batch_posts++;
		if (c->batch_limit && json_array_size(baskets) > (size_t)c->batch_limit) {
			json_decref(results);
			tls_reply(req, 413, "{\"error\":\"too_large\"}");
			goto out;
		}
		if ((int)json_array_size(baskets) > c->max_batch_accepted)
			c->max_batch_accepted = (int)json_array_size(baskets);
		json_array_foreach(baskets, i, b) {
			const char *txn = json_string_value(json_object_get(b, "txn"));
			const char *st = central_take(c, txn ? txn : "");
			json_t *r = json_pack("{s:s, s:s}", "txn", txn ? txn : "", "status", st);
			if (strcmp(st, "conflict") == 0)
				json_object_set_new(r, "error", json_string("txn_conflict"));
			else if (strcmp(st, "invalid") == 0)
				json_object_set_new(r, "error", json_string("bad_gtin"));
			json_array_append_new(results, r);
		}
		json_t *ans = json_pack("{s:o}", "results", results);
		char *txt = json_dumps(ans, JSON_COMPACT);
		tls_reply(req, 200, txt);
		free(txt);
		json_decref(ans);
	} else {
		tls_reply(req, 404, "{\"error\":\"not_found\"}");
	}
out:
	json_decref(root);
}

static int central_start(struct central *c, struct event_base *base)
{
	char ca[256], crt[256], key[256];
	struct evhttp_bound_socket *bound;
	struct sockaddr_in sin;
	socklen_t sl = sizeof sin;

	path_of(ca, sizeof ca, "ca.crt");
	path_of(crt, sizeof crt, "srv.crt");
	path_of(key, sizeof key, "srv.key");
	c->ctx = SSL_CTX_new(TLS_server_method());
	if (!c->ctx)
		return -1;
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION);
	if (SSL_CTX_use_certificate_chain_file(c->ctx, crt) != 1 ||
	    SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(c->ctx, ca, NULL) != 1)
		return -1;
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	c->http = evhttp_new(base);
	evhttp_set_bevcb(c->http, central_bevcb, c);
	evhttp_set_gencb(c->http, central_handler, c);
	evhttp_set_allowed_methods(c->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	bound = evhttp_bind_socket_with_handle(c->http, "127.0.0.1", 0);
	if (!bound)
		return -1;
	if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sin, &sl) != 0)
		return -1;
	c->port = ntohs(sin.sin_port);
	return 0;
}

/* ---- fixture ---------------------------------------------------------- */

struct seen_event {
	enum uplink_event ev;
	char txn[40];
	char detail[128];
};

struct fixture {
	struct event_base *base;
	struct central central;
	struct http *h;
	struct spool *spool;
	struct uplink *up;
	struct event *guard;
	int timed_out;
	int uploaded, rejected, offline, online;
	int settled;                /* uploaded + rejected */
	long spooled_at_offline;    /* spool_count when OFFLINE came */
	struct seen_event events[64];
	int nevents;
};

static void on_uplink(enum uplink_event ev, const char *txn, const char *detail, void *arg)
{
	struct fixture *f = arg;

	if (f->nevents < 64) {
		struct seen_event *s = &f->events[f->nevents++];
		s->ev = ev;
		snprintf(s->txn, sizeof s->txn, "%s", txn ? txn : "");
		snprintf(s->detail, sizeof s->detail, "%s", detail ? detail : "");
	}
	switch (ev) {
	case UPLINK_UPLOADED:
		f->uploaded++;
		f->settled++;
		break;
	case UPLINK_REJECTED:
		f->rejected++;
		f->settled++;
		break;
	case UPLINK_OFFLINE:
		f->offline++;
		f->spooled_at_offline = spool_count(f->spool);
		break;
	case UPLINK_ONLINE:
		f->online++;
		break;
	}
}

static const char *event_detail(const struct fixture *f, enum uplink_event ev, const char *txn)
{
	for (int i = 0; i < f->nevents; i++)
		if (f->events[i].ev == ev && strcmp(f->events[i].txn, txn) == 0)
			return f->events[i].detail;
	return NULL;
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;

	(void)fd;
	(void)what;
	f->timed_out = 1;
}

static void run_until(struct fixture *f, const int *count, int want)
{
	struct timeval tv = { 60, 0 };

	f->timed_out = 0;
	evtimer_add(f->guard, &tv);
	while (*count < want && !f->timed_out)
		if (event_base_loop(f->base, EVLOOP_ONCE) != 0)
			break;
	evtimer_del(f->guard);
	assert_false(f->timed_out);
	assert_int_equal(*count, want);
}

static int counter;

static int open_all(struct fixture *f, int port)
{
	char url[64], ca[256], crt[256], key[256], db[256], name[32];
	struct http_opts o;
	pos_err e;

	snprintf(name, sizeof name, "spool%d.db", counter++);
	path_of(db, sizeof db, name);
	if (spool_open(db, &f->spool, &e) != 0)
		return -1;
	snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
	path_of(ca, sizeof ca, "ca.crt");
	path_of(crt, sizeof crt, "cli.crt");
	path_of(key, sizeof key, "cli.key");
	o.base_url = url;
	o.ca = ca;
	o.cert = crt;
	o.key = key;
	if (http_new(f->base, &o, &f->h, &e) != 0)
		return -1;
	return uplink_new(f->base, f->h, f->spool, on_uplink, f, &f->up, &e);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	if (!f)
		return -1;
	f->base = event_base_new();
	f->guard = evtimer_new(f->base, on_guard, f);
	if (central_start(&f->central, f->base) != 0 || open_all(f, f->central.port) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	uplink_free(f->up);
	http_free(f->h);
	spool_close(f->spool);
	if (f->central.http)
		evhttp_free(f->central.http);
	SSL_CTX_free(f->central.ctx);
	event_free(f->guard);
	event_base_free(f->base);
	free(f);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_uplink.XXXXXX");
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

static const char *txn_of(int i)
{
	static char txns[MAX_TXN][40];

	snprintf(txns[i], sizeof txns[i], "0190a0b0-0000-7000-8000-%012d", i + 1);
	return txns[i];
}

static void put_basket(struct fixture *f, int i)
{
	char body[256];
	pos_err e;
	int n = snprintf(body, sizeof body,
			 "{\"txn\":\"%s\",\"ts\":\"2026-11-23T12:00:00.000Z\","
			 "\"items\":[{\"gtin\":\"00012345678905\",\"qty\":%d}]}",
			 txn_of(i), i + 1);

	assert_int_equal(spool_put(f->spool, txn_of(i), body, (size_t)n, &e), 0);
}

/* ---- tests ------------------------------------------------------------ */

static void test_basket_deleted_after_201(void **state)
{
	struct fixture *f = *state;

	put_basket(f, 0);
	uplink_kick(f->up);
	run_until(f, &f->uploaded, 1);
	assert_string_equal(event_detail(f, UPLINK_UPLOADED, txn_of(0)), "created");
	assert_int_equal(spool_count(f->spool), 0);
	assert_int_equal(central_stores_of(&f->central, txn_of(0)), 1);
	assert_int_equal(f->central.single_posts, 1);
	assert_int_equal(f->central.batch_posts, 0);
	assert_int_equal(f->offline, 0);
	assert_int_equal(f->online, 0);
	assert_false(uplink_offline(f->up));
}

static void test_duplicate_answer_also_deletes(void **state)
{
	struct fixture *f = *state;

	snprintf(f->central.stored[0], sizeof f->central.stored[0], "%s", txn_of(0));
	f->central.stores[0] = 1;
	f->central.nstored = 1;
	put_basket(f, 0);
	uplink_kick(f->up);
	run_until(f, &f->uploaded, 1);
	assert_string_equal(event_detail(f, UPLINK_UPLOADED, txn_of(0)), "duplicate");
	assert_int_equal(spool_count(f->spool), 0);
	assert_int_equal(central_stores_of(&f->central, txn_of(0)), 1);
}

static void test_500_backs_off_then_delivers_exactly_once(void **state)
{
	struct fixture *f = *state;
	pos_err e;
	struct spool_row *rows = NULL;
	size_t n = 0;

	f->central.fail_next = 1;
	f->central.fail_kind = FAIL_500;
	put_basket(f, 0);
	uplink_kick(f->up);
	run_until(f, &f->offline, 1);
	/* Not acknowledged: still spooled, the failed try counted. */
	assert_int_equal(f->spooled_at_offline, 1);
	assert_true(uplink_offline(f->up));
	assert_int_equal(spool_peek(f->spool, 10, &rows, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].attempts, 1);
	spool_rows_free(rows, n);
	/* Backing off: a kick does not send before the timer. */
	uplink_kick(f->up);
	assert_int_equal(http_pending(f->h), 0);

	run_until(f, &f->uploaded, 1);
	assert_int_equal(f->online, 1);
	assert_int_equal(f->offline, 1);
	assert_false(uplink_offline(f->up));
	assert_int_equal(spool_count(f->spool), 0);
	assert_int_equal(f->central.requests, 2); /* the 500, then the 201 */
	assert_int_equal(central_posts_of(&f->central, txn_of(0)), 1);
	assert_int_equal(central_stores_of(&f->central, txn_of(0)), 1);
	/* Order of the story: offline, online again, then uploaded. */
	assert_int_equal(f->events[0].ev, UPLINK_OFFLINE);
	assert_string_equal(f->events[0].detail, "central answered http 500");
	assert_int_equal(f->events[1].ev, UPLINK_ONLINE);
	assert_int_equal(f->events[2].ev, UPLINK_UPLOADED);
}

static void test_dropped_connections_report_offline_once(void **state)
{
	struct fixture *f = *state;

	f->central.fail_next = 3;
	f->central.fail_kind = FAIL_CLOSE;
	put_basket(f, 0);
	uplink_kick(f->up);
	run_until(f, &f->uploaded, 1);
	assert_int_equal(f->offline, 1);
	assert_int_equal(f->online, 1);
	assert_int_equal(f->central.requests, 4);
	assert_int_equal(central_stores_of(&f->central, txn_of(0)), 1);
	assert_int_equal(spool_count(f->spool), 0);
}

static void test_401_408_429_are_retried_not_rejected(void **state)
{
	struct fixture *f = *state;
	static const int statuses[] = { 401, 408, 429 };

	for (int i = 0; i < 3; i++) {
		f->central.fail_next = 1;
		f->central.fail_kind = FAIL_500;
		f->central.fail_status = statuses[i];
		put_basket(f, i);
		uplink_kick(f->up);
		run_until(f, &f->uploaded, i + 1);
		assert_int_equal(f->offline, i + 1);
		assert_int_equal(f->online, i + 1);
	}
	assert_int_equal(f->rejected, 0);
	assert_int_equal(spool_count_rejected(f->spool), 0);
	assert_int_equal(spool_count(f->spool), 0);
}

static void test_409_sets_basket_aside(void **state)
{
	struct fixture *f = *state;

	f->central.conflict_txn = txn_of(0);
	put_basket(f, 0);
	uplink_kick(f->up);
	run_until(f, &f->rejected, 1);
	assert_string_equal(event_detail(f, UPLINK_REJECTED, txn_of(0)), "txn_conflict");
	assert_int_equal(spool_count(f->spool), 0);
	assert_int_equal(spool_count_rejected(f->spool), 1);
	assert_int_equal(f->offline, 0);
	assert_int_equal(central_stores_of(&f->central, txn_of(0)), 0);
	/* Set aside means not sent again. */
	uplink_kick(f->up);
	assert_int_equal(http_pending(f->h), 0);
}

static void test_batch_with_mixed_results(void **state)
{
	struct fixture *f = *state;

	/* txn 2 is already at central, 3 conflicts, 4 is invalid. */
	snprintf(f->central.stored[0], sizeof f->central.stored[0], "%s", txn_of(2));
	f->central.stores[0] = 1;
	f->central.nstored = 1;
	f->central.conflict_txn = txn_of(3);
	f->central.invalid_txn = txn_of(4);
	for (int i = 0; i < 6; i++)
		put_basket(f, i);
	uplink_kick(f->up);
	run_until(f, &f->settled, 6);
	assert_int_equal(f->central.batch_posts, 1);
	assert_int_equal(f->central.single_posts, 0);
	assert_int_equal(f->central.max_batch_accepted, 6);
	assert_int_equal(f->uploaded, 4);
	assert_int_equal(f->rejected, 2);
	assert_string_equal(event_detail(f, UPLINK_UPLOADED, txn_of(0)), "created");
	assert_string_equal(event_detail(f, UPLINK_UPLOADED, txn_of(2)), "duplicate");
	assert_string_equal(event_detail(f, UPLINK_REJECTED, txn_of(3)), "txn_conflict");
	assert_string_equal(event_detail(f, UPLINK_REJECTED, txn_of(4)), "bad_gtin");
	assert_null(event_detail(f, UPLINK_UPLOADED, txn_of(3)));
	assert_int_equal(spool_count(f->spool), 0);
	assert_int_equal(spool_count_rejected(f->spool), 2);
	for (int i = 0; i < 6; i++)
		assert_int_equal(central_posts_of(&f->central, txn_of(i)), 1);
}

static void test_batch_413_retries_in_smaller_batches(void **state)
{
	struct fixture *f = *state;

	f->central.batch_limit = 2;
	for (int i = 0; i < 5; i++)
		put_basket(f, i);
	uplink_kick(f->up);
	run_until(f, &f->uploaded, 5);
	assert_int_equal(f->offline, 0);
	assert_true(f->central.max_batch_accepted <= 2);
	assert_int_equal(spool_count(f->spool), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(central_stores_of(&f->central, txn_of(i)), 1);
}

static void test_batch_500_keeps_all_and_retries(void **state)
{
	struct fixture *f = *state;

	f->central.fail_next = 1;
	f->central.fail_kind = FAIL_500;
	for (int i = 0; i < 3; i++)
		put_basket(f, i);
	uplink_kick(f->up);
	run_until(f, &f->offline, 1);
	assert_int_equal(f->spooled_at_offline, 3);
	run_until(f, &f->uploaded, 3);
	assert_int_equal(spool_count(f->spool), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(central_stores_of(&f->central, txn_of(i)), 1);
}

static void test_baskets_spooled_during_upload_follow(void **state)
{
	struct fixture *f = *state;

	put_basket(f, 0);
	uplink_kick(f->up);
	assert_int_equal(http_pending(f->h), 1);
	put_basket(f, 1);
	uplink_kick(f->up); /* one request at a time */
	assert_int_equal(http_pending(f->h), 1);
	run_until(f, &f->uploaded, 2);
	assert_int_equal(spool_count(f->spool), 0);
	assert_int_equal(f->central.single_posts, 2);
}

static void test_unreachable_central_keeps_baskets(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* A port that was just free: nothing listens there. */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	uplink_free(f->up);
	http_free(f->h);
	spool_close(f->spool);
	f->up = NULL;
	f->h = NULL;
	f->spool = NULL;
	assert_int_equal(open_all(f, ntohs(sin.sin_port)), 0);

	put_basket(f, 0);
	put_basket(f, 1);
	uplink_kick(f->up);
	run_until(f, &f->offline, 1);
	assert_int_equal(spool_count(f->spool), 2);
	assert_true(uplink_offline(f->up));
	assert_true(strlen(f->events[0].detail) > 0);
	assert_int_equal(f->uploaded, 0);
	/* Teardown frees the uplink with its retry timer armed. */
}

static void test_idle_uplink_arms_nothing(void **state)
{
	struct fixture *f = *state;
	struct event_base *base = event_base_new();
	struct http *h = NULL;
	struct uplink *u = NULL;
	char ca[256], crt[256], key[256];
	struct http_opts o;
	pos_err e;

	path_of(ca, sizeof ca, "ca.crt");
	path_of(crt, sizeof crt, "cli.crt");
	path_of(key, sizeof key, "cli.key");
	o.base_url = "https://127.0.0.1:9";
	o.ca = ca;
	o.cert = crt;
	o.key = key;
	assert_int_equal(http_new(base, &o, &h, &e), 0);
	assert_int_equal(uplink_new(base, h, f->spool, on_uplink, f, &u, &e), 0);
	uplink_kick(u);
	/* 1: no event pending or active on the loop. */
	assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	assert_int_equal(f->nevents, 0);
	uplink_free(u);
	http_free(h);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_basket_deleted_after_201, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_answer_also_deletes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_500_backs_off_then_delivers_exactly_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_dropped_connections_report_offline_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_401_408_429_are_retried_not_rejected, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_409_sets_basket_aside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_with_mixed_results, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_413_retries_in_smaller_batches, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_batch_500_keeps_all_and_retries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_baskets_spooled_during_upload_follow, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unreachable_central_keeps_baskets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_uplink_arms_nothing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
