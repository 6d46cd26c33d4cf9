/* SPDX-License-Identifier: MIT */
/*
 * items_boost: the small-items workload of items.c through
 * boost::lockfree::spsc_queue<int32_t>, which busy-spins when full or empty.
 *
 *   items_boost [--batch 1|N] [--items N] [--slots N]
 *
 * One push/pop per item, or push(ptr, n) / pop(ptr, n) of up to N items.
 * The consumer checks that the values arrive as 1, 2, 3 ...
 *
 * Prints bench.h lines: "items boost batch=B Mitems/s NOTE".
 */
#include <boost/lockfree/spsc_queue.hpp>
#include <cstdint>
#include <thread>
#include <vector>

#include "bench.h"

int main(int argc, char **argv)
{
	size_t batch = 1, slots = 16384;
	uint64_t count = 20000000;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--batch"))
			batch = (size_t)bench_size("items_boost", argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--items"))
			count = bench_size("items_boost", argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--slots"))
			slots = (size_t)bench_size("items_boost", argv[++i]);
		else {
			fprintf(stderr, "usage: items_boost [--batch N] [--items N] [--slots N]\n");
			return 2;
		}
	}
	// spsc_queue keeps one slot empty to tell full from empty, so ask for one
	// more to hold as many items as the other rings.
	boost::lockfree::spsc_queue<int32_t> q(slots + 1);

	double t0 = bench_now();
	std::thread producer([&] {
		std::vector<int32_t> buf(batch);
		uint32_t next = 1;

		for (uint64_t sent = 0; sent < count;) {
			size_t n = count - sent < batch ? (size_t)(count - sent) : batch;

			if (batch == 1) {
				int32_t x = (int32_t)next++;
				while (!q.push(x))
					;
			} else {
				for (size_t i = 0; i < n; i++)
					buf[i] = (int32_t)next++;
				for (size_t done = 0; done < n;)
					done += q.push(buf.data() + done, n - done);
			}
			sent += n;
		}
	});
	std::vector<int32_t> buf(batch);
	uint32_t expect = 1;
	uint64_t got = 0;

	while (got < count) {
		size_t want = count - got < batch ? (size_t)(count - got) : batch, n;

		if (batch == 1) {
			while (!q.pop(buf[0]))
				;
			n = 1;
		} else {
			while (!(n = q.pop(buf.data(), want)))
				;
		}
		for (size_t i = 0; i < n; i++)
			if (buf[i] != (int32_t)expect++)
				BENCH_DIE("items_boost: item %llu is %d",
					  (unsigned long long)(got + i), buf[i]);
		got += n;
	}
	producer.join();
	double t1 = bench_now();
	bench_emit("items", "boost", (double)count / (t1 - t0) / 1e6, "Mitems/s", "batch=%zu",
		   batch);
	bench_note(NULL);
	return 0;
}
