#ifndef POS_WIPE_H
#define POS_WIPE_H
/* Secret hygiene: every buffer that held a TID, PAN, track or key goes
 * through these (OPENSSL_cleanse, which the compiler may not drop). */
#include <stddef.h>

void wipe(void *p, size_t n);
/* Wipes n bytes and frees p; accepts NULL. */
void wipe_free(void *p, size_t n);
/* Wipes strlen(s) bytes and frees s; accepts NULL. */
void wipe_str_free(char *s);
/* Marks the process non-dumpable and sets RLIMIT_CORE to 0, so no core dump
 * can carry a secret. Call first thing in main(). */
void wipe_harden_process(void);

#endif
