#include "http1.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum http1_method m;
} http1_methods[] = {
	{ "GET", HTTP1_GET },	  { "POST", HTTP1_POST },	{ "HEAD", HTTP1_HEAD },
	{ "PUT", HTTP1_PUT },	  { "DELETE", HTTP1_DELETE },	{ "OPTIONS", HTTP1_OPTIONS },
	{ "PATCH", HTTP1_PATCH }, { "TRACE", HTTP1_TRACE },	{ "CONNECT", HTTP1_CONNECT },
};

size_t http1_head_end(const char *buf, size_t len, size_t *scan)
{
	size_t p = *scan;

	/* Line by line: a head ends at the first empty line, "\r\n" or "\n".
	 * An empty first line is no head at all; the parser refuses it. */
	while (p < len) {
		const char *nl = memchr(buf + p, '\n', len - p);
		size_t line;

		if (!nl)
			break;
		line = (size_t)(nl - (buf + p));
		if (line == 0 || (line == 1 && buf[p] == '\r'))
			return (size_t)(nl + 1 - buf);
		p = (size_t)(nl + 1 - buf);
	}
	*scan = p;
	return 0;
}

/* RFC 9110 tchar: the characters of a method or a field name. */
static bool http1_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Cuts the line starting at *p (ending in "\n" or "\r\n") off with a NUL
 * and moves *p past it. The caller knows a '\n' follows. */
static char *http1_line(char **p)
{
	char *line = *p, *nl = strchr(line, '\n');

	*nl = '\0';
	if (nl > line && nl[-1] == '\r')
		nl[-1] = '\0';
	*p = nl + 1;
	return line;
}

static int http1_fail(int *status, int code, pos_err *e, const char *msg)
{
	*status = code;
	return err_set(e, POS_EINVAL, "%s", msg);
}

static int http1_request_line(char *line, struct http1_req *rq, int *status, pos_err *e)
{
	char *sp1 = strchr(line, ' '), *sp2, *target, *ver, *q;

	if (!sp1 || sp1 == line)
		return http1_fail(status, 400, e, "the request line has no method");
	*sp1 = '\0';
	for (char *m = line; *m; m++)
		if (!http1_tchar((unsigned char)*m))
			return http1_fail(status, 400, e, "the method is not a token");
	rq->method = HTTP1_OTHER;
	for (size_t i = 0; i < sizeof http1_methods / sizeof http1_methods[0]; i++)
		if (strcmp(line, http1_methods[i].name) == 0)
			rq->method = http1_methods[i].m;
	target = sp1 + 1;
	sp2 = strchr(target, ' ');
	if (!sp2 || target[0] != '/')
		return http1_fail(status, 400, e, "the request target must be a path");
	*sp2 = '\0';
	for (char *t = target; *t; t++)
		if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
			return http1_fail(status, 400, e, "the request target has a character "
							  "that is not allowed");
	ver = sp2 + 1;
	if (strncmp(ver, "HTTP/", 5) != 0 || !(ver[5] >= '0' && ver[5] <= '9') || ver[6] != '.' ||
	    !(ver[7] >= '0' && ver[7] <= '9') || ver[8])
		return http1_fail(status, 400, e, "the request line does not end in HTTP/1.x");
	if (ver[5] != '1')
		return http1_fail(status, 505, e, "only HTTP/1.0 and HTTP/1.1 are served");
	/* A later 1.x is answered as 1.1 (RFC 9110 section 6.2). */
	rq->minor = ver[7] == '0' ? 0 : 1;
	rq->keep_alive = rq->minor >= 1;
	q = strchr(target, '?');
	if (q)
		*q++ = '\0';
	rq->path = target;
	rq->query = q;
	return 0;
}

/* Splits "name: value" in place; the value loses its surrounding blanks. */
static int http1_field(char *line, struct http1_header *h, int *status, pos_err *e)
{
	char *colon = strchr(line, ':'), *v, *end;

	if (line[0] == ' ' || line[0] == '\t')
		return http1_fail(status, 400, e, "folded header lines are not accepted");
	if (!colon || colon == line)
		return http1_fail(status, 400, e, "a header line has no name");
	*colon = '\0';
	for (char *n = line; *n; n++)
		if (!http1_tchar((unsigned char)*n))
			return http1_fail(status, 400, e, "a header name is not a token");
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	for (char *c = v; *c; c++)
		if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
			return http1_fail(status, 400, e, "a header value has a control character");
	h->name = line;
	h->value = v;
	return 0;
}

static int http1_content_length(const char *v, size_t max_body, size_t *out, bool *seen,
				 int *status, pos_err *e)
{
	uint64_t n = 0;

	if (!*v)
		return http1_fail(status, 400, e, "Content-Length is empty");
	for (const char *c = v; *c; c++) {
		if (*c < '0' || *c > '9')
			return http1_fail(status, 400, e, "Content-Length is not a number");
		if (n > (UINT64_MAX - 9) / 10) {
			*out = SIZE_MAX;
			return http1_fail(status, 413, e, "the body is too large");
		}
		n = n * 10 + (uint64_t)(*c - '0');
	}
	if (*seen && n != *out)
		return http1_fail(status, 400, e, "Content-Length is given twice, differently");
	*out = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
	if (n > max_body)
		return http1_fail(status, 413, e, "the body is too large");
	*seen = true;
	return 0;
}

/* Connection is a list of tokens. */
static void http1_connection(const char *v, bool *close, bool *keep)
{
	while (*v) {
		size_t n;

		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		n = strcspn(v, " \t,");
		if (n == 5 && strncasecmp(v, "close", 5) == 0)
			*close = true;
		else if (n == 10 && strncasecmp(v, "keep-alive", 10) == 0)
			*keep = true;
		v += n;
	}
}

/* RFC 3986 reg-name, IP-literal and port characters: what a Host value
 * may hold. */
static bool http1_host_valid(const char *v)
{
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      strchr("-._~!$&'()*+,;=:[]%", c)))
			return false;
	}
	return true;
}

/* Fields a request may carry once only (RFC 9112 3.2 for Host; for
 * Authorization, two credentials would be read as one or the other). */
static int http1_once(const struct http1_header *h, unsigned seen[2], int *status, pos_err *e)
{
	if (strcasecmp(h->name, "Host") == 0) {
		if (seen[0]++)
			return http1_fail(status, 400, e, "Host is given more than once");
		if (!http1_host_valid(h->value))
			return http1_fail(status, 400, e, "Host is not a valid host and port");
	} else if (strcasecmp(h->name, "Authorization") == 0 && seen[1]++) {
		return http1_fail(status, 400, e, "Authorization is given more than once");
	}
	return 0;
}

static int http1_known_field(const struct http1_header *h, size_t max_body, struct http1_req *rq,
			     bool *cl_seen, bool conn[2], int *status, pos_err *e)
{
	if (strcasecmp(h->name, "Content-Length") == 0)
		return http1_content_length(h->value, max_body, &rq->content_length, cl_seen, status,
					    e);
	if (strcasecmp(h->name, "Transfer-Encoding") == 0)
		return http1_fail(status, 501, e,
				  "Transfer-Encoding is not accepted; send Content-Length");
	if (strcasecmp(h->name, "Expect") == 0) {
		if (strcasecmp(h->value, "100-continue") != 0)
			return http1_fail(status, 417, e, "only Expect: 100-continue is understood");
		/* An HTTP/1.0 client cannot know 100 (RFC 9110 10.1.1). */
		rq->expect_continue = rq->minor >= 1;
	} else if (strcasecmp(h->name, "Connection") == 0) {
		http1_connection(h->value, &conn[0], &conn[1]);
	}
	return 0;
}

int http1_parse(char *buf, size_t head_len, size_t max_body, struct http1_req *rq, int *status,
		pos_err *e)
{
	char *p = buf, *end = buf + head_len;
	bool cl_seen = false, conn[2] = { false, false }; /* close, keep-alive */
	unsigned once[2] = { 0, 0 };                      /* Host, Authorization */
	int rc;

	memset(rq, 0, sizeof *rq);
	*status = 0;
	if (head_len < 2 || buf[head_len - 1] != '\n' || memchr(buf, '\0', head_len))
		return http1_fail(status, 400, e, "the request head is malformed");
	if (buf[0] == '\n' || (buf[0] == '\r' && buf[1] == '\n'))
		return http1_fail(status, 400, e, "the request line is empty");
	rq->head_len = head_len;
	/* The blank line is the head's last; every line before it ends in LF. */
	end[-1] = '\0';
	if ((rc = http1_request_line(http1_line(&p), rq, status, e)) < 0)
		return rc;
	while (p < end - 1 && !(p[0] == '\r' && p + 1 == end - 1)) {
		struct http1_header h;

		if (rq->nheaders == HTTP1_MAX_HEADERS)
			return http1_fail(status, 431, e, "the request has too many header fields");
		if ((rc = http1_field(http1_line(&p), &h, status, e)) < 0 ||
		    (rc = http1_known_field(&h, max_body, rq, &cl_seen, conn, status, e)) < 0 ||
		    (rc = http1_once(&h, once, status, e)) < 0)
			return rc;
		rq->headers[rq->nheaders++] = h;
	}
	if (rq->minor >= 1 && !once[0])
		return http1_fail(status, 400, e, "an HTTP/1.1 request needs a Host header");
	/* close wins over keep-alive, whichever comes first. */
	if (conn[0])
		rq->keep_alive = false;
	else if (conn[1])
		rq->keep_alive = true;
	return 0;
}

static const char *http1_moved(const char *p, const char *from, const char *to)
{
	return p ? to + (p - from) : NULL;
}

void http1_relocate(struct http1_req *rq, const char *from, const char *to)
{
	rq->path = http1_moved(rq->path, from, to);
	rq->query = http1_moved(rq->query, from, to);
	for (size_t i = 0; i < rq->nheaders; i++) {
		rq->headers[i].name = http1_moved(rq->headers[i].name, from, to);
		rq->headers[i].value = http1_moved(rq->headers[i].value, from, to);
	}
}

const char *http1_header(const struct http1_req *rq, const char *name)
{
	for (size_t i = 0; i < rq->nheaders; i++)
		if (strcasecmp(rq->headers[i].name, name) == 0)
			return rq->headers[i].value;
	return NULL;
}

const char *http1_bearer(const char *value, size_t *len)
{
	size_t n;

	*len = 0;
	if (!value || strncasecmp(value, "Bearer ", 7) != 0)
		return NULL;
	value += 7;
	while (*value == ' ')
		value++;
	n = strlen(value);
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	*len = n;
	return value;
}

const char *http1_method_name(enum http1_method m)
{
	for (size_t i = 0; i < sizeof http1_methods / sizeof http1_methods[0]; i++)
		if (http1_methods[i].m == m)
			return http1_methods[i].name;
	return "OTHER";
}

const char *http1_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Status";
	}
}
