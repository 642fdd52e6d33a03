/*
 * Household history at scale. A fast loader fills a database made by
 * store_open (the real schema, indexes and triggers) with N item rows:
 * 20-item baskets over one year, about 200 per household, households
 * interleaved in time as they are in a real store (so one household's
 * baskets lie scattered over the whole table, the hard case for a history
 * read). Raw prepared INSERTs, synchronous=OFF, 20,000 baskets a
 * transaction: the loader is a bench tool, not the API.
 *
 * A database whose bench_meta row says it was completed for the same N is
 * reused, so a second run skips the load.
 *
 * The database file is read through once first, so the operating system's
 * page cache holds it (as on a server whose RAM fits the database; a cold
 * disk read per page would measure the disk instead).
 *
 * Then, on a connection opened with store_open as central opens it, for
 * households drawn at random (each asked once, so nothing of it is in
 * SQLite's cache from an earlier ask): the time of store_history (the
 * baskets and their items, newest first) and of history_write as JSON into
 * a sink that discards (what the HTTP route does, minus the socket).
 *
 * With --dsn, the same on PostgreSQL: DSN names a database (tests/pg/pgctl
 * fresh) that the loader fills by COPY (the store's schema, its month
 * partitions, 20,000 baskets a transaction) unless its bench_meta row says
 * a load of ITEM_ROWS completed there; the tables and indexes are then read
 * into PostgreSQL's shared buffers with pg_prewarm (as the SQLite file is
 * read into the page cache: a server whose RAM fits the database), and the
 * reads run on a connection store_open_at opens as central does, after
 * HB_PG_WARM asks of households not measured (the connection's own
 * warm-up: its catalog entries and plans).
 *
 * usage: histbench DB ITEM_ROWS [QUERIES] [SECONDS]
 *        histbench --dsn DSN ITEM_ROWS [QUERIES] [SECONDS]
 */
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "benchpg.h"
#include "benchutil.h"
#include "deident.h"
#include "gtin.h"
#include "history.h"
#include "store.h"

#define HB_ITEMS 20
#define HB_PER_HH 200
#define HB_TXN_BASKETS 20000
#define HB_YEAR_MS (365LL * 86400 * 1000)
#define HB_START_MS 1735689600000LL /* 2025-01-01 */
#define HB_MAX_QUERIES 100000
#define HB_PATH_MAX 1024
#define HB_PG_WARM 6    /* asks of each kind before the timed ones (PostgreSQL) */
#define HB_PG_FORMAT "2" /* bench_meta.complete of a PostgreSQL load (tests/bench/pg.sh) */

static uint64_t hb_rng = 0x9E3779B97F4A7C15ULL;

static uint64_t hb_rand(void)
{
	/* xorshift64*: the loader needs speed, not secrecy. */
	hb_rng ^= hb_rng >> 12;
	hb_rng ^= hb_rng << 25;
	hb_rng ^= hb_rng >> 27;
	return hb_rng * 0x2545F4914F6CDD1DULL;
}

static int hb_exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "histbench: %.60s: %s\n", sql, sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* The item count a completed load recorded, or -1. */
static long hb_meta(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long n = -1;
	struct stat sb;

	if (stat(path, &sb) != 0)
		return -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT items FROM bench_meta WHERE complete = 1", -1, &st,
			       NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* A UUIDv7 text for a basket at ts: time-ordered, so the txn index is
 * appended to as the loader walks forward in time. */
static void hb_txn(char out[37], int64_t ts, uint64_t seq)
{
	uint64_t r = hb_rand();

	snprintf(out, 37, "%08llx-%04llx-7%03llx-%04llx-%012llx",
		 (unsigned long long)(((uint64_t)ts >> 16) & 0xffffffffULL),
		 (unsigned long long)((uint64_t)ts & 0xffff),
		 (unsigned long long)(seq & 0xfff), (unsigned long long)(0x8000 | (r & 0x3fff)),
		 (unsigned long long)((r >> 16) & 0xffffffffffffULL));
}

static int hb_load(const char *path, long items)
{
	char p2[HB_PATH_MAX + 8], txn[37], (*hh)[DEIDENT_ID_LEN + 1] = NULL;
	char gtins[64][GTIN_LEN + 1];
	long baskets = items / HB_ITEMS, nhh = baskets / HB_PER_HH;
	sqlite3 *db = NULL;
	sqlite3_stmt *sh = NULL, *sb = NULL, *si = NULL;
	struct store *s = NULL;
	uint64_t t0 = bench_now_ns();
	int rc = -1;
	pos_err e;

	if (nhh < 1)
		nhh = 1;
	unlink(path);
	snprintf(p2, sizeof p2, "%s-wal", path);
	unlink(p2);
	snprintf(p2, sizeof p2, "%s-shm", path);
	unlink(p2);
	if (store_open(path, &s, &e) < 0) {
		fprintf(stderr, "histbench: %s\n", e.msg);
		return -1;
	}
	store_close(s);
	if (!(hh = calloc((size_t)nhh, sizeof *hh)))
		return -1;
	for (int i = 0; i < 64; i++) {
		char d[14];
		snprintf(d, sizeof d, "095200%07d", 10000 + i * 131);
		snprintf(gtins[i], sizeof gtins[i], "%s%d", d, gtin_check_digit(d, 13));
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    hb_exec(db, "PRAGMA synchronous=OFF") < 0 ||
	    hb_exec(db, "PRAGMA cache_size=-262144") < 0 ||
	    hb_exec(db, "CREATE TABLE IF NOT EXISTS bench_meta (items INTEGER, complete INTEGER)") <
		    0 ||
	    sqlite3_prepare_v2(db, "INSERT INTO households(hhid, created) VALUES (?1, ?2)", -1,
			       &sh, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO baskets(txn, ts, store, terminal, hhid, deident, digest) "
			       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
			       -1, &sb, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO items(basket_id, seq, gtin, qty, price_cents) "
			       "VALUES (?1, ?2, ?3, ?4, ?5)",
			       -1, &si, NULL) != SQLITE_OK)
		goto out;
	if (hb_exec(db, "BEGIN") < 0)
		goto out;
	for (long i = 0; i < nhh; i++) {
		if (deident_hhid_new(hh[i], &e) < 0)
			goto out;
		sqlite3_bind_text(sh, 1, hh[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(sh, 2, HB_START_MS);
		if (sqlite3_step(sh) != SQLITE_DONE)
			goto out;
		sqlite3_reset(sh);
	}
	for (long b = 0; b < baskets; b++) {
		int64_t ts = HB_START_MS + (int64_t)((double)b * (double)HB_YEAR_MS / (double)baskets);
		uint64_t d[4] = { hb_rand(), hb_rand(), hb_rand(), hb_rand() };
		const char *h = hh[hb_rand() % (uint64_t)nhh];
		char dt[DEIDENT_ID_LEN + 1];
		sqlite3_int64 id;

		/* A DeIdentTID shaped from the hhid: any well-formed one will do. */
		snprintf(dt, sizeof dt, "dt_%s", h + 3);
		hb_txn(txn, ts, (uint64_t)b);
		sqlite3_bind_text(sb, 1, txn, -1, SQLITE_STATIC);
		sqlite3_bind_int64(sb, 2, ts);
		sqlite3_bind_text(sb, 3, "S1", -1, SQLITE_STATIC);
		sqlite3_bind_text(sb, 4, "T1", -1, SQLITE_STATIC);
		sqlite3_bind_text(sb, 5, h, -1, SQLITE_STATIC);
		sqlite3_bind_text(sb, 6, dt, -1, SQLITE_STATIC);
		sqlite3_bind_blob(sb, 7, d, 32, SQLITE_STATIC);
		if (sqlite3_step(sb) != SQLITE_DONE)
			goto out;
		sqlite3_reset(sb);
		id = sqlite3_last_insert_rowid(db);
		for (int i = 0; i < HB_ITEMS; i++) {
			uint64_t r = hb_rand();
			sqlite3_bind_int64(si, 1, id);
			sqlite3_bind_int(si, 2, i);
			sqlite3_bind_text(si, 3, gtins[r % 64], -1, SQLITE_STATIC);
			sqlite3_bind_int(si, 4, 1 + (int)((r >> 8) % 3));
			if ((r >> 16) % 10 == 0)
				sqlite3_bind_null(si, 5);
			else
				sqlite3_bind_int(si, 5, 49 + (int)((r >> 20) % 2000));
			if (sqlite3_step(si) != SQLITE_DONE)
				goto out;
			sqlite3_reset(si);
		}
		if ((b + 1) % HB_TXN_BASKETS == 0 && (hb_exec(db, "COMMIT") < 0 || hb_exec(db, "BEGIN") < 0))
			goto out;
	}
	{
		char sql[128];
		snprintf(sql, sizeof sql,
			 "UPDATE counters SET items = %ld; INSERT INTO bench_meta VALUES (%ld, 1)",
			 baskets * HB_ITEMS, items);
		if (hb_exec(db, sql) < 0 || hb_exec(db, "COMMIT") < 0 ||
		    hb_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)") < 0)
			goto out;
	}
	fprintf(stderr, "histbench: loaded %ld item rows (%ld baskets, %ld households) in %.1f s\n",
		baskets * HB_ITEMS, baskets, nhh, (double)(bench_now_ns() - t0) / 1e9);
	rc = 0;
out:
	if (rc < 0 && db)
		fprintf(stderr, "histbench: load: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(sh);
	sqlite3_finalize(sb);
	sqlite3_finalize(si);
	sqlite3_close(db);
	free(hh);
	return rc;
}

/* Reads the file through so the page cache holds it; returns seconds. */
static double hb_warm(const char *path)
{
	static char buf[1 << 20];
	uint64_t t0 = bench_now_ns();
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (read(fd, buf, sizeof buf) > 0)
		;
	close(fd);
	return (double)(bench_now_ns() - t0) / 1e9;
}

struct hb_count {
	long baskets, items;
	size_t bytes;
};

static int hb_walk(const struct store_basket *b, void *arg)
{
	struct hb_count *c = arg;

	c->baskets++;
	c->items += (long)b->n_items;
	return 0;
}

static int hb_sink(const void *buf, size_t len, void *arg)
{
	struct hb_count *c = arg;

	(void)buf;
	c->bytes += len;
	return 0;
}

/* Every household id, to draw from. */
static char (*hb_households(const char *path, long *n))[DEIDENT_ID_LEN + 1]
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char(*out)[DEIDENT_ID_LEN + 1] = NULL;
	long cap = 0;

	*n = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT hhid FROM households", -1, &st, NULL) != SQLITE_OK)
		goto out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		if (*n == cap) {
			long nc = cap ? cap * 2 : 1024;
			void *p = realloc(out, (size_t)nc * sizeof *out);
			if (!p)
				break;
			out = p;
			cap = nc;
		}
		snprintf(out[*n], sizeof out[*n], "%s", t ? (const char *)t : "");
		(*n)++;
	}
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

/* ---------------------------------------------------------------- PostgreSQL */

/* The item count a completed load recorded on dsn, or -1. A load's
 * complete is HB_PG_FORMAT, so a database loaded before its rows took
 * their present shape (baskets.items filled) is loaded anew. */
static long hb_pg_meta(const char *dsn)
{
	PGconn *c = PQconnectdb(dsn);
	PGresult *r = NULL;
	long n = -1;

	if (PQstatus(c) == CONNECTION_OK &&
	    (r = PQexec(c, "SELECT items FROM bench_meta WHERE complete = " HB_PG_FORMAT)) &&
	    PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return n;
}

/* The same rows hb_load writes, by COPY, into the empty database dsn. */
static int hb_pg_load(const char *dsn, long items)
{
	struct store_where w = { .backend = STORE_POSTGRESQL, .dsn = dsn };
	char(*hh)[DEIDENT_ID_LEN + 1] = NULL, gtins[64][GTIN_LEN + 1], txn[37];
	long baskets = items / HB_ITEMS, nhh = baskets / HB_PER_HH;
	struct bench_copy bh = { 0 }, bt = { 0 }, bb = { 0 }, bi = { 0 };
	struct store *s = NULL;
	PGconn *c = NULL;
	uint64_t t0 = bench_now_ns();
	int rc = -1;
	pos_err e = { 0 };

	if (nhh < 1)
		nhh = 1;
	if (store_open_at(&w, &s, &e) < 0)
		goto out;
	/* Every month of the year the baskets span, as central would make
	 * them on its first basket of each. */
	for (int64_t ts = HB_START_MS; ts <= HB_START_MS + HB_YEAR_MS; ts += 20LL * 86400 * 1000)
		if (store_partition_for(s, ts, &e) < 0)
			goto out;
	store_close(s);
	s = NULL;
	if (!(hh = calloc((size_t)nhh, sizeof *hh)))
		goto out;
	for (int i = 0; i < 64; i++) {
		char d[14];
		snprintf(d, sizeof d, "095200%07d", 10000 + i * 131);
		snprintf(gtins[i], sizeof gtins[i], "%s%d", d, gtin_check_digit(d, 13));
	}
	c = PQconnectdb(dsn);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "histbench: %s", PQerrorMessage(c));
		goto out;
	}
	if (bench_pg_exec(c, "histbench", "SET synchronous_commit = off") < 0 ||
	    bench_pg_exec(c, "histbench", "CREATE TABLE IF NOT EXISTS bench_meta (items BIGINT, complete INTEGER)") < 0 ||
	    bench_pg_exec(c, "histbench", "BEGIN") < 0)
		goto out;
	for (long i = 0; i < nhh; i++) {
		if (deident_hhid_new(hh[i], &e) < 0 ||
		    bench_copy_putf(&bh, "%s\t%lld\n", hh[i], (long long)HB_START_MS) < 0)
			goto out;
	}
	if (bench_copy_send(c, "histbench", "COPY households(hhid, created) FROM STDIN", &bh) < 0)
		goto out;
	for (long b = 0; b < baskets; b++) {
		long long ts = HB_START_MS + (int64_t)((double)b * (double)HB_YEAR_MS / (double)baskets);
		uint64_t d[4] = { hb_rand(), hb_rand(), hb_rand(), hb_rand() };
		const char *h = hh[hb_rand() % (uint64_t)nhh];
		char hex[65], packed[HB_ITEMS * 48];
		size_t pk = 0;

		for (int k = 0; k < 32; k++)
			snprintf(hex + 2 * k, 3, "%02x", ((const unsigned char *)d)[k]);
		hb_txn(txn, ts, (uint64_t)b);
		for (int i = 0; i < HB_ITEMS; i++) {
			uint64_t r = hb_rand();
			char price[16] = "\\N";
			int q = 1 + (int)((r >> 8) % 3);
			if ((r >> 16) % 10 != 0)
				snprintf(price, sizeof price, "%d", 49 + (int)((r >> 20) % 2000));
			if (bench_copy_putf(&bi, "%ld\t%lld\t%d\t%s\t%d\t%s\n", b + 1, ts, i, gtins[r % 64], q,
				   price) < 0)
				goto out;
			/* baskets.items as the store's insert packs it */
			pk += (size_t)snprintf(packed + pk, sizeof packed - pk, "%d,%d,%s,%zu:%s", i, q,
					       price[0] == '\\' ? "" : price, strlen(gtins[r % 64]),
					       gtins[r % 64]);
		}
		if (bench_copy_putf(&bt, "%s\t%ld\t%lld\t\\\\x%s\n", txn, b + 1, ts, hex) < 0 ||
		    bench_copy_putf(&bb, "%ld\t%s\t%lld\tS1\tT1\t%s\tdt_%s\t\\\\x%s\t%s\n", b + 1, txn, ts,
			   h, h + 3, hex, packed) < 0)
			goto out;
		if ((b + 1) % HB_TXN_BASKETS == 0 || b + 1 == baskets) {
			if (bench_copy_send(c, "histbench", "COPY basket_txns(txn, id, ts, digest) FROM STDIN", &bt) < 0 ||
			    bench_copy_send(c, "histbench",
				    "COPY baskets(id, txn, ts, store, terminal, hhid, deident, digest, "
				    "items) FROM STDIN",
				    &bb) < 0 ||
			    bench_copy_send(c, "histbench",
				    "COPY items(basket_id, ts, seq, gtin, qty, price_cents) FROM STDIN",
				    &bi) < 0 ||
			    bench_pg_exec(c, "histbench", "COMMIT") < 0 || bench_pg_exec(c, "histbench", "BEGIN") < 0)
				goto out;
		}
	}
	{
		char sql[256];
		snprintf(sql, sizeof sql,
			 "SELECT setval('baskets_id_seq', %ld); UPDATE counters SET items = %ld; "
			 "INSERT INTO bench_meta VALUES (%ld, " HB_PG_FORMAT ")",
			 baskets + 1, baskets * HB_ITEMS, items);
		if (bench_pg_exec(c, "histbench", sql) < 0 || bench_pg_exec(c, "histbench", "COMMIT") < 0 ||
		    bench_pg_exec(c, "histbench", "VACUUM (ANALYZE) basket_txns, baskets, items, households") < 0)
			goto out;
	}
	fprintf(stderr, "histbench: loaded %ld item rows (%ld baskets, %ld households) by COPY in "
			"%.1f s\n",
		baskets * HB_ITEMS, baskets, nhh, (double)(bench_now_ns() - t0) / 1e9);
	rc = 0;
out:
	if (rc < 0 && e.msg[0])
		fprintf(stderr, "histbench: load: %s\n", e.msg);
	store_close(s);
	PQfinish(c);
	free(hh);
	free(bh.p);
	free(bt.p);
	free(bb.p);
	free(bi.p);
	return rc;
}

/* Reads every table and index of the store's baskets, items and
 * households into the shared buffers (pg_prewarm); returns seconds, or -1
 * when pg_prewarm is missing. */
static double hb_pg_warm(const char *dsn)
{
	PGconn *c = PQconnectdb(dsn);
	uint64_t t0 = bench_now_ns();
	int rc = -1;

	if (PQstatus(c) == CONNECTION_OK && bench_pg_exec(c, "histbench", "CREATE EXTENSION IF NOT EXISTS pg_prewarm") == 0)
		rc = bench_pg_exec(c, "histbench", "SELECT sum(pg_prewarm(c.oid::regclass, 'buffer')) FROM pg_class c "
			      "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = "
			      "'public' AND c.relkind IN ('r', 'i') AND (c.relname LIKE 'baskets%' "
			      "OR c.relname LIKE 'items%' OR c.relname LIKE 'households%')");
	PQfinish(c);
	return rc < 0 ? -1 : (double)(bench_now_ns() - t0) / 1e9;
}

static char (*hb_pg_households(const char *dsn, long *n))[DEIDENT_ID_LEN + 1]
{
	PGconn *c = PQconnectdb(dsn);
	PGresult *r = NULL;
	char(*out)[DEIDENT_ID_LEN + 1] = NULL;

	*n = 0;
	if (PQstatus(c) == CONNECTION_OK && (r = PQexec(c, "SELECT hhid FROM households")) &&
	    PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 &&
	    (out = calloc((size_t)PQntuples(r), sizeof *out))) {
		for (int i = 0; i < PQntuples(r); i++)
			snprintf(out[i], sizeof out[i], "%s", PQgetvalue(r, i, 0));
		*n = PQntuples(r);
	}
	PQclear(r);
	PQfinish(c);
	return out;
}

int main(int argc, char **argv)
{
	long items, queries = 200, nhh = 0, got_b = 0, got_i = 0;
	double secs = bench_env_num("BENCH_SECONDS", 10), load_s = 0;
	char(*hh)[DEIDENT_ID_LEN + 1] = NULL;
	uint32_t *walk = NULL, *json = NULL;
	struct store *s = NULL;
	size_t nq = 0, bytes = 0;
	uint64_t t0;
	struct store_where w = { .backend = STORE_SQLITE };
	const char *dsn = NULL;
	int reused = 0, rc = 1;
	pos_err e = { 0 };

	if (argc > 2 && strcmp(argv[1], "--dsn") == 0) {
		dsn = argv[2];
		argc--;
		argv++;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: histbench DB ITEM_ROWS [QUERIES] [SECONDS]\n"
				"       histbench --dsn DSN ITEM_ROWS [QUERIES] [SECONDS]\n");
		return 2;
	}
	items = strtol(argv[2], NULL, 10);
	if (argc > 3)
		queries = strtol(argv[3], NULL, 10);
	if (argc > 4)
		secs = strtod(argv[4], NULL);
	if (items < HB_ITEMS * HB_PER_HH || queries < 1 || queries > HB_MAX_QUERIES) {
		fprintf(stderr, "histbench: need ITEM_ROWS >= %d and 1..%d queries\n",
			HB_ITEMS * HB_PER_HH, HB_MAX_QUERIES);
		return 2;
	}
	hb_rng ^= bench_now_ns();
	if ((dsn ? hb_pg_meta(dsn) : hb_meta(argv[1])) == items) {
		reused = 1;
	} else {
		t0 = bench_now_ns();
		if ((dsn ? hb_pg_load(dsn, items) : hb_load(argv[1], items)) < 0)
			return 1;
		load_s = (double)(bench_now_ns() - t0) / 1e9;
	}
	if (dsn) {
		if (hb_pg_warm(dsn) < 0)
			fprintf(stderr, "histbench: no pg_prewarm: the first reads come from disk\n");
		w.backend = STORE_POSTGRESQL;
		w.dsn = dsn;
		hh = hb_pg_households(dsn, &nhh);
	} else {
		hb_warm(argv[1]);
		w.path = argv[1];
		hh = hb_households(argv[1], &nhh);
	}
	walk = calloc((size_t)queries, sizeof *walk);
	json = calloc((size_t)queries, sizeof *json);
	if (!hh || nhh < 1 || !walk || !json || store_open_at(&w, &s, &e) < 0) {
		fprintf(stderr, "histbench: cannot open the store: %s\n", e.msg);
		goto out;
	}
	/* Households in random order, each once: what is measured is a first
	 * ask, not SQLite's page cache answering an earlier one. */
	for (long i = nhh - 1; i > 0; i--) {
		long j = (long)(hb_rand() % (uint64_t)(i + 1));
		char tmp[DEIDENT_ID_LEN + 1];
		memcpy(tmp, hh[i], sizeof tmp);
		memcpy(hh[i], hh[j], sizeof tmp);
		memcpy(hh[j], tmp, sizeof tmp);
	}
	/* PostgreSQL: the connection's first asks load the catalog entries of
	 * every month's partitions and indexes into its backend and plan each
	 * statement anew five times before its generic plan: 4-12 ms each,
	 * once per connection, which central keeps open. Households from the
	 * far end of the shuffle, never measured, pay that first. */
	for (long k = 0; dsn && k < HB_PG_WARM && nhh - 1 - k > 2 * queries; k++) {
		struct hb_count c = { 0 };
		if (store_history(s, hh[nhh - 1 - k], 0, 0, hb_walk, &c, &e) < 0 ||
		    history_write(s, hh[nhh - 1 - k], 0, 0, HISTORY_JSON, hb_sink, &c, &e) < 0)
			goto fail;
	}
	t0 = bench_now_ns();
	/* Each query reads two households (2 nq and 2 nq + 1): both must be
	 * in hh, or an odd count would read one past its end. */
	for (nq = 0; nq < (size_t)queries && (long)nq * 2 + 1 < nhh; nq++) {
		struct hb_count c = { 0 };
		uint64_t a = bench_now_ns(), b;
		if (bench_now_ns() - t0 > (uint64_t)(secs * 1e9))
			break;
		if (store_history(s, hh[2 * nq], 0, 0, hb_walk, &c, &e) < 0)
			goto fail;
		b = bench_now_ns();
		walk[nq] = (uint32_t)((b - a) / 1000);
		got_b += c.baskets;
		got_i += c.items;
		c = (struct hb_count){ 0 };
		a = bench_now_ns();
		if (history_write(s, hh[2 * nq + 1], 0, 0, HISTORY_JSON, hb_sink, &c, &e) < 0)
			goto fail;
		json[nq] = (uint32_t)((bench_now_ns() - a) / 1000);
		bytes += c.bytes;
	}
	qsort(walk, nq, sizeof *walk, bench_cmp_u32);
	qsort(json, nq, sizeof *json, bench_cmp_u32);
	printf("history%s, %ld item rows (%ld households%s%s):\n", dsn ? " on PostgreSQL" : "",
	       items, nhh,
	       reused ? ", database reused" : "", load_s > 0 ? ", loaded now" : "");
	if (load_s > 0)
		printf("  load: %.1f s (%.0f item rows/s)\n", load_s, (double)items / load_s);
	printf("  store_history: p50 %u us  p99 %u us  max %u us  (%zu households, %.0f baskets and "
	       "%.0f items each)\n",
	       bench_quantile(walk, nq, 0.5), bench_quantile(walk, nq, 0.99),
	       bench_quantile(walk, nq, 1.0), nq, nq ? (double)got_b / (double)nq : 0,
	       nq ? (double)got_i / (double)nq : 0);
	printf("  history_write JSON: p50 %u us  p99 %u us  max %u us  (%.0f KB each)\n",
	       bench_quantile(json, nq, 0.5), bench_quantile(json, nq, 0.99),
	       bench_quantile(json, nq, 1.0), nq ? (double)bytes / 1024.0 / (double)nq : 0);
	printf("RESULT {\"history_%s%ld\":{\"items\":%ld,\"households\":%ld,\"queries\":%zu,"
	       "\"load_s\":%.2f,\"walk_p50_us\":%u,\"walk_p99_us\":%u,\"json_p50_us\":%u,"
	       "\"json_p99_us\":%u,\"baskets_per_hh\":%.1f}}\n",
	       dsn ? "pg_" : "", items, items, nhh, nq, load_s, bench_quantile(walk, nq, 0.5),
	       bench_quantile(walk, nq, 0.99), bench_quantile(json, nq, 0.5),
	       bench_quantile(json, nq, 0.99), nq ? (double)got_b / (double)nq : 0);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "histbench: %s\n", e.msg);
out:
	store_close(s);
	free(hh);
	free(walk);
	free(json);
	return rc;
}
