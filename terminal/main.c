/*
 * pos-agent: the terminal agent (design sections 5 and 6).
 *
 *   pos-agent run    -c terminal.conf      run the agent (foreground)
 *   pos-agent ctl    -c terminal.conf CMD  drive the lane over the control socket
 *   pos-agent doctor -c terminal.conf      diagnose devices, central, certificates
 *   pos-agent check  -c terminal.conf      "configuration OK" or FILE:LINE: what is wrong
 *   pos-agent spool  list|retry|export -c terminal.conf   baskets waiting or set aside
 *
 * Exit status: 0 done, 1 failed (the reason on stderr), 2 wrong invocation.
 */
#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "acheck.h"
#include "aconf.h"
#include "agent.h"
#include "control.h"
#include "doctor.h"
#include "jsonx.h"
#include "log.h"
#include "spool.h"
#include "timeutil.h"
#include "version.h"
#include "wipe.h"

#define PROG "pos-agent"
#define CTL_REPLY_TIMEOUT_MS 10000
#define CTL_READ_MAX (64 * 1024)

static const char usage_main[] =
	"usage: pos-agent COMMAND -c terminal.conf [ARGS]\n"
	"\n"
	"commands:\n"
	"  run     -c FILE            run the terminal agent in the foreground\n"
	"  ctl     -c FILE CMD [ARG]  drive the lane through the agent's control socket:\n"
	"                             total | void | cancel | status | events |\n"
	"                             tid - (the identifier on stdin) | scan CODE | scan -\n"
	"  doctor  -c FILE            serial ports, device matches, central, certificate expiry\n"
	"  check   -c FILE            check terminal.conf; prints \"configuration OK\"\n"
	"  spool   list|retry|export -c FILE\n"
	"                             baskets waiting for central or set aside\n"
	"\n"
	"  version                    the version and the source revision (also --version)\n"
	"\n"
	"Every command takes --help. Exit status: 0 ok, 1 failed, 2 wrong invocation.\n";

static const char usage_run[] =
	"usage: pos-agent run -c terminal.conf\n"
	"Runs the terminal agent in the foreground: serial devices, the lane, the spool,\n"
	"the uplink to central and the control socket. SIGTERM or SIGINT stops it (exit 0).\n";

static const char usage_ctl[] =
	"usage: pos-agent ctl -c terminal.conf CMD [ARG]\n"
	"  status          open transaction, spool depth, devices (exit 1 while any\n"
	"                  basket is set aside: see pos-agent spool)\n"
	"  total           close the transaction; answers after the basket is spooled\n"
	"  void            take back the last item scanned\n"
	"  cancel          drop the open transaction\n"
	"  tid -           a customer identifier keyed by the cashier (phone:+E164,\n"
	"                  loyalty:..., card:...), read from the first line of stdin;\n"
	"                  never on the command line, where ps, shell history and\n"
	"                  audit logs would keep it\n"
	"  scan CODE       as if CODE had been scanned (an item's GTIN)\n"
	"  scan -          the same, the code read from stdin: use it for loyalty\n"
	"                  numbers, which are customer identifiers\n"
	"  events          print every event line until interrupted\n"
	"Prints the agent's JSON reply; exit 0 when it says ok, 1 otherwise.\n";

static const char usage_doctor[] =
	"usage: pos-agent doctor -c terminal.conf\n"
	"Lists serial ports and which device section matched which, asks central's\n"
	"/v1/health with the terminal certificate, shows certificate expiry and the spool.\n"
	"Exit 0 when the lane can work, 1 when something it needs is broken.\n";

static const char usage_spool[] =
	"usage: pos-agent spool list|retry|export -c terminal.conf\n"
	"  list     every basket in the spool: txn, when spooled (UTC), state (waiting or\n"
	"           set-aside), attempts, and why central refused a set-aside one\n"
	"  retry    set-aside baskets back to waiting; a running agent sends them at once\n"
	"  export   the same baskets as JSON lines on stdout (the basket as it is posted)\n"
	"Nothing here shows a TID: a basket holds at most an EncTID.\n";

static const char usage_check[] =
	"usage: pos-agent check -c terminal.conf\n"
	"Checks terminal.conf and the files it names; prints \"configuration OK\" or\n"
	"FILE:LINE: what is wrong (exit 1).\n";

/* ------------------------------------------------------------ helpers */

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr and status 2: a script sees at once it called us wrong. */
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (try 'pos-agent --help')\n", stderr);
	return 2;
}

/* jansson's buffers may hold a keyed phone number on its way to the
 * socket (ctl) or from it (run): every one is wiped when released. */
static void *main_json_malloc(size_t n)
{
	return malloc(n);
}

static void main_json_free(void *p)
{
	if (p)
		wipe_free(p, malloc_usable_size(p));
}

struct cmdline {
	const char *config;
	const char *pos[3];
	int npos;
	bool help;
};

/* -c FILE | --config FILE | --config=FILE, -h | --help, positionals.
 * "-" alone is a positional (ctl tid -). */
static int parse_cmdline(int argc, char **argv, int max_pos, struct cmdline *cl)
{
	memset(cl, 0, sizeof *cl);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			cl->help = true;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc)
				return usage_error("%s needs a file", a);
			if (cl->config)
				return usage_error("%s given twice", a);
			cl->config = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			if (cl->config)
				return usage_error("%s given twice", "--config");
			cl->config = a + 9;
		} else if (a[0] == '-' && a[1] != '\0') {
			/* Never echo digits: a mistyped phone number may be here. */
			if (strpbrk(a, "0123456789"))
				return usage_error("unknown option");
			return usage_error("unknown option '%s'", a);
		} else {
			if (cl->npos >= max_pos)
				return usage_error("too many arguments (quote a phone number "
						   "that has spaces, or use 'tid -')");
			cl->pos[cl->npos++] = a;
		}
	}
	if (!cl->help && (!cl->config || !*cl->config))
		return usage_error("missing -c terminal.conf");
	return 0;
}

static int load_config(const char *path, struct aconf **cfg)
{
	pos_err e;

	if (aconf_load(path, cfg, &e) < 0) {
		fprintf(stderr, PROG ": %s\n", e.msg);
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------ run, check, doctor */

static int cmd_run(int argc, char **argv)
{
	struct cmdline cl;
	struct aconf *cfg = NULL;
	pos_err e;
	int rc;

	if ((rc = parse_cmdline(argc, argv, 0, &cl)) != 0)
		return rc;
	if (cl.help) {
		fputs(usage_run, stdout);
		return 0;
	}
	if (load_config(cl.config, &cfg))
		return 1;
	log_init(PROG, cfg->log_level, 0);
	rc = agent_run(cfg, &e);
	if (rc < 0) {
		char q[300];
		log_error("start_failed", "error=%s", log_q(q, sizeof q, e.msg));
		fprintf(stderr, PROG ": %s\n", e.msg);
	}
	aconf_free(cfg);
	return rc < 0 ? 1 : 0;
}

static int cmd_check(int argc, char **argv)
{
	struct cmdline cl;
	struct aconf *cfg = NULL;
	int rc;

	if ((rc = parse_cmdline(argc, argv, 0, &cl)) != 0)
		return rc;
	if (cl.help) {
		fputs(usage_check, stdout);
		return 0;
	}
	if (load_config(cl.config, &cfg))
		return 1;
	/* Syntax passed; now what the files say must agree with it. */
	rc = acheck_run(cfg, PROG ": ", stderr);
	if (rc == 0)
		printf("configuration OK\n");
	aconf_free(cfg);
	return rc ? 1 : 0;
}

static int cmd_doctor(int argc, char **argv)
{
	struct cmdline cl;
	struct aconf *cfg = NULL;
	int rc;

	if ((rc = parse_cmdline(argc, argv, 0, &cl)) != 0)
		return rc;
	if (cl.help) {
		fputs(usage_doctor, stdout);
		return 0;
	}
	if (load_config(cl.config, &cfg))
		return 1;
	rc = doctor_run(cfg, stdout);
	aconf_free(cfg);
	return rc ? 1 : 0;
}

/* ------------------------------------------------------------ ctl */

static int ctl_connect_q(const char *path, bool quiet);

static int ctl_connect(const char *path)
{
	return ctl_connect_q(path, false);
}

static int ctl_connect_q(const char *path, bool quiet)
{
	struct sockaddr_un sa;
	size_t n = strlen(path);
	int fd;

	if (n >= sizeof sa.sun_path) {
		fprintf(stderr, PROG ": control socket path too long\n");
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, PROG ": socket: %s\n", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, n + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (!quiet)
			fprintf(stderr, PROG ": cannot connect to %s: %s (is pos-agent running?)\n",
				path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int ctl_send_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads lines from fd into buf; calls fn for each; stops when fn returns
 * non-zero (returned), at EOF (-1) or after timeout_ms (-2; < 0 waits). */
static int ctl_read_lines(int fd, int timeout_ms, int (*fn)(const char *line, size_t len))
{
	static char buf[CTL_READ_MAX];
	size_t have = 0;
	int64_t deadline = timeout_ms < 0 ? 0 : time_mono_us() + (int64_t)timeout_ms * 1000;

	for (;;) {
		char *nl;
		while ((nl = memchr(buf, '\n', have)) != NULL) {
			size_t len = (size_t)(nl - buf);
			int r = fn(buf, len);
			memmove(buf, nl + 1, have - len - 1);
			have -= len + 1;
			if (r)
				return r;
		}
		if (have == sizeof buf) {
			fprintf(stderr, PROG ": line from the agent too long\n");
			return -1;
		}
		int wait = -1;
		if (timeout_ms >= 0) {
			int64_t left = (deadline - time_mono_us()) / 1000;
			if (left <= 0)
				return -2;
			wait = (int)left;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int pr = poll(&p, 1, wait);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return -1;
		if (pr == 0)
			return -2;
		ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
}

static int ctl_reply_ok;
static long ctl_reply_rejected;
static long ctl_reply_moved;

/* The first line that is not an event is our reply. */
static int ctl_on_reply_line(const char *line, size_t len)
{
	json_t *v = NULL;
	pos_err e;

	if (jsonx_parse(line, len, CTL_READ_MAX, JSONX_MAX_DEPTH, &v, &e) < 0 ||
	    !json_is_object(v)) {
		json_decref(v);
		return 0;
	}
	if (json_object_get(v, "event")) {
		json_decref(v);
		return 0;
	}
	ctl_reply_ok = json_is_true(json_object_get(v, "ok"));
	ctl_reply_rejected = (long)json_integer_value(json_object_get(v, "rejected"));
	ctl_reply_moved = (long)json_integer_value(json_object_get(v, "moved"));
	json_decref(v);
	fwrite(line, 1, len, stdout);
	fputc('\n', stdout);
	fflush(stdout);
	return 1;
}

/* The reply, parsed as ctl_on_reply_line does, without printing it. */
static int ctl_on_reply_quiet(const char *line, size_t len)
{
	json_t *v = NULL;
	pos_err e;

	if (jsonx_parse(line, len, CTL_READ_MAX, JSONX_MAX_DEPTH, &v, &e) < 0 ||
	    !json_is_object(v) || json_object_get(v, "event")) {
		json_decref(v);
		return 0;
	}
	ctl_reply_ok = json_is_true(json_object_get(v, "ok"));
	ctl_reply_moved = (long)json_integer_value(json_object_get(v, "moved"));
	json_decref(v);
	return 1;
}

static int ctl_on_event_line(const char *line, size_t len)
{
	fwrite(line, 1, len, stdout);
	fputc('\n', stdout);
	fflush(stdout);
	return 0;
}

/* Reads the TID for `ctl tid -` from stdin's first line into out. */
static int ctl_read_tid(char *out, size_t cap)
{
	size_t n = 0;

	/* read(2), not stdio: stdio would keep a copy in its own buffer. */
	for (;;) {
		unsigned char c;
		ssize_t r = read(STDIN_FILENO, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || c == '\n')
			break;
		if (n + 1 >= cap) {
			wipe(out, cap);
			fprintf(stderr, PROG ": the identifier on stdin is too long\n");
			return -1;
		}
		out[n++] = (char)c;
	}
	if (n > 0 && out[n - 1] == '\r')
		n--;
	out[n] = '\0';
	if (n == 0) {
		fprintf(stderr, PROG ": no identifier on stdin\n");
		return -1;
	}
	return 0;
}

/* Copies a command-line argument that may hold a TID into out and wipes it
 * from argv, which shortens the window in which ps shows it. */
static int ctl_take_arg(const char *arg, char *out, size_t cap)
{
	size_t n = strlen(arg);

	if (n >= cap) {
		wipe((char *)arg, n);
		fprintf(stderr, PROG ": the argument is too long\n");
		return -1;
	}
	memcpy(out, arg, n + 1);
	wipe((char *)arg, n);
	return 0;
}

static int cmd_ctl(int argc, char **argv)
{
	static const char *const simple[] = { "total", "void", "cancel", "status" };
	struct cmdline cl;
	struct aconf *cfg = NULL;
	char tidbuf[CONTROL_ARG_MAX + 2];
	json_t *req = NULL;
	char *line = NULL;
	const char *cmd;
	int rc, fd = -1, ret = 1;

	memset(tidbuf, 0, sizeof tidbuf);
	if ((rc = parse_cmdline(argc, argv, 2, &cl)) != 0)
		return rc;
	if (cl.help) {
		fputs(usage_ctl, stdout);
		return 0;
	}
	if (cl.npos == 0)
		return usage_error("ctl needs a command: total, void, cancel, status, events, "
				   "tid or scan");
	cmd = cl.pos[0];
	if (strcmp(cmd, "events") == 0) {
		if (cl.npos != 1)
			return usage_error("'%s' takes no argument", cmd);
	} else if (strcmp(cmd, "tid") == 0 || strcmp(cmd, "scan") == 0) {
		if (cl.npos != 2)
			return usage_error("'%s' needs one argument", cmd);
	} else {
		bool known = false;
		for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
			known |= strcmp(cmd, simple[i]) == 0;
		if (!known)
			return usage_error("unknown ctl command '%s'", cmd);
		if (cl.npos != 1)
			return usage_error("'%s' takes no argument", cmd);
	}
	/* Before anything that can fail: an identifier given on the command line
	 * leaves argv at once, whatever happens next. */
	if (strcmp(cmd, "tid") == 0 && strcmp(cl.pos[1], "-") != 0) {
		wipe((char *)cl.pos[1], strlen(cl.pos[1]));
		return usage_error("ctl tid takes the identifier on stdin only ('tid -'): on the "
				   "command line ps, shell history and audit logs keep it");
	}
	/* A scanned loyalty number is a TID too: `scan -` reads the code from
	 * stdin, and one given on the command line leaves argv at once. */
	if (strcmp(cmd, "scan") == 0 &&
	    (strcmp(cl.pos[1], "-") == 0 ? ctl_read_tid(tidbuf, sizeof tidbuf)
					  : ctl_take_arg(cl.pos[1], tidbuf, sizeof tidbuf)) < 0)
		goto out;
	if (load_config(cl.config, &cfg))
		goto out;

	if (strcmp(cmd, "tid") == 0) {
		if (ctl_read_tid(tidbuf, sizeof tidbuf) < 0)
			goto out;
		req = json_pack("{s:s, s:s}", "cmd", "tid", "tid", tidbuf);
	} else if (strcmp(cmd, "scan") == 0) {
		req = json_pack("{s:s, s:s}", "cmd", "scan", "code", tidbuf);
	} else if (strcmp(cmd, "events") != 0) {
		req = json_pack("{s:s}", "cmd", cmd);
	}
	wipe(tidbuf, sizeof tidbuf);

	if ((fd = ctl_connect(cfg->socket)) < 0)
		goto out;
	if (strcmp(cmd, "events") == 0) {
		rc = ctl_read_lines(fd, -1, ctl_on_event_line);
		fprintf(stderr, PROG ": the agent closed the control socket\n");
		goto out;
	}
	if (!req || !(line = jsonx_dump(req))) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	size_t n = strlen(line);
	if (ctl_send_all(fd, line, n) < 0 || ctl_send_all(fd, "\n", 1) < 0) {
		fprintf(stderr, PROG ": cannot send to the agent: %s\n", strerror(errno));
		goto out;
	}
	rc = ctl_read_lines(fd, CTL_REPLY_TIMEOUT_MS, ctl_on_reply_line);
	if (rc == -2) {
		fprintf(stderr, PROG ": no answer from the agent within %d ms\n",
			CTL_REPLY_TIMEOUT_MS);
		goto out;
	}
	if (rc < 0) {
		fprintf(stderr, PROG ": the agent closed the connection without answering\n");
		goto out;
	}
	ret = ctl_reply_ok ? 0 : 1;
	/* Nothing set aside stays stuck silently: a monitoring script sees it. */
	if (ret == 0 && strcmp(cmd, "status") == 0 && ctl_reply_rejected > 0) {
		fprintf(stderr,
			PROG ": %ld basket(s) set aside (refused by central); see `pos-agent spool "
			     "list -c %s`, then `pos-agent spool retry`\n",
			ctl_reply_rejected, cl.config);
		ret = 1;
	}
out:
	wipe(tidbuf, sizeof tidbuf);
	if (line)
		wipe_str_free(line);
	json_decref(req);
	if (fd >= 0)
		close(fd);
	aconf_free(cfg);
	return ret;
}

/* ------------------------------------------------------------ spool */

struct spool_cli {
	long waiting, set_aside;
};

static int spool_cli_list(const struct spool_entry *en, void *arg)
{
	struct spool_cli *sc = arg;
	char when[TIME_RFC3339_LEN];

	time_format_rfc3339(en->created_ms, when);
	if (sc->waiting + sc->set_aside == 0)
		printf("%-36s  %-24s  %-9s  %8s  %s\n", "TXN", "SPOOLED", "STATE", "ATTEMPTS",
		       "REASON");
	printf("%-36s  %-24s  %-9s  %8d  %s\n", en->txn, when,
	       en->set_aside ? "set-aside" : "waiting", en->attempts, en->set_aside ? en->reason : "-");
	if (en->set_aside)
		sc->set_aside++;
	else
		sc->waiting++;
	return 0;
}

static int spool_cli_export(const struct spool_entry *en, void *arg)
{
	struct spool_cli *sc = arg;
	char when[TIME_RFC3339_LEN], *line;
	json_t *basket = NULL, *o;
	json_error_t je;

	time_format_rfc3339(en->created_ms, when);
	if (en->body)
		basket = json_loadb(en->body, en->len, 0, &je);
	o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:o}", "txn", en->txn, "spooled", when, "state",
		      en->set_aside ? "set_aside" : "waiting", "reason", en->reason, "attempts",
		      en->attempts, "basket", basket ? basket : json_null());
	if (!o || !(line = jsonx_dump(o))) {
		json_decref(o);
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	puts(line);
	free(line);
	json_decref(o);
	if (en->set_aside)
		sc->set_aside++;
	else
		sc->waiting++;
	return 0;
}

/* retry goes through a running agent (the one writer of the rows it
 * sends), else to the file. */
static int spool_cli_retry(const struct aconf *cfg, struct spool *s)
{
	static const char req[] = "{\"cmd\":\"retry\"}\n";
	long moved = 0;
	pos_err e;
	int fd = ctl_connect_q(cfg->socket, true), rc;

	if (fd >= 0) {
		ctl_reply_ok = 0;
		if (ctl_send_all(fd, req, sizeof req - 1) < 0 ||
		    (rc = ctl_read_lines(fd, CTL_REPLY_TIMEOUT_MS, ctl_on_reply_quiet)) < 0 ||
		    !ctl_reply_ok) {
			close(fd);
			fprintf(stderr, PROG ": the agent did not take the retry; nothing changed\n");
			return 1;
		}
		close(fd);
		printf("%ld basket(s) moved back to waiting; the running agent sends them now\n",
		       ctl_reply_moved);
		return 0;
	}
	if (spool_retry(s, NULL, &moved, &e) < 0) {
		fprintf(stderr, PROG ": %s\n", e.msg);
		return 1;
	}
	printf("%ld basket(s) moved back to waiting; the agent sends them when it starts\n", moved);
	return 0;
}

static int cmd_spool(int argc, char **argv)
{
	struct cmdline cl;
	struct aconf *cfg = NULL;
	struct spool *s = NULL;
	struct spool_cli sc = { 0, 0 };
	const char *sub;
	pos_err e;
	int rc, ret = 1;

	if ((rc = parse_cmdline(argc, argv, 1, &cl)) != 0)
		return rc;
	if (cl.help) {
		fputs(usage_spool, stdout);
		return 0;
	}
	if (cl.npos != 1)
		return usage_error("spool needs one of list, retry or export");
	sub = cl.pos[0];
	if (strcmp(sub, "list") != 0 && strcmp(sub, "retry") != 0 && strcmp(sub, "export") != 0)
		return usage_error("unknown spool command '%s' (list, retry or export)", sub);
	if (load_config(cl.config, &cfg))
		return 1;
	if (access(cfg->spool, F_OK) != 0) {
		/* Opening would create it: nothing was ever spooled here. */
		if (strcmp(sub, "list") == 0)
			printf("0 basket(s): %s not created yet\n", cfg->spool);
		ret = 0;
		goto out;
	}
	if (spool_open(cfg->spool, &s, &e) < 0) {
		fprintf(stderr, PROG ": %s\n", e.msg);
		goto out;
	}
	if (strcmp(sub, "retry") == 0) {
		ret = spool_cli_retry(cfg, s);
		goto out;
	}
	rc = spool_each(s, strcmp(sub, "export") == 0,
			strcmp(sub, "export") == 0 ? spool_cli_export : spool_cli_list, &sc, &e);
	if (rc < 0) {
		fprintf(stderr, PROG ": %s\n", rc == -1 ? "export failed" : e.msg);
		goto out;
	}
	if (strcmp(sub, "list") == 0)
		printf("%ld basket(s): %ld waiting for central, %ld set aside%s\n",
		       sc.waiting + sc.set_aside, sc.waiting, sc.set_aside,
		       sc.set_aside ? " (pos-agent spool retry sends them again)" : "");
	ret = 0;
out:
	spool_close(s);
	aconf_free(cfg);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "run", cmd_run },	    { "ctl", cmd_ctl },	    { "doctor", cmd_doctor },
		{ "check", cmd_check }, { "spool", cmd_spool },
	};

	wipe_harden_process();
	json_set_alloc_funcs(main_json_malloc, main_json_free);
	if (argc < 2)
		return usage_error("missing command (run, ctl, doctor, check or spool)");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		version_print(stdout, PROG);
		return 0;
	}
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 2, argv + 2);
	if (strpbrk(argv[1], "0123456789"))
		return usage_error("unknown command (run, ctl, doctor, check or spool)");
	return usage_error("unknown command '%s' (run, ctl, doctor, check or spool)", argv[1]);
}
