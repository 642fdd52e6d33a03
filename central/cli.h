#ifndef POS_CLI_H
#define POS_CLI_H
/*
 * How pos-central's subcommands (items, staff, vendor, ...) end: exit
 * statuses and the one line on stderr that names the command and what was
 * wrong.
 */
#include "err.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* "pos-central WHAT: <message> (see pos-central WHAT --help)"; CLI_USAGE. */
int cli_usage_error(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "pos-central WHAT: <e's message>"; CLI_FAIL. */
int cli_fail(const char *what, const pos_err *e);

#endif
