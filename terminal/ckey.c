#include "ckey.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "http.h"
#include "jsonx.h"

#define CKEY_URL_MAX 1024

static bool ckey_kid_ok(const char *s)
{
	return s && strlen(s) == KEYS_KID_LEN && strspn(s, "0123456789abcdef") == KEYS_KID_LEN;
}

int ckey_parse(const char *body, size_t len, struct ckey_answer *out, pos_err *e)
{
	json_t *root = NULL, *opens, *it;
	const char *kid = NULL, *pk = NULL;
	char want[KEYS_KID_LEN + 1];
	size_t i;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = jsonx_parse(body, len, CKEY_ANSWER_MAX, 4, &root, e)) < 0) {
		err_prefix(e, "GET /v1/keys");
		return rc;
	}
	if (!json_is_object(root) || jsonx_str(root, "kid", 1, KEYS_KID_LEN, &kid, e) < 0 ||
	    jsonx_str(root, "public_key", 1, 64, &pk, e) < 0 || !ckey_kid_ok(kid)) {
		rc = err_set(e, POS_EINVAL, "GET /v1/keys: the answer has no valid kid and public_key");
		goto out;
	}
	if (b64url_decode(pk, strlen(pk), out->pk, sizeof out->pk, &i, e) < 0 || i != 32) {
		rc = err_set(e, POS_EINVAL, "GET /v1/keys: public_key is not 32 bytes in base64url");
		goto out;
	}
	envelope_kid(out->pk, want);
	if (strcmp(want, kid) != 0) {
		rc = err_set(e, POS_EINVAL, "GET /v1/keys: kid %s does not match its key (%s)", kid,
			     want);
		goto out;
	}
	memcpy(out->kid, kid, sizeof out->kid);
	memcpy(out->opens[0], kid, sizeof out->opens[0]);
	out->nopens = 1;
	opens = json_object_get(root, "opens");
	if (opens && !json_is_array(opens)) {
		rc = err_set(e, POS_EINVAL, "GET /v1/keys: opens is not a list");
		goto out;
	}
	json_array_foreach(opens, i, it) {
		const char *k = json_string_value(it);

		if (!ckey_kid_ok(k)) {
			rc = err_set(e, POS_EINVAL, "GET /v1/keys: opens holds a value that is no kid");
			goto out;
		}
		if (ckey_opens(out, k))
			continue;
		if (out->nopens >= CKEY_OPENS_MAX) {
			rc = err_set(e, POS_ETOOBIG, "GET /v1/keys: more than %d kids",
				     CKEY_OPENS_MAX);
			goto out;
		}
		memcpy(out->opens[out->nopens++], k, KEYS_KID_LEN + 1);
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

bool ckey_opens(const struct ckey_answer *a, const char *kid)
{
	for (size_t i = 0; a && kid && i < a->nopens; i++)
		if (strcmp(a->opens[i], kid) == 0)
			return true;
	return false;
}

static int ckey_cmp(const void *x, const void *y)
{
	return strcmp(x, y);
}

void ckey_signature(const struct ckey_answer *a, char sig[CKEY_SIG_MAX])
{
	char sorted[CKEY_OPENS_MAX][KEYS_KID_LEN + 1];
	size_t off = 0;

	sig[0] = '\0';
	if (!a || a->nopens == 0)
		return;
	memcpy(sorted, a->opens, a->nopens * sizeof sorted[0]);
	qsort(sorted, a->nopens, sizeof sorted[0], ckey_cmp);
	for (size_t i = 0; i < a->nopens; i++) {
		memcpy(sig + off, sorted[i], KEYS_KID_LEN);
		off += KEYS_KID_LEN;
		sig[off++] = i + 1 < a->nopens ? ',' : '\0';
	}
}

int ckey_save(const char *path, const unsigned char pk[32], pos_err *e)
{
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pk, 32);
	BIO *b = BIO_new(BIO_s_mem());
	char *pem = NULL;
	long n;
	int rc;

	if (!k || !b || PEM_write_bio_PUBKEY(b, k) != 1 || (n = BIO_get_mem_data(b, &pem)) <= 0) {
		rc = err_set(e, POS_ECRYPTO, "%s: cannot encode the public key", path);
		goto out;
	}
	rc = keys_write_file(path, pem, (size_t)n, 0644, 1, e);
out:
	BIO_free(b);
	EVP_PKEY_free(k);
	return rc;
}

bool ckey_refusal(const char *code)
{
	return code && (strcmp(code, "bad_tid") == 0 || strcmp(code, "bad_kid") == 0 ||
			strcmp(code, "unknown_kid") == 0);
}

/* ------------------------------------------------------------ blocking fetch */

struct ckey_buf {
	char data[CKEY_ANSWER_MAX];
	size_t len;
	bool over;
};

static size_t ckey_write(char *p, size_t size, size_t n, void *arg)
{
	struct ckey_buf *b = arg;
	size_t add = size * n;

	if (add > sizeof b->data - b->len) {
		b->over = true;
		return 0;
	}
	memcpy(b->data + b->len, p, add);
	b->len += add;
	return add;
}

/* GET base/v1/keys; 0 with out filled, or a message naming the URL. */
static int ckey_get(const struct aconf *c, const char *base, size_t blen, long timeout_ms,
		    struct ckey_answer *out, char *url, size_t cap, pos_err *e)
{
	char err[CURL_ERROR_SIZE] = "";
	struct ckey_buf *b = calloc(1, sizeof *b);
	CURL *h = NULL;
	CURLcode cc;
	long status = 0;
	int rc;

	snprintf(url, cap, "%.*s/v1/keys", (int)blen, base);
	if (!b || !(h = http_blocking_handle(url, c->ca, c->cert, c->key, timeout_ms, err))) {
		rc = err_set(e, POS_ENOMEM, "%s: cannot initialise libcurl", url);
		goto out;
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ckey_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		rc = err_set(e, POS_EIO, "%s: %s", url,
			     b->over ? "answer too large" : err[0] ? err : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		rc = err_set(e, POS_EIO, "%s: answered HTTP %ld", url, status);
		goto out;
	}
	rc = ckey_parse(b->data, b->len, out, e);
out:
	if (h)
		curl_easy_cleanup(h);
	free(b);
	return rc;
}

int ckey_fetch(const struct aconf *c, long timeout_ms, struct ckey_answer *out, char *url,
	       size_t cap, pos_err *e)
{
	const char *p = c->url;
	int rc = err_set(e, POS_EINVAL, "[central] url is empty");

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return err_set(e, POS_EIO, "cannot initialise libcurl");
	while (*p) {
		size_t n;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		n = strcspn(p, " ");
		if ((rc = ckey_get(c, p, n, timeout_ms, out, url, cap, e)) == 0)
			return 0;
		p += n;
	}
	return rc;
}
