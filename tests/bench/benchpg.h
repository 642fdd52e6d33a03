#ifndef POS_BENCHPG_H
#define POS_BENCHPG_H
/*
 * What the PostgreSQL floors share (pgfloor, histbench --dsn): rows in
 * COPY's text format collected in a growing buffer and sent by one COPY,
 * and a plain statement. prog names the program in a failure's message on
 * stderr. Programs link -lpq.
 */
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bench_copy {
	char *p;
	size_t n, cap;
};

/* Room for n more bytes; -1 when out of memory. */
static inline int bench_copy_room(struct bench_copy *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 1 << 20;
	char *p;

	if (b->n + n <= b->cap)
		return 0;
	while (cap < b->n + n)
		cap *= 2;
	if (!(p = realloc(b->p, cap)))
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static inline int bench_copy_put(struct bench_copy *b, const char *s, size_t n)
{
	if (bench_copy_room(b, n) < 0)
		return -1;
	memcpy(b->p + b->n, s, n);
	b->n += n;
	return 0;
}

static inline int bench_copy_putf(struct bench_copy *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline int bench_copy_putf(struct bench_copy *b, const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0 || bench_copy_room(b, (size_t)len + 1) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->p + b->n, (size_t)len + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)len;
	return 0;
}

/* Runs sql (COPY ... FROM STDIN) with b's rows, then empties b. */
static inline int bench_copy_send(PGconn *c, const char *prog, const char *sql,
				  struct bench_copy *b)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COPY_IN;

	PQclear(r);
	if (!ok || PQputCopyData(c, b->p, (int)b->n) != 1 || PQputCopyEnd(c, NULL) != 1)
		goto fail;
	r = PQgetResult(c);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	while ((r = PQgetResult(c)))
		PQclear(r);
	b->n = 0;
	if (ok)
		return 0;
fail:
	fprintf(stderr, "%s: %.40s: %s", prog, sql, PQerrorMessage(c));
	return -1;
}

/* Runs sql, a statement or several; -1 when one fails. */
static inline int bench_pg_exec(PGconn *c, const char *prog, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "%s: %.60s: %s", prog, sql, PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

#endif
