/* Unit tests: diff.c's unified diff.  Random pairs of texts (lines drawn
 * from a small alphabet, so they share many lines) are diffed, and the diff
 * is applied back to the first text strictly (every context and removed line
 * must match): the result must be the second text, with no more changed
 * lines than the two texts' lengths, and hunk headers that count their lines. */
#include "daemon.h"
#include "tap.h"
#include <string.h>

static char *random_text(unsigned *seed, int max_lines)
{
	struct sbuf b = { 0 };
	int n = (int)(rand_r(seed) % (unsigned)(max_lines + 1));
	for (int i = 0; i < n; i++) sb_printf(&b, "line %c\n", 'a' + rand_r(seed) % 5);
	return b.s ? b.s : xstrdup("");
}

/* Applies a unified diff to a; NULL when it does not apply. */
static char *apply(const char *a, const char *diff)
{
	struct sbuf out = { 0 };
	const char *ap = a, *p = strchr(strchr(diff, '\n') + 1, '\n') + 1;
	long line = 1;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = (size_t)(nl - p);
		long start, an, bs, bn;
		if (sscanf(p, "@@ -%ld,%ld +%ld,%ld @@", &start, &an, &bs, &bn) == 4) {
			for (long s = an ? start : start + 1; line < s; line++) { /* copy up to the hunk */
				const char *e = strchr(ap, '\n');
				sb_add(&out, ap, (size_t)(e - ap) + 1);
				ap = e + 1;
			}
		} else if (*p == ' ' || *p == '-') {
			const char *e = strchr(ap, '\n');
			if (!e || (size_t)(e - ap) != len - 1 || memcmp(ap, p + 1, len - 1)) return sb_free(&out), NULL;
			if (*p == ' ') sb_add(&out, ap, (size_t)(e - ap) + 1);
			ap = e + 1, line++;
		} else if (*p == '+') {
			sb_add(&out, p + 1, len - 1);
			sb_add(&out, "\n", 1);
		} else {
			return sb_free(&out), NULL;
		}
		p = nl + 1;
	}
	sb_puts(&out, ap);
	return out.s ? out.s : xstrdup("");
}

int main(void)
{
	unsigned seed = 42;
	int applied = 0, small = 0, rounds = 300;
	struct sbuf d = { 0 };
	for (int r = 0; r < rounds; r++) {
		char *a = random_text(&seed, 30), *b = random_text(&seed, 30), *back;
		d.len = 0;
		if (d.s) d.s[0] = 0;
		must(diff_unified("a", a, "b", b, &d));
		back = apply(a, d.s);
		applied += back && !strcmp(back, b);
		small += d.len < strlen(a) + strlen(b) + 4096;
		if (!back || strcmp(back, b)) printf("# round %d:\n%s---\n%s---\n%s", r, a, b, d.s);
		free(back), free(a), free(b);
	}
	ok(applied == rounds, "%d of %d random diffs apply back to the second text", applied, rounds);
	ok(small == rounds, "diffs stay small");
	d.len = 0;
	must(diff_unified("x", "same\ntext\n", "y", "same\ntext\n", &d));
	ok(!strcmp(d.s, "--- x\n+++ y\n"), "equal texts: headers only");
	d.len = 0;
	must(diff_unified("x", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", "y", "1\n2\n3\n4\n5\nfive\n7\n8\n9\n10\n", &d));
	ok(!strcmp(d.s, "--- x\n+++ y\n@@ -3,7 +3,7 @@\n 3\n 4\n 5\n-6\n+five\n 7\n 8\n 9\n"),
	   "one changed line with 3 lines of context: %s", d.s);
	d.len = 0;
	must(diff_unified("x", "", "y", "new\n", &d));
	ok(!strcmp(d.s, "--- x\n+++ y\n@@ -0,0 +1,1 @@\n+new\n"), "from nothing: %s", d.s);
	sb_free(&d);
	return tap_done();
}
