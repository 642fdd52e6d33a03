#include "dbcli.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cconf.h"
#include "cli.h"
#include "db.h"
#include "store.h"
#include "store_impl.h" /* the store's own maintenance: its connections */
#include "timeutil.h"

/*
 * retention and store-copy: maintenance of the store itself, over db.h on
 * both sides so neither backend needs code of its own here.
 */

#define RETENTION_USAGE "usage: pos-central retention -c CONF --keep-months N\n"
#define COPY_USAGE "usage: pos-central store-copy -c CONF --to DSN\n"
#define KEEP_MONTHS_MAX 1200
#define COPY_SAMPLE 20   /* households whose histories are compared */
#define COPY_MONTHS 4096 /* distinct basket months a copy can meet */

static void dbcli_actor(char *out, size_t cap)
{
	char name[64];
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (getlogin_r(name, sizeof(name)) == 0 && name[0])
		snprintf(out, cap, "cli:%s", name);
	else if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_name)
		snprintf(out, cap, "cli:%.64s", res->pw_name);
	else
		snprintf(out, cap, "cli:uid%ld", (long)geteuid());
}

static bool dbcli_help(const char *a)
{
	return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

/* -c CONF and one more option taking a value; *val its value. */
static int dbcli_args(int argc, char **argv, const char *what, const char *opt,
		      const char *usage, const char **conf, const char **val)
{
	for (int i = 1; i < argc; i++) {
		const char **dst = NULL;

		if (dbcli_help(argv[i])) {
			fputs(usage, stdout);
			return 1;
		}
		if (strcmp(argv[i], "-c") == 0)
			dst = conf;
		else if (strcmp(argv[i], opt) == 0)
			dst = val;
		else
			return cli_usage_error(what, "unknown argument '%.40s'", argv[i]);
		if (i + 1 >= argc || !argv[i + 1][0])
			return cli_usage_error(what, "%s needs a value", argv[i]);
		if (*dst)
			return cli_usage_error(what, "%s given twice", argv[i]);
		*dst = argv[++i];
	}
	if (!*conf)
		return cli_usage_error(what, "-c CONF is required");
	if (!*val)
		return cli_usage_error(what, "%s is required", opt);
	return 0;
}

/* ---------------------------------------------------------------- retention */

int retention_main(int argc, char **argv)
{
	const char *conf = NULL, *keep = NULL;
	struct cconf cf;
	struct store *s = NULL;
	struct store_retention r;
	pos_err e = { 0 };
	char actor[96], detail[256], *end = NULL;
	int64_t before;
	long months;
	int rc;

	rc = dbcli_args(argc, argv, "retention", "--keep-months", RETENTION_USAGE, &conf, &keep);
	if (rc != 0)
		return rc == 1 ? CLI_OK : rc;
	months = strtol(keep, &end, 10);
	if (!end || *end || months < 1 || months > KEEP_MONTHS_MAX)
		return cli_usage_error("retention", "--keep-months must be a whole number from 1 to %d",
				       KEEP_MONTHS_MAX);
	/* This month and the months - 1 before it stay whole. */
	before = store_month_start(time_now_ms(), months - 1);
	if ((rc = cconf_load(conf, &cf, &e)) < 0 ||
	    (rc = cconf_store_open(&cf, CCONF_STORE_WRITE, &s, &e)) < 0 ||
	    (rc = store_retention(s, before, cf.store_retention_batch, &r, &e)) < 0)
		goto out;
	dbcli_actor(actor, sizeof(actor));
	snprintf(detail, sizeof(detail), "keep_months=%ld before=%lld baskets=%ld items=%ld months=%ld",
		 months, (long long)before, r.baskets, r.items, r.months);
	if ((rc = store_audit(s, actor, "retention", detail, &e)) < 0)
		goto out;
	printf("retention: %ld baskets and %ld items before %lld removed", r.baskets, r.items,
	       (long long)before);
	if (cf.backend == STORE_POSTGRESQL)
		printf(" (%ld monthly partitions dropped)", r.months);
	putchar('\n');
out:
	store_close(s);
	return rc < 0 ? cli_fail("retention", &e) : CLI_OK;
}

/* ---------------------------------------------------------------- store-copy */

/* A table copied as it is: columns and their kinds (i integer, t text,
 * b blob), in an order that satisfies PostgreSQL's foreign keys. */
struct copy_table {
	const char *name;
	const char *cols;
	const char *kinds;
	const char *src; /* the source's SELECT when not "SELECT cols FROM name" */
	const char *dst; /* the target's columns when not cols */
};

static const struct copy_table copy_tables[] = {
	{ "households", "hhid, created", "ti", NULL, NULL },
	{ "tid_index", "idx, hhid", "bt", NULL, NULL },
	{ "merged", "from_hhid, into_hhid", "tt", NULL, NULL },
	{ "baskets", "id, txn, ts, store, terminal, hhid, deident, digest", "itittttb", NULL, NULL },
	{ "basket_txns", "txn, id, ts, digest", "tiib", "SELECT txn, id, ts, digest FROM baskets",
	  NULL },
	{ "items", "basket_id, ts, seq, gtin, qty, price_cents", "iiitii",
	  "SELECT i.basket_id, b.ts, i.seq, i.gtin, i.qty, i.price_cents FROM items i "
	  "JOIN baskets b ON b.id = i.basket_id",
	  NULL },
	{ "audit", "id, ts, actor, action, detail", "iittt", NULL, NULL },
	{ "offers", "id, title, reward, target, valid_from, valid_to, created, ended", "ttttiiii",
	  NULL, NULL },
	{ "offer_devices", "id, token_hash, created, used", "ibii", NULL, NULL },
	{ "offer_codes", "code, offer_id, device_id, accepted", "ttii", NULL, NULL },
	{ "offer_redemptions", "code, basket_id, ts, store, hhid", "tiitt", NULL, NULL },
	{ "item_master", "gtin, name, vendor, category, updated", "tttti", NULL, NULL },
	{ "receipts", "hash, basket_id", "bi", NULL, NULL },
	{ "conversations", "id, kind, txn, store, state, created, updated", "itttiii", NULL, NULL },
	{ "messages", "id, conversation_id, ts, author, staff_id, body", "iiitit", NULL, NULL },
	{ "staff", "id, name, store, token_hash, created", "ittbi", NULL, NULL },
	{ "staff_sessions", "id_hash, staff_id, created, expires", "biii", NULL, NULL },
	{ "device_households", "device_id, hhid, linked", "iti", NULL, NULL },
	{ "vendors", "id, name, backend, token_hash, secret, created", "tttbti", NULL, NULL },
	{ "vendor_nonces", "vendor, ts, hash", "tib", NULL, NULL },
	{ "activities", "id, vendor, ref, txn, hhid, gtin, kind, at, state, created", "itttttitti",
	  NULL, NULL },
	{ "item_relations", "gtin_a, gtin_b, kind", "ttt", NULL, NULL },
	{ "vendor_events", "vendor, id, kind, gtin, activity, new_at, text, households, created",
	  "tttttitii", NULL, NULL },
	{ "hh_messages",
	  "id, hhid, vendor, event_id, kind, text, activity_id, options, state, chosen, created, "
	  "read, acted",
	  "itttttitttiii", NULL, NULL },
	{ "outbox", "id, kind, message_id, activity_id, body, idem, attempts, next, done",
	  "itiittiii", NULL, NULL },
	{ "sms_inbound", "sid, message_id", "ti", NULL, NULL },
	{ "conversation_phones", "conversation_id, phone_index, kid, sealed, updated", "ibtti",
	  NULL, NULL },
	{ "outbox_cursors", "name, position, attempts, last_error, updated", "tiiti", NULL, NULL },
	{ "terminals_seen", "store, terminal, last_ts", "tti", NULL, NULL },
};

#define COPY_NTABLES (sizeof(copy_tables) / sizeof(copy_tables[0]))

/* Identity columns moved past the ids copied. */
static const char *const copy_sequences[] = { "audit", "offer_devices", "conversations",
					      "messages", "staff", "activities",
					      "hh_messages", "outbox" };

struct copy {
	struct db *src, *dst;
	const struct copy_table *t;
	struct db_stmt *ins, *month;
	int64_t months[COPY_MONTHS]; /* month starts whose partitions exist */
	size_t n_months;
	long rows;
	pos_err *e;
};

/* The partition of the month holding ts, made once per month. */
static int copy_month(struct copy *c, int64_t ts)
{
	int64_t m = store_month_start(ts, 0);

	for (size_t i = 0; i < c->n_months; i++)
		if (c->months[i] == m)
			return 0;
	if (c->n_months == COPY_MONTHS)
		return err_set(c->e, POS_ETOOBIG, "baskets span more than %d months", COPY_MONTHS);
	db_bind_int64(c->month, 1, ts);
	if (db_run(c->month, c->e) < 0)
		return POS_EDB;
	c->months[c->n_months++] = m;
	return 0;
}

static int copy_row(struct db_stmt *st, void *arg)
{
	struct copy *c = arg;
	const char *k = c->t->kinds;
	int rc;

	if (strcmp(c->t->name, "baskets") == 0 && (rc = copy_month(c, db_col_int64(st, 2))) < 0)
		return rc;
	for (int i = 0; k[i]; i++) {
		const void *b;
		size_t n = 0;

		if (db_col_null(st, i)) {
			db_bind_null(c->ins, i + 1);
			continue;
		}
		switch (k[i]) {
		case 'i':
			db_bind_int64(c->ins, i + 1, db_col_int64(st, i));
			break;
		case 't':
			db_bind_text(c->ins, i + 1, db_col_text(st, i));
			break;
		default:
			b = db_col_blob(st, i, &n);
			db_bind_blob(c->ins, i + 1, b ? b : "", n);
			break;
		}
	}
	if ((rc = db_run(c->ins, c->e)) < 0)
		return rc;
	c->rows++;
	return 0;
}

static int copy_table(struct copy *c, const struct copy_table *t)
{
	char sel[512], ins[1024];
	struct db_stmt *st = NULL;
	size_t len;
	int rc;

	c->t = t;
	c->rows = 0;
	if (t->src)
		snprintf(sel, sizeof(sel), "%s", t->src);
	else
		snprintf(sel, sizeof(sel), "SELECT %s FROM %s", t->cols, t->name);
	len = (size_t)snprintf(ins, sizeof(ins), "INSERT INTO %s(%s) VALUES (", t->name,
			       t->dst ? t->dst : t->cols);
	for (size_t i = 0; t->kinds[i] && len < sizeof(ins); i++)
		len += (size_t)snprintf(ins + len, sizeof(ins) - len, "%s?%zu", i ? ", " : "",
					i + 1);
	if (len + 2 >= sizeof(ins))
		return err_set(c->e, POS_ETOOBIG, "store-copy: %s: statement too long", t->name);
	snprintf(ins + len, sizeof(ins) - len, ")");
	if ((rc = db_prepare(c->src, sel, 0, &st, c->e)) < 0 ||
	    (rc = db_prepare(c->dst, ins, DB_KEEP, &c->ins, c->e)) < 0)
		goto out;
	rc = db_each(st, copy_row, c, c->e);
out:
	if (rc < 0)
		err_prefix(c->e, "%s", t->name);
	db_finalize(st);
	db_finalize(c->ins);
	c->ins = NULL;
	return rc;
}

/* One integer from a statement without parameters. */
static int one_int(struct db *db, const char *sql, int64_t *v, pos_err *e)
{
	struct db_stmt *st = NULL;
	int rc;

	if ((rc = db_prepare(db, sql, 0, &st, e)) < 0)
		return rc;
	rc = db_step(st, e);
	if (rc == DB_ROW) {
		*v = db_col_int64(st, 0);
		rc = 0;
	} else if (rc == DB_DONE) {
		*v = 0;
		rc = 0;
	}
	db_finalize(st);
	return rc;
}

/* The target is empty: no relation at all, or a store schema (left by an
 * earlier copy that failed) with no row in any table copied. */
static int copy_target_empty(const char *dsn, pos_err *e)
{
	struct db *db = NULL;
	char sql[256];
	int64_t n = 0, ours = 0;
	int rc;

	if ((rc = db_open_pg(dsn, true, &db, e)) < 0)
		return rc;
	rc = one_int(db,
		     "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
		     "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
		     &n, e);
	if (rc == 0 && n)
		rc = one_int(db, "SELECT count(*) FROM pg_class WHERE relname = 'schema_version'",
			     &ours, e);
	if (rc == 0 && n && !ours)
		rc = err_set(e, POS_ECONFLICT, "the target database is not empty (it has %lld tables "
					    "and no pos-central store)",
			     (long long)n);
	for (size_t i = 0; rc == 0 && n && i < COPY_NTABLES; i++) {
		int64_t any = 0;

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 1) x",
			 copy_tables[i].name);
		if ((rc = one_int(db, sql, &any, e)) == 0 && any)
			rc = err_set(e, POS_ECONFLICT, "the target database is not empty (%s has rows)",
				     copy_tables[i].name);
	}
	db_close(db);
	return rc;
}

/* Counters as the source has them (the triggers' work is flushed first,
 * then overwritten), and the identity sequences past the copied ids. */
static int copy_finish(struct copy *c)
{
	struct db_stmt *src = NULL, *dst = NULL;
	char sql[256];
	int rc;

	if ((rc = db_exec(c->dst, "SET CONSTRAINTS ALL IMMEDIATE", c->e)) < 0 ||
	    (rc = db_prepare(c->src,
			     "SELECT households, baskets, items, unused_devices FROM counters", 0,
			     &src, c->e)) < 0 ||
	    (rc = db_prepare(c->dst,
			     "UPDATE counters SET households = ?1, baskets = ?2, items = ?3, "
			     "unused_devices = ?4",
			     0, &dst, c->e)) < 0)
		goto out;
	if ((rc = db_step(src, c->e)) != DB_ROW) {
		rc = rc < 0 ? rc : err_set(c->e, POS_EDB, "the source has no counters row");
		goto out;
	}
	for (int i = 0; i < 4; i++)
		db_bind_int64(dst, i + 1, db_col_int64(src, i));
	if ((rc = db_run(dst, c->e)) < 0)
		goto out;
	rc = db_exec(c->dst,
		     "SELECT setval('baskets_id_seq', coalesce(max(id), 0) + 1, false) "
		     "FROM basket_txns",
		     c->e);
	for (size_t i = 0; rc == 0 && i < sizeof(copy_sequences) / sizeof(copy_sequences[0]);
	     i++) {
		snprintf(sql, sizeof(sql),
			 "SELECT setval(pg_get_serial_sequence('%s', 'id'), "
			 "coalesce(max(id), 0) + 1, false) FROM %s",
			 copy_sequences[i], copy_sequences[i]);
		rc = db_exec(c->dst, sql, c->e);
	}
	/* Each basket's items packed into its row, as the insert writes
	 * them, for the history (schema v11). */
	if (rc == 0)
		rc = db_exec(c->dst,
			     "UPDATE baskets SET items = pos_basket_items(id, ts) WHERE items IS NULL",
			     c->e);
	/* The analysts' tables are not copied: every basket with a household
	 * waits for the fold (store_analyst.c), which rebuilds them. */
	if (rc == 0)
		rc = db_exec(c->dst,
			     "INSERT INTO analyst_pending(basket_id) SELECT id FROM baskets "
			     "WHERE hhid IS NOT NULL ON CONFLICT (basket_id) DO NOTHING",
			     c->e);
out:
	db_finalize(src);
	db_finalize(dst);
	return rc;
}

/* ---- verification: counts, then a sample of histories */

static int copy_counts(struct copy *c)
{
	char sql[256];
	int64_t a, b;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < COPY_NTABLES; i++) {
		const struct copy_table *t = &copy_tables[i];

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s",
			 strcmp(t->name, "basket_txns") == 0 ? "baskets" : t->name);
		if ((rc = one_int(c->src, sql, &a, c->e)) < 0)
			break;
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", t->name);
		if ((rc = one_int(c->dst, sql, &b, c->e)) < 0)
			break;
		if (a != b)
			rc = err_set(c->e, POS_EDB, "verify: %s has %lld rows in the copy, %lld in "
						    "the source",
				     t->name, (long long)b, (long long)a);
	}
	return rc;
}

struct hist_sum {
	uint64_t h;
	long n;
};

static void fnv(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		*h = (*h ^ b[i]) * 0x100000001b3ull;
	*h = (*h ^ 0xff) * 0x100000001b3ull; /* a field's end */
}

static int hist_basket(const struct store_basket *b, void *arg)
{
	struct hist_sum *s = arg;

	fnv(&s->h, b->txn, strlen(b->txn));
	fnv(&s->h, &b->ts_ms, sizeof(b->ts_ms));
	fnv(&s->h, b->store, strlen(b->store));
	fnv(&s->h, b->terminal, strlen(b->terminal));
	fnv(&s->h, b->hhid, strlen(b->hhid));
	fnv(&s->h, b->deident, strlen(b->deident));
	fnv(&s->h, b->digest, sizeof(b->digest));
	for (size_t i = 0; i < b->n_items; i++) {
		fnv(&s->h, b->items[i].gtin, strlen(b->items[i].gtin));
		fnv(&s->h, &b->items[i].qty, sizeof(b->items[i].qty));
		fnv(&s->h, &b->items[i].price_cents, sizeof(b->items[i].price_cents));
	}
	s->n++;
	return 0;
}

struct sample {
	char hhid[COPY_SAMPLE][DEIDENT_ID_LEN + 1];
	size_t n;
	int64_t step, at;
};

static int sample_row(struct db_stmt *st, void *arg)
{
	struct sample *s = arg;

	if (s->n < COPY_SAMPLE && s->at++ % s->step == 0)
		db_col_copy(st, 0, s->hhid[s->n++], sizeof(s->hhid[0]));
	return 0;
}

static int copy_histories(struct copy *c, struct store *from, struct store *to, long *checked)
{
	struct sample sm = { .step = 1 };
	struct db_stmt *st = NULL;
	int64_t n = 0;
	int rc;

	if ((rc = one_int(c->src, "SELECT count(*) FROM households", &n, c->e)) < 0)
		return rc;
	sm.step = n > COPY_SAMPLE ? n / COPY_SAMPLE : 1;
	if ((rc = db_prepare(c->src, "SELECT hhid FROM households ORDER BY hhid", 0, &st, c->e)) <
		    0 ||
	    (rc = db_each(st, sample_row, &sm, c->e)) < 0)
		goto out;
	for (size_t i = 0; i < sm.n; i++) {
		struct hist_sum a = { 0xcbf29ce484222325ull, 0 }, b = a;

		if ((rc = store_history(from, sm.hhid[i], 0, 0, hist_basket, &a, c->e)) < 0 ||
		    (rc = store_history(to, sm.hhid[i], 0, 0, hist_basket, &b, c->e)) < 0)
			goto out;
		if (a.h != b.h || a.n != b.n) {
			rc = err_set(c->e, POS_EDB,
				     "verify: a sampled household's history differs in the copy "
				     "(%ld baskets, %ld in the source)",
				     b.n, a.n);
			goto out;
		}
	}
	*checked = (long)sm.n;
out:
	db_finalize(st);
	return rc;
}

int store_copy_main(int argc, char **argv)
{
	const char *conf = NULL, *to = NULL;
	struct store_where w = { .backend = STORE_POSTGRESQL };
	struct store *from = NULL, *dst = NULL;
	struct copy *c = NULL;
	struct cconf cf;
	pos_err e = { 0 };
	char actor[96], detail[160];
	long checked = 0;
	bool reading = false, writing = false;
	int rc;

	rc = dbcli_args(argc, argv, "store-copy", "--to", COPY_USAGE, &conf, &to);
	if (rc != 0)
		return rc == 1 ? CLI_OK : rc;
	if ((rc = cconf_load(conf, &cf, &e)) < 0)
		goto out;
	if (cf.backend != STORE_SQLITE) {
		rc = err_set(&e, POS_EINVAL, "%s: the store is already PostgreSQL ([store] backend)",
			     conf);
		goto out;
	}
	if ((rc = copy_target_empty(to, &e)) < 0) {
		err_prefix(&e, "--to");
		goto out;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		rc = err_set(&e, POS_ENOMEM, "store-copy: out of memory");
		goto out;
	}
	c->e = &e;
	w.dsn = to;
	if ((rc = cconf_store_open(&cf, CCONF_STORE_WRITE, &from, &e)) < 0 ||
	    (rc = store_open_at(&w, &dst, &e)) < 0)
		goto out;
	c->src = store_db(from);
	c->dst = store_db(dst);
	/* One read transaction: every table from the same snapshot, while
	 * serve goes on writing (WAL readers do not block the writer). */
	if ((rc = db_exec(c->src, "BEGIN", &e)) < 0)
		goto out;
	reading = true;
	if ((rc = db_begin(c->dst, &e)) < 0)
		goto out;
	writing = true;
	if ((rc = db_prepare(c->dst, "SELECT pos_month_partition(?1)", DB_KEEP, &c->month, &e)) <
	    0)
		goto out;
	for (size_t i = 0; rc == 0 && i < COPY_NTABLES; i++)
		rc = copy_table(c, &copy_tables[i]);
	if (rc == 0)
		rc = copy_finish(c);
	db_finalize(c->month);
	c->month = NULL;
	if (rc < 0)
		goto out;
	writing = false;
	if ((rc = db_commit(c->dst, &e)) < 0)
		goto out;
	if ((rc = store_partitions_ahead(dst, cf.store_partitions_ahead, &e)) < 0 ||
	    (rc = copy_counts(c)) < 0 || (rc = copy_histories(c, from, dst, &checked)) < 0)
		goto out;
	dbcli_actor(actor, sizeof(actor));
	snprintf(detail, sizeof(detail), "tables=%zu histories_checked=%ld", COPY_NTABLES,
		 checked);
	if ((rc = store_audit(dst, actor, "store-copy", detail, &e)) < 0)
		goto out;
	printf("store-copy: %zu tables copied and verified (row counts, %ld households' "
	       "histories)\n",
	       COPY_NTABLES, checked);
out:
	if (c)
		db_finalize(c->month);
	if (writing)
		db_rollback(c->dst);
	if (reading)
		db_rollback(c->src);
	store_close(from);
	store_close(dst);
	free(c);
	return rc < 0 ? cli_fail("store-copy", &e) : CLI_OK;
}
