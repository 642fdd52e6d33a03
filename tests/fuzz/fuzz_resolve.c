/* Feeds arbitrary bytes to the resolve request parser and, when a request
 * parses, to the EncTID opener with a fixed key pair (sk = 01..20), so the
 * base64url decoding, the HPKE open and the TID normalisation of whatever
 * an attacker seals all run. The corpus holds a request sealed to that key
 * for S1/T1, so mutations start from one that opens. It also checks that
 * resolve_parse (whose fast path reads the usual shape without jansson)
 * does exactly what the jansson path does: same result, message and
 * fields. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "keyring.h"
#include "resolve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct keyring *fuzz_kr;

static void fuzz_init(void)
{
	struct hpke_keypair kp;
	unsigned char ki[32], kd[32];
	pos_err e;

	memset(&kp, 0, sizeof kp);
	for (int i = 0; i < 32; i++)
		kp.sk[i] = (unsigned char)(i + 1);
	memset(ki, 0x11, sizeof ki);
	memset(kd, 0x22, sizeof kd);
	if (hpke_x25519_public(kp.sk, kp.pk, &e) < 0 || keyring_new(ki, kd, &fuzz_kr, &e) < 0)
		abort();
	envelope_kid(kp.pk, kp.kid);
	if (keyring_add(fuzz_kr, &kp, &e) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct resolve_req r;
	unsigned char idx[DEIDENT_INDEX_LEN];
	char dtid[DEIDENT_ID_LEN + 1];
	struct resolve_req slow;
	pos_err e = { 0 }, es = { 0 };
	json_t *root = NULL;
	int rc, rs;

	if (!fuzz_kr)
		fuzz_init();
	rc = resolve_parse((const char *)data, size, &r, &e);
	rs = jsonx_parse((const char *)data, size, RESOLVE_MAX_BODY, 4, &root, &es);
	if (rs == 0)
		rs = resolve_from_json(root, &slow, &es);
	else
		memset(&slow, 0, sizeof slow);
	json_decref(root);
	if (rc != rs || strcmp(e.msg, es.msg) != 0 || memcmp(&r, &slow, sizeof r) != 0)
		__builtin_trap();
	if (rc < 0)
		return 0;
	if (strlen(r.kid) != KEYS_KID_LEN || !r.enc[0])
		__builtin_trap();
	keyring_open(fuzz_kr, "S1", "T1", r.txn, r.kid, r.enc, idx, dtid, &e);
	return 0;
}
