/* tap.h - a minimal TAP producer for the unit tests (run by tests/test_unit.py). */
#ifndef TAP_H
#define TAP_H
#include <stdio.h>
#include <stdlib.h>
static int tap_n, tap_failed;
#define ok(cond, ...) \
	do { \
		int c_ = !!(cond); \
		tap_n++; \
		if (!c_) tap_failed++; \
		printf("%sok %d - ", c_ ? "" : "not ", tap_n); \
		printf(__VA_ARGS__); \
		printf("\n"); \
	} while (0)
/* Test set-up that must work: a failure stops the test with its reason. */
#define must(call) \
	do { \
		if ((call) < 0) { \
			printf("Bail out! %s: %s\n", #call, err_msg()); \
			exit(1); \
		} \
	} while (0)
#define tap_done() (printf("1..%d\n", tap_n), tap_failed ? 1 : 0)
#endif
