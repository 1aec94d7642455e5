/* Unit tests: util.c, sha256.c, fsio.c. */
#include "daemon.h"
#include "provider.h"
#include "tap.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The exit code comes from the kind the error was raised with, never its text. */
static void test_err_kinds(void)
{
	static const struct { int err; enum err_kind kind; int code; } by_errno[] = {
		{ ENOENT, ERR_NOINPUT, 66 }, { EACCES, ERR_NOPERM, 77 }, { EPERM, ERR_NOPERM, 77 },
		{ ENOSPC, ERR_IOERR, 74 }, { EIO, ERR_IOERR, 74 }, { EAGAIN, ERR_TEMPFAIL, 75 },
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

int main(void)
{
	char out[65], slug[64], iso[32], tmpl[] = "/tmp/acog-unit-XXXXXX", *dir, *p, *q, *data;
	size_t len;

	sha256_hex("", 0, out);
	ok(!strcmp(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "sha256 of empty");
	sha256_hex("abc", 3, out);
	ok(!strcmp(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256 of abc");
	sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, out);
	ok(!strcmp(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "sha256 two blocks");

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
	fsio_write_atomic_str(p, "again");
	ok(fsio_move(p, q) < 0 && fsio_exists(p), "move never overwrites: %s", err_msg());
	unlink(p);
	unlink(q);
	rmdir(dir);
	free(p);
	free(q);
	test_err_kinds();
	return tap_done();
}
