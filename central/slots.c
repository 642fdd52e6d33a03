#include "slots.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Buckets of the per-address table: enough that chains stay short at the
 * default budget, few enough that a huge max_connections costs no memory
 * up front (entries exist only for addresses holding a slot). */
#define SLOTS_BUCKETS_MIN 256
#define SLOTS_BUCKETS_MAX 65536

struct slots_entry {
	struct slots_addr k;
	long n;
	struct slots_entry *next;
};

struct slots {
	struct slots_opts o;
	atomic_long open;
	atomic_long anonymous;
	uint64_t seed; /* keyed hash: a client cannot pick colliding addresses */
	pthread_mutex_t mu;
	size_t nbuckets;                /* a power of two */
	struct slots_entry **buckets;   /* guarded by mu */
};

int slots_new(const struct slots_opts *o, struct slots **out, pos_err *e)
{
	struct slots *s;
	size_t nb = SLOTS_BUCKETS_MIN;

	*out = NULL;
	if (o->max < 1 || o->reserved < 0 || o->reserved >= o->max || o->per_address < 1)
		return err_set(e, POS_EINVAL, "connection budget: max %ld, reserved %ld, per address "
					      "%ld are out of range",
			       o->max, o->reserved, o->per_address);
	while (nb < SLOTS_BUCKETS_MAX && (long)nb < o->max)
		nb *= 2;
	if (!(s = calloc(1, sizeof *s)) || !(s->buckets = calloc(nb, sizeof *s->buckets))) {
		free(s);
		return err_set(e, POS_ENOMEM, "connection budget: out of memory");
	}
	if (getrandom(&s->seed, sizeof s->seed, 0) != (ssize_t)sizeof s->seed)
		s->seed = (uint64_t)(uintptr_t)s ^ 0x9e3779b97f4a7c15ULL;
	s->o = *o;
	s->nbuckets = nb;
	atomic_init(&s->open, 0);
	atomic_init(&s->anonymous, 0);
	pthread_mutex_init(&s->mu, NULL);
	*out = s;
	return 0;
}

void slots_free(struct slots *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nbuckets; i++)
		while (s->buckets[i]) {
			struct slots_entry *x = s->buckets[i];

			s->buckets[i] = x->next;
			free(x);
		}
	pthread_mutex_destroy(&s->mu);
	free(s->buckets);
	free(s);
}

void slots_addr_of(struct slots_addr *k, const struct sockaddr *sa, socklen_t len)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(k, 0, sizeof *k);
	if (sa && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		memcpy(k->b, mapped, sizeof mapped);
		memcpy(k->b + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa && sa->sa_family == AF_INET6 &&
		   len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const unsigned char *a =
			((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;

		/* A v4-mapped address is that IPv4 address; any other IPv6
		 * client holds a /64 of its own, so the /64 is the client. */
		memcpy(k->b, a, memcmp(a, mapped, sizeof mapped) == 0 ? 16 : 8);
	}
}

static size_t slots_bucket(const struct slots *s, const struct slots_addr *k)
{
	uint64_t h = s->seed, w[2];

	memcpy(w, k->b, sizeof w);
	for (int i = 0; i < 2; i++) {
		h ^= w[i];
		h *= 0xff51afd7ed558ccdULL;
		h ^= h >> 33;
		h *= 0xc4ceb9fe1a85ec53ULL;
		h ^= h >> 29;
	}
	return (size_t)h & (s->nbuckets - 1);
}

/* Where the entry for k is, or would be linked; mu held. */
static struct slots_entry **slots_find(struct slots *s, const struct slots_addr *k)
{
	struct slots_entry **p = &s->buckets[slots_bucket(s, k)];

	while (*p && memcmp((*p)->k.b, k->b, sizeof k->b) != 0)
		p = &(*p)->next;
	return p;
}

/* Adds delta to k's count; false (nothing changed) when it would pass the
 * cap or no memory is left for a new address. */
static bool slots_addr_add(struct slots *s, const struct slots_addr *k, long delta)
{
	struct slots_entry **p, *x;
	bool ok = true;

	pthread_mutex_lock(&s->mu);
	p = slots_find(s, k);
	x = *p;
	if (delta > 0) {
		if (x && x->n + delta > s->o.per_address) {
			ok = false;
		} else if (!x) {
			if (!(x = calloc(1, sizeof *x))) {
				ok = false;
			} else {
				x->k = *k;
				*p = x;
			}
		}
		if (ok)
			x->n += delta;
	} else if (x) {
		x->n += delta;
		if (x->n <= 0) {
			*p = x->next;
			free(x);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return ok;
}

enum slots_verdict slots_take(struct slots *s, const struct slots_addr *k)
{
	if (atomic_fetch_add_explicit(&s->open, 1, memory_order_relaxed) >= s->o.max) {
		atomic_fetch_sub_explicit(&s->open, 1, memory_order_relaxed);
		return SLOTS_FULL;
	}
	if (!slots_addr_add(s, k, 1)) {
		atomic_fetch_sub_explicit(&s->open, 1, memory_order_relaxed);
		return SLOTS_PER_ADDRESS;
	}
	return SLOTS_OK;
}

bool slots_established(struct slots *s, const struct slots_addr *k, bool terminal)
{
	if (terminal) {
		(void)slots_addr_add(s, k, -1);
		return true;
	}
	if (atomic_fetch_add_explicit(&s->anonymous, 1, memory_order_relaxed) >=
	    s->o.max - s->o.reserved) {
		atomic_fetch_sub_explicit(&s->anonymous, 1, memory_order_relaxed);
		return false;
	}
	return true;
}

void slots_release(struct slots *s, const struct slots_addr *k, enum slots_kind kind)
{
	if (kind == SLOTS_ANONYMOUS)
		atomic_fetch_sub_explicit(&s->anonymous, 1, memory_order_relaxed);
	if (kind != SLOTS_TERMINAL)
		(void)slots_addr_add(s, k, -1);
	atomic_fetch_sub_explicit(&s->open, 1, memory_order_relaxed);
}

long slots_open(const struct slots *s)
{
	return atomic_load_explicit(&s->open, memory_order_relaxed);
}

long slots_anonymous(const struct slots *s)
{
	return atomic_load_explicit(&s->anonymous, memory_order_relaxed);
}

long slots_of_address(struct slots *s, const struct slots_addr *k)
{
	struct slots_entry *x;
	long n;

	pthread_mutex_lock(&s->mu);
	x = *slots_find(s, k);
	n = x ? x->n : 0;
	pthread_mutex_unlock(&s->mu);
	return n;
}
