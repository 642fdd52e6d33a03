#ifndef POS_SPOOL_H
#define POS_SPOOL_H
/*
 * The agent's durable spool: SQLite, WAL, synchronous=FULL. A basket is
 * committed here (its JSON body exactly as it will be posted, which holds
 * at most an EncTID, never a TID) before the lane is told it is done, and
 * deleted only after central acknowledged it. Keyed by txn, so a repeat
 * put changes nothing. One connection; use from the agent's loop thread.
 */
#include <stddef.h>
#include <stdint.h>
#include "err.h"

struct spool;

struct spool_row {
	int64_t id;      /* spool order */
	char txn[37];
	char *body;      /* NUL-terminated JSON; freed by spool_rows_free */
	size_t len;
	int attempts;
};

int spool_open(const char *path, struct spool **out, pos_err *e);
void spool_close(struct spool *s);
/* Commits (fsync) one basket; an existing txn is left as it is. */
int spool_put(struct spool *s, const char *txn, const char *body, size_t len, pos_err *e);
/* Up to max oldest rows; *rows freed with spool_rows_free. */
int spool_peek(struct spool *s, size_t max, struct spool_row **rows, size_t *n, pos_err *e);
void spool_rows_free(struct spool_row *rows, size_t n);
/* Removes a basket after central's 2xx; a missing txn is not an error. */
int spool_delete(struct spool *s, const char *txn, pos_err *e);
/* Counts a failed attempt (for status and diagnosis). */
int spool_note_attempt(struct spool *s, const char *txn, pos_err *e);
/* Sets a basket aside that central refused for good (4xx other than a
 * transient one): kept for store IT, no longer peeked. */
int spool_set_rejected(struct spool *s, const char *txn, const char *reason, pos_err *e);
/* Moves set-aside baskets back to waiting: every one when reasons is
 * NULL, else those set aside for one of reasons (NULL-terminated). *moved
 * (may be NULL) gets how many moved. */
int spool_retry(struct spool *s, const char *const *reasons, long *moved, pos_err *e);

/* One basket as store IT sees it (pos-agent spool list|export). */
struct spool_entry {
	char txn[37];
	int64_t created_ms;
	int attempts;
	int set_aside;   /* 0: waiting for central */
	const char *reason; /* why it was set aside ("" when waiting) */
	const char *body;   /* the basket's JSON; NULL unless asked for */
	size_t len;
};
/* Calls fn for every basket in spool order, the body only when with_body;
 * stops at fn's first non-zero return (returned). Strings live during the
 * call only. */
int spool_each(struct spool *s, int with_body, int (*fn)(const struct spool_entry *en, void *arg),
	       void *arg, pos_err *e);
/* Baskets waiting (not set aside) and set aside. */
long spool_count(struct spool *s);
long spool_count_rejected(struct spool *s);

#endif
