/*
 * The SQLite floor of ingest: how fast the same basket rows the API stores
 * (a baskets row, 20 item rows, the same schema, indexes and triggers, made
 * by store_open) go in when nothing but SQLite stands in the way.
 *
 *   bulk   raw prepared INSERTs in one transaction (the plain floor)
 *   store  store_put_baskets in batches of 1,000 (the store's own path:
 *          duplicate lookup by txn, household check, item counter), the
 *          most central's group-committing writer could reach
 *
 * Each part runs for about SECONDS/2 (one commit at the end for bulk), on a
 * fresh database in DIR, and prints baskets/s.
 *
 * usage: sqlfloor DIR [SECONDS]
 * SF_BATCH=N (1..1000): store_put_baskets in batches of N instead, e.g. the
 * group sizes the API's writer commits (tens of baskets at 64 connections).
 */
#include <openssl/rand.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchutil.h"
#include "deident.h"
#include "gtin.h"
#include "store.h"
#include "uuid.h"

#define SF_ITEMS 20
#define SF_BATCH 1000
#define SF_MAX_BASKETS 2000000
#define SF_PATH_MAX 1024

struct sf_rows {
	char gtins[SF_ITEMS][GTIN_LEN + 1];
	char hhid[DEIDENT_ID_LEN + 1];
	char dtid[DEIDENT_ID_LEN + 1];
};

static int sf_exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "sqlfloor: %s: %s\n", sql, sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* A fresh database with the store's schema and one household. */
static int sf_fresh(const char *path, struct sf_rows *r)
{
	char p2[SF_PATH_MAX + 8];
	struct store *s = NULL;
	unsigned char idx[DEIDENT_INDEX_LEN];
	pos_err e;
	int rc;

	unlink(path);
	snprintf(p2, sizeof p2, "%s-wal", path);
	unlink(p2);
	snprintf(p2, sizeof p2, "%s-shm", path);
	unlink(p2);
	if (RAND_bytes(idx, sizeof idx) != 1)
		return -1;
	rc = store_open(path, &s, &e);
	if (rc == 0)
		rc = deident_hhid_new(r->hhid, &e);
	if (rc == 0)
		rc = store_link(s, idx, r->hhid, &e);
	store_close(s);
	if (rc < 0)
		fprintf(stderr, "sqlfloor: %s\n", e.msg);
	return rc;
}

static void sf_rows_init(struct sf_rows *r)
{
	for (int i = 0; i < SF_ITEMS; i++) {
		char d[14];
		snprintf(d, sizeof d, "0952000%06d", 1000 + i * 37);
		snprintf(r->gtins[i], sizeof r->gtins[i], "%s%d", d, gtin_check_digit(d, 13));
	}
	/* Any well-formed DeIdentTID: the store does not recompute it. */
	snprintf(r->dtid, sizeof r->dtid, "dt_%s", "0123456789ABCDEFGHJKMNPQR0");
}

/* Raw INSERTs in one transaction until secs passed; returns baskets/s. */
static double sf_bulk(const char *path, const struct sf_rows *r, double secs, long *n_out)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *b = NULL, *it = NULL;
	unsigned char digest[32];
	char txn[UUID_STR_LEN + 1];
	uint64_t t0, limit = (uint64_t)(secs * 1e9);
	double rate = -1;
	long n = 0;
	pos_err e;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		goto out;
	/* The same durability the store uses; one commit, so it hardly matters. */
	if (sf_exec(db, "PRAGMA synchronous=FULL") < 0 ||
	    sf_exec(db, "PRAGMA cache_size=-32768") < 0 ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO baskets(txn, ts, store, terminal, hhid, deident, digest) "
			       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
			       -1, &b, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO items(basket_id, seq, gtin, qty, price_cents) "
			       "VALUES (?1, ?2, ?3, ?4, ?5)",
			       -1, &it, NULL) != SQLITE_OK)
		goto out;
	t0 = bench_now_ns();
	if (sf_exec(db, "BEGIN") < 0)
		goto out;
	while (n < SF_MAX_BASKETS && (n % 256 != 0 || bench_now_ns() - t0 < limit)) {
		sqlite3_int64 id;
		if (uuid_v7(txn, &e) < 0 || RAND_bytes(digest, sizeof digest) != 1)
			goto out;
		sqlite3_bind_text(b, 1, txn, -1, SQLITE_STATIC);
		sqlite3_bind_int64(b, 2, 1700000000000LL + n);
		sqlite3_bind_text(b, 3, "S1", -1, SQLITE_STATIC);
		sqlite3_bind_text(b, 4, "T1", -1, SQLITE_STATIC);
		sqlite3_bind_text(b, 5, r->hhid, -1, SQLITE_STATIC);
		sqlite3_bind_text(b, 6, r->dtid, -1, SQLITE_STATIC);
		sqlite3_bind_blob(b, 7, digest, 32, SQLITE_STATIC);
		if (sqlite3_step(b) != SQLITE_DONE)
			goto out;
		sqlite3_reset(b);
		id = sqlite3_last_insert_rowid(db);
		for (int i = 0; i < SF_ITEMS; i++) {
			sqlite3_bind_int64(it, 1, id);
			sqlite3_bind_int(it, 2, i);
			sqlite3_bind_text(it, 3, r->gtins[i], -1, SQLITE_STATIC);
			sqlite3_bind_int(it, 4, 1 + i % 3);
			sqlite3_bind_int(it, 5, 99 + 50 * i);
			if (sqlite3_step(it) != SQLITE_DONE)
				goto out;
			sqlite3_reset(it);
		}
		n++;
	}
	{
		char sql[96];
		snprintf(sql, sizeof sql, "UPDATE counters SET items = items + %ld", n * SF_ITEMS);
		if (sf_exec(db, sql) < 0 || sf_exec(db, "COMMIT") < 0)
			goto out;
	}
	rate = (double)n / ((double)(bench_now_ns() - t0) / 1e9);
	*n_out = n;
out:
	if (rate < 0 && db)
		fprintf(stderr, "sqlfloor: bulk insert: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(b);
	sqlite3_finalize(it);
	sqlite3_close(db);
	return rate;
}

/* store_put_baskets in batches of SF_BATCH until secs passed. */
static double sf_store(const char *path, const struct sf_rows *r, double secs, long *n_out)
{
	struct store *s = NULL;
	int batch = (int)bench_env_num("SF_BATCH", SF_BATCH);
	struct store_basket *bs = calloc(SF_BATCH, sizeof *bs);
	struct store_item items[SF_ITEMS];
	enum store_put_result res[SF_BATCH];
	uint64_t t0, limit = (uint64_t)(secs * 1e9);
	double rate = -1;
	long n = 0;
	pos_err e = { 0 };

	if (batch < 1 || batch > SF_BATCH)
		batch = SF_BATCH;
	if (!bs || store_open(path, &s, &e) < 0)
		goto out;
	for (int i = 0; i < SF_ITEMS; i++) {
		memcpy(items[i].gtin, r->gtins[i], sizeof items[i].gtin);
		items[i].qty = 1 + i % 3;
		items[i].price_cents = 99 + 50 * i;
	}
	t0 = bench_now_ns();
	while (n < SF_MAX_BASKETS && bench_now_ns() - t0 < limit) {
		for (int i = 0; i < batch; i++) {
			struct store_basket *b = &bs[i];
			if (uuid_v7(b->txn, &e) < 0 || RAND_bytes(b->digest, 32) != 1)
				goto out;
			b->ts_ms = 1700000000000LL + n + i;
			snprintf(b->store, sizeof b->store, "S1");
			snprintf(b->terminal, sizeof b->terminal, "T1");
			memcpy(b->hhid, r->hhid, sizeof b->hhid);
			memcpy(b->deident, r->dtid, sizeof b->deident);
			b->items = items;
			b->n_items = SF_ITEMS;
		}
		if (store_put_baskets(s, bs, (size_t)batch, res, &e) < 0)
			goto out;
		n += batch;
	}
	rate = (double)n / ((double)(bench_now_ns() - t0) / 1e9);
	*n_out = n;
out:
	if (rate < 0)
		fprintf(stderr, "sqlfloor: store_put_baskets: %s\n", e.msg);
	store_close(s);
	free(bs);
	return rate;
}

int main(int argc, char **argv)
{
	char path[SF_PATH_MAX];
	struct sf_rows r;
	double secs = bench_env_num("BENCH_SECONDS", 10), bulk, st;
	long nb = 0, ns = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: sqlfloor DIR [SECONDS]\n");
		return 2;
	}
	if (argc > 2)
		secs = strtod(argv[2], NULL);
	if (secs < 1)
		secs = 1;
	sf_rows_init(&r);
	snprintf(path, sizeof path, "%s/sqlfloor-bulk.db", argv[1]);
	if (sf_fresh(path, &r) < 0 || (bulk = sf_bulk(path, &r, secs / 2, &nb)) < 0)
		return 1;
	snprintf(path, sizeof path, "%s/sqlfloor-store.db", argv[1]);
	if (sf_fresh(path, &r) < 0 || (st = sf_store(path, &r, secs / 2, &ns)) < 0)
		return 1;
	/* Hundreds of megabytes that nothing reads again. */
	for (int i = 0; i < 2; i++) {
		const char *sfx[] = { "", "-wal", "-shm" };
		for (int j = 0; j < 3; j++) {
			snprintf(path, sizeof path, "%s/sqlfloor-%s.db%s", argv[1], i ? "store" : "bulk",
				 sfx[j]);
			unlink(path);
		}
	}
	printf("SQLite floor, 20-item baskets, store schema:\n");
	printf("  bulk insert, one transaction:     %8.0f baskets/s (%.0f item rows/s; %ld baskets)\n",
	       bulk, bulk * SF_ITEMS, nb);
	printf("  store_put_baskets, 1,000 a batch: %8.0f baskets/s (%ld baskets)\n", st, ns);
	printf("RESULT {\"sqlfloor\":{\"bulk_baskets_per_s\":%.1f,\"bulk_n\":%ld,"
	       "\"store_batch_baskets_per_s\":%.1f,\"store_n\":%ld}}\n",
	       bulk, nb, st, ns);
	return 0;
}
