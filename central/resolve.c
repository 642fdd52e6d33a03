#include "resolve.h"

#include <string.h>

#include "jsonx.h"
#include "wipe.h"

static bool resolve_is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return false;
	}
	return true;
}

static bool resolve_is_b64url(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

int resolve_enctid_from_json(json_t *tid, char kid[KEYS_KID_LEN + 1],
			     char enc[ENVELOPE_B64_MAX], pos_err *e)
{
	static const char *const keys[] = { "kid", "enc", NULL };
	const char *k = NULL, *v = NULL;
	size_t kn, vn;
	int rc;

	if (!json_is_object(tid))
		return err_set(e, POS_EINVAL, "tid must be an object {\"kid\",\"enc\"}");
	if ((rc = jsonx_only_keys(tid, keys, e)) < 0 ||
	    (rc = jsonx_str(tid, "kid", 1, 64, &k, e)) < 0 ||
	    (rc = jsonx_str(tid, "enc", 1, 1024, &v, e)) < 0) {
		err_prefix(e, "tid");
		return rc;
	}
	kn = strlen(k);
	vn = strlen(v);
	if (kn != KEYS_KID_LEN || !resolve_is_lower_hex(k, kn))
		return err_set(e, POS_EINVAL, "tid: kid must be %d lower-case hex characters",
			       KEYS_KID_LEN);
	if (vn == 0 || vn >= ENVELOPE_B64_MAX || !resolve_is_b64url(v, vn))
		return err_set(e, POS_EINVAL,
			       "tid: enc must be base64url without padding, at most %d characters",
			       ENVELOPE_B64_MAX - 1);
	memcpy(kid, k, kn + 1);
	memcpy(enc, v, vn + 1);
	return 0;
}

int resolve_from_json(json_t *root, struct resolve_req *out, pos_err *e)
{
	static const char *const keys[] = { "txn", "tid", NULL };
	const char *txn = NULL;
	int rc;

	memset(out, 0, sizeof *out);
	if (!json_is_object(root)) {
		rc = err_set(e, POS_EINVAL, "the body must be a JSON object");
		goto out;
	}
	if ((rc = jsonx_only_keys(root, keys, e)) < 0 ||
	    (rc = jsonx_str(root, "txn", 1, UUID_STR_LEN, &txn, e)) < 0)
		goto out;
	if ((rc = uuid_v7_check(txn, "txn", e)) < 0)
		goto out;
	memcpy(out->txn, txn, UUID_STR_LEN + 1);
	if (!json_object_get(root, "tid")) {
		rc = err_set(e, POS_EINVAL, "field 'tid' is required");
		goto out;
	}
	rc = resolve_enctid_from_json(json_object_get(root, "tid"), out->kid, out->enc, e);
out:
	if (rc < 0)
		memset(out, 0, sizeof *out);
	return rc;
}

/* {"kid":..,"enc":..} in either order, each once, values as the jansson
 * path requires them. */
static bool resolve_fast_tid(struct jsonx_scan *x, struct resolve_req *out)
{
	bool have_kid = false, have_enc = false;

	if (!jsonx_scan_eat(x, '{'))
		return false;
	do {
		const char *k;
		size_t kn;

		if (!jsonx_scan_key(x, &k, &kn))
			return false;
		if (jsonx_key_is(k, kn, "kid") && !have_kid) {
			if (!jsonx_scan_copy(x, out->kid, KEYS_KID_LEN) ||
			    strlen(out->kid) != KEYS_KID_LEN ||
			    !resolve_is_lower_hex(out->kid, KEYS_KID_LEN))
				return false;
			have_kid = true;
		} else if (jsonx_key_is(k, kn, "enc") && !have_enc) {
			if (!jsonx_scan_copy(x, out->enc, ENVELOPE_B64_MAX - 1) ||
			    !resolve_is_b64url(out->enc, strlen(out->enc)))
				return false;
			have_enc = true;
		} else {
			return false;
		}
	} while (jsonx_scan_eat(x, ','));
	return jsonx_scan_eat(x, '}') && have_kid && have_enc;
}

/* The fast path: the request in its usual shape, read without a jansson
 * tree (the tree and its allocations were ~3 us of a resolve's ~65).
 * Returns false on anything else, valid or not: resolve_from_json then
 * decides and words the error, so both paths accept the same requests and
 * fill the same struct (tests/unit/test_resolve.c and fuzz_resolve compare
 * them). */
static bool resolve_fast(const char *body, size_t len, struct resolve_req *out)
{
	struct jsonx_scan x = { body, body + len };
	bool have_txn = false, have_tid = false;

	if (!jsonx_scan_eat(&x, '{'))
		return false;
	do {
		const char *k;
		size_t kn;

		if (!jsonx_scan_key(&x, &k, &kn))
			return false;
		if (jsonx_key_is(k, kn, "txn") && !have_txn) {
			if (!jsonx_scan_copy(&x, out->txn, UUID_STR_LEN) || !uuid_v7_valid(out->txn))
				return false;
			have_txn = true;
		} else if (jsonx_key_is(k, kn, "tid") && !have_tid) {
			if (!resolve_fast_tid(&x, out))
				return false;
			have_tid = true;
		} else {
			return false;
		}
	} while (jsonx_scan_eat(&x, ','));
	return jsonx_scan_eat(&x, '}') && jsonx_scan_end(&x) && have_txn && have_tid;
}

int resolve_parse(const char *body, size_t len, struct resolve_req *out, pos_err *e)
{
	json_t *root = NULL;
	int rc;

	memset(out, 0, sizeof *out);
	if (len <= RESOLVE_MAX_BODY && resolve_fast(body, len, out))
		return 0;
	memset(out, 0, sizeof *out);
	if ((rc = jsonx_parse(body, len, RESOLVE_MAX_BODY, 4, &root, e)) < 0)
		return rc;
	rc = resolve_from_json(root, out, e);
	json_decref(root);
	return rc;
}

int resolve_store(struct store *s, bool auto_enrol, const unsigned char idx[DEIDENT_INDEX_LEN],
		  const char *dtid, struct resolve_result *out, pos_err *e)
{
	bool created = false;
	int rc;

	memset(out, 0, sizeof *out);
	if (!dtid || strlen(dtid) > DEIDENT_ID_LEN)
		return err_set(e, POS_EINVAL, "resolve: bad DeIdentTID");
	/* NULL: the store draws a fresh hhid only when it enrols one. */
	rc = store_resolve(s, idx, auto_enrol, NULL, out->hhid, &created, e);
	if (rc < 0) {
		memset(out, 0, sizeof *out);
		return rc;
	}
	memcpy(out->deident_tid, dtid, strlen(dtid) + 1);
	out->new_household = created;
	return 0;
}

int resolve_run(struct store *s, struct keys_chan *kc, bool auto_enrol, const char *store,
		const char *terminal, const char *txn, const char *kid, const char *enc,
		struct resolve_result *out, pos_err *e)
{
	unsigned char idx[DEIDENT_INDEX_LEN];
	char dtid[DEIDENT_ID_LEN + 1];
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = keys_open(kc, store, terminal, txn, kid, enc, idx, dtid, e)) == 0)
		rc = resolve_store(s, auto_enrol, idx, dtid, out, e);
	wipe(idx, sizeof idx);
	return rc;
}
