#ifndef POS_KEYS_H
#define POS_KEYS_H
/*
 * Key files. The HPKE key pair is X25519 in PEM (PKCS#8 private,
 * SubjectPublicKeyInfo public), so `openssl pkey` reads both. HMAC keys and
 * bearer tokens are one line of text. Private files are written 0600
 * (atomically: temp file, fsync, rename) and refused on load when group or
 * others can read them, with a message naming the file and the fix.
 */
#include <stddef.h>
#include "envelope.h"
#include "err.h"

#define KEYS_KID_LEN ENVELOPE_KID_LEN
#define KEYS_HMAC_LEN 32
#define KEYS_TOKEN_MAX 128

struct hpke_keypair {
	unsigned char sk[32];
	unsigned char pk[32];
	char kid[KEYS_KID_LEN + 1];
};

int keys_generate(struct hpke_keypair *kp, pos_err *e);
int keys_save_private(const char *path, const struct hpke_keypair *kp, pos_err *e);
int keys_save_public(const char *path, const unsigned char pk[32], pos_err *e);
/* Refuses a file readable by group or others. Fills pk and kid too. */
int keys_load_private(const char *path, struct hpke_keypair *kp, pos_err *e);
int keys_load_public(const char *path, unsigned char pk[32], char kid[KEYS_KID_LEN + 1],
		     pos_err *e);
void keys_wipe(struct hpke_keypair *kp);

/* A 32-byte HMAC key as 64 hex characters and a newline. */
int keys_generate_hmac(const char *path, pos_err *e);
int keys_load_hmac(const char *path, unsigned char key[KEYS_HMAC_LEN], pos_err *e);
/* A bearer token: 43 base64url characters of 32 random bytes, and a newline. */
int keys_generate_token(const char *path, pos_err *e);
int keys_load_token(const char *path, char out[KEYS_TOKEN_MAX + 1], pos_err *e);

/* 0 when path exists and neither group nor others have any access to it. */
int keys_check_private_mode(const char *path, pos_err *e);
/* Writes data to path with mode (0600 for secrets), atomically; refuses to
 * replace an existing file unless overwrite is set. */
int keys_write_file(const char *path, const void *data, size_t len, unsigned mode,
		    int overwrite, pos_err *e);

#endif
