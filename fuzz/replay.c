/* SPDX-License-Identifier: MIT */
/*
 * Description: runs the fuzz harness over saved inputs without libFuzzer, so
 * that the corpus is replayed by every build (gcc, clang, ASan, TSan) and
 * can be run under valgrind or a debugger:
 *
 *     fuzz_replay fuzz/corpus            every file of a directory, sorted
 *     fuzz_replay crash-1234 other.bin   single files
 *
 * Each input runs through LLVMFuzzerTestOneInput exactly as the fuzzer runs
 * it; a check that fails there aborts the process, naming the input on
 * stderr just before. Exits 0 when every input passed, 1 when an argument
 * could not be read or held no input at all (a wrong path must not pass).
 * SHMPIPE_FUZZ_VERBOSE=1 prints what each input's open returned.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a whole file; returns 0, or -1 with a message. */
static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f) {
		fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (n == cap) {
			uint8_t *nb = realloc(buf, cap ? 2 * cap : 4096);

			if (!nb) {
				fprintf(stderr, "fuzz_replay: %s: out of memory\n", path);
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
			cap = cap ? 2 * cap : 4096;
		}
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "fuzz_replay: %s: read error\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

static int replay_file(const char *path)
{
	uint8_t *buf;
	size_t len;

	if (read_file(path, &buf, &len) < 0)
		return -1;
	/* Named first: if the harness aborts, this is the input to look at. */
	fprintf(stderr, "fuzz_replay: %s (%zu bytes)\n", path, len);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

/* Every regular file of a directory, in name order; returns the count or -1. */
static int replay_dir(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort), count = 0, err = 0;

	if (n < 0) {
		fprintf(stderr, "fuzz_replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		if (names[i]->d_name[0] != '.' &&
		    snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) <
			(int)sizeof(path) &&
		    stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(path) < 0)
				err = -1;
			else
				count++;
		}
		free(names[i]);
	}
	free(names);
	return err < 0 ? -1 : count;
}

int main(int argc, char **argv)
{
	int total = 0, failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s <file or directory>...\n", argv[0]);
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int n;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "fuzz_replay: %s: %s\n", argv[i], strerror(errno));
			failed = 1;
			continue;
		}
		n = S_ISDIR(st.st_mode) ? replay_dir(argv[i])
					: (replay_file(argv[i]) == 0 ? 1 : -1);
		if (n <= 0) {
			if (n == 0)
				fprintf(stderr, "fuzz_replay: %s: no inputs\n", argv[i]);
			failed = 1;
		} else {
			total += n;
		}
	}
	fprintf(stderr, "fuzz_replay: %d inputs replayed%s\n", total,
		failed ? ", some arguments failed" : "");
	return failed;
}
