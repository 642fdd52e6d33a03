#include "envelope.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "codec.h"
#include "ids.h"
#include "wipe.h"

/*
 * RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256) only. OpenSSL 3.0 has no
 * HPKE, so the pieces are put together here: HKDF is written out over HMAC
 * (one EVP_MAC_CTX per operation, re-keyed for each step), X25519 through
 * EVP_PKEY_derive, AES-GCM through EVP_CIPHER.
 *
 * Cost: on OpenSSL 3.0 importing a raw X25519 private key computes its
 * public key, a full scalar multiplication as dear as the derive itself,
 * and fetching an algorithm by name is a locked provider lookup. A
 * recipient that opens many envelopes imports its key once (struct
 * envelope_key) and everything fetchable is fetched once per process.
 */

#define HPKE_NH 32 /* SHA-256 output */
#define HPKE_VERSION_LABEL "HPKE-v1"

/* Fetched once per process and read-only after the pthread_once, so threads
 * share them without a lock. hmac_tmpl is an unkeyed HMAC-SHA256 context:
 * duplicating it skips the digest lookup that setting "SHA256" by name
 * costs on every new context. */
static struct {
	EVP_CIPHER *aes128gcm;
	EVP_CIPHER *aes256gcm;
	EVP_MAC *hmac;
	EVP_MAC_CTX *hmac_tmpl;
} envelope_algs;
static pthread_once_t envelope_algs_once = PTHREAD_ONCE_INIT;

static void envelope_algs_fetch(void)
{
	OSSL_PARAM params[2];

	envelope_algs.aes128gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
	envelope_algs.aes256gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	envelope_algs.hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!envelope_algs.hmac)
		return;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	envelope_algs.hmac_tmpl = EVP_MAC_CTX_new(envelope_algs.hmac);
	if (envelope_algs.hmac_tmpl && !EVP_MAC_CTX_set_params(envelope_algs.hmac_tmpl, params)) {
		EVP_MAC_CTX_free(envelope_algs.hmac_tmpl);
		envelope_algs.hmac_tmpl = NULL;
	}
}

static int envelope_algs_ready(pos_err *e)
{
	pthread_once(&envelope_algs_once, envelope_algs_fetch);
	if (!envelope_algs.aes128gcm || !envelope_algs.aes256gcm || !envelope_algs.hmac_tmpl)
		return err_set(e, POS_ECRYPTO, "hpke: OpenSSL lacks AES-GCM or HMAC-SHA256");
	return 0;
}

static const unsigned char envelope_kem_suite[5] = { 'K', 'E', 'M', 0x00, 0x20 };

static void envelope_hpke_suite(uint16_t aead_id, unsigned char suite[10])
{
	memcpy(suite, "HPKE", 4);
	suite[4] = HPKE_KEM_X25519_SHA256 >> 8;
	suite[5] = HPKE_KEM_X25519_SHA256 & 0xff;
	suite[6] = HPKE_KDF_SHA256 >> 8;
	suite[7] = HPKE_KDF_SHA256 & 0xff;
	suite[8] = (unsigned char)(aead_id >> 8);
	suite[9] = (unsigned char)(aead_id & 0xff);
}

static int envelope_aead_key_len(uint16_t aead_id, size_t *len, pos_err *e)
{
	switch (aead_id) {
	case HPKE_AEAD_AES128GCM:
		*len = 16;
		return 0;
	case HPKE_AEAD_AES256GCM:
		*len = 32;
		return 0;
	default:
		return err_set(e, POS_EINVAL, "hpke: unsupported aead id 0x%04x", aead_id);
	}
}

/* ------------------------------------------------------------ HKDF over HMAC */

struct envelope_part {
	const void *p;
	size_t n;
};

/* Needs envelope_algs_ready() first. */
static EVP_MAC_CTX *envelope_mac_new(void)
{
	return EVP_MAC_CTX_dup(envelope_algs.hmac_tmpl);
}

/* HMAC-SHA256(key, parts...). key is never NULL when passed to OpenSSL: a NULL
 * key would silently reuse the previous step's key. */
static int envelope_hmac(EVP_MAC_CTX *m, const unsigned char *key, size_t key_len,
			 const struct envelope_part *parts, size_t nparts,
			 unsigned char out[HPKE_NH])
{
	static const unsigned char empty[1];
	size_t i, outl = 0;

	if (!EVP_MAC_init(m, key_len ? key : empty, key_len, NULL))
		return -1;
	for (i = 0; i < nparts; i++)
		if (parts[i].n && !EVP_MAC_update(m, parts[i].p, parts[i].n))
			return -1;
	if (!EVP_MAC_final(m, out, &outl, HPKE_NH) || outl != HPKE_NH)
		return -1;
	return 0;
}

static int envelope_extract(EVP_MAC_CTX *m, const unsigned char *suite, size_t suite_len,
			    const unsigned char *salt, size_t salt_len, const char *label,
			    const unsigned char *ikm, size_t ikm_len, unsigned char prk[HPKE_NH])
{
	const struct envelope_part parts[] = {
		{ HPKE_VERSION_LABEL, sizeof HPKE_VERSION_LABEL - 1 },
		{ suite, suite_len },
		{ label, strlen(label) },
		{ ikm, ikm_len },
	};

	return envelope_hmac(m, salt, salt_len, parts, 4, prk);
}

static int envelope_expand(EVP_MAC_CTX *m, const unsigned char *suite, size_t suite_len,
			   const unsigned char prk[HPKE_NH], const char *label,
			   const unsigned char *info, size_t info_len, unsigned char *out,
			   size_t out_len)
{
	unsigned char t[HPKE_NH], len2[2], ctr;
	size_t done = 0, tlen = 0;
	int rc = -1;

	if (out_len == 0 || out_len > 255 * HPKE_NH)
		return -1;
	len2[0] = (unsigned char)(out_len >> 8);
	len2[1] = (unsigned char)out_len;
	for (ctr = 1; done < out_len; ctr++) {
		const struct envelope_part parts[] = {
			{ t, tlen },
			{ len2, 2 },
			{ HPKE_VERSION_LABEL, sizeof HPKE_VERSION_LABEL - 1 },
			{ suite, suite_len },
			{ label, strlen(label) },
			{ info, info_len },
			{ &ctr, 1 },
		};
		size_t take;

		if (envelope_hmac(m, prk, HPKE_NH, parts, 7, t) != 0)
			goto out;
		tlen = HPKE_NH;
		take = out_len - done < HPKE_NH ? out_len - done : HPKE_NH;
		memcpy(out + done, t, take);
		done += take;
	}
	rc = 0;
out:
	wipe(t, sizeof t);
	if (rc != 0)
		wipe(out, out_len);
	return rc;
}

int hpke_labeled_extract(const unsigned char *suite_id, size_t suite_id_len,
			 const unsigned char *salt, size_t salt_len, const char *label,
			 const unsigned char *ikm, size_t ikm_len, unsigned char prk[32],
			 pos_err *e)
{
	EVP_MAC_CTX *m = NULL;
	int rc;

	if ((rc = envelope_algs_ready(e)) != 0)
		return rc;
	if (!label || !prk || (!suite_id && suite_id_len) || (!salt && salt_len) ||
	    (!ikm && ikm_len))
		return err_set(e, POS_EINVAL, "hpke: labeled extract: missing argument");
	rc = POS_ECRYPTO;
	if (!(m = envelope_mac_new()) ||
	    envelope_extract(m, suite_id, suite_id_len, salt, salt_len, label, ikm, ikm_len,
			     prk) != 0) {
		err_set(e, rc, "hpke: labeled extract failed");
		goto out;
	}
	rc = 0;
out:
	EVP_MAC_CTX_free(m);
	return rc;
}

int hpke_labeled_expand(const unsigned char *suite_id, size_t suite_id_len,
			const unsigned char prk[32], const char *label, const unsigned char *info,
			size_t info_len, unsigned char *out, size_t out_len, pos_err *e)
{
	EVP_MAC_CTX *m = NULL;
	int rc;

	if ((rc = envelope_algs_ready(e)) != 0)
		return rc;
	if (!label || !prk || !out || (!suite_id && suite_id_len) || (!info && info_len))
		return err_set(e, POS_EINVAL, "hpke: labeled expand: missing argument");
	if (out_len == 0 || out_len > 255 * HPKE_NH)
		return err_set(e, POS_EINVAL, "hpke: labeled expand: length %zu out of range",
			       out_len);
	rc = POS_ECRYPTO;
	if (!(m = envelope_mac_new()) ||
	    envelope_expand(m, suite_id, suite_id_len, prk, label, info, info_len, out,
			    out_len) != 0) {
		err_set(e, rc, "hpke: labeled expand failed");
		goto out;
	}
	rc = 0;
out:
	EVP_MAC_CTX_free(m);
	return rc;
}

/* ------------------------------------------------------------------ X25519 */

struct envelope_key {
	EVP_PKEY *priv;
	/* A derive context on priv, initialised once and never used itself:
	 * each DH works on a duplicate. EVP_PKEY_CTX_dup takes a const
	 * pointer, and OpenSSL objects only read through const pointers may be
	 * shared by threads. A duplicate costs ~0.1 us where a new context
	 * plus derive_init costs ~1.5 us on OpenSSL 3.0. */
	EVP_PKEY_CTX *derive;
	unsigned char pk[32];
};

/* Imports sk; OpenSSL computes the public key during the import. */
static EVP_PKEY *envelope_pkey_private(const unsigned char sk[32], unsigned char pk[32])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, 32);
	size_t len = 32;

	if (k && (EVP_PKEY_get_raw_public_key(k, pk, &len) != 1 || len != 32)) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	return k;
}

static EVP_PKEY_CTX *envelope_derive_ctx(EVP_PKEY *priv)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(priv, NULL);

	if (pc && EVP_PKEY_derive_init(pc) != 1) {
		EVP_PKEY_CTX_free(pc);
		pc = NULL;
	}
	return pc;
}

static int envelope_x25519_pub(const unsigned char sk[32], unsigned char pk[32])
{
	EVP_PKEY *k = envelope_pkey_private(sk, pk);

	EVP_PKEY_free(k);
	return k ? 0 : -1;
}

/* DH(private key of tmpl, pk), on a duplicate of tmpl. Fails on an
 * all-zero result (a small-order peer point), as RFC 9180 7.1.4 requires.
 * That check is the one that matters for X25519, so OpenSSL's own peer
 * validation (for X25519 only "has a public key", at ~1 us) is skipped. */
static int envelope_x25519_dh(const EVP_PKEY_CTX *tmpl, const unsigned char pk[32],
			      unsigned char out[32])
{
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *pc = NULL;
	unsigned char acc = 0;
	size_t len = 32, i;
	int rc = -1;

	peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pk, 32);
	if (!peer || !(pc = EVP_PKEY_CTX_dup(tmpl)) ||
	    EVP_PKEY_derive_set_peer_ex(pc, peer, 0) != 1 ||
	    EVP_PKEY_derive(pc, out, &len) != 1 || len != 32)
		goto out;
	for (i = 0; i < 32; i++)
		acc |= out[i];
	if (acc == 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		wipe(out, 32);
	EVP_PKEY_CTX_free(pc);
	EVP_PKEY_free(peer);
	return rc;
}

int envelope_key_new(const unsigned char sk[32], struct envelope_key **out, pos_err *e)
{
	struct envelope_key *k;

	if (!out)
		return err_set(e, POS_EINVAL, "envelope key: missing output");
	*out = NULL;
	if (!sk)
		return err_set(e, POS_EINVAL, "envelope key: missing private key");
	if (!(k = calloc(1, sizeof *k)))
		return err_set(e, POS_ENOMEM, "envelope key: out of memory");
	if (!(k->priv = envelope_pkey_private(sk, k->pk)) ||
	    !(k->derive = envelope_derive_ctx(k->priv))) {
		envelope_key_free(k);
		return err_set(e, POS_ECRYPTO, "envelope key: not a usable X25519 private key");
	}
	*out = k;
	return 0;
}

void envelope_key_free(struct envelope_key *k)
{
	if (!k)
		return;
	EVP_PKEY_CTX_free(k->derive);
	EVP_PKEY_free(k->priv); /* OpenSSL clears the key material it holds */
	wipe_free(k, sizeof *k);
}

const unsigned char *envelope_key_public(const struct envelope_key *k)
{
	return k ? k->pk : NULL;
}

int hpke_x25519_public(const unsigned char sk[32], unsigned char pk[32], pos_err *e)
{
	if (!sk || !pk)
		return err_set(e, POS_EINVAL, "x25519: missing key buffer");
	if (envelope_x25519_pub(sk, pk) != 0)
		return err_set(e, POS_ECRYPTO, "x25519: cannot compute the public key");
	return 0;
}

int hpke_derive_keypair(const unsigned char *ikm, size_t ikm_len, unsigned char sk[32],
			unsigned char pk[32], pos_err *e)
{
	unsigned char prk[HPKE_NH];
	EVP_MAC_CTX *m = NULL;
	int rc;

	if ((rc = envelope_algs_ready(e)) != 0)
		return rc;
	if (!sk || !pk || (!ikm && ikm_len))
		return err_set(e, POS_EINVAL, "hpke: derive keypair: missing argument");
	/* RFC 9180 7.1.3: ikm must carry at least Nsk bytes of entropy. */
	if (ikm_len < 32)
		return err_set(e, POS_EINVAL, "hpke: derive keypair: ikm shorter than 32 bytes");
	rc = POS_ECRYPTO;
	if (!(m = envelope_mac_new()) ||
	    envelope_extract(m, envelope_kem_suite, sizeof envelope_kem_suite, NULL, 0,
			     "dkp_prk", ikm, ikm_len, prk) != 0 ||
	    envelope_expand(m, envelope_kem_suite, sizeof envelope_kem_suite, prk, "sk", NULL, 0,
			    sk, 32) != 0 ||
	    envelope_x25519_pub(sk, pk) != 0) {
		wipe(sk, 32);
		err_set(e, rc, "hpke: derive keypair failed");
		goto out;
	}
	rc = 0;
out:
	wipe(prk, sizeof prk);
	EVP_MAC_CTX_free(m);
	return rc;
}

/* ------------------------------------------------------------ key schedule */

/* ExtractAndExpand of DHKEM: shared_secret from dh and enc || pkR. */
static int envelope_kem_secret(EVP_MAC_CTX *m, const unsigned char dh[32],
			       const unsigned char enc[32], const unsigned char pkR[32],
			       unsigned char shared[32])
{
	unsigned char prk[HPKE_NH], kem_ctx[64];
	int rc;

	memcpy(kem_ctx, enc, 32);
	memcpy(kem_ctx + 32, pkR, 32);
	rc = envelope_extract(m, envelope_kem_suite, sizeof envelope_kem_suite, NULL, 0,
			      "eae_prk", dh, 32, prk);
	if (rc == 0)
		rc = envelope_expand(m, envelope_kem_suite, sizeof envelope_kem_suite, prk,
				     "shared_secret", kem_ctx, sizeof kem_ctx, shared, 32);
	wipe(prk, sizeof prk);
	return rc;
}

/* KeySchedule<ROLE>() of RFC 9180 5.1 for mode_base (psk and psk_id empty).
 * exporter false skips the exporter secret (left zero): a single-shot open
 * never exports, and that is one HMAC less per resolve. */
static int envelope_key_schedule(EVP_MAC_CTX *m, uint16_t aead_id,
				 const unsigned char shared[32], const unsigned char *info,
				 size_t info_len, bool exporter, struct hpke_ctx *ctx)
{
	unsigned char suite[10], ksc[1 + 2 * HPKE_NH], secret[HPKE_NH];
	int rc = -1;

	envelope_hpke_suite(aead_id, suite);
	ksc[0] = 0x00; /* mode_base */
	if (envelope_extract(m, suite, sizeof suite, NULL, 0, "psk_id_hash", NULL, 0, ksc + 1) ||
	    envelope_extract(m, suite, sizeof suite, NULL, 0, "info_hash", info, info_len,
			     ksc + 1 + HPKE_NH) ||
	    envelope_extract(m, suite, sizeof suite, shared, 32, "secret", NULL, 0, secret) ||
	    envelope_expand(m, suite, sizeof suite, secret, "key", ksc, sizeof ksc, ctx->key,
			    ctx->key_len) ||
	    envelope_expand(m, suite, sizeof suite, secret, "base_nonce", ksc, sizeof ksc,
			    ctx->base_nonce, HPKE_NONCE_LEN) ||
	    (exporter && envelope_expand(m, suite, sizeof suite, secret, "exp", ksc, sizeof ksc,
					 ctx->exporter_secret, sizeof ctx->exporter_secret)))
		goto out;
	ctx->aead_id = aead_id;
	ctx->seq = 0;
	rc = 0;
out:
	wipe(secret, sizeof secret);
	return rc;
}

int hpke_setup_base_s(uint16_t aead_id, const unsigned char pkR[32],
		      const unsigned char *skE, const unsigned char *info, size_t info_len,
		      unsigned char enc[HPKE_ENC_LEN], unsigned char *shared_secret,
		      struct hpke_ctx *ctx, pos_err *e)
{
	unsigned char ske[32], dh[32], shared[32];
	EVP_MAC_CTX *m = NULL;
	EVP_PKEY *eph = NULL;
	EVP_PKEY_CTX *dc = NULL;
	size_t key_len = 0;
	int rc;

	if (ctx)
		memset(ctx, 0, sizeof *ctx);
	if ((rc = envelope_algs_ready(e)) != 0)
		return rc;
	if (!pkR || !enc || !ctx || (!info && info_len))
		return err_set(e, POS_EINVAL, "hpke: setup: missing argument");
	if ((rc = envelope_aead_key_len(aead_id, &key_len, e)) != 0)
		return rc;
	ctx->key_len = key_len;
	if (skE) {
		memcpy(ske, skE, 32);
	} else if (RAND_priv_bytes(ske, sizeof ske) != 1) {
		rc = err_set(e, POS_ECRYPTO, "hpke: random generator failed");
		goto out;
	}
	rc = POS_ECRYPTO;
	/* One import gives both enc (the public key) and the DH. */
	if (!(eph = envelope_pkey_private(ske, enc)) || !(dc = envelope_derive_ctx(eph)) ||
	    envelope_x25519_dh(dc, pkR, dh) != 0) {
		err_set(e, rc, "hpke: key agreement with the recipient key failed");
		goto out;
	}
	if (!(m = envelope_mac_new()) || envelope_kem_secret(m, dh, enc, pkR, shared) != 0 ||
	    envelope_key_schedule(m, aead_id, shared, info, info_len, true, ctx) != 0) {
		err_set(e, rc, "hpke: key schedule failed");
		goto out;
	}
	if (shared_secret)
		memcpy(shared_secret, shared, 32);
	rc = 0;
out:
	if (rc != 0)
		hpke_ctx_wipe(ctx);
	wipe(ske, sizeof ske);
	wipe(dh, sizeof dh);
	wipe(shared, sizeof shared);
	EVP_PKEY_CTX_free(dc);
	EVP_PKEY_free(eph);
	EVP_MAC_CTX_free(m);
	return rc;
}

/* SetupBaseR with a prepared key: the DH is the only X25519 operation. */
static int envelope_setup_r(uint16_t aead_id, const struct envelope_key *k,
			    const unsigned char enc[HPKE_ENC_LEN], const unsigned char *info,
			    size_t info_len, bool exporter, struct hpke_ctx *ctx, pos_err *e)
{
	unsigned char dh[32], shared[32];
	EVP_MAC_CTX *m = NULL;
	size_t key_len = 0;
	int rc;

	if (ctx)
		memset(ctx, 0, sizeof *ctx);
	if ((rc = envelope_algs_ready(e)) != 0)
		return rc;
	if (!k || !enc || !ctx || (!info && info_len))
		return err_set(e, POS_EINVAL, "hpke: setup: missing argument");
	if ((rc = envelope_aead_key_len(aead_id, &key_len, e)) != 0)
		return rc;
	ctx->key_len = key_len;
	rc = POS_ECRYPTO;
	if (envelope_x25519_dh(k->derive, enc, dh) != 0) {
		err_set(e, rc, "hpke: key agreement with the sender's key failed");
		goto out;
	}
	if (!(m = envelope_mac_new()) || envelope_kem_secret(m, dh, enc, k->pk, shared) != 0 ||
	    envelope_key_schedule(m, aead_id, shared, info, info_len, exporter, ctx) != 0) {
		err_set(e, rc, "hpke: key schedule failed");
		goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		hpke_ctx_wipe(ctx);
	wipe(dh, sizeof dh);
	wipe(shared, sizeof shared);
	EVP_MAC_CTX_free(m);
	return rc;
}

int hpke_setup_base_r(uint16_t aead_id, const unsigned char skR[32],
		      const unsigned char enc[HPKE_ENC_LEN], const unsigned char *info,
		      size_t info_len, struct hpke_ctx *ctx, pos_err *e)
{
	struct envelope_key *k = NULL;
	int rc;

	if (ctx)
		memset(ctx, 0, sizeof *ctx);
	if (!skR)
		return err_set(e, POS_EINVAL, "hpke: setup: missing argument");
	if ((rc = envelope_key_new(skR, &k, e)) != 0)
		return rc == POS_ENOMEM ? rc
					: err_set(e, POS_ECRYPTO,
						  "hpke: key agreement with the sender's key failed");
	rc = envelope_setup_r(aead_id, k, enc, info, info_len, true, ctx, e);
	envelope_key_free(k);
	return rc;
}

/* ------------------------------------------------------------------- AEAD */

static const EVP_CIPHER *envelope_cipher(const struct hpke_ctx *ctx)
{
	if (ctx->aead_id == HPKE_AEAD_AES128GCM && ctx->key_len == 16)
		return envelope_algs.aes128gcm;
	if (ctx->aead_id == HPKE_AEAD_AES256GCM && ctx->key_len == 32)
		return envelope_algs.aes256gcm;
	return NULL;
}

static void envelope_nonce(const struct hpke_ctx *ctx, unsigned char nonce[HPKE_NONCE_LEN])
{
	int i;

	memcpy(nonce, ctx->base_nonce, HPKE_NONCE_LEN);
	for (i = 0; i < 8; i++)
		nonce[HPKE_NONCE_LEN - 1 - i] ^= (unsigned char)(ctx->seq >> (8 * i));
}

/* Arguments shared by seal and open. The sequence number must never wrap:
 * a repeated nonce under one key breaks GCM (RFC 9180 5.2). */
static int envelope_aead_check(const struct hpke_ctx *ctx, const unsigned char *aad,
			       size_t aad_len, const unsigned char *in, size_t in_len,
			       const EVP_CIPHER **cipher, pos_err *e)
{
	int rc;

	if ((rc = envelope_algs_ready(e)) != 0)
		return rc;
	if (!ctx || (!aad && aad_len) || (!in && in_len))
		return err_set(e, POS_EINVAL, "hpke: missing argument");
	if (aad_len > INT_MAX || in_len > INT_MAX - HPKE_TAG_LEN)
		return err_set(e, POS_ETOOBIG, "hpke: message too long");
	if (!(*cipher = envelope_cipher(ctx)))
		return err_set(e, POS_EINVAL, "hpke: context not set up");
	if (ctx->seq == UINT64_MAX)
		return err_set(e, POS_ECRYPTO, "hpke: sequence number exhausted");
	return 0;
}

int hpke_seal(struct hpke_ctx *ctx, const unsigned char *aad, size_t aad_len,
	      const unsigned char *pt, size_t pt_len, unsigned char *ct, pos_err *e)
{
	unsigned char nonce[HPKE_NONCE_LEN];
	const EVP_CIPHER *cipher = NULL;
	EVP_CIPHER_CTX *c = NULL;
	int rc, n = 0, fl = 0;

	if ((rc = envelope_aead_check(ctx, aad, aad_len, pt, pt_len, &cipher, e)) != 0)
		return rc;
	if (!ct)
		return err_set(e, POS_EINVAL, "hpke: missing output buffer");
	envelope_nonce(ctx, nonce);
	rc = POS_ECRYPTO;
	if (!(c = EVP_CIPHER_CTX_new()) ||
	    EVP_EncryptInit_ex2(c, cipher, ctx->key, nonce, NULL) != 1 ||
	    (aad_len && EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len) != 1) ||
	    (pt_len && EVP_EncryptUpdate(c, ct, &n, pt, (int)pt_len) != 1) ||
	    EVP_EncryptFinal_ex(c, ct + (pt_len ? (size_t)n : 0), &fl) != 1 ||
	    (pt_len ? (size_t)n : 0) + (size_t)fl != pt_len ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, HPKE_TAG_LEN, ct + pt_len) != 1) {
		wipe(ct, pt_len + HPKE_TAG_LEN);
		err_set(e, rc, "hpke: seal failed");
		goto out;
	}
	ctx->seq++;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(c);
	return rc;
}

int hpke_open(struct hpke_ctx *ctx, const unsigned char *aad, size_t aad_len,
	      const unsigned char *ct, size_t ct_len, unsigned char *pt, pos_err *e)
{
	unsigned char nonce[HPKE_NONCE_LEN], tag[HPKE_TAG_LEN];
	const EVP_CIPHER *cipher = NULL;
	EVP_CIPHER_CTX *c = NULL;
	size_t body;
	int rc, n = 0, fl = 0;

	if ((rc = envelope_aead_check(ctx, aad, aad_len, ct, ct_len, &cipher, e)) != 0)
		return rc;
	if (ct_len < HPKE_TAG_LEN)
		return err_set(e, POS_EINVAL, "hpke: ciphertext shorter than its tag");
	body = ct_len - HPKE_TAG_LEN;
	if (!pt && body)
		return err_set(e, POS_EINVAL, "hpke: missing output buffer");
	memcpy(tag, ct + body, HPKE_TAG_LEN);
	envelope_nonce(ctx, nonce);
	rc = POS_ECRYPTO;
	if (!(c = EVP_CIPHER_CTX_new()) ||
	    EVP_DecryptInit_ex2(c, cipher, ctx->key, nonce, NULL) != 1 ||
	    (aad_len && EVP_DecryptUpdate(c, NULL, &n, aad, (int)aad_len) != 1) ||
	    (body && EVP_DecryptUpdate(c, pt, &n, ct, (int)body) != 1) ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, HPKE_TAG_LEN, tag) != 1) {
		err_set(e, rc, "hpke: open failed");
		goto fail;
	}
	/* Final checks the tag: until it passes, pt holds unauthenticated
	 * bytes, which the caller must never see. */
	if (EVP_DecryptFinal_ex(c, pt ? pt + (body ? (size_t)n : 0) : NULL, &fl) != 1) {
		err_set(e, rc, "hpke: open failed: message or key does not authenticate");
		goto fail;
	}
	ctx->seq++;
	rc = 0;
	goto out;
fail:
	if (pt)
		wipe(pt, body);
out:
	EVP_CIPHER_CTX_free(c);
	return rc;
}

int hpke_export(const struct hpke_ctx *ctx, const unsigned char *exp_ctx, size_t exp_ctx_len,
		unsigned char *out, size_t out_len, pos_err *e)
{
	unsigned char suite[10];
	EVP_MAC_CTX *m = NULL;
	int rc;

	if ((rc = envelope_algs_ready(e)) != 0)
		return rc;
	if (!ctx || !out || (!exp_ctx && exp_ctx_len))
		return err_set(e, POS_EINVAL, "hpke: export: missing argument");
	if (!envelope_cipher(ctx))
		return err_set(e, POS_EINVAL, "hpke: export: context not set up");
	if (out_len == 0 || out_len > 255 * HPKE_NH)
		return err_set(e, POS_EINVAL, "hpke: export: length %zu out of range", out_len);
	envelope_hpke_suite(ctx->aead_id, suite);
	rc = POS_ECRYPTO;
	if (!(m = envelope_mac_new()) ||
	    envelope_expand(m, suite, sizeof suite, ctx->exporter_secret, "sec", exp_ctx,
			    exp_ctx_len, out, out_len) != 0) {
		err_set(e, rc, "hpke: export failed");
		goto out;
	}
	rc = 0;
out:
	EVP_MAC_CTX_free(m);
	return rc;
}

void hpke_ctx_wipe(struct hpke_ctx *ctx)
{
	if (ctx)
		wipe(ctx, sizeof *ctx);
}

/* ------------------------------------------------------------- EncTID */

/* Ids go into info between '|' separators, so they must not contain one:
 * the charset of design section 2 keeps info unambiguous. */
static int envelope_id_ok(const char *s, const char *what, pos_err *e)
{
	if (!s)
		return err_set(e, POS_EINVAL, "envelope info: missing %s", what);
	if (!ids_valid(s))
		return err_set(e, POS_EINVAL, "envelope info: %s must match " IDS_RULE, what);
	return 0;
}

int envelope_info(char out[ENVELOPE_INFO_MAX], const char *store, const char *terminal,
		  const char *txn, pos_err *e)
{
	int rc, n;

	if (!out)
		return err_set(e, POS_EINVAL, "envelope info: missing output buffer");
	out[0] = '\0';
	if ((rc = envelope_id_ok(store, "store", e)) != 0 ||
	    (rc = envelope_id_ok(terminal, "terminal", e)) != 0 ||
	    (rc = envelope_id_ok(txn, "txn", e)) != 0)
		return rc;
	n = snprintf(out, ENVELOPE_INFO_MAX, "pos-tid/1|%s|%s|%s", store, terminal, txn);
	if (n < 0 || n >= ENVELOPE_INFO_MAX) {
		out[0] = '\0';
		return err_set(e, POS_ETOOBIG, "envelope info: too long");
	}
	return 0;
}

static int envelope_info_len(const char *info, size_t *len, pos_err *e)
{
	if (!info)
		return err_set(e, POS_EINVAL, "envelope: missing info");
	*len = strnlen(info, ENVELOPE_INFO_MAX);
	if (*len >= ENVELOPE_INFO_MAX)
		return err_set(e, POS_EINVAL, "envelope: info longer than %d bytes",
			       ENVELOPE_INFO_MAX - 1);
	return 0;
}

int envelope_seal(const unsigned char pkR[32], const char *info, const unsigned char *pt,
		  size_t pt_len, unsigned char *out, size_t out_cap, size_t *out_len,
		  pos_err *e)
{
	struct hpke_ctx ctx;
	size_t info_len;
	int rc;

	if (out_len)
		*out_len = 0;
	if (!pkR || !pt || !out || !out_len)
		return err_set(e, POS_EINVAL, "envelope seal: missing argument");
	if ((rc = envelope_info_len(info, &info_len, e)) != 0)
		return rc;
	if (pt_len == 0 || pt_len > ENVELOPE_MAX_PT)
		return err_set(e, POS_EINVAL, "envelope seal: plaintext must be 1..%d bytes",
			       ENVELOPE_MAX_PT);
	if (out_cap < HPKE_ENC_LEN + pt_len + HPKE_TAG_LEN)
		return err_set(e, POS_ETOOBIG, "envelope seal: output buffer too small");
	rc = hpke_setup_base_s(HPKE_AEAD_AES128GCM, pkR, NULL, (const unsigned char *)info,
			       info_len, out, NULL, &ctx, e);
	if (rc == 0)
		rc = hpke_seal(&ctx, NULL, 0, pt, pt_len, out + HPKE_ENC_LEN, e);
	hpke_ctx_wipe(&ctx);
	if (rc != 0)
		return rc;
	*out_len = HPKE_ENC_LEN + pt_len + HPKE_TAG_LEN;
	return 0;
}

int envelope_open_key(const struct envelope_key *k, const char *info, const unsigned char *in,
		      size_t in_len, unsigned char *pt, size_t pt_cap, size_t *pt_len, pos_err *e)
{
	struct hpke_ctx ctx;
	size_t info_len, body;
	int rc;

	memset(&ctx, 0, sizeof ctx);
	if (pt_len)
		*pt_len = 0;
	if (!k || !in || !pt || !pt_len) {
		rc = err_set(e, POS_EINVAL, "envelope open: missing argument");
		goto fail;
	}
	if ((rc = envelope_info_len(info, &info_len, e)) != 0)
		goto fail;
	if (in_len < HPKE_ENC_LEN + HPKE_TAG_LEN + 1 || in_len > ENVELOPE_MAX_SEALED) {
		rc = err_set(e, POS_EINVAL, "envelope open: sealed length %zu outside %d..%d",
			     in_len, HPKE_ENC_LEN + HPKE_TAG_LEN + 1, ENVELOPE_MAX_SEALED);
		goto fail;
	}
	body = in_len - HPKE_ENC_LEN - HPKE_TAG_LEN;
	if (pt_cap < body) {
		rc = err_set(e, POS_ETOOBIG, "envelope open: output buffer too small");
		goto fail;
	}
	if ((rc = envelope_setup_r(HPKE_AEAD_AES128GCM, k, in, (const unsigned char *)info,
				   info_len, false, &ctx, e)) != 0 ||
	    (rc = hpke_open(&ctx, NULL, 0, in + HPKE_ENC_LEN, in_len - HPKE_ENC_LEN, pt, e)) != 0)
		goto fail;
	hpke_ctx_wipe(&ctx);
	*pt_len = body;
	return 0;
fail:
	hpke_ctx_wipe(&ctx);
	if (pt)
		wipe(pt, pt_cap);
	return rc;
}

int envelope_open(const unsigned char skR[32], const char *info, const unsigned char *in,
		  size_t in_len, unsigned char *pt, size_t pt_cap, size_t *pt_len, pos_err *e)
{
	struct envelope_key *k = NULL;
	int rc;

	if (pt_len)
		*pt_len = 0;
	if (!skR) {
		rc = err_set(e, POS_EINVAL, "envelope open: missing argument");
	} else if ((rc = envelope_key_new(skR, &k, e)) == 0) {
		rc = envelope_open_key(k, info, in, in_len, pt, pt_cap, pt_len, e);
		envelope_key_free(k);
		return rc;
	}
	if (pt)
		wipe(pt, pt_cap);
	return rc;
}

void envelope_kid(const unsigned char pk[32], char kid[ENVELOPE_KID_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int i;

	kid[0] = '\0';
	if (!pk || EVP_Digest(pk, 32, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return;
	for (i = 0; i < ENVELOPE_KID_LEN / 2; i++) {
		kid[2 * i] = digits[md[i] >> 4];
		kid[2 * i + 1] = digits[md[i] & 15];
	}
	kid[ENVELOPE_KID_LEN] = '\0';
}

int envelope_seal_tid(const unsigned char pkR[32], const char *kid, const char *info,
		      const char *tid, char enc_b64[ENVELOPE_B64_MAX], pos_err *e)
{
	unsigned char sealed[ENVELOPE_MAX_SEALED];
	char want[ENVELOPE_KID_LEN + 1];
	size_t tid_len, sealed_len = 0;
	int rc;

	if (!enc_b64)
		return err_set(e, POS_EINVAL, "envelope: missing output buffer");
	enc_b64[0] = '\0';
	if (!pkR || !tid)
		return err_set(e, POS_EINVAL, "envelope: missing argument");
	/* A kid that does not name this key would send central looking for the
	 * wrong private key: catch a mismatched configuration here. */
	if (kid) {
		envelope_kid(pkR, want);
		if (strcmp(kid, want) != 0)
			return err_set(e, POS_EINVAL, "envelope: kid does not match the public key");
	}
	tid_len = strnlen(tid, ENVELOPE_MAX_PT + 1);
	if (tid_len == 0 || tid_len > ENVELOPE_MAX_PT)
		return err_set(e, POS_EINVAL, "envelope: tid must be 1..%d characters",
			       ENVELOPE_MAX_PT);
	rc = envelope_seal(pkR, info, (const unsigned char *)tid, tid_len, sealed, sizeof sealed,
			   &sealed_len, e);
	if (rc == 0)
		rc = b64url_encode(sealed, sealed_len, enc_b64, ENVELOPE_B64_MAX, e);
	if (rc != 0)
		enc_b64[0] = '\0';
	return rc;
}

int envelope_open_tid_key(const struct envelope_key *k, const char *info, const char *enc_b64,
			  char tid[ENVELOPE_MAX_PT + 1], pos_err *e)
{
	unsigned char sealed[ENVELOPE_MAX_SEALED];
	size_t n, sealed_len = 0, tid_len = 0;
	int rc;

	if (!tid)
		return err_set(e, POS_EINVAL, "envelope: missing output buffer");
	if (!enc_b64) {
		rc = err_set(e, POS_EINVAL, "envelope: missing enc field");
		goto fail;
	}
	n = strnlen(enc_b64, ENVELOPE_B64_MAX);
	if (n >= ENVELOPE_B64_MAX) {
		rc = err_set(e, POS_EINVAL, "envelope: enc field too long");
		goto fail;
	}
	if (b64url_decode(enc_b64, n, sealed, sizeof sealed, &sealed_len, e) != 0) {
		/* Too long or malformed text alike: the field is invalid. */
		if (e) {
			err_prefix(e, "envelope: enc field");
			e->code = POS_EINVAL;
		}
		rc = POS_EINVAL;
		goto fail;
	}
	rc = envelope_open_key(k, info, sealed, sealed_len, (unsigned char *)tid, ENVELOPE_MAX_PT,
			       &tid_len, e);
	if (rc != 0)
		goto fail;
	/* The TID is text; an embedded NUL would make callers see a shorter,
	 * different identifier than the one that was sealed. */
	if (memchr(tid, '\0', tid_len)) {
		rc = err_set(e, POS_EINVAL, "envelope: sealed tid is not text");
		goto fail;
	}
	tid[tid_len] = '\0';
	return 0;
fail:
	wipe(tid, ENVELOPE_MAX_PT + 1);
	return rc;
}

int envelope_open_tid(const unsigned char skR[32], const char *info, const char *enc_b64,
		      char tid[ENVELOPE_MAX_PT + 1], pos_err *e)
{
	struct envelope_key *k = NULL;
	int rc;

	if (!tid)
		return err_set(e, POS_EINVAL, "envelope: missing output buffer");
	if (!skR)
		rc = err_set(e, POS_EINVAL, "envelope: missing private key");
	else if ((rc = envelope_key_new(skR, &k, e)) == 0)
		rc = envelope_open_tid_key(k, info, enc_b64, tid, e);
	envelope_key_free(k);
	if (rc != 0)
		wipe(tid, ENVELOPE_MAX_PT + 1);
	return rc;
}
