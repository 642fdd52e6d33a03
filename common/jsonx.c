#include "jsonx.h"

#include <string.h>

/*
 * Nesting is measured before jansson sees the text: jansson recurses per
 * level, so a hostile "[[[[..." must be refused without parsing it.
 * Brackets inside strings do not count; escapes are skipped so that "\""
 * does not end a string early.
 */
static int jsonx_depth_ok(const char *buf, size_t len, int max_depth)
{
	int depth = 0, in_str = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = buf[i];

		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = 0;
			continue;
		}
		if (ch == '"') {
			in_str = 1;
		} else if (ch == '[' || ch == '{') {
			if (++depth > max_depth)
				return 0;
		} else if (ch == ']' || ch == '}') {
			if (depth > 0)
				depth--;
		}
	}
	return 1;
}

/* jansson's own text quotes the input near the error ("near '4111...'"),
 * which could carry a TID; only the error class and position are reported. */
static const char *jsonx_error_text(const json_error_t *je)
{
	switch (json_error_code(je)) {
	case json_error_out_of_memory: return "out of memory";
	case json_error_stack_overflow: return "nested too deeply";
	case json_error_invalid_utf8: return "invalid UTF-8";
	case json_error_premature_end_of_input: return "unexpected end of input";
	case json_error_end_of_input_expected: return "extra data after the JSON value";
	case json_error_invalid_syntax: return "invalid syntax";
	case json_error_invalid_format: return "invalid format";
	case json_error_null_character: return "NUL character in text";
	case json_error_null_byte_in_key: return "NUL byte in an object key";
	case json_error_duplicate_key: return "duplicate object key";
	case json_error_numeric_overflow: return "number out of range";
	default: return "invalid JSON";
	}
}

int jsonx_parse(const char *buf, size_t len, size_t max_len, int max_depth, json_t **out,
		pos_err *e)
{
	json_error_t je;
	json_t *v;

	if (!out)
		return err_set(e, POS_EINVAL, "json: no output");
	*out = NULL;
	if (!buf)
		return err_set(e, POS_EINVAL, "json: no input");
	if (len > max_len)
		return err_set(e, POS_ETOOBIG, "json: body of %zu bytes exceeds %zu", len, max_len);
	if (max_depth <= 0 || max_depth > JSONX_MAX_DEPTH)
		max_depth = JSONX_MAX_DEPTH;
	if (!jsonx_depth_ok(buf, len, max_depth))
		return err_set(e, POS_EINVAL, "json: nested deeper than %d levels", max_depth);
	v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!v) {
		int code = json_error_code(&je) == json_error_out_of_memory ? POS_ENOMEM : POS_EINVAL;
		return err_set(e, code, "json: %s at line %d column %d", jsonx_error_text(&je),
			       je.line, je.column);
	}
	*out = v;
	return 0;
}

int jsonx_str(json_t *obj, const char *key, int required, size_t max_len, const char **out,
	      pos_err *e)
{
	json_t *v;
	size_t n;

	if (!json_is_object(obj))
		return err_set(e, POS_EINVAL, "expected a JSON object");
	v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		if (required)
			return err_set(e, POS_EINVAL, "field '%s' is required", key);
		return 0;
	}
	if (!json_is_string(v))
		return err_set(e, POS_EINVAL, "field '%s' must be a string", key);
	n = json_string_length(v);
	if (n > max_len)
		return err_set(e, POS_EINVAL, "field '%s' is longer than %zu bytes", key, max_len);
	/* A NUL inside would make the C string shorter than the JSON one. */
	if (strlen(json_string_value(v)) != n)
		return err_set(e, POS_EINVAL, "field '%s' contains a NUL character", key);
	*out = json_string_value(v);
	return 0;
}

int jsonx_int(json_t *obj, const char *key, int required, int64_t min, int64_t max,
	      int64_t *out, pos_err *e)
{
	json_t *v;
	json_int_t n;

	if (!json_is_object(obj))
		return err_set(e, POS_EINVAL, "expected a JSON object");
	v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		if (required)
			return err_set(e, POS_EINVAL, "field '%s' is required", key);
		return 0;
	}
	if (!json_is_integer(v))
		return err_set(e, POS_EINVAL, "field '%s' must be an integer", key);
	n = json_integer_value(v);
	if ((int64_t)n < min || (int64_t)n > max)
		return err_set(e, POS_EINVAL, "field '%s' must be between %lld and %lld", key,
			       (long long)min, (long long)max);
	*out = (int64_t)n;
	return 0;
}

/* An unknown key comes from the client and could be anything, even a card
 * number; it is named in the message only when it looks like a field name. */
static int jsonx_key_printable(const char *k)
{
	size_t n = 0;

	for (; k[n]; n++) {
		char ch = k[n];
		if (n >= 40 || !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
				 ch == '-' || ch == '.'))
			return 0;
	}
	return n > 0;
}

int jsonx_only_keys(json_t *obj, const char *const *allowed, pos_err *e)
{
	const char *k;
	json_t *v;

	if (!json_is_object(obj))
		return err_set(e, POS_EINVAL, "expected a JSON object");
	json_object_foreach(obj, k, v) {
		int ok = 0;

		(void)v;
		for (size_t i = 0; allowed && allowed[i]; i++)
			if (strcmp(k, allowed[i]) == 0) {
				ok = 1;
				break;
			}
		if (!ok) {
			if (jsonx_key_printable(k))
				return err_set(e, POS_EINVAL, "unknown field '%s'", k);
			return err_set(e, POS_EINVAL, "unknown field (name not shown)");
		}
	}
	return 0;
}

char *jsonx_dump(const json_t *v)
{
	if (!v)
		return NULL;
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* ------------------------------------------------------------ scanner */

static void jsonx_scan_ws(struct jsonx_scan *x)
{
	while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r'))
		x->p++;
}

bool jsonx_scan_eat(struct jsonx_scan *x, char c)
{
	jsonx_scan_ws(x);
	if (x->p < x->end && *x->p == c) {
		x->p++;
		return true;
	}
	return false;
}

bool jsonx_scan_str(struct jsonx_scan *x, const char **s, size_t *n)
{
	const char *q;

	if (!jsonx_scan_eat(x, '"'))
		return false;
	for (q = x->p; q < x->end && *q != '"'; q++)
		if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e || *q == '\\')
			return false;
	if (q >= x->end)
		return false;
	*s = x->p;
	*n = (size_t)(q - x->p);
	x->p = q + 1;
	return true;
}

bool jsonx_scan_key(struct jsonx_scan *x, const char **k, size_t *n)
{
	return jsonx_scan_str(x, k, n) && jsonx_scan_eat(x, ':');
}

bool jsonx_key_is(const char *k, size_t n, const char *name)
{
	return strlen(name) == n && memcmp(k, name, n) == 0;
}

bool jsonx_scan_copy(struct jsonx_scan *x, char *buf, size_t max)
{
	const char *s;
	size_t n;

	if (!jsonx_scan_str(x, &s, &n) || n == 0 || n > max)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return true;
}

bool jsonx_scan_uint(struct jsonx_scan *x, int64_t max, int64_t *v)
{
	int64_t n = 0;
	const char *start;

	jsonx_scan_ws(x);
	start = x->p;
	while (x->p < x->end && *x->p >= '0' && *x->p <= '9') {
		if (x->p - start >= 15)
			return false;
		n = n * 10 + (*x->p - '0');
		x->p++;
	}
	if (x->p == start || (x->p - start > 1 && *start == '0'))
		return false;
	/* 1.5, 1e3 are numbers jansson reads as reals: not ours to judge. */
	if (x->p < x->end && (*x->p == '.' || *x->p == 'e' || *x->p == 'E'))
		return false;
	if (n > max)
		return false;
	*v = n;
	return true;
}

bool jsonx_scan_end(struct jsonx_scan *x)
{
	jsonx_scan_ws(x);
	return x->p == x->end;
}
