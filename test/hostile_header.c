/* SPDX-License-Identifier: MIT */
/*
 * Description: the peer is untrusted. A peer that scribbles impossible
 * positions into the shared header (write_index beyond read_index +
 * capacity, or moving backwards; read_index beyond what was written, or
 * moving backwards) gets the other end an error, -EPROTO (-EBADMSG is also
 * allowed for writes), never an out-of-bounds copy (ASan watches) or a
 * success. The test plays the hostile peer by writing into the header
 * through the mapping it finds in /proc/self/maps, at the offsets of
 * src/layout.h: it tests the shared ABI, on purpose.
 */
#include <stdatomic.h>
#include <stddef.h>

#include "test.h"
#include "layout.h"

/* The header of the only shmpipe mapping of this process. */
static struct shmpipe__hdr *find_header(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4096];
	void *found = NULL;
	int n = 0;

	if (f == NULL)
		TEST_SKIP("no /proc/self/maps");
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long start, end, offset;
		if (strstr(line, "memfd:shmpipe") == NULL)
			continue;
		if (sscanf(line, "%lx-%lx %*s %lx", &start, &end, &offset) != 3)
			continue;
		if (offset == 0) {
			found = (void *)start;
			n++;
		}
	}
	fclose(f);
	if (n != 1)
		TEST_SKIP("found %d shmpipe mappings at offset 0, want 1", n);
	ASSERT_EQ(((struct shmpipe__hdr *)found)->magic, SHMPIPE__MAGIC);
	return found;
}

static void poke(shmpipe__u64 *field, uint64_t v)
{
	atomic_store(field, v);
}

#define ASSERT_PROTO(expr)                                                                         \
	do {                                                                                       \
		long long p_ = (long long)(expr);                                                  \
		if (p_ != -EPROTO && p_ != -EBADMSG) {                                             \
			fprintf(stderr,                                                            \
				"%s:%d: ASSERT_PROTO(%s) failed: got %lld "                        \
				"(%s), want %d (%s) or %d (%s)\n",                                 \
				__FILE__, __LINE__, #expr, p_, test_errtext(p_), -EPROTO,          \
				shmpipe_strerror(-EPROTO), -EBADMSG, shmpipe_strerror(-EBADMSG));  \
			test_die();                                                                \
		}                                                                                  \
	} while (0)

/* The writer claims more than the ring can hold: the reader refuses. */
static void test_write_index_too_far(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct shmpipe__hdr *h;
	uint8_t buf[4096];

	test_pair(&w, &r, 1000);
	h = find_header();
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	poke(&h->write_index, 1001);
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EPROTO);
	poke(&h->write_index, UINT64_MAX);
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EPROTO);
	poke(&h->write_index, (uint64_t)1 << 63);
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EPROTO);
	/* With an infinite timeout: an error, not a hang either. */
	ASSERT_OK(shmpipe_reader_set_timeout(r, -1));
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EPROTO);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/* The writer's position moves backwards. */
static void test_write_index_backwards(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct shmpipe__hdr *h;
	uint8_t buf[64];

	test_pair(&w, &r, 64);
	h = find_header();
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	ASSERT_EQ(shmpipe_write(w, "0123456789", 10), 10);
	test_read_exact(r, buf, 10);
	poke(&h->write_index, 3);
	ASSERT_ERR(shmpipe_read(r, buf, sizeof(buf)), -EPROTO);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/* The reader claims to have read more than was written. */
static void test_read_index_too_far(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct shmpipe__hdr *h;
	uint8_t buf[64] = {0};
	ssize_t ret;

	test_pair(&w, &r, 64);
	h = find_header();
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_EQ(shmpipe_write(w, buf, 64), 64);
	poke(&h->read_index, 64 + 4096);
	ret = shmpipe_write(w, buf, 64);
	ASSERT_PROTO(ret);
	poke(&h->read_index, UINT64_MAX);
	ret = shmpipe_write(w, buf, 1);
	ASSERT_PROTO(ret);
	/* Infinite timeout: an error, not a hang, not an overrun. */
	ASSERT_OK(shmpipe_writer_set_timeout(w, -1));
	ret = shmpipe_write(w, buf, 64);
	ASSERT_PROTO(ret);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/* The reader's position moves backwards (it would free space twice). */
static void test_read_index_backwards(void)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct shmpipe__hdr *h;
	uint8_t buf[64] = {0};
	ssize_t ret;

	test_pair(&w, &r, 64);
	h = find_header();
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_EQ(shmpipe_write(w, buf, 64), 64);
	test_read_exact(r, buf, 32);
	ASSERT_EQ(shmpipe_write(w, buf, 32), 32); /* the writer saw 32 */
	poke(&h->read_index, 8);
	ret = shmpipe_write(w, buf, 8);
	ASSERT_PROTO(ret);
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

/*
 * A record writev whose reader's position turns bad half-way: the records
 * already copied are published and counted, the rest is refused. Returning
 * their count without publishing them would lose them.
 */
static void test_writev_records_then_bad_read_index(void)
{
	shmpipe_options o = {.capacity = 64, .flags = SHMPIPE_RECORDS};
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct shmpipe__hdr *h;
	uint8_t item[8] = "record!", buf[64];
	struct iovec iov[5];

	ASSERT_OK(shmpipe_pair(&w, &r, &o));
	h = find_header();
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	for (int i = 0; i < 5; i++) {
		iov[i].iov_base = item;
		iov[i].iov_len = sizeof(item);
	}
	/* Four 16-byte records fit in what the writer knows; the fifth looks. */
	poke(&h->read_index, 4096);
	ASSERT_EQ(shmpipe_writev(w, iov, 5), 4 * (ssize_t)sizeof(item));
	uint64_t published = atomic_load(&h->write_index);

	ASSERT_EQ(published, 64);
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(shmpipe_read(r, buf, sizeof(buf)), (ssize_t)sizeof(item));
		ASSERT_MEM_EQ(buf, item, sizeof(item));
	}
	ASSERT_OK(shmpipe_writer_close(w));
	ASSERT_OK(shmpipe_reader_close(r));
}

int main(void)
{
	test_watchdog(30);
	test_write_index_too_far();
	test_write_index_backwards();
	test_read_index_too_far();
	test_read_index_backwards();
	test_writev_records_then_bad_read_index();
	return T_PASS;
}
