/*
 * test_report.c - unit tests for the review pages' building blocks: HTML
 * escaping, relative URLs, and the line diff of two versions (report_html.c,
 * report_diff.c), printed as TAP (tap.h).
 */
#include "report.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is(struct sbuf *b, const char *want)
{
	int same = b->s && strcmp(b->s, want) == 0;
	if (!same) printf("#   got:  %s\n#   want: %s\n", b->s ? b->s : "(null)", want);
	sb_free(b);
	memset(b, 0, sizeof *b);
	return same;
}

static void t_escape(void)
{
	struct sbuf b = { 0 };
	html_esc(&b, "<script>alert('x') & \"y\"</script>");
	ok(is(&b, "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"), "text is escaped");
	html_url(&b, "../../my root/#1?/final.mp4");
	ok(is(&b, "../../my%20root/%231%3F/final.mp4"), "a path keeps / and . and percent-encodes the rest");
	html_fig(&b, "td", "jobs", "k\"1", "cost_usd", RF_USD, "0.012345");
	ok(is(&b, "<td class=\"n\" data-t=\"jobs\" data-k=\"k&quot;1\" data-c=\"cost_usd\" data-f=\"usd\">0.0123</td>"),
	   "a figure carries its source and its value to 4 places");
	html_fig(&b, "span", "episodes", "e", "title", RF_TEXT, NULL);
	ok(is(&b, "<span data-t=\"episodes\" data-k=\"e\" data-c=\"title\" data-f=\"text\">&mdash;</span>"),
	   "a missing value shows as a dash");
}

static void t_diff(void)
{
	struct sbuf b = { 0 };
	report_diff(&b, "a\nb\nc\n", "a\nB <new>\nc\nd\n");
	ok(is(&b, "<pre class=\"diff\">a\n<del>b</del><ins>B &lt;new&gt;</ins>c\n<ins>d</ins></pre>\n"),
	   "changed and added lines are marked, kept lines are not");
	report_diff(&b, "same\n", "same\n");
	ok(is(&b, "<pre class=\"diff\">same\n</pre>\n"), "equal texts: no marks");
	report_diff(&b, "", "x");
	ok(is(&b, "<pre class=\"diff\"><ins>x</ins></pre>\n"), "from nothing: all added");
}

int main(void)
{
	t_escape();
	t_diff();
	return tap_done();
}
