#ifndef POS_JSONX_H
#define POS_JSONX_H
/* Strict JSON input on top of jansson: a size cap, a nesting cap checked
 * before parsing, and typed field getters with clear messages. */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "err.h"

#define JSONX_MAX_DEPTH 16

/* Parses exactly one JSON value from buf; rejects more than max_len bytes
 * (POS_ETOOBIG), nesting deeper than max_depth and duplicate object keys
 * (POS_EINVAL). *out: json_decref by the caller. */
int jsonx_parse(const char *buf, size_t len, size_t max_len, int max_depth, json_t **out,
		pos_err *e);
/* Field getters for an object. Required ones fail when missing; optional
 * ones leave *out unchanged and return 0 when missing (null counts as missing). */
int jsonx_str(json_t *obj, const char *key, int required, size_t max_len, const char **out,
	      pos_err *e);
int jsonx_int(json_t *obj, const char *key, int required, int64_t min, int64_t max,
	      int64_t *out, pos_err *e);
/* Rejects any key of obj not in the NULL-terminated allowed list. */
int jsonx_only_keys(json_t *obj, const char *const *allowed, pos_err *e);
/* Serialises compactly into a malloc'd string; free() by the caller. */
char *jsonx_dump(const json_t *v);

/*
 * A scanner for fast paths that read a request of a known, plain shape
 * straight from the body, without a jansson tree. It recognises a strict
 * subset of JSON: strings of printable ASCII without escapes, integers
 * without sign, fraction or exponent. Each call returns false on anything
 * else, and the caller then hands the whole body to jsonx_parse, which
 * decides and words the error; so a fast path built on it only ever
 * accepts what the jansson path accepts. The scanner borrows the body.
 */
struct jsonx_scan {
	const char *p, *end;
};

/* Skips JSON whitespace, then takes c if it comes next. */
bool jsonx_scan_eat(struct jsonx_scan *x, char c);
/* A string; *s points into the body, n bytes, no NUL. */
bool jsonx_scan_str(struct jsonx_scan *x, const char **s, size_t *n);
/* An object key: a string, then the ':'. */
bool jsonx_scan_key(struct jsonx_scan *x, const char **k, size_t *n);
/* The key (k, n) from jsonx_scan_key is name. */
bool jsonx_key_is(const char *k, size_t n, const char *name);
/* A string of 1..max bytes copied into buf and NUL-terminated. */
bool jsonx_scan_copy(struct jsonx_scan *x, char *buf, size_t max);
/* An integer of 0..max (at most 15 digits, no leading zero). */
bool jsonx_scan_uint(struct jsonx_scan *x, int64_t max, int64_t *v);
/* Only whitespace is left. */
bool jsonx_scan_end(struct jsonx_scan *x);

#endif
