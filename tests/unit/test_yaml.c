/* Unit tests: yaml.c conversion and error positions. */
#include "daemon.h"
#include "provider.h"
#include "tap.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cJSON *load(const char *text)
{
	char path[] = "/tmp/acog-yaml-XXXXXX";
	int fd = mkstemp(path);
	cJSON *j;
	if (write(fd, text, strlen(text)) < 0) return NULL;
	close(fd);
	j = yaml_load_file(path);
	unlink(path);
	return j;
}

int main(void)
{
	cJSON *j = load("id: demo\nvideo: {width: 320, burn_subtitles: false}\nlist: [a, 'b', 3]\nq: \"42\"\n");
	ok(j != NULL, "parses");
	ok(!strcmp(json_str(j, "id", ""), "demo"), "string");
	ok(json_num(j, "video.width", 0) == 320, "number in flow mapping");
	ok(json_bool(j, "video.burn_subtitles", 1) == 0, "boolean");
	ok(cJSON_GetArraySize(cJSON_GetObjectItem(j, "list")) == 3, "sequence");
	ok(cJSON_IsString(cJSON_GetObjectItem(j, "q")), "quoted scalar stays a string");
	cJSON_Delete(j);
	j = load("a: [1, 2\nb: 3\n");
	ok(j == NULL && strstr(err_msg(), "line"), "error names the line: %s", err_msg());
	j = load("- just\n- a list\n");
	ok(j == NULL && strstr(err_msg(), "mapping"), "top level must be a mapping");
	j = load("a: &x 1\nb: *x\n");
	ok(j == NULL && strstr(err_msg(), "aliases"), "aliases refused");
	j = load("");
	ok(j && cJSON_IsObject(j), "empty file is an empty mapping");
	cJSON_Delete(j);
	return tap_done();
}
