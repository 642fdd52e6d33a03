#ifndef POS_CTAB_H
#define POS_CTAB_H
/*
 * The store side's configuration tables (terminal.conf, store.conf, device
 * profiles), as central/cconf.c does for central.conf: one row per key with
 * its type, default and bounds, taken from a struct cfg (common/config.h)
 * into a struct by offset. Every error names FILE:LINE; keys no table took
 * are reported by cfg_check_unused.
 */
#include <stddef.h>

#include "config.h"
#include "err.h"

enum ctab_type {
	CT_STR,  /* text, at most cap - 1 bytes */
	CT_PATH, /* a path, relative ones taken against the file's folder */
	CT_INT,  /* an int or long field (cap = its size), min..max */
	CT_ID,   /* a store or terminal id: [A-Za-z0-9._-]{1,64} */
	CT_URLS, /* 1 to 4 https://HOST[:PORT] separated by spaces */
	CT_WORD, /* one of words (an int-sized enum field) */
};

struct ctab_word {
	const char *word;
	int value;
};

struct ctab_key {
	const char *sec; /* NULL: the section given to ctab_take */
	const char *key;
	enum ctab_type type;
	const char *dflt; /* NULL: required */
	long min, max;    /* CT_INT */
	size_t off, cap;  /* the field in the caller's struct */
	const struct ctab_word *words; /* CT_WORD, ended by a NULL word */
	/* Run after the value is stored: the rules a type cannot say (a
	 * listen address's port, a socket path's length). out is the whole
	 * struct. */
	int (*check)(struct cfg *cf, const char *sec, const char *key, void *out, pos_err *e);
};

#define CTAB_FIELD(type, f) offsetof(type, f), sizeof(((type *)0)->f)

/* Takes every key of the table into out. sec is used for rows whose sec
 * is NULL (a [device.NAME] section, say). Stops at the first error. */
int ctab_take(struct cfg *cf, const char *sec, const struct ctab_key *keys, size_t n, void *out,
	      pos_err *e);
/* The URL list rule of CT_URLS, for a value in sec's 'url'. */
int ctab_url_list(struct cfg *cf, const char *sec, const char *v, pos_err *e);
/* Loads path (or text in memory when path is NULL: name for messages, dir
 * for relative paths) and calls fn on it; cfg freed after. */
int ctab_load(const char *path, const char *text, size_t len, const char *name, const char *dir,
	      int (*fn)(struct cfg *cf, const char *file, void *arg, pos_err *e), void *arg,
	      pos_err *e);

#endif
