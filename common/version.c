#include "version.h"

#ifndef POS_VERSION
#define POS_VERSION "1.0"
#endif
#ifndef POS_GIT_REV
#define POS_GIT_REV "unknown"
#endif

const char *version_number(void)
{
	return POS_VERSION;
}

const char *version_revision(void)
{
	return POS_GIT_REV;
}

void version_print(FILE *f, const char *prog)
{
	fprintf(f, "%s %s (%s)\n", prog ? prog : "pos", POS_VERSION, POS_GIT_REV);
}
