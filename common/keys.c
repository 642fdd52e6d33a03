#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "codec.h"
#include "envelope.h"
#include "file.h"
#include "wipe.h"

/* A PEM key is a few hundred bytes; anything much larger is not a key file. */
#define KEYS_FILE_MAX 8192

int keys_generate(struct hpke_keypair *kp, pos_err *e)
{
	int rc;

	if (!kp)
		return err_set(e, POS_EINVAL, "keys: missing key pair");
	memset(kp, 0, sizeof *kp);
	if (RAND_priv_bytes(kp->sk, sizeof kp->sk) != 1)
		return err_set(e, POS_ECRYPTO, "keys: random generator failed");
	/* Clamped as RFC 7748 does, so the stored scalar is the one used. */
	kp->sk[0] &= 248;
	kp->sk[31] &= 127;
	kp->sk[31] |= 64;
	if ((rc = hpke_x25519_public(kp->sk, kp->pk, e)) != 0) {
		keys_wipe(kp);
		return rc;
	}
	envelope_kid(kp->pk, kp->kid);
	return 0;
}

void keys_wipe(struct hpke_keypair *kp)
{
	if (kp)
		wipe(kp, sizeof *kp);
}

/* ------------------------------------------------------------ files */

int keys_check_private_mode(const char *path, pos_err *e)
{
	struct stat st;

	if (!path)
		return err_set(e, POS_EINVAL, "keys: missing path");
	if (stat(path, &st) != 0)
		return err_set(e, errno == ENOENT ? POS_ENOTFOUND : POS_EIO, "%s: %s", path,
			       strerror(errno));
	if (st.st_mode & 077)
		return err_set(e, POS_EPERM, "%s is %s by group or others; run: chmod 600 %s",
			       path, (st.st_mode & 044) ? "readable" : "accessible", path);
	return 0;
}

/* Reads a whole regular file of at most cap-1 bytes into buf, NUL-terminated.
 * The caller wipes buf. */
static int keys_read_file(const char *path, int private, char *buf, size_t cap, size_t *len,
			  pos_err *e)
{
	int rc;

	buf[0] = '\0';
	if (!path)
		return err_set(e, POS_EINVAL, "keys: missing path");
	rc = file_read(path, private ? FILE_PRIVATE : 0, buf, cap - 1, len, NULL, e);
	buf[rc == 0 ? *len : 0] = '\0';
	return rc;
}

static int keys_write_all(int fd, const unsigned char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Makes the rename itself durable; best effort, as some filesystems refuse
 * fsync on a directory. */
static void keys_sync_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;
	int fd;

	if (!slash) {
		dir[0] = '.';
		dir[1] = '\0';
	} else {
		n = slash == path ? 1 : (size_t)(slash - path);
		if (n >= sizeof dir)
			return;
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/*
 * Temp file in the same folder (so rename cannot cross filesystems), created
 * O_EXCL by mkostemp with mode 0600 from the first byte, chmod-ed to the
 * wanted mode before any data is in it, fsync-ed, then moved into place.
 * Without overwrite the move is renameat2(RENAME_NOREPLACE), so even a file
 * created meanwhile by someone else is never replaced.
 */
int keys_write_file(const char *path, const void *data, size_t len, unsigned mode,
		    int overwrite, pos_err *e)
{
	char tmp[PATH_MAX];
	struct stat st;
	int fd = -1, rc, n, made = 0;

	if (!path || !*path || (!data && len))
		return err_set(e, POS_EINVAL, "keys: missing path or data");
	if (mode & ~0777u)
		return err_set(e, POS_EINVAL, "%s: invalid file mode %o", path, mode);
	if (!overwrite && lstat(path, &st) == 0)
		return err_set(e, POS_ECONFLICT, "%s already exists; refusing to overwrite it",
			       path);
	n = snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof tmp)
		return err_set(e, POS_EINVAL, "%s: path too long", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return err_set(e, POS_EIO, "%s: cannot create a temporary file: %s", path,
			       strerror(errno));
	made = 1;
	if (fchmod(fd, (mode_t)mode) != 0 || keys_write_all(fd, data, len) != 0 ||
	    fsync(fd) != 0) {
		rc = err_set(e, POS_EIO, "%s: cannot write: %s", path, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = err_set(e, POS_EIO, "%s: cannot write: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	if (overwrite) {
		if (rename(tmp, path) != 0) {
			rc = err_set(e, POS_EIO, "%s: cannot rename into place: %s", path,
				     strerror(errno));
			goto out;
		}
	} else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) != 0) {
		int err = errno;

		if (err == EINVAL || err == ENOSYS) {
			/* Filesystem without RENAME_NOREPLACE: link() also refuses
			 * an existing name. */
			if (link(tmp, path) == 0) {
				unlink(tmp);
				made = 0;
				goto done;
			}
			err = errno;
		}
		if (err == EEXIST)
			rc = err_set(e, POS_ECONFLICT, "%s already exists; refusing to overwrite it",
				     path);
		else
			rc = err_set(e, POS_EIO, "%s: cannot rename into place: %s", path,
				     strerror(err));
		goto out;
	}
	made = 0;
done:
	keys_sync_dir(path);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (made)
		unlink(tmp);
	return rc;
}

/* ------------------------------------------------------------ PEM keys */

/* Refuses to prompt: a daemon reading an encrypted key must fail, not hang. */
static int keys_no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int keys_pem_to_buffer(EVP_PKEY *k, int private, char **out, size_t *out_len)
{
	BIO *b = BIO_new(BIO_s_secmem());
	char *p = NULL;
	long n;
	int rc = -1;

	*out = NULL;
	*out_len = 0;
	if (!b)
		return -1;
	if (private ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1
		    : PEM_write_bio_PUBKEY(b, k) != 1)
		goto out;
	n = BIO_get_mem_data(b, &p);
	if (n <= 0 || !p)
		goto out;
	*out = malloc((size_t)n);
	if (!*out)
		goto out;
	memcpy(*out, p, (size_t)n);
	*out_len = (size_t)n;
	rc = 0;
out:
	BIO_free(b); /* secmem BIO: cleared on free */
	return rc;
}

int keys_save_private(const char *path, const struct hpke_keypair *kp, pos_err *e)
{
	EVP_PKEY *k = NULL;
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if (!path || !kp)
		return err_set(e, POS_EINVAL, "keys: missing path or key");
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, kp->sk, sizeof kp->sk);
	if (!k || keys_pem_to_buffer(k, 1, &pem, &len) != 0) {
		rc = err_set(e, POS_ECRYPTO, "%s: cannot encode the private key", path);
		goto out;
	}
	rc = keys_write_file(path, pem, len, 0600, 0, e);
out:
	wipe_free(pem, len);
	EVP_PKEY_free(k);
	return rc;
}

int keys_save_public(const char *path, const unsigned char pk[32], pos_err *e)
{
	EVP_PKEY *k = NULL;
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if (!path || !pk)
		return err_set(e, POS_EINVAL, "keys: missing path or key");
	k = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pk, 32);
	if (!k || keys_pem_to_buffer(k, 0, &pem, &len) != 0) {
		rc = err_set(e, POS_ECRYPTO, "%s: cannot encode the public key", path);
		goto out;
	}
	rc = keys_write_file(path, pem, len, 0644, 0, e);
out:
	free(pem);
	EVP_PKEY_free(k);
	return rc;
}

int keys_load_private(const char *path, struct hpke_keypair *kp, pos_err *e)
{
	char buf[KEYS_FILE_MAX];
	EVP_PKEY *k = NULL;
	BIO *b = NULL;
	size_t len = 0;
	int rc;

	if (!kp)
		return err_set(e, POS_EINVAL, "keys: missing key pair");
	memset(kp, 0, sizeof *kp);
	if ((rc = keys_read_file(path, 1, buf, sizeof buf, &len, e)) != 0)
		return rc;
	rc = POS_EINVAL;
	if (!(b = BIO_new_mem_buf(buf, (int)len))) {
		rc = err_set(e, POS_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	k = PEM_read_bio_PrivateKey(b, NULL, keys_no_password, NULL);
	if (!k) {
		err_set(e, rc, "%s: not a PEM private key (or an encrypted one)", path);
		goto out;
	}
	if (!EVP_PKEY_is_a(k, "X25519")) {
		err_set(e, rc, "%s: not an X25519 key", path);
		goto out;
	}
	len = sizeof kp->sk;
	if (EVP_PKEY_get_raw_private_key(k, kp->sk, &len) != 1 || len != sizeof kp->sk) {
		err_set(e, rc, "%s: cannot read the X25519 private key", path);
		goto out;
	}
	if ((rc = hpke_x25519_public(kp->sk, kp->pk, e)) != 0) {
		err_prefix(e, "%s", path);
		goto out;
	}
	envelope_kid(kp->pk, kp->kid);
	rc = 0;
out:
	if (rc != 0)
		keys_wipe(kp);
	BIO_free(b);
	EVP_PKEY_free(k);
	wipe(buf, sizeof buf);
	return rc;
}

int keys_load_public(const char *path, unsigned char pk[32], char kid[KEYS_KID_LEN + 1],
		     pos_err *e)
{
	char buf[KEYS_FILE_MAX];
	EVP_PKEY *k = NULL;
	BIO *b = NULL;
	size_t len = 0;
	int rc;

	if (!pk)
		return err_set(e, POS_EINVAL, "keys: missing key buffer");
	if ((rc = keys_read_file(path, 0, buf, sizeof buf, &len, e)) != 0)
		return rc;
	rc = POS_EINVAL;
	if (!(b = BIO_new_mem_buf(buf, (int)len))) {
		rc = err_set(e, POS_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	k = PEM_read_bio_PUBKEY(b, NULL, keys_no_password, NULL);
	if (!k) {
		err_set(e, rc, "%s: not a PEM public key", path);
		goto out;
	}
	if (!EVP_PKEY_is_a(k, "X25519")) {
		err_set(e, rc, "%s: not an X25519 key", path);
		goto out;
	}
	len = 32;
	if (EVP_PKEY_get_raw_public_key(k, pk, &len) != 1 || len != 32) {
		err_set(e, rc, "%s: cannot read the X25519 public key", path);
		goto out;
	}
	if (kid)
		envelope_kid(pk, kid);
	rc = 0;
out:
	BIO_free(b);
	EVP_PKEY_free(k);
	return rc;
}

/* ------------------------------------------------------------ HMAC keys, tokens */

int keys_generate_hmac(const char *path, pos_err *e)
{
	unsigned char key[KEYS_HMAC_LEN];
	char text[2 * KEYS_HMAC_LEN + 2];
	int rc;

	if (RAND_priv_bytes(key, sizeof key) != 1)
		return err_set(e, POS_ECRYPTO, "keys: random generator failed");
	rc = hex_encode(key, sizeof key, text, sizeof text, e);
	if (rc == 0) {
		text[2 * KEYS_HMAC_LEN] = '\n';
		rc = keys_write_file(path, text, 2 * KEYS_HMAC_LEN + 1, 0600, 0, e);
	}
	wipe(key, sizeof key);
	wipe(text, sizeof text);
	return rc;
}

/* One line of text: drops a single trailing "\n" or "\r\n"; any other
 * control character or space is an error, since a stray one would silently
 * change the key. */
static int keys_one_line(const char *path, char *buf, size_t *len, pos_err *e)
{
	size_t i;

	if (*len && buf[*len - 1] == '\n')
		(*len)--;
	if (*len && buf[*len - 1] == '\r')
		(*len)--;
	buf[*len] = '\0';
	for (i = 0; i < *len; i++)
		if ((unsigned char)buf[i] <= ' ' || (unsigned char)buf[i] >= 0x7f)
			return err_set(e, POS_EINVAL, "%s: unexpected character at offset %zu",
				       path, i);
	return 0;
}

int keys_load_hmac(const char *path, unsigned char key[KEYS_HMAC_LEN], pos_err *e)
{
	char buf[256];
	size_t len = 0;
	int rc;

	if (!key)
		return err_set(e, POS_EINVAL, "keys: missing key buffer");
	if ((rc = keys_read_file(path, 1, buf, sizeof buf, &len, e)) != 0)
		goto out;
	if ((rc = keys_one_line(path, buf, &len, e)) != 0)
		goto out;
	if (len != 2 * KEYS_HMAC_LEN) {
		rc = err_set(e, POS_EINVAL, "%s: expected %d hex characters, found %zu", path,
			     2 * KEYS_HMAC_LEN, len);
		goto out;
	}
	if ((rc = hex_decode(buf, len, key, KEYS_HMAC_LEN, e)) != 0) {
		err_prefix(e, "%s", path);
		goto out;
	}
out:
	if (rc != 0)
		wipe(key, KEYS_HMAC_LEN);
	wipe(buf, sizeof buf);
	return rc;
}

int keys_generate_token(const char *path, pos_err *e)
{
	unsigned char raw[32];
	char text[64];
	size_t n;
	int rc;

	if (RAND_priv_bytes(raw, sizeof raw) != 1)
		return err_set(e, POS_ECRYPTO, "keys: random generator failed");
	rc = b64url_encode(raw, sizeof raw, text, sizeof text - 1, e);
	if (rc == 0) {
		n = strlen(text);
		text[n] = '\n';
		rc = keys_write_file(path, text, n + 1, 0600, 0, e);
	}
	wipe(raw, sizeof raw);
	wipe(text, sizeof text);
	return rc;
}

int keys_load_token(const char *path, char out[KEYS_TOKEN_MAX + 1], pos_err *e)
{
	char buf[KEYS_TOKEN_MAX + 8];
	size_t len = 0;
	int rc;

	if (!out)
		return err_set(e, POS_EINVAL, "keys: missing token buffer");
	out[0] = '\0';
	if ((rc = keys_read_file(path, 1, buf, sizeof buf, &len, e)) != 0)
		goto out;
	if ((rc = keys_one_line(path, buf, &len, e)) != 0)
		goto out;
	/* A short token is guessable; 16 characters is a floor, the generated
	 * ones have 43. */
	if (len < 16 || len > KEYS_TOKEN_MAX) {
		rc = err_set(e, POS_EINVAL, "%s: token must be 16..%d characters, found %zu", path,
			     KEYS_TOKEN_MAX, len);
		goto out;
	}
	memcpy(out, buf, len + 1);
out:
	if (rc != 0)
		wipe(out, KEYS_TOKEN_MAX + 1);
	wipe(buf, sizeof buf);
	return rc;
}
