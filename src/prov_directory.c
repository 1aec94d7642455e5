/*
 * prov_directory.c - the `directory` upload provider: publish a finished
 * episode into an outbox folder, for air-gapped installs whose videos are
 * carried to a connected machine later (by rsync, a USB disk, ...).
 *
 * Layout: <outbox>/<episode_id>/ is a self-contained bundle (see bundle.c):
 * {final.mp4, metadata.json, thumbnail.png, subtitles.srt, settings.json,
 * manifest.json, manifest.sig}.  settings.json holds the publish settings
 * (publish_at from schedule.json or the idea, privacy and the other options
 * given to this provider); manifest.sig, the Ed25519 signature of
 * manifest.json's bytes, is there when providers.upload.signing_key_file
 * names a key from `acog-batch keygen` (relative to the root).  The outbox
 * is providers.upload.outbox (relative to the channel folder), by default
 * <channel>/outbox.  `acog-batch upload BUNDLE` publishes it elsewhere.
 *
 * Invariants (the OpenSMTPD way: commit by renaming a whole directory):
 *  - The episode folder appears in the outbox complete or not at all: it is
 *    built under the temporary name of fsio.c, <outbox>/.<episode_id>.<pid>.tmp/,
 *    each file committed into it (fsync, rename), then the folder itself
 *    committed with fsio_commit (fsync it, rename with RENAME_NOREPLACE,
 *    fsync the outbox).  Readers skip dot-names; tmpclean_dir removes the
 *    folder of a run that died.
 *  - Never published twice: an <outbox>/<episode_id>/ with a manifest.json
 *    means it was published; a re-run (at-least-once delivery, a crash after
 *    the rename) only rewrites publish.json from that manifest.
 *  - manifest.json lists each file with its size and SHA-256, so the
 *    receiving side can verify the copy.
 */
#define BUNDLE_FORMAT "acog-bundle/1"
#define _GNU_SOURCE
#include "provider.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* clang-format off: a table keeps one row per line */
const struct provider_opt directory_opts[] = { { "outbox", OPT_PATH, "outbox", 0, 0, NULL,
						 "the folder to publish into, relative to the channel folder" },
					       { "signing_key_file", OPT_PATH, NULL, 0, 0, NULL,
						 "Ed25519 private key (acog-batch keygen) that signs each bundle" },
					       { NULL, 0, NULL, 0, 0, NULL, NULL } };
/* clang-format on */

/* A bundle file and the episode file it is copied from: in the bundle of the
 * video (from), and in the bundle of its Shorts cut (shorts; NULL: left out). */
struct pub_file {
	const char *name, *shorts;
	int required;
};
/* clang-format off: a table keeps one row per line */
static const struct pub_file pub_files[] = { { "final.mp4", "shorts.mp4", 1 },
					     { "metadata.json", "shorts_metadata.json", 1 },
					     { "thumbnail.png", "thumbnail.png", 0 },
					     { "subtitles.srt", NULL, 0 },
					     { NULL, NULL, 0 } };
/* clang-format on */
#define SHORTS_SUFFIX "-shorts" /* the Shorts cut's bundle: <outbox>/<episode_id>-shorts/ */

/* ---- publishing -------------------------------------------------------- */

/* Copy one file into the publish folder, hashing it on the way. */
static int copy_hashed(const char *from, const char *to, long long *bytes, char hex[65])
{
	struct hash h;
	hash_init(&h);
	if ((*bytes = fsio_copy(from, to, FSIO_NOREPLACE, &h)) < 0) {
		hash_free(&h);
		return -1;
	}
	hash_final_hex(&h, hex);
	return 0;
}

/* providers.upload.outbox, relative to the channel folder; also where the
 * daemon's start-up sweep looks for publish folders of dead runs. */
char *directory_outbox(const char *channel_dir, const cJSON *provider)
{
	const char *o = json_str(provider, "outbox", "outbox");

	return o[0] == '/' ? xstrdup(o) : xasprintf("%s/%s", channel_dir, o);
}

/* file:// URL of an absolute path, percent-encoding all but unreserved. */
static char *file_url(const char *path)
{
	struct sbuf b = { 0 };

	sb_puts(&b, "file://");
	sb_percent_escape(&b, path, "/-._~");
	return b.s;
}

static int write_publish_json(const struct stage_ctx *ctx, const char *final, const char *published_at)
{
	cJSON *j = cJSON_CreateObject();
	char *url = file_url(final), *path = xasprintf("%s/publish.json", ctx->episode_dir);
	int rc;

	cJSON_AddStringToObject(j, "provider", "directory");
	cJSON_AddStringToObject(j, "location", final);
	cJSON_AddStringToObject(j, "published_at", published_at);
	cJSON_AddStringToObject(j, "url", url);
	rc = json_write_file(path, j);
	cJSON_Delete(j);
	free(url);
	free(path);
	return rc;
}

/* Copy the episode's files into the staging folder; fill manifest files[]. */
static enum stage_rc publish_copies(struct stage_ctx *ctx, const char *tmp, cJSON *files, int shorts)
{
	for (const struct pub_file *f = pub_files; f->name; f++) {
		char *from = shorts && !f->shorts ? NULL
						  : xasprintf("%s/%s", ctx->episode_dir, shorts ? f->shorts : f->name);
		char *to = xasprintf("%s/%s", tmp, f->name), hex[65];
		long long bytes;
		int present = from && fsio_exists(from), rc = present ? copy_hashed(from, to, &bytes, hex) : 0;
		cJSON *e;

		free(from), free(to);
		if (!present && f->required)
			return stage_fail(ctx, STAGE_FAIL,
					  "%s/%s is missing; run the stage that makes "
					  "it again (acog-batch retry %s --from %s)",
					  ctx->episode_dir, f->name, ctx->episode_id, stage_producer(f->name)->name);
		if (rc < 0) return stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
		if (!present) continue;
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "name", f->name);
		cJSON_AddNumberToObject(e, "bytes", (double)bytes);
		cJSON_AddStringToObject(e, "sha256", hex);
		cJSON_AddItemToArray(files, e);
	}
	return STAGE_OK;
}

static int write_settings(const struct stage_ctx *ctx, const char *tmp, const char *publish_at, cJSON *files)
{
	cJSON *j = cJSON_CreateObject(), *e;
	char *to = xasprintf("%s/settings.json", tmp), hex[65];
	char *text;
	int rc;

	cJSON_AddStringToObject(j, "privacy", json_str(ctx->provider, "privacy", "private"));
	if (publish_at)
		cJSON_AddStringToObject(j, "publish_at", publish_at);
	else
		cJSON_AddNullToObject(j, "publish_at");
	/* The other publish settings a connected machine needs are passed through as given. */
	for (const struct provider_opt *o = publish_opts; o->key; o++)
		if (strcmp(o->key, "privacy") != 0 && (e = cJSON_GetObjectItem(ctx->provider, o->key)))
			cJSON_AddItemToObject(j, o->key, cJSON_Duplicate(e, 1));
	text = json_pretty(j);
	rc = fsio_write_atomic_str(to, text);
	hash_hex(text, strlen(text), hex);
	e = cJSON_CreateObject();
	cJSON_AddStringToObject(e, "name", "settings.json");
	cJSON_AddNumberToObject(e, "bytes", (double)strlen(text));
	cJSON_AddStringToObject(e, "sha256", hex);
	cJSON_AddItemToArray(files, e);
	free(text);
	free(to);
	cJSON_Delete(j);
	return rc;
}

static cJSON *manifest_new(const struct stage_ctx *ctx, const char *published_at, const char *publish_at, int shorts)
{
	char *mpath = xasprintf("%s/%s", ctx->episode_dir, shorts ? "shorts_metadata.json" : "metadata.json");
	cJSON *meta = json_load_file(mpath, 4 * 1024 * 1024), *m = cJSON_CreateObject();
	const char *slash = strrchr(ctx->channel_dir, '/');

	cJSON_AddStringToObject(m, "format", BUNDLE_FORMAT);
	cJSON_AddStringToObject(m, "episode_id", ctx->episode_id);
	cJSON_AddStringToObject(m, "channel", json_str(ctx->channel, "id", slash ? slash + 1 : ctx->channel_dir));
	cJSON_AddStringToObject(m, "title", json_str(meta, "final_title", ""));
	cJSON_AddArrayToObject(m, "files");
	cJSON_AddStringToObject(m, "published_at", published_at);
	if (*publish_at)
		cJSON_AddStringToObject(m, "publish_at", publish_at);
	else
		cJSON_AddNullToObject(m, "publish_at");
	cJSON_Delete(meta);
	free(mpath);
	return m;
}

/* A fresh publish folder, after removing those of runs that died. */
static int staging_make(const char *outbox, const char *tmp)
{
	if (fsio_mkdirs(outbox) < 0 || tmpclean_dir(outbox) < 0 || fsio_discard(tmp) < 0) return -1;
	if (mkdir(tmp, 0755) < 0) return err_set_errno("cannot create %s", tmp);
	return 0;
}

/* The folder's own commit: its entries on disk, then its name. */
static int staging_commit(const char *tmp, const char *final)
{
	int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err_set_errno("cannot open %s", tmp);
		(void)!fsio_discard(tmp); /* the first error is the one to report */
		return -1;
	}
	return fsio_commit(fd, tmp, final, FSIO_NOREPLACE);
}

/* manifest.json, and manifest.sig over its exact bytes when a key is set.
 * -1: a write failed (retry); -2: the key is unusable (a person must act). */
static int write_manifest(const struct stage_ctx *ctx, const char *tmp, const cJSON *m)
{
	const char *key = json_str(ctx->provider, "signing_key_file", NULL);
	char *text = json_pretty(m), *path = xasprintf("%s/manifest.json", tmp), *sig = NULL, *kpath = NULL;
	int rc = fsio_write_atomic_str(path, text);

	if (rc == 0 && key) {
		kpath = key[0] == '/' ? xstrdup(key) : xasprintf("%s/%s", ctx->root, key);
		free(path);
		path = xasprintf("%s/manifest.sig", tmp);
		sig = ed25519_sign(kpath, text, strlen(text));
		rc = sig ? fsio_write_atomic_str(path, sig) : -2;
	}
	free(text), free(path), free(sig), free(kpath);
	return rc;
}

/* Build the publish folder and commit it.  EEXIST from the commit means
 * another run published first: that is success too. */
static enum stage_rc publish_new(struct stage_ctx *ctx, const char *outbox, const char *final, int shorts)
{
	char *tmp = fsio_tmp_name(final), now[32], at[32];
	int signed_rc = 0;
	cJSON *m = NULL;
	enum stage_rc rc = STAGE_OK;

	time_iso(time_now(), now);
	if (staging_make(outbox, tmp) < 0) {
		rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
		goto out;
	}
	if (schedule_publish_time(ctx, at) < 0) {
		rc = stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
		goto fail;
	}
	m = manifest_new(ctx, now, at, shorts);
	if (shorts) cJSON_AddStringToObject(m, "cut", "shorts");
	if ((rc = publish_copies(ctx, tmp, cJSON_GetObjectItem(m, "files"), shorts)) != STAGE_OK) goto fail;
	if (write_settings(ctx, tmp, *at ? at : NULL, cJSON_GetObjectItem(m, "files")) < 0 ||
	    (signed_rc = write_manifest(ctx, tmp, m)) < 0) {
		rc = stage_fail(ctx, signed_rc == -2 ? STAGE_FAIL : STAGE_RETRY, "%s", err_msg());
		goto fail;
	}
	if (staging_commit(tmp, final) < 0 && errno != EEXIST) rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	goto out;
fail:
	(void)!fsio_discard(tmp); /* the first error is the one to report */
out:
	cJSON_Delete(m);
	free(tmp);
	return rc;
}

/* Publishes one item (the video, or its Shorts cut) once: *m its manifest. */
static enum stage_rc publish_item(struct stage_ctx *ctx, const char *outbox, const char *final, int shorts, cJSON **m)
{
	char *manifest = xasprintf("%s/manifest.json", final);
	enum stage_rc rc = STAGE_OK;

	if (fsio_exists(final) && !fsio_exists(manifest))
		rc = stage_fail(ctx, STAGE_FAIL,
				"%s exists but has no manifest.json, so it was not "
				"published by acog-batch; move it away and retry",
				final);
	else if (!fsio_exists(final))
		rc = publish_new(ctx, outbox, final, shorts);
	if (rc == STAGE_OK && !(*m = json_load_file(manifest, 4 * 1024 * 1024)))
		rc = stage_fail(ctx, STAGE_FAIL, "%s; inspect %s", err_msg(), final);
	if (rc == STAGE_OK) stage_log(ctx, "info", "published to %s", final);
	free(manifest);
	return rc;
}

/* The Shorts cut, when the assembly made one: a second item beside the video. */
static enum stage_rc publish_shorts(struct stage_ctx *ctx, const char *outbox)
{
	char *video = xasprintf("%s/shorts.mp4", ctx->episode_dir), *final;
	cJSON *m = NULL;
	enum stage_rc rc = STAGE_OK;

	if (fsio_exists(video)) {
		final = xasprintf("%s/%s" SHORTS_SUFFIX, outbox, ctx->episode_id);
		rc = publish_item(ctx, outbox, final, 1, &m);
		free(final);
	}
	cJSON_Delete(m);
	free(video);
	return rc;
}

enum stage_rc prov_upload_directory(struct stage_ctx *ctx)
{
	char *outbox = directory_outbox(ctx->channel_dir, ctx->provider), *final = NULL;
	cJSON *m = NULL;
	enum stage_rc rc = STAGE_OK;
	int only;

	if (!path_component_ok(ctx->episode_id) || ctx->episode_id[0] == '.') {
		rc = stage_fail(ctx, STAGE_FAIL, "episode id '%s' cannot name a folder", ctx->episode_id);
		goto out;
	}
	only = shorts_only(ctx);
	final = xasprintf("%s/%s%s", outbox, ctx->episode_id, only ? SHORTS_SUFFIX : "");
	if ((rc = publish_item(ctx, outbox, final, only, &m)) != STAGE_OK ||
	    (!only && (rc = publish_shorts(ctx, outbox)) != STAGE_OK))
		goto out;
	if (write_publish_json(ctx, final, json_str(m, "published_at", "")) < 0)
		rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
out:
	cJSON_Delete(m);
	free(final);
	free(outbox);
	return rc;
}
