/*
 * replay.c - a main() for the fuzz targets without libFuzzer: runs the
 * target once on every file named on the command line (seeds, and the
 * regression inputs of crashes found and fixed), so the ordinary ASan
 * build replays them in `make test` (tests/test_fuzz.py).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;
	if (!f) {
		perror(path);
		return -1;
	}
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			if (!(buf = realloc(buf, cap))) abort();
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int bad = 0;
	char **abs = calloc((size_t)argc, sizeof *abs);
	/* absolute first: a target may chdir into its scratch folder */
	for (int i = 1; i < argc; i++)
		if (!(abs[i] = realpath(argv[i], NULL))) abs[i] = strdup(argv[i]);
	for (int i = 1; i < argc; i++) {
		bad |= replay(abs[i]) < 0;
		free(abs[i]);
	}
	free(abs);
	printf("replayed %d inputs\n", argc - 1 - bad);
	return bad ? 66 : 0;
}
