# acog-batch - plain Makefile, explicit sources.
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKGS     = libcurl libcjson sqlite3 yaml-0.1 uuid libcrypto
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wshadow -D_FORTIFY_SOURCE=2 \
           $(shell pkg-config --cflags $(PKGS))
LDLIBS   = $(shell pkg-config --libs $(PKGS)) -lm

SRCS = src/main.c src/cmd_run.c src/cmd_status.c src/cmd_review.c src/cmd_doctor.c src/cmd_upload.c src/cmd_keygen.c \
       src/daemon.c src/sched.c src/schedule.c src/bundle_import.c src/worker.c src/pipeline.c src/review.c \
       src/ingest.c src/idea.c src/spool.c src/episode.c src/job.c src/state.c src/hold.c src/stage.c \
       src/config.c src/yaml.c src/db.c src/json.c src/log.c src/fsio.c src/tmpclean.c src/util.c \
       src/hash.c src/base64.c src/ed25519.c src/bundle.c src/cadence.c src/schedule_file.c src/cache.c src/stagedb.c src/stage_child.c src/cost.c src/budget.c src/proc.c src/media.c src/script.c src/narration.c src/provider.c src/provider_opts.c \
       src/prov_builtin.c src/prov_command.c src/prov_directory.c src/prov_espeak.c \
       src/prov_avatar.c src/prov_broll.c src/prov_assembly.c \
       src/http.c src/credentials.c src/alert.c src/prompt.c src/prov_openai.c src/clip_jobs.c \
       src/prov_elevenlabs.c src/prov_heygen.c src/prov_runway.c \
       src/prov_youtube.c src/youtube_upload.c src/youtube_api.c src/youtube_meta.c src/oauth.c src/quota.c \
       src/cmd_auth.c src/status_youtube.c \
       src/schema_blob.c src/demo_blob.c src/prompts_blob.c \
       src/qa.c \
       src/qa_measure.c \
       src/qa_loudnorm.c \
       src/qa_text.c \
       src/qa_show.c
HDRS = src/base.h src/http.h src/provider.h src/daemon.h src/youtube.h
OBJS = $(SRCS:src/%.c=build/obj/%.o)
ASAN_OBJS = $(SRCS:src/%.c=build/asan/%.o)
ASAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

UNIT_TESTS = tests/unit/test_util.bin tests/unit/test_idea.bin tests/unit/test_script.bin \
             tests/unit/test_state.bin tests/unit/test_yaml.bin tests/unit/test_http.bin tests/unit/http_probe.bin \
             tests/unit/test_quota.bin tests/unit/test_cadence.bin \
             tests/unit/test_registry.bin
UNIT_LIB = $(filter-out build/asan/main.o build/asan/cmd_%.o,$(ASAN_OBJS))

.PHONY: lint format all clean deps test check-asan unit demo bench install static test-static
all: acog-batch

acog-batch: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $(OBJS) $(LDLIBS)

build/obj/%.o: src/%.c $(HDRS) | build/obj
	$(CC) $(CFLAGS) -Wa,-I. -c -o $@ $<
build/asan/%.o: src/%.c $(HDRS) | build/asan
	$(CC) $(CFLAGS) -O1 $(ASAN_FLAGS) -DACOG_TEST -Wa,-I. -c -o $@ $<
build/obj/schema_blob.o build/asan/schema_blob.o: schema.sql
build/obj/demo_blob.o build/asan/demo_blob.o: channels/demo/channel.yaml channels/demo/sample-idea.json
build/obj/prompts_blob.o build/asan/prompts_blob.o build/static-obj/prompts_blob.o: prompts/planning.txt prompts/scripting.txt prompts/metadata.txt
build/obj build/asan:
	mkdir -p $@

# The suite runs against the sanitizer build: ASan + UBSan catch what the
# black-box tests only provoke.
acog-batch-asan: $(ASAN_OBJS)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) -o $@ $(ASAN_OBJS) $(LDLIBS)

tests/unit/%.bin: tests/unit/%.c $(UNIT_LIB)
	$(CC) $(CFLAGS) -O1 $(ASAN_FLAGS) -Isrc -o $@ $< $(UNIT_LIB) $(LDLIBS)

unit: $(UNIT_TESTS)

# One formatting style over the C sources (.clang-format): `make format`
# applies it, `make lint` (run by CI) fails on any difference.
LINT_FILES = $(wildcard src/*.c src/*.h tests/unit/*.c tests/unit/*.h contrib/static/*.c)
lint:
	clang-format --dry-run --Werror $(LINT_FILES)
format:
	clang-format -i $(LINT_FILES)

# `make test`: build without warnings, then unit tests and black-box tests
# (pytest drives the real binary, ffmpeg, espeak-ng and SQLite).
test: all acog-batch-asan unit
	ACOG_BIN=$(CURDIR)/acog-batch-asan /usr/bin/python3 -m pytest -q -p no:cacheprovider tests

check-asan: test

# `make static`: a fully static build/static/acog-batch.  Debian's curl and
# cjson *source* packages are built once into build/static/ (cached), then
# linked with Debian's static c-ares, OpenSSL, zlib, sqlite3, libyaml, libuuid.
STATIC_OBJS = $(SRCS:src/%.c=build/static-obj/%.o)
-include build/static/prefix/flags.mk
static:
	bash contrib/static/build-deps.sh
	$(MAKE) build/static/acog-batch
build/static-obj/%.o: src/%.c $(HDRS) | build/static-obj
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Wshadow $(STATIC_CFLAGS) -Wa,-I. -c -o $@ $<
build/static-obj/schema_blob.o: schema.sql
build/static-obj/demo_blob.o: channels/demo/channel.yaml channels/demo/sample-idea.json
build/static-obj:
	mkdir -p $@
build/static/acog-batch: $(STATIC_OBJS) build/static/prefix/flags.mk
	$(CC) -o $@ $(STATIC_OBJS) $(STATIC_LIBS) 2> build/static/link-warnings.txt || { cat build/static/link-warnings.txt; exit 1; }
	file $@ | grep -q 'statically linked'

# The end-to-end tests against the static binary (HTTPS fakes included).
test-static: static
	ACOG_BIN=$(CURDIR)/build/static/acog-batch /usr/bin/python3 -m pytest -q -p no:cacheprovider \
		tests/test_pipeline.py tests/test_cloud.py

deps:
	sh contrib/install-deps.sh

demo:
	sh contrib/demo.sh

install: acog-batch
	install -Dm755 acog-batch $(DESTDIR)$(PREFIX)/bin/acog-batch
	install -Dm644 man/acog-batch.1 $(DESTDIR)$(PREFIX)/share/man/man1/acog-batch.1
	install -Dm644 man/acog-batch.5 $(DESTDIR)$(PREFIX)/share/man/man5/acog-batch.5
	install -Dm644 contrib/acog-batch.service $(DESTDIR)$(PREFIX)/lib/systemd/system/acog-batch.service
	install -Dm644 contrib/acog-batch.bash-completion $(DESTDIR)$(PREFIX)/share/bash-completion/completions/acog-batch

clean:
	rm -rf build acog-batch acog-batch-asan tests/unit/*.bin
