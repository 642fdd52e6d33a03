#ifndef POS_HISTORY_H
#define POS_HISTORY_H
/*
 * A household's basket history in the design section 4 formats, streamed:
 * baskets are read from the store in short slices (store_history_page, no
 * read snapshot held in between) and written through a sink in pieces of
 * at most HISTORY_CHUNK bytes, so a long history never sits in memory
 * whole and never pins the database's WAL while a slow reader takes it.
 *
 * CSV: header `txn,ts,store,terminal,hhid,gtin,qty,price_cents,name`, one
 * row per item (a basket without items gets one row with the item fields
 * empty); price_cents empty when unknown; name the item master's, empty
 * when it has none (the design's columns first, in their places).
 * JSON: an array of {"txn","ts","store","terminal","hhid","items":[{"gtin",
 * "qty","price_cents"}]} with price_cents null when unknown.
 * Times are RFC 3339 UTC with milliseconds. Newest basket first.
 */
#include <stddef.h>
#include <stdint.h>
#include "err.h"
#include "store.h"

#define HISTORY_CHUNK 8192

/* HISTORY_TABLE: the aligned text of history_write_table. */
enum history_format { HISTORY_CSV, HISTORY_JSON, HISTORY_TABLE };

/* The sink returns 0, or non-zero to stop (that value is returned). */
typedef int (*history_sink)(const void *buf, size_t len, void *arg);

/* Writes hhid's history with from_ms <= ts < to_ms (0 = open bound), newest
 * first. An unknown household is not checked here (the caller decides
 * between 404 and an empty list); it writes an empty history. */
int history_write(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		  enum history_format f, history_sink sink, void *arg, pos_err *e);
/* The same history as an aligned table for people (CLI, demo), with the
 * item master's names. */
int history_write_table(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
			history_sink sink, void *arg, pos_err *e);
/* Parses "csv", "json"; -1 when unknown. */
int history_format_parse(const char *s);

/* A paging cursor: the place of the last basket of a page as opaque text
 * (base64url, HISTORY_CURSOR_LEN characters). */
#define HISTORY_CURSOR_LEN 22
void history_cursor_encode(const struct store_history_pos *p,
			   char out[HISTORY_CURSOR_LEN + 1]);
/* POS_EINVAL with a message naming the cursor when s is not one that
 * history_cursor_encode makes. */
int history_cursor_decode(const char *s, struct store_history_pos *p, pos_err *e);

/* One history reply made in slices, for a caller that sends it as the
 * client takes it: the baskets after *after (NULL: from the newest) down
 * to *end included (NULL: to the oldest) of hhid with from_ms <= ts <
 * to_ms. Borrows s, which must outlive it; between two slices s is free
 * for other work. *out: history_stream_free. */
struct history_stream;
int history_stream_new(struct store *s, const char *hhid, int64_t from_ms, int64_t to_ms,
		       const struct store_history_pos *after, const struct store_history_pos *end,
		       enum history_format f, struct history_stream **out, pos_err *e);
/* Writes the next slice through sink: whole baskets until about want bytes
 * went (more when one basket is longer), or to the history's end with its
 * closing bytes. Returns 1 when more is to come, 0 when the history is
 * complete, or a negative code (a sink's non-zero answer included). */
int history_stream_next(struct history_stream *hs, size_t want, history_sink sink, void *arg,
			pos_err *e);
void history_stream_free(struct history_stream *hs);

#endif
