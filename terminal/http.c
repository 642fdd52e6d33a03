#include "http.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A bigger answer than this is not one central sends: fail the request
 * rather than grow a buffer for whoever is on the other end. */
#define HTTP_BODY_MAX (64 * 1024)
#define HTTP_URL_MAX 2048
#define HTTP_PATH_MAX 1024
#define HTTP_REQ_BODY_MAX (8 * 1024 * 1024)
/* One lane talks to one central: a few connections are plenty, and a cap
 * keeps a burst of retries from opening a socket each. */
#define HTTP_MAX_HOST_CONNS 4
#define HTTP_TIMEOUT_MAX_MS (10L * 60 * 1000)
/* A failed first URL is tried again after this long; meanwhile requests
 * start at the one that answered. */
#define HTTP_PRIMARY_RETRY_MS 5000
/* Less time than this left: no point trying the next URL. */
#define HTTP_FAILOVER_MIN_MS 20
#define HTTP_HEADER_MAX 128

struct http;

/* One per socket libcurl asks us to watch; attached with curl_multi_assign. */
struct http_sock {
	struct http *h;
	curl_socket_t fd;
	struct event *ev;
	struct http_sock *prev, *next;
};

struct http_req {
	struct http *h;
	CURL *easy;
	struct curl_slist *hdrs;
	char *path;
	char *body; /* own copy: a failover sends it again; NULL for GET */
	size_t body_len;
	int64_t deadline_ms; /* monotonic */
	size_t base;         /* index of the URL this attempt went to */
	size_t tries;        /* URLs tried so far */
	char *buf; /* response body, HTTP_BODY_MAX + 1 bytes, NUL-terminated */
	size_t len;
	int overflow;
	char errbuf[CURL_ERROR_SIZE];
	http_done_fn fn;
	void *arg;
	struct http_req *prev, *next;
};

struct http {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	char *bases[HTTP_URLS_MAX]; /* from base_url, in order of preference */
	size_t nbases;
	size_t cur;                 /* where new requests go */
	int64_t primary_retry_ms;   /* when the first URL is tried again */
	char *ca, *cert, *key;
	struct http_req *reqs;
	struct http_sock *socks;
	int pending;
	/* Callbacks may call http_free; while we are inside libcurl or a
	 * callback, freeing is deferred to the outermost frame. */
	int depth;
	int dead;
};

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static CURLcode http_global_rc = CURLE_FAILED_INIT;

static void http_global_init(void)
{
	http_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Refuses a missing or unreadable file now, at start, rather than as a
 * mysterious TLS failure on the first basket. The private key must not be
 * readable by group or others. */
static int http_check_file(const char *what, const char *path, int secret, pos_err *e)
{
	struct stat st;

	if (!path || !*path)
		return err_set(e, POS_EINVAL, "%s: no file given", what);
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, R_OK) != 0)
		return err_set(e, POS_EIO, "%s: cannot read %s", what, path);
	if (secret && (st.st_mode & (S_IRWXG | S_IRWXO)))
		return err_set(e, POS_EPERM, "%s: %s is accessible by group or others (chmod 600)",
			       what, path);
	return 0;
}

static int64_t http_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *http_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void http_sock_free(struct http_sock *s)
{
	struct http *h = s->h;

	if (s->prev)
		s->prev->next = s->next;
	else
		h->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	event_free(s->ev);
	free(s);
}

static void http_req_unlink(struct http_req *r)
{
	struct http *h = r->h;

	if (r->prev)
		r->prev->next = r->next;
	else
		h->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	h->pending--;
}

static void http_req_free(struct http_req *r)
{
	if (!r)
		return;
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	free(r->path);
	if (r->body) {
		memset(r->body, 0, r->body_len);
		free(r->body);
	}
	/* Answers may carry household ids: do not leave them in the heap. */
	if (r->buf) {
		memset(r->buf, 0, r->len);
		free(r->buf);
	}
	free(r);
}

/* Frees everything; only when no libcurl or user frame is on the stack. */
static void http_destroy(struct http *h)
{
	struct http_req *r;

	while ((r = h->reqs) != NULL) {
		curl_multi_remove_handle(h->multi, r->easy);
		http_req_unlink(r);
		http_req_free(r);
	}
	if (h->multi)
		curl_multi_cleanup(h->multi);
	/* libcurl may leave sockets it never told us to forget. */
	while (h->socks)
		http_sock_free(h->socks);
	if (h->timer)
		event_free(h->timer);
	for (size_t i = 0; i < h->nbases; i++)
		free(h->bases[i]);
	free(h->ca);
	free(h->cert);
	free(h->key);
	free(h);
}

static int http_launch(struct http *h, struct http_req *r, size_t base, pos_err *e);

/* A transfer that got no answer from URL r->base: the next URL not tried
 * yet, when there is one and time is left. 1 when relaunched. */
static int http_failover(struct http *h, struct http_req *r)
{
	int64_t now = http_now_ms();
	pos_err e;

	if (r->base == 0)
		h->primary_retry_ms = now + HTTP_PRIMARY_RETRY_MS;
	if (r->base == h->cur && h->nbases > 1)
		h->cur = (r->base + 1) % h->nbases;
	if (r->tries >= h->nbases || r->deadline_ms - now < HTTP_FAILOVER_MIN_MS)
		return 0;
	curl_multi_remove_handle(h->multi, r->easy);
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	r->len = 0;
	r->buf[0] = '\0';
	r->errbuf[0] = '\0';
	return http_launch(h, r, (r->base + 1) % h->nbases, &e) == 0;
}

/* Hands every finished transfer to its callback, exactly once. */
static void http_check_done(struct http *h)
{
	CURLMsg *m;
	int left;

	while (!h->dead && (m = curl_multi_info_read(h->multi, &left)) != NULL) {
		struct http_req *r;
		char *priv = NULL;
		long status = 0;
		const char *why = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		CURLcode rc = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		r = (struct http_req *)(void *)priv;
		if (!r)
			continue;
		if (rc == CURLE_OK) {
			curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
			h->cur = r->base;
		} else if (r->overflow) {
			why = "response body over the size limit";
		} else {
			if (http_failover(h, r))
				continue;
			why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
		}
		if (r->easy)
			curl_multi_remove_handle(h->multi, r->easy);
		http_req_unlink(r);
		r->fn(status, status ? r->buf : NULL, status ? r->len : 0,
		      status ? NULL : (why ? why : "no answer"), r->arg);
		http_req_free(r);
	}
}

/* One step of libcurl, then the completions it produced. */
static void http_drive(struct http *h, curl_socket_t fd, int action)
{
	int running = 0;

	h->depth++;
	curl_multi_socket_action(h->multi, fd, action, &running);
	http_check_done(h);
	h->depth--;
	if (h->dead && h->depth == 0)
		http_destroy(h);
}

static void http_on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	struct http_sock *s = arg;
	int action = 0;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	/* s may be freed inside: only h is used afterwards. */
	http_drive(s->h, fd, action);
}

static void http_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	http_drive(arg, CURL_SOCKET_TIMEOUT, 0);
}

static int http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http *h = userp;
	struct http_sock *s = socketp;
	short kind = EV_PERSIST;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			curl_multi_assign(h->multi, fd, NULL);
			http_sock_free(s);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (!s) {
		s = calloc(1, sizeof *s);
		if (!s)
			return -1;
		s->h = h;
		s->fd = fd;
		s->ev = event_new(h->base, fd, kind, http_on_socket_event, s);
		if (!s->ev) {
			free(s);
			return -1;
		}
		s->next = h->socks;
		if (h->socks)
			h->socks->prev = s;
		h->socks = s;
		curl_multi_assign(h->multi, fd, s);
	} else {
		event_del(s->ev);
		if (event_assign(s->ev, h->base, fd, kind, http_on_socket_event, s) != 0)
			return -1;
	}
	return event_add(s->ev, NULL) == 0 ? 0 : -1;
}

static int http_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http *h = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(h->timer);
		return 0;
	}
	/* Even 0 goes through the loop: libcurl must not be re-entered from
	 * inside its own callback. */
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	return evtimer_add(h->timer, &tv) == 0 ? 0 : -1;
}

static size_t http_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_req *r = arg;
	size_t n = size * nmemb;

	if (n > HTTP_BODY_MAX - r->len) {
		r->overflow = 1;
		return 0; /* makes libcurl fail the transfer */
	}
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return n;
}

/* Splits the space-separated list into h->bases, each https:// and short
 * enough, without a trailing slash (it would double the path's). */
static int http_parse_urls(struct http *h, const char *list, pos_err *e)
{
	const char *p = list;

	while (*p) {
		size_t n;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		n = strcspn(p, " \t");
		if (h->nbases >= HTTP_URLS_MAX)
			return err_set(e, POS_EINVAL, "central url: more than %d URLs", HTTP_URLS_MAX);
		/* Baskets leave the terminal only over verified TLS. */
		if (n <= 8 || strncmp(p, "https://", 8) != 0)
			return err_set(e, POS_EINVAL, "central url must start with https://");
		if (n >= HTTP_URL_MAX - HTTP_PATH_MAX)
			return err_set(e, POS_EINVAL, "central url too long");
		h->bases[h->nbases] = strndup(p, n);
		if (!h->bases[h->nbases])
			return err_set(e, POS_ENOMEM, "http: out of memory");
		while (n > 8 && h->bases[h->nbases][n - 1] == '/')
			h->bases[h->nbases][--n] = '\0';
		h->nbases++;
		p += strcspn(p, " \t");
	}
	if (h->nbases == 0)
		return err_set(e, POS_EINVAL, "central url must start with https://");
	return 0;
}

int http_new(struct event_base *base, const struct http_opts *o, struct http **out, pos_err *e)
{
	struct http *h = NULL;
	int rc;

	*out = NULL;
	if (!base || !o || !o->base_url)
		return err_set(e, POS_EINVAL, "http: no event base or central url");
	if ((rc = http_check_file("ca", o->ca, 0, e)) < 0 ||
	    (rc = http_check_file("cert", o->cert, 0, e)) < 0 ||
	    (rc = http_check_file("key", o->key, 1, e)) < 0)
		return rc;
	pthread_once(&http_once, http_global_init);
	if (http_global_rc != CURLE_OK)
		return err_set(e, POS_EIO, "curl_global_init: %s", curl_easy_strerror(http_global_rc));

	h = calloc(1, sizeof *h);
	if (!h)
		return err_set(e, POS_ENOMEM, "http: out of memory");
	h->base = base;
	if ((rc = http_parse_urls(h, o->base_url, e)) < 0)
		goto out;
	h->ca = http_strdup(o->ca);
	h->cert = http_strdup(o->cert);
	h->key = http_strdup(o->key);
	if (!h->ca || !h->cert || !h->key) {
		rc = err_set(e, POS_ENOMEM, "http: out of memory");
		goto out;
	}
	h->timer = evtimer_new(base, http_on_timer, h);
	h->multi = curl_multi_init();
	if (!h->timer || !h->multi) {
		rc = err_set(e, POS_ENOMEM, "http: cannot create timer or curl multi handle");
		goto out;
	}
	if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, http_socket_cb) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, http_timer_cb) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)HTTP_MAX_HOST_CONNS) !=
		    CURLM_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)HTTP_MAX_HOST_CONNS) != CURLM_OK) {
		rc = err_set(e, POS_EIO, "http: cannot configure curl multi handle");
		goto out;
	}
	*out = h;
	h = NULL;
	rc = 0;
out:
	if (h)
		http_destroy(h);
	return rc;
}

void http_free(struct http *h)
{
	struct http_req *r;

	if (!h)
		return;
	if (h->depth > 0) {
		/* Called from one of our callbacks: cancel now, free on the way out. */
		while ((r = h->reqs) != NULL) {
			curl_multi_remove_handle(h->multi, r->easy);
			http_req_unlink(r);
			http_req_free(r);
		}
		h->dead = 1;
		return;
	}
	http_destroy(h);
}

void http_cancel(struct http *h, void *arg)
{
	struct http_req *r, *next;

	if (!h)
		return;
	for (r = h->reqs; r; r = next) {
		next = r->next;
		if (r->arg != arg)
			continue;
		curl_multi_remove_handle(h->multi, r->easy);
		http_req_unlink(r);
		http_req_free(r);
	}
}

/* (Re)creates r's transfer against URL number base and starts it with
 * what is left of its time. */
static int http_launch(struct http *h, struct http_req *r, size_t base, pos_err *e)
{
	char url[HTTP_URL_MAX];
	CURLcode c = CURLE_OK;
	long left = (long)(r->deadline_ms - http_now_ms());
	int ul;

	if (left < 1)
		left = 1;
	ul = snprintf(url, sizeof url, "%s%s", h->bases[base], r->path);
	if (ul < 0 || (size_t)ul >= sizeof url)
		return err_set(e, POS_EINVAL, "http: url too long");
	r->base = base;
	r->tries++;
	r->easy = curl_easy_init();
	if (!r->easy)
		return err_set(e, POS_ENOMEM, "http: out of memory");

#define HTTP_SET(opt, val)                                            \
	do {                                                          \
		if (c == CURLE_OK)                                    \
			c = curl_easy_setopt(r->easy, opt, val);      \
	} while (0)
	HTTP_SET(CURLOPT_URL, url);
	HTTP_SET(CURLOPT_PRIVATE, (void *)r);
	HTTP_SET(CURLOPT_ERRORBUFFER, r->errbuf);
	HTTP_SET(CURLOPT_NOSIGNAL, 1L);
	HTTP_SET(CURLOPT_PROTOCOLS_STR, "https");
	HTTP_SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	HTTP_SET(CURLOPT_FOLLOWLOCATION, 0L);
	HTTP_SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	HTTP_SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
	HTTP_SET(CURLOPT_CAINFO, h->ca);
	/* Only the retailer's CA: never the system store as well. */
	HTTP_SET(CURLOPT_CAPATH, (char *)NULL);
	HTTP_SET(CURLOPT_SSLCERT, h->cert);
	HTTP_SET(CURLOPT_SSLCERTTYPE, "PEM");
	HTTP_SET(CURLOPT_SSLKEY, h->key);
	HTTP_SET(CURLOPT_SSLKEYTYPE, "PEM");
	HTTP_SET(CURLOPT_SSL_VERIFYPEER, 1L);
	HTTP_SET(CURLOPT_SSL_VERIFYHOST, 2L);
	HTTP_SET(CURLOPT_TIMEOUT_MS, left);
	/* Another URL to go to: keep time for it. */
	if (r->tries < h->nbases)
		HTTP_SET(CURLOPT_CONNECTTIMEOUT_MS, left / 2 > 0 ? left / 2 : 1L);
	HTTP_SET(CURLOPT_TCP_KEEPALIVE, 1L);
	HTTP_SET(CURLOPT_HTTPHEADER, r->hdrs);
	HTTP_SET(CURLOPT_WRITEFUNCTION, http_write_cb);
	HTTP_SET(CURLOPT_WRITEDATA, (void *)r);
	if (r->body) {
		HTTP_SET(CURLOPT_POST, 1L);
		HTTP_SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
		HTTP_SET(CURLOPT_POSTFIELDS, r->body);
	} else {
		HTTP_SET(CURLOPT_HTTPGET, 1L);
	}
#undef HTTP_SET
	if (c != CURLE_OK)
		return err_set(e, POS_EIO, "http: curl option refused: %s", curl_easy_strerror(c));
	if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK)
		return err_set(e, POS_EIO, "http: cannot start request");
	return 0;
}

/* The id rule of a store or terminal: the header carries nothing else. */
static int http_terminal_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++) {
		char ch = s[n];
		if (n >= 64 || !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
				 (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return 0;
	}
	return n > 0;
}

static int http_start(struct http *h, const char *path, const char *terminal, const char *body,
		      size_t len, long timeout_ms, http_done_fn fn, void *arg, pos_err *e)
{
	struct http_req *r = NULL;
	char hdr[HTTP_HEADER_MAX];
	size_t start;
	int rc;

	if (!h || h->dead || !fn || !path)
		return err_set(e, POS_EINVAL, "http: bad request arguments");
	size_t pl = strnlen(path, HTTP_PATH_MAX);
	if (path[0] != '/' || pl >= HTTP_PATH_MAX)
		return err_set(e, POS_EINVAL, "http: path must start with / and be short");
	if (body && len > HTTP_REQ_BODY_MAX)
		return err_set(e, POS_ETOOBIG, "http: request body over %d bytes", HTTP_REQ_BODY_MAX);
	if (timeout_ms <= 0 || timeout_ms > HTTP_TIMEOUT_MAX_MS)
		return err_set(e, POS_EINVAL, "http: timeout must be 1..%ld ms", HTTP_TIMEOUT_MAX_MS);
	if (terminal && !http_terminal_ok(terminal))
		return err_set(e, POS_EINVAL, "http: terminal id must match [A-Za-z0-9._-]{1,64}");

	r = calloc(1, sizeof *r);
	if (!r)
		return err_set(e, POS_ENOMEM, "http: out of memory");
	r->h = h;
	r->fn = fn;
	r->arg = arg;
	r->buf = malloc(HTTP_BODY_MAX + 1);
	r->path = strdup(path);
	if (body) {
		r->body = malloc(len + 1);
		if (r->body) {
			memcpy(r->body, body, len);
			r->body[len] = '\0';
			r->body_len = len;
		}
	}
	if (!r->buf || !r->path || (body && !r->body)) {
		rc = err_set(e, POS_ENOMEM, "http: out of memory");
		goto out;
	}
	r->buf[0] = '\0';
	r->deadline_ms = http_now_ms() + timeout_ms;
	r->hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (r->hdrs && body)
		r->hdrs = curl_slist_append(r->hdrs, "Content-Type: application/json");
	/* No 100-continue round trip: central answers the body, not the headers. */
	if (r->hdrs && body)
		r->hdrs = curl_slist_append(r->hdrs, "Expect:");
	if (r->hdrs && terminal) {
		snprintf(hdr, sizeof hdr, "Pos-Terminal: %s", terminal);
		r->hdrs = curl_slist_append(r->hdrs, hdr);
	}
	if (!r->hdrs) {
		rc = err_set(e, POS_ENOMEM, "http: out of memory");
		goto out;
	}
	start = h->cur;
	if (start != 0 && http_now_ms() >= h->primary_retry_ms)
		start = 0; /* the first URL may be back */
	if ((rc = http_launch(h, r, start, e)) < 0)
		goto out;
	r->next = h->reqs;
	if (h->reqs)
		h->reqs->prev = r;
	h->reqs = r;
	h->pending++;
	return 0;
out:
	http_req_free(r);
	return rc;
}

int http_post(struct http *h, const char *path, const char *body, size_t len, long timeout_ms,
	      http_done_fn fn, void *arg, pos_err *e)
{
	if (!body)
		return err_set(e, POS_EINVAL, "http: POST without a body");
	return http_start(h, path, NULL, body, len, timeout_ms, fn, arg, e);
}

int http_post_as(struct http *h, const char *path, const char *terminal, const char *body,
		 size_t len, long timeout_ms, http_done_fn fn, void *arg, pos_err *e)
{
	if (!body)
		return err_set(e, POS_EINVAL, "http: POST without a body");
	return http_start(h, path, terminal, body, len, timeout_ms, fn, arg, e);
}

int http_get(struct http *h, const char *path, long timeout_ms, http_done_fn fn, void *arg,
	     pos_err *e)
{
	return http_start(h, path, NULL, NULL, 0, timeout_ms, fn, arg, e);
}

int http_get_as(struct http *h, const char *path, const char *terminal, long timeout_ms,
		http_done_fn fn, void *arg, pos_err *e)
{
	return http_start(h, path, terminal, NULL, 0, timeout_ms, fn, arg, e);
}

const char *http_current_url(const struct http *h)
{
	return h && h->nbases ? h->bases[h->cur] : "";
}

int http_pending(const struct http *h)
{
	return h ? h->pending : 0;
}

void *http_blocking_handle(const char *url, const char *ca, const char *cert, const char *key,
			   long timeout_ms, char *err)
{
	CURL *h = curl_easy_init();

	if (!h)
		return NULL;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
	curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	/* Only the retailer's CA: never the system store as well. */
	curl_easy_setopt(h, CURLOPT_CAPATH, (char *)NULL);
	if (cert) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, key);
	}
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	return h;
}
