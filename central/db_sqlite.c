#include "db_impl.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "timeutil.h"

/*
 * SQLite behind db.h: a thin pass-through. The connection runs in WAL mode
 * with synchronous=FULL (a commit is on disk before anything is
 * acknowledged), foreign keys on, and secure_delete (removed rows are
 * overwritten, not left in free pages). Temporary data (a savepoint's
 * journal, a sort) stays in memory: on disk, each write unit inside a
 * group's transaction spilled its pages to a temporary file (measured:
 * 2.4 GB written for 16,000 baskets, against 0.45 GB in memory).
 */

#define SQ_BUSY_MS 5000
#define SQ_BUSY_MIN_US 50
#define SQ_CACHE_KIB "32768" /* page cache per connection */

struct sq_db {
	struct db head;
	sqlite3 *h;
	int64_t busy_since_us; /* when the current wait for a lock began */
};

struct sq_stmt {
	struct db_stmt head;
	sqlite3_stmt *st;
	long changes;
};

static struct sq_db *sq(struct db *db)
{
	return (struct sq_db *)db;
}

static struct sq_stmt *sqs(struct db_stmt *st)
{
	return (struct sq_stmt *)st;
}

static int sq_err(struct sq_db *d, int rc, const char *sql, pos_err *e)
{
	char head[64];
	int code = POS_EDB;

	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		code = POS_EAGAIN;
		break;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
			code = POS_ECONFLICT;
		else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
			code = POS_ENOTFOUND;
		break;
	}
	db_sql_head(sql, head, sizeof(head));
	/* SQLite's messages name tables and columns, never bound values. */
	return err_set(e, code, "database: %s: %s", head,
		       d && d->h ? sqlite3_errmsg(d->h) : sqlite3_errstr(rc));
}

/* Waiting for another connection's write lock: SQLite's own handler
 * sleeps up to 100 ms a try, which made p99 tails of 100 ms and more out
 * of waits of a few hundred microseconds. Retry soon and back off: 50 us
 * doubling to 2 ms, giving up after SQ_BUSY_MS. */
static int sq_busy(void *arg, int count)
{
	struct sq_db *d = arg;
	int64_t now = time_mono_us();

	if (count == 0)
		d->busy_since_us = now;
	else if (now - d->busy_since_us >= (int64_t)SQ_BUSY_MS * 1000)
		return 0;
	usleep(count >= 6 ? 2000 : (useconds_t)(SQ_BUSY_MIN_US << count));
	return 1;
}

static int sq_exec(struct db *db, const char *sql, pos_err *e)
{
	int rc = sqlite3_exec(sq(db)->h, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sq_err(sq(db), rc, sql, e);
}

static int sq_prepare(struct db *db, const char *sql, unsigned flags, struct db_stmt **out,
		      pos_err *e)
{
	struct sq_stmt *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return err_set(e, POS_ENOMEM, "database: out of memory");
	rc = sqlite3_prepare_v3(sq(db)->h, sql, -1,
				(flags & DB_KEEP) ? SQLITE_PREPARE_PERSISTENT : 0, &s->st, NULL);
	if (rc != SQLITE_OK) {
		free(s);
		return sq_err(sq(db), rc, sql, e);
	}
	s->head.db = db;
	*out = &s->head;
	return 0;
}

static void sq_reset(struct db_stmt *st, bool clear)
{
	sqlite3_reset(sqs(st)->st);
	if (clear)
		sqlite3_clear_bindings(sqs(st)->st);
}

static void sq_finalize(struct db_stmt *st)
{
	sqlite3_finalize(sqs(st)->st);
	free(st);
}

static void sq_bound(struct db_stmt *st, int rc)
{
	if (rc != SQLITE_OK && !st->bind_err)
		st->bind_err = rc == SQLITE_NOMEM ? POS_ENOMEM : POS_EDB;
}

static void sq_bind_int64(struct db_stmt *st, int i, int64_t v)
{
	sq_bound(st, sqlite3_bind_int64(sqs(st)->st, i, v));
}

static void sq_bind_text(struct db_stmt *st, int i, const char *v, size_t n)
{
	sq_bound(st, sqlite3_bind_text64(sqs(st)->st, i, v, n, SQLITE_STATIC, SQLITE_UTF8));
}

static void sq_bind_blob(struct db_stmt *st, int i, const void *v, size_t n)
{
	sq_bound(st, sqlite3_bind_blob64(sqs(st)->st, i, v, n, SQLITE_STATIC));
}

static void sq_bind_double(struct db_stmt *st, int i, double v)
{
	sq_bound(st, sqlite3_bind_double(sqs(st)->st, i, v));
}

static void sq_bind_null(struct db_stmt *st, int i)
{
	sq_bound(st, sqlite3_bind_null(sqs(st)->st, i));
}

static int sq_step(struct db_stmt *st, pos_err *e)
{
	struct sq_stmt *s = sqs(st);
	sqlite3 *h = sq(st->db)->h;
	int rc = sqlite3_step(s->st);

	if (rc == SQLITE_ROW)
		return DB_ROW;
	if (rc == SQLITE_DONE) {
		s->changes = sqlite3_changes(h);
		return DB_DONE;
	}
	rc = sq_err(sq(st->db), rc, sqlite3_sql(s->st), e);
	sqlite3_reset(s->st);
	return rc;
}

static long sq_changes(struct db_stmt *st)
{
	return sqs(st)->changes;
}

static int sq_col_count(struct db_stmt *st)
{
	return sqlite3_column_count(sqs(st)->st);
}

static bool sq_col_null(struct db_stmt *st, int i)
{
	return sqlite3_column_type(sqs(st)->st, i) == SQLITE_NULL;
}

static int64_t sq_col_int64(struct db_stmt *st, int i)
{
	return sqlite3_column_int64(sqs(st)->st, i);
}

static double sq_col_double(struct db_stmt *st, int i)
{
	return sqlite3_column_double(sqs(st)->st, i);
}

static const char *sq_col_text(struct db_stmt *st, int i, size_t *n)
{
	const char *v = (const char *)sqlite3_column_text(sqs(st)->st, i);

	*n = v ? (size_t)sqlite3_column_bytes(sqs(st)->st, i) : 0;
	return v;
}

static const void *sq_col_blob(struct db_stmt *st, int i, size_t *n)
{
	const void *v = sqlite3_column_blob(sqs(st)->st, i);

	*n = v ? (size_t)sqlite3_column_bytes(sqs(st)->st, i) : 0;
	return v;
}

static int sq_begin(struct db *db, pos_err *e)
{
	/* The write lock up front: the busy handler applies, instead of a
	 * deadlock when two readers both try to upgrade. */
	return sq_exec(db, db->readonly ? "BEGIN" : "BEGIN IMMEDIATE", e);
}

static bool sq_in_txn(struct db *db)
{
	return !sqlite3_get_autocommit(sq(db)->h);
}

static void sq_close(struct db *db)
{
	struct sq_db *d = sq(db);

	if (d->h && !sqlite3_get_autocommit(d->h))
		sqlite3_exec(d->h, "ROLLBACK", NULL, NULL, NULL);
	/* _v2: statements a caller still holds are freed with the handle's
	 * last user instead of making the close fail. */
	sqlite3_close_v2(d->h);
	free(d);
}

static const struct db_ops sq_ops = {
	.exec = sq_exec,
	.prepare = sq_prepare,
	.reset = sq_reset,
	.finalize = sq_finalize,
	.bind_int64 = sq_bind_int64,
	.bind_text = sq_bind_text,
	.bind_blob = sq_bind_blob,
	.bind_double = sq_bind_double,
	.bind_null = sq_bind_null,
	.step = sq_step,
	.changes = sq_changes,
	.col_count = sq_col_count,
	.col_null = sq_col_null,
	.col_int64 = sq_col_int64,
	.col_double = sq_col_double,
	.col_text = sq_col_text,
	.col_blob = sq_col_blob,
	.begin = sq_begin,
	.in_txn = sq_in_txn,
	.close = sq_close,
};

static const char *const sq_pragmas[] = {
	/* Durability: a basket is acknowledged only after its commit reached
	 * the disk (synchronous=FULL syncs the WAL on every commit). */
	"PRAGMA journal_mode=WAL",
	"PRAGMA synchronous=FULL",
	"PRAGMA foreign_keys=ON",
	/* Deleted tid links are overwritten, not left in free pages. */
	"PRAGMA secure_delete=ON",
	/* Random 32-byte keys touch pages all over the tid index: with the
	 * 2 MiB default cache a large enrolment batch spills pages to the WAL
	 * again and again (measured: 12 page writes per enrolled TID). */
	"PRAGMA cache_size=-" SQ_CACHE_KIB,
	"PRAGMA temp_store=MEMORY",
};

/* SQLite's allocation statistics take a process-wide mutex on every
 * malloc and free (5% of the writer's time); nothing reads them. Fails
 * harmlessly when something opened a database first. */
static pthread_once_t sq_once = PTHREAD_ONCE_INIT;

static void sq_config(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* pos_blob_or(a, b): the bytes of a and b OR'ed, as long as the longer
 * (a NULL or non-blob argument counts as empty), so a bitmap is merged
 * into its row by one upsert instead of a read and a write. */
static void sq_blob_or(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	const unsigned char *a = NULL, *b = NULL;
	int na = 0, nb = 0, n;
	unsigned char *out;

	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_BLOB) {
		a = sqlite3_value_blob(argv[0]);
		na = sqlite3_value_bytes(argv[0]);
	}
	if (sqlite3_value_type(argv[1]) == SQLITE_BLOB) {
		b = sqlite3_value_blob(argv[1]);
		nb = sqlite3_value_bytes(argv[1]);
	}
	n = na > nb ? na : nb;
	/* A zeroblob argument is expanded on reading, which can fail. */
	if ((na > 0 && !a) || (nb > 0 && !b) || !(out = sqlite3_malloc(n > 0 ? n : 1))) {
		sqlite3_result_error_nomem(cx);
		return;
	}
	for (int i = 0; i < n; i++)
		out[i] = (unsigned char)((i < na ? a[i] : 0) | (i < nb ? b[i] : 0));
	sqlite3_result_blob(cx, out, n, sqlite3_free);
}

int db_open_sqlite(const char *path, bool readonly, struct db **out, pos_err *e)
{
	struct sq_db *d = calloc(1, sizeof(*d));
	int rc;

	*out = NULL;
	if (!d)
		return err_set(e, POS_ENOMEM, "database: out of memory");
	pthread_once(&sq_once, sq_config);
	d->head.ops = &sq_ops;
	d->head.backend = DB_SQLITE;
	d->head.readonly = readonly;
	rc = sqlite3_open_v2(path, &d->h,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
			     NULL);
	if (rc != SQLITE_OK) {
		rc = err_set(e, POS_EDB, "%s: %s", path,
			     d->h ? sqlite3_errmsg(d->h) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(d->h, 1);
	sqlite3_busy_handler(d->h, sq_busy, d);
	if (sqlite3_create_function(d->h, "pos_blob_or", 2,
				    SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
				    sq_blob_or, NULL, NULL) != SQLITE_OK) {
		rc = err_set(e, POS_EDB, "%s: %s", path, sqlite3_errmsg(d->h));
		goto fail;
	}
	for (size_t i = 0; i < sizeof(sq_pragmas) / sizeof(sq_pragmas[0]); i++)
		if ((rc = sq_exec(&d->head, sq_pragmas[i], e)) < 0)
			goto fail;
	/* query_only after the journal mode: switching to WAL writes the
	 * header once, the only write a reader's open may need. */
	if (readonly && (rc = sq_exec(&d->head, "PRAGMA query_only=1", e)) < 0)
		goto fail;
	*out = &d->head;
	return 0;
fail:
	sq_close(&d->head);
	return rc;
}

void *db_sqlite_handle(struct db *db)
{
	return db && db->backend == DB_SQLITE ? sq(db)->h : NULL;
}
