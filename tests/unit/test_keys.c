/* keys: key files that `openssl pkey` reads, written atomically with the
 * right mode, never silently replaced, refused when others can read them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "envelope.h"
#include "keys.h"

struct dir {
	char path[64];
};

static int setup_dir(void **st)
{
	struct dir *d = calloc(1, sizeof *d);

	if (!d)
		return -1;
	snprintf(d->path, sizeof d->path, "/tmp/test_keys.XXXXXX");
	if (!mkdtemp(d->path)) {
		free(d);
		return -1;
	}
	*st = d;
	return 0;
}

static int teardown_dir(void **st)
{
	struct dir *d = *st;
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->path);
	if (system(cmd) != 0)
		return -1;
	free(d);
	return 0;
}

static void file_in(const struct dir *d, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", d->path, name);
}

static mode_t mode_of(const char *path)
{
	struct stat s;

	assert_int_equal(stat(path, &s), 0);
	return s.st_mode & 07777;
}

static size_t read_all(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static int count_entries(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(dp);
	while ((de = readdir(dp)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(dp);
	return n;
}

static void kid_is_first_16_hex_of_sha256_of_the_raw_key(void **st)
{
	unsigned char pk[32];
	char kid[KEYS_KID_LEN + 1];
	pos_err e = { 0 };

	(void)st;
	/* RFC 9180 pkRm; the kid is from Python's hashlib. */
	assert_int_equal(hex_decode("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
				    64, pk, 32, &e), 0);
	envelope_kid(pk, kid);
	assert_string_equal(kid, "8b228cd75ab70bad");
}

static void saved_keys_are_pem_that_openssl_reads_and_load_back(void **st)
{
	struct dir *d = *st;
	struct hpke_keypair kp, back;
	unsigned char pk[32];
	char kid[KEYS_KID_LEN + 1], priv[128], pub[128], derived[128], cmd[512], a[1024], b[1024];
	pos_err e = { 0 };

	assert_int_equal(keys_generate(&kp, &e), 0);
	assert_int_equal(strlen(kp.kid), KEYS_KID_LEN);
	file_in(d, "hpke.key", priv, sizeof priv);
	file_in(d, "central.pub", pub, sizeof pub);
	file_in(d, "derived.pub", derived, sizeof derived);
	assert_int_equal(keys_save_private(priv, &kp, &e), 0);
	assert_int_equal(keys_save_public(pub, kp.pk, &e), 0);
	assert_int_equal(mode_of(priv), 0600);
	assert_int_equal(mode_of(pub), 0644);
	read_all(priv, a, sizeof a);
	assert_non_null(strstr(a, "-----BEGIN PRIVATE KEY-----"));
	read_all(pub, a, sizeof a);
	assert_non_null(strstr(a, "-----BEGIN PUBLIC KEY-----"));

	snprintf(cmd, sizeof cmd, "openssl pkey -in '%s' -noout", priv);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "openssl pkey -pubin -in '%s' -text -noout | grep -q X25519",
		 pub);
	assert_int_equal(system(cmd), 0);
	/* openssl's public key from our private file is our public file. */
	snprintf(cmd, sizeof cmd, "openssl pkey -in '%s' -pubout -out '%s'", priv, derived);
	assert_int_equal(system(cmd), 0);
	read_all(pub, a, sizeof a);
	read_all(derived, b, sizeof b);
	assert_string_equal(a, b);

	assert_int_equal(keys_load_private(priv, &back, &e), 0);
	assert_memory_equal(back.sk, kp.sk, 32);
	assert_memory_equal(back.pk, kp.pk, 32);
	assert_string_equal(back.kid, kp.kid);
	assert_int_equal(keys_load_public(pub, pk, kid, &e), 0);
	assert_memory_equal(pk, kp.pk, 32);
	assert_string_equal(kid, kp.kid);
	keys_wipe(&back);
	keys_wipe(&kp);
}

static void openssl_made_x25519_key_loads_and_opens_our_envelope(void **st)
{
	struct dir *d = *st;
	struct hpke_keypair kp;
	unsigned char pk[32], sealed[128], pt[64];
	char priv[128], pub[128], cmd[512], kid[KEYS_KID_LEN + 1];
	size_t n = 0, ptn = 0;
	pos_err e = { 0 };

	file_in(d, "ossl.key", priv, sizeof priv);
	file_in(d, "ossl.pub", pub, sizeof pub);
	snprintf(cmd, sizeof cmd,
		 "umask 077 && openssl genpkey -algorithm X25519 -out '%s' && "
		 "openssl pkey -in '%s' -pubout -out '%s'", priv, priv, pub);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(keys_load_private(priv, &kp, &e), 0);
	assert_int_equal(keys_load_public(pub, pk, kid, &e), 0);
	assert_memory_equal(pk, kp.pk, 32);
	assert_string_equal(kid, kp.kid);
	assert_int_equal(envelope_seal(pk, "i", (const unsigned char *)"loyalty:1234", 12, sealed,
				       sizeof sealed, &n, &e), 0);
	assert_int_equal(envelope_open(kp.sk, "i", sealed, n, pt, sizeof pt, &ptn, &e), 0);
	assert_memory_equal(pt, "loyalty:1234", 12);
	keys_wipe(&kp);
}

static void private_files_readable_by_others_are_refused_with_the_fix(void **st)
{
	struct dir *d = *st;
	struct hpke_keypair kp, back;
	unsigned char key[KEYS_HMAC_LEN];
	char priv[128], hm[128], tok[128], want[512], out[KEYS_TOKEN_MAX + 1];
	pos_err e = { 0 };

	file_in(d, "k.key", priv, sizeof priv);
	file_in(d, "k_index", hm, sizeof hm);
	file_in(d, "admin.token", tok, sizeof tok);
	assert_int_equal(keys_generate(&kp, &e), 0);
	assert_int_equal(keys_save_private(priv, &kp, &e), 0);
	assert_int_equal(keys_generate_hmac(hm, &e), 0);
	assert_int_equal(keys_generate_token(tok, &e), 0);
	assert_int_equal(keys_check_private_mode(priv, &e), 0);

	assert_int_equal(chmod(priv, 0644), 0);
	memset(&back, 0x55, sizeof back);
	assert_int_equal(keys_load_private(priv, &back, &e), POS_EPERM);
	snprintf(want, sizeof want, "%s is readable by group or others; run: chmod 600 %s", priv,
		 priv);
	assert_string_equal(e.msg, want);
	for (size_t i = 0; i < sizeof back.sk; i++)
		assert_int_equal(back.sk[i], 0);
	assert_int_equal(keys_check_private_mode(priv, &e), POS_EPERM);
	assert_int_equal(chmod(priv, 0640), 0);
	assert_int_equal(keys_load_private(priv, &back, &e), POS_EPERM);
	assert_int_equal(chmod(priv, 0620), 0); /* group-writable is refused too */
	assert_int_equal(keys_load_private(priv, &back, &e), POS_EPERM);
	assert_non_null(strstr(e.msg, "run: chmod 600"));
	assert_int_equal(chmod(priv, 0400), 0);
	assert_int_equal(keys_load_private(priv, &back, &e), 0);

	assert_int_equal(chmod(hm, 0604), 0);
	assert_int_equal(keys_load_hmac(hm, key, &e), POS_EPERM);
	assert_non_null(strstr(e.msg, "readable by group or others"));
	assert_int_equal(chmod(tok, 0644), 0);
	assert_int_equal(keys_load_token(tok, out, &e), POS_EPERM);
	assert_int_equal(chmod(tok, 0600), 0);
	assert_int_equal(keys_load_token(tok, out, &e), 0);
	keys_wipe(&kp);
	keys_wipe(&back);
}

static void existing_files_are_never_replaced_without_overwrite(void **st)
{
	struct dir *d = *st;
	struct hpke_keypair kp1, kp2, back;
	char priv[128], pub[128], hm[128], tok[128], f[128], buf[64];
	pos_err e = { 0 };
	int before;

	file_in(d, "hpke.key", priv, sizeof priv);
	file_in(d, "hpke.pub", pub, sizeof pub);
	file_in(d, "k_deident", hm, sizeof hm);
	file_in(d, "analyst.token", tok, sizeof tok);
	file_in(d, "plain", f, sizeof f);
	assert_int_equal(keys_generate(&kp1, &e), 0);
	assert_int_equal(keys_generate(&kp2, &e), 0);
	assert_memory_not_equal(kp1.sk, kp2.sk, 32);
	assert_int_equal(keys_save_private(priv, &kp1, &e), 0);
	assert_int_equal(keys_save_public(pub, kp1.pk, &e), 0);
	assert_int_equal(keys_generate_hmac(hm, &e), 0);
	assert_int_equal(keys_generate_token(tok, &e), 0);
	before = count_entries(d->path);

	assert_int_equal(keys_save_private(priv, &kp2, &e), POS_ECONFLICT);
	assert_non_null(strstr(e.msg, "refusing to overwrite"));
	assert_int_equal(keys_save_public(pub, kp2.pk, &e), POS_ECONFLICT);
	assert_int_equal(keys_generate_hmac(hm, &e), POS_ECONFLICT);
	assert_int_equal(keys_generate_token(tok, &e), POS_ECONFLICT);
	assert_int_equal(keys_load_private(priv, &back, &e), 0);
	assert_memory_equal(back.sk, kp1.sk, 32);
	/* No temporary file was left behind by the refusals. */
	assert_int_equal(count_entries(d->path), before);

	assert_int_equal(keys_write_file(f, "one\n", 4, 0600, 0, &e), 0);
	assert_int_equal(keys_write_file(f, "two\n", 4, 0600, 0, &e), POS_ECONFLICT);
	read_all(f, buf, sizeof buf);
	assert_string_equal(buf, "one\n");
	assert_int_equal(keys_write_file(f, "three\n", 6, 0640, 1, &e), 0);
	read_all(f, buf, sizeof buf);
	assert_string_equal(buf, "three\n");
	assert_int_equal(mode_of(f), 0640);
	assert_int_equal(count_entries(d->path), before + 1);
	keys_wipe(&kp1);
	keys_wipe(&kp2);
	keys_wipe(&back);
}

static void write_file_reports_missing_folders_and_bad_modes(void **st)
{
	struct dir *d = *st;
	char f[128];
	pos_err e = { 0 };

	file_in(d, "no/such/dir/file", f, sizeof f);
	assert_int_equal(keys_write_file(f, "x", 1, 0600, 0, &e), POS_EIO);
	assert_non_null(strstr(e.msg, f));
	file_in(d, "m", f, sizeof f);
	assert_int_equal(keys_write_file(f, "x", 1, 04755, 0, &e), POS_EINVAL);
	assert_int_equal(keys_write_file(f, "", 0, 0600, 0, &e), 0);
	assert_int_equal(mode_of(f), 0600);
}

static void hmac_key_file_is_64_hex_and_a_newline(void **st)
{
	struct dir *d = *st;
	unsigned char key[KEYS_HMAC_LEN], want[KEYS_HMAC_LEN];
	char hm[128], buf[256];
	pos_err e = { 0 };

	file_in(d, "k_index", hm, sizeof hm);
	assert_int_equal(keys_generate_hmac(hm, &e), 0);
	assert_int_equal(mode_of(hm), 0600);
	assert_int_equal(read_all(hm, buf, sizeof buf), 65);
	assert_int_equal(buf[64], '\n');
	assert_int_equal(hex_decode(buf, 64, want, 32, &e), 0);
	assert_int_equal(keys_load_hmac(hm, key, &e), 0);
	assert_memory_equal(key, want, 32);

	/* Hand-written files: no newline, CRLF, upper case are fine. */
	unlink(hm);
	write_text(hm, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", 0600);
	assert_int_equal(keys_load_hmac(hm, key, &e), 0);
	assert_int_equal(key[31], 0x1f);
	write_text(hm, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\r\n", 0600);
	assert_int_equal(keys_load_hmac(hm, key, &e), 0);
	/* Short, long, non-hex, two lines: refused, key wiped. */
	write_text(hm, "0001020304\n", 0600);
	assert_int_equal(keys_load_hmac(hm, key, &e), POS_EINVAL);
	for (int i = 0; i < 32; i++)
		assert_int_equal(key[i], 0);
	write_text(hm, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00\n",
		   0600);
	assert_int_equal(keys_load_hmac(hm, key, &e), POS_EINVAL);
	write_text(hm, "z00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 0600);
	assert_int_equal(keys_load_hmac(hm, key, &e), POS_EINVAL);
	write_text(hm, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n\n",
		   0600);
	assert_int_equal(keys_load_hmac(hm, key, &e), POS_EINVAL);
}

static void token_file_is_43_base64url_chars(void **st)
{
	struct dir *d = *st;
	char tok[128], out[KEYS_TOKEN_MAX + 1], big[KEYS_TOKEN_MAX + 10];
	unsigned char raw[32];
	size_t n = 0;
	pos_err e = { 0 };

	file_in(d, "analyst.token", tok, sizeof tok);
	assert_int_equal(keys_generate_token(tok, &e), 0);
	assert_int_equal(mode_of(tok), 0600);
	assert_int_equal(keys_load_token(tok, out, &e), 0);
	assert_int_equal(strlen(out), 43);
	assert_int_equal(b64url_decode(out, 43, raw, sizeof raw, &n, &e), 0);
	assert_int_equal(n, 32);

	unlink(tok);
	write_text(tok, "short\n", 0600);
	assert_int_equal(keys_load_token(tok, out, &e), POS_EINVAL);
	assert_string_equal(out, "");
	write_text(tok, "has a space in it somewhere\n", 0600);
	assert_int_equal(keys_load_token(tok, out, &e), POS_EINVAL);
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	write_text(tok, big, 0600);
	assert_int_equal(keys_load_token(tok, out, &e), POS_ETOOBIG);
}

static void bad_or_missing_key_files_fail_cleanly(void **st)
{
	struct dir *d = *st;
	struct hpke_keypair kp;
	unsigned char pk[32];
	char f[128], g[128], cmd[512], kid[KEYS_KID_LEN + 1];
	pos_err e = { 0 };

	file_in(d, "missing.key", f, sizeof f);
	assert_int_equal(keys_load_private(f, &kp, &e), POS_ENOTFOUND);
	assert_int_equal(keys_load_public(f, pk, kid, &e), POS_ENOTFOUND);
	assert_int_equal(keys_check_private_mode(f, &e), POS_ENOTFOUND);

	file_in(d, "garbage.key", f, sizeof f);
	write_text(f, "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
		   0600);
	assert_int_equal(keys_load_private(f, &kp, &e), POS_EINVAL);
	assert_int_equal(keys_load_public(f, pk, kid, &e), POS_EINVAL);

	/* An Ed25519 key is PEM and well-formed, but not for X25519. */
	file_in(d, "ed.key", f, sizeof f);
	file_in(d, "ed.pub", g, sizeof g);
	snprintf(cmd, sizeof cmd,
		 "umask 077 && openssl genpkey -algorithm ED25519 -out '%s' && "
		 "openssl pkey -in '%s' -pubout -out '%s'", f, f, g);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(keys_load_private(f, &kp, &e), POS_EINVAL);
	assert_non_null(strstr(e.msg, "not an X25519 key"));
	assert_int_equal(keys_load_public(g, pk, kid, &e), POS_EINVAL);

	/* An encrypted key fails instead of prompting for a password. */
	file_in(d, "enc.key", f, sizeof f);
	snprintf(cmd, sizeof cmd,
		 "umask 077 && openssl genpkey -algorithm X25519 -aes-128-cbc -pass pass:pw "
		 "-out '%s' </dev/null", f);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(keys_load_private(f, &kp, &e), POS_EINVAL);

	/* A folder is not a key file; a huge file is not read whole. */
	assert_int_equal(keys_load_public(d->path, pk, kid, &e), POS_EINVAL);
	file_in(d, "huge.pub", f, sizeof f);
	snprintf(cmd, sizeof cmd, "head -c 100000 /dev/zero > '%s'", f);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(keys_load_public(f, pk, kid, &e), POS_ETOOBIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kid_is_first_16_hex_of_sha256_of_the_raw_key),
		cmocka_unit_test_setup_teardown(saved_keys_are_pem_that_openssl_reads_and_load_back,
						setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(openssl_made_x25519_key_loads_and_opens_our_envelope,
						setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(
			private_files_readable_by_others_are_refused_with_the_fix, setup_dir,
			teardown_dir),
		cmocka_unit_test_setup_teardown(existing_files_are_never_replaced_without_overwrite,
						setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(write_file_reports_missing_folders_and_bad_modes,
						setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(hmac_key_file_is_64_hex_and_a_newline, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(token_file_is_43_base64url_chars, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(bad_or_missing_key_files_fail_cleanly, setup_dir,
						teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
