#ifndef POS_STORE_VENDOR_H
#define POS_STORE_VENDOR_H
/*
 * The store's part for vendors (design section 14): vendors, the
 * signatures they used (replays), activities tied to sales, declared item
 * relations, vendor events with the messages they make for households,
 * and the outbox of calls to vendor backends. Writes run on the writer
 * (INGEST_OP), the CLI or the outbox thread, each call one unit (it undoes
 * itself on failure). The message lists are built as JSON here, since the
 * options a backend offered are stored as the JSON it sent.
 *
 * A vendor's token is known by its SHA-256; its signing secret is kept as
 * it is, because central must compute HMACs with it (the database file is
 * mode 0600 in central's home, like the keys).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

#define STORE_VENDOR_ID_MAX 32
#define STORE_VENDOR_NAME_MAX 80
#define STORE_VENDOR_URL_MAX 256
#define STORE_VENDOR_SECRET_MAX 64
#define STORE_VENDOR_REF_MAX 64
#define STORE_VENDOR_KIND_MAX 32
#define STORE_VENDOR_TEXT_MAX 500
#define STORE_OUTBOX_BODY_MAX 1024

struct store_vendor {
	char id[STORE_VENDOR_ID_MAX + 1];
	char name[STORE_VENDOR_NAME_MAX + 1];
	char backend[STORE_VENDOR_URL_MAX + 1];
	char secret[STORE_VENDOR_SECRET_MAX + 1];
};

/* POS_ECONFLICT when the id is taken. */
int store_vendor_add(struct store *s, const struct store_vendor *v,
		     const unsigned char token_hash[32], int64_t now_ms, pos_err *e);
/* POS_ENOTFOUND when no vendor holds the token. */
int store_vendor_by_token(struct store *s, const unsigned char token_hash[32],
			  struct store_vendor *out, pos_err *e);

/* Records that vendor signed (ts_s, body hash); POS_ECONFLICT when it was
 * seen before. Signatures older than keep_s are forgotten on the way. */
int store_vendor_nonce(struct store *s, const char *vendor, int64_t ts_s,
		       const unsigned char body_hash[32], int64_t keep_s, pos_err *e);

/* kind "requires" or "accessory"; replaces an earlier relation of a, b. */
int store_relation_put(struct store *s, const char *gtin_a, const char *gtin_b,
		       const char *kind, pos_err *e);

struct store_activity_in {
	char vendor[STORE_VENDOR_ID_MAX + 1];
	char ref[STORE_VENDOR_REF_MAX + 1];
	char txn[37];
	char gtin[GTIN_LEN + 1];
	char kind[STORE_VENDOR_KIND_MAX + 1];
	int64_t at_ms;
};
/* Registers the activity against the sale txn (its household found
 * here). *created false when (vendor, ref) was registered before with the
 * same content; POS_ECONFLICT when with other content; POS_ENOTFOUND when
 * no basket has txn; POS_EINVAL when the basket has no such item. */
int store_activity_put(struct store *s, const struct store_activity_in *a, int64_t now_ms,
		       bool *created, pos_err *e);

struct store_vendor_event {
	char vendor[STORE_VENDOR_ID_MAX + 1];
	char vendor_name[STORE_VENDOR_NAME_MAX + 1];
	char id[STORE_VENDOR_REF_MAX + 1];
	char kind[16];                        /* recall, delay, cancel */
	char gtin[GTIN_LEN + 1];              /* recall */
	char activity[STORE_VENDOR_REF_MAX + 1]; /* delay, cancel */
	int64_t new_at_ms;                    /* delay */
	char text[STORE_VENDOR_TEXT_MAX + 1];
};
/* Applies the event once: messages for every household it reaches and,
 * for a delay, a "reschedule" message and an options call in the outbox
 * for each related activity of another vendor the delay invalidates.
 * *households: households reached (the first time's count when the event
 * was applied before, then *created is false). POS_ENOTFOUND: the
 * vendor has no such activity; POS_EPERM: the item is not this vendor's. */
int store_vendor_event_apply(struct store *s, const struct store_vendor_event *ev,
			     int64_t now_ms, long *households, bool *created, pos_err *e);

/* GET /v1/devices/me/messages: {"messages":[...]} of every household the
 * device is linked to (receipts it opened, offers it redeemed), newest
 * first, at most limit; marks them read. *out: json_decref. */
int store_device_messages(struct store *s, int64_t device, int limit, int64_t now_ms,
			  json_t **out, pos_err *e);
/* The device picks option for message id: queues the reschedule in the
 * outbox. POS_ENOTFOUND: no such message for this device; POS_EINVAL: not
 * one of its options; POS_ECONFLICT: another was picked or it has no
 * options yet. *created false when the same option was picked before. */
int store_message_choose(struct store *s, int64_t device, int64_t id, const char *option,
			 int64_t now_ms, bool *created, pos_err *e);
/* The device asks a person about message id: a "support" conversation
 * for the sale, with the message's text. */
int store_message_support(struct store *s, int64_t device, int64_t id, int64_t now_ms,
			  int64_t *conv, pos_err *e);

/* An outbox call with what is needed to make it. */
struct store_outbox_job {
	int64_t id;
	char kind[16]; /* options, reschedule */
	int64_t message_id;
	int64_t activity_id;
	char body[STORE_OUTBOX_BODY_MAX + 1];
	char idem[64];
	int attempts;
	char ref[STORE_VENDOR_REF_MAX + 1];
	char hhid[DEIDENT_ID_LEN + 1];
	struct store_vendor v;
};
/* Up to max calls due at now_ms, into out; *n how many. */
int store_outbox_due(struct store *s, int64_t now_ms, struct store_outbox_job *out, size_t max,
		     size_t *n, pos_err *e);
int store_outbox_retry(struct store *s, int64_t id, int64_t next_ms, pos_err *e);
/* The options call answered: options (a JSON array text) on the message. */
int store_outbox_options_done(struct store *s, const struct store_outbox_job *j,
			      const char *options, int64_t now_ms, pos_err *e);
/* The reschedule answered: the activity moves to at_ms and the household
 * gets a confirmation message. */
int store_outbox_reschedule_done(struct store *s, const struct store_outbox_job *j,
				 int64_t at_ms, int64_t now_ms, pos_err *e);
/* The backend refused the call for good (a 4xx): it leaves the outbox;
 * a refused reschedule marks the message "failed" and tells the household
 * so (a "reschedule_failed" message); refused options mark it
 * "no_options". */
int store_outbox_refused(struct store *s, const struct store_outbox_job *j, int64_t now_ms,
			 pos_err *e);
/* Calls not yet answered (for /metrics and tests). */
int store_outbox_pending(struct store *s, long *n, pos_err *e);

/* Items bought with gtin (co-purchase over baskets): fn for each item in
 * at least min_baskets baskets with it whose lift (P(item | gtin) /
 * P(item)) is at least min_lift, highest lift first, at most limit. */
struct store_related {
	char gtin[GTIN_LEN + 1];
	long baskets;
	double lift;
	const char *name; /* "" when not in the item master; valid during fn */
};
int store_items_related(struct store *s, const char *gtin, long min_baskets, double min_lift,
			int limit, int (*fn)(const struct store_related *r, void *arg), void *arg,
			pos_err *e);

/* vendor report: households reached, read, acted for event id. */
int store_vendor_report(struct store *s, const char *event_id, long *reached, long *read,
			long *acted, pos_err *e);

/* GET /v1/devices/me/products: {"products":[{"gtin","name","bought",
 * "store","activities":[{"vendor","kind","at","state"}]}],"truncated"} of
 * every household the device is linked to, each item of a sale once,
 * newest sale first, at most limit (truncated: there were more). Names no
 * household, sale or card. *out: json_decref. */
int store_device_products(struct store *s, int64_t device, int limit, json_t **out, pos_err *e);

/* Relearns the co-purchase relations (kind "learned") of every item with
 * a registered activity: at most per_item of store_items_related's for
 * each, replacing the learned ones before; a declared relation of the
 * same pair is kept as declared. *stored: relations written. */
int store_relations_learn(struct store *s, long min_baskets, double min_lift, int per_item,
			  long *stored, pos_err *e);

#endif
