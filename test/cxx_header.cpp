// SPDX-License-Identifier: MIT
/*
 * Description: shmpipe.h from C++. The header, with its inline calls, compiles
 * as C++ (-Wall -Wextra -Werror), shmpipe_write and shmpipe_read work as
 * the macros and as the library's functions (&shmpipe_write,
 * (shmpipe_write)(...)), and items go through in order.
 */
#include <shmpipe.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>

static int fail(const char *what, long i)
{
	std::fprintf(stderr, "FAIL: %s (item %ld)\n", what, i);
	return 1;
}

int main()
{
	ssize_t (*write_fn)(shmpipe_writer *, const void *, size_t) = &shmpipe_write;
	ssize_t (*read_fn)(shmpipe_reader *, void *, size_t) = &shmpipe_read;
	shmpipe_options o = {};
	shmpipe_writer *w;
	shmpipe_reader *r;

	o.capacity = 4096;
	if (shmpipe_pair(&w, &r, &o) < 0)
		return fail("shmpipe_pair", -1);
	for (long i = 0; i < 100000; i++) {
		std::int32_t v = static_cast<std::int32_t>(i), x = -1;
		ssize_t n;

		switch (i % 3) {
		case 0:
			n = shmpipe_write(w, &v, sizeof(v));
			break;
		case 1:
			n = (shmpipe_write)(w, &v, sizeof(v));
			break;
		default:
			n = write_fn(w, &v, sizeof(v));
		}
		if (n != 4)
			return fail("write", i);
		n = i % 2 ? shmpipe_read(r, &x, sizeof(x)) : read_fn(r, &x, sizeof(x));
		if (n != 4 || x != v)
			return fail("read", i);
	}
	if (shmpipe_write(nullptr, "", 1) != -EINVAL)
		return fail("a null handle", -1);
	shmpipe_writer_close(w);
	shmpipe_reader_close(r);
	std::printf("100000 items through the inline calls from C++\n");
	return 0;
}
