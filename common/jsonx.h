#ifndef POS_JSONX_H
#define POS_JSONX_H
/* Strict JSON input on top of jansson: a size cap, a nesting cap checked
 * before parsing, and typed field getters with clear messages. */
#include <jansson.h>
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

#endif
