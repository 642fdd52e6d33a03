#ifndef POS_HTTP_H
#define POS_HTTP_H
/*
 * HTTPS client for the agent: libcurl's multi interface driven by the
 * agent's libevent loop (socket and timer callbacks, no polling), mutual
 * TLS with the terminal certificate, TLS 1.3, peer verified against the
 * retailer's CA, keep-alive reuse of connections. Requests never block the
 * loop; each ends in exactly one callback.
 */
#include <stddef.h>
#include "err.h"

struct event_base;
struct http;

/* base_url may list up to this many URLs separated by spaces. */
#define HTTP_URLS_MAX 4

/*
 * Several URLs (a store controller, then central): a request goes to the
 * one that answered last; when it gets no answer at all (refused, TLS
 * failure, timeout) it is sent to the next within what is left of its
 * timeout, each attempt connecting within half of that. The first URL is
 * tried again every few seconds and taken back as soon as it answers.
 * Only for requests that may be repeated (baskets are idempotent by txn).
 */
struct http_opts {
	const char *base_url; /* https://host:port [https://host:port ...] */
	const char *ca;
	const char *cert;
	const char *key;
};

/* status: the HTTP status, or 0 when no answer came (connect failure,
 * timeout, TLS error; errmsg says which). body is valid only during the
 * callback. */
typedef void (*http_done_fn)(long status, const char *body, size_t len, const char *errmsg,
			     void *arg);

int http_new(struct event_base *base, const struct http_opts *o, struct http **out, pos_err *e);
/* Cancels pending requests (their callbacks are not called) and frees. */
void http_free(struct http *h);
/* POSTs a JSON body (copied) to base_url + path. */
int http_post(struct http *h, const char *path, const char *body, size_t len, long timeout_ms,
	      http_done_fn fn, void *arg, pos_err *e);
/* The same, naming the lane the request is made for in a "Pos-Terminal"
 * header (a store controller relaying; terminal NULL: no header). */
int http_post_as(struct http *h, const char *path, const char *terminal, const char *body,
		 size_t len, long timeout_ms, http_done_fn fn, void *arg, pos_err *e);
int http_get(struct http *h, const char *path, long timeout_ms, http_done_fn fn, void *arg,
	     pos_err *e);
/* A GET naming the lane (as http_post_as). */
int http_get_as(struct http *h, const char *path, const char *terminal, long timeout_ms,
		http_done_fn fn, void *arg, pos_err *e);
/* Cancels every pending request made with this arg (callbacks not called):
 * for an owner that goes away before the client. Added by the uplink. */
void http_cancel(struct http *h, void *arg);
/* The URL new requests go to now (one of base_url's). */
const char *http_current_url(const struct http *h);
/* Number of requests in flight. */
int http_pending(const struct http *h);

/*
 * A blocking request's handle (doctor, the key fetch), set up as the
 * loop's requests are: https only, TLS 1.3, the retailer's CA alone, the
 * client certificate (cert NULL: none), the peer verified, the time limit
 * and err for libcurl's message (CURL_ERROR_SIZE bytes, owned by the
 * caller, which also sets the write callback). NULL when libcurl cannot
 * make one. Returned as void * so this header needs no curl.h; the caller
 * frees it with curl_easy_cleanup.
 */
void *http_blocking_handle(const char *url, const char *ca, const char *cert, const char *key,
			   long timeout_ms, char *err);

#endif
