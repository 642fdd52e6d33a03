#include "visitor.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "codec.h"
#include "wipe.h"

#define VISITOR_RAND 10
#define VISITOR_CHECK 6
#define VISITOR_B32 26 /* characters of 16 bytes */

static const char visitor_b32[] = "abcdefghijklmnopqrstuvwxyz234567";

int visitor_key_load(const char *path, bool create, unsigned char key[KEYS_HMAC_LEN], pos_err *e)
{
	pos_err ge = { 0 };

	if (create && access(path, F_OK) != 0 && errno == ENOENT &&
	    keys_generate_hmac(path, &ge) < 0 && access(path, F_OK) != 0)
		return err_set(e, ge.code ? ge.code : POS_EIO, "%s", ge.msg);
	return keys_load_hmac(path, key, e);
}

static void visitor_hmac(const unsigned char key[KEYS_HMAC_LEN], const char *label,
			 const void *data, size_t n, unsigned char out[32])
{
	unsigned char buf[64];
	size_t ll = strlen(label);
	unsigned int len = 0;

	memcpy(buf, label, ll);
	memcpy(buf + ll, data, n);
	(void)HMAC(EVP_sha256(), key, KEYS_HMAC_LEN, buf, ll + n, out, &len);
}

static void visitor_b32_encode(const unsigned char *in, size_t n, char *out)
{
	unsigned acc = 0;
	int bits = 0;
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			out[k++] = visitor_b32[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[k++] = visitor_b32[(acc << (5 - bits)) & 31];
	out[k] = '\0';
}

/* 16 bytes from 26 base32 characters; false on any other shape. */
static bool visitor_b32_decode(const char *s, unsigned char out[16])
{
	unsigned acc = 0;
	int bits = 0;
	size_t k = 0;

	for (size_t i = 0; i < VISITOR_B32; i++) {
		const char *p = s[i] ? strchr(visitor_b32, s[i]) : NULL;

		if (!p)
			return false;
		acc = (acc << 5) | (unsigned)(p - visitor_b32);
		bits += 5;
		if (bits >= 8) {
			out[k++] = (unsigned char)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	/* 130 bits carry 128: the last two must be zero. */
	return k == 16 && (acc & 3) == 0;
}

static void visitor_sig_of(const unsigned char key[KEYS_HMAC_LEN], const char *uid,
			   char sig[VISITOR_SIG_LEN + 1])
{
	unsigned char mac[32];

	visitor_hmac(key, "pos-visitor/1|", uid, VISITOR_UID_LEN, mac);
	(void)b64url_encode(mac, sizeof mac, sig, VISITOR_SIG_LEN + 1, NULL);
}

int visitor_new(const unsigned char key[KEYS_HMAC_LEN], char uid[VISITOR_UID_LEN + 1],
		char sig[VISITOR_SIG_LEN + 1], pos_err *e)
{
	unsigned char raw[16], mac[32];

	if (RAND_bytes(raw, VISITOR_RAND) != 1)
		return err_set(e, POS_ECRYPTO, "visitor: random generator failed");
	visitor_hmac(key, "pos-visitor-uid/1|", raw, VISITOR_RAND, mac);
	memcpy(raw + VISITOR_RAND, mac, VISITOR_CHECK);
	memcpy(uid, "vi_", 3);
	visitor_b32_encode(raw, sizeof raw, uid + 3);
	visitor_sig_of(key, uid, sig);
	return 0;
}

bool visitor_uid_ok(const unsigned char key[KEYS_HMAC_LEN], const char *uid)
{
	unsigned char raw[16], mac[32];

	if (!uid || strnlen(uid, VISITOR_UID_LEN + 1) != VISITOR_UID_LEN ||
	    strncmp(uid, "vi_", 3) != 0 || !visitor_b32_decode(uid + 3, raw))
		return false;
	visitor_hmac(key, "pos-visitor-uid/1|", raw, VISITOR_RAND, mac);
	return CRYPTO_memcmp(raw + VISITOR_RAND, mac, VISITOR_CHECK) == 0;
}

bool visitor_sig_ok(const unsigned char key[KEYS_HMAC_LEN], const char *uid, const char *sig)
{
	char want[VISITOR_SIG_LEN + 1];

	if (!visitor_uid_ok(key, uid) || !sig || strnlen(sig, VISITOR_SIG_LEN + 1) != VISITOR_SIG_LEN)
		return false;
	visitor_sig_of(key, uid, want);
	return CRYPTO_memcmp(want, sig, VISITOR_SIG_LEN) == 0;
}

int visitor_ref(const unsigned char key[KEYS_HMAC_LEN], const char *text,
		char uid[VISITOR_UID_LEN + 1], pos_err *e)
{
	const char *p = text;

	uid[0] = '\0';
	for (; p && *p; p++) {
		const char *q;
		size_t n;

		if (strncasecmp(p, "ref", 3) != 0 || (p > text && p[-1] != ' ' && p[-1] != '\n' &&
							p[-1] != '\t' && p[-1] != '\r'))
			continue;
		q = p + 3;
		if (*q == ':')
			q++;
		if (*q != ' ' && *q != '\t')
			continue;
		while (*q == ' ' || *q == '\t')
			q++;
		if (strncasecmp(q, "vi_", 3) != 0)
			continue; /* "ref" as a plain word */
		n = strspn(q, "vi_abcdefghijklmnopqrstuvwxyz234567");
		if (n != VISITOR_UID_LEN) {
			uid[0] = '\0';
			return err_set(e, POS_EINVAL, "the ref is not a visitor id");
		}
		memcpy(uid, q, n);
		uid[n] = '\0';
		if (!visitor_uid_ok(key, uid)) {
			uid[0] = '\0';
			return err_set(e, POS_EINVAL, "the ref is not a visitor id");
		}
		return 0;
	}
	return err_set(e, POS_ENOTFOUND, "the message has no ref");
}

int visitor_seal_info(char out[ENVELOPE_INFO_MAX], const char *uid, pos_err *e)
{
	int n = snprintf(out, ENVELOPE_INFO_MAX, "pos-sms/1|%s", uid ? uid : "");

	if (!uid || !uid[0] || n < 0 || n >= ENVELOPE_INFO_MAX)
		return err_set(e, POS_EINVAL, "visitor: no uid to seal for");
	return 0;
}

/* ------------------------------------------------------------ SMS */

/* Decodes s[0..n) into out; returns the end or NULL on a bad escape or NUL. */
static char *form_decode(const char *s, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int h, l;

			if (i + 2 >= n || (h = hex_digit(s[i + 1])) < 0 || (l = hex_digit(s[i + 2])) < 0)
				return NULL;
			c = (char)(h * 16 + l);
			i += 2;
		}
		if (c == '\0')
			return NULL;
		*out++ = c;
	}
	*out++ = '\0';
	return out;
}

static int param_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sms_param *)a)->name, ((const struct sms_param *)b)->name);
}

int sms_form_parse(const char *body, size_t len, char *buf, struct sms_param *p, size_t *n,
		   pos_err *e)
{
	size_t i = 0, k = 0;
	char *w = buf;

	*n = 0;
	while (i < len) {
		size_t end = i, eq;

		while (end < len && body[end] != '&')
			end++;
		if (end > i) {
			if (k == SMS_PARAMS_MAX)
				return err_set(e, POS_EINVAL, "more than %d form fields",
					       SMS_PARAMS_MAX);
			for (eq = i; eq < end && body[eq] != '='; eq++)
				;
			/* name=value always: then the decoded field with its two
			 * NULs fits where the field and its '&' were. */
			if (eq == end)
				return err_set(e, POS_EINVAL, "a form field has no '='");
			p[k].name = w;
			if (!(w = form_decode(body + i, eq - i, w)))
				return err_set(e, POS_EINVAL, "a form field name is badly encoded");
			p[k].value = w;
			if (!(w = form_decode(body + eq + 1, end - eq - 1, w)))
				return err_set(e, POS_EINVAL, "a form field value is badly encoded");
			k++;
		}
		i = end + 1;
	}
	qsort(p, k, sizeof *p, param_cmp);
	for (size_t j = 1; j < k; j++)
		if (strcmp(p[j - 1].name, p[j].name) == 0)
			return err_set(e, POS_EINVAL, "the form field '%s' appears twice",
				       p[j].name[0] && strlen(p[j].name) < 32 ? p[j].name : "?");
	*n = k;
	return 0;
}

const char *sms_form_get(const struct sms_param *p, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(p[i].name, name) == 0)
			return p[i].value;
	return NULL;
}

int sms_signature(const char *secret, const char *url, const struct sms_param *p, size_t n,
		  char out[SMS_SIG_LEN + 1], pos_err *e)
{
	unsigned char mac[32];
	unsigned int len = 0;
	size_t total = strlen(url), at;
	char *msg;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		total += strlen(p[i].name) + strlen(p[i].value);
	if (!(msg = malloc(total + 1)))
		return err_set(e, POS_ENOMEM, "sms: out of memory");
	at = strlen(url);
	memcpy(msg, url, at);
	for (size_t i = 0; i < n; i++) {
		size_t a = strlen(p[i].name), b = strlen(p[i].value);

		memcpy(msg + at, p[i].name, a);
		memcpy(msg + at + a, p[i].value, b);
		at += a + b;
	}
	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)msg, total, mac,
		  &len) ||
	    len != 32 || EVP_EncodeBlock((unsigned char *)out, mac, 32) != SMS_SIG_LEN)
		rc = err_set(e, POS_ECRYPTO, "sms: signature failed");
	wipe(msg, total);
	free(msg);
	return rc;
}

bool sms_signature_ok(const char *secret, const char *url, const struct sms_param *p, size_t n,
		      const char *sent)
{
	char want[SMS_SIG_LEN + 1];
	size_t len;

	if (!sent || !secret[0])
		return false;
	while (*sent == ' ')
		sent++;
	len = strlen(sent);
	while (len && (sent[len - 1] == ' ' || sent[len - 1] == '\t'))
		len--;
	if (len != SMS_SIG_LEN || sms_signature(secret, url, p, n, want, NULL) < 0)
		return false;
	return CRYPTO_memcmp(want, sent, SMS_SIG_LEN) == 0;
}
