/* Feeds arbitrary bytes to the query-string parser as a route does. A
 * query that parses must hold at most its bounds, keys that are non-empty,
 * distinct and found again by query_get, and decoded text inside the
 * struct that is never longer than the query itself. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_inside(const char *p, const struct query *q)
{
	return p >= q->buf && p + strlen(p) < q->buf + sizeof q->buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct query q;
	pos_err e = { 0 };
	size_t total = 0;
	char *raw = malloc(size + 1);
	int rc;

	if (!raw)
		abort();
	memcpy(raw, data, size);
	raw[size] = '\0';
	rc = query_parse(raw, &q, &e);
	if (rc < 0) {
		if ((rc != POS_EINVAL && rc != POS_ETOOBIG) || !e.msg[0])
			abort();
		free(raw);
		return 0;
	}
	if (q.n > QUERY_MAX_PARAMS || strlen(raw) > QUERY_MAX_LEN)
		abort();
	for (size_t i = 0; i < q.n; i++) {
		if (!fuzz_inside(q.p[i].key, &q) || !fuzz_inside(q.p[i].value, &q) ||
		    !q.p[i].key[0] || query_get(&q, q.p[i].key) != q.p[i].value)
			abort();
		total += strlen(q.p[i].key) + strlen(q.p[i].value);
	}
	if (total > strlen(raw))
		abort();
	free(raw);
	return 0;
}
