#ifndef POS_STORE_PUBLIC_H
#define POS_STORE_PUBLIC_H
/*
 * The store's part for the public listener (design section 13): the item
 * master, receipt links, conversations and their messages, store staff
 * and their console sessions, devices linked to households. Persistence
 * only; the rules (who may see what, expiry, lengths) live in public.c.
 * Tokens, session ids and receipt tokens are known by their SHA-256 only.
 * Same connection rules as store.h.
 */
#include <stdbool.h>
#include <stdint.h>

#include "envelope.h"
#include "err.h"
#include "keys.h"
#include "store.h"

#define STORE_ITEM_TEXT_MAX 120 /* name, vendor, category: bytes of UTF-8 */
#define STORE_STAFF_NAME_MAX 80
#define STORE_CONV_RECEIPT "receipt"
#define STORE_CONV_VISITOR "visitor" /* keyed by the visitor's uid */

struct store_item_master {
	char gtin[GTIN_LEN + 1];
	char name[STORE_ITEM_TEXT_MAX + 1];
	char vendor[STORE_ITEM_TEXT_MAX + 1];
	char category[STORE_ITEM_TEXT_MAX + 1];
};

/* Adds or replaces the item. Inside store_begin .. store_commit for a file. */
int store_item_put(struct store *s, const struct store_item_master *it, int64_t now_ms,
		   pos_err *e);
/* POS_ENOTFOUND when the item master has no such GTIN. */
int store_item_get(struct store *s, const char *gtin, struct store_item_master *out, pos_err *e);

/* The basket a receipt token's hash names. POS_ENOTFOUND when none. */
struct store_receipt {
	int64_t basket_id;
	char txn[37];
	int64_t ts_ms;
	char store[STORE_ID_MAX + 1];
	char terminal[STORE_ID_MAX + 1];
	char hhid[DEIDENT_ID_LEN + 1]; /* "" when unresolved */
};
int store_receipt_find(struct store *s, const unsigned char hash[32], struct store_receipt *out,
		       pos_err *e);
/* The basket of txn (for a conversation's receipt). POS_ENOTFOUND. */
int store_receipt_by_txn(struct store *s, const char *txn, struct store_receipt *out,
			 pos_err *e);

/* A receipt line: the item with its master name ("" when unknown). */
struct store_receipt_line {
	char gtin[GTIN_LEN + 1];
	int qty;
	long price_cents; /* -1: unknown */
	char name[STORE_ITEM_TEXT_MAX + 1];
};
/* fn for each line in basket order, then for each offer redeemed; fn
 * returning non-zero stops the walk and is returned. ts_ms is the
 * basket's own (store_receipt.ts_ms): it names the month its items are
 * stored in. */
int store_receipt_lines(struct store *s, int64_t basket_id, int64_t ts_ms,
			int (*fn)(const struct store_receipt_line *l, void *arg), void *arg,
			pos_err *e);
int store_receipt_offers(struct store *s, int64_t basket_id,
			 int (*fn)(const char *offer_id, const char *title, void *arg), void *arg,
			 pos_err *e);

struct store_conversation {
	int64_t id;
	char kind[16];
	char txn[37]; /* "" when none */
	char store[STORE_ID_MAX + 1];
	bool open;
	int64_t created_ms;
	int64_t updated_ms;
};

struct store_message {
	int64_t id;
	int64_t ts_ms;
	char author[16]; /* "customer" or "staff" */
	const char *body; /* valid during the callback */
};

/* The conversation of kind and txn: POS_ENOTFOUND when none yet. */
int store_conversation_find(struct store *s, const char *kind, const char *txn,
			    struct store_conversation *out, pos_err *e);
int store_conversation_get(struct store *s, int64_t id, struct store_conversation *out,
			   pos_err *e);
/* Adds a message to the conversation of (kind, txn), making it (open, in
 * store) first when there is none, reopening it when closed. */
int store_message_add_keyed(struct store *s, const char *kind, const char *txn,
			    const char *store, const char *author, const char *body,
			    int64_t now_ms, int64_t *conv_id, int64_t *msg_id, pos_err *e);
/* Adds a message to conversation id (POS_ENOTFOUND when none). */
int store_message_add(struct store *s, int64_t conv, const char *author, int64_t staff_id,
		      const char *body, int64_t now_ms, int64_t *msg_id, pos_err *e);
/* Messages of conv with id > after, oldest first, at most limit. */
int store_messages(struct store *s, int64_t conv, int64_t after, int limit,
		   int (*fn)(const struct store_message *m, void *arg), void *arg, pos_err *e);
/* Open conversations, most recently active first, of store (NULL: every
 * store), at most limit. */
int store_conversations_open(struct store *s, const char *store, int limit,
			     int (*fn)(const struct store_conversation *c, void *arg), void *arg,
			     pos_err *e);
/* POS_ENOTFOUND; POS_ECONFLICT when already closed. */
int store_conversation_close(struct store *s, int64_t id, int64_t now_ms, pos_err *e);

/* An inbound text message: adds body (author "customer") to the visitor
 * conversation of uid (made when none) and keeps the sender's blind index
 * and sealed number (kid, sealed: envelope_seal_tid) with it, all in one
 * unit. *dup true (and nothing written, *conv and *msg those of the first
 * time) when sid was stored before. */
struct store_sms_in {
	const char *sid;
	const char *uid;
	const unsigned char *phone_index; /* 32 bytes */
	const char *kid;
	const char *sealed;
	const char *body;
	int64_t now_ms;
};
int store_sms_inbound(struct store *s, const struct store_sms_in *in, int64_t *conv,
		      int64_t *msg, bool *dup, pos_err *e);
/* The uid of the visitor conversation a number (its blind index) wrote to
 * last: POS_ENOTFOUND when none. */
int store_sms_last_uid(struct store *s, const unsigned char phone_index[32], char uid[37],
		       pos_err *e);

/* ------------------------------------------------------------ outboxes
 * An outbox walks the message stream by a cursor it keeps in the store
 * (outbox_cursors): events are derived from messages, so there is no
 * second copy to enqueue, and a crash between a delivery and its cursor
 * write only repeats that one event under the same id. */

/* The cursor of outbox name (0 when it never ran) and its last tries. */
struct store_cursor {
	int64_t position;
	long attempts;
	char last_error[160];
	int64_t updated_ms;
};
int store_cursor_get(struct store *s, const char *name, struct store_cursor *out, pos_err *e);
/* Moves the cursor to position (attempts back to 0). */
int store_cursor_set(struct store *s, const char *name, int64_t position, int64_t now_ms,
		     pos_err *e);
/* Records a failed try at the current position. */
int store_cursor_failed(struct store *s, const char *name, long attempts, const char *error,
			int64_t now_ms, pos_err *e);

/* One message with its conversation, for the CRM. first: the
 * conversation's first message (the conversation is new with it). */
struct store_event {
	struct store_conversation c;
	int64_t msg_id;
	int64_t ts_ms;
	char author[16];
	const char *body; /* valid during the callback */
	bool first;
};
/* The first message with id > after, POS_ENOTFOUND when none. */
int store_event_next(struct store *s, int64_t after,
		     int (*fn)(const struct store_event *ev, void *arg), void *arg, pos_err *e);
/* Messages with id > after (any count): the CRM outbox's backlog. */
int store_events_after(struct store *s, int64_t after, int64_t *count, pos_err *e);

/* The next staff message with id > after in a conversation that came by
 * SMS, with its sealed sender; POS_ENOTFOUND when none. */
struct store_sms_reply {
	int64_t msg_id;
	int64_t conv_id;
	char uid[37];
	char kid[KEYS_KID_LEN + 1];
	char sealed[ENVELOPE_B64_MAX];
	const char *body; /* valid during the callback */
};
int store_sms_reply_next(struct store *s, int64_t after,
			 int (*fn)(const struct store_sms_reply *r, void *arg), void *arg,
			 pos_err *e);
/* Staff messages with id > after in SMS conversations. */
int store_sms_replies_after(struct store *s, int64_t after, int64_t *count, pos_err *e);

/* What the store knows of a conversation's household (design section
 * 13): found by the receipt's basket or the SMS sender's blind index.
 * Never a TID. known false when no household is found. */
#define STORE_FACTS_TOP 3
struct store_facts {
	bool known;
	char hhid[DEIDENT_ID_LEN + 1];
	int64_t last_visit_ms; /* 0: none */
	long visits_90d;
	long spend_90d_cents;
	int ntop;
	char top[STORE_FACTS_TOP][STORE_ITEM_TEXT_MAX + 1]; /* categories, most items first */
	long offers_redeemed;
};
int store_conversation_facts(struct store *s, const struct store_conversation *c,
			     int64_t now_ms, struct store_facts *out, pos_err *e);

struct store_staff {
	int64_t id;
	char name[STORE_STAFF_NAME_MAX + 1];
	char store[STORE_ID_MAX + 1]; /* "" = every store */
};
/* store NULL or "": every store. */
int store_staff_add(struct store *s, const char *name, const char *store,
		    const unsigned char token_hash[32], int64_t now_ms, int64_t *id, pos_err *e);
int store_staff_by_token(struct store *s, const unsigned char token_hash[32],
			 struct store_staff *out, pos_err *e);
int store_session_add(struct store *s, const unsigned char id_hash[32], int64_t staff_id,
		      int64_t now_ms, int64_t expires_ms, pos_err *e);
/* The staff of a session still valid at now_ms; POS_ENOTFOUND otherwise
 * (expired ones are deleted as new sessions are added). */
int store_session_staff(struct store *s, const unsigned char id_hash[32], int64_t now_ms,
			struct store_staff *out, pos_err *e);
int store_session_del(struct store *s, const unsigned char id_hash[32], pos_err *e);

/* Links device to hhid (a receipt the device opened); *created false when
 * it was linked before. */
int store_device_link(struct store *s, int64_t device, const char *hhid, int64_t now_ms,
		      bool *created, pos_err *e);

#endif
