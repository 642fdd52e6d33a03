#include "keyring.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tid.h"
#include "wipe.h"

/* The one message for an unknown kid and a failed open (protocol.md). */
#define KEYRING_BAD_TID "the EncTID does not open with central's keys for this terminal and txn"

struct keyring {
	struct hpke_keypair keys[KEYRING_MAX_KEYS]; /* [0] is the current key */
	/* keys[i] imported into OpenSSL once: importing costs as much as the
	 * DH of a resolve, so it must not happen per request. */
	struct envelope_key *ekeys[KEYRING_MAX_KEYS];
	size_t n;
	struct deident_key *dk_index, *dk_deident; /* keyed from the two below */
	unsigned char k_index[KEYS_HMAC_LEN];
	unsigned char k_deident[KEYS_HMAC_LEN];
	char analyst[KEYS_TOKEN_MAX + 1];
	char admin[KEYS_TOKEN_MAX + 1];
	size_t analyst_len, admin_len;
	/* The tokens change on a reload (SIGHUP) while workers check them;
	 * everything else is fixed once loaded. */
	pthread_rwlock_t tok_lock;
};

/* A zeroed ring with its lock; free with keyring_free. */
static struct keyring *keyring_alloc(void)
{
	struct keyring *kr = calloc(1, sizeof *kr);

	if (kr && pthread_rwlock_init(&kr->tok_lock, NULL) != 0) {
		free(kr);
		kr = NULL;
	}
	return kr;
}

/* The lock of a ring the callers hold as const: checks only read. */
static pthread_rwlock_t *keyring_tok_lock(const struct keyring *kr)
{
	return (pthread_rwlock_t *)&kr->tok_lock;
}

/* (Re)keys the prepared HMACs from kr->k_index and kr->k_deident. */
static int keyring_prepare_hmac(struct keyring *kr, pos_err *e)
{
	int rc;

	deident_key_free(kr->dk_index);
	deident_key_free(kr->dk_deident);
	kr->dk_index = kr->dk_deident = NULL;
	if ((rc = deident_key_new(kr->k_index, &kr->dk_index, e)) < 0 ||
	    (rc = deident_key_new(kr->k_deident, &kr->dk_deident, e)) < 0)
		return rc;
	return 0;
}

int keyring_new(const unsigned char k_index[KEYS_HMAC_LEN],
		const unsigned char k_deident[KEYS_HMAC_LEN], struct keyring **out, pos_err *e)
{
	struct keyring *kr;
	int rc;

	*out = NULL;
	kr = keyring_alloc();
	if (!kr)
		return err_set(e, POS_ENOMEM, "keyring: out of memory");
	if (k_index)
		memcpy(kr->k_index, k_index, KEYS_HMAC_LEN);
	if (k_deident)
		memcpy(kr->k_deident, k_deident, KEYS_HMAC_LEN);
	if ((rc = keyring_prepare_hmac(kr, e)) < 0) {
		keyring_free(kr);
		return rc;
	}
	*out = kr;
	return 0;
}

int keyring_add(struct keyring *kr, const struct hpke_keypair *kp, pos_err *e)
{
	int rc;

	if (!kr || !kp)
		return err_set(e, POS_EINVAL, "keyring: missing argument");
	if (keyring_find(kr, kp->kid))
		return 0;
	if (kr->n >= KEYRING_MAX_KEYS)
		return err_set(e, POS_ETOOBIG, "keyring: more than %d HPKE keys", KEYRING_MAX_KEYS);
	if ((rc = envelope_key_new(kp->sk, &kr->ekeys[kr->n], e)) < 0) {
		err_prefix(e, "keyring: key %s", kp->kid);
		return rc;
	}
	kr->keys[kr->n++] = *kp;
	return 0;
}

int keyring_set_token(struct keyring *kr, const char *role, const char *token, pos_err *e)
{
	size_t n = token ? strlen(token) : 0;
	char *dst;
	size_t *len;

	if (!kr || !role)
		return err_set(e, POS_EINVAL, "keyring: missing argument");
	if (strcmp(role, "analyst") == 0) {
		dst = kr->analyst;
		len = &kr->analyst_len;
	} else if (strcmp(role, "admin") == 0) {
		dst = kr->admin;
		len = &kr->admin_len;
	} else {
		return err_set(e, POS_EINVAL, "keyring: unknown role '%s'", role);
	}
	if (n > KEYS_TOKEN_MAX)
		return err_set(e, POS_ETOOBIG, "keyring: %s token longer than %d", role,
			       KEYS_TOKEN_MAX);
	pthread_rwlock_wrlock(&kr->tok_lock);
	wipe(dst, KEYS_TOKEN_MAX + 1);
	if (n)
		memcpy(dst, token, n);
	*len = n;
	pthread_rwlock_unlock(&kr->tok_lock);
	return 0;
}

static bool keyring_has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);

	return n > s && strcmp(name + n - s, suffix) == 0;
}

/* Retired keys: every *.key in the folder, opened by kid. A missing folder
 * is no retired keys; an unreadable or group-readable file stops the start,
 * since silently skipping it would strand the EncTIDs sealed to it. */
static int keyring_load_retired(struct keyring *kr, const char *dir, pos_err *e)
{
	char path[CCONF_PATH_MAX];
	struct hpke_keypair kp;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (!dir[0])
		return 0;
	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return err_set(e, POS_EIO, "%s: %s", dir, strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		int n;

		if (de->d_name[0] == '.' || !keyring_has_suffix(de->d_name, ".key"))
			continue;
		n = snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (n < 0 || (size_t)n >= sizeof path) {
			rc = err_set(e, POS_ETOOBIG, "%s: a file name in it is too long", dir);
			break;
		}
		if ((rc = keys_load_private(path, &kp, e)) < 0)
			break;
		rc = keyring_add(kr, &kp, e);
		keys_wipe(&kp);
		if (rc < 0)
			break;
	}
	closedir(d);
	return rc;
}

int keyring_load_keys(const struct cconf *c, struct keyring **out, pos_err *e)
{
	struct keyring *kr = NULL;
	struct hpke_keypair kp;
	int rc;

	*out = NULL;
	if ((rc = keyring_new(NULL, NULL, &kr, e)) < 0)
		return rc;
	if ((rc = keys_load_private(c->hpke_key, &kp, e)) < 0)
		goto out;
	rc = keyring_add(kr, &kp, e);
	keys_wipe(&kp);
	if (rc < 0 || (rc = keyring_load_retired(kr, c->hpke_retired, e)) < 0)
		goto out;
	if ((rc = keys_load_hmac(c->k_index, kr->k_index, e)) < 0 ||
	    (rc = keys_load_hmac(c->k_deident, kr->k_deident, e)) < 0 ||
	    (rc = keyring_prepare_hmac(kr, e)) < 0)
		goto out;
	if (CRYPTO_memcmp(kr->k_index, kr->k_deident, KEYS_HMAC_LEN) == 0) {
		/* Equal keys would make the DeIdentTID a prefix of the tid index. */
		rc = err_set(e, POS_EINVAL, "%s and %s hold the same key", c->k_index,
			     c->k_deident);
		goto out;
	}
	*out = kr;
	kr = NULL;
out:
	keyring_free(kr);
	return rc;
}

static bool keyring_token_same(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}

/* Reads both token files into kr. */
static int keyring_read_tokens(const struct cconf *c, struct keyring *kr, pos_err *e)
{
	int rc;

	if ((rc = keys_load_token(c->analyst_token, kr->analyst, e)) < 0 ||
	    (rc = keys_load_token(c->admin_token, kr->admin, e)) < 0)
		return rc;
	kr->analyst_len = strlen(kr->analyst);
	kr->admin_len = strlen(kr->admin);
	if (kr->analyst_len == kr->admin_len &&
	    CRYPTO_memcmp(kr->analyst, kr->admin, kr->admin_len) == 0)
		return err_set(e, POS_EINVAL,
			       "the analyst and admin tokens are the same: roles must differ");
	return 0;
}

int keyring_load_tokens(const struct cconf *c, struct keyring **out, pos_err *e)
{
	struct keyring *kr;
	int rc;

	*out = NULL;
	/* No HMAC keys, not even zero ones: this ring opens nothing. */
	kr = keyring_alloc();
	if (!kr)
		return err_set(e, POS_ENOMEM, "keyring: out of memory");
	if ((rc = keyring_read_tokens(c, kr, e)) < 0) {
		keyring_free(kr);
		return rc;
	}
	*out = kr;
	return 0;
}

int keyring_reload_tokens(struct keyring *kr, const struct cconf *c, bool *changed, pos_err *e)
{
	struct keyring *fresh;
	int rc;

	*changed = false;
	if (!kr)
		return err_set(e, POS_EINVAL, "keyring: missing argument");
	if ((rc = keyring_load_tokens(c, &fresh, e)) < 0)
		return rc;
	pthread_rwlock_wrlock(&kr->tok_lock);
	*changed = !keyring_token_same(kr->analyst, kr->analyst_len, fresh->analyst,
				       fresh->analyst_len) ||
		   !keyring_token_same(kr->admin, kr->admin_len, fresh->admin, fresh->admin_len);
	memcpy(kr->analyst, fresh->analyst, sizeof kr->analyst);
	memcpy(kr->admin, fresh->admin, sizeof kr->admin);
	kr->analyst_len = fresh->analyst_len;
	kr->admin_len = fresh->admin_len;
	pthread_rwlock_unlock(&kr->tok_lock);
	keyring_free(fresh);
	return 0;
}

int keyring_load(const struct cconf *c, struct keyring **out, pos_err *e)
{
	struct keyring *kr = NULL;
	int rc;

	*out = NULL;
	if ((rc = keyring_load_keys(c, &kr, e)) < 0)
		return rc;
	if ((rc = keyring_read_tokens(c, kr, e)) < 0) {
		keyring_free(kr);
		return rc;
	}
	*out = kr;
	return 0;
}

int keyring_open(const struct keyring *kr, const char *store, const char *terminal,
		 const char *txn, const char *kid, const char *enc,
		 unsigned char idx[DEIDENT_INDEX_LEN], char dtid[DEIDENT_ID_LEN + 1], pos_err *e)
{
	const struct envelope_key *key;
	char info[ENVELOPE_INFO_MAX];
	char pt[ENVELOPE_MAX_PT + 1];
	char tid[TID_MAX];
	enum tid_kind kind;
	pos_err sub;
	int rc;

	/* The sub-error never reaches the caller: the library's message on a
	 * failed open could differ from the unknown-kid one. */
	if (envelope_info(info, store, terminal, txn, &sub) < 0)
		return err_set(e, POS_EINVAL, "store, terminal or txn cannot form the EncTID info");
	key = keyring_find_key(kr, kid);
	if (!key || !kr->dk_index || !kr->dk_deident)
		return err_set(e, POS_ECRYPTO, KEYRING_BAD_TID);
	if (envelope_open_tid_key(key, info, enc, pt, &sub) < 0) {
		wipe(pt, sizeof pt);
		return err_set(e, POS_ECRYPTO, KEYRING_BAD_TID);
	}
	rc = tid_normalize(pt, tid, &kind, &sub);
	wipe(pt, sizeof pt);
	if (rc < 0) {
		rc = err_set(e, POS_EINVAL, "the EncTID opens but does not hold a valid TID");
		goto out;
	}
	if ((rc = deident_index_key(kr->dk_index, tid, idx, e)) < 0 ||
	    (rc = deident_tid_key(kr->dk_deident, tid, dtid, e)) < 0)
		goto out;
out:
	wipe(tid, sizeof tid);
	wipe(&sub, sizeof sub);
	return rc;
}

void keyring_free(struct keyring *kr)
{
	if (!kr)
		return;
	for (size_t i = 0; i < kr->n; i++)
		envelope_key_free(kr->ekeys[i]);
	deident_key_free(kr->dk_index);
	deident_key_free(kr->dk_deident);
	pthread_rwlock_destroy(&kr->tok_lock);
	wipe_free(kr, sizeof *kr);
}

const struct hpke_keypair *keyring_find(const struct keyring *kr, const char *kid)
{
	if (!kr || !kid)
		return NULL;
	for (size_t i = 0; i < kr->n; i++)
		if (strcmp(kr->keys[i].kid, kid) == 0)
			return &kr->keys[i];
	return NULL;
}

const struct envelope_key *keyring_find_key(const struct keyring *kr, const char *kid)
{
	if (!kr || !kid)
		return NULL;
	for (size_t i = 0; i < kr->n; i++)
		if (strcmp(kr->keys[i].kid, kid) == 0)
			return kr->ekeys[i];
	return NULL;
}

const struct deident_key *keyring_index_key(const struct keyring *kr)
{
	return kr ? kr->dk_index : NULL;
}

const struct deident_key *keyring_deident_key(const struct keyring *kr)
{
	return kr ? kr->dk_deident : NULL;
}

size_t keyring_count(const struct keyring *kr)
{
	return kr ? kr->n : 0;
}

const unsigned char *keyring_k_index(const struct keyring *kr)
{
	return kr->k_index;
}

const unsigned char *keyring_k_deident(const struct keyring *kr)
{
	return kr->k_deident;
}

/* Lengths are compared first: a token's length is no secret (all are 43
 * characters), its bytes are. */
static bool keyring_token_eq(const char *want, size_t want_len, const char *got, size_t len)
{
	if (want_len == 0 || !got || len != want_len)
		return false;
	return CRYPTO_memcmp(want, got, len) == 0;
}

bool keyring_analyst_ok(const struct keyring *kr, const char *token, size_t len)
{
	bool ok;

	if (!kr)
		return false;
	pthread_rwlock_rdlock(keyring_tok_lock(kr));
	ok = keyring_token_eq(kr->analyst, kr->analyst_len, token, len);
	pthread_rwlock_unlock(keyring_tok_lock(kr));
	return ok;
}

bool keyring_admin_ok(const struct keyring *kr, const char *token, size_t len)
{
	bool ok;

	if (!kr)
		return false;
	pthread_rwlock_rdlock(keyring_tok_lock(kr));
	ok = keyring_token_eq(kr->admin, kr->admin_len, token, len);
	pthread_rwlock_unlock(keyring_tok_lock(kr));
	return ok;
}
