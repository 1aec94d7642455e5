/* test_cadence.c - the cadence grammar, slots across both DST changes in
 * Europe/Berlin and America/New_York, and ISO-8601 instants with offsets.
 * Expected instants are computed here from the zone's known UTC offsets
 * (wall time as if UTC, minus the offset), not by the code under test. */
#define _GNU_SOURCE
#include "base.h"
#include "tap.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double wall(int y, int mo, int d, int h, int mi, int offset_h)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi };
	return (double)timegm(&tm) - offset_h * 3600.0;
}

static void next_is(const char *cad_text, double after, double want, const char *what)
{
	struct cadence cad;
	char got[32], exp[32];
	double t = cadence_parse(cad_text, &cad) == 0 ? cadence_next(&cad, after) : -1;
	cadence_iso(t, got);
	cadence_iso(want, exp);
	ok(t == want, "%s: '%s' -> %s (want %s)", what, cad_text, got, exp);
}

static void bad(const char *text, const char *needle)
{
	struct cadence cad;
	int rc = cadence_parse(text, &cad);
	ok(rc < 0 && strstr(err_msg(), needle), "rejects '%s': %s", text ? text : "(null)",
	   rc < 0 ? err_msg() : "accepted");
}

static void grammar(void)
{
	struct cadence cad;
	ok(cadence_parse("mon,wed,fri 18:00,09:30 America/New_York", &cad) == 0 && cad.days == 0x2a &&
		   cad.ntimes == 2 && cad.minutes[0] == 570 && cad.minutes[1] == 1080,
	   "days and sorted times");
	ok(cadence_parse("weekdays 07:05 UTC", &cad) == 0 && cad.days == 0x3e, "weekdays");
	bad("daily 15:00", "three words");
	bad("daily 15:00 Europe/Berlin extra", "three words");
	bad("someday 15:00 Europe/Berlin", "'someday' is not a day");
	bad("mon,funday 15:00 UTC", "'funday' is not a day");
	bad("daily 25:00 UTC", "24-hour");
	bad("daily 9:30 UTC", "24-hour");
	bad("daily 09:30;10:00 UTC", "24-hour");
	bad("daily 15:00 Mars/Olympus", "not in the tz database");
	bad("daily 15:00 ../../etc/passwd", "not a time zone name");
	bad("daily 15:00 /etc/localtime", "not a time zone name");
	bad(NULL, "expected a string");
}

static void berlin(void)
{
	const char *c = "daily 15:00 Europe/Berlin";
	/* spring forward: Sun 2026-03-29 02:00 CET -> 03:00 CEST */
	next_is(c, wall(2026, 3, 28, 12, 0, 0), wall(2026, 3, 28, 15, 0, 1), "Berlin CET day");
	next_is(c, wall(2026, 3, 28, 15, 0, 1), wall(2026, 3, 29, 15, 0, 2), "Berlin first CEST day");
	next_is("daily 02:30 Europe/Berlin", wall(2026, 3, 28, 12, 0, 0), wall(2026, 3, 29, 3, 0, 2),
		"Berlin 02:30 in the gap moves to 03:00 CEST");
	next_is("daily 02:30 Europe/Berlin", wall(2026, 3, 29, 3, 0, 2), wall(2026, 3, 30, 2, 30, 2),
		"Berlin 02:30 the day after the gap");
	/* fall back: Sun 2026-10-25 03:00 CEST -> 02:00 CET */
	next_is(c, wall(2026, 10, 24, 16, 0, 2), wall(2026, 10, 25, 15, 0, 1), "Berlin first CET day");
	next_is("daily 02:30 Europe/Berlin", wall(2026, 10, 24, 12, 0, 0), wall(2026, 10, 25, 2, 30, 2),
		"Berlin ambiguous 02:30 takes the first (CEST) occurrence");
	next_is("daily 02:30 Europe/Berlin", wall(2026, 10, 25, 2, 30, 2), wall(2026, 10, 26, 2, 30, 1),
		"Berlin: the second 02:30 is not a slot");
}

static void new_york(void)
{
	const char *c = "mon,wed,fri 09:30,18:00 America/New_York";
	/* spring forward: Sun 2026-03-08 02:00 EST -> 03:00 EDT; Fri 03-06, Mon 03-09 */
	next_is(c, wall(2026, 3, 6, 10, 0, -5), wall(2026, 3, 6, 18, 0, -5), "NY Friday evening EST");
	next_is(c, wall(2026, 3, 6, 18, 0, -5), wall(2026, 3, 9, 9, 30, -4), "NY Monday morning EDT");
	next_is("sun 02:30 America/New_York", wall(2026, 3, 7, 0, 0, 0), wall(2026, 3, 8, 3, 0, -4),
		"NY 02:30 in the gap moves to 03:00 EDT");
	/* fall back: Sun 2026-11-01 02:00 EDT -> 01:00 EST; Fri 10-30, Mon 11-02 */
	next_is(c, wall(2026, 10, 30, 18, 0, -4), wall(2026, 11, 2, 9, 30, -5), "NY Monday morning EST");
	next_is("sun 01:30 America/New_York", wall(2026, 10, 31, 0, 0, 0), wall(2026, 11, 1, 1, 30, -4),
		"NY ambiguous 01:30 takes the first (EDT) occurrence");
}

static void restores_tz(void)
{
	struct cadence cad;
	const char *tz;
	setenv("TZ", "Asia/Tokyo", 1);
	tzset();
	cadence_parse("daily 15:00 Europe/Berlin", &cad);
	cadence_next(&cad, wall(2026, 3, 28, 12, 0, 0));
	tz = getenv("TZ");
	ok(tz && !strcmp(tz, "Asia/Tokyo") && timezone == -9 * 3600, "the caller's TZ (Asia/Tokyo) is restored");
	unsetenv("TZ");
	tzset();
	cadence_next(&cad, wall(2026, 3, 28, 12, 0, 0));
	ok(getenv("TZ") == NULL, "an unset TZ stays unset");
}

static void instants(void)
{
	ok(cadence_parse_instant("2026-12-01T15:00:00Z") == wall(2026, 12, 1, 15, 0, 0), "Z");
	ok(cadence_parse_instant("2026-12-01T16:00:00+01:00") == wall(2026, 12, 1, 15, 0, 0), "+01:00");
	ok(cadence_parse_instant("2026-12-01T10:00:00.250-05:00") == wall(2026, 12, 1, 15, 0, 0), "fraction, -05:00");
	ok(cadence_parse_instant("2026-12-01T15:00:00") < 0, "no zone is refused");
	ok(cadence_parse_instant("2026-02-30T15:00:00Z") < 0, "February 30 is refused");
	ok(cadence_parse_instant("2026-12-01 15:00:00Z") < 0, "a blank for T is refused");
	ok(cadence_parse_instant("2026-12-01T15:00:00+1:00") < 0, "a short offset is refused");
}

int main(void)
{
	grammar();
	berlin();
	new_york();
	restores_tz();
	instants();
	return tap_done();
}
