/* Feeds arbitrary bytes to the INI reader, then walks it like a program
 * would: typed getters, section enumeration, the unused-key check. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_config_section(const char *section, void *arg)
{
	struct cfg *c = arg;
	const char *v;
	char path[256];
	pos_err e;

	cfg_str(c, section, "role", "scanner", &v, &e);
	cfg_path(c, section, "profile", "scanner-crlf", path, sizeof path, &e);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg *c = NULL;
	pos_err e;
	const char *v;
	char path[64];
	long n;
	bool b;

	if (cfg_load_string((const char *)data, size, "fuzz.conf", "/tmp", &c, &e) < 0)
		return 0;
	cfg_str(c, "terminal", "store", NULL, &v, &e);
	cfg_str(c, "terminal", "id", "T1", &v, &e);
	cfg_int(c, "central", "resolve_timeout_ms", 400, 1, 60000, &n, &e);
	cfg_bool(c, "central", "auto_enrol", 1, &b, &e);
	cfg_path(c, "spool", "path", "spool.db", path, sizeof path, &e);
	cfg_line(c, "codes", "loyalty");
	cfg_line(c, "codes", NULL);
	cfg_has_section(c, "control");
	cfg_each_section(c, "device.", fuzz_config_section, c);
	if (cfg_check_unused(c, &e) < 0 && strlen(e.msg) >= sizeof e.msg)
		__builtin_trap();
	cfg_free(c);
	return 0;
}
