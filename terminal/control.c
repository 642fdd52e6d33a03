#include "control.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "jsonx.h"
#include "log.h"
#include "wipe.h"

/* Requests are flat objects: one level is all a valid one needs. */
#define CONTROL_JSON_DEPTH 2

struct control_client {
	struct control *ctl;
	int fd;
	struct event *rd, *wr;
	struct evbuffer *out;
	char in[CONTROL_MAX_LINE + 2]; /* a full line, its CR and its LF */
	size_t inlen;
	bool closing; /* send what is pending, then close */
	bool doomed;  /* unlinked; freed by the reaper */
	struct control_client *prev, *next;
};

struct control {
	struct event_base *base;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	struct event *accept_ev;
	struct event *reap;
	control_handler_fn fn;
	control_welcome_fn welcome;
	void *arg;
	struct control_client *clients;
	struct control_client *doomed;
	size_t nclients;
};

/* ------------------------------------------------------------ parsing */

const char *control_cmd_name(enum control_cmd c)
{
	switch (c) {
	case CONTROL_STATUS: return "status";
	case CONTROL_TOTAL: return "total";
	case CONTROL_VOID: return "void";
	case CONTROL_CANCEL: return "cancel";
	case CONTROL_TID: return "tid";
	case CONTROL_SCAN: return "scan";
	case CONTROL_RETRY: return "retry";
	}
	return "?";
}

void control_request_wipe(struct control_request *r)
{
	if (r)
		wipe(r, sizeof *r);
}

/* jansson keeps its own copy of every string: the TID's is wiped in
 * place before the tree is released. */
static void control_wipe_strings(json_t *root)
{
	const char *k;
	json_t *v;

	if (!json_is_object(root))
		return;
	json_object_foreach(root, k, v) {
		if (json_is_string(v))
			wipe((char *)json_string_value(v), json_string_length(v));
	}
}

int control_parse_request(const char *line, size_t len, struct control_request *out,
			  const char **error, pos_err *e)
{
	static const char *const plain_keys[] = { "cmd", NULL };
	static const char *const tid_keys[] = { "cmd", "tid", NULL };
	static const char *const scan_keys[] = { "cmd", "code", NULL };
	static const struct {
		const char *name;
		enum control_cmd cmd;
	} cmds[] = {
		{ "status", CONTROL_STATUS }, { "total", CONTROL_TOTAL }, { "void", CONTROL_VOID },
		{ "cancel", CONTROL_CANCEL }, { "tid", CONTROL_TID },     { "scan", CONTROL_SCAN },
		{ "retry", CONTROL_RETRY },
	};
	const char *err_code = "bad_request", *cmd = NULL, *arg = NULL;
	const char *const *allowed = plain_keys;
	json_t *root = NULL;
	int rc;

	if (error)
		*error = NULL;
	if (!out)
		return err_set(e, POS_EINVAL, "control: no output");
	memset(out, 0, sizeof *out);
	if (!line) {
		rc = err_set(e, POS_EINVAL, "empty request");
		goto fail;
	}
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > CONTROL_MAX_LINE) {
		err_code = "line_too_long";
		rc = err_set(e, POS_ETOOBIG, "request longer than %d bytes", CONTROL_MAX_LINE);
		goto fail;
	}
	if (len == 0) {
		rc = err_set(e, POS_EINVAL, "empty request");
		goto fail;
	}
	rc = jsonx_parse(line, len, CONTROL_MAX_LINE, CONTROL_JSON_DEPTH, &root, e);
	if (rc < 0) {
		err_code = "bad_json";
		goto fail;
	}
	if (!json_is_object(root)) {
		rc = err_set(e, POS_EINVAL, "a request is a JSON object");
		goto fail;
	}
	if ((rc = jsonx_str(root, "cmd", 1, 16, &cmd, e)) < 0)
		goto fail;
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(cmd, cmds[i].name) == 0)
			out->cmd = cmds[i].cmd;
	if (!out->cmd) {
		err_code = "unknown_command";
		rc = err_set(e, POS_EINVAL,
			     "unknown cmd (status, total, void, cancel, tid or scan)");
		goto fail;
	}
	if (out->cmd == CONTROL_TID)
		allowed = tid_keys;
	else if (out->cmd == CONTROL_SCAN)
		allowed = scan_keys;
	if ((rc = jsonx_only_keys(root, allowed, e)) < 0)
		goto fail;
	if (out->cmd == CONTROL_TID || out->cmd == CONTROL_SCAN) {
		const char *key = out->cmd == CONTROL_TID ? "tid" : "code";
		if ((rc = jsonx_str(root, key, 1, CONTROL_ARG_MAX, &arg, e)) < 0)
			goto fail;
		if (!*arg) {
			rc = err_set(e, POS_EINVAL, "field '%s' is empty", key);
			goto fail;
		}
		memcpy(out->arg, arg, strlen(arg) + 1);
	}
	control_wipe_strings(root);
	json_decref(root);
	return 0;
fail:
	control_wipe_strings(root);
	json_decref(root);
	control_request_wipe(out);
	if (error)
		*error = err_code;
	return rc < 0 ? rc : POS_EINVAL;
}

json_t *control_error(const char *code, const char *detail)
{
	return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", code ? code : "error", "detail",
			 detail ? detail : "");
}

/* ------------------------------------------------------------ clients */

static void control_client_drop(struct control_client *cl, const char *why);

static void control_client_free(struct control_client *cl)
{
	if (!cl)
		return;
	if (cl->rd)
		event_free(cl->rd);
	if (cl->wr)
		event_free(cl->wr);
	if (cl->out)
		evbuffer_free(cl->out);
	if (cl->fd >= 0)
		close(cl->fd);
	wipe(cl->in, sizeof cl->in);
	free(cl);
}

/* Takes the client off the live list at once (no more events reach it)
 * and frees it from the loop, outside any callback that may still hold it. */
static void control_client_drop(struct control_client *cl, const char *why)
{
	struct control *c = cl->ctl;

	if (cl->doomed)
		return;
	if (why)
		log_info("control_client_dropped", "reason=%s", why);
	cl->doomed = true;
	event_del(cl->rd);
	event_del(cl->wr);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	c->nclients--;
	cl->prev = NULL;
	cl->next = c->doomed;
	c->doomed = cl;
	event_active(c->reap, EV_TIMEOUT, 1);
}

static void control_on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;

	(void)fd;
	(void)what;
	while (c->doomed) {
		struct control_client *cl = c->doomed;
		c->doomed = cl->next;
		control_client_free(cl);
	}
}

/* Queues one JSON line; drops the client when it is not reading. */
static void control_client_send(struct control_client *cl, const json_t *msg)
{
	char *s;
	size_t n;

	if (cl->doomed)
		return;
	s = jsonx_dump(msg);
	if (!s) {
		control_client_drop(cl, "out_of_memory");
		return;
	}
	n = strlen(s);
	if (evbuffer_get_length(cl->out) + n + 1 > CONTROL_OUT_MAX) {
		free(s);
		control_client_drop(cl, "not_reading");
		return;
	}
	if (evbuffer_add(cl->out, s, n) != 0 || evbuffer_add(cl->out, "\n", 1) != 0) {
		free(s);
		control_client_drop(cl, "out_of_memory");
		return;
	}
	free(s);
	event_add(cl->wr, NULL);
}

static void control_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct control_client *cl = arg;

	(void)what;
	while (evbuffer_get_length(cl->out) > 0) {
		struct evbuffer_iovec v;
		ssize_t n;

		if (evbuffer_peek(cl->out, -1, NULL, &v, 1) < 1)
			break;
		n = send(fd, v.iov_base, v.iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return; /* still armed: the loop calls again when writable */
			control_client_drop(cl, NULL);
			return;
		}
		evbuffer_drain(cl->out, (size_t)n);
	}
	event_del(cl->wr);
	if (cl->closing)
		control_client_drop(cl, NULL);
}

static void control_handle_line(struct control_client *cl, const char *line, size_t len)
{
	struct control *c = cl->ctl;
	struct control_request req;
	const char *code = NULL;
	json_t *reply;
	pos_err e;

	if (control_parse_request(line, len, &req, &code, &e) < 0) {
		reply = control_error(code, e.msg);
	} else {
		reply = c->fn ? c->fn(&req, c->arg) : NULL;
		if (!reply)
			reply = control_error("internal", "the agent could not answer");
	}
	control_request_wipe(&req);
	if (reply)
		control_client_send(cl, reply);
	json_decref(reply);
}

static void control_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct control_client *cl = arg;
	ssize_t n;
	size_t start = 0;
	char *nl;

	(void)what;
	n = recv(fd, cl->in + cl->inlen, sizeof cl->in - cl->inlen, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		control_client_drop(cl, NULL);
		return;
	}
	if (n == 0) {
		/* The peer is done sending; answer what it sent, then close. */
		event_del(cl->rd);
		cl->closing = true;
		if (evbuffer_get_length(cl->out) == 0)
			control_client_drop(cl, NULL);
		return;
	}
	cl->inlen += (size_t)n;
	while (!cl->doomed && !cl->closing &&
	       (nl = memchr(cl->in + start, '\n', cl->inlen - start)) != NULL) {
		size_t len = (size_t)(nl - (cl->in + start));
		/* Blank lines (a client's keep-alive, a stray CRLF) get no reply. */
		if (len > 1 || (len == 1 && cl->in[start] != '\r'))
			control_handle_line(cl, cl->in + start, len);
		start += len + 1;
	}
	if (cl->doomed)
		return;
	if (start > 0) {
		size_t rest = cl->inlen - start;
		memmove(cl->in, cl->in + start, rest);
		/* The consumed lines may have held a TID. */
		wipe(cl->in + rest, cl->inlen - rest);
		cl->inlen = rest;
	}
	if (cl->inlen == sizeof cl->in) {
		json_t *r = control_error("line_too_long", "request longer than 4096 bytes");
		wipe(cl->in, sizeof cl->in);
		cl->inlen = 0;
		if (r)
			control_client_send(cl, r);
		json_decref(r);
		if (cl->doomed)
			return;
		/* No way to find the next line start: finish and close. */
		event_del(cl->rd);
		cl->closing = true;
		if (evbuffer_get_length(cl->out) == 0)
			control_client_drop(cl, NULL);
	}
}

static void control_welcome_client(struct control *c, struct control_client *cl)
{
	json_t *evs, *ev;
	size_t i;

	if (!c->welcome || !(evs = c->welcome(c->arg)))
		return;
	json_array_foreach(evs, i, ev) {
		if (cl->doomed)
			break;
		control_client_send(cl, ev);
	}
	json_decref(evs);
}

static void control_on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct control *c = arg;

	(void)what;
	for (;;) {
		struct control_client *cl;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("control_accept_failed", "error=%d", errno);
			return;
		}
		if (c->nclients >= CONTROL_MAX_CLIENTS) {
			log_warn("control_client_refused", "reason=too_many_clients max=%d",
				 CONTROL_MAX_CLIENTS);
			close(fd);
			continue;
		}
		cl = calloc(1, sizeof *cl);
		if (!cl) {
			close(fd);
			continue;
		}
		cl->ctl = c;
		cl->fd = fd;
		cl->out = evbuffer_new();
		cl->rd = event_new(c->base, fd, EV_READ | EV_PERSIST, control_on_read, cl);
		cl->wr = event_new(c->base, fd, EV_WRITE | EV_PERSIST, control_on_write, cl);
		if (!cl->out || !cl->rd || !cl->wr || event_add(cl->rd, NULL) != 0) {
			control_client_free(cl);
			continue;
		}
		cl->next = c->clients;
		if (c->clients)
			c->clients->prev = cl;
		c->clients = cl;
		c->nclients++;
		control_welcome_client(c, cl);
	}
}

void control_set_welcome(struct control *c, control_welcome_fn fn)
{
	if (c)
		c->welcome = fn;
}

void control_broadcast(struct control *c, const json_t *ev)
{
	struct control_client *cl, *next;

	if (!c || !ev)
		return;
	for (cl = c->clients; cl; cl = next) {
		next = cl->next;
		if (!cl->closing)
			control_client_send(cl, ev);
	}
}

size_t control_clients(const struct control *c)
{
	return c ? c->nclients : 0;
}

/* ------------------------------------------------------------ socket */

/* A socket file left by a killed agent is removed; one that still
 * answers belongs to a running agent and is not taken over. */
static int control_clear_path(const char *path, pos_err *e)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, busy;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : err_set(e, POS_EIO, "control socket %s: %s", path,
						     strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return err_set(e, POS_EIO, "control socket %s exists and is not a socket", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, POS_EIO, "control socket: %s", strerror(errno));
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	busy = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	if (busy)
		return err_set(e, POS_EIO, "control socket %s: another agent is listening on it", path);
	if (unlink(path) != 0 && errno != ENOENT)
		return err_set(e, POS_EIO, "control socket %s: cannot remove stale file: %s", path,
			       strerror(errno));
	return 0;
}

int control_new(struct event_base *base, const char *path, control_handler_fn fn, void *arg,
		struct control **out, pos_err *e)
{
	struct control *c = NULL;
	struct sockaddr_un sa;
	struct stat st;
	mode_t old;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "control: no output");
	*out = NULL;
	if (!base || !path || !*path)
		return err_set(e, POS_EINVAL, "control: needs an event base and a path");
	if (strlen(path) >= sizeof sa.sun_path)
		return err_set(e, POS_ETOOBIG, "control socket path longer than %zu characters",
			       sizeof sa.sun_path - 1);
	if ((rc = control_clear_path(path, e)) < 0)
		return rc;
	c = calloc(1, sizeof *c);
	if (!c)
		return err_set(e, POS_ENOMEM, "control: out of memory");
	c->base = base;
	c->fn = fn;
	c->arg = arg;
	memcpy(c->path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		rc = err_set(e, POS_EIO, "control socket: %s", strerror(errno));
		goto fail;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* The node is born 0660: no moment where others could connect. */
	old = umask(0117);
	rc = bind(c->fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (rc != 0) {
		rc = err_set(e, POS_EIO, "control socket %s: %s", path, strerror(errno));
		goto fail;
	}
	if (chmod(path, 0660) != 0 || stat(path, &st) != 0) {
		rc = err_set(e, POS_EIO, "control socket %s: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	if (listen(c->fd, 16) != 0) {
		rc = err_set(e, POS_EIO, "control socket %s: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	c->accept_ev = event_new(base, c->fd, EV_READ | EV_PERSIST, control_on_accept, c);
	c->reap = event_new(base, -1, 0, control_on_reap, c);
	if (!c->accept_ev || !c->reap || event_add(c->accept_ev, NULL) != 0) {
		rc = err_set(e, POS_ENOMEM, "control: cannot create events");
		unlink(path);
		goto fail;
	}
	*out = c;
	return 0;
fail:
	if (c && c->accept_ev)
		event_free(c->accept_ev);
	if (c && c->reap)
		event_free(c->reap);
	if (c && c->fd >= 0)
		close(c->fd);
	free(c);
	return rc;
}

void control_free(struct control *c)
{
	struct stat st;

	if (!c)
		return;
	while (c->clients)
		control_client_drop(c->clients, NULL);
	control_on_reap(-1, 0, c);
	if (c->accept_ev)
		event_free(c->accept_ev);
	if (c->reap)
		event_free(c->reap);
	if (c->fd >= 0)
		close(c->fd);
	/* Only our own node: a newer agent may have replaced it. */
	if (stat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	free(c);
}
