/* resolve: the request is parsed strictly, an EncTID opens only for its
 * terminal and txn with a key central holds, failures all look alike, and
 * the household is found or enrolled; the keyring loads only private files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deident.h"
#include "envelope.h"
#include "keyring.h"
#include "keys.h"
#include "keysproc.h"
#include "jsonx.h"
#include "resolve.h"

#define TXN "0193a5f2-6c1e-7b3a-9d2e-41f0c6a1b2c3"
#define TXN2 "0193a5f2-6c1e-7b3a-9d2e-41f0c6a1b2c4"
#define KID "0123456789abcdef"
#define CARD "card:4242424242424242"

struct fx {
	char dir[64];
	struct hpke_keypair cur, old;
	unsigned char k_index[32], k_deident[32];
	struct keyring *kr;
	struct keys_chan *kc; /* kr in this process */
};

static int fx_setup(void **st)
{
	struct fx *f = calloc(1, sizeof *f);
	pos_err e = { 0 };

	if (!f)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/test_resolve_XXXXXX");
	if (!mkdtemp(f->dir) || keys_generate(&f->cur, &e) < 0 || keys_generate(&f->old, &e) < 0)
		return -1;
	memset(f->k_index, 0x11, 32);
	memset(f->k_deident, 0x22, 32);
	if (keyring_new(f->k_index, f->k_deident, &f->kr, &e) < 0 ||
	    keyring_add(f->kr, &f->cur, &e) < 0 || keyring_add(f->kr, &f->old, &e) < 0 ||
	    keys_chan_local(f->kr, &f->kc, &e) < 0)
		return -1;
	*st = f;
	return 0;
}

static int fx_teardown(void **st)
{
	struct fx *f = *st;
	char cmd[128];

	keys_chan_free(f->kc);
	keyring_free(f->kr);
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void seal(const struct hpke_keypair *kp, const char *store, const char *term,
		 const char *txn, const char *tid, char enc[ENVELOPE_B64_MAX])
{
	char info[ENVELOPE_INFO_MAX];
	pos_err e = { 0 };

	assert_int_equal(envelope_info(info, store, term, txn, &e), 0);
	assert_int_equal(envelope_seal_tid(kp->pk, kp->kid, info, tid, enc, &e), 0);
}

static int parse(const char *s, struct resolve_req *r, pos_err *e)
{
	return resolve_parse(s, strlen(s), r, e);
}

/* ------------------------------------------------------------ parsing */

static void a_valid_request_parses(void **st)
{
	struct resolve_req r;
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(parse("{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID
			       "\",\"enc\":\"AbC-_9\"}}",
			       &r, &e),
			 0);
	assert_string_equal(r.txn, TXN);
	assert_string_equal(r.kid, KID);
	assert_string_equal(r.enc, "AbC-_9");
}

static void refused(const char *body, int code, const char *part)
{
	struct resolve_req r;
	pos_err e = { 0 };

	assert_int_equal(parse(body, &r, &e), code);
	if (!strstr(e.msg, part))
		fail_msg("message '%s' lacks '%s'", e.msg, part);
	assert_string_equal(r.txn, "");
	assert_string_equal(r.kid, "");
}

static void every_malformed_request_is_refused_with_its_reason(void **st)
{
	char big[RESOLVE_MAX_BODY + 64];

	(void)st;
	refused("{\"txn\":", POS_EINVAL, "json");
	refused("[]", POS_EINVAL, "must be a JSON object");
	refused("{\"tid\":{\"kid\":\"" KID "\",\"enc\":\"AA\"}}", POS_EINVAL, "'txn' is required");
	refused("{\"txn\":7,\"tid\":{\"kid\":\"" KID "\",\"enc\":\"AA\"}}", POS_EINVAL,
		"'txn' must be a string");
	refused("{\"txn\":\"nope\",\"tid\":{\"kid\":\"" KID "\",\"enc\":\"AA\"}}", POS_EINVAL,
		"txn must be a UUID");
	refused("{\"txn\":\"00000000-0000-0000-0000-000000000000\",\"tid\":{\"kid\":\"" KID
		"\",\"enc\":\"AA\"}}",
		POS_EINVAL, "txn must not be the nil UUID");
	refused("{\"txn\":\"550e8400-e29b-41d4-a716-446655440000\",\"tid\":{\"kid\":\"" KID
		"\",\"enc\":\"AA\"}}",
		POS_EINVAL, "txn must be a UUIDv7");
	refused("{\"txn\":\"" TXN "\"}", POS_EINVAL, "'tid' is required");
	refused("{\"txn\":\"" TXN "\",\"tid\":null}", POS_EINVAL, "tid must be an object");
	refused("{\"txn\":\"" TXN "\",\"tid\":\"card:4242424242424242\"}", POS_EINVAL,
		"tid must be an object");
	refused("{\"txn\":\"" TXN "\",\"tid\":{\"enc\":\"AA\"}}", POS_EINVAL,
		"tid: field 'kid' is required");
	refused("{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\"}}", POS_EINVAL,
		"tid: field 'enc' is required");
	refused("{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"0123\",\"enc\":\"AA\"}}", POS_EINVAL,
		"kid must be 16 lower-case hex");
	refused("{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"0123456789ABCDEF\",\"enc\":\"AA\"}}",
		POS_EINVAL, "kid must be 16 lower-case hex");
	refused("{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\",\"enc\":\"A/A=\"}}", POS_EINVAL,
		"enc must be base64url");
	refused("{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\",\"enc\":\"\"}}", POS_EINVAL,
		"enc must be base64url");
	refused("{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\",\"enc\":5}}", POS_EINVAL,
		"'enc' must be a string");
	refused("{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\",\"enc\":\"AA\",\"x\":1}}",
		POS_EINVAL, "tid: unknown field 'x'");
	refused("{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\",\"enc\":\"AA\"},\"store\":\"S9\"}",
		POS_EINVAL, "unknown field 'store'");
	refused("{\"txn\":\"" TXN "\",\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID
		"\",\"enc\":\"AA\"}}",
		POS_EINVAL, "duplicate");
	refused("{\"a\":{\"b\":{\"c\":{\"d\":{}}}}}", POS_EINVAL, "nested");
	memset(big, ' ', sizeof big - 1);
	big[0] = '{';
	big[sizeof big - 2] = '}';
	big[sizeof big - 1] = '\0';
	refused(big, POS_ETOOBIG, "exceeds");
}

static void an_enc_over_the_sealed_maximum_is_refused(void **st)
{
	char body[ENVELOPE_B64_MAX + 128], enc[ENVELOPE_B64_MAX + 1];

	(void)st;
	memset(enc, 'A', sizeof enc - 1);
	enc[sizeof enc - 1] = '\0';
	snprintf(body, sizeof body, "{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\",\"enc\":\"%s\"}}",
		 enc);
	refused(body, POS_EINVAL, "enc must be base64url");
}

/* resolve_parse reads the usual shape without jansson; whatever it does,
 * the jansson path must do the same: same result, same message, same
 * fields. */
static void same_as_the_jansson_path(const char *body)
{
	struct resolve_req a, b;
	pos_err ea = { 0 }, eb = { 0 };
	json_t *root = NULL;
	int ra, rb;

	ra = resolve_parse(body, strlen(body), &a, &ea);
	rb = jsonx_parse(body, strlen(body), RESOLVE_MAX_BODY, 4, &root, &eb);
	if (rb == 0)
		rb = resolve_from_json(root, &b, &eb);
	else
		memset(&b, 0, sizeof b);
	json_decref(root);
	if (ra != rb || strcmp(ea.msg, eb.msg) != 0 || memcmp(&a, &b, sizeof a) != 0)
		fail_msg("paths differ on %s: %d '%s' / %d '%s'", body, ra, ea.msg, rb, eb.msg);
}

static void the_fast_parser_fills_what_the_jansson_path_fills(void **st)
{
	static const char *const bodies[] = {
		"{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\",\"enc\":\"AbC-_9\"}}",
		" {\"tid\" : {\"enc\":\"AbC\" ,\"kid\":\"" KID "\"},\r\n\t\"txn\":\"" TXN "\"} \n",
		"{\"txn\":\"0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B\",\"tid\":{\"kid\":\"" KID
		"\",\"enc\":\"AA\"}}",
		"{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\",\"enc\":\"\\u0041A\"}}",
		"{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\",\"enc\":\"AA\"}} x",
		"{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\",\"enc\":\"AA\"},}",
		"{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\",\"kid\":\"" KID
		"\",\"enc\":\"AA\"}}",
		"{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\",\"enc\":\"A A\"}}",
		"{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\",\"enc\":null}}",
		"{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\",\"enc\":\"AA\"}",
		"{\"txn\":\"" TXN "\",\"tid\":{\"kid\":\"" KID "\",\"enc\":\"\xc3\xa9\"}}",
		"{\"txn\":\"" TXN "\",\"tid\":{}}",
		"{}",
		"",
	};

	(void)st;
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
		same_as_the_jansson_path(bodies[i]);
}

/* ------------------------------------------------------------ opening */

static void an_enctid_opens_to_the_keyed_hashes_of_its_tid(void **st)
{
	struct fx *f = *st;
	unsigned char idx[32], want_idx[32];
	char dtid[DEIDENT_ID_LEN + 1], want_dtid[DEIDENT_ID_LEN + 1], enc[ENVELOPE_B64_MAX];
	pos_err e = { 0 };

	seal(&f->cur, "S1", "T1", TXN, CARD, enc);
	assert_int_equal(keyring_open(f->kr, "S1", "T1", TXN, f->cur.kid, enc, idx, dtid, &e), 0);
	assert_int_equal(deident_index(f->k_index, CARD, want_idx, &e), 0);
	assert_int_equal(deident_tid(f->k_deident, CARD, want_dtid, &e), 0);
	assert_memory_equal(idx, want_idx, 32);
	assert_string_equal(dtid, want_dtid);
}

static void the_opened_tid_is_normalised_before_hashing(void **st)
{
	struct fx *f = *st;
	unsigned char idx[32], want[32];
	char dtid[DEIDENT_ID_LEN + 1], enc[ENVELOPE_B64_MAX];
	pos_err e = { 0 };

	seal(&f->cur, "S1", "T1", TXN, "card:4242 4242 4242 4242", enc);
	assert_int_equal(keyring_open(f->kr, "S1", "T1", TXN, f->cur.kid, enc, idx, dtid, &e), 0);
	assert_int_equal(deident_index(f->k_index, CARD, want, &e), 0);
	assert_memory_equal(idx, want, 32);
}

static void a_retired_key_still_opens_what_was_sealed_to_it(void **st)
{
	struct fx *f = *st;
	unsigned char idx[32];
	char dtid[DEIDENT_ID_LEN + 1], enc[ENVELOPE_B64_MAX];
	pos_err e = { 0 };

	seal(&f->old, "S1", "T1", TXN, "phone:+15550100234", enc);
	assert_int_equal(keyring_open(f->kr, "S1", "T1", TXN, f->old.kid, enc, idx, dtid, &e), 0);
}

static void every_failed_open_looks_like_an_unknown_kid(void **st)
{
	struct fx *f = *st;
	unsigned char idx[32];
	char dtid[DEIDENT_ID_LEN + 1], enc[ENVELOPE_B64_MAX], flipped[ENVELOPE_B64_MAX];
	pos_err unknown = { 0 }, e = { 0 };

	seal(&f->cur, "S1", "T1", TXN, CARD, enc);
	assert_int_equal(keyring_open(f->kr, "S1", "T1", TXN, KID, enc, idx, dtid, &unknown),
			 POS_ECRYPTO);
	/* Another terminal, store or txn; the other key; a flipped character. */
	assert_int_equal(keyring_open(f->kr, "S1", "T2", TXN, f->cur.kid, enc, idx, dtid, &e),
			 POS_ECRYPTO);
	assert_string_equal(e.msg, unknown.msg);
	assert_int_equal(keyring_open(f->kr, "S2", "T1", TXN, f->cur.kid, enc, idx, dtid, &e),
			 POS_ECRYPTO);
	assert_string_equal(e.msg, unknown.msg);
	assert_int_equal(keyring_open(f->kr, "S1", "T1", TXN2, f->cur.kid, enc, idx, dtid, &e),
			 POS_ECRYPTO);
	assert_string_equal(e.msg, unknown.msg);
	assert_int_equal(keyring_open(f->kr, "S1", "T1", TXN, f->old.kid, enc, idx, dtid, &e),
			 POS_ECRYPTO);
	assert_string_equal(e.msg, unknown.msg);
	memcpy(flipped, enc, sizeof flipped);
	flipped[40] = flipped[40] == 'A' ? 'B' : 'A';
	assert_int_equal(keyring_open(f->kr, "S1", "T1", TXN, f->cur.kid, flipped, idx, dtid, &e),
			 POS_ECRYPTO);
	assert_string_equal(e.msg, unknown.msg);
	/* Truncated, and not base64url at all. */
	flipped[20] = '\0';
	assert_int_equal(keyring_open(f->kr, "S1", "T1", TXN, f->cur.kid, flipped, idx, dtid, &e),
			 POS_ECRYPTO);
	assert_string_equal(e.msg, unknown.msg);
	assert_int_equal(keyring_open(f->kr, "S1", "T1", TXN, f->cur.kid, "!!", idx, dtid, &e),
			 POS_ECRYPTO);
	assert_string_equal(e.msg, unknown.msg);
	assert_null(strstr(unknown.msg, "4242"));
}

static void a_sealed_value_that_is_not_a_tid_is_refused_without_echo(void **st)
{
	struct fx *f = *st;
	unsigned char idx[32];
	char dtid[DEIDENT_ID_LEN + 1], enc[ENVELOPE_B64_MAX];
	pos_err e = { 0 };

	seal(&f->cur, "S1", "T1", TXN, "card:4242424242424241", enc); /* fails Luhn */
	assert_int_equal(keyring_open(f->kr, "S1", "T1", TXN, f->cur.kid, enc, idx, dtid, &e),
			 POS_EINVAL);
	assert_non_null(strstr(e.msg, "not hold a valid TID"));
	assert_null(strstr(e.msg, "4242"));
}

static void ids_that_cannot_form_the_info_are_refused(void **st)
{
	struct fx *f = *st;
	unsigned char idx[32];
	char dtid[DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	assert_int_equal(keyring_open(f->kr, "", "T1", TXN, f->cur.kid, "AAAA", idx, dtid, &e),
			 POS_EINVAL);
}

/* ------------------------------------------------------------ store */

static void a_tid_enrols_once_and_then_resolves_to_its_household(void **st)
{
	struct fx *f = *st;
	struct resolve_result r1, r2, r3;
	struct store *s = NULL;
	char db[128], enc[ENVELOPE_B64_MAX], enc2[ENVELOPE_B64_MAX];
	pos_err e = { 0 };

	snprintf(db, sizeof db, "%s/enrol.db", f->dir);
	assert_int_equal(store_open(db, &s, &e), 0);
	seal(&f->cur, "S1", "T1", TXN, CARD, enc);
	seal(&f->old, "S1", "T2", TXN2, CARD, enc2);

	/* Auto-enrol off: unknown. Nothing is created. */
	assert_int_equal(resolve_run(s, f->kc, false, "S1", "T1", TXN, f->cur.kid, enc, &r1, &e),
			 POS_ENOTFOUND);
	assert_string_equal(r1.hhid, "");

	assert_int_equal(resolve_run(s, f->kc, true, "S1", "T1", TXN, f->cur.kid, enc, &r1, &e), 0);
	assert_true(r1.new_household);
	assert_true(deident_hhid_valid(r1.hhid));
	assert_true(deident_dtid_valid(r1.deident_tid));
	/* The same TID from another lane and key: the same household. */
	assert_int_equal(resolve_run(s, f->kc, true, "S1", "T2", TXN2, f->old.kid, enc2, &r2, &e),
			 0);
	assert_false(r2.new_household);
	assert_string_equal(r2.hhid, r1.hhid);
	assert_string_equal(r2.deident_tid, r1.deident_tid);
	/* Known now, so auto-enrol off finds it too. */
	assert_int_equal(resolve_run(s, f->kc, false, "S1", "T1", TXN, f->cur.kid, enc, &r3, &e),
			 0);
	assert_string_equal(r3.hhid, r1.hhid);
	/* A bad EncTID reaches no store. */
	assert_int_equal(resolve_run(s, f->kc, true, "S1", "T9", TXN, f->cur.kid, enc, &r3, &e),
			 POS_ECRYPTO);
	store_close(s);
}

/* ------------------------------------------------------------ keyring */

static void write_keys(struct fx *f, struct cconf *c, const char *sub)
{
	char d[256];
	pos_err e = { 0 };

	memset(c, 0, sizeof *c);
	snprintf(d, sizeof d, "%s/%s", f->dir, sub);
	assert_int_equal(mkdir(d, 0700), 0);
	snprintf(c->hpke_key, sizeof c->hpke_key, "%s/hpke.key", d);
	snprintf(c->hpke_retired, sizeof c->hpke_retired, "%s/keys", d);
	snprintf(c->k_index, sizeof c->k_index, "%s/k_index.key", d);
	snprintf(c->k_deident, sizeof c->k_deident, "%s/k_deident.key", d);
	snprintf(c->analyst_token, sizeof c->analyst_token, "%s/analyst.token", d);
	snprintf(c->admin_token, sizeof c->admin_token, "%s/admin.token", d);
	assert_int_equal(keys_save_private(c->hpke_key, &f->cur, &e), 0);
	assert_int_equal(mkdir(c->hpke_retired, 0700), 0);
	snprintf(d, sizeof d, "%s/%s/keys/%s.key", f->dir, sub, f->old.kid);
	assert_int_equal(keys_save_private(d, &f->old, &e), 0);
	assert_int_equal(keys_generate_hmac(c->k_index, &e), 0);
	assert_int_equal(keys_generate_hmac(c->k_deident, &e), 0);
	assert_int_equal(keys_generate_token(c->analyst_token, &e), 0);
	assert_int_equal(keys_generate_token(c->admin_token, &e), 0);
}

static void read_token(const char *path, char *out, size_t cap)
{
	FILE *fp = fopen(path, "r");

	assert_non_null(fp);
	assert_non_null(fgets(out, (int)cap, fp));
	fclose(fp);
	out[strcspn(out, "\n")] = '\0';
}

static void the_keyring_loads_current_and_retired_keys_and_tokens(void **st)
{
	struct fx *f = *st;
	struct keyring *kr = NULL;
	struct cconf c;
	char analyst[KEYS_TOKEN_MAX + 2], admin[KEYS_TOKEN_MAX + 2];
	unsigned char pidx[DEIDENT_INDEX_LEN], ridx[DEIDENT_INDEX_LEN];
	char pdt[DEIDENT_ID_LEN + 1], rdt[DEIDENT_ID_LEN + 1];
	pos_err e = { 0 };

	write_keys(f, &c, "home1");
	assert_int_equal(keyring_load(&c, &kr, &e), 0);
	assert_int_equal(keyring_count(kr), 2);
	assert_non_null(keyring_find(kr, f->cur.kid));
	assert_non_null(keyring_find(kr, f->old.kid));
	assert_memory_equal(keyring_find(kr, f->old.kid)->sk, f->old.sk, 32);
	assert_null(keyring_find(kr, KID));
	/* Each key is also held imported, under the same kid. */
	assert_memory_equal(envelope_key_public(keyring_find_key(kr, f->cur.kid)), f->cur.pk, 32);
	assert_memory_equal(envelope_key_public(keyring_find_key(kr, f->old.kid)), f->old.pk, 32);
	assert_null(keyring_find_key(kr, KID));
	/* The prepared HMACs are keyed with the loaded keys, not the zero
	 * bytes the keyring starts with. */
	assert_int_equal(deident_index_key(keyring_index_key(kr), "card:4111111111111111", pidx,
					   &e), 0);
	assert_int_equal(deident_index(keyring_k_index(kr), "card:4111111111111111", ridx, &e), 0);
	assert_memory_equal(pidx, ridx, 32);
	assert_int_equal(deident_tid_key(keyring_deident_key(kr), "card:4111111111111111", pdt,
					 &e), 0);
	assert_int_equal(deident_tid(keyring_k_deident(kr), "card:4111111111111111", rdt, &e), 0);
	assert_string_equal(pdt, rdt);
	read_token(c.analyst_token, analyst, sizeof analyst);
	read_token(c.admin_token, admin, sizeof admin);
	assert_true(keyring_analyst_ok(kr, analyst, strlen(analyst)));
	assert_false(keyring_analyst_ok(kr, admin, strlen(admin)));
	assert_true(keyring_admin_ok(kr, admin, strlen(admin)));
	assert_false(keyring_admin_ok(kr, analyst, strlen(analyst)));
	assert_false(keyring_analyst_ok(kr, analyst, strlen(analyst) - 1));
	assert_false(keyring_analyst_ok(kr, "", 0));
	analyst[5] ^= 1;
	assert_false(keyring_analyst_ok(kr, analyst, strlen(analyst)));
	assert_memory_not_equal(keyring_k_index(kr), keyring_k_deident(kr), 32);
	keyring_free(kr);
}

static void a_missing_retired_folder_is_no_retired_keys(void **st)
{
	struct fx *f = *st;
	struct keyring *kr = NULL;
	struct cconf c;
	char cmd[CCONF_PATH_MAX + 16];
	pos_err e = { 0 };

	write_keys(f, &c, "home2");
	snprintf(cmd, sizeof cmd, "rm -rf %s", c.hpke_retired);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(keyring_load(&c, &kr, &e), 0);
	assert_int_equal(keyring_count(kr), 1);
	keyring_free(kr);
}

static void load_refused(const struct cconf *c, int code, const char *part)
{
	struct keyring *kr = NULL;
	pos_err e = { 0 };

	assert_int_equal(keyring_load(c, &kr, &e), code);
	assert_null(kr);
	if (!strstr(e.msg, part))
		fail_msg("message '%s' lacks '%s'", e.msg, part);
}

static void files_others_can_read_are_refused(void **st)
{
	struct fx *f = *st;
	struct cconf c;
	char retired[CCONF_PATH_MAX + 32];

	write_keys(f, &c, "home3");
	assert_int_equal(chmod(c.hpke_key, 0640), 0);
	load_refused(&c, POS_EPERM, "hpke.key");
	assert_int_equal(chmod(c.hpke_key, 0600), 0);

	snprintf(retired, sizeof retired, "%s/%s.key", c.hpke_retired, f->old.kid);
	assert_int_equal(chmod(retired, 0644), 0);
	load_refused(&c, POS_EPERM, f->old.kid);
	assert_int_equal(chmod(retired, 0600), 0);

	assert_int_equal(chmod(c.k_deident, 0604), 0);
	load_refused(&c, POS_EPERM, "k_deident.key");
	assert_int_equal(chmod(c.k_deident, 0600), 0);

	assert_int_equal(chmod(c.analyst_token, 0660), 0);
	load_refused(&c, POS_EPERM, "analyst.token");
	assert_int_equal(chmod(c.analyst_token, 0600), 0);
}

static void a_broken_retired_key_stops_the_start(void **st)
{
	struct fx *f = *st;
	struct cconf c;
	char bad[CCONF_PATH_MAX + 32];
	pos_err e = { 0 };

	write_keys(f, &c, "home4");
	snprintf(bad, sizeof bad, "%s/junk.key", c.hpke_retired);
	assert_int_equal(keys_write_file(bad, "not a key\n", 10, 0600, 0, &e), 0);
	load_refused(&c, POS_EINVAL, "junk.key");
}

static void equal_keys_or_tokens_for_two_roles_are_refused(void **st)
{
	struct fx *f = *st;
	struct cconf c;
	char cmd[3 * CCONF_PATH_MAX];

	write_keys(f, &c, "home5");
	snprintf(cmd, sizeof cmd, "cp -p %s %s", c.k_index, c.k_deident);
	assert_int_equal(system(cmd), 0);
	load_refused(&c, POS_EINVAL, "same key");

	write_keys(f, &c, "home6");
	snprintf(cmd, sizeof cmd, "cp -p %s %s", c.analyst_token, c.admin_token);
	assert_int_equal(system(cmd), 0);
	load_refused(&c, POS_EINVAL, "roles must differ");
}

static void a_missing_key_file_is_named(void **st)
{
	struct fx *f = *st;
	struct cconf c;

	write_keys(f, &c, "home7");
	assert_int_equal(unlink(c.k_index), 0);
	load_refused(&c, POS_ENOTFOUND, "k_index.key");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_valid_request_parses),
		cmocka_unit_test(every_malformed_request_is_refused_with_its_reason),
		cmocka_unit_test(an_enc_over_the_sealed_maximum_is_refused),
		cmocka_unit_test(the_fast_parser_fills_what_the_jansson_path_fills),
		cmocka_unit_test(an_enctid_opens_to_the_keyed_hashes_of_its_tid),
		cmocka_unit_test(the_opened_tid_is_normalised_before_hashing),
		cmocka_unit_test(a_retired_key_still_opens_what_was_sealed_to_it),
		cmocka_unit_test(every_failed_open_looks_like_an_unknown_kid),
		cmocka_unit_test(a_sealed_value_that_is_not_a_tid_is_refused_without_echo),
		cmocka_unit_test(ids_that_cannot_form_the_info_are_refused),
		cmocka_unit_test(a_tid_enrols_once_and_then_resolves_to_its_household),
		cmocka_unit_test(the_keyring_loads_current_and_retired_keys_and_tokens),
		cmocka_unit_test(a_missing_retired_folder_is_no_retired_keys),
		cmocka_unit_test(files_others_can_read_are_refused),
		cmocka_unit_test(a_broken_retired_key_stops_the_start),
		cmocka_unit_test(equal_keys_or_tokens_for_two_roles_are_refused),
		cmocka_unit_test(a_missing_key_file_is_named),
	};

	return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
