#include "doctor.h"

#include <curl/curl.h>
#include <openssl/asn1.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "acheck.h"
#include "ckey.h"
#include "device.h"
#include "http.h"
#include "keys.h"
#include "spool.h"
#include "timeutil.h"

#define DOCTOR_HEALTH_TIMEOUT_MS 5000L
#define DOCTOR_URL_MAX 1024

int doctor_cert_expiry(const char *path, long *days, char when[32], pos_err *e)
{
	FILE *f = NULL;
	X509 *x = NULL;
	const ASN1_TIME *na;
	struct tm tm;
	int d = 0, secs = 0, rc = 0;

	when[0] = '\0';
	f = fopen(path, "re");
	if (!f)
		return err_set(e, POS_EIO, "cannot open %s", path);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	if (!x) {
		rc = err_set(e, POS_EINVAL, "%s is not a PEM certificate", path);
		goto out;
	}
	na = X509_get0_notAfter(x);
	if (!na || ASN1_TIME_diff(&d, &secs, NULL, na) != 1) {
		rc = err_set(e, POS_EINVAL, "%s: unreadable expiry date", path);
		goto out;
	}
	/* ASN1_TIME_diff splits into whole days and the remaining seconds,
	 * both with the sign of the difference. */
	*days = d;
	if (ASN1_TIME_to_tm(na, &tm) == 1)
		strftime(when, 32, "%Y-%m-%d %H:%M:%S UTC", &tm);
out:
	X509_free(x);
	if (f)
		fclose(f);
	return rc;
}

static int doctor_cert(FILE *out, const char *label, const char *path)
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

static size_t doctor_discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static int doctor_url(FILE *out, const struct aconf *c, const char *base, size_t blen)
{
	char url[DOCTOR_URL_MAX], err[CURL_ERROR_SIZE] = "";
	CURL *h = NULL;
	CURLcode cc = CURLE_FAILED_INIT;
	long status = 0;
	int64_t t0;
	int bad = 1;

	snprintf(url, sizeof url, "%.*s/v1/health", (int)blen, base);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    !(h = http_blocking_handle(url, c->ca, c->cert, c->key, DOCTOR_HEALTH_TIMEOUT_MS, err))) {
		fprintf(out, "  %s: PROBLEM: cannot initialise libcurl\n", url);
		goto out;
	}
	t0 = time_mono_us();
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, doctor_discard);
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		fprintf(out, "  %s: PROBLEM: %s\n", url, err[0] ? err : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		fprintf(out, "  %s: PROBLEM: answered HTTP %ld\n", url, status);
		goto out;
	}
	fprintf(out, "  %s: OK, HTTP 200 in %lld ms (TLS 1.3, terminal certificate accepted)\n",
		url, (long long)((time_mono_us() - t0) / 1000));
	bad = 0;
out:
	if (h)
		curl_easy_cleanup(h);
	return bad;
}

/* Every URL of [central] url (a store controller, then central): the lane
 * works while any of them answers. */
static int doctor_central(FILE *out, const struct aconf *c)
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
		if (doctor_url(out, c, p, n) == 0)
			answered++;
		p += n;
	}
	return tried > 0 && answered == 0;
}

/* central.pub against what central hands out: a kid central no longer
 * opens sets every basket with a customer aside. */
static int doctor_keys(FILE *out, const struct aconf *c)
{
	struct ckey_answer k;
	unsigned char pk[32];
	char kid[KEYS_KID_LEN + 1], url[DOCTOR_URL_MAX];
	pos_err e;

	if (keys_load_public(c->public_key, pk, kid, &e) < 0)
		return 1; /* acheck said so already */
	if (ckey_fetch(c, DOCTOR_HEALTH_TIMEOUT_MS, &k, url, sizeof url, &e) < 0) {
		fprintf(out, "  central.pub: PROBLEM: cannot compare with central's GET /v1/keys: %s\n",
			e.msg);
		return 1;
	}
	if (strcmp(kid, k.kid) == 0) {
		fprintf(out, "  central.pub: OK, kid %s is central's current key (%s)\n", kid, url);
		return 0;
	}
	if (ckey_opens(&k, kid)) {
		fprintf(out, "  central.pub: OK, kid %s still opens at central; its current key is %s "
			     "(the agent refreshes central.pub itself)\n", kid, k.kid);
		return 0;
	}
	fprintf(out, "  central.pub: PROBLEM: %s is kid %s, which central does not open (its key "
		     "is %s); fix: start the agent, which refreshes central.pub from central, or copy "
		     "central.pub from central's home\n", c->public_key, kid, k.kid);
	return 1;
}

static int doctor_spool(FILE *out, const struct aconf *c)
{
	struct spool *s = NULL;
	struct stat st;
	long waiting, aside;
	pos_err e;

	fprintf(out, "spool:\n");
	/* Opening would create it: a missing spool is only news. */
	if (stat(c->spool, &st) != 0) {
		fprintf(out, "  %s: not created yet (the agent makes it at start)\n", c->spool);
		return 0;
	}
	if (spool_open(c->spool, &s, &e) < 0) {
		fprintf(out, "  %s: PROBLEM: %s\n", c->spool, e.msg);
		return 1;
	}
	waiting = spool_count(s);
	aside = spool_count_rejected(s);
	spool_close(s);
	fprintf(out, "  %s: %ld basket(s) waiting for central, %ld set aside (refused by central)\n",
		c->spool, waiting, aside);
	if (aside == 0)
		return 0;
	fprintf(out, "  PROBLEM: %ld basket(s) set aside; fix: `pos-agent spool list -c %s` says "
		     "why, `pos-agent spool retry -c %s` sends them again\n", aside, c->file, c->file);
	return 1;
}

static void doctor_agent(FILE *out, const struct aconf *c)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int up;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	/* aconf refused a path too long for sun_path. */
	size_t n = strnlen(c->socket, sizeof sa.sun_path - 1);
	memcpy(sa.sun_path, c->socket, n);
	up = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	if (fd >= 0)
		close(fd);
	fprintf(out, "agent:\n  %s: %s\n", c->socket,
		up ? "an agent answers on the control socket" : "no agent running");
}

int doctor_run(const struct aconf *c, FILE *out)
{
	int bad = 0;

	fprintf(out, "configuration: %s (store %s, terminal %s)\n", c->file, c->store, c->terminal);
	/* The same agreement check prints: one PROBLEM line each. */
	fflush(out);
	if (acheck_run(c, "  PROBLEM: ", out) > 0)
		bad = 1;
	if (device_doctor(out, c->devices, c->ndevices) > 0)
		bad = 1;
	bad |= doctor_central(out, c);
	bad |= doctor_keys(out, c);
	fprintf(out, "certificates:\n");
	bad |= doctor_cert(out, "terminal certificate", c->cert);
	bad |= doctor_cert(out, "CA certificate", c->ca);
	bad |= doctor_spool(out, c);
	doctor_agent(out, c);
	fprintf(out, "%s\n", bad ? "doctor: problems found (see PROBLEM lines)" : "doctor: all OK");
	return bad;
}
