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
       src/intake.c src/pulse.c src/cmd_pulse.c src/context.c src/cmd_report.c src/report_ctx.c \
       src/report_html.c src/report_episode.c src/report_review.c src/report_index.c src/report_diff.c \
       src/manage.c src/cmd_manage.c src/diff.c src/cmd_status_watch.c src/metrics.c src/notify.c src/words.c \
       src/captions.c src/tts_offline.c src/prov_flite.c src/prov_festival.c src/voice_pick.c src/cmd_backup.c \
       src/cmd_fsck.c src/fsck_db.c src/fsck_files.c src/thumbnail.c src/chanfile.c src/music.c src/shorts.c \
       src/repurpose.c src/qa.c src/qa_measure.c src/qa_loudnorm.c src/qa_text.c src/qa_show.c \
       src/schema_blob.c src/demo_blob.c src/prompts_blob.c \
       src/recover.c src/broll_gen.c src/avatar_gen.c \
       src/clip_recover.c \
       src/media_bg.c \
       src/caption_band.c
HDRS = src/base.h src/http.h src/provider.h src/daemon.h src/youtube.h src/report.h src/fsck.h
OBJS = $(SRCS:src/%.c=build/obj/%.o)
ASAN_OBJS = $(SRCS:src/%.c=build/asan/%.o)
ASAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

UNIT_TESTS = tests/unit/test_util.bin tests/unit/test_idea.bin tests/unit/test_script.bin \
             tests/unit/test_state.bin tests/unit/test_yaml.bin tests/unit/test_http.bin tests/unit/http_probe.bin \
             tests/unit/test_quota.bin tests/unit/test_cadence.bin \
             tests/unit/test_registry.bin tests/unit/test_report.bin tests/unit/test_diff.bin tests/unit/test_words.bin \
             tests/unit/test_broll_gen.bin tests/unit/test_caption_band.bin
UNIT_LIB = $(filter-out build/asan/main.o build/asan/cmd_%.o,$(ASAN_OBJS))

.PHONY: lint format all clean deps readme-images test test-clock check-asan unit demo bench bench-smoke install static test-static \
	fuzz fuzz-build fuzz-replay test-crash test-crash-points
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

# libFuzzer targets (tests/fuzz/fuzz_<name>.c), one per parser.  A target
# that #includes a source file (to reach its static parsers) links without
# that file's object: fuzz_incl_<name> lists them.  `make fuzz SECONDS=60`
# runs each for SECONDS, two at a time; crashes are kept in
# tests/fuzz/regress/<name>/.  `make fuzz-replay` links the same targets with
# tests/fuzz/replay.c and the ASan objects: make test replays seeds and
# regression inputs through them (tests/test_fuzz.py) without clang.
FUZZ_TARGETS = idea config script timeline openai elevenlabs clips youtube
fuzz_incl_timeline = narration
fuzz_incl_openai = prov_openai
fuzz_incl_elevenlabs = prov_elevenlabs
fuzz_incl_clips = prov_heygen prov_runway
fuzz_incl_youtube = oauth youtube_api youtube_upload
FUZZ_CC = clang
FUZZ_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJS = $(filter-out build/fuzz/obj/main.o build/fuzz/obj/cmd_%.o,$(SRCS:src/%.c=build/fuzz/obj/%.o))
FUZZ_BINS = $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
FUZZ_REPLAYS = $(FUZZ_TARGETS:%=build/fuzz/replay_%)
SECONDS ?= 60
build/fuzz/obj/%.o: src/%.c $(HDRS) | build/fuzz/obj
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -Wa,-I. -c -o $@ $<
build/fuzz/obj/schema_blob.o: schema.sql
build/fuzz/obj/demo_blob.o: channels/demo/channel.yaml channels/demo/sample-idea.json
build/fuzz/obj/prompts_blob.o: prompts/planning.txt prompts/scripting.txt prompts/metadata.txt
build/fuzz/obj:
	mkdir -p $@
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJS) | build/fuzz/obj
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -D_GNU_SOURCE= -Isrc -o $@ $< \
		$(filter-out $(fuzz_incl_$*:%=build/fuzz/obj/%.o),$(FUZZ_OBJS)) $(LDLIBS)
build/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h tests/fuzz/replay.c $(UNIT_LIB) | build/fuzz/obj
	$(CC) $(CFLAGS) -O1 $(ASAN_FLAGS) -D_GNU_SOURCE= -Isrc -o $@ $< tests/fuzz/replay.c \
		$(filter-out $(fuzz_incl_$*:%=build/asan/%.o),$(UNIT_LIB)) $(LDLIBS)
fuzz-build: $(FUZZ_BINS)
fuzz-replay: $(FUZZ_REPLAYS)
fuzz: fuzz-build
	sh tests/fuzz/run.sh $(SECONDS) $(FUZZ_TARGETS)

# One formatting style over the C sources (.clang-format): `make format`
# applies it, `make lint` (run by CI) fails on any difference.
LINT_FILES = $(wildcard src/*.c src/*.h tests/unit/*.c tests/unit/*.h contrib/static/*.c tests/fuzz/*.c tests/fuzz/*.h)
lint:
	clang-format --dry-run --Werror $(LINT_FILES)
format:
	clang-format -i $(LINT_FILES)

# `make test`: build without warnings, then unit tests and black-box tests
# (pytest drives the real binary, ffmpeg, espeak-ng and SQLite).
# Two pytest workers (python3-pytest-xdist), one test file each at a time: most
# tests wait on a daemon, ffmpeg or a fake server, so two keep both cores busy.
# TEST_JOBS=1 runs them one after the other.
TEST_JOBS ?= 2
PYTEST_JOBS = $(if $(filter 1,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile)
test: all acog-batch-asan unit fuzz-replay
	ACOG_BIN=$(CURDIR)/acog-batch-asan /usr/bin/python3 -m pytest -q -p no:cacheprovider $(PYTEST_JOBS) tests

check-asan: test

# The crash matrix at full size (issue 9): `make test-crash N=200 KILLS=30`
# kills the daemon at random instants (and stage children alone) during N
# ideas over 3 channels; `make test-crash-points STEP=1` aborts it after
# every durable point of one episode's life (ACOG_CRASH_AFTER, ASan build
# only).  `make test` runs both at a bounded size.  Figures: FIGURES=file.
N ?= 200
KILLS ?= 30
CHILD_KILLS ?= 10
STEP ?= 1
FIGURES ?= $(CURDIR)/build/crash-figures.jsonl
test-crash: acog-batch-asan
	ACOG_MATRIX_IDEAS=$(N) ACOG_MATRIX_KILLS=$(KILLS) ACOG_MATRIX_CHILD_KILLS=$(CHILD_KILLS) \
	ACOG_MATRIX_FIGURES=$(FIGURES) ACOG_BIN=$(CURDIR)/acog-batch-asan \
		/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/test_crash_matrix.py -k random
test-crash-points: acog-batch-asan
	ACOG_MATRIX_POINT_STEP=$(STEP) ACOG_MATRIX_FIGURES=$(FIGURES) ACOG_BIN=$(CURDIR)/acog-batch-asan \
		/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/test_crash_matrix.py -k points

# Clock jumps (issue 9): these tests set the system clock, so they run alone,
# as root, after the suite (contrib/test.sh); `make test` skips them.
test-clock: acog-batch-asan
	ACOG_CLOCK_TESTS=1 ACOG_BIN=$(CURDIR)/acog-batch-asan \
		/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/test_clock_jump.py

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

# `make bench`: acog-batch against this machine's own limits, measured in
# the same run (tests/bench/bench.py); the table goes to bench/results.md.
EPISODES ?= 100000
BURST    ?= 10000
BATCH    ?= 50
PICKUPS  ?= 200
REPS     ?= 5
BENCH_OUT ?= bench/results.md
bench: all
	nice -n 10 /usr/bin/python3 tests/bench/bench.py --bin $(CURDIR)/acog-batch --episodes $(EPISODES) \
		--burst $(BURST) --batch $(BATCH) --pickups $(PICKUPS) --reps $(REPS) --out $(BENCH_OUT)

# The size CI runs (tests/test_bench_smoke.py runs the same): it only shows the harness works.
bench-smoke: all
	/usr/bin/python3 tests/bench/bench.py --bin $(CURDIR)/acog-batch --episodes 300 --burst 40 --batch 3 --batch-delay 0.2 \
		--pickups 10 --reps 1 --idle-seconds 1 --skip assembly --out build/bench/smoke.md

deps:
	sh contrib/install-deps.sh

# The README's screenshots of the review page, stills and QA figures of the
# demo video, made from a real demo run (ROOT=dir reuses a root whose newest
# demo episode has its final.mp4).
readme-images: all
	/usr/bin/python3 contrib/readme_images.py $(if $(ROOT),--root $(ROOT))

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
