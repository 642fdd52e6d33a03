#ifndef POS_HISTORY_H
#define POS_HISTORY_H
/*
 * A household's basket history in the design section 4 formats, streamed:
 * baskets are read from the store one at a time and written through a sink
 * in pieces of at most HISTORY_CHUNK bytes, so a long history never sits in
 * memory whole.
 *
 * CSV: header `txn,ts,store,terminal,hhid,gtin,qty,price_cents`, one row per
 * item (a basket without items gets one row with the item fields empty);
 * price_cents empty when unknown.
 * JSON: an array of {"txn","ts","store","terminal","hhid","items":[{"gtin",
 * "qty","price_cents"}]} with price_cents null when unknown.
 * Times are RFC 3339 UTC with milliseconds. Newest basket first.
 */
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "store.h"

#define HISTORY_CHUNK 8192

enum history_format { HISTORY_CSV, HISTORY_JSON };

/* The sink returns 0, or non-zero to stop (that value is returned). */
typedef int (*history_sink)(const void *buf, size_t len, void *arg);

/* Writes hhid's history with from_ms <= ts < to_ms (0 = open bound), newest
 * first. An unknown household is not checked here (the caller decides
 * between 404 and an empty list); it writes an empty history. */
int history_write(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		  enum history_format f, history_sink sink, void *arg, pos_err *e);
/* The same history as an aligned table for people (CLI, demo). */
int history_write_table(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
			history_sink sink, void *arg, pos_err *e);
/* Parses "csv", "json"; -1 when unknown. */
int history_format_parse(const char *s);

#endif
