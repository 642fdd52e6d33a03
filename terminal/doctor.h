#ifndef POS_DOCTOR_H
#define POS_DOCTOR_H
/*
 * pos-agent doctor: what store IT checks first when a lane misbehaves.
 * Serial ports and which configured device matched which, whether central
 * answers GET /v1/health with this terminal's certificate (one blocking
 * request: doctor runs beside the agent, never inside its loop), when the
 * terminal and CA certificates expire, whether central.pub is a key central
 * opens (GET /v1/keys), the spool's depth (any basket set aside is a
 * problem) and whether an agent answers on the control socket. Never
 * prints a secret.
 */
#include <stdio.h>
#include "aconf.h"

/* Certificates closer than this to their end are flagged. */
#define DOCTOR_CERT_WARN_DAYS 30

/* Prints the report to out. Returns 0 when the lane can work, 1 when
 * something it needs is broken (the report says what). */
int doctor_run(const struct aconf *cfg, FILE *out);

/* Days (may be negative) until the certificate in path expires and its
 * notAfter as "YYYY-MM-DD HH:MM:SS UTC". */
int doctor_cert_expiry(const char *path, long *days, char when[32], pos_err *e);

#endif
