/* SPDX-License-Identifier: MIT */
/*
 * Description: the peer is untrusted. A peer that scribbles impossible
 * positions into the shared header (write_index beyond read_index +
 * capacity, or moving backwards; read_index beyond what was written, or
 * moving backwards) gets the other end an error, -EPROTO (-EBADMSG is also
 * allowed for writes), never an out-of-bounds copy (ASan watches) or a
 * success, also with an infinite timeout. Each such header is one row of a
 * table (field, value, the call of the other end, the error it must get),
 * tried on a new pair. A record writev whose reader's position turns bad
 * half-way publishes the records already copied and refuses the rest. The
 * test plays the hostile peer by writing into the header through the
 * mapping it finds in /proc/self/maps, at the offsets of src/layout.h: it
 * tests the shared ABI, on purpose.
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

enum field {
	WRITE_INDEX, /* the writer's position: the reader checks it, in shmpipe_read */
	READ_INDEX,  /* the reader's position: the writer checks it, in shmpipe_write */
};

/*
 * One hostile header: on a new pair of `capacity` bytes, the writer writes
 * `written` bytes, the reader reads `read` of them back and the writer
 * writes `written_after` more (honest traffic, all of which fits); then the
 * peer stores `value` into `field`, and the end that checks that field,
 * with timeout `timeout_ms`, asks to move `len` bytes: it must get `want`
 * (or `also`, when that is not 0), never a success, a hang or an overrun.
 */
struct hostile {
	const char *what;
	enum field field;
	size_t capacity;
	size_t written, read, written_after;
	uint64_t value;
	int timeout_ms;
	size_t len;
	int want, also;
};

static const struct hostile cases[] = {
    /* The writer claims more than the ring can hold: the reader refuses. */
    {"write_index beyond read_index + capacity", WRITE_INDEX, 1000, 0, 0, 0, 1001, 0, 4096, -EPROTO,
     0},
    {"write_index UINT64_MAX", WRITE_INDEX, 1000, 0, 0, 0, UINT64_MAX, 0, 4096, -EPROTO, 0},
    {"write_index 2^63", WRITE_INDEX, 1000, 0, 0, 0, (uint64_t)1 << 63, 0, 4096, -EPROTO, 0},
    /* With an infinite timeout: an error, not a hang either. */
    {"write_index 2^63, infinite timeout", WRITE_INDEX, 1000, 0, 0, 0, (uint64_t)1 << 63, -1, 4096,
     -EPROTO, 0},
    /* The writer's position moves backwards. */
    {"write_index back from 10 to 3", WRITE_INDEX, 64, 10, 10, 0, 3, 0, 64, -EPROTO, 0},
    /* The reader claims to have read more than was written. */
    {"read_index beyond write_index", READ_INDEX, 64, 64, 0, 0, 64 + 4096, 0, 64, -EPROTO,
     -EBADMSG},
    {"read_index UINT64_MAX", READ_INDEX, 64, 64, 0, 0, UINT64_MAX, 0, 1, -EPROTO, -EBADMSG},
    /* Infinite timeout: an error, not a hang, not an overrun. */
    {"read_index UINT64_MAX, infinite timeout", READ_INDEX, 64, 64, 0, 0, UINT64_MAX, -1, 64,
     -EPROTO, -EBADMSG},
    /* The reader's position moves backwards (it would free space twice). */
    {"read_index back from 32 to 8", READ_INDEX, 64, 64, 32, 32, 8, 0, 8, -EPROTO, -EBADMSG},
};

static void test_hostile(const struct hostile *c)
{
	shmpipe_writer *w;
	shmpipe_reader *r;
	struct shmpipe__hdr *h;
	uint8_t buf[4096] = {0};
	ssize_t ret;

	test_pair(&w, &r, c->capacity);
	h = find_header();
	ASSERT_OK(shmpipe_writer_set_timeout(w, 0));
	ASSERT_OK(shmpipe_reader_set_timeout(r, 0));
	if (c->written > 0)
		ASSERT_EQ(shmpipe_write(w, buf, c->written), c->written);
	if (c->read > 0)
		test_read_exact(r, buf, c->read);
	if (c->written_after > 0)
		ASSERT_EQ(shmpipe_write(w, buf, c->written_after), c->written_after);
	if (c->field == WRITE_INDEX) {
		ASSERT_OK(shmpipe_reader_set_timeout(r, c->timeout_ms));
		poke(&h->write_index, c->value);
		ret = shmpipe_read(r, buf, c->len);
	} else {
		ASSERT_OK(shmpipe_writer_set_timeout(w, c->timeout_ms));
		poke(&h->read_index, c->value);
		ret = shmpipe_write(w, buf, c->len);
	}
	if (ret != c->want && (c->also == 0 || ret != c->also)) {
		fprintf(stderr, "FAIL: %s: %s of %zu = %zd (%s), want %d (%s)", c->what,
			c->field == WRITE_INDEX ? "read" : "write", c->len, ret, test_errtext(ret),
			c->want, shmpipe_strerror(c->want));
		if (c->also != 0)
			fprintf(stderr, " or %d (%s)", c->also, shmpipe_strerror(c->also));
		fputc('\n', stderr);
		test_die();
	}
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
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		test_hostile(&cases[i]);
	test_writev_records_then_bad_read_index();
	return T_PASS;
}
