/*
 * cmd_run.c - `init` and `run`.  init is idempotent: it creates what is
 * missing and never overwrites a file a person may have edited.
 */
#include "daemon.h"
#include "provider.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_if_missing(const char *path, const char *text)
{
	if (fsio_exists(path)) return 0;
	return fsio_write_atomic_str(path, text);
}

/* The demo channel's still avatar: a card made with ffmpeg. */
static void make_avatar(const char *path)
{
	const char *ffmpeg = proc_find("ffmpeg");
	char *vf;
	if (!ffmpeg || !media_font() || fsio_exists(path)) return;
	vf = xasprintf("drawtext=fontfile=%s:text=Nova:fontsize=140:fontcolor=white:x=(w-tw)/2:y=(h-th)/2",
		       media_font());
	{
		const char *argv[] = { ffmpeg,  "-nostdin", "-loglevel",
				       "error", "-y",       "-f",
				       "lavfi", "-i",       "color=c=0x2b4c7e:s=640x640:d=1",
				       "-vf",   vf,         "-frames:v",
				       "1",     path,       NULL };
		struct proc_opts o = { .stderr_fd = 2, .timeout_s = 60 };
		int to = 0;
		if (proc_run(argv, &o, &to) != 0)
			fprintf(stderr, "acog-batch: could not draw %s with ffmpeg; the `still` avatar needs it\n",
				path);
	}
	free(vf);
}

static int init_demo(const char *root)
{
	char *dir = xasprintf("%s/channels/demo", root), *yml = xasprintf("%s/channel.yaml", dir);
	char *png = xasprintf("%s/avatar.png", dir), *idea = xasprintf("%s/sample-idea.json", dir);
	char *lib = xasprintf("%s/library", dir), *text = voice_pick_demo_yaml(demo_channel_yaml);
	int rc = fsio_mkdirs(dir);
	if (rc == 0) rc = fsio_mkdirs(lib);
	if (rc == 0) rc = write_if_missing(yml, text);
	if (rc == 0) rc = write_if_missing(idea, demo_idea_json);
	if (rc == 0) make_avatar(png);
	free(dir);
	free(yml);
	free(png);
	free(idea);
	free(lib);
	free(text);
	return rc;
}

int cmd_init(struct cli *a)
{
	sqlite3 *db;
	char *ch;
	if (fsio_mkdirs(a->root) < 0 || spool_init_dirs(a->root) < 0) goto fail;
	ch = xasprintf("%s/channels", a->root);
	if (fsio_mkdirs(ch) < 0) {
		free(ch);
		goto fail;
	}
	free(ch);
	if (cli_has(a, CLI_DEMO) && init_demo(a->root) < 0) goto fail;
	if (!(db = db_open(a->root, 1))) goto fail;
	db_close(db);
	printf("initialised %s\n", a->root);
	if (cli_has(a, CLI_DEMO))
		printf("demo channel: %s/channels/demo/channel.yaml\n"
		       "try:  cp %s/channels/demo/sample-idea.json %s/spool/incoming/\n"
		       "      acog-batch -C %s run --drain\n",
		       a->root, a->root, a->root, a->root);
	return EXIT_OK;
fail:
	fprintf(stderr, "acog-batch init: %s\n", err_msg());
	return err_exit(EXIT_CANTCREAT);
}

int cmd_run(struct cli *a)
{
	/* main.c checked -j's range (1 to 64) */
	struct daemon_opts o = { .drain = cli_has(a, CLI_DRAIN),
				 .jobs = (int)cli_num(a, CLI_JOBS, sysconf(_SC_NPROCESSORS_ONLN)) };
	char *db = xasprintf("%s/acog.db", a->root);
	int have_db = fsio_exists(db);
	free(db);
	if (o.jobs < 1) o.jobs = 1;
	if (!have_db) {
		fprintf(stderr, "acog-batch run: %s has no acog.db; run `acog-batch -C %s init` first\n", a->root,
			a->root);
		return EXIT_NOINPUT;
	}
	return daemon_run(a->root, &o);
}
