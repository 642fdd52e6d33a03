#ifndef POS_SDOCTOR_H
#define POS_SDOCTOR_H
/*
 * pos-store doctor: what store IT checks first when the controller
 * misbehaves. store.conf and its files, when the controller's and the
 * lanes' certificates expire, whether each central URL answers and takes
 * the controller's certificate as this store's controller (blocking
 * requests: doctor runs beside the controller, never inside its loop),
 * tlog.db's queue (depth, oldest unsent, set aside) and whether a
 * controller answers on [listen] address. Never prints a secret.
 */
#include <stdio.h>
#include "sconf.h"

/* Prints the report to out. Returns 0 when the controller can work, 1
 * when something it needs is broken (the report says what). */
int sdoctor_run(const struct sconf *cfg, FILE *out);

#endif
