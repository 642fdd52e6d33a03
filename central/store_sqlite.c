#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dbfile.h"
#include "store_impl.h"

/*
 * What only the SQLite store has: quick_check, the online backup, WAL
 * checkpoints and the ingest writer's tuning (PostgreSQL has its own
 * tools for each: amcheck, pg_basebackup, its checkpointer), and the
 * last rowid a basket insert made (cheaper than RETURNING on SQLite).
 */

static sqlite3 *sq_handle(struct store *s)
{
	return s ? db_sqlite_handle(store_db(s)) : NULL;
}

static int store_dberr(struct store *s, int rc, const char *what, pos_err *e)
{
	sqlite3 *db = sq_handle(s);
	/* SQLite messages name tables and columns, never bound values. */
	int code = ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) ? POS_EAGAIN
										: POS_EDB;
	return err_set(e, code, "database: %s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* The first problem quick_check finds in db, or 0. */
static int sq_quick_check(sqlite3 *db, pos_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc;

	/* quick_check(1): the first problem is enough to refuse the file. */
	rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return err_set(e, POS_EDB, "database: quick_check: %s", sqlite3_errmsg(db));
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = err_set(e, (rc & 0xff) == SQLITE_BUSY ? POS_EAGAIN : POS_EDB,
			     "database: quick_check: %s", sqlite3_errmsg(db));
	} else {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		rc = v && strcmp(v, "ok") == 0
			     ? 0
			     : err_set(e, POS_EDB, "integrity check failed: %.160s", v ? v : "?");
	}
	sqlite3_finalize(st);
	return rc;
}

int store_quick_check(struct store *s, pos_err *e)
{
	if (!s)
		return err_set(e, POS_EINVAL, "store: no connection");
	/* PostgreSQL checks its own pages (data checksums, amcheck). */
	if (store_backend(s) != DB_SQLITE)
		return 0;
	return sq_quick_check(sq_handle(s), e);
}

/* Copies every page of src into dst within one read transaction of src,
 * so the copy is one snapshot however much is written meanwhile. */
static int store_backup_copy(struct store *src, sqlite3 *dst, pos_err *e)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", sq_handle(src), "main");
	int rc, tries = 0;

	if (!b)
		return err_set(e, POS_EDB, "backup: %s", sqlite3_errmsg(dst));
	while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
		if (++tries > 200)
			break;
		usleep(10000);
	}
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE)
		return err_set(e, rc == SQLITE_BUSY ? POS_EAGAIN : POS_EDB, "backup: %s",
			       sqlite3_errstr(rc));
	if (sqlite3_errcode(dst) != SQLITE_OK)
		return err_set(e, POS_EDB, "backup: %s", sqlite3_errmsg(dst));
	return 0;
}

/* The copy carries the source's WAL flag in its header: a backup must be
 * one file that works when copied alone, so it goes back to a rollback
 * journal, and is checked before it replaces the previous backup. */
static int store_backup_seal(sqlite3 *dst, const char *tmp, pos_err *e)
{
	int rc, fd;

	if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK)
		return err_set(e, POS_EDB, "backup: %s", sqlite3_errmsg(dst));
	if ((rc = sq_quick_check(dst, e)) < 0)
		return rc;
	fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return err_set(e, POS_EIO, "%s: %s", tmp, strerror(errno));
	rc = fsync(fd) == 0 ? 0 : err_set(e, POS_EIO, "%s: fsync: %s", tmp, strerror(errno));
	close(fd);
	return rc;
}

static int store_sync_dir(const char *path, pos_err *e)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, rc;

	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path) >= (int)sizeof dir)
		return err_set(e, POS_ETOOBIG, "backup: path too long");
	if (!dir[0])
		snprintf(dir, sizeof dir, "/");
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, POS_EIO, "%s: %s", dir, strerror(errno));
	rc = fsync(fd) == 0 ? 0 : err_set(e, POS_EIO, "%s: fsync: %s", dir, strerror(errno));
	close(fd);
	return rc;
}

int store_backup(struct store *s, const char *dest, pos_err *e)
{
	char tmp[PATH_MAX];
	sqlite3 *dst = NULL;
	struct stat st;
	int rc;

	if (!s || !dest || !*dest)
		return err_set(e, POS_EINVAL, "backup: no destination");
	if (store_backend(s) != DB_SQLITE)
		return err_set(e, POS_EINVAL,
			       "backup: a PostgreSQL store is backed up with its own tools "
			       "(pg_basebackup, pg_dump)");
	if (stat(dest, &st) == 0 && !S_ISREG(st.st_mode))
		return err_set(e, POS_EINVAL, "%s is not a regular file", dest);
	if (snprintf(tmp, sizeof tmp, "%s.tmp", dest) >= (int)sizeof tmp)
		return err_set(e, POS_ETOOBIG, "backup: path too long");
	/* A .tmp left by an interrupted backup is ours to replace. */
	if (unlink(tmp) != 0 && errno != ENOENT)
		return err_set(e, POS_EIO, "%s: %s", tmp, strerror(errno));
	if ((rc = dbfile_prepare(tmp, e)) < 0)
		return rc;
	if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		rc = err_set(e, POS_EDB, "%s: %s", tmp, dst ? sqlite3_errmsg(dst) : "out of memory");
		goto out;
	}
	if ((rc = store_backup_copy(s, dst, e)) < 0 || (rc = store_backup_seal(dst, tmp, e)) < 0)
		goto out;
	sqlite3_close(dst);
	dst = NULL;
	if (rename(tmp, dest) != 0) {
		rc = err_set(e, POS_EIO, "%s: %s", dest, strerror(errno));
		goto out;
	}
	return store_sync_dir(dest, e);
out:
	sqlite3_close(dst);
	unlink(tmp);
	return rc;
}

static int store_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct store *s = arg;

	(void)db;
	(void)name;
	s->wal_frames = frames;
	return SQLITE_OK;
}

int store_ingest_tune(struct store *s, pos_err *e)
{
	int rc;

	if (!s)
		return err_set(e, POS_EINVAL, "store_ingest_tune: missing argument");
	if (store_backend(s) != DB_SQLITE)
		return 0;
	/* Every reference the writer makes it checked or created itself in
	 * the same transaction (the basket row before its items, the household
	 * by basket_household, a code by code_get): SQLite's checks repeated a
	 * parent lookup per item row. */
	rc = db_exec(store_db(s), "PRAGMA foreign_keys=OFF", e);
	if (rc < 0)
		return rc;
	/* Commits no longer pay for checkpoints (this replaces the automatic
	 * one): the caller runs store_checkpoint. */
	sqlite3_wal_hook(sq_handle(s), store_wal_hook, s);
	return 0;
}

int store_wal_frames(struct store *s)
{
	return s && store_backend(s) == DB_SQLITE ? s->wal_frames : 0;
}

int store_checkpoint(struct store *s, struct store_wal *out, pos_err *e)
{
	struct store_wal w = { -1, -1 };
	int rc;

	if (out)
		*out = w;
	if (!s)
		return err_set(e, POS_EINVAL, "store_checkpoint: missing argument");
	if (store_backend(s) != DB_SQLITE)
		return 0;
	rc = sqlite3_wal_checkpoint_v2(sq_handle(s), NULL, SQLITE_CHECKPOINT_PASSIVE, &w.frames,
				       &w.copied);
	if (rc == SQLITE_OK && out)
		*out = w;
	if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
		return store_dberr(s, rc, "checkpoint", e);
	return 0;
}

int64_t store_sqlite_last_id(struct store *s)
{
	return sqlite3_last_insert_rowid(sq_handle(s));
}
