#include "dbfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Two threads preparing the same missing file: the loser must see the
 * winner's file as existing rather than race it between create and close. */
static pthread_mutex_t dbfile_mu = PTHREAD_MUTEX_INITIALIZER;

static int dbfile_create(const char *path, pos_err *e)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return errno == EEXIST ? 1 : err_set(e, POS_EIO, "%s: %s", path, strerror(errno));
	/* A brand-new inode: no connection of this process can hold a lock
	 * on it yet, so this close drops nothing. */
	close(fd);
	return 0;
}

/* An O_PATH descriptor opens nothing: closing it drops no POSIX lock
 * (Linux skips lock removal for path-only files), and O_NOFOLLOW with
 * fstat on it checks the very file that is then narrowed, through
 * /proc/self/fd, so a symbolic link swapped in cannot redirect the chmod. */
static int dbfile_narrow(const char *path, pos_err *e)
{
	char self[64];
	struct stat st;
	int fd, rc = 0;

	fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, POS_EIO, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0)
		rc = err_set(e, POS_EIO, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		rc = err_set(e, POS_EIO, "%s is not a regular file", path);
	else if (st.st_mode & 077) {
		snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
		if (chmod(self, 0600) != 0)
			rc = err_set(e, POS_EPERM, "%s: cannot chmod 600: %s", path, strerror(errno));
	}
	close(fd);
	return rc;
}

int dbfile_prepare(const char *path, pos_err *e)
{
	int rc;

	if (!path || !*path)
		return err_set(e, POS_EINVAL, "no database path");
	pthread_mutex_lock(&dbfile_mu);
	rc = dbfile_create(path, e);
	if (rc > 0)
		rc = dbfile_narrow(path, e);
	pthread_mutex_unlock(&dbfile_mu);
	return rc;
}
