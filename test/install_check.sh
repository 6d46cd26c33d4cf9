#!/bin/sh
# SPDX-License-Identifier: MIT
# Description: installs a built shmpipe into a scratch prefix and builds an
# outside program against it twice: with pkg-config (cc prog.c $(pkg-config
# --cflags --libs shmpipe)) and with CMake's find_package(shmpipe). The
# program moves data through a pipe and must run. Also checks that the
# shared library exports nothing but the public shmpipe_ API.
# Usage: install_check.sh BUILD_DIR SCRATCH_DIR
set -eu
build=$1
scratch=$2
rm -rf "$scratch"
mkdir -p "$scratch/src"
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null

cat >"$scratch/src/prog.c" <<'C'
#include <shmpipe.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	char buf[16] = {0};
	int err = shmpipe_pair(&w, &r, NULL);

	if (err < 0) {
		fprintf(stderr, "shmpipe_pair: %s\n", shmpipe_strerror(err));
		return 1;
	}
	if (shmpipe_write(w, "hello", 5) != 5 || shmpipe_writer_close(w) != 0)
		return 1;
	if (shmpipe_read(r, buf, sizeof(buf)) != 5 || strcmp(buf, "hello") != 0)
		return 1;
	if (shmpipe_read(r, buf, sizeof(buf)) != 0)
		return 1;
	shmpipe_reader_close(r);
	printf("shmpipe %s: ok\n", shmpipe_version());
	return 0;
}
C

for page in shmpipe.3 shmpipe_write.3 shmpipe_writer_close.3; do
	[ -f "$scratch/prefix/share/man/man3/$page" ] || {
		echo "install_check: share/man/man3/$page not installed"
		exit 1
	}
done

lib=$(ls -d "$scratch"/prefix/lib*/ | head -1)
lib=${lib%/}
export PKG_CONFIG_PATH="$lib/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror -o "$scratch/prog_pc" "$scratch/src/prog.c" $(pkg-config --cflags --libs shmpipe)
LD_LIBRARY_PATH="$lib" "$scratch/prog_pc"

cat >"$scratch/src/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(prog C)
find_package(shmpipe REQUIRED)
add_executable(prog_cmake prog.c)
target_link_libraries(prog_cmake shmpipe::shmpipe)
CM
cmake -S "$scratch/src" -B "$scratch/build" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/build" >/dev/null
LD_LIBRARY_PATH="$lib" "$scratch/build/prog_cmake"

extra=$(nm -D --defined-only "$lib/libshmpipe.so" | awk '$2 ~ /^[TDBR]$/ && $3 !~ /^shmpipe_/ {print $3}')
if [ -n "$extra" ]; then
	echo "install_check: exported symbols outside the API: $extra"
	exit 1
fi
echo "install_check: pkg-config and CMake builds ok, exports limited to shmpipe_*"
