#include "db_impl.h"

#include <ctype.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"

/*
 * PostgreSQL behind db.h (libpq). The SQL's ?N become $N. A DB_KEEP
 * statement is prepared once per connection under its own name at its
 * first run; others go with PQexecParams. Parameters travel as text
 * (integers, text, doubles) or binary (blobs); results come back as text
 * and the whole result is read at the first db_step, so another statement
 * may run on the connection while this one's rows are walked.
 *
 * The connection string is libpq's own: connect_timeout (default
 * PG_CONNECT_TIMEOUT_S here) and options='-c statement_timeout=5000' set
 * the two time limits. A connection found broken is reset once, on the
 * next statement outside a transaction; inside one, the transaction is
 * lost and the statement fails.
 */

#define PG_CONNECT_TIMEOUT_S "10"
#define PG_BYTEA_OID 17
#define PG_NAME_LEN 24

struct pg_db {
	struct db head;
	PGconn *c;
	unsigned gen;	  /* bumped by a reset: prepared statements are gone */
	unsigned next_id; /* names prepared statements */
	unsigned n_stmts; /* statements not finalized yet */
	bool txn;	  /* inside a transaction when last heard from */
	bool closed;	  /* db_close ran; freed with the last statement */
};

struct pg_param {
	const char *val; /* NULL: SQL NULL */
	int len;
	int fmt; /* 0 text, 1 binary */
	char *own; /* the text form (libpq wants it NUL-terminated) */
	size_t cap;
};

struct pg_col {
	unsigned char *buf; /* a bytea column decoded */
	size_t cap;
	size_t len;
	int row; /* the row buf holds, -1 none */
};

struct pg_stmt {
	struct db_stmt head;
	char *sql;  /* the caller's text, for error messages */
	char *psql; /* with $N */
	int n_params;
	struct pg_param *p;
	/* What libpq is handed for a run, n_params each */
	const char **vals;
	int *lens;
	int *fmts;
	Oid *types;
	bool keep;
	char name[PG_NAME_LEN];
	unsigned prepared_gen; /* == the connection's gen when prepared there */
	bool prepared;
	PGresult *res; /* the current run's rows */
	int row;       /* the current row */
	int n_rows;
	bool done; /* the run ended: the next step starts a new one */
	long run_changes;
	long changes;
	struct pg_col *cols;
	int n_cols;
};

static struct pg_db *pg(struct db *db)
{
	return (struct pg_db *)db;
}

static struct pg_stmt *pgs(struct db_stmt *st)
{
	return (struct pg_stmt *)st;
}

static void pg_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* Whether a bound text value (of 3 bytes or more) occurs in msg. */
static bool pg_echoes(const char *msg, const struct pg_stmt *s)
{
	for (int i = 0; s && i < s->n_params; i++) {
		const struct pg_param *p = &s->p[i];

		if (p->val && p->fmt == 0 && p->len >= 3 && memmem(msg, strlen(msg), p->val,
								   (size_t)p->len))
			return true;
	}
	return false;
}

/* The error of res (or of the connection when res has none), mapped by
 * SQLSTATE. Only the primary message is kept: PostgreSQL's DETAIL echoes
 * key values, and a data exception's message (class 22) quotes the value
 * it could not take. */
static int pg_err(struct pg_db *d, const PGresult *res, const char *sql,
		  const struct pg_stmt *s, pos_err *e)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char head[64], line[200];
	int code = POS_EDB;
	size_t n;

	if (!msg || !msg[0])
		msg = d->c ? PQerrorMessage(d->c) : "";
	if (!msg[0])
		msg = PQstatus(d->c) == CONNECTION_BAD ? "the connection is broken" : "failed";
	/* Its first line: libpq appends DETAIL and HINT lines. */
	n = strcspn(msg, "\n");
	snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) ? n : sizeof(line) - 1), msg);
	if (state) {
		if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03"))
			code = POS_EAGAIN;
		else if (!strcmp(state, "23505"))
			code = POS_ECONFLICT;
		else if (!strcmp(state, "23503"))
			code = POS_ENOTFOUND;
		if (!strncmp(state, "22", 2) || pg_echoes(line, s))
			snprintf(line, sizeof(line), "a value was refused (SQLSTATE %s)", state);
	} else if (pg_echoes(line, s)) {
		snprintf(line, sizeof(line), "the statement failed");
	}
	db_sql_head(sql, head, sizeof(head));
	return err_set(e, code, "database: %s: %s", head, line);
}

/* Session settings, after every connect and reset. A writing connection
 * runs short statements whose plan cost a misestimate can inflate past
 * jit_above_cost, and compiling one took 330 ms for a 20 ms fold query:
 * no JIT there. Read-only connections keep the server's setting (the
 * workbench's aggregates are what JIT is for). */
static int pg_session(struct pg_db *d, pos_err *e)
{
	const char *sql = d->head.readonly
				  ? "SET bytea_output = hex; SET default_transaction_read_only = on"
				  : "SET bytea_output = hex; SET jit = off";
	PGresult *r = PQexec(d->c, sql);
	int rc = 0;

	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = pg_err(d, r, sql, NULL, e);
	PQclear(r);
	return rc;
}

/* Notes whether the connection is inside a transaction: a broken one no
 * longer says. */
static void pg_track(struct pg_db *d)
{
	PGTransactionStatusType t = PQtransactionStatus(d->c);

	if (t != PQTRANS_UNKNOWN)
		d->txn = t != PQTRANS_IDLE;
}

/* A broken connection outside a transaction is reset once; the caller's
 * statement then runs on the new one. Inside one, the transaction is gone
 * with the connection: the statement fails, and the next one resets. */
static int pg_ready(struct pg_db *d, const char *sql, pos_err *e)
{
	char head[64];

	if (PQstatus(d->c) != CONNECTION_BAD)
		return 0;
	if (d->txn) {
		d->txn = false;
		db_sql_head(sql, head, sizeof(head));
		return err_set(e, POS_EDB,
			       "database: %s: the connection was lost inside a transaction", head);
	}
	PQreset(d->c);
	d->gen++;
	if (PQstatus(d->c) != CONNECTION_OK)
		return pg_err(d, NULL, sql, NULL, e);
	return pg_session(d, e);
}

static int pg_exec(struct db *db, const char *sql, pos_err *e)
{
	struct pg_db *d = pg(db);
	PGresult *r;
	int rc;

	if ((rc = pg_ready(d, sql, e)) < 0)
		return rc;
	r = PQexec(d->c, sql);
	pg_track(d);
	switch (PQresultStatus(r)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
	case PGRES_EMPTY_QUERY:
		/* COMMIT of a spoiled transaction rolls back without an error. */
		if (!strcmp(PQcmdStatus(r), "ROLLBACK") &&
		    strncasecmp(sql + strspn(sql, " \t\n"), "ROLLBACK", 8) != 0)
			rc = err_set(e, POS_EDB, "database: the transaction was rolled back");
		break;
	default:
		rc = pg_err(d, r, sql, NULL, e);
	}
	PQclear(r);
	return rc;
}

/* The length of the dollar quote tag ($$ or $tag$) at p, 0 when none. */
static size_t pg_dollar_tag(const char *p)
{
	size_t n = 1;

	if (p[0] != '$' || (p[1] >= '0' && p[1] <= '9'))
		return 0;
	while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') ||
	       (p[n] >= '0' && p[n] <= '9') || p[n] == '_')
		n++;
	return p[n] == '$' ? n + 1 : 0;
}

/* sql with ?N as $N, outside quotes, dollar quotes, identifiers and
 * comments; *n_params the highest N. NULL: no memory. */
static char *pg_rewrite(const char *sql, int *n_params)
{
	size_t n = strlen(sql);
	char *out = malloc(n + 1);
	size_t o = 0;
	int max = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		char c = sql[i];

		if (c == '\'' || c == '"') {
			bool esc = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e');

			out[o++] = sql[i++];
			while (i < n) {
				if (esc && sql[i] == '\\' && i + 1 < n) {
					out[o++] = sql[i++];
					out[o++] = sql[i++];
					continue;
				}
				if (sql[i] == c) {
					out[o++] = sql[i++];
					if (i < n && sql[i] == c) { /* a doubled quote */
						out[o++] = sql[i++];
						continue;
					}
					break;
				}
				out[o++] = sql[i++];
			}
		} else if (c == '$' && (i == 0 || !(isalnum((unsigned char)sql[i - 1]) ||
						    sql[i - 1] == '_')) &&
			   pg_dollar_tag(sql + i)) {
			size_t t = pg_dollar_tag(sql + i), stop = n;

			/* copied as it is, up to and with the closing tag */
			for (size_t k = i + t; k + t <= n; k++)
				if (!strncmp(sql + k, sql + i, t)) {
					stop = k + t;
					break;
				}
			memcpy(out + o, sql + i, stop - i);
			o += stop - i;
			i = stop;
		} else if (c == '-' && sql[i + 1] == '-') {
			while (i < n && sql[i] != '\n')
				out[o++] = sql[i++];
		} else if (c == '/' && sql[i + 1] == '*') {
			out[o++] = sql[i++];
			out[o++] = sql[i++];
			while (i < n && !(sql[i] == '*' && sql[i + 1] == '/'))
				out[o++] = sql[i++];
			if (i < n) { /* the closing star and slash */
				out[o++] = sql[i++];
				out[o++] = sql[i++];
			}
		} else if (c == '?' && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
			int v = 0;

			out[o++] = '$';
			i++;
			while (i < n && sql[i] >= '0' && sql[i] <= '9') {
				if (v < 100000)
					v = v * 10 + (sql[i] - '0');
				out[o++] = sql[i++];
			}
			if (v > max)
				max = v;
		} else {
			out[o++] = sql[i++];
		}
	}
	out[o] = '\0';
	*n_params = max;
	return out;
}

static void pg_free_stmt(struct pg_stmt *s)
{
	for (int i = 0; s->p && i < s->n_params; i++)
		free(s->p[i].own);
	for (int i = 0; i < s->n_cols; i++)
		free(s->cols[i].buf);
	free(s->cols);
	free(s->p);
	free(s->vals);
	free(s->lens);
	free(s->fmts);
	free(s->types);
	free(s->sql);
	free(s->psql);
	free(s);
}

static int pg_prepare(struct db *db, const char *sql, unsigned flags, struct db_stmt **out,
		      pos_err *e)
{
	struct pg_db *d = pg(db);
	struct pg_stmt *s = calloc(1, sizeof(*s));

	if (!s)
		return err_set(e, POS_ENOMEM, "database: out of memory");
	s->head.db = db;
	s->sql = strdup(sql);
	s->psql = pg_rewrite(sql, &s->n_params);
	if (s->n_params > 65535) {
		pg_free_stmt(s);
		return err_set(e, POS_EINVAL, "database: too many parameters");
	}
	if (s->n_params) {
		size_t n = (size_t)s->n_params;

		s->p = calloc(n, sizeof(*s->p));
		s->vals = calloc(n, sizeof(*s->vals));
		s->lens = calloc(n, sizeof(*s->lens));
		s->fmts = calloc(n, sizeof(*s->fmts));
		s->types = calloc(n, sizeof(*s->types));
	}
	if (!s->sql || !s->psql ||
	    (s->n_params && (!s->p || !s->vals || !s->lens || !s->fmts || !s->types))) {
		pg_free_stmt(s);
		return err_set(e, POS_ENOMEM, "database: out of memory");
	}
	s->keep = flags & DB_KEEP;
	if (s->keep)
		snprintf(s->name, sizeof(s->name), "pos_%u", ++d->next_id);
	d->n_stmts++;
	*out = &s->head;
	return 0;
}

static void pg_end_run(struct pg_stmt *s)
{
	PQclear(s->res);
	s->res = NULL;
	s->row = 0;
	s->n_rows = 0;
	s->done = false;
	for (int i = 0; i < s->n_cols; i++)
		s->cols[i].row = -1;
}

static void pg_reset(struct db_stmt *st, bool clear)
{
	struct pg_stmt *s = pgs(st);

	pg_end_run(s);
	if (clear)
		for (int i = 0; i < s->n_params; i++) {
			s->p[i].val = NULL;
			s->p[i].len = 0;
			s->p[i].fmt = 0;
		}
}

static void pg_free_db(struct pg_db *d)
{
	PQfinish(d->c);
	free(d);
}

static void pg_finalize(struct db_stmt *st)
{
	struct pg_stmt *s = pgs(st);
	struct pg_db *d = pg(st->db);

	pg_end_run(s);
	/* A statement prepared on a healthy idle connection is dropped there;
	 * otherwise it goes with the connection. */
	if (!d->closed && s->prepared && s->prepared_gen == d->gen &&
	    PQstatus(d->c) == CONNECTION_OK && PQtransactionStatus(d->c) == PQTRANS_IDLE) {
		char sql[PG_NAME_LEN + 16];

		snprintf(sql, sizeof(sql), "DEALLOCATE %s", s->name);
		PQclear(PQexec(d->c, sql));
	}
	pg_free_stmt(s);
	if (--d->n_stmts == 0 && d->closed)
		pg_free_db(d);
}

/* The parameter for index i (from 1), or NULL with the bind error set. */
static struct pg_param *pg_param(struct db_stmt *st, int i)
{
	struct pg_stmt *s = pgs(st);

	if (i < 1 || i > s->n_params) {
		if (!st->bind_err)
			st->bind_err = POS_EDB;
		return NULL;
	}
	return &s->p[i - 1];
}

/* Binds the text v (n bytes) through the parameter's own buffer. */
static void pg_bind_own(struct db_stmt *st, int i, const char *v, size_t n)
{
	struct pg_param *p = pg_param(st, i);

	if (!p)
		return;
	if (n > INT32_MAX - 1) {
		if (!st->bind_err)
			st->bind_err = POS_EDB;
		return;
	}
	if (n + 1 > p->cap) {
		size_t cap = n + 1 < 32 ? 32 : n + 1;
		char *b = realloc(p->own, cap);

		if (!b) {
			if (!st->bind_err)
				st->bind_err = POS_ENOMEM;
			p->val = NULL;
			return;
		}
		p->own = b;
		p->cap = cap;
	}
	memcpy(p->own, v, n);
	p->own[n] = '\0';
	p->val = p->own;
	p->len = (int)n;
	p->fmt = 0;
}

static void pg_bind_int64(struct db_stmt *st, int i, int64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%" PRId64, v);

	pg_bind_own(st, i, b, (size_t)n);
}

static void pg_bind_text(struct db_stmt *st, int i, const char *v, size_t n)
{
	pg_bind_own(st, i, v, n);
}

static void pg_bind_blob(struct db_stmt *st, int i, const void *v, size_t n)
{
	struct pg_param *p = pg_param(st, i);

	if (!p)
		return;
	if (n > INT32_MAX) {
		if (!st->bind_err)
			st->bind_err = POS_EDB;
		return;
	}
	p->val = v ? (n ? v : "") : NULL;
	p->len = (int)n;
	p->fmt = 1;
}

static void pg_bind_double(struct db_stmt *st, int i, double v)
{
	char b[40];
	int n = snprintf(b, sizeof(b), "%.17g", v);

	pg_bind_own(st, i, b, (size_t)n);
}

static void pg_bind_null(struct db_stmt *st, int i)
{
	struct pg_param *p = pg_param(st, i);

	if (p) {
		p->val = NULL;
		p->len = 0;
		p->fmt = 0;
	}
}

/* Runs the statement: its whole result in s->res. */
static int pg_run(struct pg_stmt *s, pos_err *e)
{
	struct pg_db *d = pg(s->head.db);
	const char **vals = s->vals;
	int *lens = s->lens, *fmts = s->fmts;
	Oid *types = s->types;
	PGresult *r;
	int rc;

	if ((rc = pg_ready(d, s->sql, e)) < 0)
		return rc;
	for (int i = 0; i < s->n_params; i++) {
		vals[i] = s->p[i].val;
		lens[i] = s->p[i].len;
		fmts[i] = s->p[i].fmt;
		/* A blob is bytea whatever its context; the rest the server
		 * infers from where the parameter stands. */
		types[i] = s->p[i].val && s->p[i].fmt == 1 ? PG_BYTEA_OID : 0;
	}
	if (s->keep) {
		if (!s->prepared || s->prepared_gen != d->gen) {
			r = PQprepare(d->c, s->name, s->psql, s->n_params, types);
			pg_track(d);
			if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				rc = pg_err(d, r, s->sql, s, e);
				PQclear(r);
				return rc;
			}
			PQclear(r);
			s->prepared = true;
			s->prepared_gen = d->gen;
		}
		r = PQexecPrepared(d->c, s->name, s->n_params, vals, lens, fmts, 0);
	} else {
		r = PQexecParams(d->c, s->psql, s->n_params, types, vals, lens, fmts, 0);
	}
	pg_track(d);
	switch (PQresultStatus(r)) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
	case PGRES_EMPTY_QUERY:
		break;
	default:
		rc = pg_err(d, r, s->sql, s, e);
		PQclear(r);
		return rc;
	}
	s->res = r;
	s->n_rows = PQntuples(r);
	s->row = -1;
	/* A SELECT's count is of rows read, not changed. */
	s->run_changes = strncmp(PQcmdStatus(r), "SELECT", 6) ? atol(PQcmdTuples(r)) : 0;
	if (PQnfields(r) > s->n_cols) {
		struct pg_col *c = realloc(s->cols, (size_t)PQnfields(r) * sizeof(*c));

		if (!c) {
			pg_end_run(s);
			return err_set(e, POS_ENOMEM, "database: out of memory");
		}
		for (int i = s->n_cols; i < PQnfields(r); i++)
			c[i] = (struct pg_col){ .row = -1 };
		s->cols = c;
		s->n_cols = PQnfields(r);
	}
	return 0;
}

static int pg_step(struct db_stmt *st, pos_err *e)
{
	struct pg_stmt *s = pgs(st);
	int rc;

	if (s->done) /* stepping a finished run runs it again, as SQLite does */
		pg_end_run(s);
	if (!s->res && (rc = pg_run(s, e)) < 0)
		return rc;
	if (++s->row < s->n_rows)
		return DB_ROW;
	s->changes = s->run_changes;
	s->done = true;
	return DB_DONE;
}

static long pg_changes(struct db_stmt *st)
{
	return pgs(st)->changes;
}

/* The value of column i of the current row, NULL for SQL NULL or none. */
static const char *pg_val(struct pg_stmt *s, int i, size_t *n)
{
	*n = 0;
	if (!s->res || s->row < 0 || s->row >= s->n_rows || i < 0 || i >= PQnfields(s->res) ||
	    PQgetisnull(s->res, s->row, i))
		return NULL;
	*n = (size_t)PQgetlength(s->res, s->row, i);
	return PQgetvalue(s->res, s->row, i);
}

static int pg_col_count(struct db_stmt *st)
{
	return pgs(st)->res ? PQnfields(pgs(st)->res) : 0;
}

static bool pg_col_null(struct db_stmt *st, int i)
{
	size_t n;
	return pg_val(pgs(st), i, &n) == NULL;
}

static int64_t pg_col_int64(struct db_stmt *st, int i)
{
	size_t n;
	const char *v = pg_val(pgs(st), i, &n);

	if (!v)
		return 0;
	if (n == 1 && (v[0] == 't' || v[0] == 'f'))
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

static double pg_col_double(struct db_stmt *st, int i)
{
	size_t n;
	const char *v = pg_val(pgs(st), i, &n);

	return v ? strtod(v, NULL) : 0.0;
}

static const char *pg_col_text(struct db_stmt *st, int i, size_t *n)
{
	return pg_val(pgs(st), i, n);
}

static const void *pg_col_blob(struct db_stmt *st, int i, size_t *n)
{
	struct pg_stmt *s = pgs(st);
	size_t len;
	const char *v = pg_val(s, i, &len);
	struct pg_col *c;

	*n = 0;
	if (!v)
		return NULL;
	if (PQftype(s->res, i) != PG_BYTEA_OID) { /* text read as bytes */
		*n = len;
		return len ? v : NULL;
	}
	c = &s->cols[i];
	if (c->row != s->row) {
		size_t out;

		if (len < 2 || v[0] != '\\' || v[1] != 'x' || len % 2)
			return NULL; /* not hex: bytea_output is set to hex */
		out = (len - 2) / 2;
		if (out > c->cap) {
			unsigned char *b = realloc(c->buf, out);

			if (!b)
				return NULL;
			c->buf = b;
			c->cap = out;
		}
		if (out && hex_decode(v + 2, len - 2, c->buf, out, NULL) < 0)
			return NULL;
		c->len = out;
		c->row = s->row;
	}
	*n = c->len;
	return c->len ? c->buf : NULL;
}

static int pg_begin(struct db *db, pos_err *e)
{
	return pg_exec(db, "BEGIN", e);
}

static bool pg_in_txn(struct db *db)
{
	PGTransactionStatusType t = PQtransactionStatus(pg(db)->c);

	return t == PQTRANS_INTRANS || t == PQTRANS_ACTIVE;
}

static void pg_close(struct db *db)
{
	struct pg_db *d = pg(db);

	if (d->c && PQstatus(d->c) == CONNECTION_OK &&
	    PQtransactionStatus(d->c) != PQTRANS_IDLE)
		PQclear(PQexec(d->c, "ROLLBACK"));
	d->closed = true;
	/* Statements a caller still holds free the connection with the last
	 * of them. */
	if (d->n_stmts == 0)
		pg_free_db(d);
	else {
		PQfinish(d->c);
		d->c = NULL;
	}
}

static const struct db_ops pg_ops = {
	.exec = pg_exec,
	.prepare = pg_prepare,
	.reset = pg_reset,
	.finalize = pg_finalize,
	.bind_int64 = pg_bind_int64,
	.bind_text = pg_bind_text,
	.bind_blob = pg_bind_blob,
	.bind_double = pg_bind_double,
	.bind_null = pg_bind_null,
	.step = pg_step,
	.changes = pg_changes,
	.col_count = pg_col_count,
	.col_null = pg_col_null,
	.col_int64 = pg_col_int64,
	.col_double = pg_col_double,
	.col_text = pg_col_text,
	.col_blob = pg_col_blob,
	.begin = pg_begin,
	.in_txn = pg_in_txn,
	.close = pg_close,
};

int db_open_pg(const char *dsn, bool readonly, struct db **out, pos_err *e)
{
	/* Defaults before the expanded dsn, which overrides them; the client
	 * encoding after it, since the text handed over is UTF-8. */
	const char *const keys[] = { "connect_timeout", "fallback_application_name", "dbname",
				     "client_encoding", NULL };
	const char *const vals[] = { PG_CONNECT_TIMEOUT_S, "pos-central", dsn, "UTF8", NULL };
	struct pg_db *d;
	int rc;

	*out = NULL;
	if (!dsn || !dsn[0])
		return err_set(e, POS_EINVAL, "database: the PostgreSQL dsn is empty");
	if (!(d = calloc(1, sizeof(*d))))
		return err_set(e, POS_ENOMEM, "database: out of memory");
	d->head.ops = &pg_ops;
	d->head.backend = DB_POSTGRESQL;
	d->head.readonly = readonly;
	d->c = PQconnectdbParams(keys, vals, 1);
	if (!d->c) {
		free(d);
		return err_set(e, POS_ENOMEM, "database: out of memory");
	}
	if (PQstatus(d->c) != CONNECTION_OK) {
		const char *m = PQerrorMessage(d->c);
		size_t n = strcspn(m, "\n");

		rc = err_set(e, POS_EDB, "database: cannot connect to PostgreSQL: %.*s",
			     (int)(n > 300 ? 300 : n), m);
		goto fail;
	}
	PQsetNoticeProcessor(d->c, pg_notice, NULL);
	if ((rc = pg_session(d, e)) < 0)
		goto fail;
	*out = &d->head;
	return 0;
fail:
	pg_free_db(d);
	return rc;
}

void *db_pg_handle(struct db *db)
{
	return db && db->backend == DB_POSTGRESQL ? pg(db)->c : NULL;
}
