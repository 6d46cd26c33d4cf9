/* SPDX-License-Identifier: MIT */
/*
 * Letting an end go: closing it (end of stream, or, for a writer, aborted),
 * or dropping this process's copy of it after fork(2) and leaving the end
 * to the other holder.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"
#include "os.h"

/*
 * Lets go of this process's copy of an end and leaves the end as it is: its
 * doorbells, its description (whose last reference keeps its lock), its
 * mapping.
 */
static int end_drop(struct shmpipe__end *e)
{
	shmpipe__doorbell_close(e);
	shmpipe__os_close(e->fd);
	shmpipe__map_put(e->map);
	free(e);
	return 0;
}

/*
 * Ends an end: its state (CLOSED, or ABORTED), a wake-up for the peer, its
 * doorbells, its lock and mapping.
 */
static int end_close(struct shmpipe__end *e, shmpipe__u32 *state, uint32_t how,
		     shmpipe__u32 *peer_event)
{
	/*
	 * For the writer, ordered after its last publish of write_index, so a
	 * reader that sees CLOSED finds every byte; then wake the peer if it
	 * waits (on an empty ring, or a full one).
	 */
	if (e->place)
		shmpipe__place_leave(e, how); /* a broadcast reader: its place */
	else
		shmpipe__store32_sc(state, how);
	if (e->fan)
		shmpipe__fan_signal(e); /* every reader that waits */
	else
		shmpipe__signal(e, peer_event);
	return end_drop(e); /* the last reference releases the liveness lock */
}

int shmpipe_writer_drop(shmpipe_writer *w)
{
	if (!w)
		return -EINVAL;
	return end_drop(&w->e);
}

int shmpipe_reader_drop(shmpipe_reader *r)
{
	if (!r)
		return -EINVAL;
	return end_drop(&r->e);
}

int shmpipe_writer_close(shmpipe_writer *w)
{
	if (!w)
		return -EINVAL;
	return end_close(&w->e, &w->e.hdr->writer_state, SHMPIPE__END_CLOSED,
			 &w->e.hdr->data_event);
}

int shmpipe_writer_abort(shmpipe_writer *w)
{
	if (!w)
		return -EINVAL;
	return end_close(&w->e, &w->e.hdr->writer_state, SHMPIPE__END_ABORTED,
			 &w->e.hdr->data_event);
}

int shmpipe_reader_close(shmpipe_reader *r)
{
	if (!r)
		return -EINVAL;
	/* A writer asleep on a full ring must learn now that nobody reads. */
	return end_close(&r->e, &r->e.hdr->reader_state, SHMPIPE__END_CLOSED,
			 &r->e.hdr->space_event);
}
