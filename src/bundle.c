/*
 * bundle.c - checking an air-gapped hand-off bundle before it is published.
 * A bundle is the folder the `directory` publisher makes in its outbox:
 *
 *     final.mp4  metadata.json  [thumbnail.png]  [subtitles.srt]  settings.json
 *     manifest.json   {"format": "acog-bundle/1", "episode_id", "channel", "title",
 *                      "publish_at", "files": [{"name", "bytes", "sha256"}], ...}
 *     [manifest.sig]  base64 Ed25519 signature over the exact bytes of manifest.json
 *
 * bundle_verify refuses, naming the file, anything that is not exactly what
 * was signed: a file whose size or SHA-256 differs, a listed file that is
 * missing, a file the manifest does not list, a signature that does not
 * verify with any trusted key, or no signature when trusted keys are set.
 */
#define _GNU_SOURCE
#include "base.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANIFEST_MAX (4 * 1024 * 1024)

static int check_signature(const char *dir, const char *text, size_t len, const char *const *trusted)
{
	char *sig_path = xasprintf("%s/manifest.sig", dir), *sig = NULL;
	int rc = -1, good = 0;

	if (!trusted || !trusted[0]) {
		free(sig_path);
		return 0;
	}
	if (!fsio_exists(sig_path)) {
		err_set("unsigned bundle: %s is missing, and trusted keys are configured, so only signed bundles "
			"are accepted; sign it (providers.upload.signing_key_file) or check who made it",
			sig_path);
		goto out;
	}
	if (!(sig = fsio_read(sig_path, 4096, NULL))) goto out;
	for (int i = 0; trusted[i] && !good; i++) {
		int r = ed25519_verify(trusted[i], text, len, sig);
		if (r < 0) goto out;
		good = r;
	}
	if (!good)
		err_set("bad signature: %s does not verify %s/manifest.json with any trusted key (%s%s); the manifest "
			"was changed after signing or signed by another key",
			sig_path, dir, trusted[0], trusted[1] ? ", ..." : "");
	else
		rc = 0;
out:
	free(sig);
	free(sig_path);
	return rc;
}

static int check_file(const char *dir, const cJSON *f)
{
	const char *name = json_str(f, "name", ""), *want = json_str(f, "sha256", "");
	char *path = xasprintf("%s/%s", dir, name), hex[65];
	struct stat st;
	int rc = -1;

	if (!path_component_ok(name) || name[0] == '.' || !strncmp(name, "manifest.", 9))
		err_set("%s/manifest.json lists '%.80s', which cannot be a bundle file", dir, name);
	else if (lstat(path, &st) < 0)
		err_set("missing file: %s is listed in manifest.json but is not in the bundle", path);
	else if (!S_ISREG(st.st_mode))
		err_set("%s is not a regular file (a symlink?); a bundle holds only plain files", path);
	else if ((double)st.st_size != json_num(f, "bytes", -1))
		err_set("tampered file: %s has %lld bytes, manifest.json says %.0f", path, (long long)st.st_size,
			json_num(f, "bytes", -1));
	else {
		if (hash_file(path, hex) == 0) {
			if (strcmp(hex, want))
				err_set("tampered file: %s has SHA-256 %s, manifest.json says %.64s", path, hex, want);
			else
				rc = 0;
		}
	}
	free(path);
	return rc;
}

static int listed(const cJSON *files, const char *name)
{
	const cJSON *f;
	cJSON_ArrayForEach (f, files)
		if (!strcmp(json_str(f, "name", ""), name)) return 1;
	return !strcmp(name, "manifest.json") || !strcmp(name, "manifest.sig");
}

static int check_extra(const char *dir, const cJSON *files)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (!d) return err_set_errno("cannot read the bundle folder %s", dir);
	while (rc == 0 && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && !listed(files, de->d_name))
			rc = err_set("extra file: %s/%s is not listed in manifest.json; a bundle holds exactly the "
				     "files its manifest lists",
				     dir, de->d_name);
	closedir(d);
	return rc;
}

static int check_manifest(const char *dir, const cJSON *m)
{
	const cJSON *files = cJSON_GetObjectItem(m, "files"), *f;
	const char *id = json_str(m, "episode_id", ""), *ch = json_str(m, "channel", "");

	if (strcmp(json_str(m, "format", ""), "acog-bundle/1"))
		return err_set("%s/manifest.json: format is not acog-bundle/1; make the bundle again with the "
			       "directory publisher of this version",
			       dir);
	if (strlen(id) != 36 || !path_component_ok(id) || !path_component_ok(ch))
		return err_set("%s/manifest.json: episode_id or channel is missing or not a valid name", dir);
	if (!cJSON_IsArray(files) || !cJSON_GetArraySize(files))
		return err_set("%s/manifest.json: files is missing or empty", dir);
	cJSON_ArrayForEach (f, files)
		if (check_file(dir, f) < 0) return -1;
	return check_extra(dir, files);
}

cJSON *bundle_verify(const char *dir, const char *const *trusted)
{
	char *path = xasprintf("%s/manifest.json", dir), *text;
	size_t len = 0;
	cJSON *m = NULL;

	if (!fsio_is_dir(dir))
		err_set("%s is not a folder; give the bundle folder from the outbox", dir);
	else if (!fsio_exists(path))
		err_set("missing file: %s; this is not a bundle from the directory publisher", path);
	else if ((text = fsio_read(path, MANIFEST_MAX, &len)) != NULL) {
		if (check_signature(dir, text, len, trusted) == 0) {
			if (!(m = cJSON_ParseWithLength(text, len)) || !cJSON_IsObject(m))
				err_set("%s is not a JSON object", path);
			else if (check_manifest(dir, m) == 0) {
				free(text);
				free(path);
				return m;
			}
		}
		free(text);
	}
	cJSON_Delete(m);
	free(path);
	return NULL;
}

/* Copy one bundle file to `to` (replacing it) through the durable commit,
 * hashing on the way: the copy is refused if it does not match the manifest,
 * so a file changed after bundle_verify never gets through. */
int bundle_copy_file(const char *from, const char *to, const char *want_sha)
{
	struct hash sha;
	char buf[1 << 16], *tmp = NULL, hex[65];
	ssize_t n;
	int in = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out = in < 0 ? -1 : fsio_tmp_open(to, &tmp);

	if (in < 0) return err_set_errno("cannot open %s", from);
	if (out < 0) {
		close(in);
		return -1;
	}
	hash_init(&sha);
	while ((n = read(in, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
		if (n < 0) continue;
		hash_update(&sha, buf, (size_t)n);
		if (fsio_write_all(out, buf, (size_t)n) < 0) break;
	}
	close(in);
	hash_final_hex(&sha, hex);
	if (n != 0 || strcmp(hex, want_sha)) {
		err_set(n != 0 ? "cannot copy %s to %s (disk full?)"
			       : "tampered file: %s changed while it was "
				 "copied to %s",
			from, to);
		close(out), unlink(tmp), free(tmp);
		return -1;
	}
	n = fsio_commit(out, tmp, to, FSIO_REPLACE);
	free(tmp);
	return (int)n;
}
