/* Feeds arbitrary bytes to the swipe parser through a writable copy (the
 * parser wipes its input); traps when the wipe is incomplete, a result is
 * malformed, or a message carries a digit run. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msr.h"
#include "tid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msr_result r;
	pos_err e;
	char *line;
	int rc;

	/* An exact-size heap copy lets ASan catch any read past len. */
	line = malloc(size ? size : 1);
	if (!line)
		return 0;
	memcpy(line, data, size);
	memset(&e, 0, sizeof e);
	rc = msr_parse(line, size, &r, &e);
	for (size_t i = 0; i < size; i++)
		if (line[i] != 0)
			__builtin_trap();
	free(line);
	if (rc == 0) {
		size_t n = strnlen(r.pan, sizeof r.pan);

		if (n < 12 || n > 19 || !tid_luhn_valid(r.pan, n) || !r.pan_luhn_ok ||
		    strlen(r.expiry) != 4 || strlen(r.service) != 3)
			__builtin_trap();
		if (r.t1 != MSR_TRACK_OK && r.t2 != MSR_TRACK_OK)
			__builtin_trap();
	} else {
		if (r.pan[0] || e.code != rc)
			__builtin_trap();
		for (size_t i = 0; e.msg[i] && e.msg[i + 1]; i++)
			if (e.msg[i] >= '0' && e.msg[i] <= '9' && e.msg[i + 1] >= '0' &&
			    e.msg[i + 1] <= '9')
				__builtin_trap();
	}
	msr_result_wipe(&r);
	return 0;
}
