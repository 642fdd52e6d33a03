/* pki: a CA, a server and a terminal certificate that openssl(1) verifies. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "ids.h"
#include "pki.h"

static char dir[] = "/tmp/test_pki.XXXXXX";
static char ca_crt[256], ca_key[256], srv_crt[256], srv_key[256], cli_crt[256], cli_key[256];

static void join(char *out, const char *name)
{
	snprintf(out, 256, "%s/%s", dir, name);
}

static int make_all(void **st)
{
	EVP_PKEY *ck = NULL, *sk = NULL, *tk = NULL;
	X509 *cc = NULL, *sc = NULL, *tc = NULL;
	static const char *const dns[] = { "localhost", NULL };
	static const char *const ips[] = { "127.0.0.1", NULL };
	pos_err e = { 0 };
	int rc = -1;

	(void)st;
	if (!mkdtemp(dir))
		return -1;
	join(ca_crt, "ca.crt");
	join(ca_key, "ca.key");
	join(srv_crt, "server.crt");
	join(srv_key, "server.key");
	join(cli_crt, "terminal.crt");
	join(cli_key, "terminal.key");
	if (pki_make_ca("Test CA", PKI_CA_DAYS, &ck, &cc, &e) < 0 ||
	    pki_issue_server(ck, cc, "localhost", dns, ips, PKI_SERVER_DAYS, &sk, &sc, &e) < 0 ||
	    pki_issue_client(ck, cc, "S1", "T-7.a_b", PKI_CLIENT_DAYS, &tk, &tc, &e) < 0 ||
	    pki_write_cert(ca_crt, cc, &e) < 0 || pki_write_key(ca_key, ck, &e) < 0 ||
	    pki_write_cert(srv_crt, sc, &e) < 0 || pki_write_key(srv_key, sk, &e) < 0 ||
	    pki_write_cert(cli_crt, tc, &e) < 0 || pki_write_key(cli_key, tk, &e) < 0) {
		fprintf(stderr, "# setup failed: %s\n", e.msg);
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_free(ck);
	EVP_PKEY_free(sk);
	EVP_PKEY_free(tk);
	X509_free(cc);
	X509_free(sc);
	X509_free(tc);
	return rc;
}

static int remove_all(void **st)
{
	char cmd[300];

	(void)st;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void openssl_verifies_server_and_client_against_the_ca(void **st)
{
	(void)st;
	assert_int_equal(sh("openssl verify -CAfile '%s' -purpose sslserver '%s' >/dev/null 2>&1",
			    ca_crt, srv_crt),
			 0);
	assert_int_equal(sh("openssl verify -CAfile '%s' -purpose sslclient '%s' >/dev/null 2>&1",
			    ca_crt, cli_crt),
			 0);
	/* The purposes are not interchangeable. */
	assert_int_not_equal(sh("openssl verify -CAfile '%s' -purpose sslserver '%s' >/dev/null 2>&1",
				ca_crt, cli_crt),
			     0);
}

static void a_certificate_from_another_ca_does_not_verify(void **st)
{
	EVP_PKEY *k = NULL;
	X509 *c = NULL;
	char other[256];
	pos_err e = { 0 };

	(void)st;
	join(other, "other-ca.crt");
	assert_int_equal(pki_make_ca("Other CA", 30, &k, &c, &e), 0);
	assert_int_equal(pki_write_cert(other, c, &e), 0);
	assert_int_not_equal(sh("openssl verify -CAfile '%s' '%s' >/dev/null 2>&1", other, cli_crt),
			     0);
	EVP_PKEY_free(k);
	X509_free(c);
}

static void client_subject_carries_store_as_ou_and_terminal_as_cn(void **st)
{
	X509 *x = NULL;
	pos_err e = { 0 };
	char ou[80], cn[80];
	X509_NAME *n;

	(void)st;
	assert_int_equal(pki_load_cert(cli_crt, &x, &e), 0);
	n = X509_get_subject_name(x);
	assert_true(X509_NAME_get_text_by_NID(n, NID_organizationalUnitName, ou, sizeof ou) > 0);
	assert_true(X509_NAME_get_text_by_NID(n, NID_commonName, cn, sizeof cn) > 0);
	assert_string_equal(ou, "S1");
	assert_string_equal(cn, "T-7.a_b");
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
	BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	assert_non_null(serial);
	assert_true(BN_num_bits(serial) > 120);
	BN_free(serial);
	X509_free(x);
}

static void server_certificate_names_localhost_and_loopback(void **st)
{
	X509 *x = NULL;
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(pki_load_cert(srv_crt, &x, &e), 0);
	assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	assert_int_not_equal(X509_check_host(x, "example.com", 0, 0, NULL), 1);
	X509_free(x);
}

static void host_names_and_addresses_are_told_apart_and_bad_ones_refused(void **st)
{
	(void)st;
	assert_int_equal(pki_host_kind("central.example.com"), PKI_HOST_DNS);
	assert_int_equal(pki_host_kind("central"), PKI_HOST_DNS);
	assert_int_equal(pki_host_kind("pos-1.store-7.example"), PKI_HOST_DNS);
	assert_int_equal(pki_host_kind("10.0.0.5"), PKI_HOST_IP);
	assert_int_equal(pki_host_kind("fe80::1"), PKI_HOST_IP);
	assert_int_equal(pki_host_kind("10.0.0.256"), PKI_HOST_BAD);
	assert_int_equal(pki_host_kind("bad name"), PKI_HOST_BAD);
	assert_int_equal(pki_host_kind("a,DNS:evil.example"), PKI_HOST_BAD);
	assert_int_equal(pki_host_kind("-lead.example"), PKI_HOST_BAD);
	assert_int_equal(pki_host_kind("trail-.example"), PKI_HOST_BAD);
	assert_int_equal(pki_host_kind("double..dot"), PKI_HOST_BAD);
	assert_int_equal(pki_host_kind("*.example.com"), PKI_HOST_BAD);
	assert_int_equal(pki_host_kind(""), PKI_HOST_BAD);
	assert_true(pki_host_loopback("localhost"));
	assert_true(pki_host_loopback("127.0.0.1"));
	assert_true(pki_host_loopback("::1"));
	assert_false(pki_host_loopback("10.0.0.5"));
}

static void the_server_name_is_its_cn_only_when_its_names_cover_it(void **st)
{
	static const char *const dns[] = { "central.example.com", "localhost", NULL };
	static const char *const ips[] = { "10.0.0.5", "127.0.0.1", NULL };
	EVP_PKEY *ck = NULL, *sk = NULL;
	X509 *cc = NULL, *sc = NULL;
	char name[256];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(pki_make_ca("Names CA", 30, &ck, &cc, &e), 0);
	assert_int_equal(pki_issue_server(ck, cc, "central.example.com", dns, ips, 30, &sk, &sc, &e),
			 0);
	assert_int_equal(pki_server_name(sc, name, sizeof name, &e), 0);
	assert_string_equal(name, "central.example.com");
	assert_int_equal(X509_check_ip_asc(sc, "10.0.0.5", 0), 1);
	X509_free(sc);
	EVP_PKEY_free(sk);
	assert_int_equal(pki_issue_server(ck, cc, "10.0.0.5", dns, ips, 30, &sk, &sc, &e), 0);
	assert_int_equal(pki_server_name(sc, name, sizeof name, &e), 0);
	assert_string_equal(name, "10.0.0.5");
	X509_free(sc);
	EVP_PKEY_free(sk);
	assert_int_equal(pki_issue_server(ck, cc, "elsewhere.example", dns, ips, 30, &sk, &sc, &e),
			 0);
	assert_int_equal(pki_server_name(sc, name, sizeof name, &e), POS_ENOTFOUND);
	X509_free(sc);
	EVP_PKEY_free(sk);
	X509_free(cc);
	EVP_PKEY_free(ck);
}

static void private_keys_are_0600_and_certificates_public(void **st)
{
	const char *keys[] = { ca_key, srv_key, cli_key };
	struct stat sb;

	(void)st;
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(stat(keys[i], &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
	}
	assert_int_equal(stat(ca_crt, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0644);
}

static void loading_a_group_readable_key_is_refused(void **st)
{
	EVP_PKEY *k = NULL;
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(pki_load_key(cli_key, &k, &e), 0);
	EVP_PKEY_free(k);
	k = NULL;
	assert_int_equal(chmod(cli_key, 0640), 0);
	assert_int_equal(pki_load_key(cli_key, &k, &e), POS_EPERM);
	assert_null(k);
	assert_non_null(strstr(e.msg, "chmod 600"));
	assert_int_equal(chmod(cli_key, 0600), 0);
}

static void existing_files_are_never_overwritten(void **st)
{
	X509 *x = NULL;
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(pki_load_cert(ca_crt, &x, &e), 0);
	assert_int_equal(pki_write_cert(srv_crt, x, &e), POS_ECONFLICT);
	X509_free(x);
	x = NULL;
	assert_int_equal(pki_load_cert(srv_crt, &x, &e), 0);
	assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	X509_free(x);
}

static void ca_lasts_ten_years_and_client_one(void **st)
{
	time_t ca_end = 0, cli_end = 0, now = time(NULL);
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(pki_cert_not_after(ca_crt, &ca_end, &e), 0);
	assert_int_equal(pki_cert_not_after(cli_crt, &cli_end, &e), 0);
	assert_true(ca_end > now + 3649L * 86400 && ca_end <= now + 3651L * 86400);
	assert_true(cli_end > now + 364L * 86400 && cli_end <= now + 366L * 86400);
	assert_int_equal(pki_cert_not_after("/nonexistent.crt", &ca_end, &e), POS_ENOTFOUND);
}

static void bad_store_or_terminal_ids_are_refused(void **st)
{
	static const char *const bad[] = { "", "a b", "S1/..", "x,CN=evil", "é",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 65 */ };
	EVP_PKEY *ck = NULL, *k = NULL;
	X509 *cc = NULL, *c = NULL;
	pos_err e = { 0 };

	(void)st;
	assert_true(ids_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	assert_int_equal(pki_make_ca(NULL, 30, &ck, &cc, &e), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_false(ids_valid(bad[i]));
		assert_int_equal(pki_issue_client(ck, cc, bad[i], "T1", 30, &k, &c, &e), POS_EINVAL);
		assert_int_equal(pki_issue_client(ck, cc, "S1", bad[i], 30, &k, &c, &e), POS_EINVAL);
		assert_null(c);
	}
	EVP_PKEY_free(ck);
	X509_free(cc);
}

/* X509_verify_cert of cert against the CA alone, or with crl and
 * CRL checking: the verdict serve's handshake would reach. */
static int verify_with(X509 *ca, X509_CRL *crl, X509 *cert)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int err;

	assert_non_null(store);
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_add_cert(store, ca), 1);
	if (crl) {
		assert_int_equal(X509_STORE_add_crl(store, crl), 1);
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	}
	assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
	err = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return err;
}

static long crl_number(X509_CRL *crl)
{
	ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	long v = n ? ASN1_INTEGER_get(n) : -1;

	ASN1_INTEGER_free(n);
	return v;
}

static void a_revoked_terminal_fails_verification_and_the_others_still_pass(void **st)
{
	EVP_PKEY *ck = NULL, *k1 = NULL, *k2 = NULL;
	X509 *ca = NULL, *t1 = NULL, *t2 = NULL;
	X509_CRL *empty = NULL, *crl = NULL, *again = NULL, *loaded = NULL;
	char path[256];
	size_t added = 99;
	pos_err e = { 0 };

	(void)st;
	join(path, "crl.pem");
	assert_int_equal(pki_load_cert(ca_crt, &ca, &e), 0);
	assert_int_equal(pki_load_key(ca_key, &ck, &e), 0);
	assert_int_equal(pki_issue_client(ck, ca, "S1", "T1", 30, &k1, &t1, &e), 0);
	assert_int_equal(pki_issue_client(ck, ca, "S1", "T2", 30, &k2, &t2, &e), 0);

	/* An empty CRL revokes nothing, but is a CRL the check accepts. */
	assert_int_equal(pki_crl_make(ck, ca, NULL, NULL, 0, &empty, &added, &e), 0);
	assert_int_equal(added, 0);
	assert_int_equal(crl_number(empty), 1);
	assert_int_equal(verify_with(ca, empty, t1), X509_V_OK);

	X509 *one[] = { t1 };
	assert_int_equal(pki_crl_make(ck, ca, empty, one, 1, &crl, &added, &e), 0);
	assert_int_equal(added, 1);
	assert_int_equal(crl_number(crl), 2);
	assert_true(pki_crl_revoked(crl, t1));
	assert_false(pki_crl_revoked(crl, t2));
	assert_int_equal(verify_with(ca, crl, t1), X509_V_ERR_CERT_REVOKED);
	assert_int_equal(verify_with(ca, crl, t2), X509_V_OK);
	assert_int_equal(verify_with(ca, NULL, t1), X509_V_OK);

	/* Revoking again adds nothing; the list keeps what it had. */
	X509 *both[] = { t1, t2, t1 };
	assert_int_equal(pki_crl_make(ck, ca, crl, one, 1, &again, &added, &e), 0);
	assert_int_equal(added, 0);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(again)), 1);
	X509_CRL_free(again);
	assert_int_equal(pki_crl_make(ck, ca, crl, both, 3, &again, &added, &e), 0);
	assert_int_equal(added, 1);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(again)), 2);
	assert_int_equal(verify_with(ca, again, t2), X509_V_ERR_CERT_REVOKED);

	/* Written and read back, the CRL is the same list, and openssl(1)
	 * agrees with it. */
	assert_int_equal(pki_write_crl(path, crl, &e), 0);
	assert_int_equal(pki_write_crl(path, crl, &e), 0); /* replaces */
	assert_int_equal(pki_crl_load(path, ca, &loaded, &e), 0);
	assert_true(pki_crl_revoked(loaded, t1));
	assert_false(pki_crl_revoked(loaded, t2));
	assert_int_equal(sh("openssl crl -in '%s' -CAfile '%s' -noout >/dev/null 2>&1", path, ca_crt),
			 0);
	{
		char tpath[256];

		join(tpath, "t1.crt");
		assert_int_equal(pki_write_cert(tpath, t1, &e), 0);
		assert_int_not_equal(sh("openssl verify -crl_check -CAfile '%s' -CRLfile '%s' "
					"'%s' >/dev/null 2>&1",
					ca_crt, path, tpath),
				     0);
		assert_int_equal(sh("openssl verify -crl_check -CAfile '%s' -CRLfile '%s' "
				    "'%s' >/dev/null 2>&1",
				    ca_crt, path, cli_crt),
				 0);
	}
	X509_CRL_free(loaded);
	X509_CRL_free(again);
	X509_CRL_free(crl);
	X509_CRL_free(empty);
	EVP_PKEY_free(ck);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	X509_free(ca);
	X509_free(t1);
	X509_free(t2);
}

static void a_crl_from_another_ca_or_not_a_crl_is_refused(void **st)
{
	EVP_PKEY *ok = NULL;
	X509 *other = NULL, *ca = NULL;
	X509_CRL *crl = NULL, *loaded = NULL;
	char path[256];
	pos_err e = { 0 };

	(void)st;
	join(path, "other-crl.pem");
	assert_int_equal(pki_load_cert(ca_crt, &ca, &e), 0);
	assert_int_equal(pki_make_ca("Test CA", 30, &ok, &other, &e), 0); /* same name */
	assert_int_equal(pki_crl_make(ok, other, NULL, NULL, 0, &crl, NULL, &e), 0);
	assert_int_equal(pki_write_crl(path, crl, &e), 0);
	assert_int_equal(pki_crl_load(path, ca, &loaded, &e), POS_ECRYPTO);
	assert_null(loaded);
	assert_non_null(strstr(e.msg, "not signed by central's CA"));
	assert_int_equal(pki_crl_load(ca_crt, ca, &loaded, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "revocation list"));
	join(path, "missing.pem");
	assert_int_equal(pki_crl_load(path, ca, &loaded, &e), POS_ENOTFOUND);
	X509_CRL_free(crl);
	EVP_PKEY_free(ok);
	X509_free(other);
	X509_free(ca);
}

static void terminal_subject_and_issuer_checks(void **st)
{
	EVP_PKEY *ok = NULL;
	X509 *other = NULL, *ca = NULL, *t = NULL;
	char hex[PKI_SERIAL_HEX];
	pos_err e = { 0 };

	(void)st;
	assert_int_equal(pki_load_cert(ca_crt, &ca, &e), 0);
	assert_int_equal(pki_load_cert(cli_crt, &t, &e), 0);
	assert_true(pki_is_terminal(t, "S1", "T-7.a_b"));
	assert_false(pki_is_terminal(t, "S1", "T-7.a"));
	assert_false(pki_is_terminal(t, "S", "T-7.a_b"));
	assert_false(pki_is_terminal(ca, "S1", "T-7.a_b"));
	assert_true(pki_issued_by(t, ca));
	assert_int_equal(pki_make_ca("Test CA", 30, &ok, &other, &e), 0);
	assert_false(pki_issued_by(t, other));
	assert_int_equal(pki_serial_hex(t, hex, &e), 0);
	assert_int_equal(strlen(hex), 32);
	assert_int_equal(strspn(hex, "0123456789ABCDEF"), 32);
	EVP_PKEY_free(ok);
	X509_free(other);
	X509_free(ca);
	X509_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(openssl_verifies_server_and_client_against_the_ca),
		cmocka_unit_test(a_certificate_from_another_ca_does_not_verify),
		cmocka_unit_test(client_subject_carries_store_as_ou_and_terminal_as_cn),
		cmocka_unit_test(server_certificate_names_localhost_and_loopback),
		cmocka_unit_test(host_names_and_addresses_are_told_apart_and_bad_ones_refused),
		cmocka_unit_test(the_server_name_is_its_cn_only_when_its_names_cover_it),
		cmocka_unit_test(private_keys_are_0600_and_certificates_public),
		cmocka_unit_test(loading_a_group_readable_key_is_refused),
		cmocka_unit_test(existing_files_are_never_overwritten),
		cmocka_unit_test(ca_lasts_ten_years_and_client_one),
		cmocka_unit_test(bad_store_or_terminal_ids_are_refused),
		cmocka_unit_test(a_revoked_terminal_fails_verification_and_the_others_still_pass),
		cmocka_unit_test(a_crl_from_another_ca_or_not_a_crl_is_refused),
		cmocka_unit_test(terminal_subject_and_issuer_checks),
	};
	return cmocka_run_group_tests(tests, make_all, remove_all);
}
