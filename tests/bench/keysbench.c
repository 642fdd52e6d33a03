/*
 * Where the keys process's round trip goes: the same EncTID opened again
 * and again, first in this process (keyring_open: what a resolve cost
 * before the keys lived apart), then through serve's keys process over one
 * channel (keys_open: a SEQPACKET request and reply, the open in the keys
 * process's thread). Printed per open: the caller's CPU, the keys
 * process's CPU, their sum against the in-process open (the round trip's
 * cost in CPU), and the wall time of one synchronous round trip.
 *
 * usage: keysbench [SECONDS]   (default: $BENCH_SECONDS/2, at least 1;
 *                               each half of the run gets half of it)
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "benchutil.h"
#include "cconf.h"
#include "envelope.h"
#include "keyring.h"
#include "keys.h"
#include "keysproc.h"

#define KB_TXN "01890a5d-ac96-774b-bcce-b302099a8057"
#define KB_TID "loyalty:9900000000011"
#define KB_BATCH 200
#define KB_GROUP 8 /* opens per round trip in the batched run */

static int kb_home(const char *dir, struct cconf *c, struct hpke_keypair *kp, pos_err *e)
{
	memset(c, 0, sizeof *c);
	snprintf(c->hpke_key, sizeof c->hpke_key, "%s/hpke.key", dir);
	snprintf(c->hpke_retired, sizeof c->hpke_retired, "%s/keys", dir);
	snprintf(c->k_index, sizeof c->k_index, "%s/k_index.key", dir);
	snprintf(c->k_deident, sizeof c->k_deident, "%s/k_deident.key", dir);
	if (keys_generate(kp, e) < 0 || keys_save_private(c->hpke_key, kp, e) < 0 ||
	    keys_generate_hmac(c->k_index, e) < 0 || keys_generate_hmac(c->k_deident, e) < 0)
		return -1;
	return 0;
}

/* Opens through kc, group at a time, until secs of this thread's CPU
 * passed. */
static int kb_loop(struct keys_chan *kc, const char *kid, const char *enc, size_t group,
		   double secs, unsigned long *ops, uint64_t *cpu_ns, uint64_t *wall_ns)
{
	struct keys_open_req req[KB_GROUP];
	struct keys_open_res res[KB_GROUP];
	uint64_t c0 = bench_thread_cpu_ns(), w0 = bench_now_ns(), used = 0;
	pos_err e;

	for (size_t i = 0; i < group; i++)
		req[i] = (struct keys_open_req){ "S1", "T1", KB_TXN, kid, enc };
	*ops = 0;
	while (used < (uint64_t)(secs * 1e9)) {
		for (int i = 0; i < KB_BATCH; i += (int)group) {
			if (keys_open_batch(kc, group, req, res, &e) < 0 || res[0].rc < 0) {
				fprintf(stderr, "keysbench: %s\n", res[0].rc < 0 ? res[0].err.msg : e.msg);
				return -1;
			}
			*ops += group;
		}
		used = bench_thread_cpu_ns() - c0;
		/* A caller that mostly sleeps in recv gathers CPU slowly: the
		 * wall clock bounds the run too. */
		if (bench_now_ns() - w0 > (uint64_t)(secs * 4e9))
			break;
	}
	*cpu_ns = bench_thread_cpu_ns() - c0;
	*wall_ns = bench_now_ns() - w0;
	return 0;
}

int main(int argc, char **argv)
{
	double secs = bench_env_num("BENCH_SECONDS", 10) / 2, local_us, caller_us, keys_us, wall_us;
	double bcaller_us, bkeys_us;
	char dir[] = "/tmp/keysbench_XXXXXX", info[ENVELOPE_INFO_MAX], enc[ENVELOPE_B64_MAX];
	char cmd[64];
	struct hpke_keypair kp;
	struct keyring *kr = NULL;
	struct keys_chan *local = NULL;
	struct keysproc *proc = NULL;
	struct cconf c;
	unsigned long ops;
	uint64_t cpu, wall;
	double k0, k1;
	pos_err e = { 0 };
	int rc = 1;

	if (argc > 1)
		secs = atof(argv[1]);
	if (secs < 1)
		secs = 1;
	if (!mkdtemp(dir) || kb_home(dir, &c, &kp, &e) < 0 ||
	    envelope_info(info, "S1", "T1", KB_TXN, &e) < 0 ||
	    envelope_seal_tid(kp.pk, kp.kid, info, KB_TID, enc, &e) < 0 ||
	    keyring_load_keys(&c, &kr, &e) < 0 || keys_chan_local(kr, &local, &e) < 0 ||
	    keysproc_start(&c, 1, &proc, &e) < 0) {
		fprintf(stderr, "keysbench: setup: %s\n", e.msg);
		goto out;
	}
	if (kb_loop(local, kp.kid, enc, 1, secs / 3, &ops, &cpu, &wall) < 0)
		goto out;
	local_us = (double)cpu / 1e3 / (double)ops;

	k0 = bench_proc_cpu_precise_s(keysproc_pid(proc));
	if (kb_loop(keysproc_chan(proc, 0), kp.kid, enc, KB_GROUP, secs / 3, &ops, &cpu, &wall) < 0)
		goto out;
	k1 = bench_proc_cpu_precise_s(keysproc_pid(proc));
	bcaller_us = (double)cpu / 1e3 / (double)ops;
	bkeys_us = (k1 - k0) * 1e6 / (double)ops;

	k0 = bench_proc_cpu_precise_s(keysproc_pid(proc));
	if (kb_loop(keysproc_chan(proc, 0), kp.kid, enc, 1, secs / 3, &ops, &cpu, &wall) < 0)
		goto out;
	k1 = bench_proc_cpu_precise_s(keysproc_pid(proc));
	caller_us = (double)cpu / 1e3 / (double)ops;
	keys_us = (k1 - k0) * 1e6 / (double)ops;
	wall_us = (double)wall / 1e3 / (double)ops;
	printf("open in-process (keyring_open): %.2f us CPU\n", local_us);
	printf("open through the keys process (keys_open, %lu opens): caller %.2f us CPU + keys "
	       "process %.2f us CPU = %.2f us (+%.2f us, %.2fx); %.2f us wall per round trip\n",
	       ops, caller_us, keys_us, caller_us + keys_us, caller_us + keys_us - local_us,
	       (caller_us + keys_us) / local_us, wall_us);
	printf("  %d opens per round trip: caller %.2f + keys process %.2f = %.2f us CPU per open "
	       "(+%.2f us)\n",
	       KB_GROUP, bcaller_us, bkeys_us, bcaller_us + bkeys_us,
	       bcaller_us + bkeys_us - local_us);
	printf("RESULT {\"keys_roundtrip\":{\"local_us\":%.3f,\"caller_us\":%.3f,\"keys_us\":%.3f,"
	       "\"overhead_us\":%.3f,\"wall_us\":%.3f,\"ops\":%lu,\"group\":%d,"
	       "\"group_overhead_us\":%.3f}}\n",
	       local_us, caller_us, keys_us, caller_us + keys_us - local_us, wall_us, ops, KB_GROUP,
	       bcaller_us + bkeys_us - local_us);
	rc = 0;
out:
	keysproc_stop(proc);
	keys_chan_free(local);
	keyring_free(kr);
	keys_wipe(&kp);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
