/*
 * cmd_upload.c - `acog-batch upload BUNDLE...` on a connected machine: each
 * bundle carried from an air-gapped install is verified (hashes, no missing
 * or extra files, the Ed25519 signature when trusted keys are configured)
 * and queued at this machine's upload stage under its own episode id, so
 * the channel's upload provider publishes it once and only once (see
 * bundle_import.c).  A refused bundle is named with the reason; the others
 * still go ahead.  Exit: 0 all queued or already known, 65 one was refused.
 *
 * Trusted keys: acog.yaml `trusted_keys: [path, ...]` (relative to the root)
 * and/or --trust KEY.pub.  With any, an unsigned bundle is refused.
 */
#include "daemon.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* NULL-terminated list of public key paths; caller frees each and the list. */
static char **trusted_keys(struct cli *a, const struct config *c)
{
	const cJSON *list = cJSON_GetObjectItem(c->global, "trusted_keys"), *k;
	char **out = xcalloc((size_t)cJSON_GetArraySize(list) + 2, sizeof *out);
	size_t n = 0;

	if (cli_opt(a, CLI_TRUST)) out[n++] = xstrdup(cli_opt(a, CLI_TRUST));
	cJSON_ArrayForEach (k, list)
		if (cJSON_IsString(k))
			out[n++] = k->valuestring[0] == '/' ? xstrdup(k->valuestring)
							    : xasprintf("%s/%s", c->root, k->valuestring);
	return out;
}

static int upload_one(sqlite3 *db, struct config *c, const char *arg, const char *const *keys)
{
	char *dir = realpath(arg, NULL), *mpath, msg[512], hex[65] = "";
	cJSON *m = dir ? bundle_verify(dir, keys) : NULL;
	int rc = -1;

	if (!dir) err_set_errno("cannot open the bundle %s", arg);
	if (m) {
		mpath = xasprintf("%s/manifest.json", dir);
		if (hash_file(mpath, hex) == 0) rc = bundle_import(db, c, dir, m, hex, msg, sizeof msg);
		free(mpath);
	}
	if (rc < 0)
		fprintf(stderr, "acog-batch upload: refused %s: %s\n", arg, err_msg());
	else
		printf("%s: %s%s%s\n", arg, msg,
		       rc == 1 ? "; not uploading it again" : "; the daemon publishes it (acog-batch run)",
		       keys[0] ? "" : " (signature not checked: no trusted_keys in acog.yaml and no --trust)");
	cJSON_Delete(m);
	free(dir);
	return rc < 0 ? -1 : 0;
}

int cmd_upload(struct cli *a)
{
	struct config c;
	sqlite3 *db = NULL;
	char **keys;
	int failed = 0;

	if (!cli_arg(a, 0)) {
		fprintf(stderr, "acog-batch upload: which bundle? give one or more bundle folders\n");
		return EXIT_USAGE;
	}
	if (config_load(&c, a->root) < 0 || !(db = db_open(a->root, 0)) || db_sync_channels(db, &c) < 0) {
		fprintf(stderr, "acog-batch upload: %s\n", err_msg());
		if (db) db_close(db);
		return EXIT_CONFIG;
	}
	log_set_stderr(0);
	keys = trusted_keys(a, &c);
	for (int i = 0; cli_arg(a, i); i++) failed |= upload_one(db, &c, cli_arg(a, i), (const char *const *)keys) < 0;
	daemon_wake(a->root);
	for (char **k = keys; *k; k++) free(*k);
	free(keys);
	config_free(&c);
	db_close(db);
	return failed ? EXIT_DATAERR : EXIT_OK;
}
