/*
 * main.c - command dispatch.  The commands are one table {name, handler,
 * synopsis, help, flags}; flags are checked here so every command rejects
 * an unknown option the same way, with EX_USAGE.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include "provider.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct command {
	const char *name;
	int (*run)(struct cli *);
	const char *synopsis;
	const char *help;
	const char *flags;        /* space-separated; a trailing '=' takes a value */
};

static const struct command commands[] = {
	{ "init", cmd_init, "init [--demo]",
	  "Create the spool folders and the database in the root; --demo also adds the demo channel.", "--demo" },
	{ "run", cmd_run, "run [--drain] [-j N]",
	  "Run the daemon. --drain exits once no work is runnable (episodes waiting at a\n"
	  "review gate do not count). -j N runs up to N stages at once (default: CPUs).", "--drain -j=" },
	{ "status", cmd_status, "status [--json]",
	  "One line per episode: ticket, channel, stage, state, age, cost.", "--json" },
	{ "show", cmd_show, "show EPISODE [--json]",
	  "Jobs, assets, costs and reviews of one episode (UUID, unique prefix or ticket name).", "--json" },
	{ "approve", cmd_approve, "approve EPISODE --by NAME [--notes TEXT]",
	  "Approve an episode waiting at a review gate; it moves on to the next stage.\n"
	  "Dropping spool/<gate>/<ticket>.approve (first line: name, rest: notes) does the same.",
	  "--by= --notes=" },
	{ "reject", cmd_reject, "reject EPISODE --by NAME --reason TEXT [--to STAGE]",
	  "Reject an episode at a review gate. With --to STAGE it is re-run from that stage with\n"
	  "the reason handed to the providers; without, it is held (see `retry`).", "--by= --reason= --to=" },
	{ "retry", cmd_retry, "retry EPISODE [--from STAGE]",
	  "Queue a failed or cancelled episode again, from the stage it stopped at or STAGE.", "--from=" },
	{ "cancel", cmd_cancel, "cancel EPISODE",
	  "Stop an episode (a running stage is killed); its ticket goes to spool/held/.", "" },
	{ "costs", cmd_costs, "costs [--json]",
	  "Money spent, by channel, day and provider.", "--json" },
	{ "keygen", cmd_keygen, "keygen [--out DIR]",
	  "Make an Ed25519 key pair for signing bundles: DIR/acog-signing.key (0600, for the directory\n"
	  "publisher's signing_key_file) and DIR/acog-signing.pub (for trusted_keys). DIR: ROOT/keys.",
	  "--out=" },
	{ "upload", cmd_upload, "upload BUNDLE... [--trust KEY.pub]",
	  "Verify bundles from an air-gapped outbox (SHA-256 of every file; the signature when acog.yaml\n"
	  "trusted_keys or --trust names a key) and queue each at this machine's upload stage under its\n"
	  "own episode id: a bundle already known here is never published twice.", "--trust=" },
	{ "doctor", cmd_doctor, "doctor",
	  "Check what the daemon depends on and say what to do about each problem.", "" },
	{ "auth", cmd_auth, "auth youtube CHANNEL [--device] [--port N]",
	  "One-time OAuth set-up of a channel's YouTube uploads: prints a consent URL and waits\n"
	  "for the redirect on 127.0.0.1 (or the redirect URL pasted here); --device uses the\n"
	  "device flow instead.  Stores the refresh token and releases the channel's auth holds.",
	  "--device --port=" },
	{ NULL, NULL, NULL, NULL, NULL }
};

static void usage(FILE *f)
{
	fprintf(f, "usage: acog-batch [-C ROOT] COMMAND [ARGS]\n\n"
		   "Turns episode ideas dropped into ROOT/spool/incoming/ into published videos.\n"
		   "ROOT is -C, else $ACOG_ROOT, else the current folder.\n\ncommands:\n");
	for (const struct command *c = commands; c->name; c++) fprintf(f, "  %s\n", c->synopsis);
	fprintf(f, "\n  acog-batch --version | --help | COMMAND --help\n");
}

const char *cli_flag(struct cli *a, const char *name)
{
	for (int i = 0; i + 1 < a->argc; i++)
		if (!strcmp(a->argv[i], name)) return a->argv[i + 1];
	return NULL;
}

int cli_has(struct cli *a, const char *name)
{
	for (int i = 0; i < a->argc; i++)
		if (!strcmp(a->argv[i], name)) return 1;
	return 0;
}

static int takes_value(const struct command *c, const char *flag)
{
	char want[64];
	snprintf(want, sizeof want, "%s=", flag);
	return strstr(c->flags, want) != NULL;
}

const char *cli_arg(struct cli *a, int n)
{
	for (int i = 0; i < a->argc; i++) {
		if (a->argv[i][0] == '-' && a->argv[i][1]) { i++; continue; }   /* validated: value flags only */
		if (n-- == 0) return a->argv[i];
	}
	return NULL;
}

/* Every flag must be known; a value flag must have its value. */
static int check_flags(const struct command *c, struct cli *a)
{
	for (int i = 0; i < a->argc; i++) {
		const char *f = a->argv[i];
		char want[64];
		if (f[0] != '-' || !f[1]) continue;
		snprintf(want, sizeof want, " %s ", f);
		if (takes_value(c, f)) {
			if (i + 1 >= a->argc) { fprintf(stderr, "acog-batch %s: %s needs a value\n", c->name, f); return -1; }
			i++;
			continue;
		}
		{
			char flags[256];
			snprintf(flags, sizeof flags, " %s ", c->flags);
			if (strstr(flags, want)) continue;
		}
		fprintf(stderr, "acog-batch %s: unknown option %s\nusage: acog-batch %s\n", c->name, f, c->synopsis);
		return -1;
	}
	return 0;
}

static char *resolve_root(const char *given)
{
	char buf[PATH_MAX];
	const char *r = given ? given : getenv("ACOG_ROOT") ? getenv("ACOG_ROOT") : ".";
	if (realpath(r, buf)) return xstrdup(buf);
	return xstrdup(r);   /* init creates it; other commands report it missing */
}

int main(int argc, char **argv)
{
	const char *root_arg = NULL;
	int i = 1, rc;
	struct cli a;
	char *root;

	if (argc == 2 && !strcmp(argv[1], "__stage")) return stage_child_main();   /* worker.c's child */
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-C") && i + 1 < argc) root_arg = argv[++i];
		else if (!strcmp(argv[i], "--version")) { printf("acog-batch %s\n", ACOG_VERSION); return EXIT_OK; }
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return EXIT_OK; }
		else { fprintf(stderr, "acog-batch: unknown option %s\n", argv[i]); usage(stderr); return EXIT_USAGE; }
	}
	if (i >= argc) { usage(stderr); return EXIT_USAGE; }
	for (const struct command *c = commands; c->name; c++) {
		if (strcmp(c->name, argv[i]) != 0) continue;
		a = (struct cli){ .argc = argc - i - 1, .argv = argv + i + 1 };
		if (cli_has(&a, "--help") || cli_has(&a, "-h")) {
			printf("usage: acog-batch [-C ROOT] %s\n\n%s\n", c->synopsis, c->help);
			return EXIT_OK;
		}
		if (check_flags(c, &a) < 0) return EXIT_USAGE;
		root = resolve_root(root_arg);
		a.root = root;
		rc = c->run(&a);
		free(root);
		return rc;
	}
	fprintf(stderr, "acog-batch: unknown command '%s'\n", argv[i]);
	usage(stderr);
	return EXIT_USAGE;
}
