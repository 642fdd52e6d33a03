#ifndef POS_HTTP1_H
#define POS_HTTP1_H
/*
 * An HTTP/1.1 request head parser (RFC 9112), for central's own server
 * (httpd). It works in place: once the whole head is in the buffer,
 * http1_parse NUL-terminates the method, the target and every header field
 * inside it and points the request at them, so nothing is copied or
 * allocated. Pure: no I/O, no globals, so unit tests and fuzz_http1 drive
 * it directly.
 *
 * Strict where leniency lets requests be read two ways (smuggling): no
 * obsolete line folding, no space before a header's colon, one
 * Content-Length value, no Transfer-Encoding at all (every client of
 * central sends Content-Length). RFC 9110/9112 as written: an HTTP/1.1
 * request needs exactly one Host, and Authorization may come once only.
 * Bare LF line ends are accepted.
 */
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define HTTP1_MAX_HEADERS 48

enum http1_method {
	HTTP1_GET,
	HTTP1_HEAD,
	HTTP1_POST,
	HTTP1_PUT,
	HTTP1_DELETE,
	HTTP1_OPTIONS,
	HTTP1_PATCH,
	HTTP1_TRACE,
	HTTP1_CONNECT,
	HTTP1_OTHER,
};

struct http1_header {
	const char *name;  /* as sent; compare without case */
	const char *value; /* surrounding blanks trimmed */
};

/* Pointers point into the parsed buffer and live as long as it does. */
struct http1_req {
	enum http1_method method;
	const char *path;  /* the target up to '?', starts with '/' */
	const char *query; /* after '?', or NULL */
	int minor;         /* HTTP/1.minor: 0 or 1 */
	size_t head_len;   /* bytes of the head, its blank line included */
	size_t content_length;
	bool keep_alive;      /* the connection may carry another request */
	bool expect_continue; /* "Expect: 100-continue" */
	size_t nheaders;
	struct http1_header headers[HTTP1_MAX_HEADERS];
};

/* The length of the head at the start of buf[0..len) (its blank line
 * included), or 0 while it is incomplete. Reads only. *scan (0 at first)
 * is where to resume: keep it between calls on a growing buffer, so a
 * head trickled in a byte at a time is scanned once, not once per byte. */
size_t http1_head_end(const char *buf, size_t len, size_t *scan);

/* Parses the head of buf, whose first head_len bytes (from http1_head_end)
 * are the whole head, and rewrites them in place. 0, or POS_EINVAL with
 * *status (400, 413 for a Content-Length over max_body, 417, 431 for too
 * many fields, 501 for Transfer-Encoding, 505) and e saying what was
 * wrong, never quoting the request. */
int http1_parse(char *buf, size_t head_len, size_t max_body, struct http1_req *rq, int *status,
		pos_err *e);

/* Points rq into to, a copy of the buffer from that it was parsed in;
 * both must be alive (copy, relocate, then free the old one). */
void http1_relocate(struct http1_req *rq, const char *from, const char *to);

/* The value of the first field called name (any case), or NULL. */
const char *http1_header(const struct http1_req *rq, const char *name);

/* The token of an Authorization value "Bearer <token>" (RFC 6750; the
 * scheme in any case, blanks around the token dropped): its first byte,
 * *len bytes long, pointing into value; NULL for another scheme or none. */
const char *http1_bearer(const char *value, size_t *len);

/* "GET" and so on, "OTHER" for a method it does not know: a fixed label,
 * never the request's own text. */
const char *http1_method_name(enum http1_method m);

/* "OK" for 200 and so on; "Status" for a code it does not know. */
const char *http1_reason(int status);

#endif
