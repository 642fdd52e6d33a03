/*
 * The cryptographic floor of one resolve: what central cannot avoid spending
 * on a request, whatever its HTTP, TLS and storage layers do. One EncTID is
 * opened again and again on one core through the real common/ code
 * (envelope_open_tid: base64url decode, X25519 derive, HPKE key schedule,
 * AES-128-GCM open), then the two HMACs (deident_index, deident_tid).
 * Opening the same envelope costs what opening distinct ones would: nothing
 * is cached between calls.
 *
 * Beside it, two lower floors: the same open with the private key imported
 * into OpenSSL once (as a server that keeps its key loaded could do; built
 * from the public hpke_labeled_* steps, checked against the real open), and
 * a bare X25519 derive on reused EVP objects: the part no code can shrink.
 *
 * usage: cryptofloor [SECONDS]   (default: $BENCH_SECONDS/2, at least 1)
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "codec.h"
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

/* The receiver's objects made once: what a server keeping its key loaded
 * would hold. */
struct cf_keyed {
	EVP_PKEY *priv;
	EVP_CIPHER_CTX *gcm;
	const EVP_CIPHER *aes;
	unsigned char pk[32];
};

static const unsigned char cf_kem_suite[] = { 'K', 'E', 'M', 0x00, 0x20 };
static const unsigned char cf_hpke_suite[] = { 'H', 'P', 'K', 'E', 0, 0x20, 0, 1, 0, 1 };

/* RFC 9180 base-mode open of enc_b64 with the private key already imported:
 * one X25519 derive, the KEM ExtractAndExpand, the key schedule, AES-GCM. */
static int cf_keyed_open(struct cf_keyed *k, const char *info, const char *enc_b64,
			 char tid[ENVELOPE_MAX_PT + 1])
{
	unsigned char in[ENVELOPE_MAX_SEALED], dh[32], prk[32], shared[32], kem_ctx[64];
	unsigned char ksc[65], secret[32], key[16], nonce[12];
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *pc = NULL;
	size_t n, len = 32;
	int outl = 0, fin = 0, rc = -1;
	pos_err e;

	if (b64url_decode(enc_b64, strlen(enc_b64), in, sizeof in, &n, &e) < 0 ||
	    n < HPKE_ENC_LEN + HPKE_TAG_LEN + 1)
		return -1;
	peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, in, 32);
	if (!peer || !(pc = EVP_PKEY_CTX_new(k->priv, NULL)) || EVP_PKEY_derive_init(pc) != 1 ||
	    EVP_PKEY_derive_set_peer(pc, peer) != 1 || EVP_PKEY_derive(pc, dh, &len) != 1)
		goto out;
	memcpy(kem_ctx, in, 32);
	memcpy(kem_ctx + 32, k->pk, 32);
	ksc[0] = 0;
	if (hpke_labeled_extract(cf_kem_suite, sizeof cf_kem_suite, NULL, 0, "eae_prk", dh, 32,
				 prk, &e) < 0 ||
	    hpke_labeled_expand(cf_kem_suite, sizeof cf_kem_suite, prk, "shared_secret", kem_ctx,
				64, shared, 32, &e) < 0 ||
	    hpke_labeled_extract(cf_hpke_suite, sizeof cf_hpke_suite, NULL, 0, "psk_id_hash",
				 NULL, 0, ksc + 1, &e) < 0 ||
	    hpke_labeled_extract(cf_hpke_suite, sizeof cf_hpke_suite, NULL, 0, "info_hash",
				 (const unsigned char *)info, strlen(info), ksc + 33, &e) < 0 ||
	    hpke_labeled_extract(cf_hpke_suite, sizeof cf_hpke_suite, shared, 32, "secret", NULL,
				 0, secret, &e) < 0 ||
	    hpke_labeled_expand(cf_hpke_suite, sizeof cf_hpke_suite, secret, "key", ksc, 65, key,
				16, &e) < 0 ||
	    hpke_labeled_expand(cf_hpke_suite, sizeof cf_hpke_suite, secret, "base_nonce", ksc,
				65, nonce, 12, &e) < 0)
		goto out;
	n -= HPKE_ENC_LEN + HPKE_TAG_LEN;
	if (n > ENVELOPE_MAX_PT ||
	    EVP_DecryptInit_ex(k->gcm, k->aes, NULL, key, nonce) != 1 ||
	    EVP_CIPHER_CTX_ctrl(k->gcm, EVP_CTRL_GCM_SET_TAG, HPKE_TAG_LEN,
				in + HPKE_ENC_LEN + n) != 1 ||
	    EVP_DecryptUpdate(k->gcm, (unsigned char *)tid, &outl, in + HPKE_ENC_LEN,
			      (int)n) != 1 ||
	    EVP_DecryptFinal_ex(k->gcm, (unsigned char *)tid + outl, &fin) != 1)
		goto out;
	tid[outl + fin] = '\0';
	rc = 0;
out:
	wipe(dh, sizeof dh);
	wipe(prk, sizeof prk);
	wipe(shared, sizeof shared);
	wipe(secret, sizeof secret);
	wipe(key, sizeof key);
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(peer);
	return rc;
}

/* The floor with the key imported once: us/op, -1 on failure. */
static double cf_keyed_loop(const struct hpke_keypair *kp, const char *enc,
			    const unsigned char *k_index, const unsigned char *k_deident,
			    double secs)
{
	struct cf_keyed k = { 0 };
	char tid[ENVELOPE_MAX_PT + 1], dtid[DEIDENT_ID_LEN + 1];
	unsigned char idx[DEIDENT_INDEX_LEN];
	uint64_t start, limit = (uint64_t)(secs * 1e9), used = 0;
	unsigned long ops = 0;
	double r = -1;
	pos_err e;

	memcpy(k.pk, kp->pk, 32);
	k.priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, kp->sk, 32);
	k.gcm = EVP_CIPHER_CTX_new();
	k.aes = EVP_aes_128_gcm();
	if (!k.priv || !k.gcm)
		goto out;
	/* Same answer as the real open, or the figure means nothing. */
	if (cf_keyed_open(&k, CF_INFO, enc, tid) < 0 || strcmp(tid, CF_TID) != 0) {
		fprintf(stderr, "cryptofloor: the keyed-once open disagrees with envelope_open\n");
		goto out;
	}
	start = bench_thread_cpu_ns();
	while (used < limit) {
		for (int i = 0; i < 200; i++) {
			if (cf_keyed_open(&k, CF_INFO, enc, tid) < 0 ||
			    deident_index(k_index, tid, idx, &e) < 0 ||
			    deident_tid(k_deident, tid, dtid, &e) < 0)
				goto out;
			wipe(tid, sizeof tid);
			ops++;
		}
		used = bench_thread_cpu_ns() - start;
	}
	r = (double)used / 1e3 / (double)ops;
out:
	EVP_CIPHER_CTX_free(k.gcm);
	EVP_PKEY_free(k.priv);
	return r;
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
	double secs = bench_env_num("BENCH_SECONDS", 10) / 2, floor_us, keyed_us, x_us;
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
	floor_us = cf_resolve_loop(&kp, enc, k_index, k_deident, secs * 0.6, &ops);
	keyed_us = cf_keyed_loop(&kp, enc, k_index, k_deident, secs * 0.25);
	x_us = cf_x25519_loop(&kp, secs * 0.15);
	if (floor_us < 0 || keyed_us < 0 || x_us < 0)
		return 1;
	printf("resolve crypto floor (common/ code): %.2f us/op (%lu ops on one core; %.0f/s)\n",
	       floor_us, ops, 1e6 / floor_us);
	printf("  same open, private key imported once: %.2f us/op\n", keyed_us);
	printf("  X25519 derive alone:                  %.2f us/op\n", x_us);
	printf("RESULT {\"cryptofloor\":{\"us_per_op\":%.3f,\"ops\":%lu,\"keyed_once_us\":%.3f,"
	       "\"x25519_us\":%.3f}}\n",
	       floor_us, ops, keyed_us, x_us);
	keys_wipe(&kp);
	wipe(k_index, sizeof k_index);
	wipe(k_deident, sizeof k_deident);
	return 0;
}
