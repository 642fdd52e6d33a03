/*
 * pos-central: the household resolver (design sections 5 and 8).
 *
 *   setup, terminal-cert, store-cert, terminal-revoke, terminal list, rotate-key
 *                                      central's home and terminals (setup.c)
 *   serve, check                       the HTTPS resolver (server.c, routes.c) and
 *                                      what it would refuse at start
 *   household, history, backup         maintenance, histories, backups (admin.c)
 *   offer                              offers: create, list, end, report
 *                                      (offer_cli.c)
 *   seal-test                          a test aid: seals a TID read on stdin
 *                                      into an EncTID with central.pub, so
 *                                      shell tests need no HPKE of their own
 *
 * Exit status: 0 ok, 1 failure, 2 usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "cconf.h"
#include "dbcli.h"
#include "envelope.h"
#include "keyring.h"
#include "keys.h"
#include "keysproc.h"
#include "log.h"
#include "conv_cli.h"
#include "offer_cli.h"
#include "outbox.h"
#include "vendor_cli.h"
#include "server.h"
#include "setup.h"
#include "tid.h"
#include "version.h"
#include "wipe.h"

#define SERVE_USAGE "usage: pos-central serve -c CONF [--listen HOST:PORT]"
#define SEAL_USAGE                                                                        \
	"usage: pos-central seal-test --pub central.pub --store S --terminal T --txn X "  \
	"[--raw] < tid"

/* One line and status 2. An argument is echoed only when it holds no
 * digit: a mistyped TID or phone number may be what was passed. */
static int main_usage_error(const char *cmd, const char *usage, const char *what,
			    const char *arg)
{
	(void)usage;
	if (arg && strpbrk(arg, "0123456789"))
		arg = NULL;
	fprintf(stderr, "pos-central %s: %s%s%s%s (see pos-central %s --help)\n", cmd, what,
		arg ? " '" : "", arg ? arg : "", arg ? "'" : "", cmd);
	return 2;
}

/* The wrong argument, named: an option that takes a value but has none,
 * or one this command does not know. */
static int main_bad_arg(const char *cmd, const char *usage, const char *arg, bool wants_value)
{
	if (wants_value)
		return main_usage_error(cmd, usage, "this option needs a value:", arg);
	if (arg[0] == '-')
		return main_usage_error(cmd, usage, "unknown option", arg);
	return main_usage_error(cmd, usage, "unexpected argument", arg);
}

static bool main_is_help(const char *s)
{
	return strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0 || strcmp(s, "help") == 0;
}

/* The TLS files serve loads, each opened once here: a missing or
 * unreadable one is named with its key and the system's reason, not an
 * OpenSSL code. */
static int main_tls_files(const struct cconf *c, pos_err *e)
{
	const struct {
		const char *key, *path;
		bool needed;
	} f[] = {
		{ "[tls] ca", c->tls_ca, true },
		{ "[tls] cert", c->tls_cert, true },
		{ "[tls] key", c->tls_key, true },
		{ "[tls] public_cert", c->tls_public_cert, c->public_listen[0] != '\0' },
		{ "[tls] public_key", c->tls_public_key, c->public_listen[0] != '\0' },
	};

	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		int fd;

		if (!f[i].needed)
			continue;
		fd = open(f[i].path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return err_set(e, POS_EIO, "%s: %s: cannot read it: %s (%s names it)", c->path,
				       f[i].path, strerror(errno), f[i].key);
		close(fd);
	}
	return 0;
}

/* pos-central serve -c CONF [--listen HOST:PORT]. The keys process is
 * forked first, before any thread, socket or key file: this process never
 * reads a key that opens an EncTID (design section 10). */
static int main_serve(int argc, char **argv)
{
	static struct cconf conf;
	const char *path = NULL, *listen_s = NULL;
	struct keyring *tokens = NULL;
	struct keysproc *kp = NULL;
	pos_err e = { 0 };
	int level, rc;

	for (int i = 1; i < argc; i++) {
		if (main_is_help(argv[i])) {
			printf("%s\n", SERVE_USAGE);
			return 0;
		}
		bool is_conf = strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0;
		bool is_listen = strcmp(argv[i], "--listen") == 0;

		if ((is_conf || is_listen) && i + 1 >= argc)
			return main_bad_arg("serve", SERVE_USAGE, argv[i], true);
		if (is_conf)
			path = argv[++i];
		else if (is_listen)
			listen_s = argv[++i];
		else
			return main_bad_arg("serve", SERVE_USAGE, argv[i], false);
	}
	if (!path)
		return main_usage_error("serve", SERVE_USAGE, "-c CONF is required", NULL);
	if (listen_s) {
		char host[SERVER_LISTEN_MAX], port[8];

		if (server_parse_listen(listen_s, host, port, &e) < 0) {
			fprintf(stderr, "pos-central serve: --listen wants HOST:PORT (%s)\n", e.msg);
			return 2;
		}
	}
	if (cconf_load(path, &conf, &e) < 0 || main_tls_files(&conf, &e) < 0) {
		fprintf(stderr, "pos-central serve: %s\n", e.msg);
		return 1;
	}
	level = log_level_parse(conf.log_level);
	log_init("pos-central", level < 0 ? LOG_LVL_INFO : (enum log_level)level, 0);
	if ((rc = keysproc_start(&conf, (size_t)server_nworkers(&conf) + 1, &kp, &e)) == 0 &&
	    (rc = keyring_load_tokens(&conf, &tokens, &e)) == 0)
		rc = server_run(&conf, listen_s, tokens, kp, &e);
	keyring_free(tokens);
	keysproc_stop(kp);
	if (rc < 0) {
		fprintf(stderr, "pos-central serve: %s\n", e.msg);
		return 1;
	}
	return 0;
}

#define CHECK_USAGE "usage: pos-central check -c CONF"

/* pos-central check -c CONF: what serve would refuse, found without serving:
 * the file's syntax and values (FILE:LINE), every key and token file it
 * names (present, private, well-formed), the TLS files and the database's
 * place. Nothing is written. */
static int main_check(int argc, char **argv)
{
	static struct cconf conf;
	struct keyring *kr = NULL;
	const char *path = NULL;
	pos_err e = { 0 };

	for (int i = 1; i < argc; i++) {
		if (main_is_help(argv[i])) {
			printf("%s\n", CHECK_USAGE);
			return 0;
		}
		bool is_conf = strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0;

		if (is_conf && i + 1 >= argc)
			return main_bad_arg("check", CHECK_USAGE, argv[i], true);
		if (is_conf)
			path = argv[++i];
		else
			return main_bad_arg("check", CHECK_USAGE, argv[i], false);
	}
	if (!path)
		return main_usage_error("check", CHECK_USAGE, "-c CONF is required", NULL);
	log_init("pos-central", LOG_LVL_WARN, 0);
	if (cconf_load(path, &conf, &e) < 0 || main_tls_files(&conf, &e) < 0 ||
	    keyring_load(&conf, &kr, &e) < 0 ||
	    server_check(&conf, &e) < 0) {
		keyring_free(kr);
		fprintf(stderr, "%s\n", e.msg);
		return 1;
	}
	keyring_free(kr);
	printf("configuration OK\n");
	return 0;
}

/* Reads one line of at most cap-1 bytes from stdin, without its newline. */
static int main_read_line(char *buf, size_t cap)
{
	size_t n = 0;
	int ch;

	while ((ch = getchar()) != EOF && ch != '\n') {
		if (n + 1 >= cap)
			return -1;
		buf[n++] = (char)ch;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return n > 0 ? 0 : -1;
}

/* pos-central seal-test: the agent's side of resolve, for tests. --raw
 * seals the line as it is (to test central's refusal of a non-TID). */
static int main_seal_test(int argc, char **argv)
{
	const char *pub = NULL, *store = NULL, *terminal = NULL, *txn = NULL;
	unsigned char pk[32];
	char kid[KEYS_KID_LEN + 1], info[ENVELOPE_INFO_MAX], enc[ENVELOPE_B64_MAX];
	char line[ENVELOPE_MAX_PT + 2], tid[TID_MAX];
	enum tid_kind kind;
	bool raw = false;
	pos_err e = { 0 };
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		const char **dst = NULL;

		if (main_is_help(argv[i])) {
			printf("%s\n", SEAL_USAGE);
			return 0;
		}
		if (strcmp(argv[i], "--raw") == 0) {
			raw = true;
			continue;
		}
		if (strcmp(argv[i], "--pub") == 0)
			dst = &pub;
		else if (strcmp(argv[i], "--store") == 0)
			dst = &store;
		else if (strcmp(argv[i], "--terminal") == 0)
			dst = &terminal;
		else if (strcmp(argv[i], "--txn") == 0)
			dst = &txn;
		if (!dst || i + 1 >= argc)
			return main_bad_arg("seal-test", SEAL_USAGE, argv[i], dst != NULL);
		*dst = argv[++i];
	}
	if (!pub || !store || !terminal || !txn)
		return main_usage_error("seal-test", SEAL_USAGE,
					"--pub, --store, --terminal and --txn are required", NULL);
	if (keys_load_public(pub, pk, kid, &e) < 0 ||
	    envelope_info(info, store, terminal, txn, &e) < 0)
		goto out;
	if (main_read_line(line, sizeof line) < 0) {
		err_set(&e, POS_EINVAL, "expected one TID line on stdin (at most %d bytes)",
			ENVELOPE_MAX_PT);
		goto out;
	}
	tid[0] = '\0';
	if (!raw && tid_normalize(line, tid, &kind, &e) < 0)
		goto out;
	if (envelope_seal_tid(pk, kid, info, raw ? line : tid, enc, &e) < 0)
		goto out;
	printf("{\"kid\":\"%s\",\"enc\":\"%s\"}\n", kid, enc);
	rc = 0;
out:
	wipe(line, sizeof line);
	wipe(tid, sizeof tid);
	if (rc)
		fprintf(stderr, "pos-central seal-test: %s\n", e.msg[0] ? e.msg : "failed");
	return rc;
}

struct main_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help; /* NULL: not listed */
};

static const struct main_cmd main_cmds[] = {
	{ "setup", setup_main, "setup DIR                     make a new central home" },
	{ "terminal-cert", terminal_cert_main,
	  "terminal-cert DIR --store S --terminal T --out OUT [--renew]\n"
	  "                                issue a terminal's certificate and folder" },
	{ "store-cert", store_cert_main,
	  "store-cert DIR --store S --out OUT [--host H]...\n"
	  "                                issue a store controller's certificate and folder" },
	{ "terminal-revoke", terminal_revoke_main,
	  "terminal-revoke DIR --store S --terminal T [--cert FILE]\n"
	  "                                refuse a terminal's certificates (crl.pem)" },
	{ "terminal", terminal_main,
	  "terminal list -c CONF [--format table|csv]\n"
	  "                                every certificate issued: expiry, revoked" },
	{ "rotate-key", rotate_key_main, "rotate-key -c CONF            new HPKE key pair" },
	{ "check", main_check, "check -c CONF                 \"configuration OK\" or FILE:LINE and the problem" },
	{ "serve", main_serve, "serve -c CONF [--listen HOST:PORT]\n"
			       "                                run the resolver (SIGTERM drains)" },
	{ "household", household_main,
	  "household enroll|show|merge|unlink -c CONF ...\n"
	  "                                household maintenance" },
	{ "history", history_main,
	  "history -c CONF --hhid H [--from D] [--to D] [--format csv|json|table]" },
	{ "backup", backup_main,
	  "backup -c CONF --out FILE     a consistent copy of the database, while serving" },
	{ "retention", retention_main,
	  "retention -c CONF --keep-months N\n"
	  "                                remove baskets of months before the N last ones" },
	{ "store-copy", store_copy_main,
	  "store-copy -c CONF --to DSN   copy a SQLite store into an empty PostgreSQL" },
	{ "offer", offer_main,
	  "offer create|list|end|report -c CONF ...\n"
	  "                                offers for phones, redeemed at the lanes" },
	{ "items", items_main,
	  "items import -c CONF < items.csv\n"
	  "                                the item master (names on receipts)\n"
	  "  items relate -c CONF GTIN_A GTIN_B --kind requires|accessory\n"
	  "  items related -c CONF GTIN   bought with GTIN (co-purchase lift)" },
	{ "vendor", vendor_main,
	  "vendor add|report -c CONF ...\n"
	  "                                vendors: tokens, signing secrets, event reports" },
	{ "staff", staff_main,
	  "staff add -c CONF --name N (--store S | --all)\n"
	  "                                a staff token for the console" },
	{ "crm", outbox_crm_main,
	  "crm status -c CONF            the CRM and SMS outboxes' backlog" },
	{ "version", NULL, "version                       the version and the source revision" },
	{ "seal-test", main_seal_test,
	  "seal-test --pub central.pub --store S --terminal T --txn X < tid\n"
	  "                                test aid: print an EncTID for a TID on stdin" },
};

static void main_help(FILE *f)
{
	fprintf(f, "usage: pos-central COMMAND [ARGS]   (COMMAND --help for its usage)\n\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof main_cmds / sizeof main_cmds[0]; i++)
		if (main_cmds[i].help)
			fprintf(f, "  %s\n", main_cmds[i].help);
}

int main(int argc, char **argv)
{
	wipe_harden_process();
	if (argc < 2) {
		main_help(stderr);
		return 2;
	}
	if (main_is_help(argv[1])) {
		main_help(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		version_print(stdout, "pos-central");
		return 0;
	}
	for (size_t i = 0; i < sizeof main_cmds / sizeof main_cmds[0]; i++)
		if (strcmp(argv[1], main_cmds[i].name) == 0)
			return main_cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "pos-central: unknown command '%s' (see pos-central --help)\n",
		strpbrk(argv[1], "0123456789") ? "..." : argv[1]);
	return 2;
}
