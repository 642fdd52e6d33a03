#ifndef POS_METRICS_H
#define POS_METRICS_H
/*
 * Process-wide counters for GET /metrics (Prometheus text format 0.0.4).
 * Every counter is a relaxed atomic: workers bump them without locks, and a
 * scrape reads a value that is at worst a few increments old.
 */
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

/* The route label: a fixed set, never the raw path (which would carry
 * household ids and let a client grow the series without bound). */
enum metrics_route {
	MR_RESOLVE = 0,
	MR_BASKETS,
	MR_BATCH,
	MR_HISTORY,
	MR_HEALTH,
	MR_METRICS,
	MR_DEVICES,
	MR_DEVICE_OFFERS,
	MR_OFFERS,
	MR_OFFER_ACCEPT,
	MR_OFFER_CHECK,
	MR_OFFER_REPORT,
	MR_READY,
	MR_KEYS,
	MR_OTHER,
	MR_COUNT
};

const char *metrics_route_name(enum metrics_route r);

void metrics_request(enum metrics_route r, int status);
void metrics_resolve_us(int64_t us);
void metrics_baskets_stored(long n);
void metrics_connection(int delta);

/* Connections a connection limit closed, by why (the label). */
enum metrics_conn_refusal {
	MC_PER_ADDRESS = 0, /* max_connections_per_address */
	MC_FULL,            /* max_connections, and no handshake to evict */
	MC_ANONYMOUS,       /* no client certificate, past the terminals' reserve */
	MC_EVICTED,         /* a handshake closed to make room for a new connection */
	MC_HANDSHAKE_TIMEOUT,
	MC_COUNT
};
void metrics_conn_refused(enum metrics_conn_refusal why);
/* Refusals of the public routes' limits (ratelimit.h, [devices]). */
enum metrics_rate_class { MRC_REGISTER = 0, MRC_DEVICE, MRC_COUNT };
void metrics_ratelimited(enum metrics_rate_class c);
void metrics_ratelimit_evicted(void);
void metrics_devices_refused(void); /* at [devices] max_unused */
void metrics_devices_expired(long n);

/* Writes the whole exposition into buf (NUL-terminated); households come
 * from store_stats through s, cached for METRICS_STATS_TTL_MS so scrapes
 * never add load. Returns the length, or a negative POS_E* code. */
/* A module above adds its own series (public.c): fn writes them into buf
 * (NUL-terminated) and returns their length, or cap or more when they do
 * not fit. Added once; at most 8 sources. */
void metrics_add_source(int (*fn)(char *buf, size_t cap));
#define METRICS_STATS_TTL_MS 5000
#define METRICS_TEXT_MAX 65536
int metrics_render(struct store *s, int64_t now_ms, char *buf, size_t cap, pos_err *e);

#endif
