/* Feeds arbitrary text to the TID normaliser and the bare-digit builders;
 * traps on a malformed result or on an error message carrying a digit. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tid.h"
#include "wipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_tid_check(int rc, const char *out, const pos_err *e)
{
	if (rc == 0) {
		size_t n = strnlen(out, TID_MAX);

		if (n == TID_MAX || (strncmp(out, "card:", 5) != 0 &&
				     strncmp(out, "loyalty:", 8) != 0 &&
				     strncmp(out, "phone:+", 7) != 0))
			__builtin_trap();
		if (strncmp(out, "card:", 5) == 0 && !tid_luhn_valid(out + 5, n - 5))
			__builtin_trap();
		return;
	}
	if (out[0] != '\0' || strpbrk(e->msg, "0123456789"))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[256], out[TID_MAX];
	enum tid_kind k;
	pos_err e;
	size_t n = size < sizeof in - 1 ? size : sizeof in - 1;
	int rc;

	/* The API takes C strings: give it one, embedded NULs and all. */
	memcpy(in, data, n);
	in[n] = '\0';
	memset(&e, 0, sizeof e);
	rc = tid_normalize(in, out, &k, &e);
	fuzz_tid_check(rc, out, &e);
	if (rc == 0 && (k < TID_CARD || k > TID_PHONE))
		__builtin_trap();
	memset(&e, 0, sizeof e);
	fuzz_tid_check(tid_from_pan(in, out, &e), out, &e);
	memset(&e, 0, sizeof e);
	fuzz_tid_check(tid_from_loyalty(in, out, &e), out, &e);
	tid_luhn_valid(in, n);
	wipe(in, sizeof in);
	wipe(out, sizeof out);
	return 0;
}
