/*
 * The cryptographic floor of one resolve: what central cannot avoid spending
 * on a request, whatever its HTTP, TLS and storage layers do. One EncTID is
 * opened again and again on one core through the real common/ code, the
 * calls keyring_open makes in central's keys process: envelope_open_tid_key
 * (base64url decode, X25519 derive with the private key imported once, HPKE key
 * schedule, AES-128-GCM open), then deident_index_key and deident_tid_key
 * (the two HMACs, keys prepared once). Opening the same envelope costs what
 * opening distinct ones would: nothing is cached between calls.
 *
 * Beside it, for the record: the same through the raw-key calls
 * (envelope_open_tid, deident_index, deident_tid: every key imported per
 * call), and a bare X25519 derive on reused EVP objects, the part of the
 * floor no code can shrink.
 *
 * usage: cryptofloor [SECONDS]   (default: $BENCH_SECONDS/2, at least 1)
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
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
#define CF_BATCH 200

struct cf_keys {
	struct hpke_keypair kp;
	unsigned char k_index[32], k_deident[32];
	struct envelope_key *ek;
	struct deident_key *dk_index, *dk_deident;
	char enc[ENVELOPE_B64_MAX];
};

/* One resolve's cryptography; prepared: the calls central makes. */
static int cf_once(const struct cf_keys *k, bool prepared, pos_err *e)
{
	char tid[ENVELOPE_MAX_PT + 1], dtid[DEIDENT_ID_LEN + 1];
	unsigned char idx[DEIDENT_INDEX_LEN];
	int rc;

	if (prepared)
		rc = envelope_open_tid_key(k->ek, CF_INFO, k->enc, tid, e) < 0 ||
		     deident_index_key(k->dk_index, tid, idx, e) < 0 ||
		     deident_tid_key(k->dk_deident, tid, dtid, e) < 0;
	else
		rc = envelope_open_tid(k->kp.sk, CF_INFO, k->enc, tid, e) < 0 ||
		     deident_index(k->k_index, tid, idx, e) < 0 ||
		     deident_tid(k->k_deident, tid, dtid, e) < 0;
	wipe(tid, sizeof tid);
	return rc ? -1 : 0;
}

/* Runs until secs of this thread's CPU passed; returns us/op, -1 on error. */
static double cf_loop(const struct cf_keys *k, bool prepared, double secs, unsigned long *ops_out)
{
	uint64_t start = bench_thread_cpu_ns(), limit = (uint64_t)(secs * 1e9), used = 0;
	unsigned long ops = 0;
	pos_err e;

	while (used < limit) {
		for (int i = 0; i < CF_BATCH; i++) {
			if (cf_once(k, prepared, &e) < 0) {
				fprintf(stderr, "cryptofloor: %s\n", e.msg);
				return -1;
			}
			ops++;
		}
		used = bench_thread_cpu_ns() - start;
	}
	if (ops_out)
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
		for (int i = 0; i < CF_BATCH; i++) {
			len = sizeof shared;
			if (EVP_PKEY_derive(pc, shared, &len) != 1)
				goto out;
			ops++;
		}
		used = bench_thread_cpu_ns() - start;
	}
	r = (double)used / 1e3 / (double)ops;
out:
	wipe(shared, sizeof shared);
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(peer);
	return r;
}

int main(int argc, char **argv)
{
	struct cf_keys k = { 0 };
	double secs = bench_env_num("BENCH_SECONDS", 10) / 2, floor_us, raw_us, x_us;
	unsigned long ops = 0;
	int rc = 1;
	pos_err e;

	if (argc > 1)
		secs = strtod(argv[1], NULL);
	if (secs < 1)
		secs = 1;
	if (keys_generate(&k.kp, &e) < 0 || RAND_bytes(k.k_index, 32) != 1 ||
	    RAND_bytes(k.k_deident, 32) != 1 || envelope_key_new(k.kp.sk, &k.ek, &e) < 0 ||
	    deident_key_new(k.k_index, &k.dk_index, &e) < 0 ||
	    deident_key_new(k.k_deident, &k.dk_deident, &e) < 0 ||
	    envelope_seal_tid(k.kp.pk, k.kp.kid, CF_INFO, CF_TID, k.enc, &e) < 0) {
		fprintf(stderr, "cryptofloor: setup: %s\n", e.msg);
		goto out;
	}
	/* A short warm-up pays the one-time algorithm fetches outside the loop. */
	if (cf_loop(&k, true, 0.2, NULL) < 0)
		goto out;
	floor_us = cf_loop(&k, true, secs * 0.6, &ops);
	raw_us = cf_loop(&k, false, secs * 0.25, NULL);
	x_us = cf_x25519_loop(&k.kp, secs * 0.15);
	if (floor_us < 0 || raw_us < 0 || x_us < 0)
		goto out;
	printf("resolve crypto floor (central's calls, keys prepared once): %.2f us/op "
	       "(%lu ops on one core; %.0f/s)\n",
	       floor_us, ops, 1e6 / floor_us);
	printf("  same through the raw-key calls:  %.2f us/op\n", raw_us);
	printf("  X25519 derive alone:             %.2f us/op (%.0f%% of the floor)\n", x_us,
	       100 * x_us / floor_us);
	printf("RESULT {\"cryptofloor\":{\"us_per_op\":%.3f,\"ops\":%lu,\"raw_key_us\":%.3f,"
	       "\"x25519_us\":%.3f}}\n",
	       floor_us, ops, raw_us, x_us);
	rc = 0;
out:
	envelope_key_free(k.ek);
	deident_key_free(k.dk_index);
	deident_key_free(k.dk_deident);
	keys_wipe(&k.kp);
	wipe(k.k_index, sizeof k.k_index);
	wipe(k.k_deident, sizeof k.k_deident);
	return rc;
}
