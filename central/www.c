#include "www.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
	const char *ext;
	const char *ctype;
} www_types[] = {
	{ ".html", "text/html; charset=utf-8" }, { ".css", "text/css; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" }, { ".svg", "image/svg+xml" },
	{ ".png", "image/png" }, { ".ico", "image/x-icon" },
	{ ".txt", "text/plain; charset=utf-8" },
};

const char *www_ctype(const char *name)
{
	size_t n = strlen(name), stem = strcspn(name, ".");

	if (n == 0 || n > WWW_NAME_MAX || stem == 0 ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != stem)
		return NULL;
	for (size_t i = 0; i < sizeof www_types / sizeof www_types[0]; i++)
		if (strcmp(name + stem, www_types[i].ext) == 0)
			return www_types[i].ctype;
	return NULL;
}

int www_read(int dir_fd, const char *name, char **buf, size_t *len, const char **ctype)
{
	struct stat st;
	char *b = NULL;
	size_t have = 0;
	int fd = -1, rc = POS_ENOTFOUND;

	*buf = NULL;
	*len = 0;
	if (!(*ctype = www_ctype(name)) || dir_fd < 0)
		return POS_ENOTFOUND;
	fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > WWW_FILE_MAX)
		goto out;
	rc = POS_ENOMEM;
	if (!(b = malloc((size_t)st.st_size + 1)))
		goto out;
	while (have < (size_t)st.st_size) {
		ssize_t got = read(fd, b + have, (size_t)st.st_size - have);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		have += (size_t)got;
	}
	*buf = b;
	*len = have;
	b = NULL;
	rc = 0;
out:
	free(b);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* The www folder beside the binary: PREFIX/bin/../share/pos/www when
 * installed, the source tree's www when run from build/bin (or from a
 * build folder one deeper, such as make asan's build/asan/bin). */
static int www_find(char *out, size_t cap)
{
	char exe[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	static const char *const tries[] = { "/../share/pos/www", "/../../www", "/../../../www" };
	struct stat st;

	if (n <= 0)
		return POS_ENOTFOUND;
	exe[n] = '\0';
	if (!(slash = strrchr(exe, '/')))
		return POS_ENOTFOUND;
	*slash = '\0';
	for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
		int k = snprintf(out, cap, "%s%s", exe, tries[i]);

		if (k > 0 && (size_t)k < cap && stat(out, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
	}
	return POS_ENOTFOUND;
}

int www_open(const struct cconf *c, char *path, size_t cap, int *fd, pos_err *e)
{
	int n;

	*fd = -1;
	if (!c->www[0]) {
		if (www_find(path, cap) < 0)
			return err_set(e, POS_ENOTFOUND,
				       "no www folder beside the binary (share/pos/www); set [central] "
				       "www");
	} else {
		n = c->www[0] == '/' ? snprintf(path, cap, "%s", c->www)
				     : snprintf(path, cap, "%s/%s", c->dir[0] ? c->dir : ".",
						c->www);
		if (n < 0 || (size_t)n >= cap)
			return err_set(e, POS_ETOOBIG, "[central] www: path too long");
	}
	*fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return err_set(e, POS_EIO, "[central] www %s: %s", path, strerror(errno));
	return 0;
}
