#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(pos_err *e, int code, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		e->code = code;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
		va_end(ap);
	}
	return code;
}

int err_prefix(pos_err *e, const char *fmt, ...)
{
	char head[sizeof e->msg], old[sizeof e->msg];
	va_list ap;

	if (!e)
		return POS_EINVAL;
	va_start(ap, fmt);
	vsnprintf(head, sizeof head, fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof old);
	/* Truncation is acceptable: the message stays one readable line. */
	size_t h = strnlen(head, sizeof head - 3);
	memcpy(e->msg, head, h);
	memcpy(e->msg + h, ": ", 2);
	size_t room = sizeof e->msg - h - 3;
	size_t o = strnlen(old, room);
	memcpy(e->msg + h + 2, old, o);
	e->msg[h + 2 + o] = '\0';
	return e->code;
}

void err_clear(pos_err *e)
{
	if (e) {
		e->code = 0;
		e->msg[0] = '\0';
	}
}

const char *err_name(int code)
{
	switch (code) {
	case POS_OK: return "ok";
	case POS_EINVAL: return "invalid";
	case POS_EIO: return "io";
	case POS_ENOMEM: return "nomem";
	case POS_ECRYPTO: return "crypto";
	case POS_ENOTFOUND: return "not_found";
	case POS_ECONFLICT: return "conflict";
	case POS_EPERM: return "permission";
	case POS_ETOOBIG: return "too_big";
	case POS_EDB: return "database";
	case POS_EAGAIN: return "again";
	default: return "unknown";
	}
}
