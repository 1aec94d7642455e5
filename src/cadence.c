/*
 * cadence.c - publishing times: the channel `cadence` grammar, the next slot
 * of a cadence in its own time zone, and ISO-8601 instants with an offset.
 *
 * Grammar (channel.yaml `cadence`, three words separated by blanks):
 *
 *     DAYS TIMES ZONE
 *     DAYS  = daily | weekdays | weekends | DAY[,DAY...]   DAY = mon..sun
 *     TIMES = HH:MM[,HH:MM...]                             24-hour local wall time
 *     ZONE  = a tz database name (Europe/Berlin, America/New_York, UTC)
 *
 * e.g. "daily 15:00 Europe/Berlin", "mon,wed,fri 09:30,18:00 America/New_York".
 *
 * Time zones come from the system tz database (/usr/share/zoneinfo, or
 * $TZDIR): TZ is set to the zone, tzset() and localtime_r() answer, and the
 * process's own TZ is restored before returning, so the daemon's log times
 * never change.  Local wall times are turned into instants without mktime's
 * guesswork: the offsets a day before and a day after are tried and the
 * result checked with localtime_r.  A wall time that does not exist (the
 * spring-forward gap) becomes the first valid instant after it, i.e. the
 * moment of the change (02:30 on a 02:00->03:00 night publishes at 03:00);
 * a wall time that exists twice (the fall-back hour) takes the first
 * occurrence.
 */
#define _GNU_SOURCE
#include "base.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const day_names[7] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };
static const struct {
	const char *word;
	unsigned mask;
} day_sets[] = { { "daily", 0x7f }, { "weekdays", 0x3e }, { "weekends", 0x41 }, { NULL, 0 } };

static int parse_days(const char *w, unsigned *mask)
{
	char *copy = xstrdup(w), *save = NULL;
	int rc = 0;

	*mask = 0;
	for (int i = 0; day_sets[i].word; i++)
		if (!strcmp(w, day_sets[i].word)) {
			*mask = day_sets[i].mask;
			free(copy);
			return 0;
		}
	for (char *d = strtok_r(copy, ",", &save); d && rc == 0; d = strtok_r(NULL, ",", &save)) {
		int k = 0;
		while (k < 7 && strcmp(d, day_names[k])) k++;
		if (k == 7)
			rc = err_set("'%s' is not a day: use daily, weekdays, weekends or mon,tue,... (lower case)", d);
		else
			*mask |= 1u << k;
	}
	free(copy);
	if (rc == 0 && *mask == 0) rc = err_set("no days given: use daily, weekdays, weekends or mon,tue,...");
	return rc;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static int parse_times(const char *w, struct cadence *cad)
{
	const char *p = w;

	cad->ntimes = 0;
	for (;;) {
		int h, m, n = 0;
		if (sscanf(p, "%2d:%2d%n", &h, &m, &n) != 2 || n != 5 || h > 23 || m > 59 || h < 0 || m < 0)
			return err_set("'%s' is not a list of 24-hour times like 09:30,18:00", w);
		if (cad->ntimes == CADENCE_MAX_TIMES)
			return err_set("more than %d times in '%s'", CADENCE_MAX_TIMES, w);
		cad->minutes[cad->ntimes++] = h * 60 + m;
		p += n;
		if (!*p) break;
		if (*p++ != ',') return err_set("'%s' is not a list of 24-hour times like 09:30,18:00", w);
	}
	qsort(cad->minutes, (size_t)cad->ntimes, sizeof cad->minutes[0], cmp_int);
	return 0;
}

/* A zone is a name in the tz database: relative, no "..", a TZif file. */
static int check_zone(const char *z)
{
	const char *dir = getenv("TZDIR") ? getenv("TZDIR") : "/usr/share/zoneinfo";
	char *path, head[4];
	FILE *f;
	int ok;

	if (!*z || z[0] == '/' || strstr(z, "..") || strlen(z) >= sizeof((struct cadence *)0)->zone)
		return err_set("'%s' is not a time zone name like Europe/Berlin", z);
	for (const char *p = z; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/_-+", *p))
			return err_set("'%s' is not a time zone name like Europe/Berlin", z);
	path = xasprintf("%s/%s", dir, z);
	f = fopen(path, "rbe");
	ok = f && fread(head, 1, 4, f) == 4 && !memcmp(head, "TZif", 4);
	if (f) fclose(f);
	free(path);
	if (!ok)
		return err_set("time zone '%s' is not in the tz database at %s (misspelt? is the Debian package "
			       "tzdata installed?)",
			       z, dir);
	return 0;
}

int cadence_parse(const char *text, struct cadence *cad)
{
	char days[64], times[256], zone[64], extra[2];
	int n;

	memset(cad, 0, sizeof *cad);
	if (!text) return err_set("cadence: expected a string like 'daily 15:00 Europe/Berlin'");
	n = sscanf(text, " %63s %255s %63s %1s", days, times, zone, extra);
	if (n != 3)
		return err_set("cadence '%.100s': expected three words, DAYS TIMES ZONE, like "
			       "'mon,wed,fri 09:30,18:00 America/New_York'",
			       text);
	if (parse_days(days, &cad->days) < 0 || parse_times(times, cad) < 0 || check_zone(zone) < 0)
		return err_set("cadence '%.100s': %s", text, err_msg());
	snprintf(cad->zone, sizeof cad->zone, "%s", zone);
	return 0;
}

/* ---- the zone switch: always restored ------------------------------------ */

struct tz_saved {
	char *old;
	int had;
};

static void tz_enter(const char *zone, struct tz_saved *s)
{
	const char *old = getenv("TZ");
	s->had = old != NULL;
	s->old = old ? xstrdup(old) : NULL;
	setenv("TZ", zone, 1);
	tzset();
}

static void tz_leave(struct tz_saved *s)
{
	if (s->had)
		setenv("TZ", s->old, 1);
	else
		unsetenv("TZ");
	tzset();
	free(s->old);
}

static long gmtoff_at(time_t t)
{
	struct tm tm;
	localtime_r(&t, &tm);
	return tm.tm_gmtoff;
}

static int wall_is(time_t t, const struct tm *want)
{
	struct tm tm;
	localtime_r(&t, &tm);
	return tm.tm_year == want->tm_year && tm.tm_mon == want->tm_mon && tm.tm_mday == want->tm_mday &&
		tm.tm_hour == want->tm_hour && tm.tm_min == want->tm_min;
}

/* In the current TZ: the instant of a local wall time (see the top). */
static time_t local_instant(const struct tm *want)
{
	struct tm w = *want;
	time_t as_utc = timegm(&w);
	long before = gmtoff_at(as_utc - 86400), after = gmtoff_at(as_utc + 86400);
	time_t ta = as_utc - before, tb = as_utc - after, lo, hi;

	if (wall_is(ta, want) && wall_is(tb, want)) return ta < tb ? ta : tb; /* fall back: first */
	if (wall_is(ta, want)) return ta;
	if (wall_is(tb, want)) return tb;
	/* the gap: the first instant that carries the new offset */
	lo = ta < tb ? ta : tb, hi = ta < tb ? tb : ta;
	while (lo < hi) {
		time_t mid = lo + (hi - lo) / 2;
		if (gmtoff_at(mid) == after)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* The earliest slot strictly after `after`, scanning local days from the
 * day before it (a slot's instant can fall on another UTC day). */
static time_t next_in_zone(const struct cadence *cad, time_t after)
{
	struct tm day;
	time_t best = (time_t)-1;

	localtime_r(&after, &day);
	day.tm_mday -= 1;
	for (int i = 0; i < 10; i++, day.tm_mday++) {
		struct tm d = day;
		d.tm_hour = 12, d.tm_min = 0, d.tm_sec = 0;
		timegm(&d); /* normalise the date, fill tm_wday */
		if (!(cad->days & (1u << d.tm_wday))) continue;
		for (int k = 0; k < cad->ntimes; k++) {
			time_t t;
			d.tm_hour = cad->minutes[k] / 60, d.tm_min = cad->minutes[k] % 60;
			t = local_instant(&d);
			if (t > after && (best == (time_t)-1 || t < best)) best = t;
		}
		if (best != (time_t)-1 && i >= 2) break;
	}
	return best;
}

double cadence_next(const struct cadence *cad, double after)
{
	struct tz_saved s;
	time_t t;

	tz_enter(cad->zone, &s);
	t = next_in_zone(cad, (time_t)after);
	tz_leave(&s);
	return (double)t;
}

/* ---- instants ------------------------------------------------------------ */

void cadence_iso(double t, char out[32])
{
	time_t s = (time_t)t;
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM); the date must exist. */
double cadence_parse_instant(const char *s)
{
	struct tm tm = { 0 }, back;
	const char *end;
	int oh = 0, om = 0, n = 0, sign = 1;
	time_t t;

	if (!s || !(end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))) return -1;
	if (*end == '.') {
		end++;
		while (isdigit((unsigned char)*end)) end++;
	}
	if (!strcmp(end, "Z"))
		n = 1;
	else if ((*end == '+' || *end == '-') && sscanf(end + 1, "%2d:%2d%n", &oh, &om, &n) == 2 && n == 5 &&
		 !end[1 + n] && oh <= 18 && om <= 59)
		sign = *end == '-' ? -1 : 1;
	else
		return -1;
	back = tm;
	t = timegm(&back);
	if (back.tm_mday != tm.tm_mday || back.tm_mon != tm.tm_mon) return -1; /* Feb 30 */
	return (double)t - sign * (oh * 3600 + om * 60);
}
