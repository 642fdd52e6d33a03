/*
 * The cryptographic floor of one resolve: what central cannot avoid spending
 * on a request, whatever its HTTP, TLS and storage layers do. One EncTID is
 * opened again and again on one core through the real common/ code
 * (envelope_open_tid: base64url decode, X25519 derive, HPKE key schedule,
 * AES-128-GCM open), then the two HMACs (deident_index, deident_tid).
 * Opening the same envelope costs what opening distinct ones would: nothing
 * is cached between calls.
 *
 * Beside it, a bare X25519 derive on reused EVP objects: the part of the
 * floor that no code of ours can shrink.
 *
 * usage: cryptofloor [SECONDS]   (default: $BENCH_SECONDS/2, at least 1)
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "deident.h"
#include "envelope.h"
#include "keys.h"
#include "wipe.h"

#define CF_TID "loyalty:9900000000011"
#define CF_INFO "pos-tid/1|S1|T1|01890a5d-ac96-774b-bcce-b302099a8057"

/* Runs the whole floor until secs of thread CPU passed; returns us/op. */
static double cf_resolve_loop(const struct hpke_keypair *kp, const char *enc,
			      const unsigned char *k_index, const unsigned char *k_deident,
			      double secs, unsigned long *ops_out)
{
	char tid[ENVELOPE_MAX_PT + 1], dtid[DEIDENT_ID_LEN + 1];
	unsigned char idx[DEIDENT_INDEX_LEN];
	uint64_t start = bench_thread_cpu_ns(), limit = (uint64_t)(secs * 1e9), used = 0;
	unsigned long ops = 0;
	pos_err e;

	while (used < limit) {
		for (int i = 0; i < 200; i++) {
			if (envelope_open_tid(kp->sk, CF_INFO, enc, tid, &e) < 0 ||
			    deident_index(k_index, tid, idx, &e) < 0 ||
			    deident_tid(k_deident, tid, dtid, &e) < 0) {
				fprintf(stderr, "cryptofloor: %s\n", e.msg);
				return -1;
			}
			wipe(tid, sizeof tid);
			ops++;
		}
		used = bench_thread_cpu_ns() - start;
	}
	*ops_out = ops;
	return (double)used / 1e3 / (double)ops;
}

/* X25519 derive alone, EVP objects made once. */
static double cf_x25519_loop(const struct hpke_keypair *kp, double secs)
{
	EVP_PKEY *priv = NULL, *peer = NULL;
	EVP_PKEY_CTX *pc = NULL;
	unsigned char other[32], shared[32];
	uint64_t start, limit = (uint64_t)(secs * 1e9), used = 0;
	unsigned long ops = 0;
	double r = -1;
	size_t len;
	pos_err e;

	if (RAND_bytes(other, sizeof other) != 1 || hpke_x25519_public(other, other, &e) < 0)
		goto out;
	priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, kp->sk, 32);
	peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, other, 32);
	if (!priv || !peer || !(pc = EVP_PKEY_CTX_new(priv, NULL)) ||
	    EVP_PKEY_derive_init(pc) != 1 || EVP_PKEY_derive_set_peer(pc, peer) != 1)
		goto out;
	start = bench_thread_cpu_ns();
	while (used < limit) {
		for (int i = 0; i < 200; i++) {
			len = sizeof shared;
			if (EVP_PKEY_derive(pc, shared, &len) != 1)
				goto out;
			ops++;
		}
		used = bench_thread_cpu_ns() - start;
	}
	r = (double)used / 1e3 / (double)ops;
out:
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(peer);
	return r;
}

int main(int argc, char **argv)
{
	struct hpke_keypair kp;
	unsigned char k_index[32], k_deident[32];
	char enc[ENVELOPE_B64_MAX];
	double secs = bench_env_num("BENCH_SECONDS", 10) / 2, floor_us, x_us;
	unsigned long ops = 0;
	pos_err e;

	if (argc > 1)
		secs = strtod(argv[1], NULL);
	if (secs < 1)
		secs = 1;
	if (keys_generate(&kp, &e) < 0 || RAND_bytes(k_index, 32) != 1 ||
	    RAND_bytes(k_deident, 32) != 1 ||
	    envelope_seal_tid(kp.pk, kp.kid, CF_INFO, CF_TID, enc, &e) < 0) {
		fprintf(stderr, "cryptofloor: setup: %s\n", e.msg);
		return 1;
	}
	/* A short warm-up pays the one-time algorithm fetches outside the loop. */
	cf_resolve_loop(&kp, enc, k_index, k_deident, 0.2, &ops);
	floor_us = cf_resolve_loop(&kp, enc, k_index, k_deident, secs * 0.75, &ops);
	if (floor_us < 0)
		return 1;
	x_us = cf_x25519_loop(&kp, secs * 0.25);
	printf("resolve crypto floor: %.2f us/op (%lu ops on one core; %.0f/s)\n", floor_us, ops,
	       1e6 / floor_us);
	printf("  of which X25519 derive alone: %.2f us/op (%.0f%%)\n", x_us, 100 * x_us / floor_us);
	printf("RESULT {\"cryptofloor\":{\"us_per_op\":%.3f,\"ops\":%lu,\"x25519_us\":%.3f}}\n",
	       floor_us, ops, x_us);
	keys_wipe(&kp);
	wipe(k_index, sizeof k_index);
	wipe(k_deident, sizeof k_deident);
	return 0;
}
