#ifndef POS_OUTBOX_H
#define POS_OUTBOX_H
/*
 * Deliveries out of central (design section 13), on a thread of their
 * own with their own database connection, never on a worker's loop:
 *
 *   crm  every new conversation and message, POSTed as JSON to [crm] url
 *        {"event_id","type":"conversation"|"message","uid","hhid",
 *         "conversation","message","enrichment"}
 *   sms  each staff reply in a conversation that came by SMS, POSTed as a
 *        form (From, To, Body, Account) to [sms] gateway_url
 *
 * Both walk the message stream by a cursor kept in the store
 * (store_public.h), one event at a time, in order. Each call carries
 * Idempotency-Key: <event id> and is signed: the CRM's X-Pos-Timestamp
 * and X-Pos-Signature = base64 HMAC-SHA256([crm] secret, timestamp "."
 * body); the gateway's X-Pos-Signature as for inbound SMS (visitor.h).
 * A failure (no answer, not 2xx) is tried again after 1 s, doubling up to
 * [outbox] retry_max_s; the cursor moves only after a 2xx, so a crash
 * repeats at most the event under way, with the same id.
 *
 * The sender's number of an SMS reply is opened by the keys process for
 * that one send (keys_open_phone) and wiped after it.
 */
#include <stdio.h>

#include "cconf.h"
#include "err.h"

struct keys_chan;
struct outbox;
struct store_facts;
typedef struct json_t json_t;

/* The enrichment of a conversation: {"last_visit","visits_90d",
 * "spend_band","top_categories","offers_redeemed"}, or JSON null when no
 * household is known; never a TID. New reference (NULL: out of memory). */
json_t *outbox_enrichment_json(const struct store_facts *f);

/* Starts the thread when [crm] url or [sms] gateway_url is set (else *out
 * stays NULL and nothing runs). keys (borrowed, this thread's own
 * channel) opens SMS senders; NULL: SMS replies are not sent. */
int outbox_start(const struct cconf *c, struct keys_chan *keys, struct outbox **out,
		 pos_err *e);
/* Stops the thread (a delivery under way ends first) and frees. NULL ok. */
void outbox_stop(struct outbox *o);

/* `pos-central crm status`: each outbox's position, backlog and last
 * failure, to out. */
int outbox_status(const struct cconf *c, FILE *out, pos_err *e);
/* The command: pos-central crm status -c CONF. An exit code. */
int outbox_crm_main(int argc, char **argv);

#endif
