/* Feeds arbitrary bytes to the item-code parser under every layout and to
 * the helpers; traps when a result breaks the module's promises. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gtin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_gtin_check_scan(const struct gtin_scan *s)
{
	if (!gtin14_valid(s->gtin) || !gtin14_valid(s->item_gtin))
		__builtin_trap();
	if (!s->variable_measure && (strcmp(s->gtin, s->item_gtin) != 0 || s->price_cents != -1))
		__builtin_trap();
	if (s->price_cents < -1 || s->price_cents > 999900)
		__builtin_trap();
	if (strlen(s->aim) != 0 && strlen(s->aim) != 3)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum gtin_vm_layout layouts[] = { GTIN_VM_NONE, GTIN_VM_US, GTIN_VM_UK,
						       GTIN_VM_SE };
	const char *code = (const char *)data;
	struct gtin_scan s;
	char aim[4], upca[13];
	const char *d;
	size_t n;
	pos_err e;

	for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
		memset(&e, 0, sizeof e);
		if (gtin_parse(code, size, layouts[i], &s, &e) == 0)
			fuzz_gtin_check_scan(&s);
		else if (e.code >= 0 || strnlen(e.msg, sizeof e.msg) == sizeof e.msg)
			__builtin_trap();
	}
	gtin_aim_split(code, size, aim, &d, &n);
	if (n > size || strlen(aim) > 3)
		__builtin_trap();
	if (gtin_check_digit(code, size) > 9)
		__builtin_trap();
	gtin_price_verifier(code, size < 5 ? size : 5);
	if (size >= 8 && gtin_upce_to_upca(code, upca, &e) == 0 && strlen(upca) != 12)
		__builtin_trap();
	return 0;
}
