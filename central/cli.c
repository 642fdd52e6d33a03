#include "cli.h"

#include <stdarg.h>
#include <stdio.h>

int cli_usage_error(const char *what, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pos-central %s: ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see pos-central %s --help)\n", what);
	return CLI_USAGE;
}

int cli_fail(const char *what, const pos_err *e)
{
	fprintf(stderr, "pos-central %s: %s\n", what, e->msg[0] ? e->msg : "failed");
	return CLI_FAIL;
}
