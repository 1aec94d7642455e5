/*
 * main.c - command dispatch.  The commands are one table {name, handler,
 * operands, options, help}, and every option is one row of another table;
 * main parses the command line with getopt_long from those rows, so every
 * command accepts `--by NAME` and `--by=NAME`, `-j4` and `-j 4`, options
 * before or after its operands and `--`, and refuses an unknown option, a
 * missing value or operand and an extra operand the same way: a message
 * naming the command, its usage on stderr, and EX_USAGE.  The synopsis
 * printed in usage messages is built from the same rows.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include "provider.h"
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every option, once.  A numeric option has min < max and is checked here. */
static const struct optdef {
	const char *name;  /* long name */
	int short_name;    /* 0: long only */
	const char *value; /* what its value is called; NULL: a flag */
	long min, max;
	/* a table keeps one row per line: FLAG takes no value, TEXT a value that is not checked here */
	/* clang-format off */
} optdefs[CLI_NOPTS] = {
#define FLAG(name) { name, 0, NULL, 0, 0 }
#define TEXT(name, value) { name, 0, value, 0, 0 }
	[CLI_JSON] = FLAG("json"),
	[CLI_DEMO] = FLAG("demo"),
	[CLI_DRAIN] = FLAG("drain"),
	[CLI_JOBS] = { "jobs", 'j', "N", 1, 64 },
	[CLI_BY] = TEXT("by", "NAME"),
	[CLI_NOTES] = TEXT("notes", "TEXT"),
	[CLI_REASON] = TEXT("reason", "TEXT"),
	[CLI_TO] = TEXT("to", "STAGE"),
	[CLI_FROM] = TEXT("from", "STAGE"),
	[CLI_DEVICE] = FLAG("device"),
	[CLI_PORT] = { "port", 0, "N", 0, 65535 },
	[CLI_OUT] = TEXT("out", "DIR"),
	[CLI_TRUST] = TEXT("trust", "KEY.pub"),
	[CLI_PRIORITY] = { "priority", 0, "P", -1000, 1000 },
	[CLI_PUBLISH_AT] = TEXT("publish-at", "TIME"),
	[CLI_TITLE] = TEXT("title", "TEXT"),
	[CLI_DIFF] = TEXT("diff", "A"),
	[CLI_RESTORE] = TEXT("restore", "N"),
	[CLI_SINCE] = TEXT("since", "TIME"),
	[CLI_CHANNEL] = TEXT("channel", "CHANNEL"),
	[CLI_STAGE] = TEXT("stage", "STAGE"),
	[CLI_STATE] = TEXT("state", "STATE"),
	[CLI_ALL] = FLAG("all"),
	[CLI_WATCH] = FLAG("watch"),
	[CLI_REPAIR] = FLAG("repair"),
#undef FLAG
#undef TEXT
};
/* clang-format on */

#define OPT(o) (1u << (o))
#define OPT_VAL(o) (optdefs[o].short_name ? optdefs[o].short_name : 256 + (o)) /* getopt_long's val */

struct command {
	const char *name;
	int (*run)(struct cli *);
	const char *operand; /* what its operands are called; NULL: none */
	int min_args, max_args;
	unsigned opts;     /* OPT() of each option it takes */
	unsigned required; /* of those, the ones it cannot do without */
	const char *help;
};

/* clang-format off: a table keeps one row per line */
static const struct command commands[] = {
	{ "init", cmd_init, NULL, 0, 0, OPT(CLI_DEMO), 0,
	  "Create the spool folders and the database in the root; --demo also adds the demo channel." },
	{ "run", cmd_run, NULL, 0, 0, OPT(CLI_DRAIN) | OPT(CLI_JOBS), 0,
	  "Run the daemon. --drain exits once no work is runnable (episodes waiting at a\n"
	  "review gate do not count). -j N runs up to N stages at once, 1 to 64 (default: CPUs)." },
	{ "status", cmd_status, NULL, 0, 0,
	  OPT(CLI_JSON) | OPT(CLI_CHANNEL) | OPT(CLI_STAGE) | OPT(CLI_STATE) | OPT(CLI_SINCE) | OPT(CLI_ALL) |
		  OPT(CLI_WATCH),
	  0,
	  "A count per state, then one line per active episode: ticket, channel, stage, state, age, cost.\n"
	  "--all adds published and cancelled ones; --since TIME (ISO or 30m, 2h, 7d) those created since;\n"
	  "--channel, --stage, --state filter.  --watch draws it again whenever a ticket moves." },
	{ "show", cmd_show, "EPISODE", 1, 1, OPT(CLI_JSON), 0,
	  "Jobs, assets, costs and reviews of one episode (UUID, unique prefix or ticket name)." },
	{ "approve", cmd_approve, "EPISODE", 1, 1, OPT(CLI_BY) | OPT(CLI_NOTES), OPT(CLI_BY),
	  "Approve an episode waiting at a review gate; it moves on to the next stage.\n"
	  "Dropping spool/<gate>/<ticket>.approve (first line: name, rest: notes) does the same." },
	{ "reject", cmd_reject, "EPISODE", 1, 1, OPT(CLI_BY) | OPT(CLI_REASON) | OPT(CLI_TO),
	  OPT(CLI_BY) | OPT(CLI_REASON),
	  "Reject an episode at a review gate. With --to STAGE it is re-run from that stage with\n"
	  "the reason handed to the providers; without, it is held (see `retry`)." },
	{ "retry", cmd_retry, "EPISODE", 1, 1, OPT(CLI_FROM), 0,
	  "Queue a failed or cancelled episode again, from the stage it stopped at or STAGE." },
	{ "cancel", cmd_cancel, "EPISODE", 1, 1, 0, 0,
	  "Stop an episode (a running stage is killed); its ticket goes to spool/held/." },
	{ "edit", cmd_edit, "EPISODE", 1, 1, OPT(CLI_PRIORITY) | OPT(CLI_PUBLISH_AT) | OPT(CLI_TITLE), 0,
	  "Change an episode's priority (-1000..1000, higher runs first), publishing time (ISO-8601 UTC)\n"
	  "or title; each change is recorded in the audit log." },
	{ "pause", cmd_pause, "EPISODE", 1, 1, 0, 0,
	  "Hold a queued or running episode (a running stage is stopped); its job, files and provider\n"
	  "state are kept, and `resume` goes on from the same stage." },
	{ "resume", cmd_resume, "EPISODE", 1, 1, 0, 0, "Let a paused episode go on where it was paused." },
	{ "versions", cmd_versions, "EPISODE [B]", 1, 2, OPT(CLI_JSON) | OPT(CLI_DIFF) | OPT(CLI_RESTORE), 0,
	  "List the kept plan, script and metadata versions (TYPE:N).  --diff A B prints a unified diff;\n"
	  "--restore N makes version N current and re-runs the stages after it." },
	{ "audit", cmd_audit, "EPISODE", 0, 1, OPT(CLI_JSON) | OPT(CLI_SINCE), 0,
	  "The audit trail (every change of state, decision and edit), of one episode or all;\n"
	  "--since TIME (ISO or 30m, 2h, 7d)." },
	{ "metrics", cmd_metrics, NULL, 0, 0, 0, 0,
	  "Print the Prometheus text-format metrics the daemon keeps in acog.yaml's metrics_file." },
	{ "costs", cmd_costs, NULL, 0, 0, OPT(CLI_JSON), 0, "Money spent, by channel, day and provider." },
	{ "doctor", cmd_doctor, NULL, 0, 0, 0, 0,
	  "Check what the daemon depends on and say what to do about each problem." },
	{ "keygen", cmd_keygen, NULL, 0, 0, OPT(CLI_OUT), 0,
	  "Make an Ed25519 key pair for signing bundles: DIR/acog-signing.key (0600, for the directory\n"
	  "publisher's signing_key_file) and DIR/acog-signing.pub (for trusted_keys). DIR: ROOT/keys." },
	{ "upload", cmd_upload, "BUNDLE...", 1, 1000, OPT(CLI_TRUST), 0,
	  "Verify bundles from an air-gapped outbox (SHA-256 of every file; the signature when acog.yaml\n"
	  "trusted_keys or --trust names a key) and queue each at this machine's upload stage under its\n"
	  "own episode id: a bundle already known here is never published twice." },
	{ "auth", cmd_auth, "youtube CHANNEL", 2, 2, OPT(CLI_DEVICE) | OPT(CLI_PORT), 0,
	  "One-time OAuth set-up of a channel's YouTube uploads: prints a consent URL and waits\n"
	  "for the redirect on 127.0.0.1 (or the redirect URL pasted here); --device uses the\n"
	  "device flow instead.  Stores the refresh token and releases the channel's auth holds." },
	{ "pulse", cmd_pulse, NULL, 0, 0, OPT(CLI_JSON), 0,
	  "Trend events taken from spool/pulse/, newest first, and what became of each: the channels\n"
	  "whose rules made an idea of it (and that idea's episode), or why each channel passed." },
	{ "report", cmd_report, NULL, 0, 0, OPT(CLI_OUT), 0,
	  "Write the static review pages: DIR/index.html (every episode by channel and stage) and\n"
	  "DIR/episodes/<id>.html (video, script, QA, costs, jobs, changes, approve/reject). DIR: ROOT/report." },
	{ "backup", cmd_backup, "DEST", 1, 1, 0, 0,
	  "Copy the root into DEST while the daemon runs: files, then the database (SQLite online backup)\n"
	  "and what changed meanwhile under the database's write lock. DEST is a plain tree (an rsync\n"
	  "source); backing up into it again copies only what changed." },
	{ "restore", cmd_restore, "[SRC]", 0, 1, 0, 0,
	  "Make the root (new or empty) from the backup SRC, or, without SRC, take over a root copied some\n"
	  "other way (rsync -a, cp -a); then reconcile it: check the database, queue again ideas the copy's\n"
	  "database never saw, requeue interrupted stages, put every ticket where the database says." },
	{ "fsck", cmd_fsck, NULL, 0, 0, OPT(CLI_REPAIR) | OPT(CLI_JSON), 0,
	  "Check the root's invariants (tickets where the database says, notes, complete assets, nothing\n"
	  "done or paid twice, no stray temporaries). Read-only unless --repair, which fixes only what is\n"
	  "safe. Exit status 0: consistent; 65 (EX_DATAERR): problems remain." },
	{ NULL, NULL, NULL, 0, 0, 0, 0, NULL }
};
/* clang-format on */

const char *cli_opt(const struct cli *a, enum cli_opt o)
{
	return a->opt[o];
}
int cli_has(const struct cli *a, enum cli_opt o)
{
	return a->opt[o] != NULL;
}
long cli_num(const struct cli *a, enum cli_opt o, long def)
{
	return a->opt[o] ? a->num[o] : def;
}
const char *cli_arg(const struct cli *a, int i)
{
	return i >= 0 && i < a->argc ? a->argv[i] : NULL;
}

/* "-j N" or "--by NAME" or "--json", as usage messages spell them. */
static void opt_text(enum cli_opt o, char *out, size_t n)
{
	const struct optdef *d = &optdefs[o];
	if (d->short_name)
		snprintf(out, n, "-%c%s%s", d->short_name, d->value ? " " : "", d->value ? d->value : "");
	else
		snprintf(out, n, "--%s%s%s", d->name, d->value ? " " : "", d->value ? d->value : "");
}

static void synopsis(FILE *f, const struct command *c)
{
	fprintf(f, "%s", c->name);
	if (c->operand) fprintf(f, c->min_args ? " %s" : " [%s]", c->operand);
	for (int o = 0; o < CLI_NOPTS; o++) {
		char t[64];
		if (!(c->opts & OPT(o))) continue;
		opt_text(o, t, sizeof t);
		fprintf(f, (c->required & OPT(o)) ? " %s" : " [%s]", t);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: acog-batch [-C ROOT] COMMAND [ARGS]\n\n"
		"Turns episode ideas dropped into ROOT/spool/incoming/ into published videos.\n"
		"ROOT is -C (or --root), else $ACOG_ROOT, else the current folder.\n\ncommands:\n");
	for (const struct command *c = commands; c->name; c++) {
		fprintf(f, "  ");
		synopsis(f, c);
		fprintf(f, "\n");
	}
	fprintf(f, "\n  acog-batch --version | --help | COMMAND --help\n");
}

static void command_usage(FILE *f, const struct command *c)
{
	fprintf(f, "usage: acog-batch [-C ROOT] ");
	synopsis(f, c);
	fprintf(f, "\n");
}

/* Prints why the command line is wrong and the command's usage; EX_USAGE. */
static int __attribute__((format(printf, 2, 3))) refuse(const struct command *c, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "acog-batch %s: ", c->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	command_usage(stderr, c);
	fprintf(stderr, "(acog-batch %s --help says more)\n", c->name);
	return EXIT_USAGE;
}

/* getopt_long's tables for one command: its options and --help/-h.  The
 * leading "-" hands operands back in order (so options may follow them,
 * whatever POSIXLY_CORRECT says); ":" reports a missing value as ':'. */
static void getopt_tables(const struct command *c, struct option lo[CLI_NOPTS + 2], char so[2 * CLI_NOPTS + 8])
{
	int n = 0;
	char *p = so + sprintf(so, "-:h");
	for (int o = 0; o < CLI_NOPTS; o++) {
		if (!(c->opts & OPT(o))) continue;
		lo[n++] = (struct option){ optdefs[o].name, optdefs[o].value ? required_argument : no_argument, NULL,
					   OPT_VAL(o) };
		if (optdefs[o].short_name) p += sprintf(p, "%c%s", optdefs[o].short_name, optdefs[o].value ? ":" : "");
	}
	lo[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[n] = (struct option){ NULL, 0, NULL, 0 };
}

/* Which of the command's options getopt_long's val names; -1: none of them. */
static int opt_of_val(const struct command *c, int val)
{
	for (int o = 0; o < CLI_NOPTS; o++)
		if ((c->opts & OPT(o)) && OPT_VAL(o) == val) return o;
	return -1;
}

static int store_opt(const struct command *c, struct cli *a, int o, const char *value)
{
	const struct optdef *d = &optdefs[o];
	char t[64];
	opt_text(o, t, sizeof t);
	if (d->value && !*value) return refuse(c, "%s: the value is empty", t);
	a->opt[o] = d->value ? value : "";
	if (d->min < d->max) {
		char *end;
		long v = strtol(value, &end, 10);
		if (*end || end == value || v < d->min || v > d->max)
			return refuse(c, "%s wants a number from %ld to %ld, not '%s'", t, d->min, d->max, value);
		a->num[o] = v;
	}
	return 0;
}

/* The option getopt_long could not take, as the user typed it. */
static int refuse_bad_opt(const struct command *c, int ret, char **argv)
{
	int o = opt_of_val(c, optopt);
	char t[64];
	if (o >= 0) opt_text(o, t, sizeof t);
	if (ret == ':') return refuse(c, "%s needs a value", o >= 0 ? t : argv[optind - 1]);
	if (o >= 0 || optopt == 'h') return refuse(c, "--%s takes no value", o >= 0 ? optdefs[o].name : "help");
	if (optopt > 0 && optopt < 256) return refuse(c, "unknown option -%c", optopt);
	return refuse(c, "unknown option %s", argv[optind - 1]);
}

/* Fills a from the command's arguments (argv[0] is the command).  Returns 0,
 * 1 when --help was asked (and printed), or EX_USAGE after saying why. */
static int parse(const struct command *c, int argc, char **argv, struct cli *a)
{
	struct option lo[CLI_NOPTS + 2];
	char so[2 * CLI_NOPTS + 8];
	int ret, rc;
	getopt_tables(c, lo, so);
	opterr = 0;
	optind = 0; /* GNU: start afresh (the global options were parsed with another table) */
	while ((ret = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		if (ret == 1)
			a->argv[a->argc++] = optarg;
		else if (ret == 'h') {
			command_usage(stdout, c);
			printf("\n%s\n", c->help);
			return 1;
		} else if (ret == '?' || ret == ':')
			return refuse_bad_opt(c, ret, argv);
		else if ((rc = store_opt(c, a, opt_of_val(c, ret), optarg)) != 0)
			return rc;
	}
	while (optind < argc) a->argv[a->argc++] = argv[optind++]; /* after "--" */
	for (int o = 0; o < CLI_NOPTS; o++) {
		char t[64];
		if (!(c->required & OPT(o)) || a->opt[o]) continue;
		opt_text(o, t, sizeof t);
		return refuse(c, "%s is required", t);
	}
	if (a->argc < c->min_args) return refuse(c, "missing %s", c->operand);
	if (a->argc > c->max_args) return refuse(c, "unexpected argument '%s'", a->argv[c->max_args]);
	for (int i = 0; i < a->argc; i++)
		if (!*a->argv[i]) return refuse(c, "the %s is empty", c->operand);
	return 0;
}

static char *resolve_root(const char *given)
{
	char buf[PATH_MAX];
	const char *r = given ? given : getenv("ACOG_ROOT") ? getenv("ACOG_ROOT") : ".";
	if (realpath(r, buf)) return xstrdup(buf);
	return xstrdup(r); /* init creates it; other commands report it missing */
}

static int run_command(const struct command *c, const char *root_arg, int argc, char **argv)
{
	struct cli a = { .command = c->name, .argv = xcalloc((size_t)argc, sizeof(char *)) };
	char *root = NULL;
	int rc = parse(c, argc, argv, &a);
	if (rc == 0) {
		a.root = root = resolve_root(root_arg);
		rc = c->run(&a);
	} else if (rc == 1) {
		rc = EXIT_OK;
	}
	free(root);
	free(a.argv);
	return rc;
}

/* The global options, before the command: -C ROOT (--root ROOT), --version, --help. */
/* clang-format off: a table keeps one row per line */
static const struct option global_opts[] = { { "root", required_argument, NULL, 'C' },
					     { "help", no_argument, NULL, 'h' },
					     { "version", no_argument, NULL, 'V' },
					     { NULL, 0, NULL, 0 } };
/* clang-format on */

int main(int argc, char **argv)
{
	const char *root_arg = NULL;
	int ret;

	if (argc == 2 && !strcmp(argv[1], "__stage")) return stage_child_main(); /* worker.c's child */
	opterr = 0;
	while ((ret = getopt_long(argc, argv, "+:C:h", global_opts, NULL)) != -1) {
		if (ret == 'C')
			root_arg = optarg;
		else if (ret == 'V') {
			printf("acog-batch %s\n", ACOG_VERSION);
			return EXIT_OK;
		} else if (ret == 'h') {
			usage(stdout);
			return EXIT_OK;
		} else {
			if (ret == ':')
				fprintf(stderr, "acog-batch: %s needs a folder\n", argv[optind - 1]);
			else if (optopt)
				fprintf(stderr, "acog-batch: unknown option -%c\n", optopt);
			else
				fprintf(stderr, "acog-batch: unknown option %s\n", argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "acog-batch: which command?\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	for (const struct command *c = commands; c->name; c++)
		if (!strcmp(c->name, argv[optind])) return run_command(c, root_arg, argc - optind, argv + optind);
	fprintf(stderr, "acog-batch: unknown command '%s'\n", argv[optind]);
	usage(stderr);
	return EXIT_USAGE;
}
