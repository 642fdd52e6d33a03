#include "wipe.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

void wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

void wipe_free(void *p, size_t n)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, n);
	free(p);
}

void wipe_str_free(char *s)
{
	if (s)
		wipe_free(s, strlen(s));
}

void wipe_harden_process(void)
{
	struct rlimit none = { 0, 0 };

	/* A core dump could carry a TID or a key: allow none. */
	setrlimit(RLIMIT_CORE, &none);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
