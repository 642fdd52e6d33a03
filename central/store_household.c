#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "store_impl.h"
#include "wipe.h"
#include "timeutil.h"

/*
 * Households and their tid links: resolve (the hot path: one primary-key
 * probe on the 32-byte tid index), link, unlink, merge, lookups.
 */

static const char SQL_TID_GET[] = "SELECT hhid FROM tid_index WHERE idx = ?1";
/* ?1: the indexes end to end, DEIDENT_INDEX_LEN bytes each; ?2 how many. */
static const char SQL_TID_GET_MANY_PG[] =
	"SELECT k, t.hhid FROM generate_series(0, ?2::int - 1) AS k "
	"JOIN tid_index t ON t.idx = substring(?1::bytea FROM k * 32 + 1 FOR 32)";
_Static_assert(DEIDENT_INDEX_LEN == 32, "SQL_TID_GET_MANY_PG slices 32-byte indexes");
static const char SQL_HH_INS[] = "INSERT INTO households(hhid, created) VALUES (?1, ?2)";
static const char SQL_HH_INS_IGN[] =
	"INSERT INTO households(hhid, created) VALUES (?1, ?2) ON CONFLICT (hhid) DO NOTHING";
/* Another connection (or node) may enrol the same tid between our read and
 * this insert: it then inserts nothing, and the caller reads the winner. */
static const char SQL_TID_INS[] =
	"INSERT INTO tid_index(idx, hhid) VALUES (?1, ?2) ON CONFLICT (idx) DO NOTHING";
static const char SQL_TID_DEL[] = "DELETE FROM tid_index WHERE idx = ?1";
static const char SQL_HH_GET[] = "SELECT created FROM households WHERE hhid = ?1";
static const char SQL_MERGE_TIDS[] = "UPDATE tid_index SET hhid = ?2 WHERE hhid = ?1";
static const char SQL_MERGE_BASKETS[] = "UPDATE baskets SET hhid = ?2 WHERE hhid = ?1";
static const char SQL_MERGE_CHAIN[] = "UPDATE merged SET into_hhid = ?2 WHERE into_hhid = ?1";
static const char SQL_MERGE_REDIR[] =
	"INSERT INTO merged(from_hhid, into_hhid) VALUES (?1, ?2) "
	"ON CONFLICT (from_hhid) DO UPDATE SET into_hhid = excluded.into_hhid";
static const char SQL_MERGE_REDEEM[] = "UPDATE offer_redemptions SET hhid = ?2 WHERE hhid = ?1";
static const char SQL_HH_DEL[] = "DELETE FROM households WHERE hhid = ?1";
static const char SQL_REDIR_GET[] = "SELECT into_hhid FROM merged WHERE from_hhid = ?1";
static const char SQL_HH_NTIDS[] = "SELECT count(*) FROM tid_index WHERE hhid = ?1";
static const char SQL_HH_BASKETS[] = "SELECT count(*), max(ts) FROM baskets WHERE hhid = ?1";

/* The household linked to idx: 0, POS_ENOTFOUND or an error. */
static int tid_get(struct store *s, const unsigned char idx[DEIDENT_INDEX_LEN],
		   char hhid[DEIDENT_ID_LEN + 1], pos_err *e)
{
	struct db_stmt *st = store_q(s, SQL_TID_GET, e);
	int rc;

	if (!st)
		return POS_EDB;
	db_bind_blob(st, 1, idx, DEIDENT_INDEX_LEN);
	rc = store_row(st, e);
	if (rc == POS_ENOTFOUND)
		return err_set(e, POS_ENOTFOUND, "unknown tid");
	if (rc < 0)
		return rc;
	db_col_copy(st, 0, hhid, DEIDENT_ID_LEN + 1);
	db_reset(st);
	return 0;
}

static int hh_insert(struct store *s, const char *sql, const char *hhid, pos_err *e)
{
	struct db_stmt *st = store_q(s, sql, e);

	if (!st)
		return POS_EDB;
	db_bind_text(st, 1, hhid);
	db_bind_int64(st, 2, time_now_ms());
	return db_run(st, e);
}

/* Links idx to hhid; *taken: another household holds idx already. */
static int tid_insert(struct store *s, const unsigned char idx[DEIDENT_INDEX_LEN],
		      const char *hhid, bool *taken, pos_err *e)
{
	struct db_stmt *st = store_q(s, SQL_TID_INS, e);
	int rc;

	if (!st)
		return POS_EDB;
	db_bind_blob(st, 1, idx, DEIDENT_INDEX_LEN);
	db_bind_text(st, 2, hhid);
	if ((rc = db_run(st, e)) < 0)
		return rc;
	*taken = db_changes(st) == 0;
	return 0;
}

struct many_walk {
	size_t n;
	char (*hhid)[DEIDENT_ID_LEN + 1];
};

static int many_row(struct db_stmt *st, void *arg)
{
	struct many_walk *w = arg;
	int64_t k = db_col_int64(st, 0);

	if (k >= 0 && (size_t)k < w->n)
		db_col_copy(st, 1, w->hhid[k], DEIDENT_ID_LEN + 1);
	return 0;
}

static int resolve_many_pg(struct store *s, size_t n, const unsigned char *const *idx,
			   char (*hhid)[DEIDENT_ID_LEN + 1], pos_err *e)
{
	struct many_walk w = { n, hhid };
	unsigned char *all = malloc(n * DEIDENT_INDEX_LEN);
	struct db_stmt *st;
	int rc;

	if (!all)
		return err_set(e, POS_ENOMEM, "store_resolve_many: out of memory");
	for (size_t i = 0; i < n; i++)
		memcpy(all + i * DEIDENT_INDEX_LEN, idx[i], DEIDENT_INDEX_LEN);
	if (!(st = store_q(s, SQL_TID_GET_MANY_PG, e))) {
		rc = POS_EDB;
		goto out;
	}
	db_bind_blob(st, 1, all, n * DEIDENT_INDEX_LEN);
	db_bind_int64(st, 2, (int64_t)n);
	rc = db_each(st, many_row, &w, e);
out:
	wipe(all, n * DEIDENT_INDEX_LEN);
	free(all);
	return rc;
}

int store_resolve_many(struct store *s, size_t n, const unsigned char *const *idx,
		       char (*hhid)[DEIDENT_ID_LEN + 1], pos_err *e)
{
	bool share;
	int rc = 0;

	if (!s || (n && (!idx || !hhid)))
		return err_set(e, POS_EINVAL, "store_resolve_many: missing argument");
	for (size_t i = 0; i < n; i++)
		hhid[i][0] = '\0';
	if (n > 1 && store_backend(s) == DB_POSTGRESQL)
		return resolve_many_pg(s, n, idx, hhid, e);
	share = n > 1 && !s->in_txn;
	if (share)
		store_reads_begin(s);
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = tid_get(s, idx[i], hhid[i], e);
		if (rc == POS_ENOTFOUND) {
			hhid[i][0] = '\0';
			err_clear(e);
			rc = 0;
		}
	}
	if (share)
		store_reads_end(s);
	return rc;
}

int store_resolve(struct store *s, const unsigned char idx[DEIDENT_INDEX_LEN], bool auto_enrol,
		  const char *new_hhid, char hhid[DEIDENT_ID_LEN + 1], bool *created, pos_err *e)
{
	char fresh[DEIDENT_ID_LEN + 1];
	bool taken = false;
	int rc;

	if (!s || !idx || !hhid)
		return err_set(e, POS_EINVAL, "store_resolve: missing argument");
	if (created)
		*created = false;
	rc = tid_get(s, idx, hhid, e);
	if (rc != POS_ENOTFOUND || !auto_enrol)
		return rc;
	if (!new_hhid) {
		rc = deident_hhid_new(fresh, e);
		if (rc < 0)
			return rc;
		new_hhid = fresh;
	}
	if (!deident_hhid_valid(new_hhid))
		return err_set(e, POS_EINVAL, "store_resolve: malformed new hhid");
	rc = store_unit_begin(s, e);
	if (rc < 0)
		return rc;
	/* Another connection may have enrolled the same TID between our read
	 * and taking the write lock: look again under the lock. Inside a
	 * caller's SQLite write transaction (the ingest writer) the lock was
	 * held at the first read already. */
	if (!(s->in_txn && !s->reads && store_backend(s) == DB_SQLITE && !db_readonly(s->conn))) {
		rc = tid_get(s, idx, hhid, e);
		if (rc == 0 || rc != POS_ENOTFOUND)
			return store_unit_finish(s, rc, e);
		err_clear(e);
	}
	rc = hh_insert(s, SQL_HH_INS, new_hhid, e);
	if (rc == 0)
		rc = tid_insert(s, idx, new_hhid, &taken, e);
	if (rc == 0 && taken) {
		/* Lost a race no lock prevents (another node): the household
		 * made for it goes, the winner's is the answer. */
		store_unit_finish(s, POS_ECONFLICT, NULL);
		return tid_get(s, idx, hhid, e);
	}
	rc = store_unit_finish(s, rc, e);
	if (rc == 0) {
		memcpy(hhid, new_hhid, DEIDENT_ID_LEN + 1);
		if (created)
			*created = true;
	}
	return rc;
}

int store_link(struct store *s, const unsigned char idx[DEIDENT_INDEX_LEN], const char *hhid,
	       pos_err *e)
{
	char cur[DEIDENT_ID_LEN + 1];
	bool taken = false;
	int rc;

	if (!s || !idx || !hhid)
		return err_set(e, POS_EINVAL, "store_link: missing argument");
	if (!deident_hhid_valid(hhid))
		return err_set(e, POS_EINVAL, "store_link: malformed hhid");
	rc = store_unit_begin(s, e);
	if (rc < 0)
		return rc;
	rc = tid_get(s, idx, cur, e);
	if (rc == 0) {
		if (strcmp(cur, hhid) != 0)
			rc = err_set(e, POS_ECONFLICT, "already enrolled in household %s", cur);
		return store_unit_finish(s, rc, e);
	}
	if (rc != POS_ENOTFOUND)
		return store_unit_finish(s, rc, e);
	err_clear(e);
	rc = hh_insert(s, SQL_HH_INS_IGN, hhid, e);
	if (rc == 0)
		rc = tid_insert(s, idx, hhid, &taken, e);
	if (rc == 0 && taken)
		rc = err_set(e, POS_ECONFLICT, "already enrolled in another household");
	return store_unit_finish(s, rc, e);
}

int store_unlink(struct store *s, const unsigned char idx[DEIDENT_INDEX_LEN], pos_err *e)
{
	struct db_stmt *st;
	int rc;

	if (!s || !idx)
		return err_set(e, POS_EINVAL, "store_unlink: missing argument");
	rc = store_unit_begin(s, e);
	if (rc < 0)
		return rc;
	st = store_q(s, SQL_TID_DEL, e);
	if (!st)
		return store_unit_finish(s, POS_EDB, e);
	db_bind_blob(st, 1, idx, DEIDENT_INDEX_LEN);
	rc = db_run(st, e);
	if (rc == 0 && db_changes(st) == 0)
		rc = err_set(e, POS_ENOTFOUND, "unknown tid");
	return store_unit_finish(s, rc, e);
}

/* 0 when hhid exists (created_ms filled when not NULL), POS_ENOTFOUND. */
static int hh_get(struct store *s, const char *hhid, int64_t *created_ms, pos_err *e)
{
	struct db_stmt *st = store_q(s, SQL_HH_GET, e);
	int rc;

	if (!st)
		return POS_EDB;
	db_bind_text(st, 1, hhid);
	rc = store_row(st, e);
	if (rc == POS_ENOTFOUND)
		return err_set(e, POS_ENOTFOUND, "unknown household %s", hhid);
	if (rc < 0)
		return rc;
	if (created_ms)
		*created_ms = db_col_int64(st, 0);
	db_reset(st);
	return 0;
}

/* Runs a merge statement: ?1 = a, ?2 = b when not NULL. */
static int exec2(struct store *s, const char *sql, const char *a, const char *b, pos_err *e)
{
	struct db_stmt *st = store_q(s, sql, e);

	if (!st)
		return POS_EDB;
	db_bind_text(st, 1, a);
	if (b)
		db_bind_text(st, 2, b);
	return db_run(st, e);
}

int store_merge(struct store *s, const char *from, const char *into, pos_err *e)
{
	int rc;

	if (!s || !from || !into)
		return err_set(e, POS_EINVAL, "store_merge: missing argument");
	if (!deident_hhid_valid(from) || !deident_hhid_valid(into))
		return err_set(e, POS_EINVAL, "store_merge: malformed hhid");
	if (strcmp(from, into) == 0)
		return err_set(e, POS_EINVAL, "cannot merge household %s into itself", from);
	rc = store_unit_begin(s, e);
	if (rc < 0)
		return rc;
	rc = hh_get(s, from, NULL, e);
	if (rc == 0)
		rc = hh_get(s, into, NULL, e);
	if (rc == 0)
		rc = exec2(s, SQL_MERGE_TIDS, from, into, e);
	if (rc == 0)
		rc = exec2(s, SQL_MERGE_BASKETS, from, into, e);
	/* Earlier merges into `from` now point at `into` directly. */
	if (rc == 0)
		rc = exec2(s, SQL_MERGE_CHAIN, from, into, e);
	if (rc == 0)
		rc = exec2(s, SQL_MERGE_REDIR, from, into, e);
	if (rc == 0)
		rc = exec2(s, SQL_MERGE_REDEEM, from, into, e);
	if (rc == 0)
		rc = exec2(s, SQL_HH_DEL, from, NULL, e);
	return store_unit_finish(s, rc, e);
}

/* One count-style row of sql for hhid: *n column 0, *max column 1 (when
 * not NULL; 0 for SQL NULL). */
static int hh_count(struct store *s, const char *sql, const char *hhid, long *n, int64_t *max,
		    pos_err *e)
{
	struct db_stmt *st = store_q(s, sql, e);
	int rc;

	if (!st)
		return POS_EDB;
	db_bind_text(st, 1, hhid);
	rc = store_row(st, e);
	if (rc == POS_ENOTFOUND)
		return err_set(e, POS_EDB, "household counts: no row");
	if (rc < 0)
		return rc;
	*n = (long)db_col_int64(st, 0);
	if (max)
		*max = db_col_int64(st, 1);
	db_reset(st);
	return 0;
}

int store_household(struct store *s, const char *hhid, struct store_household *out, pos_err *e)
{
	int rc;

	if (!s || !hhid || !out)
		return err_set(e, POS_EINVAL, "store_household: missing argument");
	memset(out, 0, sizeof(*out));
	if (!deident_hhid_valid(hhid))
		return err_set(e, POS_EINVAL, "malformed hhid");
	rc = hh_get(s, hhid, &out->created_ms, e);
	if (rc < 0)
		return rc;
	memcpy(out->hhid, hhid, DEIDENT_ID_LEN + 1);
	if ((rc = hh_count(s, SQL_HH_NTIDS, hhid, &out->n_tids, NULL, e)) < 0)
		return rc;
	return hh_count(s, SQL_HH_BASKETS, hhid, &out->n_baskets, &out->last_basket_ms, e);
}

/* The survivor a merged-away hhid points at: 0 with out set,
 * POS_ENOTFOUND (e untouched) or an error. */
static int redir_get(struct store *s, const char *hhid, char out[DEIDENT_ID_LEN + 1], pos_err *e)
{
	struct db_stmt *st = store_q(s, SQL_REDIR_GET, e);
	int rc;

	if (!st)
		return POS_EDB;
	db_bind_text(st, 1, hhid);
	if ((rc = store_row(st, e)) < 0)
		return rc;
	db_col_copy(st, 0, out, DEIDENT_ID_LEN + 1);
	db_reset(st);
	return 0;
}

int store_merged_into(struct store *s, const char *hhid, char out[DEIDENT_ID_LEN + 1],
		      pos_err *e)
{
	if (!s || !hhid || !out)
		return err_set(e, POS_EINVAL, "store_merged_into: missing argument");
	if (!deident_hhid_valid(hhid))
		return POS_ENOTFOUND;
	return redir_get(s, hhid, out, e);
}

/* A household merged away still exists for a lane that spooled its hhid
 * before the merge: store_put_baskets files such baskets under the
 * survivor, so refusing them here would strand them in the spool forever. */
bool store_household_exists(struct store *s, const char *hhid)
{
	char into[DEIDENT_ID_LEN + 1];

	if (!s || !hhid || !deident_hhid_valid(hhid))
		return false;
	if (hh_get(s, hhid, NULL, NULL) == 0)
		return true;
	return redir_get(s, hhid, into, NULL) == 0;
}

int store_household_file(struct store *s, const char *hhid, char out[DEIDENT_ID_LEN + 1],
			 pos_err *e)
{
	int rc;

	memcpy(out, hhid, DEIDENT_ID_LEN + 1);
	rc = redir_get(s, hhid, out, e);
	if (rc != POS_ENOTFOUND)
		return rc;
	return hh_insert(s, SQL_HH_INS_IGN, out, e);
}
