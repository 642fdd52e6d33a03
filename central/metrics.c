#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#define METRICS_STATUS_MIN 100
#define METRICS_STATUS_N 500 /* 100..599 */

/* Upper bounds in microseconds; a resolve's crypto floor is ~35 us. */
static const int64_t metrics_bucket_us[] = { 50,    100,   250,    500,    1000,   2500,
					     5000,  10000, 25000,  50000,  100000, 250000,
					     500000, 1000000 };
#define METRICS_NBUCKETS (sizeof metrics_bucket_us / sizeof metrics_bucket_us[0])

static atomic_ulong metrics_requests[MR_COUNT][METRICS_STATUS_N];
static atomic_ulong metrics_resolve_bucket[METRICS_NBUCKETS + 1]; /* last: +Inf */
static atomic_ullong metrics_resolve_sum_us;
static atomic_ulong metrics_resolve_count;
static atomic_ulong metrics_stored;
static atomic_long metrics_open;
static atomic_ulong metrics_refused[MC_COUNT];
static atomic_ulong metrics_rate_refused[MRC_COUNT];
static atomic_ulong metrics_rate_evicted;
static atomic_ulong metrics_dev_refused;
static atomic_ulong metrics_dev_expired;
#define METRICS_SOURCES_MAX 8
static int (*_Atomic metrics_sources[METRICS_SOURCES_MAX])(char *buf, size_t cap);

static pthread_mutex_t metrics_stats_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t metrics_stats_at_ms; /* guarded by metrics_stats_mu */
static long metrics_households = -1;

static const char *const metrics_route_names[MR_COUNT] = {
	[MR_RESOLVE] = "/v1/resolve",
	[MR_BASKETS] = "/v1/baskets",
	[MR_BATCH] = "/v1/baskets:batch",
	[MR_HISTORY] = "/v1/households/{hhid}/baskets",
	[MR_HEALTH] = "/v1/health",
	[MR_METRICS] = "/metrics",
	[MR_DEVICES] = "/v1/devices",
	[MR_DEVICE_OFFERS] = "/v1/devices/me/offers",
	[MR_OFFERS] = "/v1/offers",
	[MR_OFFER_ACCEPT] = "/v1/offers/{id}/accept",
	[MR_OFFER_CHECK] = "/v1/offers/check",
	[MR_OFFER_REPORT] = "/v1/offers/report",
	[MR_READY] = "/v1/health/ready",
	[MR_KEYS] = "/v1/keys",
	[MR_OTHER] = "other",
};

const char *metrics_route_name(enum metrics_route r)
{
	return (unsigned)r < MR_COUNT ? metrics_route_names[r] : "other";
}

void metrics_request(enum metrics_route r, int status)
{
	if ((unsigned)r >= MR_COUNT)
		r = MR_OTHER;
	if (status < METRICS_STATUS_MIN || status >= METRICS_STATUS_MIN + METRICS_STATUS_N)
		status = 500;
	atomic_fetch_add_explicit(&metrics_requests[r][status - METRICS_STATUS_MIN], 1,
				  memory_order_relaxed);
}

void metrics_resolve_us(int64_t us)
{
	size_t i = 0;

	if (us < 0)
		us = 0;
	while (i < METRICS_NBUCKETS && us > metrics_bucket_us[i])
		i++;
	atomic_fetch_add_explicit(&metrics_resolve_bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&metrics_resolve_sum_us, (unsigned long long)us,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&metrics_resolve_count, 1, memory_order_relaxed);
}

void metrics_baskets_stored(long n)
{
	if (n > 0)
		atomic_fetch_add_explicit(&metrics_stored, (unsigned long)n, memory_order_relaxed);
}

void metrics_connection(int delta)
{
	atomic_fetch_add_explicit(&metrics_open, delta, memory_order_relaxed);
}

static const char *const metrics_refusal_names[MC_COUNT] = {
	[MC_PER_ADDRESS] = "per_address",
	[MC_FULL] = "full",
	[MC_ANONYMOUS] = "anonymous",
	[MC_EVICTED] = "evicted",
	[MC_HANDSHAKE_TIMEOUT] = "handshake_timeout",
};

void metrics_conn_refused(enum metrics_conn_refusal why)
{
	if ((unsigned)why < MC_COUNT)
		atomic_fetch_add_explicit(&metrics_refused[why], 1, memory_order_relaxed);
}

void metrics_ratelimited(enum metrics_rate_class c)
{
	if ((unsigned)c < MRC_COUNT)
		atomic_fetch_add_explicit(&metrics_rate_refused[c], 1, memory_order_relaxed);
}

void metrics_ratelimit_evicted(void)
{
	atomic_fetch_add_explicit(&metrics_rate_evicted, 1, memory_order_relaxed);
}

void metrics_devices_refused(void)
{
	atomic_fetch_add_explicit(&metrics_dev_refused, 1, memory_order_relaxed);
}

void metrics_devices_expired(long n)
{
	if (n > 0)
		atomic_fetch_add_explicit(&metrics_dev_expired, (unsigned long)n,
					  memory_order_relaxed);
}

struct metrics_out {
	char *buf;
	size_t cap, len;
	bool full;
};

__attribute__((format(printf, 2, 3))) static void metrics_put(struct metrics_out *o,
							      const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->full = true;
		return;
	}
	o->len += (size_t)n;
}

static long metrics_households_cached(struct store *s, int64_t now_ms)
{
	struct store_stats st;
	pos_err e;
	long v;

	pthread_mutex_lock(&metrics_stats_mu);
	if (s && (metrics_households < 0 || now_ms - metrics_stats_at_ms >= METRICS_STATS_TTL_MS ||
		  now_ms < metrics_stats_at_ms)) {
		if (store_stats(s, &st, &e) == 0) {
			metrics_households = st.households;
			metrics_stats_at_ms = now_ms;
		}
	}
	v = metrics_households;
	pthread_mutex_unlock(&metrics_stats_mu);
	return v;
}

int metrics_render(struct store *s, int64_t now_ms, char *buf, size_t cap, pos_err *e)
{
	struct metrics_out o = { buf, cap, 0, false };
	unsigned long cum = 0;
	long hh;

	if (!buf || cap == 0)
		return err_set(e, POS_EINVAL, "metrics: no buffer");
	buf[0] = '\0';
	metrics_put(&o, "# HELP pos_requests_total HTTP requests answered, by route and status.\n"
			"# TYPE pos_requests_total counter\n");
	for (int r = 0; r < MR_COUNT; r++)
		for (int i = 0; i < METRICS_STATUS_N; i++) {
			unsigned long v = atomic_load_explicit(&metrics_requests[r][i],
							       memory_order_relaxed);
			if (v)
				metrics_put(&o,
					    "pos_requests_total{route=\"%s\",status=\"%d\"} %lu\n",
					    metrics_route_names[r], i + METRICS_STATUS_MIN, v);
		}

	metrics_put(&o, "# HELP pos_resolve_seconds Time to resolve an EncTID to a household.\n"
			"# TYPE pos_resolve_seconds histogram\n");
	for (size_t i = 0; i <= METRICS_NBUCKETS; i++) {
		cum += atomic_load_explicit(&metrics_resolve_bucket[i], memory_order_relaxed);
		if (i < METRICS_NBUCKETS)
			metrics_put(&o, "pos_resolve_seconds_bucket{le=\"%g\"} %lu\n",
				    (double)metrics_bucket_us[i] / 1e6, cum);
		else
			metrics_put(&o, "pos_resolve_seconds_bucket{le=\"+Inf\"} %lu\n", cum);
	}
	metrics_put(&o, "pos_resolve_seconds_sum %.6f\npos_resolve_seconds_count %lu\n",
		    (double)atomic_load_explicit(&metrics_resolve_sum_us, memory_order_relaxed) /
			    1e6,
		    atomic_load_explicit(&metrics_resolve_count, memory_order_relaxed));

	metrics_put(&o, "# HELP pos_baskets_stored_total Baskets newly committed.\n"
			"# TYPE pos_baskets_stored_total counter\n"
			"pos_baskets_stored_total %lu\n",
		    atomic_load_explicit(&metrics_stored, memory_order_relaxed));
	hh = metrics_households_cached(s, now_ms);
	if (hh >= 0)
		metrics_put(&o, "# HELP pos_households Households in the store.\n"
				"# TYPE pos_households gauge\n"
				"pos_households %ld\n",
			    hh);
	metrics_put(&o, "# HELP pos_open_connections Client connections open now.\n"
			"# TYPE pos_open_connections gauge\n"
			"pos_open_connections %ld\n",
		    atomic_load_explicit(&metrics_open, memory_order_relaxed));
	metrics_put(&o, "# HELP pos_connections_refused_total Connections closed by a connection "
			"limit, by reason.\n"
			"# TYPE pos_connections_refused_total counter\n");
	for (int i = 0; i < MC_COUNT; i++)
		metrics_put(&o, "pos_connections_refused_total{reason=\"%s\"} %lu\n",
			    metrics_refusal_names[i],
			    atomic_load_explicit(&metrics_refused[i], memory_order_relaxed));
	metrics_put(&o, "# HELP pos_ratelimited_total Requests refused by a per-address rate "
			"limit, by route class.\n"
			"# TYPE pos_ratelimited_total counter\n"
			"pos_ratelimited_total{class=\"register\"} %lu\n"
			"pos_ratelimited_total{class=\"device\"} %lu\n",
		    atomic_load_explicit(&metrics_rate_refused[MRC_REGISTER], memory_order_relaxed),
		    atomic_load_explicit(&metrics_rate_refused[MRC_DEVICE], memory_order_relaxed));
	metrics_put(&o, "# HELP pos_ratelimit_evictions_total Live rate-limit buckets dropped "
			"for room ([ratelimit] entries too small).\n"
			"# TYPE pos_ratelimit_evictions_total counter\n"
			"pos_ratelimit_evictions_total %lu\n",
		    atomic_load_explicit(&metrics_rate_evicted, memory_order_relaxed));
	metrics_put(&o, "# HELP pos_devices_refused_total Device registrations refused at "
			"[devices] max_unused.\n"
			"# TYPE pos_devices_refused_total counter\n"
			"pos_devices_refused_total %lu\n",
		    atomic_load_explicit(&metrics_dev_refused, memory_order_relaxed));
	metrics_put(&o, "# HELP pos_devices_expired_total Device registrations removed unused "
			"after [devices] unused_ttl_s.\n"
			"# TYPE pos_devices_expired_total counter\n"
			"pos_devices_expired_total %lu\n",
		    atomic_load_explicit(&metrics_dev_expired, memory_order_relaxed));
	for (int i = 0; i < METRICS_SOURCES_MAX && !o.full; i++) {
		int (*fn)(char *, size_t) = atomic_load(&metrics_sources[i]);
		int n;

		if (!fn)
			continue;
		n = fn(o.buf + o.len, o.cap - o.len);
		if (n < 0 || (size_t)n >= o.cap - o.len)
			o.full = true;
		else
			o.len += (size_t)n;
	}
	if (o.full)
		return err_set(e, POS_ETOOBIG, "metrics: text over %zu bytes", cap);
	return (int)o.len;
}

void metrics_add_source(int (*fn)(char *buf, size_t cap))
{
	for (int i = 0; i < METRICS_SOURCES_MAX; i++) {
		int (*none)(char *, size_t) = NULL;

		if (atomic_load(&metrics_sources[i]) == fn ||
		    atomic_compare_exchange_strong(&metrics_sources[i], &none, fn))
			return;
	}
}
