#include "cconf.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "keys.h"
#include "log.h"
#include "store.h"

/*
 * central.conf: one table of every key with its type, default and bounds, so
 * the defaults written by cconf_write_default and the ones applied by
 * cconf_load cannot drift apart.
 */

enum cconf_type { CC_STR, CC_PATH, CC_BOOL, CC_INT };

struct cconf_key {
	const char *sec;
	const char *key;
	enum cconf_type type;
	const char *dflt; /* text default (also what the written file holds) */
	long min, max;    /* CC_INT bounds */
	size_t off;       /* field in struct cconf */
	size_t cap;       /* field size for strings and paths */
	const char *note; /* comment written after the value */
};

#define CC_FIELD(f) offsetof(struct cconf, f), sizeof(((struct cconf *)0)->f)
#define CC_LONG(f) offsetof(struct cconf, f), 0

static const struct cconf_key cconf_keys[] = {
	{ "central", "listen", CC_STR, "127.0.0.1:8443", 0, 0, CC_FIELD(listen), NULL },
	{ "central", "database", CC_PATH, "central.db", 0, 0, CC_FIELD(database), NULL },
	{ "central", "auto_enrol", CC_BOOL, "yes", 0, 0, CC_LONG(auto_enrol), NULL },
	{ "central", "workers", CC_INT, "0", 0, 256, CC_LONG(workers), "0 = one per core" },
	{ "central", "pin_threads", CC_BOOL, "yes", 0, 0, CC_LONG(pin_threads),
	  "worker i and its keys thread on core i" },
	{ "central", "keys_timeout_ms", CC_INT, "5000", 100, 60000, CC_LONG(keys_timeout_ms),
	  "a keys process answer later than this is a 503" },
	{ "central", "log_level", CC_STR, "info", 0, 0, CC_FIELD(log_level),
	  "debug | info | warn | error" },
	{ "central", "user", CC_STR, "pos-central", 0, 0, CC_FIELD(user),
	  "serve's keys process runs as this user when started as root" },
	{ "central", "public_listen", CC_STR, "", 0, 0, CC_FIELD(public_listen),
	  "HOST:PORT for phones and browsers; empty = off" },
	{ "central", "www", CC_STR, "", 0, 0, CC_FIELD(www),
	  "folder of the public pages; empty = the installed share/pos/www" },
	{ "store", "backend", CC_STR, "sqlite", 0, 0, CC_FIELD(store_backend),
	  "sqlite ([central] database) | postgresql (dsn)" },
	{ "store", "dsn", CC_STR, "", 0, 0, CC_FIELD(store_dsn),
	  "PostgreSQL: a libpq connection string, e.g. host=/run/postgresql dbname=pos" },
	{ "store", "dsn_read", CC_STR, "", 0, 0, CC_FIELD(store_dsn_read),
	  "PostgreSQL: analysts' reads (histories, reports) from a replica; empty = dsn" },
	{ "store", "partitions_ahead", CC_INT, "3", 0, 36, CC_LONG(store_partitions_ahead),
	  "PostgreSQL: months of basket partitions made ahead of this one" },
	{ "store", "retention_batch", CC_INT, "1000", 1, 1000000, CC_LONG(store_retention_batch),
	  "SQLite: baskets deleted a transaction by pos-central retention" },
	{ "tls", "ca", CC_PATH, "ca.crt", 0, 0, CC_FIELD(tls_ca), "verifies terminal certificates" },
	{ "tls", "cert", CC_PATH, "server.crt", 0, 0, CC_FIELD(tls_cert), NULL },
	{ "tls", "key", CC_PATH, "server.key", 0, 0, CC_FIELD(tls_key), NULL },
	{ "tls", "public_cert", CC_PATH, "public.crt", 0, 0, CC_FIELD(tls_public_cert),
	  "the public listener's certificate" },
	{ "tls", "public_key", CC_PATH, "public.key", 0, 0, CC_FIELD(tls_public_key), NULL },
	{ "tls", "ticket_rotate_s", CC_INT, "3600", 1, 7L * 24 * 3600, CC_LONG(ticket_rotate_s),
	  "seconds a session ticket key seals tickets; it opens them one period more" },
	{ "tls", "session_cache", CC_INT, "10000", 16, 1000000, CC_LONG(session_cache),
	  "resumable TLS sessions kept, about 4 KB each: one per terminal" },
	{ "keys", "hpke", CC_PATH, "hpke.key", 0, 0, CC_FIELD(hpke_key),
	  "current X25519 private key (PEM)" },
	{ "keys", "hpke_retired", CC_PATH, "keys", 0, 0, CC_FIELD(hpke_retired),
	  "folder of earlier *.key files, opened by kid" },
	{ "keys", "k_index", CC_PATH, "k_index.key", 0, 0, CC_FIELD(k_index), NULL },
	{ "keys", "k_deident", CC_PATH, "k_deident.key", 0, 0, CC_FIELD(k_deident), NULL },
	{ "keys", "visitor", CC_PATH, "visitor.key", 0, 0, CC_FIELD(visitor_key),
	  "signs visitor ids; made on first serve when missing" },
	{ "tokens", "analyst", CC_PATH, "analyst.token", 0, 0, CC_FIELD(analyst_token), NULL },
	{ "tokens", "admin", CC_PATH, "admin.token", 0, 0, CC_FIELD(admin_token), NULL },
	{ "limits", "max_body", CC_INT, "1048576", 1024, 64L * 1024 * 1024, CC_LONG(max_body),
	  "bytes" },
	{ "limits", "max_headers", CC_INT, "16384", 1024, 1024L * 1024, CC_LONG(max_headers),
	  "bytes" },
	{ "limits", "idle_timeout", CC_INT, "30", 1, 3600, CC_LONG(idle_timeout),
	  "seconds a connection may sit idle or trickle" },
	{ "limits", "max_connections", CC_INT, "4096", 1, 1000000, CC_LONG(max_connections),
	  NULL },
	{ "limits", "handshake_timeout_ms", CC_INT, "3000", 100, 600000,
	  CC_LONG(handshake_timeout_ms), "a TLS handshake must end within this (and idle_timeout)" },
	{ "limits", "max_connections_per_address", CC_INT, "64", 1, 1000000,
	  CC_LONG(max_connections_per_address), "not yet authenticated, per IPv4 address or IPv6 /64" },
	{ "limits", "terminal_reserve_pct", CC_INT, "25", 0, 90, CC_LONG(terminal_reserve_pct),
	  "% of max_connections only terminals may use" },
	{ "limits", "min_free_disk_mb", CC_INT, "64", 0, 1000000000, CC_LONG(min_free_disk_mb),
	  "GET /v1/health/ready fails with less free beside the database" },
	{ "limits", "public_rate_per_min", CC_INT, "600", 1, 1000000, CC_LONG(public_rate_per_min),
	  "public listener: requests a minute per address" },
	{ "limits", "public_burst", CC_INT, "120", 1, 1000000, CC_LONG(public_burst),
	  "public listener: requests at once per address" },
	{ "limits", "message_max_chars", CC_INT, "1000", 1, 10000, CC_LONG(message_max_chars),
	  "characters of one chat message" },
	{ "ratelimit", "entries", CC_INT, "16384", 64, 16L * 1024 * 1024, CC_LONG(rl_entries),
	  "buckets for client addresses (fixed memory)" },
	{ "ratelimit", "register_per_minute", CC_INT, "30", 0, 1000000,
	  CC_LONG(rl_register_per_minute), "POST /v1/devices per address; 0 = not limited" },
	{ "ratelimit", "register_burst", CC_INT, "10", 1, 1000000, CC_LONG(rl_register_burst),
	  NULL },
	{ "ratelimit", "device_per_minute", CC_INT, "600", 0, 1000000,
	  CC_LONG(rl_device_per_minute), "device-token routes per address; 0 = not limited" },
	{ "ratelimit", "device_burst", CC_INT, "60", 1, 1000000, CC_LONG(rl_device_burst), NULL },
	{ "devices", "max_unused", CC_INT, "100000", 1, 100000000, CC_LONG(devices_max_unused),
	  "registrations never used; beyond it POST /v1/devices answers 503" },
	{ "devices", "unused_ttl_s", CC_INT, "86400", 1, 365L * 86400,
	  CC_LONG(devices_unused_ttl_s), "a registration never used is removed after this" },
	{ "receipt", "ttl_days", CC_INT, "90", 1, 3650, CC_LONG(receipt_ttl_days),
	  "days a receipt link opens its receipt" },
	{ "receipt", "poll_s", CC_INT, "25", 1, 120, CC_LONG(receipt_poll_s),
	  "seconds a message long poll is held" },
	{ "console", "session_hours", CC_INT, "12", 1, 720, CC_LONG(console_session_hours),
	  "hours a staff login lasts" },
	{ "privacy", "k_min", CC_INT, "10", 2, 1000000, CC_LONG(privacy_k_min),
	  "no analyst number about fewer households is shown" },
	{ "analyst", "session_hours", CC_INT, "8", 1, 720, CC_LONG(analyst_session_hours),
	  "hours a workbench sign-in lasts" },
	{ "analyst", "sessions_max", CC_INT, "256", 1, 100000, CC_LONG(analyst_sessions_max),
	  "workbench sign-ins held at once; the oldest goes first" },
	{ "analyst", "fold_ms", CC_INT, "1000", 50, 3600000, CC_LONG(analyst_fold_ms),
	  "how often the writer folds new baskets into the cohorts' tables" },
	{ "analyst", "fold_batch", CC_INT, "500", 10, 1000000, CC_LONG(analyst_fold_batch),
	  "baskets folded per write unit (a backlog goes on between groups)" },
	{ "vendors", "k_vendor", CC_PATH, "k_vendor.key", 0, 0, CC_FIELD(k_vendor),
	  "the key of vendor pseudonyms (made by vendor add)" },
	{ "vendors", "max_skew_s", CC_INT, "300", 10, 3600, CC_LONG(vendor_max_skew_s),
	  "a signed vendor call older or newer than this is refused" },
	{ "vendors", "call_timeout_s", CC_INT, "10", 1, 300, CC_LONG(vendor_call_timeout_s),
	  "seconds central waits for a vendor backend" },
	{ "vendors", "retry_max_s", CC_INT, "60", 1, 86400, CC_LONG(vendor_retry_max_s),
	  "longest wait between retries of a backend call" },
	{ "vendors", "messages_max", CC_INT, "100", 1, 1000, CC_LONG(vendor_messages_max),
	  "messages in one GET /v1/devices/me/messages" },
	{ "vendors", "products_max", CC_INT, "200", 1, 5000, CC_LONG(vendor_products_max),
	  "products in one GET /v1/devices/me/products (the newest first)" },
	{ "vendors", "device_cookie_days", CC_INT, "30", 1, 365, CC_LONG(vendor_device_cookie_days),
	  "days the message page's device cookie lasts" },
	{ "vendors", "relations_every_s", CC_INT, "3600", 0, 604800, CC_LONG(vendor_relations_every_s),
	  "serve relearns co-purchase relations this often (0 = never)" },
	{ "relations", "min_baskets", CC_INT, "2", 1, 1000000000, CC_LONG(related_min_baskets),
	  "items related: baskets an item must share with the GTIN" },
	{ "relations", "min_lift_pct", CC_INT, "120", 1, 1000000, CC_LONG(related_min_lift_pct),
	  "items related: lift at least this % (100 = no better than chance)" },
	{ "relations", "learned_per_item", CC_INT, "10", 1, 1000, CC_LONG(related_learned_per_item),
	  "relations_every_s: learned relations kept per item with activities" },
	{ "sms", "number", CC_STR, "", 0, 0, CC_FIELD(sms_number),
	  "the store's SMS number (+E.164) in visitor links; empty = no SMS link" },
	{ "sms", "secret", CC_STR, "", 0, 0, CC_FIELD(sms_secret),
	  "signs calls to and from the SMS gateway; empty = inbound SMS refused" },
	{ "sms", "inbound_url", CC_STR, "", 0, 0, CC_FIELD(sms_inbound_url),
	  "the URL the gateway posts to (signed); empty = https://<Host>/v1/sms/inbound" },
	{ "sms", "gateway_url", CC_STR, "", 0, 0, CC_FIELD(sms_gateway_url),
	  "staff replies to SMS conversations are POSTed here; empty = not sent" },
	{ "sms", "account", CC_STR, "", 0, 0, CC_FIELD(sms_account),
	  "the account name sent to the gateway (form field Account)" },
	{ "crm", "url", CC_STR, "", 0, 0, CC_FIELD(crm_url),
	  "every conversation and message is POSTed here (JSON, signed); empty = off" },
	{ "crm", "secret", CC_STR, "", 0, 0, CC_FIELD(crm_secret), "signs the CRM calls" },
	{ "outbox", "retry_max_s", CC_INT, "300", 1, 86400, CC_LONG(outbox_retry_max_s),
	  "longest wait between tries of a failing delivery (doubling from 1 s)" },
	{ "outbox", "timeout_s", CC_INT, "10", 1, 300, CC_LONG(outbox_timeout_s),
	  "seconds one delivery (CRM or SMS gateway call) may take" },
};

#define CC_NKEYS (sizeof(cconf_keys) / sizeof(cconf_keys[0]))

static int cconf_copy(char *dst, size_t cap, const char *v, const struct cfg *c,
		      const struct cconf_key *k, pos_err *e)
{
	size_t n = strlen(v);

	if (n >= cap)
		return err_set(e, POS_ETOOBIG, "%s:%d: '%s' in [%s] longer than %zu bytes", c->name,
			       cfg_line(c, k->sec, k->key), k->key, k->sec, cap - 1);
	memcpy(dst, v, n + 1);
	return 0;
}

static int cconf_take(struct cfg *c, const struct cconf_key *k, struct cconf *out, pos_err *e)
{
	char *base = (char *)out;
	const char *v;
	long l;
	int rc;

	switch (k->type) {
	case CC_STR:
		rc = cfg_str(c, k->sec, k->key, k->dflt, &v, e);
		if (rc < 0)
			return rc;
		return cconf_copy(base + k->off, k->cap, v, c, k, e);
	case CC_PATH:
		return cfg_path(c, k->sec, k->key, k->dflt, base + k->off, k->cap, e);
	case CC_BOOL:
		return cfg_bool(c, k->sec, k->key, strcmp(k->dflt, "yes") == 0,
				(bool *)(void *)(base + k->off), e);
	case CC_INT: {
		long d = 0;
		for (const char *p = k->dflt; *p; p++)
			d = d * 10 + (*p - '0');
		rc = cfg_int(c, k->sec, k->key, d, k->min, k->max, &l, e);
		if (rc < 0)
			return rc;
		memcpy(base + k->off, &l, sizeof(l));
		return 0;
	}
	}
	return err_set(e, POS_EINVAL, "cconf: bad key table");
}

/* [sms] and [crm]: a number in E.164, and what each delivery needs. */
static int cconf_check_out(const struct cfg *c, const struct cconf *cf, pos_err *e)
{
	size_t n = strlen(cf->sms_number);

	if (n && (cf->sms_number[0] != '+' || n < 9 || n > 16 || cf->sms_number[1] == '0' ||
		  strspn(cf->sms_number + 1, "0123456789") != n - 1))
		return err_set(e, POS_EINVAL,
			       "%s:%d: 'number' in [sms] must be + and 8 to 15 digits, or empty",
			       c->name, cfg_line(c, "sms", "number"));
	if (cf->sms_gateway_url[0] && (!cf->sms_secret[0] || !n))
		return err_set(e, POS_EINVAL,
			       "%s:%d: 'gateway_url' in [sms] needs [sms] secret and number",
			       c->name, cfg_line(c, "sms", "gateway_url"));
	if (cf->crm_url[0] && !cf->crm_secret[0])
		return err_set(e, POS_EINVAL, "%s:%d: 'url' in [crm] needs [crm] secret to sign",
			       c->name, cfg_line(c, "crm", "url"));
	return 0;
}

/* [store]: a backend this build knows, and what it needs. A dsn is never
 * quoted back: it may hold a password. */
static int cconf_check_store(const struct cfg *c, struct cconf *cf, pos_err *e)
{
	if (strcmp(cf->store_backend, "sqlite") == 0)
		cf->backend = STORE_SQLITE;
	else if (strcmp(cf->store_backend, "postgresql") == 0)
		cf->backend = STORE_POSTGRESQL;
	else
		return err_set(e, POS_EINVAL,
			       "%s:%d: 'backend' in [store] must be sqlite or postgresql", c->name,
			       cfg_line(c, "store", "backend"));
	if (cf->backend == STORE_POSTGRESQL && !cf->store_dsn[0])
		return err_set(e, POS_EINVAL,
			       "%s:%d: [store] backend = postgresql needs 'dsn' (a libpq "
			       "connection string)",
			       c->name, cfg_line(c, "store", "backend"));
	if (cf->backend == STORE_SQLITE && cf->store_dsn[0])
		return err_set(e, POS_EINVAL,
			       "%s:%d: 'dsn' in [store] is for backend = postgresql (this store "
			       "is sqlite)",
			       c->name, cfg_line(c, "store", "dsn"));
	if (cf->backend == STORE_SQLITE && cf->store_dsn_read[0])
		return err_set(e, POS_EINVAL,
			       "%s:%d: 'dsn_read' in [store] is for backend = postgresql (this "
			       "store is sqlite)",
			       c->name, cfg_line(c, "store", "dsn_read"));
	return 0;
}

/* Values that need more than a type check: said with the file and line. */
static int cconf_check(const struct cfg *c, struct cconf *cf, pos_err *e)
{
	const char *colon;
	int rc;

	if ((rc = cconf_check_store(c, cf, e)) < 0)
		return rc;

	if (log_level_parse(cf->log_level) < 0)
		return err_set(e, POS_EINVAL,
			       "%s:%d: 'log_level' in [central] must be debug, info, warn or error",
			       c->name, cfg_line(c, "central", "log_level"));
	colon = strrchr(cf->listen, ':');
	if (!colon || colon == cf->listen || colon[1] == '\0' ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5)
		return err_set(e, POS_EINVAL, "%s:%d: 'listen' in [central] must be HOST:PORT",
			       c->name, cfg_line(c, "central", "listen"));
	if (cf->public_listen[0]) {
		colon = strrchr(cf->public_listen, ':');
		if (!colon || colon == cf->public_listen || colon[1] == '\0' ||
		    strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5)
			return err_set(e, POS_EINVAL,
				       "%s:%d: 'public_listen' in [central] must be HOST:PORT or empty",
				       c->name, cfg_line(c, "central", "public_listen"));
	}
	return cconf_check_out(c, cf, e);
}

int cconf_load(const char *path, struct cconf *out, pos_err *e)
{
	struct cfg *c = NULL;
	int rc;

	if (!path || !out)
		return err_set(e, POS_EINVAL, "cconf: no path");
	memset(out, 0, sizeof(*out));
	rc = cfg_load(path, &c, e);
	if (rc < 0)
		goto out;
	if (strlen(path) >= sizeof(out->path) || strlen(c->dir) >= sizeof(out->dir)) {
		rc = err_set(e, POS_ETOOBIG, "%s: path too long", path);
		goto out;
	}
	memcpy(out->path, path, strlen(path) + 1);
	memcpy(out->dir, c->dir, strlen(c->dir) + 1);
	for (size_t i = 0; i < CC_NKEYS; i++) {
		rc = cconf_take(c, &cconf_keys[i], out, e);
		if (rc < 0)
			goto out;
	}
	rc = cconf_check(c, out, e);
	if (rc < 0)
		goto out;
	rc = cfg_check_unused(c, e);
out:
	cfg_free(c);
	return rc;
}

int cconf_write_default(const char *path, const char *listen, pos_err *e)
{
	char buf[8192];
	size_t len = 0;
	const char *sec = NULL;
	int n;

	if (!path)
		return err_set(e, POS_EINVAL, "cconf: no path");
	if (!listen)
		listen = cconf_keys[0].dflt;
	if (strlen(listen) >= sizeof(((struct cconf *)0)->listen) || strpbrk(listen, "\r\n;#[]= \t"))
		return err_set(e, POS_EINVAL, "listen address must be HOST:PORT");
	n = snprintf(buf, sizeof(buf), "; pos-central configuration. Relative paths are relative "
				       "to this file's folder.\n");
	if (n < 0 || (size_t)n >= sizeof(buf))
		return err_set(e, POS_ETOOBIG, "cconf: default file too big");
	len = (size_t)n;
	for (size_t i = 0; i < CC_NKEYS; i++) {
		const struct cconf_key *k = &cconf_keys[i];
		const char *v = (i == 0) ? listen : k->dflt;
		if (!sec || strcmp(sec, k->sec) != 0) {
			n = snprintf(buf + len, sizeof(buf) - len, "[%s]\n", k->sec);
			if (n < 0 || (size_t)n >= sizeof(buf) - len)
				return err_set(e, POS_ETOOBIG, "cconf: default file too big");
			len += (size_t)n;
			sec = k->sec;
		}
		if (k->note)
			n = snprintf(buf + len, sizeof(buf) - len, "%s = %s ; %s\n", k->key, v, k->note);
		else
			n = snprintf(buf + len, sizeof(buf) - len, "%s = %s\n", k->key, v);
		if (n < 0 || (size_t)n >= sizeof(buf) - len)
			return err_set(e, POS_ETOOBIG, "cconf: default file too big");
		len += (size_t)n;
	}
	return keys_write_file(path, buf, len, 0600, 0, e);
}

void cconf_store_where(const struct cconf *c, enum cconf_store_use use, struct store_where *w)
{
	memset(w, 0, sizeof(*w));
	w->backend = c->backend;
	w->path = c->database;
	w->dsn = c->store_dsn;
	w->readonly = use != CCONF_STORE_WRITE;
	if (use == CCONF_STORE_READ && c->backend == STORE_POSTGRESQL && c->store_dsn_read[0]) {
		w->dsn = c->store_dsn_read;
		w->readonly = true;
	}
}

int cconf_store_open(const struct cconf *c, enum cconf_store_use use, struct store **out,
		     pos_err *e)
{
	struct store_where w;
	int rc;

	cconf_store_where(c, use, &w);
	if ((rc = store_open_at(&w, out, e)) < 0)
		return rc;
	if (w.backend == STORE_POSTGRESQL && !w.readonly &&
	    (rc = store_partitions_ahead(*out, c->store_partitions_ahead, e)) < 0) {
		store_close(*out);
		*out = NULL;
	}
	return rc;
}

/* Skips a libpq value (quoted or not) from p; returns its end. */
static const char *dsn_value_end(const char *p)
{
	if (*p != '\'') {
		while (*p && *p != ' ' && *p != '\t')
			p++;
		return p;
	}
	for (p++; *p && *p != '\''; p++)
		if (*p == '\\' && p[1])
			p++;
	return *p ? p + 1 : p;
}

void cconf_dsn_safe(const char *dsn, char *out, size_t cap)
{
	const char *p = dsn, *scheme;
	size_t len = 0;
	int n;

	if (!cap)
		return;
	out[0] = '\0';
	scheme = strstr(dsn, "://");
	if (scheme) {
		/* postgresql://user:secret@host/db?password=..: the user part and
		 * a query naming a password go. */
		const char *host = strchr(scheme + 3, '@'), *q;

		host = host ? host + 1 : scheme + 3;
		q = strchr(host, '?');
		snprintf(out, cap, "%.*s%s%.*s%s", (int)(scheme + 3 - dsn), dsn,
			 host != scheme + 3 ? "***@" : "",
			 (int)(q && strstr(q, "password") ? q - host : (long)strlen(host)), host,
			 q && strstr(q, "password") ? "?***" : "");
		return;
	}
	while (*p && len + 1 < cap) {
		const char *key = p, *eq, *vend;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		key = p;
		eq = p;
		while (*eq && *eq != '=' && *eq != ' ')
			eq++;
		while (*eq == ' ')
			eq++;
		if (*eq != '=') {
			vend = eq;
			p = eq;
			continue;
		}
		vend = eq + 1;
		while (*vend == ' ')
			vend++;
		vend = dsn_value_end(vend);
		if ((size_t)(eq - key) >= 8 && strncmp(key, "password", 8) == 0)
			n = snprintf(out + len, cap - len, "%spassword=***", len ? " " : "");
		else
			n = snprintf(out + len, cap - len, "%s%.*s", len ? " " : "", (int)(vend - key),
				     key);
		if (n < 0 || (size_t)n >= cap - len)
			break;
		len += (size_t)n;
		p = vend;
	}
}
