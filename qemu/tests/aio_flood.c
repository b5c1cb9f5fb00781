// SPDX-License-Identifier: GPL-2.0
/*
 * aio_flood DEV libaio|io_uring [DEPTH [SECONDS]]
 *
 * Keeps DEPTH (default 32) O_DIRECT reads and writes of 4 KiB in flight on DEV, at offsets
 * spread over its first 8 MiB, with libaio or io_uring, resubmitting each as it completes,
 * until killed (or for SECONDS, default 60). For t_unload_stress.sh, which kills it with its
 * I/O in flight and unloads the driver at once: unlike fio, it starts in no time.
 */
#include "common.h"

#include <libaio.h>
#include <liburing.h>

#define BS 4096
#define SPAN (8 * MiB)

static int depth = 32;
static char *bufs;

static off_t offset_of(unsigned long n)
{
	return (off_t)((n * 7919) % (SPAN / BS)) * BS;
}

static int flood_aio(int fd, time_t end)
{
	struct iocb *cbs = calloc(depth, sizeof(*cbs)), *p[1];
	struct io_event ev[64];
	io_context_t ctx = 0;
	unsigned long n = 0;
	int i, r;

	if (!cbs || io_setup(depth, &ctx))
		return 1;
	for (i = 0; i < depth; i++, n++) {
		if (n & 1)
			io_prep_pwrite(&cbs[i], fd, bufs + i * BS, BS, offset_of(n));
		else
			io_prep_pread(&cbs[i], fd, bufs + i * BS, BS, offset_of(n));
		p[0] = &cbs[i];
		if (io_submit(ctx, 1, p) != 1)
			return 1;
	}
	while (time(NULL) < end) {
		r = io_getevents(ctx, 1, 64, ev, NULL);
		if (r < 0)
			return 1;
		for (i = 0; i < r; i++) {
			struct iocb *cb = ev[i].obj;

			cb->u.c.offset = offset_of(n++);
			p[0] = cb;
			if (io_submit(ctx, 1, p) != 1)
				return 1;
		}
	}
	return 0;
}

static int flood_uring(int fd, time_t end)
{
	struct io_uring ring;
	unsigned long n = 0;
	int i;

	if (io_uring_queue_init(depth, &ring, 0))
		return 1;
	for (i = 0; i < depth; i++, n++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		if (n & 1)
			io_uring_prep_write(sqe, fd, bufs + i * BS, BS, offset_of(n));
		else
			io_uring_prep_read(sqe, fd, bufs + i * BS, BS, offset_of(n));
		io_uring_sqe_set_data64(sqe, i);
	}
	if (io_uring_submit(&ring) != depth)
		return 1;
	while (time(NULL) < end) {
		struct io_uring_cqe *cqe;
		struct io_uring_sqe *sqe;

		if (io_uring_wait_cqe(&ring, &cqe))
			return 1;
		i = (int)io_uring_cqe_get_data64(cqe);
		io_uring_cqe_seen(&ring, cqe);
		sqe = io_uring_get_sqe(&ring);
		if (n & 1)
			io_uring_prep_write(sqe, fd, bufs + i * BS, BS, offset_of(n));
		else
			io_uring_prep_read(sqe, fd, bufs + i * BS, BS, offset_of(n));
		n++;
		io_uring_sqe_set_data64(sqe, i);
		if (io_uring_submit(&ring) != 1)
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	time_t end;
	int fd;

	if (argc < 3 || argc > 5) {
		fprintf(stderr, "usage: %s DEV libaio|io_uring [DEPTH [SECONDS]]\n", argv[0]);
		return 2;
	}
	if (argc > 3)
		depth = atoi(argv[3]);
	if (depth < 1 || depth > 256)
		return 2;
	end = time(NULL) + (argc > 4 ? atoi(argv[4]) : 60);
	fd = open(argv[1], O_RDWR | O_DIRECT);
	/* A device that is direct by nature may refuse the flag. */
	if (fd < 0 && errno == EINVAL)
		fd = open(argv[1], O_RDWR);
	if (fd < 0 || posix_memalign((void **)&bufs, PAGE, (size_t)depth * BS)) {
		perror(argv[1]);
		return 1;
	}
	memset(bufs, 0x5a, (size_t)depth * BS);
	if (!strcmp(argv[2], "libaio"))
		return flood_aio(fd, end);
	if (!strcmp(argv[2], "io_uring"))
		return flood_uring(fd, end);
	return 2;
}
