/* The store under failure, as SQLite's own *fault.test do it: the n-th
 * SQLite call (open, prepare, step, exec, backup step), the n-th
 * allocation of SQLite itself, or the n-th allocation of ours fails, for
 * n = 1, 2, ... until an operation runs through without reaching n. Each
 * time the operation must answer an error or succeed, never crash or leak
 * (make asan), and a fresh connection must then find all of it or none of
 * it: nothing half-stored, nothing acknowledged lost.
 *
 * The SQLite entry points and malloc are wrapped at link time (the
 * Makefile gives this test -Wl,--wrap=...); SQLite's own allocations go
 * through SQLITE_CONFIG_MALLOC. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deident.h"
#include "store.h"

/* ------------------------------------------------------------ the faults */

enum fault_kind { FAULT_SQL, FAULT_SQLITE_MEM, FAULT_OUR_MEM, FAULT_KINDS };
static const char *const fault_names[] = { "sqlite call", "sqlite allocation", "allocation" };

static struct {
	enum fault_kind kind;
	long at;      /* 0: disarmed; else the at-th call of kind fails */
	bool sticky;  /* every call from the at-th on fails, not only it */
	long calls;
	bool fired;
} fault;

static void fault_arm(enum fault_kind kind, long at, bool sticky)
{
	fault.kind = kind;
	fault.calls = 0;
	fault.fired = false;
	fault.sticky = sticky;
	fault.at = at;
}

/* Disarms; returns whether the fault was reached. */
static bool fault_disarm(void)
{
	fault.at = 0;
	return fault.fired;
}

static bool fault_hit(enum fault_kind kind)
{
	if (fault.at == 0 || fault.kind != kind)
		return false;
	fault.calls++;
	if (fault.calls == fault.at || (fault.sticky && fault.calls > fault.at)) {
		fault.fired = true;
		return true;
	}
	return false;
}

int __real_sqlite3_open_v2(const char *, sqlite3 **, int, const char *);
int __real_sqlite3_prepare_v2(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
int __real_sqlite3_prepare_v3(sqlite3 *, const char *, int, unsigned, sqlite3_stmt **,
			      const char **);
int __real_sqlite3_step(sqlite3_stmt *);
int __real_sqlite3_exec(sqlite3 *, const char *, int (*)(void *, int, char **, char **), void *,
			char **);
int __real_sqlite3_backup_step(sqlite3_backup *, int);
void *__real_malloc(size_t);
void *__real_calloc(size_t, size_t);
void *__real_realloc(void *, size_t);

int __wrap_sqlite3_open_v2(const char *, sqlite3 **, int, const char *);
int __wrap_sqlite3_prepare_v2(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
int __wrap_sqlite3_prepare_v3(sqlite3 *, const char *, int, unsigned, sqlite3_stmt **,
			      const char **);
int __wrap_sqlite3_step(sqlite3_stmt *);
int __wrap_sqlite3_exec(sqlite3 *, const char *, int (*)(void *, int, char **, char **), void *,
			char **);
int __wrap_sqlite3_backup_step(sqlite3_backup *, int);
void *__wrap_malloc(size_t);
void *__wrap_calloc(size_t, size_t);
void *__wrap_realloc(void *, size_t);

int __wrap_sqlite3_open_v2(const char *f, sqlite3 **db, int fl, const char *vfs)
{
	if (fault_hit(FAULT_SQL)) {
		/* As SQLite does: a handle to close even on failure. */
		__real_sqlite3_open_v2(":memory:", db, SQLITE_OPEN_READWRITE, NULL);
		return SQLITE_CANTOPEN;
	}
	return __real_sqlite3_open_v2(f, db, fl, vfs);
}

int __wrap_sqlite3_prepare_v2(sqlite3 *db, const char *sql, int n, sqlite3_stmt **st,
			      const char **tail)
{
	if (fault_hit(FAULT_SQL)) {
		*st = NULL;
		return SQLITE_IOERR;
	}
	return __real_sqlite3_prepare_v2(db, sql, n, st, tail);
}

int __wrap_sqlite3_prepare_v3(sqlite3 *db, const char *sql, int n, unsigned fl,
			      sqlite3_stmt **st, const char **tail)
{
	if (fault_hit(FAULT_SQL)) {
		*st = NULL;
		return SQLITE_IOERR;
	}
	return __real_sqlite3_prepare_v3(db, sql, n, fl, st, tail);
}

int __wrap_sqlite3_step(sqlite3_stmt *st)
{
	return fault_hit(FAULT_SQL) ? SQLITE_IOERR : __real_sqlite3_step(st);
}

int __wrap_sqlite3_exec(sqlite3 *db, const char *sql, int (*cb)(void *, int, char **, char **),
			void *arg, char **err)
{
	return fault_hit(FAULT_SQL) ? SQLITE_IOERR : __real_sqlite3_exec(db, sql, cb, arg, err);
}

int __wrap_sqlite3_backup_step(sqlite3_backup *b, int n)
{
	return fault_hit(FAULT_SQL) ? SQLITE_IOERR : __real_sqlite3_backup_step(b, n);
}

void *__wrap_malloc(size_t n)
{
	return fault_hit(FAULT_OUR_MEM) ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
	return fault_hit(FAULT_OUR_MEM) ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
	return fault_hit(FAULT_OUR_MEM) ? NULL : __real_realloc(p, n);
}

static sqlite3_mem_methods sqlite_mem;

static void *fault_sqlite_malloc(int n)
{
	return fault_hit(FAULT_SQLITE_MEM) ? NULL : sqlite_mem.xMalloc(n);
}

static void *fault_sqlite_realloc(void *p, int n)
{
	return fault_hit(FAULT_SQLITE_MEM) ? NULL : sqlite_mem.xRealloc(p, n);
}

static void fault_sqlite_install(void)
{
	sqlite3_mem_methods m;

	assert_int_equal(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &sqlite_mem), SQLITE_OK);
	m = sqlite_mem;
	m.xMalloc = fault_sqlite_malloc;
	m.xRealloc = fault_sqlite_realloc;
	assert_int_equal(sqlite3_config(SQLITE_CONFIG_MALLOC, &m), SQLITE_OK);
}

/* -------------------------------------------------------------- fixtures */

struct place {
	char dir[64];
	char db[128];
	char copy[128];
};

static void rm_db(const char *db)
{
	char p[160];

	unlink(db);
	snprintf(p, sizeof p, "%s-wal", db);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", db);
	unlink(p);
	snprintf(p, sizeof p, "%s-journal", db);
	unlink(p);
	snprintf(p, sizeof p, "%s.tmp", db);
	unlink(p);
}

static void place_new(struct place *pl)
{
	/* tmpfs where there is one: thousands of fresh databases, each fsynced. */
	snprintf(pl->dir, sizeof pl->dir, "%s/test_store_fault.XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	assert_non_null(mkdtemp(pl->dir));
	snprintf(pl->db, sizeof pl->db, "%s/central.db", pl->dir);
	snprintf(pl->copy, sizeof pl->copy, "%s/copy.db", pl->dir);
}

static void place_free(struct place *pl)
{
	rm_db(pl->db);
	rm_db(pl->copy);
	rmdir(pl->dir);
}

static struct store *open_clean(const char *db)
{
	struct store *s = NULL;
	pos_err e = { 0 };

	assert_int_equal(store_open(db, &s, &e), 0);
	return s;
}

static struct store_item items[2] = {
	{ "00012345678905", 2, 199 },
	{ "04006381333931", 1, -1 },
};

static void baskets3(struct store_basket b[3], const char *hhid)
{
	memset(b, 0, 3 * sizeof *b);
	for (int i = 0; i < 3; i++) {
		snprintf(b[i].txn, sizeof b[i].txn, "0190a000-0000-7000-8000-00000000000%c", '0' + i);
		b[i].ts_ms = 1700000000000LL + i;
		snprintf(b[i].store, sizeof b[i].store, "S1");
		snprintf(b[i].terminal, sizeof b[i].terminal, "T1");
		snprintf(b[i].hhid, sizeof b[i].hhid, "%s", hhid);
		memset(b[i].digest, 0x40 + i, sizeof b[i].digest);
		b[i].items = items;
		b[i].n_items = 2;
	}
}

/* How many of the three baskets a clean connection finds: stored ones
 * answer duplicate. The probe stores the absent ones, so it is the last
 * look at the file. */
static int baskets_present(const char *db, const char *hhid)
{
	struct store_basket b[3];
	enum store_put_result r[3];
	struct store *s = open_clean(db);
	pos_err e = { 0 };
	int n = 0;

	baskets3(b, hhid);
	assert_int_equal(store_put_baskets(s, b, 3, r, &e), 0);
	for (int i = 0; i < 3; i++)
		n += r[i] == STORE_PUT_DUPLICATE;
	store_close(s);
	return n;
}

/* The failure point the sweep is at: each op arms it after its own set-up
 * (which must not fail) and disarms it before its checks. */
static struct {
	enum fault_kind kind;
	long at;
	bool sticky;
} sweep;

static void op_arm(void)
{
	fault_arm(sweep.kind, sweep.at, sweep.sticky);
}

static void op_disarm(bool *fired)
{
	*fired = fault_disarm();
}

/* Runs op for at = 1, 2, ... in each fault kind and both modes until op
 * no longer reaches the failure point: every point has been tried. */
static void fault_sweep(void (*op)(struct place *pl, bool *fired))
{
	for (int kind = 0; kind < FAULT_KINDS; kind++) {
		for (int sticky = 0; sticky < 2; sticky++) {
			long at, points = 0;
			/* Every point up to 500, then a stride that grows with n:
			 * opening a new database makes thousands of allocations. */
			for (at = 1; at < 100000; at += at < 500 ? 1 : at / 64) {
				struct place pl;
				bool fired = false;

				sweep.kind = (enum fault_kind)kind;
				sweep.at = at;
				sweep.sticky = sticky;
				place_new(&pl);
				op(&pl, &fired);
				place_free(&pl);
				if (!fired)
					break;
				points++;
			}
			print_message("# %s%s: %ld failure points tried, up to %ld\n",
				      fault_names[kind], sticky ? " (and every call after)" : "", points,
				      at);
			assert_true(at < 100000);
		}
	}
}

/* ------------------------------------------------------------ operations */

static void op_open(struct place *pl, bool *fired)
{
	struct store *s = NULL;
	pos_err e = { 0 };
	int rc;

	op_arm();
	rc = store_open(pl->db, &s, &e);
	op_disarm(fired);
	if (rc < 0) {
		assert_null(s);
		assert_true(e.msg[0] != '\0');
	}
	store_close(s);
	/* Whatever happened, the next open completes the schema. */
	assert_int_equal(baskets_present(pl->db, ""), 0);
}

static void op_put(struct place *pl, bool *fired)
{
	struct store_basket b[3];
	enum store_put_result r[3] = { 0 };
	struct store *s = open_clean(pl->db);
	pos_err e = { 0 };
	int rc;

	baskets3(b, "");
	op_arm();
	rc = store_put_baskets(s, b, 3, r, &e);
	op_disarm(fired);
	store_close(s);
	if (rc == 0) {
		for (int i = 0; i < 3; i++)
			assert_int_equal(r[i], STORE_PUT_CREATED);
		assert_int_equal(baskets_present(pl->db, ""), 3);
	} else {
		assert_true(e.msg[0] != '\0');
		assert_int_equal(baskets_present(pl->db, ""), 0);
	}
}

static void op_resolve(struct place *pl, bool *fired)
{
	unsigned char idx[DEIDENT_INDEX_LEN];
	char hh[DEIDENT_ID_LEN + 1], want[DEIDENT_ID_LEN + 1], got[DEIDENT_ID_LEN + 1];
	struct store *s = open_clean(pl->db);
	bool created = false;
	pos_err e = { 0 };
	int rc;

	memset(idx, 0x5A, sizeof idx);
	assert_int_equal(deident_hhid_new(want, &e), 0);
	op_arm();
	rc = store_resolve(s, idx, true, want, hh, &created, &e);
	op_disarm(fired);
	store_close(s);
	s = open_clean(pl->db);
	if (rc == 0) {
		assert_true(created);
		assert_string_equal(hh, want);
		assert_int_equal(store_resolve(s, idx, false, NULL, got, &created, &e), 0);
		assert_string_equal(got, want);
	} else {
		assert_int_equal(store_resolve(s, idx, false, NULL, got, &created, &e),
				 POS_ENOTFOUND);
		assert_false(store_household_exists(s, want));
	}
	store_close(s);
}

static int count_basket(const struct store_basket *b, void *arg)
{
	(void)b;
	(*(int *)arg)++;
	return 0;
}

static void op_history(struct place *pl, bool *fired)
{
	struct store_basket b[3];
	enum store_put_result r[3];
	char hh[DEIDENT_ID_LEN + 1];
	struct store *s = open_clean(pl->db);
	pos_err e = { 0 };
	int n = 0, rc;

	assert_int_equal(deident_hhid_new(hh, &e), 0);
	baskets3(b, hh);
	assert_int_equal(store_put_baskets(s, b, 3, r, &e), 0);
	op_arm();
	rc = store_history(s, hh, 0, 0, count_basket, &n, &e);
	op_disarm(fired);
	if (rc == 0)
		assert_int_equal(n, 3);
	else
		assert_true(e.msg[0] != '\0');
	store_close(s);
}

static void op_offer(struct place *pl, bool *fired)
{
	struct store_offer o = { 0 }, got;
	struct store *s = open_clean(pl->db);
	pos_err e = { 0 };
	int rc;

	snprintf(o.id, sizeof o.id, "of_0123456789abcdef");
	snprintf(o.title, sizeof o.title, "Coffee");
	snprintf(o.reward, sizeof o.reward, "1 EUR off");
	snprintf(o.target, sizeof o.target, "all");
	o.created_ms = 1700000000000LL;
	op_arm();
	rc = store_offer_create(s, &o, &e);
	op_disarm(fired);
	store_close(s);
	s = open_clean(pl->db);
	assert_int_equal(store_offer_get(s, o.id, &got, &e), rc == 0 ? 0 : POS_ENOTFOUND);
	store_close(s);
}

static void op_backup(struct place *pl, bool *fired)
{
	struct store_basket b[3];
	enum store_put_result r[3];
	struct store *s = open_clean(pl->db);
	struct stat st;
	char tmp[160];
	pos_err e = { 0 };
	int rc;

	baskets3(b, "");
	assert_int_equal(store_put_baskets(s, b, 3, r, &e), 0);
	op_arm();
	rc = store_backup(s, pl->copy, &e);
	op_disarm(fired);
	store_close(s);
	snprintf(tmp, sizeof tmp, "%s.tmp", pl->copy);
	assert_int_not_equal(stat(tmp, &st), 0);
	if (rc == 0) {
		assert_int_equal(baskets_present(pl->copy, ""), 3);
	} else {
		assert_true(e.msg[0] != '\0');
		assert_int_not_equal(stat(pl->copy, &st), 0);
	}
}

static void store_open_survives_every_failure(void **st)
{
	(void)st;
	fault_sweep(op_open);
}

static void a_basket_group_is_stored_whole_or_not_at_all(void **st)
{
	(void)st;
	fault_sweep(op_put);
}

static void an_enrolment_is_whole_or_not_at_all(void **st)
{
	(void)st;
	fault_sweep(op_resolve);
}

static void a_history_walk_fails_cleanly(void **st)
{
	(void)st;
	fault_sweep(op_history);
}

static void an_offer_is_created_or_not(void **st)
{
	(void)st;
	fault_sweep(op_offer);
}

static void a_failed_backup_leaves_no_file(void **st)
{
	(void)st;
	fault_sweep(op_backup);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(store_open_survives_every_failure),
		cmocka_unit_test(a_basket_group_is_stored_whole_or_not_at_all),
		cmocka_unit_test(an_enrolment_is_whole_or_not_at_all),
		cmocka_unit_test(a_history_walk_fails_cleanly),
		cmocka_unit_test(an_offer_is_created_or_not),
		cmocka_unit_test(a_failed_backup_leaves_no_file),
	};

	fault_sqlite_install();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
