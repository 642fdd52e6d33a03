#include "vendor.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keys.h"
#include "log.h"
#include "periodic.h"
#include "store_vendor.h"
#include "timeutil.h"

/*
 * The outbox: calls to vendor backends that the writer queued in the
 * database (options for a message, a reschedule the customer picked). One
 * thread with its own store connection makes them with libcurl, so no
 * worker's loop ever waits for a backend. A call leaves the outbox only
 * when the backend answered 2xx and what it answered is stored; until
 * then it is retried with a doubling wait (at most [vendors] retry_max_s),
 * also after a restart, with the same Idempotency-Key, so the backend sees
 * one reschedule however often central had to ask. A 4xx other than 408
 * and 429 is final: the call leaves the outbox and the customer is told.
 */

#define OB_BATCH 8
#define OB_IDLE_MS 200
#define OB_REPLY_MAX 65536
#define OB_OPTIONS_MAX 20

struct vendor_outbox {
	struct periodic *calls;
	struct store *s;
	struct store_outbox_job jobs[OB_BATCH]; /* the calls' thread's own */
	unsigned char k[32];
	long timeout_s;
	long retry_max_s;
	/* The learned relations' thread, with its own connection. */
	struct periodic *relations;
	struct store *rel_s;
	long rel_min_baskets;
	double rel_min_lift;
	int rel_per_item;
};

struct ob_buf {
	char *p;
	size_t n;
	bool over;
};

static size_t ob_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct ob_buf *b = arg;
	size_t n = size * nmemb;
	char *q;

	if (b->n + n > OB_REPLY_MAX) {
		b->over = true;
		return 0;
	}
	if (!(q = realloc(b->p, b->n + n + 1)))
		return 0;
	b->p = q;
	memcpy(b->p + b->n, ptr, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

/* Makes the call; *status the HTTP status (0: none), reply its body. */
static int ob_call(struct vendor_outbox *o, const struct store_outbox_job *j, const char *body,
		   long *status, struct ob_buf *reply, pos_err *e)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[STORE_VENDOR_URL_MAX + STORE_VENDOR_REF_MAX + 40], sig[VENDOR_SIG_B64_LEN + 1];
	char line[STORE_VENDOR_URL_MAX + 64], vp[VENDOR_VP_LEN + 1];
	long long ts = (long long)(time_now_ms() / 1000);
	bool post = strcmp(j->kind, "reschedule") == 0;
	size_t blen = body ? strlen(body) : 0;
	const char *base = j->v.backend;
	size_t bl = strlen(base);
	CURLcode cr;
	int rc = 0;

	*status = 0;
	if (!c)
		return err_set(e, POS_ENOMEM, "curl_easy_init failed");
	while (bl && base[bl - 1] == '/')
		bl--;
	snprintf(url, sizeof url, "%.*s/activities/%s/%s", (int)bl, base, j->ref,
		 post ? "reschedule" : "options");
	if ((rc = vendor_sign(j->v.secret, ts, body ? body : "", blen, sig, e)) < 0)
		goto out;
	vendor_pseudonym(o->k, j->v.id, j->hhid, vp);
	snprintf(line, sizeof line, "X-Pos-Timestamp: %lld", ts);
	h = curl_slist_append(h, line);
	snprintf(line, sizeof line, "X-Pos-Signature: %s", sig);
	h = curl_slist_append(h, line);
	snprintf(line, sizeof line, "X-Pos-Customer: %s", vp);
	h = curl_slist_append(h, line);
	if (post) {
		snprintf(line, sizeof line, "Idempotency-Key: %s", j->idem);
		h = curl_slist_append(h, line);
		h = curl_slist_append(h, "Content-Type: application/json");
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, o->timeout_s);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ob_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
	if (post) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
	}
	if ((cr = curl_easy_perform(c)) != CURLE_OK) {
		rc = err_set(e, POS_EIO, "%s", curl_easy_strerror(cr));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
out:
	OPENSSL_cleanse(sig, sizeof sig);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}

/* The options a backend answered, checked and kept as a JSON array text
 * of {"id","at"}; NULL when the answer is not that. */
static char *ob_options(const char *reply)
{
	json_t *root = json_loads(reply ? reply : "", 0, NULL), *arr, *o, *out = json_array();
	char *text = NULL;
	int64_t ms;
	size_t i;
	pos_err e = { 0 };

	arr = json_object_get(root, "options");
	if (!json_is_array(arr) || json_array_size(arr) > OB_OPTIONS_MAX || !out)
		goto out;
	json_array_foreach (arr, i, o) {
		const char *id = json_string_value(json_object_get(o, "id"));
		const char *at = json_string_value(json_object_get(o, "at"));

		if (!id || !at || !id[0] || strlen(id) > STORE_VENDOR_REF_MAX ||
		    strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") !=
			    strlen(id) ||
		    time_parse_rfc3339(at, 0, &ms, &e) < 0)
			goto out;
		json_array_append_new(out, json_pack("{s:s, s:s}", "id", id, "at", at));
	}
	text = json_dumps(out, JSON_COMPACT);
	if (text && strlen(text) > STORE_OUTBOX_BODY_MAX) {
		free(text);
		text = NULL;
	}
out:
	json_decref(out);
	json_decref(root);
	return text;
}

static void ob_one(struct vendor_outbox *o, const struct store_outbox_job *j)
{
	struct ob_buf reply = { 0 };
	json_t *in = NULL, *send = NULL;
	char *body = NULL, *opts = NULL, vp[VENDOR_VP_LEN + 1], qb[256];
	const char *why = NULL;
	pos_err e = { 0 };
	long status = 0;
	int64_t at_ms = 0, now, wait;
	int rc;

	if (strcmp(j->kind, "reschedule") == 0) {
		const char *at;

		in = json_loads(j->body, 0, NULL);
		at = json_string_value(json_object_get(in, "at"));
		vendor_pseudonym(o->k, j->v.id, j->hhid, vp);
		if (!at || time_parse_rfc3339(at, 0, &at_ms, &e) < 0 ||
		    !(send = json_pack("{s:O, s:O, s:s}", "option", json_object_get(in, "option"),
				       "at", json_object_get(in, "at"), "customer", vp)) ||
		    !(body = json_dumps(send, JSON_COMPACT))) {
			why = "bad stored body";
			goto retry;
		}
	}
	if ((rc = ob_call(o, j, body, &status, &reply, &e)) < 0) {
		why = e.msg;
		goto retry;
	}
	now = time_now_ms();
	if (status >= 400 && status <= 499 && status != 408 && status != 429) {
		/* Refused for good: asking again would be refused again. */
		if ((rc = store_outbox_refused(o->s, j, now, &e)) < 0) {
			why = e.msg;
			goto retry;
		}
		vendor_count_outbox(VENDOR_CALL_REFUSED);
		log_warn("outbox_refused", "id=%lld kind=%s vendor=%s status=%ld attempts=%d",
			 (long long)j->id, j->kind, j->v.id, status, j->attempts + 1);
		goto out;
	}
	if (status < 200 || status > 299) {
		why = "backend answered non-2xx";
		goto retry;
	}
	if (strcmp(j->kind, "options") == 0) {
		if (!(opts = ob_options(reply.p))) {
			why = "backend's options are not {\"options\":[{\"id\",\"at\"}]}";
			goto retry;
		}
		rc = store_outbox_options_done(o->s, j, opts, now, &e);
	} else {
		rc = store_outbox_reschedule_done(o->s, j, at_ms, now, &e);
	}
	if (rc < 0) {
		why = e.msg;
		goto retry;
	}
	vendor_count_outbox(VENDOR_CALL_DONE);
	log_info("outbox_done", "id=%lld kind=%s vendor=%s status=%ld attempts=%d", (long long)j->id,
		 j->kind, j->v.id, status, j->attempts + 1);
	goto out;
retry:
	wait = 1000LL << (j->attempts < 16 ? j->attempts : 16);
	if (wait > o->retry_max_s * 1000)
		wait = o->retry_max_s * 1000;
	vendor_count_outbox(VENDOR_CALL_RETRIED);
	log_warn("outbox_retry", "id=%lld kind=%s vendor=%s status=%ld attempts=%d wait_ms=%lld why=%s",
		 (long long)j->id, j->kind, j->v.id, status, j->attempts + 1, (long long)wait,
		 log_q(qb, sizeof qb, why ? why : ""));
	if (store_outbox_retry(o->s, j->id, time_now_ms() + wait, &e) < 0)
		log_error("outbox_failed", "id=%lld detail=%s", (long long)j->id,
			  log_q(qb, sizeof qb, e.msg));
out:
	free(opts);
	free(body);
	free(reply.p);
	json_decref(send);
	json_decref(in);
}

/* Makes the calls due, up to OB_BATCH; > 0 when some were (more may be). */
static int ob_calls(void *arg)
{
	struct vendor_outbox *o = arg;
	struct store_outbox_job *jobs = o->jobs;
	pos_err e = { 0 };
	size_t n = 0;

	if (store_outbox_due(o->s, time_now_ms(), jobs, OB_BATCH, &n, &e) < 0) {
		char qb[256];

		log_error("outbox_failed", "detail=%s", log_q(qb, sizeof qb, e.msg));
		n = 0;
	}
	for (size_t i = 0; i < n; i++)
		ob_one(o, &jobs[i]);
	for (size_t i = 0; i < n; i++)
		OPENSSL_cleanse(jobs[i].v.secret, sizeof jobs[i].v.secret);
	return n > 0;
}

/* Relearns the co-purchase relations every [vendors] relations_every_s,
 * the first time one period after the start; its reads never hold the
 * writer, its write is one short unit. */
static int ob_relations(void *arg)
{
	struct vendor_outbox *o = arg;
	pos_err e = { 0 };
	long stored = 0;
	int64_t t0 = time_mono_us();
	int rc;

	if ((rc = store_relations_learn(o->rel_s, o->rel_min_baskets, o->rel_min_lift,
					o->rel_per_item, &stored, &e)) < 0) {
		char qb[256];

		log_error("relations_failed", "code=%s detail=%s", err_name(rc),
			  log_q(qb, sizeof qb, e.msg));
	} else {
		log_info("relations_learned", "relations=%ld latency_us=%lld", stored,
			 (long long)(time_mono_us() - t0));
	}
	return 0;
}

int vendor_outbox_start(const struct cconf *c, struct vendor_outbox **out, pos_err *e)
{
	struct vendor_outbox *o = calloc(1, sizeof *o);
	struct stat st;
	int rc;

	if (!o)
		return err_set(e, POS_ENOMEM, "out of memory");
	o->timeout_s = c->vendor_call_timeout_s;
	o->retry_max_s = c->vendor_retry_max_s;
	if (stat(c->k_vendor, &st) < 0 && (rc = keys_generate_hmac(c->k_vendor, e)) < 0)
		goto fail;
	if ((rc = keys_load_hmac(c->k_vendor, o->k, e)) < 0) {
		err_prefix(e, "k_vendor");
		goto fail;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		rc = err_set(e, POS_ECRYPTO, "libcurl did not start");
		goto fail;
	}
	if ((rc = cconf_store_open(c, CCONF_STORE_WRITE, &o->s, e)) < 0)
		goto fail;
	if ((rc = periodic_start(0, OB_IDLE_MS, ob_calls, o, &o->calls, e)) < 0) {
		err_prefix(e, "the outbox");
		goto fail;
	}
	if (c->vendor_relations_every_s > 0) {
		long every_ms = c->vendor_relations_every_s * 1000;

		o->rel_min_baskets = c->related_min_baskets;
		o->rel_min_lift = (double)c->related_min_lift_pct / 100.0;
		o->rel_per_item = (int)c->related_learned_per_item;
		if ((rc = cconf_store_open(c, CCONF_STORE_WRITE, &o->rel_s, e)) < 0)
			goto fail;
		if ((rc = periodic_start(every_ms, every_ms, ob_relations, o, &o->relations, e)) < 0) {
			err_prefix(e, "the relations");
			goto fail;
		}
	}
	*out = o;
	return 0;
fail:
	vendor_outbox_stop(o);
	return rc;
}

void vendor_outbox_stop(struct vendor_outbox *o)
{
	if (!o)
		return;
	periodic_stop(o->calls);
	periodic_stop(o->relations);
	store_close(o->s);
	store_close(o->rel_s);
	OPENSSL_cleanse(o->k, sizeof o->k);
	free(o);
}
