#ifndef POS_ACHECK_H
#define POS_ACHECK_H
/*
 * pos-agent check (and doctor): terminal.conf agrees with the files it
 * names. The files are readable and private where they must be; the
 * terminal certificate was issued by ca.crt; its OU and CN are [terminal]
 * store and id (central takes the lane's identity from the certificate, so
 * a disagreement sets every basket with a customer aside); every device's
 * profile is found and parses. Each problem is one line on out:
 *   FILE:LINE: what is wrong; fix: what to do
 */
#include <stdio.h>

#include "aconf.h"

/* Prints each problem to out after prefix (NULL: none). Returns the number
 * of problems printed (0: all agree). */
int acheck_run(const struct aconf *c, const char *prefix, FILE *out);

#endif
