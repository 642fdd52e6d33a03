#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dbfile.h"

/* A basket of 1000 items with an EncTID is well under 100 KB; anything
 * near this is not a basket the lane made. */
#define SPOOL_BODY_MAX (1024 * 1024)
#define SPOOL_TXN_MAX 36
#define SPOOL_REASON_MAX 64
#define SPOOL_PEEK_MAX 1000
#define SPOOL_BUSY_MS 5000

enum {
	SQ_PUT,
	SQ_PEEK,
	SQ_DELETE,
	SQ_ATTEMPT,
	SQ_REJECT,
	SQ_COUNT,
	SQ_COUNT_REJECTED,
	SQ_RETRY_ALL,
	SQ_RETRY_REASON,
	SQ_EACH,
	SQ_N
};

static const char *const spool_sql[SQ_N] = {
	[SQ_PUT] = ("INSERT INTO baskets(txn, body, created_ms) "
		    "VALUES(?1, ?2, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) "
		    "ON CONFLICT(txn) DO NOTHING"),
	[SQ_PEEK] = ("SELECT id, txn, body, attempts FROM baskets WHERE rejected IS NULL "
		     "ORDER BY id LIMIT ?1"),
	[SQ_DELETE] = "DELETE FROM baskets WHERE txn = ?1",
	[SQ_ATTEMPT] = "UPDATE baskets SET attempts = attempts + 1 WHERE txn = ?1",
	[SQ_REJECT] = "UPDATE baskets SET rejected = ?2, attempts = attempts + 1 WHERE txn = ?1",
	[SQ_COUNT] = "SELECT count(*) FROM baskets WHERE rejected IS NULL",
	[SQ_COUNT_REJECTED] = "SELECT count(*) FROM baskets WHERE rejected IS NOT NULL",
	[SQ_RETRY_ALL] = "UPDATE baskets SET rejected = NULL WHERE rejected IS NOT NULL",
	[SQ_RETRY_REASON] = "UPDATE baskets SET rejected = NULL WHERE rejected = ?1",
	[SQ_EACH] = ("SELECT txn, created_ms, attempts, rejected, CASE WHEN ?1 THEN body END "
		     "FROM baskets ORDER BY id"),
};

static const char spool_schema[] =
	"CREATE TABLE IF NOT EXISTS baskets("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" txn TEXT NOT NULL UNIQUE,"
	" body TEXT NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" created_ms INTEGER NOT NULL,"
	" rejected TEXT);"
	"PRAGMA user_version = 1;";

struct spool {
	sqlite3 *db;
	sqlite3_stmt *st[SQ_N];
};

static int spool_db_err(struct spool *s, pos_err *e, const char *what)
{
	return err_set(e, POS_EDB, "spool: %s: %s", what,
		       s && s->db ? sqlite3_errmsg(s->db) : "no database");
}

/* Runs a statement that returns no rows (or a pragma whose row we ignore). */
static int spool_exec(struct spool *s, const char *sql, pos_err *e)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int rc = err_set(e, POS_EDB, "spool: %s", msg ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

/* Reads a one-text-value pragma (journal_mode) to confirm it took. */
static int spool_pragma_text(struct spool *s, const char *sql, const char *want, pos_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return spool_db_err(s, e, "pragma");
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = spool_db_err(s, e, "pragma");
		goto out;
	}
	const unsigned char *v = sqlite3_column_text(st, 0);
	if (!v || strcasecmp((const char *)v, want) != 0)
		rc = err_set(e, POS_EDB, "spool: cannot switch to %s journal", want);
out:
	sqlite3_finalize(st);
	return rc;
}

/* The spool holds EncTIDs and household ids: readable by the agent only
 * (dbfile.h says why an existing spool is never opened for this). */
int spool_open(const char *path, struct spool **out, pos_err *e)
{
	struct spool *s = NULL;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "spool: no output");
	*out = NULL;
	if (!path || !*path)
		return err_set(e, POS_EINVAL, "spool: no path");
	rc = dbfile_prepare(path, e);
	if (rc < 0) {
		err_prefix(e, "spool");
		return rc;
	}
	s = calloc(1, sizeof *s);
	if (!s)
		return err_set(e, POS_ENOMEM, "spool: out of memory");
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		rc = err_set(e, POS_EDB, "spool: cannot open %s: %s", path,
			     s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, SPOOL_BUSY_MS);
	if ((rc = spool_pragma_text(s, "PRAGMA journal_mode = WAL", "wal", e)) < 0)
		goto fail;
	/* FULL: the WAL is fsynced at every commit, so "spooled" survives a
	 * power cut, not only a crash. secure_delete: uploaded bodies do not
	 * linger in free pages. */
	if ((rc = spool_exec(s, "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;"
				"PRAGMA foreign_keys = ON;", e)) < 0)
		goto fail;
	if ((rc = spool_exec(s, spool_schema, e)) < 0) {
		err_prefix(e, "%s", path);
		goto fail;
	}
	for (int i = 0; i < SQ_N; i++) {
		if (sqlite3_prepare_v3(s->db, spool_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
				       NULL) != SQLITE_OK) {
			rc = spool_db_err(s, e, "prepare");
			goto fail;
		}
	}
	*out = s;
	return 0;
fail:
	spool_close(s);
	return rc;
}

void spool_close(struct spool *s)
{
	if (!s)
		return;
	for (int i = 0; i < SQ_N; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s);
}

static int spool_txn_ok(const char *txn, pos_err *e)
{
	size_t n;

	if (!txn || !*txn)
		return err_set(e, POS_EINVAL, "spool: empty txn");
	n = strnlen(txn, SPOOL_TXN_MAX + 1);
	if (n > SPOOL_TXN_MAX)
		return err_set(e, POS_EINVAL, "spool: txn longer than %d characters", SPOOL_TXN_MAX);
	return 0;
}

/* Runs a prepared statement that changes rows; resets it whatever happens. */
static int spool_step_done(struct spool *s, sqlite3_stmt *st, const char *what, pos_err *e)
{
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : spool_db_err(s, e, what);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int spool_put(struct spool *s, const char *txn, const char *body, size_t len, pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!s)
		return err_set(e, POS_EINVAL, "spool: not open");
	if ((rc = spool_txn_ok(txn, e)) < 0)
		return rc;
	if (!body || len == 0)
		return err_set(e, POS_EINVAL, "spool: empty basket body");
	if (len > SPOOL_BODY_MAX)
		return err_set(e, POS_ETOOBIG, "spool: basket body of %zu bytes over %d", len,
			       SPOOL_BODY_MAX);
	if (memchr(body, '\0', len))
		return err_set(e, POS_EINVAL, "spool: NUL byte in basket body");
	st = s->st[SQ_PUT];
	if (sqlite3_bind_text(st, 1, txn, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, body, (int)len, SQLITE_STATIC) != SQLITE_OK) {
		rc = spool_db_err(s, e, "bind");
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return rc;
	}
	/* Autocommit: the step returns after the WAL frame is fsynced. */
	return spool_step_done(s, st, "put", e);
}

void spool_rows_free(struct spool_row *rows, size_t n)
{
	if (!rows)
		return;
	for (size_t i = 0; i < n; i++)
		free(rows[i].body);
	free(rows);
}

int spool_peek(struct spool *s, size_t max, struct spool_row **rows, size_t *n, pos_err *e)
{
	sqlite3_stmt *st;
	struct spool_row *r = NULL;
	size_t k = 0;
	int rc = 0, step;

	if (!rows || !n)
		return err_set(e, POS_EINVAL, "spool: no output");
	*rows = NULL;
	*n = 0;
	if (!s)
		return err_set(e, POS_EINVAL, "spool: not open");
	if (max == 0)
		return 0;
	if (max > SPOOL_PEEK_MAX)
		max = SPOOL_PEEK_MAX;
	r = calloc(max, sizeof *r);
	if (!r)
		return err_set(e, POS_ENOMEM, "spool: out of memory");
	st = s->st[SQ_PEEK];
	if (sqlite3_bind_int64(st, 1, (sqlite3_int64)max) != SQLITE_OK) {
		rc = spool_db_err(s, e, "bind");
		goto out;
	}
	while (k < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *txn = sqlite3_column_text(st, 1);
		const unsigned char *body = sqlite3_column_text(st, 2);
		int blen = sqlite3_column_bytes(st, 2);

		if (!txn || !body || blen <= 0) {
			rc = err_set(e, POS_EDB, "spool: damaged row");
			goto out;
		}
		r[k].id = sqlite3_column_int64(st, 0);
		snprintf(r[k].txn, sizeof r[k].txn, "%s", (const char *)txn);
		r[k].body = malloc((size_t)blen + 1);
		if (!r[k].body) {
			rc = err_set(e, POS_ENOMEM, "spool: out of memory");
			goto out;
		}
		memcpy(r[k].body, body, (size_t)blen);
		r[k].body[blen] = '\0';
		r[k].len = (size_t)blen;
		r[k].attempts = sqlite3_column_int(st, 3);
		k++;
	}
	if (k < max && step != SQLITE_DONE) {
		rc = spool_db_err(s, e, "peek");
		goto out;
	}
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc < 0) {
		/* Rows past k were never filled: calloc left them NULL. */
		spool_rows_free(r, max);
		return rc;
	}
	if (k == 0) {
		free(r);
		r = NULL;
	}
	*rows = r;
	*n = k;
	return 0;
}

static int spool_by_txn(struct spool *s, int which, const char *txn, const char *what,
			pos_err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!s)
		return err_set(e, POS_EINVAL, "spool: not open");
	if ((rc = spool_txn_ok(txn, e)) < 0)
		return rc;
	st = s->st[which];
	if (sqlite3_bind_text(st, 1, txn, -1, SQLITE_STATIC) != SQLITE_OK) {
		rc = spool_db_err(s, e, "bind");
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return rc;
	}
	return spool_step_done(s, st, what, e);
}

int spool_delete(struct spool *s, const char *txn, pos_err *e)
{
	return spool_by_txn(s, SQ_DELETE, txn, "delete", e);
}

int spool_note_attempt(struct spool *s, const char *txn, pos_err *e)
{
	return spool_by_txn(s, SQ_ATTEMPT, txn, "note attempt", e);
}

int spool_set_rejected(struct spool *s, const char *txn, const char *reason, pos_err *e)
{
	sqlite3_stmt *st;
	size_t rl;
	int rc;

	if (!s)
		return err_set(e, POS_EINVAL, "spool: not open");
	if ((rc = spool_txn_ok(txn, e)) < 0)
		return rc;
	if (!reason || !*reason)
		reason = "rejected";
	rl = strnlen(reason, SPOOL_REASON_MAX);
	st = s->st[SQ_REJECT];
	if (sqlite3_bind_text(st, 1, txn, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, reason, (int)rl, SQLITE_STATIC) != SQLITE_OK) {
		rc = spool_db_err(s, e, "bind");
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return rc;
	}
	return spool_step_done(s, st, "set rejected", e);
}

static long spool_count_of(struct spool *s, int which)
{
	sqlite3_stmt *st;
	long n = -1;

	if (!s)
		return -1;
	st = s->st[which];
	if (sqlite3_step(st) == SQLITE_ROW)
		n = (long)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n;
}

long spool_count(struct spool *s)
{
	return spool_count_of(s, SQ_COUNT);
}

long spool_count_rejected(struct spool *s)
{
	return spool_count_of(s, SQ_COUNT_REJECTED);
}

int spool_retry(struct spool *s, const char *const *reasons, long *moved, pos_err *e)
{
	long n = 0;
	int rc = 0;

	if (moved)
		*moved = 0;
	if (!s)
		return err_set(e, POS_EINVAL, "spool: not open");
	if (!reasons) {
		if ((rc = spool_step_done(s, s->st[SQ_RETRY_ALL], "retry", e)) < 0)
			return rc;
		n = sqlite3_changes(s->db);
	}
	for (size_t i = 0; reasons && reasons[i]; i++) {
		sqlite3_stmt *st = s->st[SQ_RETRY_REASON];

		if (sqlite3_bind_text(st, 1, reasons[i], -1, SQLITE_STATIC) != SQLITE_OK) {
			rc = spool_db_err(s, e, "bind");
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return rc;
		}
		if ((rc = spool_step_done(s, st, "retry", e)) < 0)
			return rc;
		n += sqlite3_changes(s->db);
	}
	if (moved)
		*moved = n;
	return 0;
}

int spool_each(struct spool *s, int with_body, int (*fn)(const struct spool_entry *en, void *arg),
	       void *arg, pos_err *e)
{
	sqlite3_stmt *st;
	int rc = 0, step;

	if (!s || !fn)
		return err_set(e, POS_EINVAL, "spool: not open");
	st = s->st[SQ_EACH];
	if (sqlite3_bind_int(st, 1, with_body ? 1 : 0) != SQLITE_OK) {
		rc = spool_db_err(s, e, "bind");
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct spool_entry en;
		const unsigned char *txn = sqlite3_column_text(st, 0);
		const unsigned char *why = sqlite3_column_text(st, 3);

		memset(&en, 0, sizeof en);
		snprintf(en.txn, sizeof en.txn, "%s", txn ? (const char *)txn : "");
		en.created_ms = sqlite3_column_int64(st, 1);
		en.attempts = sqlite3_column_int(st, 2);
		en.set_aside = why != NULL;
		en.reason = why ? (const char *)why : "";
		en.body = with_body ? (const char *)sqlite3_column_text(st, 4) : NULL;
		en.len = en.body ? (size_t)sqlite3_column_bytes(st, 4) : 0;
		if ((rc = fn(&en, arg)) != 0)
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = spool_db_err(s, e, "list");
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}
