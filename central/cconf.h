#ifndef POS_CCONF_H
#define POS_CCONF_H
/*
 * central.conf, written by `pos-central setup` (relative paths are relative
 * to the file's folder):
 *
 *   [central]
 *   listen = 127.0.0.1:8443
 *   database = central.db
 *   auto_enrol = yes
 *   workers = 0              ; 0 = one per core
 *   log_level = info
 *   user = pos-central       ; serve's keys process runs as this user when
 *                            ; started as root (empty: stays root)
 *   [tls]
 *   ca = ca.crt              ; verifies terminal certificates
 *   cert = server.crt
 *   key = server.key
 *   ticket_rotate_s = 3600   ; seconds a session ticket key seals tickets; it
 *                            ; opens them one period more
 *   session_cache = 10000    ; resumable TLS sessions kept, about 4 KB each:
 *                            ; one per terminal
 *   [keys]
 *   hpke = hpke.key          ; current X25519 private key (PEM)
 *   hpke_retired = keys      ; folder of earlier *.key files, opened by kid
 *   k_index = k_index.key
 *   k_deident = k_deident.key
 *   [tokens]
 *   analyst = analyst.token
 *   admin = admin.token
 *   [limits]
 *   max_body = 1048576       ; bytes
 *   max_headers = 16384      ; bytes
 *   idle_timeout = 30        ; seconds a connection may sit idle or trickle
 *   max_connections = 4096
 *   handshake_timeout_ms = 3000        ; a TLS handshake must end within this (and idle_timeout)
 *   max_connections_per_address = 64   ; not yet authenticated, per IPv4 address or IPv6 /64
 *   terminal_reserve_pct = 25          ; % of max_connections only terminals may use
 *   min_free_disk_mb = 64              ; GET /v1/health/ready fails with less free beside the database
 *   [ratelimit]              ; per client address, on the routes anyone may call
 *   entries = 16384          ; buckets in the table (fixed memory, about 48 bytes each)
 *   register_per_minute = 30 ; POST /v1/devices; 0 = not limited
 *   register_burst = 10
 *   device_per_minute = 600  ; the device-token routes
 *   device_burst = 60
 *   [devices]
 *   max_unused = 100000      ; registrations never used; beyond: 503
 *   unused_ttl_s = 86400     ; a registration never used is removed after this
 *   public_rate_per_min = 600          ; public listener, per address
 *   public_burst = 120
 *   message_max_chars = 1000
 *   [receipt]
 *   ttl_days = 90            ; a receipt link opens its receipt this long
 *   poll_s = 25              ; a message long poll is held this long
 *   [console]
 *   session_hours = 12
 *   [store]
 *   backend = sqlite         ; sqlite ([central] database) | postgresql (dsn)
 *   dsn =                    ; libpq connection string (never logged with its password)
 *   dsn_read =               ; optional: analysts' reads from a replica
 *   partitions_ahead = 3     ; months of basket partitions made ahead (PostgreSQL)
 *   retention_batch = 1000   ; baskets deleted a transaction by retention (SQLite)
 *
 * [central] public_listen (empty: off) and www (empty: found beside the
 * binary), [tls] public_cert and public_key: docs/conversations.md.
 *
 * Unknown sections or keys and bad values fail with file:line.
 */
#include <stdbool.h>
#include <stddef.h>
#include "err.h"
#include "store.h"

#define CCONF_PATH_MAX 1024
#define CCONF_MAX_WORKERS 256 /* [central] workers */

struct cconf {
	char path[CCONF_PATH_MAX]; /* the file itself */
	char dir[CCONF_PATH_MAX];  /* its folder: central's home */
	char listen[128];
	char database[CCONF_PATH_MAX];
	bool auto_enrol;
	long workers;
	bool pin_threads;     /* worker i and the keys process's thread i on one core */
	long keys_timeout_ms; /* an open the keys process has not answered by then: 503 */
	char log_level[16];
	char user[64];
	char tls_ca[CCONF_PATH_MAX];
	char tls_cert[CCONF_PATH_MAX];
	char tls_key[CCONF_PATH_MAX];
	long ticket_rotate_s;
	long session_cache;
	char hpke_key[CCONF_PATH_MAX];
	char hpke_retired[CCONF_PATH_MAX];
	char k_index[CCONF_PATH_MAX];
	char k_deident[CCONF_PATH_MAX];
	char analyst_token[CCONF_PATH_MAX];
	char admin_token[CCONF_PATH_MAX];
	long max_body;
	long max_headers;
	long idle_timeout;
	long max_connections;
	long handshake_timeout_ms;
	long max_connections_per_address;
	long terminal_reserve_pct;
	long min_free_disk_mb;
	long rl_entries;
	long rl_register_per_minute;
	long rl_register_burst;
	long rl_device_per_minute;
	long rl_device_burst;
	long devices_max_unused;
	long devices_unused_ttl_s;
	/* The public listener (design sections 8, 13): docs/conversations.md. */
	char public_listen[128];
	char www[CCONF_PATH_MAX];
	char tls_public_cert[CCONF_PATH_MAX];
	char tls_public_key[CCONF_PATH_MAX];
	long public_rate_per_min;
	long public_burst;
	long message_max_chars;
	long receipt_ttl_days;
	long receipt_poll_s;
	long console_session_hours;
	/* The analysts' workbench (design section 15): docs/analysts.md. */
	long privacy_k_min;
	long analyst_session_hours;
	long analyst_sessions_max;
	long analyst_fold_ms;
	long analyst_fold_batch;
	/* Vendors (design section 14): docs/vendors.md. */
	char k_vendor[CCONF_PATH_MAX];
	long vendor_max_skew_s;
	long vendor_call_timeout_s;
	long vendor_retry_max_s;
	long vendor_messages_max;
	long vendor_products_max;
	long vendor_device_cookie_days;
	long vendor_relations_every_s;
	long related_min_baskets;
	long related_min_lift_pct;
	long related_learned_per_item;
	/* Visitor links and SMS (design section 13): docs/conversations.md. */
	char visitor_key[CCONF_PATH_MAX];
	char sms_number[32];
	char sms_secret[256];
	char sms_inbound_url[512];
	char sms_gateway_url[512];
	char sms_account[128];
	char crm_url[512];
	char crm_secret[256];
	long outbox_retry_max_s;
	long outbox_timeout_s;
	/* The store (design section 11): docs/scaling.md. */
	char store_backend[16];
	enum store_backend backend; /* from store_backend */
	char store_dsn[CCONF_PATH_MAX];
	char store_dsn_read[CCONF_PATH_MAX];
	long store_partitions_ahead;
	long store_retention_batch;
};

int cconf_load(const char *path, struct cconf *out, pos_err *e);

/* Which connection a caller wants: the one that writes (serve's writer,
 * the commands), a worker's (reads the primary, can never write: every
 * write goes through the writer), or analysts' reads, which go to [store]
 * dsn_read when set (a replica, opened read-only). */
enum cconf_store_use { CCONF_STORE_WRITE, CCONF_STORE_WORKER, CCONF_STORE_READ };
/* Where the store of c is: w's strings point into c. */
void cconf_store_where(const struct cconf *c, enum cconf_store_use use, struct store_where *w);
/* Opens the store of c (creating and migrating it, and making the months
 * of partitions ahead, unless it is a read-only replica). The one way
 * every command and serve open the store. *out: store_close. */
int cconf_store_open(const struct cconf *c, enum cconf_store_use use, struct store **out,
		     pos_err *e);
/* dsn for a log line or a message: a password (password=..., or the user
 * part of a URI) shown as ***. Cut to cap - 1 bytes. */
void cconf_dsn_safe(const char *dsn, char *out, size_t cap);
/* Writes a central.conf with the defaults above for a new home (0600).
 * Refuses to overwrite. */
int cconf_write_default(const char *path, const char *listen, pos_err *e);

#endif
