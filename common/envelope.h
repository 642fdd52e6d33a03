#ifndef POS_ENVELOPE_H
#define POS_ENVELOPE_H
/*
 * HPKE (RFC 9180) base mode on OpenSSL EVP: DHKEM(X25519, HKDF-SHA256),
 * HKDF-SHA256, AES-128-GCM (and AES-256-GCM for completeness). The EncTID
 * envelope of design section 3 is one single-shot seal with empty aad:
 *   enc field = base64url(enc (32) || ciphertext (len(TID) + 16))
 *   info      = "pos-tid/1|<store>|<terminal>|<txn>"
 */
#include <stddef.h>
#include <stdint.h>
#include "err.h"

#define HPKE_KEM_X25519_SHA256 0x0020
#define HPKE_KDF_SHA256 0x0001
#define HPKE_AEAD_AES128GCM 0x0001
#define HPKE_AEAD_AES256GCM 0x0002

#define HPKE_ENC_LEN 32
#define HPKE_TAG_LEN 16
#define HPKE_NONCE_LEN 12
#define HPKE_MAX_KEY_LEN 32

/* EncTID: the sealed TID fits in 32 + 64 + 16 bytes. */
#define ENVELOPE_MAX_PT 64
#define ENVELOPE_MAX_SEALED (HPKE_ENC_LEN + ENVELOPE_MAX_PT + HPKE_TAG_LEN)
#define ENVELOPE_INFO_MAX 256
#define ENVELOPE_KID_LEN 16 /* hex characters */

/* An HPKE context; wipe with hpke_ctx_wipe. Holds no heap memory. */
struct hpke_ctx {
	uint16_t aead_id;
	size_t key_len;
	unsigned char key[HPKE_MAX_KEY_LEN];
	unsigned char base_nonce[HPKE_NONCE_LEN];
	unsigned char exporter_secret[32];
	uint64_t seq;
};

/* Sender setup. skE is the test seam: NULL makes a fresh ephemeral key; a
 * 32-byte private key reproduces RFC 9180 vectors. shared_secret (optional,
 * may be NULL) receives the KEM shared secret for tests. */
int hpke_setup_base_s(uint16_t aead_id, const unsigned char pkR[32],
		      const unsigned char *skE, const unsigned char *info, size_t info_len,
		      unsigned char enc[HPKE_ENC_LEN], unsigned char *shared_secret,
		      struct hpke_ctx *ctx, pos_err *e);
int hpke_setup_base_r(uint16_t aead_id, const unsigned char skR[32],
		      const unsigned char enc[HPKE_ENC_LEN], const unsigned char *info,
		      size_t info_len, struct hpke_ctx *ctx, pos_err *e);
/* ct receives pt_len + 16 bytes. Advances the sequence number. */
int hpke_seal(struct hpke_ctx *ctx, const unsigned char *aad, size_t aad_len,
	      const unsigned char *pt, size_t pt_len, unsigned char *ct, pos_err *e);
/* pt receives ct_len - 16 bytes; on failure nothing of pt is left written. */
int hpke_open(struct hpke_ctx *ctx, const unsigned char *aad, size_t aad_len,
	      const unsigned char *ct, size_t ct_len, unsigned char *pt, pos_err *e);
int hpke_export(const struct hpke_ctx *ctx, const unsigned char *exp_ctx, size_t exp_ctx_len,
		unsigned char *out, size_t out_len, pos_err *e);
void hpke_ctx_wipe(struct hpke_ctx *ctx);

/* X25519 public key from a private key (both raw 32 bytes). */
int hpke_x25519_public(const unsigned char sk[32], unsigned char pk[32], pos_err *e);
/* DeriveKeyPair(ikm) of RFC 9180 7.1.3 for X25519, for the vectors. */
int hpke_derive_keypair(const unsigned char *ikm, size_t ikm_len, unsigned char sk[32],
			unsigned char pk[32], pos_err *e);

/* LabeledExtract and LabeledExpand of RFC 9180 section 4 over HKDF-SHA256,
 * with the caller's suite_id ("KEM"||kem_id or "HPKE"||kem||kdf||aead). The
 * building blocks of the above, public so tests can check the intermediate
 * values (key_schedule_context, secret) of the RFC vectors.
 * hpke_labeled_expand: out_len 1..255*32. */
int hpke_labeled_extract(const unsigned char *suite_id, size_t suite_id_len,
			 const unsigned char *salt, size_t salt_len, const char *label,
			 const unsigned char *ikm, size_t ikm_len, unsigned char prk[32],
			 pos_err *e);
int hpke_labeled_expand(const unsigned char *suite_id, size_t suite_id_len,
			const unsigned char prk[32], const char *label, const unsigned char *info,
			size_t info_len, unsigned char *out, size_t out_len, pos_err *e);

/* Builds the EncTID info string; fails when an id is empty or too long. */
int envelope_info(char out[ENVELOPE_INFO_MAX], const char *store, const char *terminal,
		  const char *txn, pos_err *e);
/* Single-shot AES-128-GCM seal of pt: out = enc || ct, *out_len = 32+pt_len+16. */
int envelope_seal(const unsigned char pkR[32], const char *info, const unsigned char *pt,
		  size_t pt_len, unsigned char *out, size_t out_cap, size_t *out_len,
		  pos_err *e);
/* Opens enc || ct. Fails (POS_ECRYPTO) on any flipped byte, wrong info or key,
 * and (POS_EINVAL) on a length outside 32+16+1 .. ENVELOPE_MAX_SEALED.
 * On failure pt is wiped. */
int envelope_open(const unsigned char skR[32], const char *info, const unsigned char *in,
		  size_t in_len, unsigned char *pt, size_t pt_cap, size_t *pt_len, pos_err *e);

/* A public key's kid: the first 16 hex characters of SHA-256(raw key). */
void envelope_kid(const unsigned char pk[32], char kid[ENVELOPE_KID_LEN + 1]);

/* The EncTID JSON form {"kid":"…","enc":"…"}: seal tid (a normalised TID
 * string) and write kid and the base64url field. enc_b64 needs
 * b64url_encoded_len(ENVELOPE_MAX_SEALED)+1 = 150 bytes. */
#define ENVELOPE_B64_MAX 152
int envelope_seal_tid(const unsigned char pkR[32], const char *kid, const char *info,
		      const char *tid, char enc_b64[ENVELOPE_B64_MAX], pos_err *e);
/* Decodes the base64url field and opens it into tid (NUL-terminated, at most
 * ENVELOPE_MAX_PT chars). tid is wiped on failure. */
int envelope_open_tid(const unsigned char skR[32], const char *info, const char *enc_b64,
		      char tid[ENVELOPE_MAX_PT + 1], pos_err *e);

/* A recipient's private key imported into OpenSSL once. Importing a raw
 * X25519 key costs a scalar multiplication (OpenSSL derives the public key),
 * as much as the DH itself, so a server that opens many envelopes keeps one
 * of these per key. Read-only after envelope_key_new: any number of threads
 * may open with one key at once (each call makes its own EVP contexts). */
struct envelope_key;

/* *out: envelope_key_free (which wipes it). */
int envelope_key_new(const unsigned char sk[32], struct envelope_key **out, pos_err *e);
void envelope_key_free(struct envelope_key *k);
/* The raw 32-byte public key, borrowed from k. */
const unsigned char *envelope_key_public(const struct envelope_key *k);
/* envelope_open and envelope_open_tid with a prepared key; same contracts. */
int envelope_open_key(const struct envelope_key *k, const char *info, const unsigned char *in,
		      size_t in_len, unsigned char *pt, size_t pt_cap, size_t *pt_len, pos_err *e);
int envelope_open_tid_key(const struct envelope_key *k, const char *info, const char *enc_b64,
			  char tid[ENVELOPE_MAX_PT + 1], pos_err *e);

#endif
