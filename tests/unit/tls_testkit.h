#ifndef POS_TLS_TESTKIT_H
#define POS_TLS_TESTKIT_H
/*
 * What the agent's HTTPS tests share: certificates made by the openssl CLI
 * in a mkdtemp() folder (a CA, a second CA, a server certificate for
 * 127.0.0.1, a terminal certificate OU=S1/CN=T1 and one from the second CA),
 * and the server side of a TLS 1.3 evhttp test server. Included by one test
 * file each; everything is static.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The test's folder; the test fills it with mkdtemp(). */
static char tmpdir[64];

static inline void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static inline int make_certs(void)
{
	char cmd[4096], full[4200];
	static const char script[] =
		"set -e; cd '%s';"
		"for ca in ca ca2; do"
		" printf '[req]\\ndistinguished_name=dn\\nx509_extensions=v3\\nprompt=no\\n"
		"[dn]\\nCN=Test %%s\\n[v3]\\nbasicConstraints=critical,CA:TRUE\\n"
		"keyUsage=critical,keyCertSign,cRLSign\\nsubjectKeyIdentifier=hash\\n' $ca > $ca.cnf;"
		" openssl req -x509 -config $ca.cnf -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
		"  -nodes -keyout $ca.key -out $ca.crt -days 2;"
		"done;"
		"printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n"
		"extendedKeyUsage=serverAuth\\n' > srv.ext;"
		"printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\n' > cli.ext;"
		"mk() { openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
		"  -keyout $1.key -out $1.csr -subj \"$2\";"
		" openssl x509 -req -in $1.csr -CA $3.crt -CAkey $3.key -set_serial $4 -days 2"
		"  -extfile $5 -out $1.crt; };"
		"mk srv /CN=127.0.0.1 ca 2 srv.ext;"
		"mk cli /O=Test/OU=S1/CN=T1 ca 3 cli.ext;"
		"mk bad /O=Test/OU=S9/CN=T9 ca2 4 cli.ext;"
		"chmod 600 *.key";

	snprintf(cmd, sizeof cmd, script, tmpdir);
	snprintf(full, sizeof full, "( %s ) >/dev/null 2>&1", cmd);
	return system(full) == 0 ? 0 : -1;
}

/* The accepting TLS bufferevent of a test server's evhttp_set_bevcb. */
static inline struct bufferevent *tls_accept_bev(struct event_base *base, SSL_CTX *ctx)
{
	struct bufferevent *bev;

	bev = bufferevent_openssl_socket_new(base, -1, SSL_new(ctx), BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* Answers a JSON body with status. */
static inline void tls_reply(struct evhttp_request *req, int status, const char *body)
{
	struct evbuffer *out = evbuffer_new();

	evbuffer_add(out, body, strlen(body));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, status, "X", out);
	evbuffer_free(out);
}

#endif
