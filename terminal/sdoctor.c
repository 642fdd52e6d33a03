#include "sdoctor.h"

#include <curl/curl.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

#include "doctor.h"
#include "http.h"
#include "timeutil.h"
#include "tlog.h"

#define SDOCTOR_TIMEOUT_MS 5000L
#define SDOCTOR_URL_MAX 1024
#define SDOCTOR_ANSWER_MAX 4096

struct sdoctor_answer {
	char buf[SDOCTOR_ANSWER_MAX];
	size_t len;
};

static size_t sdoctor_keep(char *p, size_t size, size_t n, void *arg)
{
	struct sdoctor_answer *a = arg;
	size_t k = size * n, room = sizeof a->buf - 1 - a->len;

	memcpy(a->buf + a->len, p, k < room ? k : room);
	a->len += k < room ? k : room;
	a->buf[a->len] = '\0';
	return k;
}

/* One request with the given client certificate (NULL: none). Returns the
 * HTTP status, 0 with err filled when there was no answer. */
static long sdoctor_request(const char *url, const char *ca, const char *cert, const char *key,
			    const char *post, struct sdoctor_answer *a, char err[CURL_ERROR_SIZE],
			    long *ms)
{
	struct curl_slist *hdrs = NULL;
	CURL *h = NULL;
	long status = 0;
	int64_t t0 = time_mono_us();

	err[0] = '\0';
	a->len = 0;
	a->buf[0] = '\0';
	if (!(h = http_blocking_handle(url, ca, cert, key, SDOCTOR_TIMEOUT_MS, err))) {
		snprintf(err, CURL_ERROR_SIZE, "cannot initialise libcurl");
		return 0;
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sdoctor_keep);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	if (post) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
	}
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	else if (!err[0])
		snprintf(err, CURL_ERROR_SIZE, "no answer");
	*ms = (long)((time_mono_us() - t0) / 1000);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return status;
}

/* The "error" of a JSON error answer, "" when there is none. */
static void sdoctor_error_code(const struct sdoctor_answer *a, char *out, size_t n)
{
	json_t *v = json_loadb(a->buf, a->len, 0, NULL);
	const char *code = v ? json_string_value(json_object_get(v, "error")) : NULL;

	snprintf(out, n, "%s", code ? code : "");
	json_decref(v);
}

/* Central answers at base and takes the controller's certificate: a
 * resolve naming no lane is refused for that (terminal_required) only
 * once central has seen a controller's certificate of a known store;
 * nothing is stored. */
static int sdoctor_url(FILE *out, const struct sconf *c, const char *base, size_t blen)
{
	char url[SDOCTOR_URL_MAX], err[CURL_ERROR_SIZE], code[64];
	struct sdoctor_answer a;
	long st, ms;

	snprintf(url, sizeof url, "%.*s/v1/health", (int)blen, base);
	st = sdoctor_request(url, c->ca, c->cert, c->key, NULL, &a, err, &ms);
	if (st != 200) {
		if (st)
			fprintf(out, "  %s: PROBLEM: answered HTTP %ld\n", url, st);
		else
			fprintf(out, "  %s: PROBLEM: %s\n", url, err);
		return 1;
	}
	fprintf(out, "  %s: OK, HTTP 200 in %ld ms (TLS 1.3)\n", url, ms);
	snprintf(url, sizeof url, "%.*s/v1/resolve", (int)blen, base);
	st = sdoctor_request(url, c->ca, c->cert, c->key, "{}", &a, err, &ms);
	sdoctor_error_code(&a, code, sizeof code);
	if (st == 400 && strcmp(code, "terminal_required") == 0) {
		fprintf(out, "  %s: OK, central takes this certificate as store %s's controller\n",
			url, c->store);
		return 0;
	}
	if (st)
		fprintf(out, "  %s: PROBLEM: the controller's certificate is refused (HTTP %ld %s)\n",
			url, st, code[0] ? code : "");
	else
		fprintf(out, "  %s: PROBLEM: %s\n", url, err);
	return 1;
}

/* Every URL of [central] url: forwarding works while any of them answers. */
static int sdoctor_central(FILE *out, const struct sconf *c)
{
	const char *p = c->url;
	int answered = 0, tried = 0;

	fprintf(out, "central:\n");
	while (*p) {
		size_t n;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		n = strcspn(p, " ");
		tried++;
		if (sdoctor_url(out, c, p, n) == 0)
			answered++;
		p += n;
	}
	if (tried == 0)
		fprintf(out, "  PROBLEM: [central] url names no URL\n");
	return answered == 0;
}

static int sdoctor_cert(FILE *out, const char *label, const char *path)
{
	char when[32];
	long days = 0;
	pos_err e;

	if (doctor_cert_expiry(path, &days, when, &e) < 0) {
		fprintf(out, "  %s: PROBLEM: %s\n", label, e.msg);
		return 1;
	}
	if (days < 0) {
		fprintf(out, "  %s: PROBLEM: expired on %s (%s)\n", label, when, path);
		return 1;
	}
	fprintf(out, "  %s: expires %s, in %ld days%s (%s)\n", label, when, days,
		days < DOCTOR_CERT_WARN_DAYS ? " -- renew soon" : "", path);
	return 0;
}

static int sdoctor_tlog(FILE *out, const struct sconf *c)
{
	struct tlog *t = NULL;
	struct tlog_stats st;
	char when[TIME_RFC3339_LEN];
	struct stat sb;
	pos_err e;
	int bad = 0;

	fprintf(out, "transaction log:\n");
	if (stat(c->tlog, &sb) != 0) {
		fprintf(out, "  %s: not created yet (pos-store run makes it)\n", c->tlog);
		return 0;
	}
	if (tlog_open_readonly(c->tlog, &t, &e) < 0 || tlog_stats(t, &st, &e) < 0) {
		fprintf(out, "  %s: PROBLEM: %s\n", c->tlog, e.msg);
		bad = 1;
		goto out;
	}
	fprintf(out, "  %s: %ld basket(s) logged, %ld waiting for central, %ld set aside%s\n",
		c->tlog, st.total, st.unsent, st.rejected,
		st.rejected ? " (central refused them; see the log, then replay)" : "");
	if (st.oldest_unsent_ms) {
		time_format_rfc3339(st.oldest_unsent_ms, when);
		fprintf(out, "  oldest waiting since %s (%lld s)\n", when,
			(long long)((time_now_ms() - st.oldest_unsent_ms) / 1000));
	}
out:
	tlog_close(t);
	return bad;
}

/* Whether a controller runs on [listen] address: news, not a problem. */
static void sdoctor_listener(FILE *out, const struct sconf *c)
{
	char url[SDOCTOR_URL_MAX], err[CURL_ERROR_SIZE];
	struct sdoctor_answer a;
	long st, ms;

	snprintf(url, sizeof url, "https://%s:%s/v1/health",
		 c->host[0] && strcmp(c->host, "0.0.0.0") != 0 ? c->host : "127.0.0.1", c->port);
	st = sdoctor_request(url, c->tls_ca, NULL, NULL, NULL, &a, err, &ms);
	fprintf(out, "controller:\n  %s: %s\n", c->listen,
		st == 200 ? "a controller answers" : "no controller answering");
}

int sdoctor_run(const struct sconf *c, FILE *out)
{
	int bad = 0;
	pos_err e;

	fprintf(out, "configuration: %s (store %s)\n", c->file, c->store);
	if (sconf_check_files(c, &e) < 0) {
		fprintf(out, "  PROBLEM: %s\n", e.msg);
		bad = 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(out, "  PROBLEM: cannot initialise libcurl\n");
		return 1;
	}
	bad |= sdoctor_central(out, c);
	fprintf(out, "certificates:\n");
	bad |= sdoctor_cert(out, "controller certificate ([central] cert)", c->cert);
	bad |= sdoctor_cert(out, "central's CA ([central] ca)", c->ca);
	if (strcmp(c->tls_cert, c->cert) != 0)
		bad |= sdoctor_cert(out, "certificate shown to lanes ([tls] cert)", c->tls_cert);
	if (strcmp(c->tls_ca, c->ca) != 0)
		bad |= sdoctor_cert(out, "lanes' CA ([tls] ca)", c->tls_ca);
	bad |= sdoctor_tlog(out, c);
	sdoctor_listener(out, c);
	curl_global_cleanup();
	fprintf(out, "%s\n", bad ? "doctor: problems found (see PROBLEM lines)" : "doctor: all OK");
	return bad;
}
