#ifndef POS_CONTROL_H
#define POS_CONTROL_H
/*
 * The agent's control socket (design section 6, docs/protocol.md): a unix
 * stream socket, mode 0660, one JSON object per line both ways, lines of at
 * most CONTROL_MAX_LINE bytes, many clients at once. Each request gets one
 * reply line on its own connection; every client also receives every event
 * (control_broadcast). A client that stops reading is dropped once its
 * pending output passes CONTROL_OUT_MAX: the loop never blocks on anyone.
 *
 * Requests: {"cmd":"status"|"total"|"void"|"cancel"|"retry"},
 *           {"cmd":"tid","tid":"phone:+..."}, {"cmd":"scan","code":"..."}.
 * Replies:  {"ok":true,...} or {"ok":false,"error":"<code>","detail":"..."}.
 * A "tid" request carries a TID in clear: the request buffer and every copy
 * made while reading it are wiped once the handler returns.
 */
#include <jansson.h>
#include <stddef.h>
#include "err.h"

#define CONTROL_MAX_LINE 4096
#define CONTROL_MAX_CLIENTS 64
#define CONTROL_OUT_MAX (256 * 1024)
#define CONTROL_ARG_MAX 256

struct event_base;
struct control;

enum control_cmd {
	CONTROL_STATUS = 1,
	CONTROL_TOTAL,
	CONTROL_VOID,
	CONTROL_CANCEL,
	CONTROL_TID,
	CONTROL_SCAN,
	CONTROL_RETRY, /* set-aside baskets back to waiting (pos-agent spool retry) */
};

struct control_request {
	enum control_cmd cmd;
	/* TID: the TID as keyed (wipe after use); SCAN: the code; else "". */
	char arg[CONTROL_ARG_MAX + 1];
};

/* Parses one request line (without its newline; a trailing CR is
 * tolerated). Pure: no I/O, no global state, any bytes are safe input.
 * On failure *error gets a short code ("bad_json", "bad_request",
 * "unknown_command", "line_too_long") and e a one-line detail that never
 * repeats a field's value. out is wiped on failure. */
int control_parse_request(const char *line, size_t len, struct control_request *out,
			  const char **error, pos_err *e);
void control_request_wipe(struct control_request *r);
const char *control_cmd_name(enum control_cmd c);

/* Handles a request; returns the reply object (a new reference, taken by
 * the control layer) or NULL for an internal failure. May call
 * control_broadcast. */
typedef json_t *(*control_handler_fn)(const struct control_request *req, void *arg);

/* Builds what a newly connected client is told first, before any live
 * event: a JSON array of event objects (a new reference; NULL for none),
 * e.g. the devices' current state, so a client never misses the state of
 * the world that was set before it connected. */
typedef json_t *(*control_welcome_fn)(void *arg);

/* Listens on path (replacing a stale socket file, refusing when another
 * process still answers on it). *out: control_free. */
int control_new(struct event_base *base, const char *path, control_handler_fn fn, void *arg,
		struct control **out, pos_err *e);
/* Sets the welcome builder (arg as given to control_new). */
void control_set_welcome(struct control *c, control_welcome_fn fn);
/* Closes every client and removes the socket file. */
void control_free(struct control *c);
/* Sends one event line to every client (ev is not taken). */
void control_broadcast(struct control *c, const json_t *ev);
size_t control_clients(const struct control *c);

/* {"ok":false,"error":code,"detail":detail}: a new reference. */
json_t *control_error(const char *code, const char *detail);

#endif
