/* Feeds arbitrary bytes to the basket validator as a single basket body and
 * as a batch body (each entry validated on its own), as routes.c does. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "basket.h"
#include "jsonx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW_MS 1795435200000LL /* 2026-11-23T12:00:00Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct basket_in in;
	json_t *root = NULL, *arr = NULL;
	pos_err e;

	if (basket_parse((const char *)data, size, 1 << 20, "S1", "T1", FUZZ_NOW_MS, &in, &e) == 0) {
		/* What routes.c relies on for a valid basket. */
		if (in.b.n_items == 0 || in.b.n_items > BASKET_MAX_ITEMS || !in.b.items ||
		    strlen(in.b.txn) != 36 || in.b.ts_ms < BASKET_TS_MIN_MS)
			__builtin_trap();
		for (size_t i = 0; i < in.b.n_items; i++)
			if (in.b.items[i].qty < 1 || in.b.items[i].qty > BASKET_QTY_MAX ||
			    in.b.items[i].price_cents < -1)
				__builtin_trap();
	}
	basket_free(&in);

	if (jsonx_parse((const char *)data, size, 1 << 20, BASKET_MAX_DEPTH, &root, &e) == 0 &&
	    basket_batch_array(root, &arr, &e) == 0) {
		for (size_t i = 0; i < json_array_size(arr); i++) {
			char txn[UUID_STR_LEN + 1];

			basket_txn_hint(json_array_get(arr, i), txn);
			if (basket_from_json(json_array_get(arr, i), "S1", "T1", FUZZ_NOW_MS, &in,
					     &e) == 0)
				basket_free(&in);
		}
	}
	json_decref(root);
	return 0;
}
