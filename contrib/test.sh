#!/bin/sh
# The test suite: install what is needed, then `make test` (warning-free
# build, ASan+UBSan build, unit tests, black-box tests with pytest).
set -eu
cd "$(dirname "$0")/.."
sh contrib/install-deps.sh
make -j2 -s test
