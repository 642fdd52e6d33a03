#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sdnotify_send(const char *state, pos_err *e)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t plen, slen;
	socklen_t salen;
	ssize_t w;
	int fd, rc = 0;

	if (!path || !path[0])
		return 0;
	if (!state || !state[0])
		return err_set(e, POS_EINVAL, "sd_notify: empty state");
	plen = strlen(path);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof sa.sun_path)
		return err_set(e, POS_EINVAL, "NOTIFY_SOCKET: not an absolute path or @name");
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract: the length, not a NUL, ends it */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, POS_EIO, "sd_notify: socket: %s", strerror(errno));
	slen = strlen(state);
	do
		w = sendto(fd, state, slen, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	while (w < 0 && errno == EINTR);
	if (w < 0 || (size_t)w != slen)
		rc = err_set(e, POS_EIO, "sd_notify %s: %s", path,
			     w < 0 ? strerror(errno) : "short write");
	close(fd);
	return rc;
}

uint64_t sdnotify_watchdog_usec(void)
{
	const char *us = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long v;
	char *end;

	if (!us || !us[0])
		return 0;
	if (pid && pid[0]) {
		errno = 0;
		v = strtoull(pid, &end, 10);
		if (errno || *end || v != (unsigned long long)getpid())
			return 0;
	}
	errno = 0;
	v = strtoull(us, &end, 10);
	if (errno || *end || end == us)
		return 0;
	return (uint64_t)v;
}
