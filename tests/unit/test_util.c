/* Unit tests: util.c, hash.c, base64.c, fsio.c, tmpclean.c. */
#include "daemon.h"
#include "provider.h"
#include "tap.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The exit code comes from the kind the error was raised with, never its text. */
static void test_err_kinds(void)
{
	static const struct {
		int err;
		enum err_kind kind;
		int code;
	} by_errno[] = {
		{ ENOENT, ERR_NOINPUT, 66 }, { EACCES, ERR_NOPERM, 77 }, { EPERM, ERR_NOPERM, 77 },
		{ ENOSPC, ERR_IOERR, 74 },   { EIO, ERR_IOERR, 74 },     { EAGAIN, ERR_TEMPFAIL, 75 },
	};
	for (size_t i = 0; i < sizeof by_errno / sizeof by_errno[0]; i++) {
		errno = by_errno[i].err;
		err_set_errno("cannot open %s", "f");
		ok(err_kind() == by_errno[i].kind && err_exit(1) == by_errno[i].code && errno == by_errno[i].err,
		   "errno %d -> exit %d: %s", by_errno[i].err, err_exit(1), err_msg());
	}
	errno = EXDEV;
	err_set_errno("cannot move");
	ok(err_kind() == ERR_UNSPEC && err_exit(42) == 42, "an errno with no kind leaves the choice to the caller");
	err_set_kind(ERR_TEMPFAIL, "database is locked");
	ok(err_exit(65) == EXIT_TEMPFAIL && !strcmp(err_msg(), "database is locked"), "err_set_kind: 75");
	err_set("no episode matches 'x'");
	ok(err_kind() == ERR_UNSPEC && err_exit(EXIT_DATAERR) == EXIT_DATAERR,
	   "err_set is unspecified whatever its text says (and resets the last kind)");
	err_set_kind(ERR_CONFIG, "%s; again", "first");
	err_set_kind(ERR_DATAERR, "%s", err_msg());
	ok(!strcmp(err_msg(), "first; again") && err_exit(0) == EXIT_DATAERR, "a message may quote the last one");
	for (int k = ERR_UNSPEC + 1; k < ERR_NKINDS; k++)
		for (int j = k + 1; j < ERR_NKINDS; j++)
			ok(err_exit_code(k, 0) >= 64 && err_exit_code(k, 0) != err_exit_code(j, 0),
			   "kinds %d and %d have their own sysexits codes", k, j);
}

/* SHA-256 test vectors (NIST FIPS 180-4 examples). */
static void test_hash(void)
{
	char out[65], block[1000];
	struct hash h;
	hash_hex("", 0, out);
	ok(!strcmp(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "sha256 of empty");
	hash_hex("abc", 3, out);
	ok(!strcmp(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256 of abc");
	hash_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, out);
	ok(!strcmp(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "sha256 two blocks");
	memset(block, 'a', sizeof block);
	hash_init(&h);
	for (int i = 0; i < 1000; i++) hash_update(&h, block, sizeof block);
	hash_final_hex(&h, out);
	ok(!strcmp(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
	   "sha256 of a million 'a', streamed: %s", out);
}

static int b64_is(const char *in, const char *want, size_t want_len)
{
	struct sbuf b = { 0 };
	int rc = base64_decode(in, &b) == 0 && b.len == want_len && (!want_len || !memcmp(b.s, want, want_len));
	sb_free(&b);
	return rc;
}

static int b64_bad(const char *in)
{
	struct sbuf b = { 0 };
	int rc = base64_decode(in, &b) < 0;
	sb_free(&b);
	return rc;
}

/* RFC 4648 section 10 test vectors, then what providers send besides. */
static void test_base64(void)
{
	static const char *const v[][2] = { { "", "" },
					    { "Zg==", "f" },
					    { "Zm8=", "fo" },
					    { "Zm9v", "foo" },
					    { "Zm9vYg==", "foob" },
					    { "Zm9vYmE=", "fooba" },
					    { "Zm9vYmFy", "foobar" } };
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		ok(b64_is(v[i][0], v[i][1], strlen(v[i][1])), "base64 RFC 4648: \"%s\" -> \"%s\"", v[i][0], v[i][1]);
	ok(b64_is("Zm9vYg", "foob", 4) && b64_is("Zm9vYmE", "fooba", 5), "base64 without padding");
	ok(b64_is("-_8", "\xfb\xff", 2) && b64_is("+/8=", "\xfb\xff", 2), "base64 URL-safe and standard alphabets");
	ok(b64_is("Zm9v\nYmFy\n", "foobar", 6), "base64 across lines");
	ok(b64_bad("Zm9v!"), "base64 refuses a stray character");
	ok(b64_bad("Zm9vY"), "base64 refuses a lone trailing character");
	ok(b64_bad("Zg==Zg"), "base64 refuses data after the padding");
}

static char *touch(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);
	must(fsio_write_atomic_str(p, name));
	return p;
}

/* The temporary-name convention, the listing and the commit's refusals. */
static void test_names(const char *dir)
{
	char *t = fsio_tmp_name("/x/y/final.mp4"), want[64], **names;
	int n;
	snprintf(want, sizeof want, "/x/y/.final.mp4.%ld.tmp", (long)getpid());
	ok(!strcmp(t, want), "temporary name: %s", t);
	ok(fsio_tmp_pid(strrchr(t, '/') + 1) == (long)getpid(), "the pid read back from it");
	free(t);
	t = fsio_tmp_name_ext("/x/y/seg-01", "mp4");
	snprintf(want, sizeof want, "/x/y/.seg-01.%ld.tmp.mp4", (long)getpid());
	ok(!strcmp(t, want), "temporary name with an extension: %s", t);
	ok(fsio_tmp_pid(strrchr(t, '/') + 1) == (long)getpid(), "its pid read back");
	free(t);
	ok(fsio_tmp_pid(".a.b.123.tmp") == 123 && fsio_tmp_pid(".a.1.tmp") == 1 &&
		   fsio_tmp_pid(".a.123.tmp.mp4") == 123 && fsio_tmp_pid(".a.7.tmp.pcm") == 7,
	   "names of the convention");
	ok(!fsio_tmp_pid("a.123.tmp") && !fsio_tmp_pid(".123.tmp") && !fsio_tmp_pid(".a.tmp") &&
		   !fsio_tmp_pid(".a.12x.tmp") && !fsio_tmp_pid(".a.123.tmpx.mp4") && !fsio_tmp_pid(".a.0.tmp") &&
		   !fsio_tmp_pid(".a.123.tmp.") && !fsio_tmp_pid(".a.123.tmp.bak") && !fsio_tmp_pid(".a.tmp.mp4"),
	   "other names are not temporaries");
	free(touch(dir, "b"));
	free(touch(dir, "a"));
	free(touch(dir, ".hidden"));
	n = fsio_list(dir, &names, NULL);
	ok(n == 2 && !strcmp(names[0], "a") && !strcmp(names[1], "b"), "listing: sorted, no dot-names");
	fsio_list_free(names, n);
	errno = 0;
	ok(fsio_list("/nonexistent-acog", &names, NULL) < 0 && errno == ENOENT, "listing a missing folder: ENOENT");
}

/* fsio_commit never replaces unless told; fsio_copy streams and hashes. */
static void test_commit(const char *dir)
{
	char *a = xasprintf("%s/a", dir), *c = xasprintf("%s/c", dir), *tmp, hex[65], want[65];
	struct hash h;
	int fd = fsio_tmp_open(a, &tmp);
	ok(fd >= 0 && fsio_write_all(fd, "new", 3) == 0, "temporary opened and written");
	errno = 0;
	ok(fsio_commit(fd, tmp, a, FSIO_NOREPLACE) < 0 && errno == EEXIST && !fsio_exists(tmp),
	   "no-replace commit over an existing name fails with EEXIST, temporary gone: %s", err_msg());
	free(tmp);
	hash_init(&h);
	ok(fsio_copy(a, c, FSIO_NOREPLACE, &h) == 1 && fsio_exists(c), "copy");
	hash_final_hex(&h, hex);
	hash_hex("a", 1, want);
	ok(!strcmp(hex, want) && hash_file(c, hex) == 0 && !strcmp(hex, want), "copy hashed what it copied");
	ok(fsio_copy(a, c, FSIO_NOREPLACE, NULL) < 0, "copy never replaces unless told");
	ok(fsio_copy(a, c, FSIO_REPLACE, NULL) == 1, "copy replaces when told");
	unlink(c);
	free(a);
	free(c);
}

/* The cleaner removes temporaries of dead processes and nothing else. */
static void test_tmpclean(const char *dir)
{
	pid_t dead = fork();
	char name[64], *stale, *stale_dir, *live, *user;
	if (dead == 0) _exit(0);
	waitpid(dead, NULL, 0);
	snprintf(name, sizeof name, ".x.%ld.tmp", (long)dead);
	stale = touch(dir, name);
	snprintf(name, sizeof name, ".ep.%ld.tmp", (long)dead);
	stale_dir = xasprintf("%s/%s", dir, name);
	mkdir(stale_dir, 0755);
	free(touch(stale_dir, "final.mp4"));
	snprintf(name, sizeof name, ".y.%ld.tmp", (long)getpid());
	live = touch(dir, name);
	user = touch(dir, ".notes.tmp");
	ok(tmpclean_dir(dir) == 2, "cleaner removed two temporaries");
	ok(!fsio_exists(stale) && !fsio_exists(stale_dir), "a dead process's file and folder are gone");
	ok(fsio_exists(live) && fsio_exists(user), "a live process's temporary and a user's file are kept");
	unlink(live);
	unlink(user);
	free(stale);
	free(stale_dir);
	free(live);
	free(user);
}

int main(void)
{
	char slug[64], iso[32], tmpl[] = "/tmp/acog-unit-XXXXXX", *dir, *p, *q, *data;
	size_t len;

	test_hash();
	test_base64();

	slugify("Why is the night sky dark?", slug, sizeof slug);
	ok(!strcmp(slug, "why-is-the-night-sky-dark"), "slugify: %s", slug);
	slugify("Olbers' paradox", slug, sizeof slug);
	ok(!strcmp(slug, "olbers-paradox"), "slugify drops apostrophes: %s", slug);
	slugify("???", slug, sizeof slug);
	ok(!strcmp(slug, "untitled"), "slugify of punctuation only");

	ok(utf8_valid("h\xc3\xa9llo", 6), "valid UTF-8");
	ok(!utf8_valid("h\xc3", 2), "truncated UTF-8");
	ok(!utf8_valid("\xc0\xaf", 2), "overlong UTF-8");
	ok(!utf8_valid("\xed\xa0\x80", 3), "UTF-16 surrogate in UTF-8");

	ok(path_component_ok("demo"), "plain component");
	ok(!path_component_ok(".."), "dot-dot refused");
	ok(!path_component_ok("a/b"), "slash refused");
	ok(!path_component_ok(""), "empty refused");

	time_iso(1796126400.25, iso);
	ok(!strcmp(iso, "2026-12-01T12:00:00.250Z"), "time_iso: %s", iso);
	ok(time_parse_iso("2026-12-01T12:00:00.250Z") == 1796126400.25, "time_parse_iso round trip");
	ok(time_parse_iso("2026-12-01 12:00") < 0, "time_parse_iso refuses non-ISO");

	dir = mkdtemp(tmpl);
	p = xasprintf("%s/a.txt", dir);
	q = xasprintf("%s/b.txt", dir);
	ok(fsio_write_atomic_str(p, "hello") == 0, "atomic write");
	data = fsio_read(p, 100, &len);
	ok(data && len == 5 && !strcmp(data, "hello"), "read back");
	free(data);
	ok(fsio_read(p, 3, &len) == NULL, "read refuses files over the limit");
	ok(fsio_move(p, q) == 0 && !fsio_exists(p) && fsio_exists(q), "move");
	must(fsio_write_atomic_str(p, "again"));
	ok(fsio_move(p, q) < 0 && fsio_exists(p), "move never overwrites: %s", err_msg());
	unlink(p);
	unlink(q);
	test_names(dir);
	test_commit(dir);
	test_tmpclean(dir);
	for (const char *const *f = (const char *const[]){ "a", "b", ".hidden", NULL }; *f; f++) {
		char *x = xasprintf("%s/%s", dir, *f);
		unlink(x);
		free(x);
	}
	ok(rmdir(dir) == 0, "nothing else left behind");
	free(p);
	free(q);
	test_err_kinds();
	return tap_done();
}
