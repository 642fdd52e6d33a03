/*
 * Reconnect storms: what a terminal reconnecting costs central's CPU, with a
 * full TLS 1.3 mutual-auth handshake and with session resumption (the
 * client offers the ticket of its previous connection, as a terminal's
 * libcurl does, and gets a new ticket each time).
 *
 * Each connection: TCP connect, handshake, GET /v1/health, read the answer
 * (which also brings the session tickets), close_notify, close. The
 * server's CPU comes from /proc/PID/task/TID/schedstat before and after each
 * phase of N connections; the cost of the request itself, measured on one
 * kept-alive connection, is subtracted so what remains is the handshake
 * (and the TCP connection).
 *
 * usage: tlsbench --port P --dir TERMINAL_DIR --pid SERVER_PID [--n 1000]
 *        [--only full|resumed]   (one phase alone, e.g. under perf)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchutil.h"

#define TB_PATH_MAX 1024
#define TB_IN_MAX 4096

static const char tb_req[] = "GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n";

/* One request on an open connection; 0 when a whole 200 came back. */
static int tb_request(SSL *ssl)
{
	char in[TB_IN_MAX];
	size_t len = 0;

	if (SSL_write(ssl, tb_req, (int)strlen(tb_req)) <= 0)
		return -1;
	while (len < sizeof in - 1) {
		char *h, *cl;
		int n = SSL_read(ssl, in + len, (int)(sizeof in - 1 - len));
		if (n <= 0)
			return -1;
		len += (size_t)n;
		in[len] = '\0';
		if (!(h = strstr(in, "\r\n\r\n")) || !(cl = strcasestr(in, "\r\nContent-Length:")))
			continue;
		if ((size_t)(h + 4 - in) + (size_t)strtol(cl + 17, NULL, 10) <= len)
			return strncmp(in, "HTTP/1.1 200", 12) == 0 ? 0 : -1;
	}
	return -1;
}

static SSL *tb_connect(SSL_CTX *ctx, const struct sockaddr_in *addr, SSL_SESSION *sess, int *fd)
{
	int one = 1;
	SSL *ssl = NULL;

	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return NULL;
	setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(*fd, (const struct sockaddr *)addr, sizeof *addr) != 0 || !(ssl = SSL_new(ctx)) ||
	    SSL_set_fd(ssl, *fd) != 1 || SSL_set_tlsext_host_name(ssl, "localhost") != 1 ||
	    (sess && SSL_set_session(ssl, sess) != 1) || SSL_connect(ssl) != 1) {
		ERR_print_errors_fp(stderr);
		SSL_free(ssl);
		close(*fd);
		*fd = -1;
		return NULL;
	}
	return ssl;
}

static void tb_close(SSL *ssl, int fd)
{
	if (ssl)
		SSL_shutdown(ssl);
	SSL_free(ssl);
	if (fd >= 0)
		close(fd);
}

/* n connections; with resume, each offers the previous one's session.
 * Returns server CPU seconds spent, -1 on failure; *resumed counts
 * handshakes that did resume. */
static double tb_phase(SSL_CTX *ctx, const struct sockaddr_in *addr, long pid, int n,
		       bool resume, int *resumed)
{
	SSL_SESSION *sess = NULL;
	double c0, c1;

	*resumed = 0;
	if (resume) {
		/* Prime: one full handshake to get a ticket. */
		int fd;
		SSL *ssl = tb_connect(ctx, addr, NULL, &fd);
		if (!ssl || tb_request(ssl) < 0)
			return -1;
		sess = SSL_get1_session(ssl);
		tb_close(ssl, fd);
	}
	c0 = bench_proc_cpu_precise_s(pid);
	for (int i = 0; i < n; i++) {
		int fd;
		SSL *ssl = tb_connect(ctx, addr, sess, &fd);
		if (!ssl || tb_request(ssl) < 0) {
			tb_close(ssl, fd);
			SSL_SESSION_free(sess);
			return -1;
		}
		*resumed += SSL_session_reused(ssl);
		if (resume) {
			SSL_SESSION_free(sess);
			sess = SSL_get1_session(ssl);
		}
		tb_close(ssl, fd);
	}
	c1 = bench_proc_cpu_precise_s(pid);
	SSL_SESSION_free(sess);
	return c1 - c0;
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *only = "";
	char ca[TB_PATH_MAX], crt[TB_PATH_MAX], key[TB_PATH_MAX];
	struct sockaddr_in addr = { .sin_family = AF_INET };
	long pid = 0;
	int port = 0, n = 1000, fd, r_full, r_res;
	double req_s, full_s, res_s, c0, req_us, full_us, res_us;
	SSL_CTX *ctx;
	SSL *ssl;
	uint64_t t0;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0)
			port = (int)strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--dir") == 0)
			dir = argv[i + 1];
		else if (strcmp(argv[i], "--pid") == 0)
			pid = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--n") == 0)
			n = (int)strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--only") == 0)
			only = argv[i + 1];
	}
	if (!dir || port <= 0 || port > 65535 || pid <= 0 || n < 1) {
		fprintf(stderr, "usage: tlsbench --port P --dir TERMINAL_DIR --pid SERVER_PID [--n N]\n");
		return 2;
	}
	snprintf(ca, sizeof ca, "%s/ca.crt", dir);
	snprintf(crt, sizeof crt, "%s/terminal.crt", dir);
	snprintf(key, sizeof key, "%s/terminal.key", dir);
	addr.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, crt) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);

	/* The request alone, on one kept-alive connection. */
	if (!(ssl = tb_connect(ctx, &addr, NULL, &fd)))
		return 1;
	c0 = bench_proc_cpu_precise_s(pid);
	for (int i = 0; i < n; i++)
		if (tb_request(ssl) < 0)
			return 1;
	req_s = bench_proc_cpu_precise_s(pid) - c0;
	tb_close(ssl, fd);

	t0 = bench_now_ns();
	r_full = r_res = 0;
	full_s = strcmp(only, "resumed") == 0 ? 0 : tb_phase(ctx, &addr, pid, n, false, &r_full);
	res_s = strcmp(only, "full") == 0 ? 0 : tb_phase(ctx, &addr, pid, n, true, &r_res);
	if (full_s < 0 || res_s < 0) {
		fprintf(stderr, "tlsbench: a connection failed\n");
		return 1;
	}
	req_us = req_s * 1e6 / n;
	full_us = full_s * 1e6 / n - req_us;
	res_us = res_s * 1e6 / n - req_us;
	printf("TLS 1.3 reconnects, %d each (%.1f s), server CPU per handshake (request cost "
	       "%.1f us subtracted):\n",
	       n, (double)(bench_now_ns() - t0) / 1e9, req_us);
	printf("  full handshake, client certificate: %7.1f us\n", full_us);
	printf("  resumed (ticket):                   %7.1f us  (%d of %d resumed; %.0f%% of full)\n",
	       res_us, r_res, n, 100 * res_us / full_us);
	printf("RESULT {\"tls\":{\"n\":%d,\"full_us\":%.1f,\"resumed_us\":%.1f,\"resumed_count\":%d,"
	       "\"full_resumed_count\":%d,\"request_us\":%.2f}}\n",
	       n, full_us, res_us, r_res, r_full, req_us);
	SSL_CTX_free(ctx);
	return 0;
}
