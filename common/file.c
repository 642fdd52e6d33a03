#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "wipe.h"

static int file_check(int fd, const char *path, int flags, struct stat *st, pos_err *e)
{
	if (fstat(fd, st) != 0)
		return err_set(e, POS_EIO, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st->st_mode))
		return err_set(e, POS_EINVAL, "%s: not a regular file", path);
	if ((flags & FILE_PRIVATE) && (st->st_mode & 077))
		return err_set(e, POS_EPERM, "%s is %s by group or others; run: chmod 600 %s",
			       path, (st->st_mode & 044) ? "readable" : "accessible", path);
	return 0;
}

/* Reads until end of file; one byte past cap tells a longer file. */
static int file_slurp(int fd, const char *path, unsigned char *buf, size_t cap, size_t *len,
		      pos_err *e)
{
	size_t n = 0;

	for (;;) {
		unsigned char extra;
		ssize_t r = n < cap ? read(fd, buf + n, cap - n) : read(fd, &extra, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_set(e, POS_EIO, "%s: %s", path, strerror(errno));
		if (r == 0)
			break;
		if (n == cap)
			return err_set(e, POS_ETOOBIG, "%s: larger than %zu bytes", path, cap);
		n += (size_t)r;
	}
	*len = n;
	return 0;
}

int file_read(const char *path, int flags, void *buf, size_t cap, size_t *len,
	      struct stat *st, pos_err *e)
{
	struct stat own;
	int fd, rc;

	if (!path || !buf || !len)
		return err_set(e, POS_EINVAL, "file_read: missing path or buffer");
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | ((flags & FILE_NOFOLLOW) ? O_NOFOLLOW : 0));
	if (fd < 0)
		return err_set(e, errno == ENOENT ? POS_ENOTFOUND : POS_EIO, "%s: %s", path,
			       strerror(errno));
	rc = file_check(fd, path, flags, st ? st : &own, e);
	if (rc == 0)
		rc = file_slurp(fd, path, buf, cap, len, e);
	close(fd);
	if (rc < 0) {
		wipe(buf, cap);
		*len = 0;
	}
	return rc;
}
