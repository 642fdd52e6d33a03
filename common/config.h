#ifndef POS_CONFIG_H
#define POS_CONFIG_H
/*
 * INI configuration (a small reader of our own; config.c says why).
 * cfg_load reads every entry with its line; the program then takes the keys
 * it knows through the typed getters, which check type and bounds;
 * cfg_check_unused finally reports any entry nobody took ("FILE:LINE:
 * unknown key 'x' in [s]"). Errors always name the file and line. Duplicate
 * keys in one section are an error at load.
 */
#include <stdbool.h>
#include <stddef.h>
#include "err.h"

#define CFG_MAX_FILE (256 * 1024)
#define CFG_MAX_VALUE 1024

struct cfg_entry {
	char *section;
	char *key;
	char *value;
	int line;
	bool used;
};

struct cfg {
	char *name;     /* file path as given, for messages */
	char *dir;      /* folder of the file, for relative paths */
	struct cfg_entry *v;
	size_t n, cap;
};

/* Loads path; *out is freed with cfg_free. */
int cfg_load(const char *path, struct cfg **out, pos_err *e);
/* Parses text held in memory; name is used in messages, dir for paths. */
int cfg_load_string(const char *text, size_t len, const char *name, const char *dir,
		    struct cfg **out, pos_err *e);
void cfg_free(struct cfg *c);

/* Each getter marks the entry used. A NULL dflt makes the key required. */
int cfg_str(struct cfg *c, const char *sec, const char *key, const char *dflt,
	    const char **out, pos_err *e);
int cfg_int(struct cfg *c, const char *sec, const char *key, long dflt, long min,
	    long max, long *out, pos_err *e);
/* yes/no/true/false/on/off/1/0 */
int cfg_bool(struct cfg *c, const char *sec, const char *key, int dflt, bool *out,
	     pos_err *e);
/* A path, resolved against the file's folder when relative. */
int cfg_path(struct cfg *c, const char *sec, const char *key, const char *dflt,
	     char *out, size_t outcap, pos_err *e);
/* True when the section appears in the file at all. */
bool cfg_has_section(const struct cfg *c, const char *sec);
/* Distinct section names starting with prefix, in file order; calls fn for
 * each (stop early by returning non-zero, which is returned). */
int cfg_each_section(const struct cfg *c, const char *prefix,
		     int (*fn)(const char *section, void *arg), void *arg);
/* Line of a key, or of the section header when key is NULL; 0 if absent. */
int cfg_line(const struct cfg *c, const char *sec, const char *key);
/* Fails on the first entry no getter took. */
int cfg_check_unused(const struct cfg *c, pos_err *e);

#endif
