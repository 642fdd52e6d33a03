/* keysproc: the keys process answers over its channels exactly what
 * keyring_open answers in-process (results, codes and messages), also
 * when opens go asynchronously through an event loop (answers read by a
 * synchronous call meanwhile are handed over; an answer that never comes
 * is refused after the timeout, a late one dropped), refuses
 * at start a key file it refuses in-process, and once it is gone a request
 * fails POS_EAGAIN and the parent learns how it ended. The tokens-only
 * ring serve keeps reads no key file and opens nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "deident.h"
#include "envelope.h"
#include "keyring.h"
#include "keys.h"
#include "keysproc.h"

#define TXN "0193a5f2-6c1e-7b3a-9d2e-41f0c6a1b2c3"
#define KID "0123456789abcdef"

struct fx {
	char dir[64];
	struct hpke_keypair cur, old;
};

static int fx_setup(void **st)
{
	struct fx *f = calloc(1, sizeof *f);
	pos_err e = { 0 };

	if (!f)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/test_keysproc_XXXXXX");
	if (!mkdtemp(f->dir) || keys_generate(&f->cur, &e) < 0 || keys_generate(&f->old, &e) < 0)
		return -1;
	*st = f;
	return 0;
}

static int fx_teardown(void **st)
{
	struct fx *f = *st;
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* A home with the current key, one retired key, both HMAC keys and the
 * tokens. user stays empty: the keys process keeps the test's user. */
static void write_home(struct fx *f, struct cconf *c, const char *sub)
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

static void seal(const struct hpke_keypair *kp, const char *store, const char *term,
		 const char *tid, char enc[ENVELOPE_B64_MAX])
{
	char info[ENVELOPE_INFO_MAX];
	pos_err e = { 0 };

	assert_int_equal(envelope_info(info, store, term, TXN, &e), 0);
	assert_int_equal(envelope_seal_tid(kp->pk, kp->kid, info, tid, enc, &e), 0);
}

struct open_case {
	const char *store, *terminal, *txn, *kid, *enc;
};

/* The same request through both channels: same code, message and hashes. */
static void same_answer(struct keys_chan *remote, struct keys_chan *local,
			const struct open_case *k, int want)
{
	unsigned char ri[DEIDENT_INDEX_LEN] = { 0 }, li[DEIDENT_INDEX_LEN] = { 0 };
	char rd[DEIDENT_ID_LEN + 1] = "", ld[DEIDENT_ID_LEN + 1] = "";
	pos_err re = { 0 }, le = { 0 };
	int rrc, lrc;

	rrc = keys_open(remote, k->store, k->terminal, k->txn, k->kid, k->enc, ri, rd, &re);
	lrc = keys_open(local, k->store, k->terminal, k->txn, k->kid, k->enc, li, ld, &le);
	assert_int_equal(rrc, want);
	assert_int_equal(lrc, want);
	assert_string_equal(re.msg, le.msg);
	if (want == 0) {
		assert_memory_equal(ri, li, sizeof ri);
		assert_string_equal(rd, ld);
		assert_true(deident_dtid_valid(rd));
	}
}

static void the_keys_process_answers_what_the_keyring_answers(void **st)
{
	struct fx *f = *st;
	struct keysproc *kp = NULL;
	struct keyring *kr = NULL;
	struct keys_chan *local = NULL;
	struct cconf c;
	char enc[ENVELOPE_B64_MAX], old[ENVELOPE_B64_MAX], junk[ENVELOPE_B64_MAX];
	char flipped[ENVELOPE_B64_MAX], longid[300];
	pos_err e = { 0 };

	write_home(f, &c, "same");
	assert_int_equal(keysproc_start(&c, 3, &kp, &e), 0);
	assert_int_equal(keysproc_nchan(kp), 3);
	assert_int_equal(keysproc_hpke_keys(kp), 2);
	assert_true(keysproc_alive(kp, NULL, 0));
	assert_int_equal(keyring_load_keys(&c, &kr, &e), 0);
	assert_int_equal(keys_chan_local(kr, &local, &e), 0);

	seal(&f->cur, "S1", "T1", "card:4242424242424242", enc);
	seal(&f->old, "S1", "T1", "card:4111111111111111", old);
	seal(&f->cur, "S1", "T1", "hello", junk);
	memcpy(flipped, enc, sizeof flipped);
	flipped[10] = flipped[10] == 'A' ? 'B' : 'A';
	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';

	const struct open_case ok = { "S1", "T1", TXN, f->cur.kid, enc };
	const struct open_case retired = { "S1", "T1", TXN, f->old.kid, old };
	const struct open_case other_lane = { "S1", "T2", TXN, f->cur.kid, enc };
	const struct open_case unknown = { "S1", "T1", TXN, KID, enc };
	const struct open_case tampered = { "S1", "T1", TXN, f->cur.kid, flipped };
	const struct open_case not_a_tid = { "S1", "T1", TXN, f->cur.kid, junk };
	const struct open_case no_info = { "", "T1", TXN, f->cur.kid, enc };
	const struct open_case too_long = { longid, "T1", TXN, f->cur.kid, enc };
	const struct open_case long_kid = { "S1", "T1", TXN, longid, enc };
	const struct open_case long_enc = { "S1", "T1", TXN, f->cur.kid, longid };

	/* All of them in one round trip, repeated up to a full batch: each
	 * answer is the one keys_open gives alone. */
	const struct open_case *cases[] = { &ok, &retired, &other_lane, &unknown, &tampered,
					    &not_a_tid, &no_info, &too_long, &long_kid, &long_enc };
	struct keys_open_req breq[KEYS_BATCH_MAX];
	struct keys_open_res bres[KEYS_BATCH_MAX];
	size_t nc = sizeof cases / sizeof cases[0];

	for (size_t i = 0; i < KEYS_BATCH_MAX; i++) {
		const struct open_case *k = cases[i % nc];

		breq[i] = (struct keys_open_req){ k->store, k->terminal, k->txn, k->kid, k->enc };
	}
	assert_int_equal(keys_open_batch(keysproc_chan(kp, 2), KEYS_BATCH_MAX, breq, bres, &e), 0);
	for (size_t i = 0; i < KEYS_BATCH_MAX; i++) {
		const struct open_case *k = cases[i % nc];
		unsigned char li[DEIDENT_INDEX_LEN];
		char ld[DEIDENT_ID_LEN + 1];
		pos_err le = { 0 };
		int lrc = keys_open(local, k->store, k->terminal, k->txn, k->kid, k->enc, li, ld, &le);

		assert_int_equal(bres[i].rc, lrc);
		if (lrc == 0) {
			assert_memory_equal(bres[i].idx, li, sizeof li);
			assert_string_equal(bres[i].dtid, ld);
		} else {
			assert_string_equal(bres[i].err.msg, le.msg);
		}
	}
	assert_int_equal(keys_open_batch(keysproc_chan(kp, 2), KEYS_BATCH_MAX + 1, breq, bres, &e),
			 POS_EINVAL);

	for (size_t i = 0; i < keysproc_nchan(kp); i++) {
		struct keys_chan *ch = keysproc_chan(kp, i);

		same_answer(ch, local, &ok, 0);
		same_answer(ch, local, &retired, 0);
		same_answer(ch, local, &other_lane, POS_ECRYPTO);
		same_answer(ch, local, &unknown, POS_ECRYPTO);
		same_answer(ch, local, &tampered, POS_ECRYPTO);
		same_answer(ch, local, &not_a_tid, POS_EINVAL);
		same_answer(ch, local, &no_info, POS_EINVAL);
		same_answer(ch, local, &too_long, POS_EINVAL);
		same_answer(ch, local, &long_kid, POS_ECRYPTO);
		same_answer(ch, local, &long_enc, POS_ECRYPTO);
	}
	assert_null(keysproc_chan(kp, 3));
	keys_chan_free(local);
	keyring_free(kr);
	keysproc_stop(kp);
}

/* The blind index of a phone: the keys process answers the keyring's
 * tid index of the normalised TID; a malformed one is refused alike. */
static void a_key_file_others_can_read_stops_the_start(void **st)
{
	struct fx *f = *st;
	struct keysproc *kp = NULL;
	struct cconf c;
	pos_err e = { 0 };

	write_home(f, &c, "mode");
	assert_int_equal(chmod(c.k_index, 0640), 0);
	assert_int_equal(keysproc_start(&c, 2, &kp, &e), POS_EPERM);
	assert_null(kp);
	if (!strstr(e.msg, "k_index.key"))
		fail_msg("message '%s' does not name k_index.key", e.msg);
}

static void a_dead_keys_process_fails_requests_and_is_noticed(void **st)
{
	struct fx *f = *st;
	struct keysproc *kp = NULL;
	struct cconf c;
	unsigned char idx[DEIDENT_INDEX_LEN];
	char enc[ENVELOPE_B64_MAX], dtid[DEIDENT_ID_LEN + 1], why[32] = "";
	pos_err e = { 0 };

	write_home(f, &c, "dead");
	seal(&f->cur, "S1", "T1", "card:4242424242424242", enc);
	assert_int_equal(keysproc_start(&c, 2, &kp, &e), 0);
	assert_int_equal(keys_open(keysproc_chan(kp, 1), "S1", "T1", TXN, f->cur.kid, enc, idx,
				   dtid, &e),
			 0);
	assert_int_equal(kill(keysproc_pid(kp), SIGKILL), 0);
	/* Its channels hang up when the kernel has torn it down. */
	assert_int_equal(keys_open(keysproc_chan(kp, 0), "S1", "T1", TXN, f->cur.kid, enc, idx,
				   dtid, &e),
			 POS_EAGAIN);
	assert_int_equal(keys_open(keysproc_chan(kp, 1), "S1", "T1", TXN, f->cur.kid, enc, idx,
				   dtid, &e),
			 POS_EAGAIN);
	assert_int_equal(waitid(P_PID, (id_t)keysproc_pid(kp), NULL, WEXITED | WNOWAIT), 0);
	assert_false(keysproc_alive(kp, why, sizeof why));
	assert_string_equal(why, "signal 9");
	keysproc_stop(kp);
}

static void a_stopped_keys_process_exits_cleanly(void **st)
{
	struct fx *f = *st;
	struct keysproc *kp = NULL;
	struct cconf c;
	pos_err e = { 0 };
	pid_t pid;

	write_home(f, &c, "stop");
	assert_int_equal(keysproc_start(&c, 4, &kp, &e), 0);
	pid = keysproc_pid(kp);
	assert_true(pid > 0);
	/* SIGTERM is the parent's to handle: the keys process outlives it
	 * until its channels close. */
	assert_int_equal(kill(pid, SIGTERM), 0);
	usleep(20000);
	assert_true(keysproc_alive(kp, NULL, 0));
	keysproc_stop(kp);
	assert_int_equal(kill(pid, 0), -1);
}

static void serve_keeps_tokens_and_no_key(void **st)
{
	struct fx *f = *st;
	struct keyring *kr = NULL;
	struct cconf c;
	unsigned char idx[DEIDENT_INDEX_LEN];
	char enc[ENVELOPE_B64_MAX], dtid[DEIDENT_ID_LEN + 1], tok[KEYS_TOKEN_MAX + 2];
	FILE *fp;
	pos_err e = { 0 };

	write_home(f, &c, "tokens");
	/* Key files it would refuse or could not read: never opened. */
	assert_int_equal(chmod(c.hpke_key, 0644), 0);
	assert_int_equal(unlink(c.k_index), 0);
	assert_int_equal(keyring_load_tokens(&c, &kr, &e), 0);
	assert_int_equal(keyring_count(kr), 0);
	seal(&f->cur, "S1", "T1", "card:4242424242424242", enc);
	assert_int_equal(keyring_open(kr, "S1", "T1", TXN, f->cur.kid, enc, idx, dtid, &e),
			 POS_ECRYPTO);
	fp = fopen(c.admin_token, "r");
	assert_non_null(fp);
	assert_non_null(fgets(tok, (int)sizeof tok, fp));
	fclose(fp);
	tok[strcspn(tok, "\n")] = '\0';
	assert_true(keyring_admin_ok(kr, tok, strlen(tok)));
	assert_false(keyring_analyst_ok(kr, tok, strlen(tok)));
	keyring_free(kr);
}

/* What the loop's callback got. */
struct async_got {
	int calls;
	int rc[4];
	char msg[4][256];
	unsigned char idx[4][DEIDENT_INDEX_LEN];
	char dtid[4][DEIDENT_ID_LEN + 1];
};

struct async_slot {
	struct async_got *g;
	int i;
};

static void async_done(void *arg, struct keys_open_res *res)
{
	struct async_slot *s = arg;

	s->g->calls++;
	s->g->rc[s->i] = res->rc;
	snprintf(s->g->msg[s->i], sizeof s->g->msg[s->i], "%s", res->rc ? res->err.msg : "");
	memcpy(s->g->idx[s->i], res->idx, sizeof s->g->idx[s->i]);
	memcpy(s->g->dtid[s->i], res->dtid, sizeof s->g->dtid[s->i]);
}

static void async_run(struct event_base *base, struct async_got *g, int want)
{
	for (int spins = 0; g->calls < want && spins < 1000; spins++)
		assert_true(event_base_loop(base, EVLOOP_ONCE) >= 0);
	assert_int_equal(g->calls, want);
}

/* A keys process and a local channel over the same keys, each with its
 * asynchronous side on one loop: every answer of one must be the
 * other's. */
struct async_pair {
	struct event_base *base;
	struct keysproc *kp;
	struct keyring *kr;
	struct keys_chan *local;
	struct keys_async *ka, *la;
};

static void async_pair_start(struct fx *f, const char *home, struct async_pair *p)
{
	struct keys_async_opts o = { 2000, 1 };
	struct cconf c;
	pos_err e = { 0 };

	memset(p, 0, sizeof *p);
	assert_non_null(p->base = event_base_new());
	write_home(f, &c, home);
	assert_int_equal(keysproc_start(&c, 1, &p->kp, &e), 0);
	assert_int_equal(keyring_load_keys(&c, &p->kr, &e), 0);
	assert_int_equal(keys_chan_local(p->kr, &p->local, &e), 0);
	assert_int_equal(keys_async_new(p->base, keysproc_chan(p->kp, 0), &o, &p->ka, &e), 0);
	assert_int_equal(keys_async_new(p->base, p->local, NULL, &p->la, &e), 0);
}

static void async_pair_stop(struct async_pair *p)
{
	keys_async_free(p->ka);
	keys_async_free(p->la);
	keys_chan_free(p->local);
	keyring_free(p->kr);
	keysproc_stop(p->kp);
	event_base_free(p->base);
}

static void async_opens_answer_on_the_loop(void **st)
{
	struct fx *f = *st;
	struct async_pair p;
	struct keys_async *again = NULL;
	struct keys_async_opts o = { 2000, 1 };
	struct async_got g = { 0 }, lg = { 0 };
	struct async_slot slot[3], lslot[3];
	unsigned char idx[DEIDENT_INDEX_LEN];
	char enc[ENVELOPE_B64_MAX], enc2[ENVELOPE_B64_MAX], dtid[DEIDENT_ID_LEN + 1];
	struct keys_open_req req[3];
	pos_err e = { 0 };

	async_pair_start(f, "async", &p);
	seal(&f->cur, "S1", "T1", "card:4242424242424242", enc);
	seal(&f->old, "S1", "T1", "loyalty:9900000000011", enc2);
	req[0] = (struct keys_open_req){ "S1", "T1", TXN, f->cur.kid, enc };
	req[1] = (struct keys_open_req){ "S1", "T2", TXN, f->cur.kid, enc }; /* wrong lane */
	req[2] = (struct keys_open_req){ "S1", "T1", TXN, f->old.kid, enc2 };

	/* A channel has one asynchronous side. */
	assert_int_equal(keys_async_new(p.base, keysproc_chan(p.kp, 0), &o, &again, &e),
			 POS_EINVAL);
	for (int i = 0; i < 3; i++) {
		slot[i] = (struct async_slot){ &g, i };
		lslot[i] = (struct async_slot){ &lg, i };
		assert_int_equal(keys_async_open(p.ka, &req[i], async_done, &slot[i], &e), 0);
		assert_int_equal(keys_async_open(p.la, &req[i], async_done, &lslot[i], &e), 0);
	}
	/* Never answered from inside keys_async_open. */
	assert_int_equal(g.calls, 0);
	assert_int_equal(lg.calls, 0);
	assert_int_equal(keys_async_waiting(p.ka), 3);
	/* One turn sends the three in one message; a synchronous open on the
	 * same channel then reads their answer first and hands it over. */
	assert_int_equal(event_base_loop(p.base, EVLOOP_ONCE), 0);
	assert_int_equal(keys_open(keysproc_chan(p.kp, 0), "S1", "T1", TXN, f->cur.kid, enc, idx,
				   dtid, &e),
			 0);
	async_run(p.base, &g, 3);
	async_run(p.base, &lg, 3);
	assert_int_equal(keys_async_waiting(p.ka), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(g.rc[i], lg.rc[i]);
		assert_string_equal(g.msg[i], lg.msg[i]);
		if (g.rc[i] == 0) {
			assert_memory_equal(g.idx[i], lg.idx[i], sizeof g.idx[i]);
			assert_string_equal(g.dtid[i], lg.dtid[i]);
		}
	}
	assert_int_equal(g.rc[0], 0);
	assert_memory_equal(g.idx[0], idx, sizeof idx);
	assert_string_equal(g.dtid[0], dtid);
	assert_int_equal(g.rc[1], POS_ECRYPTO);
	assert_int_equal(g.rc[2], 0);
	async_pair_stop(&p);
}

/* Blind indexes queued between opens in one loop turn: each message
 * carries one kind, every answer is the synchronous call's, on the keys
 * process and on a local channel alike. */
static void async_blind_indexes_mix_with_opens(void **st)
{
	struct fx *f = *st;
	struct async_pair p;
	struct async_got g = { 0 }, lg = { 0 };
	struct async_slot slot[4], lslot[4];
	unsigned char want[DEIDENT_INDEX_LEN];
	char enc[ENVELOPE_B64_MAX];
	struct keys_open_req req;
	pos_err e = { 0 };

	async_pair_start(f, "async-blind", &p);
	seal(&f->cur, "S1", "T1", "card:4242424242424242", enc);
	req = (struct keys_open_req){ "S1", "T1", TXN, f->cur.kid, enc };
	assert_ptr_equal(keys_chan_async(keysproc_chan(p.kp, 0)), p.ka);
	for (int i = 0; i < 4; i++) {
		slot[i] = (struct async_slot){ &g, i };
		lslot[i] = (struct async_slot){ &lg, i };
	}
	assert_int_equal(keys_async_open(p.ka, &req, async_done, &slot[0], &e), 0);
	assert_int_equal(keys_async_blind(p.ka, "phone:+1 (555) 010-0234", async_done, &slot[1], &e), 0);
	assert_int_equal(keys_async_blind(p.ka, "phone:12", async_done, &slot[2], &e), 0);
	assert_int_equal(keys_async_open(p.ka, &req, async_done, &slot[3], &e), 0);
	assert_int_equal(keys_async_open(p.la, &req, async_done, &lslot[0], &e), 0);
	assert_int_equal(keys_async_blind(p.la, "phone:+15550100234", async_done, &lslot[1], &e), 0);
	assert_int_equal(keys_async_blind(p.la, "phone:12", async_done, &lslot[2], &e), 0);
	assert_int_equal(keys_async_open(p.la, &req, async_done, &lslot[3], &e), 0);
	assert_int_equal(g.calls, 0);
	async_run(p.base, &g, 4);
	async_run(p.base, &lg, 4);
	assert_int_equal(deident_index_key(keyring_index_key(p.kr), "phone:+15550100234", want, &e),
			 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(g.rc[i], lg.rc[i]);
	assert_int_equal(g.rc[0], 0);
	assert_int_equal(g.rc[3], 0);
	assert_string_equal(g.dtid[0], lg.dtid[0]);
	assert_int_equal(g.rc[1], 0);
	assert_memory_equal(g.idx[1], want, sizeof want);
	assert_memory_equal(lg.idx[1], want, sizeof want);
	assert_int_equal(g.rc[2], POS_EINVAL);
	assert_null(strstr(g.msg[2], "12"));
	async_pair_stop(&p);
}

static void an_async_open_unanswered_is_refused_after_the_timeout(void **st)
{
	struct fx *f = *st;
	struct keysproc *kp = NULL;
	struct keys_async *ka = NULL;
	struct keys_async_opts o = { 100, 1 };
	struct event_base *base = event_base_new();
	struct async_got g = { 0 };
	struct async_slot slot[2] = { { &g, 0 }, { &g, 1 } };
	char enc[ENVELOPE_B64_MAX];
	struct keys_open_req req;
	struct cconf c;
	pos_err e = { 0 };

	assert_non_null(base);
	write_home(f, &c, "timeout");
	assert_int_equal(keysproc_start(&c, 1, &kp, &e), 0);
	seal(&f->cur, "S1", "T1", "card:4242424242424242", enc);
	req = (struct keys_open_req){ "S1", "T1", TXN, f->cur.kid, enc };
	assert_int_equal(keys_async_new(base, keysproc_chan(kp, 0), &o, &ka, &e), 0);
	/* A keys process that hangs. */
	assert_int_equal(kill(keysproc_pid(kp), SIGSTOP), 0);
	assert_int_equal(keys_async_open(ka, &req, async_done, &slot[0], &e), 0);
	async_run(base, &g, 1);
	assert_int_equal(g.rc[0], POS_EAGAIN);
	assert_string_equal(g.msg[0], "the keys process does not answer");
	assert_int_equal(keys_async_waiting(ka), 0);
	/* It comes back: its late answer is dropped, the next open answered. */
	assert_int_equal(kill(keysproc_pid(kp), SIGCONT), 0);
	assert_int_equal(keys_async_open(ka, &req, async_done, &slot[1], &e), 0);
	async_run(base, &g, 2);
	assert_int_equal(g.rc[1], 0);
	assert_true(deident_dtid_valid(g.dtid[1]));
	keys_async_free(ka);
	keysproc_stop(kp);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_keys_process_answers_what_the_keyring_answers),
		cmocka_unit_test(async_opens_answer_on_the_loop),
		cmocka_unit_test(async_blind_indexes_mix_with_opens),
		cmocka_unit_test(an_async_open_unanswered_is_refused_after_the_timeout),
		cmocka_unit_test(a_key_file_others_can_read_stops_the_start),
		cmocka_unit_test(a_dead_keys_process_fails_requests_and_is_noticed),
		cmocka_unit_test(a_stopped_keys_process_exits_cleanly),
		cmocka_unit_test(serve_keeps_tokens_and_no_key),
	};

	return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
