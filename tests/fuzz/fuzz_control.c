/* Feeds arbitrary bytes to the control socket's request parser (what any
 * local client may send) and checks what it promises: a request it accepts
 * is well formed, one it refuses gets a short error code and a bounded
 * one-line message. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct control_request req;
	const char *code = NULL;
	pos_err e;
	int rc;

	memset(&e, 0, sizeof e);
	rc = control_parse_request((const char *)data, size, &req, &code, &e);
	if (rc == 0) {
		size_t n = strnlen(req.arg, sizeof req.arg);
		if (n >= sizeof req.arg || req.cmd < CONTROL_STATUS || req.cmd > CONTROL_RETRY)
			__builtin_trap();
		if ((req.cmd == CONTROL_TID || req.cmd == CONTROL_SCAN) != (n > 0))
			__builtin_trap();
		if (code != NULL)
			__builtin_trap();
	} else {
		if (rc > 0 || !code || !*code || strnlen(e.msg, sizeof e.msg) >= sizeof e.msg)
			__builtin_trap();
		if (strchr(e.msg, '\n'))
			__builtin_trap();
		/* A refused request leaves nothing behind. */
		for (size_t i = 0; i < sizeof req; i++)
			if (((const unsigned char *)&req)[i])
				__builtin_trap();
	}
	control_request_wipe(&req);
	return 0;
}
