/* Feeds arbitrary bytes to the HTTP/1.1 head parser as central's httpd
 * does: find the head's end, parse it in place. A request that parses
 * must point only inside its head, carry a path starting with '/', and
 * read the same after being moved to a copy of its buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_inside(const char *p, const char *buf, size_t len)
{
	return p >= buf && p + strlen(p) < buf + len;
}

static void fuzz_check(const struct http1_req *rq, const char *buf, size_t head_len)
{
	if (!fuzz_inside(rq->path, buf, head_len) || rq->path[0] != '/' ||
	    (rq->query && !fuzz_inside(rq->query, buf, head_len)) ||
	    rq->nheaders > HTTP1_MAX_HEADERS || rq->head_len != head_len ||
	    (rq->minor != 0 && rq->minor != 1))
		abort();
	for (size_t i = 0; i < rq->nheaders; i++)
		if (!fuzz_inside(rq->headers[i].name, buf, head_len) ||
		    !fuzz_inside(rq->headers[i].value, buf, head_len) ||
		    http1_header(rq, rq->headers[i].name) == NULL)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http1_req rq, moved;
	size_t scan = 0, half, hl = http1_head_end((const char *)data, size, &scan);
	char *buf, *copy;
	pos_err e = { 0 };
	int status = 0;

	if (hl == 0)
		return 0;
	/* Resumed part way, the scan finds the same end. */
	scan = 0;
	half = http1_head_end((const char *)data, size / 2, &scan);
	if ((half ? half : http1_head_end((const char *)data, size, &scan)) != hl)
		abort();
	buf = malloc(hl);
	copy = malloc(hl);
	if (!buf || !copy)
		abort();
	memcpy(buf, data, hl);
	if (http1_parse(buf, hl, 1u << 20, &rq, &status, &e) == 0) {
		fuzz_check(&rq, buf, hl);
		memcpy(copy, buf, hl);
		moved = rq;
		http1_relocate(&moved, buf, copy);
		memset(buf, 0, hl);
		fuzz_check(&moved, copy, hl);
	} else if (status < 400 || status > 505 || !e.msg[0]) {
		abort();
	}
	free(buf);
	free(copy);
	return 0;
}
