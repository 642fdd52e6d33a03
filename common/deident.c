#include "deident.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "wipe.h"

static const char deident_alpha[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* TIDs are short (tid.h caps them at 48); the cap keeps a runaway string
 * from being hashed and bounds what a caller can hand in. */
#define DEIDENT_TID_MAX 256
#define DEIDENT_B32_LEN 26

/* Fetched once and read-only afterwards: an unkeyed HMAC-SHA256 context
 * that each MAC duplicates, so no call looks "SHA256" up by name again. */
static EVP_MAC *deident_hmac;
static EVP_MAC_CTX *deident_tmpl;
static pthread_once_t deident_once = PTHREAD_ONCE_INIT;

static void deident_fetch(void)
{
	OSSL_PARAM params[2];

	deident_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!deident_hmac)
		return;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	deident_tmpl = EVP_MAC_CTX_new(deident_hmac);
	if (deident_tmpl && !EVP_MAC_CTX_set_params(deident_tmpl, params)) {
		EVP_MAC_CTX_free(deident_tmpl);
		deident_tmpl = NULL;
	}
}

static int deident_ready(pos_err *e)
{
	pthread_once(&deident_once, deident_fetch);
	if (!deident_tmpl)
		return err_set(e, POS_ECRYPTO, "deident: OpenSSL lacks HMAC-SHA256");
	return 0;
}

/* A keyed context, never updated itself: each MAC works on a duplicate, so
 * threads share it read-only and no call re-derives the HMAC pads. */
struct deident_key {
	EVP_MAC_CTX *keyed;
};

int crockford_encode(const unsigned char *in, size_t n, char *out, size_t outcap, pos_err *e)
{
	size_t need, i, o = 0;
	unsigned acc = 0;
	int bits = 0;

	if (!out || (!in && n))
		return err_set(e, POS_EINVAL, "base32: missing buffer");
	if (n > ((size_t)-1) / 8 - 5)
		return err_set(e, POS_ETOOBIG, "base32: input too long");
	need = (n * 8 + 4) / 5 + 1;
	if (outcap < need)
		return err_set(e, POS_ETOOBIG, "base32: output needs %zu bytes, has %zu", need,
			       outcap);
	for (i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[o++] = deident_alpha[(acc >> bits) & 31];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits)
		out[o++] = deident_alpha[(acc << (5 - bits)) & 31];
	out[o] = '\0';
	return 0;
}

static int deident_b32_val(unsigned char c)
{
	if (c >= 'a' && c <= 'z')
		c = (unsigned char)(c - 'a' + 'A');
	if (c == 'O')
		return 0;
	if (c == 'I' || c == 'L')
		return 1;
	if (c >= '0' && c <= '9')
		return c - '0';
	for (int i = 10; i < 32; i++)
		if (deident_alpha[i] == (char)c)
			return i;
	return -1;
}

int crockford_decode(const char *in, size_t n, unsigned char *out, size_t outlen, pos_err *e)
{
	size_t i, o = 0;
	unsigned acc = 0;
	int bits = 0;

	if (!out || (!in && n))
		return err_set(e, POS_EINVAL, "base32: missing buffer");
	if (outlen > ((size_t)-1) / 8 - 5 || n != (outlen * 8 + 4) / 5)
		return err_set(e, POS_EINVAL, "base32: expected %zu characters, got %zu",
			       (outlen * 8 + 4) / 5, n);
	for (i = 0; i < n; i++) {
		int v = deident_b32_val((unsigned char)in[i]);
		if (v < 0) {
			wipe(out, outlen);
			return err_set(e, POS_EINVAL, "base32: invalid character at offset %zu", i);
		}
		acc = (acc << 5) | (unsigned)v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
		acc &= (1u << bits) - 1;
	}
	/* The padding bits of the last character must be zero, so one value has
	 * one spelling (up to case and the O/I/L aliases). */
	if (acc) {
		wipe(out, outlen);
		return err_set(e, POS_EINVAL, "base32: non-zero padding bits");
	}
	return 0;
}

static int deident_tid_len(const char *tid, size_t *len, pos_err *e)
{
	if (!tid)
		return err_set(e, POS_EINVAL, "deident: missing argument");
	*len = strnlen(tid, DEIDENT_TID_MAX + 1);
	if (*len == 0 || *len > DEIDENT_TID_MAX)
		return err_set(e, POS_EINVAL, "deident: tid must be 1..%d characters",
			       DEIDENT_TID_MAX);
	return 0;
}

/* HMAC of tid on m, which is freed (and its keyed state cleared). */
static int deident_mac_run(EVP_MAC_CTX *m, const char *tid, size_t tid_len,
			   unsigned char out[32], pos_err *e)
{
	size_t outl = 0;
	int rc = 0;

	if (!m || !EVP_MAC_update(m, (const unsigned char *)tid, tid_len) ||
	    !EVP_MAC_final(m, out, &outl, 32) || outl != 32) {
		wipe(out, 32);
		rc = err_set(e, POS_ECRYPTO, "deident: HMAC failed");
	}
	EVP_MAC_CTX_free(m);
	return rc;
}

static int deident_mac(const unsigned char key[32], const char *tid,
		       unsigned char out[32], pos_err *e)
{
	EVP_MAC_CTX *m;
	size_t tid_len;
	int rc;

	if (!key || !out)
		return err_set(e, POS_EINVAL, "deident: missing argument");
	if ((rc = deident_tid_len(tid, &tid_len, e)) < 0 || (rc = deident_ready(e)) < 0)
		return rc;
	m = EVP_MAC_CTX_dup(deident_tmpl);
	if (m && !EVP_MAC_init(m, key, 32, NULL)) {
		EVP_MAC_CTX_free(m);
		m = NULL;
	}
	return deident_mac_run(m, tid, tid_len, out, e);
}

static int deident_mac_key(const struct deident_key *k, const char *tid,
			   unsigned char out[32], pos_err *e)
{
	size_t tid_len;
	int rc;

	if (!k || !out)
		return err_set(e, POS_EINVAL, "deident: missing argument");
	if ((rc = deident_tid_len(tid, &tid_len, e)) < 0)
		return rc;
	return deident_mac_run(EVP_MAC_CTX_dup(k->keyed), tid, tid_len, out, e);
}

int deident_key_new(const unsigned char key[32], struct deident_key **out, pos_err *e)
{
	struct deident_key *k;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "deident: missing output");
	*out = NULL;
	if (!key)
		return err_set(e, POS_EINVAL, "deident: missing key");
	if ((rc = deident_ready(e)) < 0)
		return rc;
	if (!(k = calloc(1, sizeof *k)))
		return err_set(e, POS_ENOMEM, "deident: out of memory");
	k->keyed = EVP_MAC_CTX_dup(deident_tmpl);
	if (!k->keyed || !EVP_MAC_init(k->keyed, key, 32, NULL)) {
		deident_key_free(k);
		return err_set(e, POS_ECRYPTO, "deident: cannot key HMAC-SHA256");
	}
	*out = k;
	return 0;
}

void deident_key_free(struct deident_key *k)
{
	if (!k)
		return;
	EVP_MAC_CTX_free(k->keyed); /* clears the key it holds */
	free(k);
}

int deident_index(const unsigned char k_index[32], const char *tid,
		  unsigned char out[DEIDENT_INDEX_LEN], pos_err *e)
{
	return deident_mac(k_index, tid, out, e);
}

int deident_index_key(const struct deident_key *k_index, const char *tid,
		      unsigned char out[DEIDENT_INDEX_LEN], pos_err *e)
{
	return deident_mac_key(k_index, tid, out, e);
}

static int deident_format(const char *prefix, const unsigned char raw[16],
			  char out[DEIDENT_ID_LEN + 1], pos_err *e)
{
	memcpy(out, prefix, 3);
	return crockford_encode(raw, 16, out + 3, DEIDENT_ID_LEN + 1 - 3, e);
}

/* Exactly one of key and k is set. */
static int deident_tid_any(const unsigned char *key, const struct deident_key *k,
			   const char *tid, char out[DEIDENT_ID_LEN + 1], pos_err *e)
{
	unsigned char mac[32];
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "deident: missing output buffer");
	out[0] = '\0';
	rc = k ? deident_mac_key(k, tid, mac, e) : deident_mac(key, tid, mac, e);
	if (rc == 0)
		rc = deident_format("dt_", mac, out, e);
	wipe(mac, sizeof mac);
	if (rc != 0)
		out[0] = '\0';
	return rc;
}

int deident_tid(const unsigned char k_deident[32], const char *tid,
		char out[DEIDENT_ID_LEN + 1], pos_err *e)
{
	return deident_tid_any(k_deident, NULL, tid, out, e);
}

int deident_tid_key(const struct deident_key *k_deident, const char *tid,
		    char out[DEIDENT_ID_LEN + 1], pos_err *e)
{
	if (!k_deident) {
		if (out)
			out[0] = '\0';
		return err_set(e, POS_EINVAL, "deident: missing key");
	}
	return deident_tid_any(NULL, k_deident, tid, out, e);
}

int deident_hhid_new(char out[DEIDENT_ID_LEN + 1], pos_err *e)
{
	unsigned char raw[16];
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "deident: missing output buffer");
	out[0] = '\0';
	if (RAND_bytes(raw, sizeof raw) != 1)
		return err_set(e, POS_ECRYPTO, "deident: random generator failed");
	rc = deident_format("hh_", raw, out, e);
	if (rc != 0)
		out[0] = '\0';
	return rc;
}

/* Canonical form only: upper case, no O/I/L aliases, last char carrying
 * zero padding bits (3 bits of data, so its value is a multiple of 4). */
static bool deident_id_valid(const char *s, const char *prefix)
{
	size_t i;
	const char *p;

	if (!s || strnlen(s, DEIDENT_ID_LEN + 1) != DEIDENT_ID_LEN || memcmp(s, prefix, 3) != 0)
		return false;
	for (i = 3; i < DEIDENT_ID_LEN; i++) {
		if (s[i] == '\0' || !(p = strchr(deident_alpha, s[i])))
			return false;
		if (i == DEIDENT_ID_LEN - 1 && ((p - deident_alpha) & 3) != 0)
			return false;
	}
	return true;
}

bool deident_hhid_valid(const char *s)
{
	return deident_id_valid(s, "hh_");
}

bool deident_dtid_valid(const char *s)
{
	return deident_id_valid(s, "dt_");
}
