#ifndef POS_TLOG_H
#define POS_TLOG_H
/*
 * The store controller's transaction log: every basket of every lane of
 * the store, SQLite, WAL, synchronous=FULL. A basket is committed here
 * before the lane hears 201, forwarded to central one lane at a time and
 * marked sent only after central's 2xx; sent baskets are kept keep_days for
 * the store's reports, unsent ones until they are sent. Keyed by txn: the
 * same basket again changes nothing, the same txn with other content is a
 * conflict. Holds what lanes send (at most an EncTID, never a TID). One
 * connection; use from one thread.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "spool.h"

#define TLOG_ID_MAX 64
#define TLOG_BODY_MAX (1024 * 1024)

struct tlog;

/* What the report needs of a basket, read from its body (tlog_basket_parse). */
struct tlog_basket {
	char txn[37];
	int64_t ts_ms;
	long lines;
	long units;
	long long sales_cents; /* qty * price_cents over the lines with a price */
	char hhid[32];         /* "" when the lane did not resolve the customer */
	long offers;
	char *body;            /* canonical JSON (keys sorted, compact): free() */
	size_t len;
};

enum tlog_put_result { TLOG_CREATED = 1, TLOG_DUPLICATE, TLOG_CONFLICT };

struct tlog_stats {
	long unsent;
	long rejected;           /* set aside: central refused them for good */
	long total;
	int64_t oldest_unsent_ms; /* received time; 0 when none */
	long lanes;              /* distinct lanes in the log */
};

/* One (lane, hour) of a report day, local time. */
struct tlog_report_row {
	char terminal[TLOG_ID_MAX + 1];
	int hour; /* 0..23 */
	long baskets, units, households, offers;
	long long sales_cents;
};

/* Validates one basket object's body (txn UUID, ts RFC 3339, 1..1000 items
 * with a valid GTIN-14, qty 1..9999, price_cents >= 0 when present; hhid
 * and offers when present) and fills out. Messages name the field, never
 * its value. */
int tlog_basket_parse(const char *body, size_t len, struct tlog_basket *out, pos_err *e);
/* The same from a parsed object (a batch entry). */
int tlog_basket_from_json(json_t *obj, struct tlog_basket *out, pos_err *e);
void tlog_basket_clear(struct tlog_basket *b);

int tlog_open(const char *path, struct tlog **out, pos_err *e);
/* Opens an existing log read-only (status, report); POS_ENOTFOUND when
 * there is none. */
int tlog_open_readonly(const char *path, struct tlog **out, pos_err *e);
void tlog_close(struct tlog *t);

/* Commits (fsync) b for lane terminal. *res: TLOG_CREATED, or
 * TLOG_DUPLICATE when the txn is there with the same lane and body;
 * POS_ECONFLICT when it is there with another. */
int tlog_put(struct tlog *t, const char *terminal, const struct tlog_basket *b, int64_t now_ms,
	     enum tlog_put_result *res, pos_err *e);
/* Commits the n baskets of a lane's batch in one transaction (one fsync):
 * res[i] is TLOG_CREATED, TLOG_DUPLICATE or TLOG_CONFLICT (the txn is
 * there, or earlier in the batch, with another lane or body). On an error
 * nothing of the batch is logged. A transaction opened by tlog_begin is
 * committed with it. */
int tlog_put_batch(struct tlog *t, const char *terminal, const struct tlog_basket *b, size_t n,
		   int64_t now_ms, enum tlog_put_result *res, pos_err *e);
/* Opens a transaction unless one is open: the writes after it (mark sent,
 * set aside, attempts) reach the disk with the next tlog_commit or
 * tlog_put_batch, many in one fsync. Only for what is safe to lose in a
 * crash: a basket whose "sent" is lost is sent again and central answers
 * 200. */
int tlog_begin(struct tlog *t, pos_err *e);
/* Commits what tlog_begin opened (nothing when none is open). */
int tlog_commit(struct tlog *t, pos_err *e);
/* 1 while a transaction of tlog_begin is open. */
int tlog_pending(const struct tlog *t);
/* Up to max oldest unsent baskets, all of one lane (the oldest's), in log
 * order; terminal gets that lane. *rows: spool_rows_free. */
int tlog_peek(struct tlog *t, size_t max, struct spool_row **rows, size_t *n,
	      char terminal[TLOG_ID_MAX + 1], pos_err *e);
/* Central took txn: sent, with how ("created", "duplicate"). */
int tlog_mark_sent(struct tlog *t, const char *txn, const char *how, int64_t now_ms, pos_err *e);
/* Central refused txn for good: set aside with its reason. */
int tlog_set_rejected(struct tlog *t, const char *txn, const char *reason, pos_err *e);
int tlog_note_attempt(struct tlog *t, const char *txn, pos_err *e);
int tlog_stats(struct tlog *t, struct tlog_stats *st, pos_err *e);
/* Deletes sent baskets received before before_ms; *n: how many. */
int tlog_prune(struct tlog *t, int64_t before_ms, long *n, pos_err *e);
/* Marks every basket whose ts is at or after since_ms unsent again (set
 * aside ones too), so they are forwarded once more; *n: how many. */
int tlog_replay(struct tlog *t, int64_t since_ms, long *n, pos_err *e);
/* The baskets with ts in [from_ms, to_ms) by lane and local hour, ordered
 * by lane then hour. *rows: free(). */
int tlog_report(struct tlog *t, int64_t from_ms, int64_t to_ms, struct tlog_report_row **rows,
		size_t *n, pos_err *e);

#endif
