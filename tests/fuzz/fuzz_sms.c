/* Feeds arbitrary bytes to the inbound SMS form parser, the signature
 * check and the ref finder; traps on a parse that is not sorted, a field
 * pointing outside its buffer, or a ref that is not a valid uid. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "visitor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char fuzz_key[KEYS_HMAC_LEN] = { 7 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sms_param p[SMS_PARAMS_MAX];
	char uid[VISITOR_UID_LEN + 1], *buf, *text;
	pos_err e = { 0 };
	size_t n = 0;
	int rc;

	if (!(buf = malloc(size + 1)) || !(text = malloc(size + 1))) {
		free(buf);
		return 0;
	}
	if (sms_form_parse((const char *)data, size, buf, p, &n, &e) == 0) {
		if (n > SMS_PARAMS_MAX)
			__builtin_trap();
		for (size_t i = 0; i < n; i++) {
			if (p[i].name < buf || p[i].value < buf || p[i].value > buf + size)
				__builtin_trap();
			if (i && strcmp(p[i - 1].name, p[i].name) >= 0)
				__builtin_trap();
		}
		(void)sms_signature_ok("secret", "https://h/v1/sms/inbound", p, n,
				       sms_form_get(p, n, "Sig"));
	}
	memcpy(text, data, size);
	text[size] = '\0';
	rc = visitor_ref(fuzz_key, text, uid, &e);
	if (rc == 0 && !visitor_uid_ok(fuzz_key, uid))
		__builtin_trap();
	if (rc != 0 && uid[0] != '\0')
		__builtin_trap();
	free(buf);
	free(text);
	return 0;
}
