/*
 * The PostgreSQL floor of ingest: how fast the same rows the API stores
 * for a basket (a basket_txns row, a baskets row, 20 item rows, in the
 * schema, partitions, indexes and triggers store_open_at makes) go in
 * through COPY, when nothing but PostgreSQL stands in the way.
 *
 * Baskets go in 1,000 a transaction (the size of central's group commit at
 * full load): three COPYs (basket_txns, baskets, items) and a commit each,
 * until SECONDS passed. The month's partitions are made before the clock
 * starts, as central makes them once per month and connection.
 *
 * Then, for as long again, store_put_baskets in batches of 1,000 (the
 * store's own path: duplicate check by txn, household check, partitions,
 * counters), the most central's group-committing writer could reach.
 *
 * DSN names an empty database (tests/pg/pgctl fresh); the rows stay.
 *
 * usage: pgfloor DSN [SECONDS]
 */
#include <libpq-fe.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchpg.h"
#include "benchutil.h"
#include "deident.h"
#include "gtin.h"
#include "store.h"
#include "uuid.h"

#define PF_ITEMS 20
#define PF_BATCH 1000
#define PF_MAX_BASKETS 5000000
#define PF_TS0 1700000000000LL

static void pf_hex(char *out, const unsigned char *d, size_t n)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[2 * n] = '\0';
}

/* store_put_baskets in batches of PF_BATCH until secs passed. */
static double pf_store(const char *dsn, const char *hhid, const char *dtid,
		       char gtins[PF_ITEMS][GTIN_LEN + 1], double secs, long *n_out)
{
	struct store_where w = { .backend = STORE_POSTGRESQL, .dsn = dsn };
	struct store *s = NULL;
	struct store_basket *bs = calloc(PF_BATCH, sizeof *bs);
	struct store_item items[PF_ITEMS];
	enum store_put_result res[PF_BATCH];
	uint64_t t0, limit = (uint64_t)(secs * 1e9);
	double rate = -1;
	long n = 0;
	pos_err e = { 0 };

	if (!bs || store_open_at(&w, &s, &e) < 0)
		goto out;
	for (int i = 0; i < PF_ITEMS; i++) {
		memcpy(items[i].gtin, gtins[i], sizeof items[i].gtin);
		items[i].qty = 1 + i % 3;
		items[i].price_cents = 99 + 50 * i;
	}
	t0 = bench_now_ns();
	while (n < PF_MAX_BASKETS && bench_now_ns() - t0 < limit) {
		for (int i = 0; i < PF_BATCH; i++) {
			struct store_basket *b = &bs[i];
			if (uuid_v7(b->txn, &e) < 0 || RAND_bytes(b->digest, 32) != 1)
				goto out;
			b->ts_ms = PF_TS0 + n + i;
			snprintf(b->store, sizeof b->store, "S1");
			snprintf(b->terminal, sizeof b->terminal, "T1");
			memcpy(b->hhid, hhid, sizeof b->hhid);
			memcpy(b->deident, dtid, sizeof b->deident);
			b->items = items;
			b->n_items = PF_ITEMS;
		}
		if (store_put_baskets(s, bs, PF_BATCH, res, &e) < 0)
			goto out;
		n += PF_BATCH;
	}
	rate = (double)n / ((double)(bench_now_ns() - t0) / 1e9);
	*n_out = n;
out:
	if (rate < 0)
		fprintf(stderr, "pgfloor: store_put_baskets: %s\n", e.msg);
	store_close(s);
	free(bs);
	return rate;
}

int main(int argc, char **argv)
{
	struct store_where w = { .backend = STORE_POSTGRESQL };
	struct bench_copy tx = { 0 }, bk = { 0 }, it = { 0 };
	char gtins[PF_ITEMS][GTIN_LEN + 1], hhid[DEIDENT_ID_LEN + 1], dtid[DEIDENT_ID_LEN + 1];
	char packed[PF_ITEMS * 48];
	size_t pk = 0;
	unsigned char idx[DEIDENT_INDEX_LEN];
	double secs = bench_env_num("BENCH_SECONDS", 10), rate, st;
	struct store *s = NULL;
	PGconn *c = NULL;
	uint64_t t0, limit;
	long n = 0, ns = 0;
	int rc = 1;
	pos_err e = { 0 };

	if (argc < 2) {
		fprintf(stderr, "usage: pgfloor DSN [SECONDS]\n");
		return 2;
	}
	if (argc > 2)
		secs = strtod(argv[2], NULL);
	if (secs < 1)
		secs = 1;
	limit = (uint64_t)(secs / 2 * 1e9);
	for (int i = 0; i < PF_ITEMS; i++) {
		char d[14];
		snprintf(d, sizeof d, "0952000%06d", 1000 + i * 37);
		snprintf(gtins[i], sizeof gtins[i], "%s%d", d, gtin_check_digit(d, 13));
	}
	/* Every basket's items, packed into its row as the store's insert
	 * packs them (baskets.items): the same for every basket here. */
	for (int k = 0; k < PF_ITEMS; k++)
		pk += (size_t)snprintf(packed + pk, sizeof packed - pk, "%d,%d,%d,%zu:%s", k,
				       1 + k % 3, 99 + 50 * k, strlen(gtins[k]), gtins[k]);
	snprintf(dtid, sizeof dtid, "dt_%s", "0123456789ABCDEFGHJKMNPQR0");
	/* The schema as central makes it, and one household. */
	w.dsn = argv[1];
	if (RAND_bytes(idx, sizeof idx) != 1 || store_open_at(&w, &s, &e) < 0 ||
	    deident_hhid_new(hhid, &e) < 0 || store_link(s, idx, hhid, &e) < 0 ||
	    store_partition_for(s, PF_TS0, &e) < 0) {
		fprintf(stderr, "pgfloor: %s\n", e.msg[0] ? e.msg : "setup failed");
		goto out;
	}
	store_close(s);
	s = NULL;
	c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pgfloor: %s", PQerrorMessage(c));
		goto out;
	}
	/* The same durability central runs with. */
	if (bench_pg_exec(c, "pgfloor", "SET synchronous_commit = on") < 0)
		goto out;
	t0 = bench_now_ns();
	while (n < PF_MAX_BASKETS && bench_now_ns() - t0 < limit) {
		char line[512], txn[UUID_STR_LEN + 1], hex[65];
		unsigned char digest[32];
		int len;

		for (long i = n + 1; i <= n + PF_BATCH; i++) {
			long long ts = PF_TS0 + i;
			if (uuid_v7(txn, &e) < 0 || RAND_bytes(digest, sizeof digest) != 1)
				goto out;
			pf_hex(hex, digest, sizeof digest);
			len = snprintf(line, sizeof line, "%s\t%ld\t%lld\t\\\\x%s\n", txn, i, ts, hex);
			if (bench_copy_put(&tx, line, (size_t)len) < 0)
				goto out;
			len = snprintf(line, sizeof line, "%ld\t%s\t%lld\tS1\tT1\t%s\t%s\t\\\\x%s\t", i,
				       txn, ts, hhid, dtid, hex);
			if (bench_copy_put(&bk, line, (size_t)len) < 0 || bench_copy_put(&bk, packed, pk) < 0 ||
			    bench_copy_put(&bk, "\n", 1) < 0)
				goto out;
			for (int k = 0; k < PF_ITEMS; k++) {
				len = snprintf(line, sizeof line, "%ld\t%lld\t%d\t%s\t%d\t%d\n", i, ts,
					       k, gtins[k], 1 + k % 3, 99 + 50 * k);
				if (bench_copy_put(&it, line, (size_t)len) < 0)
					goto out;
			}
		}
		if (bench_pg_exec(c, "pgfloor", "BEGIN") < 0 ||
		    bench_copy_send(c, "pgfloor", "COPY basket_txns(txn, id, ts, digest) FROM STDIN", &tx) < 0 ||
		    bench_copy_send(c, "pgfloor",
			    "COPY baskets(id, txn, ts, store, terminal, hhid, deident, digest, items) "
			    "FROM STDIN",
			    &bk) < 0 ||
		    bench_copy_send(c, "pgfloor", "COPY items(basket_id, ts, seq, gtin, qty, price_cents) FROM STDIN",
			    &it) < 0)
			goto out;
		snprintf(line, sizeof line, "UPDATE counters SET items = items + %d",
			 PF_BATCH * PF_ITEMS);
		if (bench_pg_exec(c, "pgfloor", line) < 0 || bench_pg_exec(c, "pgfloor", "COMMIT") < 0)
			goto out;
		n += PF_BATCH;
	}
	rate = (double)n / ((double)(bench_now_ns() - t0) / 1e9);
	{
		char sql[96];
		snprintf(sql, sizeof sql, "SELECT setval('baskets_id_seq', %ld)", n + 1);
		if (bench_pg_exec(c, "pgfloor", sql) < 0)
			goto out;
	}
	PQfinish(c);
	c = NULL;
	if ((st = pf_store(argv[1], hhid, dtid, gtins, secs / 2, &ns)) < 0)
		goto out;
	printf("PostgreSQL floor, 20-item baskets, store schema (partitions, indexes, triggers):\n");
	printf("  COPY, %d baskets a transaction: %8.0f baskets/s (%.0f item rows/s; %ld baskets)\n",
	       PF_BATCH, rate, rate * PF_ITEMS, n);
	printf("  store_put_baskets, %d a batch:  %8.0f baskets/s (%ld baskets)\n", PF_BATCH, st, ns);
	printf("RESULT {\"pgfloor\":{\"copy_baskets_per_s\":%.1f,\"copy_n\":%ld,"
	       "\"store_batch_baskets_per_s\":%.1f,\"store_n\":%ld}}\n",
	       rate, n, st, ns);
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "pgfloor: failed after %ld baskets\n", n);
	store_close(s);
	PQfinish(c);
	free(tx.p);
	free(bk.p);
	free(it.p);
	return rc;
}
