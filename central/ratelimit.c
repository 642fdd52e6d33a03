#include "ratelimit.h"

#include <netinet/in.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RATELIMIT_US_PER_MIN 60000000.0

struct rl_entry {
	unsigned char key[RATELIMIT_KEY_LEN];
	int64_t t_us;  /* when tokens was last brought up to date */
	double tokens; /* at t_us */
	unsigned char cls;
	bool live;
};

struct rl_set {
	pthread_mutex_t mu;
	struct rl_entry e[RATELIMIT_WAYS];
};

struct ratelimit {
	struct rl_set *sets;
	size_t nsets; /* a power of two */
	uint64_t seed[2];
	struct ratelimit_rule rules[RATELIMIT_CLASSES_MAX];
	size_t nrules;
};

/* splitmix64's finalizer: every input bit moves every output bit. */
static uint64_t rl_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* Keyed with random bytes drawn at start, so a client cannot choose
 * addresses that land in one set and evict someone else's bucket. */
static size_t rl_set_of(const struct ratelimit *rl, const unsigned char key[RATELIMIT_KEY_LEN],
			unsigned cls)
{
	uint64_t a, b;

	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	a = rl_mix(a ^ rl->seed[0]);
	b = rl_mix(b ^ rl->seed[1] ^ a ^ ((uint64_t)cls << 56));
	return (size_t)(b & (rl->nsets - 1));
}

int ratelimit_new(size_t entries, const struct ratelimit_rule *rules, size_t nrules,
		  struct ratelimit **out, pos_err *e)
{
	struct ratelimit *rl;
	size_t want, n = 1;

	*out = NULL;
	if (!rules || nrules == 0 || nrules > RATELIMIT_CLASSES_MAX)
		return err_set(e, POS_EINVAL, "ratelimit: 1 to %d classes", RATELIMIT_CLASSES_MAX);
	for (size_t i = 0; i < nrules; i++)
		if (rules[i].per_minute < 0 || (rules[i].per_minute > 0 && rules[i].burst < 1))
			return err_set(e, POS_EINVAL,
				       "ratelimit: class %zu needs a rate >= 0 and a burst >= 1", i);
	if (entries > ((size_t)1 << 26))
		return err_set(e, POS_ETOOBIG, "ratelimit: %zu entries is too many", entries);
	want = (entries + RATELIMIT_WAYS - 1) / RATELIMIT_WAYS;
	while (n < want)
		n <<= 1;
	rl = calloc(1, sizeof *rl);
	if (!rl)
		return err_set(e, POS_ENOMEM, "ratelimit: out of memory");
	rl->sets = calloc(n, sizeof *rl->sets);
	if (!rl->sets) {
		free(rl);
		return err_set(e, POS_ENOMEM, "ratelimit: out of memory for %zu entries",
			       n * RATELIMIT_WAYS);
	}
	rl->nsets = n;
	for (size_t i = 0; i < n; i++)
		pthread_mutex_init(&rl->sets[i].mu, NULL);
	if (RAND_bytes((unsigned char *)rl->seed, sizeof rl->seed) != 1) {
		ratelimit_free(rl);
		return err_set(e, POS_ECRYPTO, "ratelimit: no random bytes for the hash key");
	}
	memcpy(rl->rules, rules, nrules * sizeof *rules);
	rl->nrules = nrules;
	*out = rl;
	return 0;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	for (size_t i = 0; rl->sets && i < rl->nsets; i++)
		pthread_mutex_destroy(&rl->sets[i].mu);
	free(rl->sets);
	free(rl);
}

int ratelimit_key(const struct sockaddr *sa, socklen_t len, unsigned char key[RATELIMIT_KEY_LEN])
{
	static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(key, 0, RATELIMIT_KEY_LEN);
	if (!sa)
		return POS_EINVAL;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		memcpy(key, v4mapped, sizeof v4mapped);
		memcpy(key + 12, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		const unsigned char *a = in6->sin6_addr.s6_addr;

		if (memcmp(a, v4mapped, sizeof v4mapped) == 0)
			memcpy(key, a, 16);
		else
			memcpy(key, a, 8);
		return 0;
	}
	return POS_EINVAL;
}

/* Tokens of entry x brought up to now, never above the burst. */
static double rl_refill(const struct ratelimit_rule *r, const struct rl_entry *x, int64_t now_us)
{
	double t = x->tokens;

	if (now_us > x->t_us)
		t += (double)(now_us - x->t_us) * (double)r->per_minute / RATELIMIT_US_PER_MIN;
	return t > (double)r->burst ? (double)r->burst : t;
}

long ratelimit_take(struct ratelimit *rl, unsigned cls, const unsigned char key[RATELIMIT_KEY_LEN],
		    int64_t now_us, bool *evicted)
{
	const struct ratelimit_rule *r;
	struct rl_set *set;
	struct rl_entry *x = NULL, *spare = NULL, *oldest = NULL;
	long wait = 0;
	double t;

	if (evicted)
		*evicted = false;
	if (!rl || cls >= rl->nrules || rl->rules[cls].per_minute == 0)
		return 0;
	r = &rl->rules[cls];
	set = &rl->sets[rl_set_of(rl, key, cls)];
	pthread_mutex_lock(&set->mu);
	for (int i = 0; i < RATELIMIT_WAYS; i++) {
		struct rl_entry *y = &set->e[i];

		if (!y->live) {
			if (!spare)
				spare = y;
			continue;
		}
		if (y->cls == cls && memcmp(y->key, key, RATELIMIT_KEY_LEN) == 0) {
			x = y;
			break;
		}
		/* A full bucket is as good as none: reuse it first. */
		if (!spare && y->cls < rl->nrules &&
		    rl_refill(&rl->rules[y->cls], y, now_us) >= (double)rl->rules[y->cls].burst)
			spare = y;
		if (!oldest || y->t_us < oldest->t_us)
			oldest = y;
	}
	if (!x) {
		x = spare ? spare : oldest;
		if (!spare && evicted)
			*evicted = true;
		memcpy(x->key, key, RATELIMIT_KEY_LEN);
		x->cls = (unsigned char)cls;
		x->live = true;
		x->tokens = (double)r->burst;
		x->t_us = now_us;
	}
	t = rl_refill(r, x, now_us);
	if (now_us > x->t_us)
		x->t_us = now_us;
	if (t >= 1.0) {
		x->tokens = t - 1.0;
	} else {
		double us = (1.0 - t) * RATELIMIT_US_PER_MIN / (double)r->per_minute;

		x->tokens = t;
		wait = (long)(us / 1e6);
		if ((double)wait * 1e6 < us)
			wait++;
		if (wait < 1)
			wait = 1;
	}
	pthread_mutex_unlock(&set->mu);
	return wait;
}

size_t ratelimit_bytes(const struct ratelimit *rl)
{
	return rl ? sizeof *rl + rl->nsets * sizeof *rl->sets : 0;
}

size_t ratelimit_capacity(const struct ratelimit *rl)
{
	return rl ? rl->nsets * RATELIMIT_WAYS : 0;
}

size_t ratelimit_live(struct ratelimit *rl)
{
	size_t n = 0;

	for (size_t i = 0; rl && i < rl->nsets; i++) {
		pthread_mutex_lock(&rl->sets[i].mu);
		for (int j = 0; j < RATELIMIT_WAYS; j++)
			n += rl->sets[i].e[j].live;
		pthread_mutex_unlock(&rl->sets[i].mu);
	}
	return n;
}
