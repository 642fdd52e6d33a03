#ifndef POS_KEYRING_H
#define POS_KEYRING_H
/*
 * Central's secrets, loaded once at start and read-only afterwards (shared
 * by threads without locks; the tokens alone change on a reload, under
 * the ring's own lock): the current HPKE private key, the retired ones
 * (the hpke_retired folder, *.key, so EncTIDs spooled before a rotation
 * still open), k_index, k_deident and the two bearer tokens. Every file is
 * refused when group or others can read it. keyring_free wipes all.
 *
 * serve splits them (keysproc.h): the keys process loads the keys
 * (keyring_load_keys), the network-facing process the tokens only
 * (keyring_load_tokens). The command-line tools load what they need in
 * their own process (keyring_load).
 */
#include <stdbool.h>
#include <stddef.h>

#include "cconf.h"
#include "deident.h"
#include "envelope.h"
#include "err.h"
#include "keys.h"

#define KEYRING_MAX_KEYS 64

struct keyring;

/* Loads everything cconf names. *out: keyring_free. */
int keyring_load(const struct cconf *c, struct keyring **out, pos_err *e);
/* The HPKE keys, k_index and k_deident; no tokens. *out: keyring_free. */
int keyring_load_keys(const struct cconf *c, struct keyring **out, pos_err *e);
/* The two tokens and no key: such a ring opens nothing. *out: keyring_free. */
int keyring_load_tokens(const struct cconf *c, struct keyring **out, pos_err *e);
/* Reads the two token files c names again into kr (serve's SIGHUP): the
 * checks see the new tokens from the next request. Files that do not load
 * leave kr as it was. *changed: whether either token differs. Safe while
 * other threads check tokens. */
int keyring_reload_tokens(struct keyring *kr, const struct cconf *c, bool *changed, pos_err *e);
/* An empty keyring with the two HMAC keys and no tokens, for tests and the
 * fuzzers; add HPKE keys with keyring_add. *out: keyring_free. */
int keyring_new(const unsigned char k_index[KEYS_HMAC_LEN],
		const unsigned char k_deident[KEYS_HMAC_LEN], struct keyring **out, pos_err *e);
/* Adds a copy of kp; a kid already present is skipped. */
int keyring_add(struct keyring *kr, const struct hpke_keypair *kp, pos_err *e);
/* Sets a token (role "analyst" or "admin"); for tests. */
int keyring_set_token(struct keyring *kr, const char *role, const char *token, pos_err *e);
void keyring_free(struct keyring *kr);

/* The key pair of kid, NULL when unknown. Borrowed from kr. */
const struct hpke_keypair *keyring_find(const struct keyring *kr, const char *kid);
/* The key of kid prepared for opening envelopes (imported into OpenSSL
 * once, at load), NULL when unknown. Borrowed from kr; threads share it. */
const struct envelope_key *keyring_find_key(const struct keyring *kr, const char *kid);
/* k_index and k_deident as prepared HMAC keys. Borrowed from kr. */
const struct deident_key *keyring_index_key(const struct keyring *kr);
const struct deident_key *keyring_deident_key(const struct keyring *kr);
size_t keyring_count(const struct keyring *kr);
const unsigned char *keyring_k_index(const struct keyring *kr);
const unsigned char *keyring_k_deident(const struct keyring *kr);
/* Constant-time checks of a presented token (len bytes, not NUL-terminated);
 * false when the role has no token set. */
bool keyring_analyst_ok(const struct keyring *kr, const char *token, size_t len);
bool keyring_admin_ok(const struct keyring *kr, const char *token, size_t len);

/* Opens an EncTID with the key of its kid and info "pos-tid/1|store|terminal|txn",
 * normalises the TID and derives its tid index (k_index) and DeIdentTID
 * (k_deident). The plaintext TID lives only here, on the stack, and is
 * wiped before it returns. An unknown kid and an envelope that does not
 * open both fail POS_ECRYPTO with the same message, so a caller learns
 * nothing from the difference; a plaintext that is not a valid TID fails
 * POS_EINVAL. */
int keyring_open(const struct keyring *kr, const char *store, const char *terminal,
		 const char *txn, const char *kid, const char *enc,
		 unsigned char idx[DEIDENT_INDEX_LEN], char dtid[DEIDENT_ID_LEN + 1], pos_err *e);

#endif
