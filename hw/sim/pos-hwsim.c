/*
 * pos-hwsim: a scanner or card reader on a pseudo-terminal, so the agent's
 * whole device path (open, line settings, framing, unplug, reconnect) runs
 * in tests and the demo exactly as with hardware.
 *
 *   pos-hwsim scanner|cardreader [--profile NAME|PATH] [--aim ID] [--link PATH]
 *             [--file F] [--delay-ms N] [--split] [--noise] [--hold] [CODE...]
 *
 * The first stdout line is the pty slave path (flushed); after an !unplug the
 * new path follows on another line. --link keeps PATH -> current slave
 * (replaced atomically), so a terminal.conf can name one stable port.
 *
 * Emits each CODE argument, then each line of --file, then each line of
 * stdin, framed per the profile. Lines starting with '!' are commands:
 *   !unplug       the device goes away: a new pty is made, the link moved,
 *                 the old master closed (the old slave path disappears)
 *   !noise        random bytes incl. non-printables, then a terminator
 *   !split CODE   the framed code in several small writes, short pauses
 *   !sleep MS     pause
 *   !half CODE    CODE without its terminator: a half line
 * Card reader lines: a raw swipe string, "card PAN [YYMM]" (tracks 1 and 2,
 * name TEST/CARD, service code 101), or "bad" (%E?;E?, a failed read).
 *
 * On stdin EOF it waits (up to 3 s) until the agent has read what was sent,
 * then exits; with --hold it keeps the device open until SIGTERM/SIGINT.
 *
 * pty caveat for callers: bytes written before the agent opens the slave
 * sit in the pty buffer and are then discarded by the agent's input flush
 * (a real scanner's stale bytes would be too). Wait for the agent's
 * "device up" event before sending codes.
 *
 * It logs what it did to stderr: counts and lengths, never codes or card
 * digits (a loyalty barcode or a PAN is a TID).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "profile.h"
#include "version.h"
#include "wipe.h"

#define SIM_LINE_MAX 4096
#define SIM_FRAME_MAX (SIM_LINE_MAX + 16)
#define SIM_WRITE_TIMEOUT_MS 5000
#define SIM_DRAIN_TIMEOUT_MS 3000

enum sim_kind { SIM_SCANNER = 1, SIM_CARDREADER };

struct sim {
	enum sim_kind kind;
	struct profile prof;
	char aim[8];
	const char *link;
	unsigned delay_ms;
	bool split, noise, hold;
	int master;
	int slave; /* held open: keeps the pty alive and lets us see unread input */
	char slave_path[64];
	unsigned long sent;
};

static volatile sig_atomic_t sim_stop;

static void sim_on_signal(int sig)
{
	(void)sig;
	sim_stop = 1;
}

static void sim_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (!sim_stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void sim_usage(FILE *f)
{
	fprintf(f, "usage: pos-hwsim scanner|cardreader [--profile NAME|PATH] [--aim ID]\n"
		   "                 [--link PATH] [--file F] [--delay-ms N] [--split] [--noise]\n"
		   "                 [--hold] [CODE...]\n"
		   "       pos-hwsim --version\n"
		   "stdin lines are codes (card reader: swipe strings, 'card PAN [YYMM]', 'bad')\n"
		   "or commands: !unplug  !noise  !split CODE  !sleep MS  !half CODE\n");
}

/* A pty whose slave is already raw: nothing the agent reads is echoed or
 * translated, even before the agent sets its own line settings. */
static int sim_pty_open(struct sim *s, pos_err *e)
{
	struct termios t;
	int m, sl = -1;

	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return err_set(e, POS_EIO, "posix_openpt: %s", strerror(errno));
	if (grantpt(m) < 0 || unlockpt(m) < 0 ||
	    ptsname_r(m, s->slave_path, sizeof s->slave_path) != 0) {
		err_set(e, POS_EIO, "pty setup: %s", strerror(errno));
		goto fail;
	}
	sl = open(s->slave_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (sl < 0 || tcgetattr(sl, &t) < 0) {
		err_set(e, POS_EIO, "%s: %s", s->slave_path, strerror(errno));
		goto fail;
	}
	cfmakeraw(&t);
	if (tcsetattr(sl, TCSANOW, &t) < 0) {
		err_set(e, POS_EIO, "%s: raw mode: %s", s->slave_path, strerror(errno));
		goto fail;
	}
	/* Writes never block forever: a full buffer (nobody reading) is a
	 * bounded wait, then the frame is dropped and logged. */
	if (fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK) < 0) {
		err_set(e, POS_EIO, "pty: %s", strerror(errno));
		goto fail;
	}
	s->master = m;
	s->slave = sl;
	return 0;
fail:
	if (sl >= 0)
		close(sl);
	close(m);
	return e ? e->code : POS_EIO;
}

static int sim_link_update(struct sim *s, pos_err *e)
{
	char tmp[PATH_MAX];
	int n;

	if (!s->link)
		return 0;
	n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", s->link, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp)
		return err_set(e, POS_EINVAL, "--link path too long");
	unlink(tmp);
	if (symlink(s->slave_path, tmp) < 0)
		return err_set(e, POS_EIO, "symlink %s: %s", tmp, strerror(errno));
	if (rename(tmp, s->link) < 0) {
		int err = errno;
		unlink(tmp);
		return err_set(e, POS_EIO, "rename to %s: %s", s->link, strerror(err));
	}
	return 0;
}

/* Removes the link only while it still names our slave. */
static void sim_link_remove(const struct sim *s)
{
	char cur[PATH_MAX];
	ssize_t n;

	if (!s->link)
		return;
	n = readlink(s->link, cur, sizeof cur - 1);
	if (n < 0)
		return;
	cur[n] = '\0';
	if (strcmp(cur, s->slave_path) == 0)
		unlink(s->link);
}

static void sim_announce(const struct sim *s)
{
	printf("%s\n", s->slave_path);
	fflush(stdout);
}

static void sim_pty_close(struct sim *s)
{
	if (s->slave >= 0)
		close(s->slave);
	if (s->master >= 0)
		close(s->master);
	s->slave = s->master = -1;
}

/* Writes all of buf, waiting (bounded) while the pty buffer is full. */
static int sim_write(struct sim *s, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0 && !sim_stop) {
		ssize_t w = write(s->master, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pfd = { s->master, POLLOUT, 0 };
			if (poll(&pfd, 1, SIM_WRITE_TIMEOUT_MS) == 0) {
				log_warn("sim_write", "result=dropped reason=\"pty buffer full: nobody "
						      "reads the device\" bytes=%zu", n);
				return -1;
			}
			continue;
		}
		log_warn("sim_write", "result=failed error=\"%s\"", strerror(errno));
		return -1;
	}
	return 0;
}

/* Sends bytes as the device would: at once, or in small pieces. */
static void sim_send(struct sim *s, const char *buf, size_t n, bool split)
{
	if (!split) {
		sim_write(s, buf, n);
		return;
	}
	for (size_t off = 0, piece = 1; off < n && !sim_stop; piece = piece % 3 + 1) {
		size_t k = n - off < piece ? n - off : piece;
		if (sim_write(s, buf + off, k) < 0)
			return;
		off += k;
		sim_sleep_ms(5);
	}
}

static size_t sim_terminator(const struct sim *s, char *out)
{
	switch (s->prof.term) {
	case FRAMER_TERM_CR:
		out[0] = '\r';
		return 1;
	case FRAMER_TERM_LF:
		out[0] = '\n';
		return 1;
	case FRAMER_TERM_CRLF:
	case FRAMER_TERM_EOL:
		out[0] = '\r';
		out[1] = '\n';
		return 2;
	case FRAMER_TERM_ETX:
		out[0] = 0x03;
		return 1;
	case FRAMER_TERM_NONE:
		break;
	}
	return 0;
}

/* Without a terminator the agent ends a code when the line goes quiet:
 * keep quiet for twice its timeout. */
static void sim_gap(const struct sim *s)
{
	if (s->prof.term == FRAMER_TERM_NONE)
		sim_sleep_ms(2 * s->prof.idle_timeout_ms);
}

/* Frames data (prefix, AIM id for scanners, terminator) and sends it. */
static void sim_emit(struct sim *s, const char *data, size_t n, bool split, bool terminate,
		     const char *what)
{
	char frame[SIM_FRAME_MAX];
	size_t len = 0;

	if (n > SIM_LINE_MAX) {
		log_warn("sim_emit", "what=%s result=skipped reason=\"longer than %d bytes\"", what,
			 SIM_LINE_MAX);
		return;
	}
	if (s->prof.prefix == FRAMER_PREFIX_STX)
		frame[len++] = 0x02;
	if (s->kind == SIM_SCANNER && s->aim[0]) {
		memcpy(frame + len, s->aim, strlen(s->aim));
		len += strlen(s->aim);
	}
	memcpy(frame + len, data, n);
	len += n;
	if (terminate)
		len += sim_terminator(s, frame + len);
	sim_send(s, frame, len, split);
	wipe(frame, len);
	s->sent++;
	log_info("sim_emit", "what=%s bytes=%zu split=%s terminated=%s", what, len,
		 split ? "yes" : "no", terminate ? "yes" : "no");
	if (terminate)
		sim_gap(s);
}

static void sim_noise(struct sim *s)
{
	unsigned char buf[40];
	char term[2];
	size_t n = 8 + (size_t)(rand() % 24), k;

	for (size_t i = 0; i < n; i++) {
		unsigned char b;
		do
			b = (unsigned char)(rand() & 0xff);
		/* No framing bytes: the noise must stay one (bad) frame. */
		while (b == 0x02 || b == 0x03 || b == '\r' || b == '\n');
		buf[i] = b;
	}
	buf[0] = 0x07;     /* at least one byte no code may contain */
	buf[n - 1] = 0x1b; /* and one more, however the agent splits it */
	sim_send(s, (const char *)buf, n, false);
	k = sim_terminator(s, term);
	if (k)
		sim_send(s, term, k, false);
	log_info("sim_noise", "bytes=%zu", n + k);
	sim_gap(s);
}

/* Builds the two tracks of a test card from its PAN. */
static int sim_card(struct sim *s, const char *args)
{
	char pan[24], exp[8], swipe[160];
	const char *sp;
	size_t plen;
	int n, rc = -1;

	memset(pan, 0, sizeof pan);
	memset(exp, 0, sizeof exp);
	while (*args == ' ')
		args++;
	sp = strchr(args, ' ');
	plen = sp ? (size_t)(sp - args) : strlen(args);
	if (plen < 12 || plen > 19 || strspn(args, "0123456789") < plen) {
		log_warn("sim_card", "result=skipped reason=\"card needs a PAN of 12-19 digits\"");
		goto out;
	}
	memcpy(pan, args, plen);
	memcpy(exp, "3012", 5);
	if (sp) {
		while (*sp == ' ')
			sp++;
		if (strlen(sp) != 4 || strspn(sp, "0123456789") != 4) {
			log_warn("sim_card", "result=skipped reason=\"expiry must be YYMM\"");
			goto out;
		}
		memcpy(exp, sp, 5);
	}
	n = snprintf(swipe, sizeof swipe, "%%B%s^TEST/CARD^%s101000000000?;%s=%s10100000?", pan, exp,
		     pan, exp);
	if (n > 0 && (size_t)n < sizeof swipe) {
		sim_emit(s, swipe, (size_t)n, s->split, true, "card");
		rc = 0;
	}
	wipe(swipe, sizeof swipe);
out:
	wipe(pan, sizeof pan);
	wipe(exp, sizeof exp);
	return rc;
}

static int sim_unplug(struct sim *s, pos_err *e)
{
	int old_m = s->master, old_s = s->slave;
	char old_path[64];

	memcpy(old_path, s->slave_path, sizeof old_path);
	/* The new pty first, so it gets another number: a re-plugged USB
	 * scanner, too, often comes back under another name. */
	if (sim_pty_open(s, e) < 0) {
		s->master = old_m;
		s->slave = old_s;
		memcpy(s->slave_path, old_path, sizeof old_path);
		return e->code;
	}
	if (sim_link_update(s, e) < 0)
		log_warn("sim_link", "error=\"%s\"", e->msg);
	close(old_s);
	close(old_m);
	log_info("sim_unplug", "old=%s new=%s", old_path, s->slave_path);
	sim_announce(s);
	return 0;
}

static bool sim_cmd(const char *line, const char *cmd, const char **arg)
{
	size_t n = strlen(cmd);

	if (strncmp(line, cmd, n) != 0 || (line[n] != '\0' && line[n] != ' '))
		return false;
	*arg = line + n;
	while (**arg == ' ')
		(*arg)++;
	return true;
}

/* One input item: a command, or a code/swipe to send. The line is wiped
 * by the caller. */
static void sim_line(struct sim *s, char *line)
{
	const char *arg;
	size_t n = strlen(line);
	pos_err e;

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n == 0)
		return;
	if (sim_cmd(line, "!unplug", &arg)) {
		if (sim_unplug(s, &e) < 0)
			log_error("sim_unplug", "error=\"%s\"", e.msg);
		return;
	}
	if (sim_cmd(line, "!noise", &arg)) {
		sim_noise(s);
		return;
	}
	if (sim_cmd(line, "!sleep", &arg)) {
		char *end;
		errno = 0;
		unsigned long ms = strtoul(arg, &end, 10);
		if (errno || end == arg || *end || ms > 600000)
			log_warn("sim_sleep", "result=skipped reason=\"want !sleep MS (0..600000)\"");
		else
			sim_sleep_ms((unsigned)ms);
		return;
	}
	if (sim_cmd(line, "!split", &arg)) {
		sim_emit(s, arg, strlen(arg), true, true, "split");
		return;
	}
	if (sim_cmd(line, "!half", &arg)) {
		sim_emit(s, arg, strlen(arg), false, false, "half");
		return;
	}
	if (line[0] == '!') {
		log_warn("sim_command", "result=skipped reason=\"unknown command\"");
		return;
	}
	if (s->noise)
		sim_noise(s);
	if (s->kind == SIM_CARDREADER) {
		if (sim_cmd(line, "card", &arg)) {
			sim_card(s, arg);
		} else if (strcmp(line, "bad") == 0) {
			sim_emit(s, "%E?;E?", 6, s->split, true, "bad_swipe");
		} else {
			sim_emit(s, line, n, s->split, true, "swipe");
		}
	} else {
		sim_emit(s, line, n, s->split, true, "code");
	}
	if (s->delay_ms)
		sim_sleep_ms(s->delay_ms);
}

/* Reads lines of at most SIM_LINE_MAX; longer ones are skipped whole. */
static void sim_stream(struct sim *s, FILE *in, const char *what)
{
	char line[SIM_LINE_MAX + 2];

	while (!sim_stop && fgets(line, sizeof line, in)) {
		size_t n = strlen(line);
		if (n == sizeof line - 1 && line[n - 1] != '\n') {
			int ch;
			while ((ch = fgetc(in)) != EOF && ch != '\n')
				;
			log_warn("sim_input", "from=%s result=skipped reason=\"line longer than %d\"",
				 what, SIM_LINE_MAX);
			wipe(line, sizeof line);
			continue;
		}
		sim_line(s, line);
		wipe(line, sizeof line);
	}
}

/* Gives the agent time to read what is still in the pty. */
static void sim_drain(struct sim *s)
{
	for (unsigned waited = 0; waited < SIM_DRAIN_TIMEOUT_MS && !sim_stop; waited += 20) {
		int pending = 0;
		if (ioctl(s->slave, FIONREAD, &pending) < 0 || pending == 0)
			return;
		sim_sleep_ms(20);
	}
}

static int sim_parse_args(struct sim *s, int argc, char **argv, int *first_code,
			  const char **file, const char **profile)
{
	int i;

	if (argc < 2) {
		fprintf(stderr, "pos-hwsim: missing device kind (scanner or cardreader)\n");
		return -1;
	}
	if (strcmp(argv[1], "scanner") == 0) {
		s->kind = SIM_SCANNER;
	} else if (strcmp(argv[1], "cardreader") == 0) {
		s->kind = SIM_CARDREADER;
	} else {
		fprintf(stderr, "pos-hwsim: unknown device kind '%.32s' (scanner or cardreader)\n",
			argv[1]);
		return -1;
	}
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strncmp(a, "--", 2) != 0)
			break;
		if (strcmp(a, "--split") == 0) {
			s->split = true;
		} else if (strcmp(a, "--noise") == 0) {
			s->noise = true;
		} else if (strcmp(a, "--hold") == 0) {
			s->hold = true;
		} else if (strcmp(a, "--profile") == 0 && has_val) {
			*profile = argv[++i];
		} else if (strcmp(a, "--link") == 0 && has_val) {
			s->link = argv[++i];
		} else if (strcmp(a, "--file") == 0 && has_val) {
			*file = argv[++i];
		} else if (strcmp(a, "--aim") == 0 && has_val) {
			const char *v = argv[++i];
			if (strlen(v) != 3 || v[0] != ']' || v[1] <= ' ' || v[1] > '~' ||
			    v[2] <= ' ' || v[2] > '~') {
				fprintf(stderr, "pos-hwsim: --aim wants an AIM id like ]E0\n");
				return -1;
			}
			memcpy(s->aim, v, 4);
		} else if (strcmp(a, "--delay-ms") == 0 && has_val) {
			char *end;
			errno = 0;
			unsigned long v = strtoul(argv[++i], &end, 10);
			if (errno || *end || end == argv[i] || v > 600000) {
				fprintf(stderr, "pos-hwsim: --delay-ms wants 0..600000\n");
				return -1;
			}
			s->delay_ms = (unsigned)v;
		} else {
			fprintf(stderr, "pos-hwsim: unknown or incomplete option %s\n",
				strpbrk(a, "0123456789") ? "(with digits, not shown)" : a);
			return -1;
		}
	}
	*first_code = i;
	return 0;
}

int main(int argc, char **argv)
{
	struct sim s;
	struct sigaction sa;
	const char *file = NULL, *profile = NULL;
	int first = argc, rc = 1;
	pos_err e;

	memset(&s, 0, sizeof s);
	s.master = s.slave = -1;
	wipe_harden_process();
	log_init("pos-hwsim", LOG_LVL_INFO, 0);
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			sim_usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0) {
			version_print(stdout, "pos-hwsim");
			return 0;
		}
	}
	/* Each refusal is one line naming the problem; --help has the rest. */
	if (sim_parse_args(&s, argc, argv, &first, &file, &profile) < 0)
		return 2;
	if (!profile)
		profile = s.kind == SIM_CARDREADER ? "msr-ascii" : "scanner-crlf";
	if (profile_load(profile, &s.prof, &e) < 0) {
		fprintf(stderr, "pos-hwsim: %s\n", e.msg);
		return 2;
	}
	if (s.aim[0] && s.kind != SIM_SCANNER) {
		fprintf(stderr, "pos-hwsim: --aim is for scanners\n");
		return 2;
	}

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = sim_on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a signal must end a blocking read of stdin. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());

	if (sim_pty_open(&s, &e) < 0 || sim_link_update(&s, &e) < 0) {
		fprintf(stderr, "pos-hwsim: %s\n", e.msg);
		goto out;
	}
	sim_announce(&s);
	log_info("sim_start", "kind=%s profile=%s path=%s link=%s", argv[1], s.prof.name,
		 s.slave_path, s.link ? s.link : "-");

	for (int i = first; i < argc && !sim_stop; i++) {
		char line[SIM_LINE_MAX + 1];
		size_t n = strlen(argv[i]);
		if (n > SIM_LINE_MAX) {
			log_warn("sim_input", "from=args result=skipped reason=\"longer than %d\"",
				 SIM_LINE_MAX);
			continue;
		}
		memcpy(line, argv[i], n + 1);
		sim_line(&s, line);
		wipe(line, n);
	}
	if (file && !sim_stop) {
		FILE *f = fopen(file, "r");
		if (!f) {
			fprintf(stderr, "pos-hwsim: %s: %s\n", file, strerror(errno));
			goto out;
		}
		sim_stream(&s, f, "file");
		fclose(f);
	}
	if (!sim_stop)
		sim_stream(&s, stdin, "stdin");
	if (!sim_stop)
		sim_drain(&s);
	if (s.hold) {
		sigset_t block, old;
		sigemptyset(&block);
		sigaddset(&block, SIGTERM);
		sigaddset(&block, SIGINT);
		/* Blocked while testing the flag, so no signal slips in between. */
		sigprocmask(SIG_BLOCK, &block, &old);
		while (!sim_stop)
			sigsuspend(&old);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	log_info("sim_stop", "frames=%lu", s.sent);
	rc = 0;
out:
	sim_link_remove(&s);
	sim_pty_close(&s);
	return rc;
}
