// SPDX-License-Identifier: GPL-2.0
/*
 * fork_cow DEV BDEV
 *
 * Direct I/O in flight across fork(). The pages of an I/O buffer are pinned for the I/O, so
 * fork() gives the child copies of them and the parent keeps the pages the device reads or
 * writes: whatever either process then writes into the buffer,
 *
 *  - a write puts on the disk what the parent's buffer held when the write was issued, and
 *    nothing the child wrote;
 *  - a read lands in the parent's buffer, not in the child's, whose copy holds only what
 *    was in the buffer at the fork (the old contents, or data of the read if it had already
 *    run) and then what the child itself wrote.
 *
 * After the fork the parent writes into the bytes of its buffer pages that are outside the
 * I/O (a COW fault on pages fork write-protected would move the parent to new pages and lose
 * the I/O), the child writes over its whole buffer. The I/O is submitted with libaio,
 * io_uring, io_uring with a registered buffer, or from a thread blocked in pread/pwrite, into
 * anonymous memory or a transparent huge page.
 *
 * The device should complete I/O slowly (iov_extract's delay_us) for the I/O to be in flight
 * at the fork; the properties hold either way, and each case says whether it was.
 */
#include "common.h"

#include <libaio.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

static int dev = -1, bdev = -1;
static struct geom g;
static size_t mo;
static unsigned char *vbuf;
static uint32_t seed_next;

static uint32_t new_seed(void)
{
	seed_next = (seed_next + 1) & 0xffffff;
	if (!seed_next)
		seed_next = 1;
	return seed_next;
}

#define R_BASE (24 * MiB)
#define SLOT (2 * MiB)

enum engine { E_LIBAIO, E_URING, E_URING_FIXED, E_THREAD };
static const char *const engine_name[] = { "libaio", "io_uring", "io_uring_fixed", "thread" };

#define MAX_IOS 8

/* ------------------------------------------------------------------ engines */

struct io_set {
	enum engine e;
	int write, n;
	unsigned char *buf[MAX_IOS];
	size_t len[MAX_IOS];
	uint64_t off[MAX_IOS];
	long res[MAX_IOS];
	int done;
};

static io_context_t aio_ctx;
static struct io_uring ring;
static int ring_ok;

static pthread_t worker;
static volatile int worker_started, worker_done;

static void *worker_fn(void *arg)
{
	struct io_set *s = arg;

	worker_started = 1;
	for (int i = 0; i < s->n; i++) {
		ssize_t r = s->write ? pwrite(dev, s->buf[i], s->len[i], s->off[i])
				     : pread(dev, s->buf[i], s->len[i], s->off[i]);

		s->res[i] = r < 0 ? -errno : r;
	}
	worker_done = 1;
	return NULL;
}

static int submit(struct io_set *s)
{
	s->done = 0;
	switch (s->e) {
	case E_LIBAIO: {
		struct iocb cb[MAX_IOS], *cbs[MAX_IOS];

		for (int i = 0; i < s->n; i++) {
			if (s->write)
				io_prep_pwrite(&cb[i], dev, s->buf[i], s->len[i], s->off[i]);
			else
				io_prep_pread(&cb[i], dev, s->buf[i], s->len[i], s->off[i]);
			cb[i].data = (void *)(uintptr_t)i;
			cbs[i] = &cb[i];
		}
		for (int k = 0; k < s->n;) {
			int r = io_submit(aio_ctx, s->n - k, cbs + k);

			if (r <= 0)
				return fail("io_submit: %s", r < 0 ? strerror(-r) : "took nothing");
			k += r;
		}
		return 0;
	}
	case E_URING:
	case E_URING_FIXED:
		for (int i = 0; i < s->n; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			if (!sqe)
				return fail("no SQE");
			if (s->e == E_URING_FIXED && s->write)
				io_uring_prep_write_fixed(sqe, dev, s->buf[i], s->len[i], s->off[i], 0);
			else if (s->e == E_URING_FIXED)
				io_uring_prep_read_fixed(sqe, dev, s->buf[i], s->len[i], s->off[i], 0);
			else if (s->write)
				io_uring_prep_write(sqe, dev, s->buf[i], s->len[i], s->off[i]);
			else
				io_uring_prep_read(sqe, dev, s->buf[i], s->len[i], s->off[i]);
			io_uring_sqe_set_data64(sqe, i);
		}
		if (io_uring_submit(&ring) != s->n)
			return fail("io_uring_submit did not take %d SQEs", s->n);
		return 0;
	case E_THREAD:
		worker_started = worker_done = 0;
		if (pthread_create(&worker, NULL, worker_fn, s))
			return fail("pthread_create");
		while (!worker_started)
			sched_yield();
		/* Let the worker enter its system call. */
		sleep_ms(2);
		return 0;
	}
	return fail("bad engine");
}

/* Collects completions; waits for all when @wait, else takes what is there. */
static int reap(struct io_set *s, int wait)
{
	switch (s->e) {
	case E_LIBAIO:
		while (s->done < s->n) {
			struct io_event ev[MAX_IOS];
			struct timespec ts = { wait ? 60 : 0, 0 };
			int r = io_getevents(aio_ctx, wait ? s->n - s->done : 0, s->n - s->done, ev, &ts);

			if (r < 0)
				return fail("io_getevents: %s", strerror(-r));
			if (r == 0) {
				if (wait)
					return fail("no completion after 60 s");
				break;
			}
			for (int k = 0; k < r; k++)
				s->res[(uintptr_t)ev[k].data] = (long)ev[k].res;
			s->done += r;
		}
		return 0;
	case E_URING:
	case E_URING_FIXED:
		while (s->done < s->n) {
			struct io_uring_cqe *cqe;
			int r = wait ? io_uring_wait_cqe(&ring, &cqe) : io_uring_peek_cqe(&ring, &cqe);

			if (r == -EAGAIN && !wait)
				break;
			if (r < 0)
				return fail("io_uring completion: %s", strerror(-r));
			s->res[io_uring_cqe_get_data64(cqe)] = cqe->res;
			io_uring_cqe_seen(&ring, cqe);
			s->done++;
		}
		return 0;
	case E_THREAD:
		if (wait) {
			pthread_join(worker, NULL);
			s->done = s->n;
		} else if (worker_done) {
			s->done = s->n;
		}
		return 0;
	}
	return fail("bad engine");
}

/* ------------------------------------------------------------------ one case */

static int child_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int child_fail(const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("# child: %s\n", msg);
	fflush(stdout);
	return 1;
}

/*
 * The child: checks what it inherited (a read: the bytes outside the I/O are the old ones,
 * those of the I/O old or new), writes over its whole buffer, waits for the parent's I/O to be
 * over, and checks that nothing but itself wrote into its buffer.
 */
static int child(int go, unsigned char *buf, size_t buflen, size_t ioff, size_t len,
		 uint64_t off, int wr, uint32_t old_seed, uint32_t disk_seed)
{
	char c;

	if (!wr) {
		if (byte_diff(buf, ioff, 0x5a) >= 0 ||
		    byte_diff(buf + ioff + len, buflen - ioff - len, 0x5a) >= 0)
			return child_fail("the bytes outside the read are not the ones at fork");
		for (size_t i = 0; i < len; i += 8) {
			uint64_t o = pat_word(old_seed, off + i), d = pat_word(disk_seed, off + i);
			unsigned char *p = buf + ioff + i;

			for (int j = 0; j < 8; j++)
				if (p[j] != ((unsigned char *)&o)[j] && p[j] != ((unsigned char *)&d)[j])
					return child_fail("byte %zu of the read range is neither old nor new",
							  i + j);
		}
	}
	memset(buf, 0xc3, buflen);
	if (read(go, &c, 1) != 1)
		return child_fail("lost the parent");
	/* The parent's I/O is over: nothing may have landed here since. */
	if (byte_diff(buf, buflen, 0xc3) >= 0)
		return child_fail("its buffer changed at +%ld while the parent's I/O ran",
				  byte_diff(buf, buflen, 0xc3));
	return 0;
}

static int run_case(enum engine e, int wr, int thp, int slot)
{
	void *raw = NULL;
	size_t rawlen = 0, buflen, ioff = mo, len;
	unsigned char *buf;
	uint64_t off = R_BASE + (uint64_t)slot * SLOT;
	uint32_t io_seed = new_seed(), old_seed = new_seed();
	struct io_set s = { .e = e, .write = wr };
	int go[2] = { -1, -1 }, status, rc = 0, registered = 0, inflight, inflight_after;
	long huge = -1;
	pid_t pid;

	if (thp) {
		buflen = HPAGE;
		buf = map_thp(HPAGE, &raw, &rawlen);
		len = MiB;
	} else {
		buflen = 64 * KiB;
		buf = raw = map_anon(buflen, MAP_PRIVATE);
		rawlen = buflen;
		/*
		 * Each page of a registered buffer is a segment, which must be a multiple of
		 * the logical block size: with 4096-byte blocks the I/O starts on a page.
		 */
		if (e == E_URING_FIXED && ioff % g.lbs)
			ioff = (ioff + g.lbs - 1) / g.lbs * g.lbs;
		len = (buflen - 2 * ioff) / g.lbs * g.lbs;
	}
	if (!buf)
		return fail("mmap: %s", strerror(errno));

	/* The disk: the old data for a write, the data to read for a read. */
	pat_fill(vbuf, off, len, wr ? old_seed : io_seed);
	if (pwrite(bdev, vbuf, len, off) != (ssize_t)len) {
		rc = fail("write through BDEV: %s", strerror(errno));
		goto out;
	}
	/* The buffer: the data to write, or the old contents; 0x5a outside the I/O. */
	memset(buf, 0x5a, buflen);
	pat_fill(buf + ioff, off, len, wr ? io_seed : old_seed);
	if (thp)
		huge = anon_huge_kib(buf);

	s.n = e == E_LIBAIO ? 8 : e == E_URING_FIXED ? 4 : e == E_THREAD ? 2 : 1;
	for (int i = 0, done = 0; i < s.n; i++) {
		size_t l = i == s.n - 1 ? len - done : len / s.n / g.lbs * g.lbs;

		s.buf[i] = buf + ioff + done;
		s.len[i] = l;
		s.off[i] = off + done;
		done += l;
	}
	if (e == E_URING_FIXED) {
		struct iovec r = { buf, buflen };
		int ret = io_uring_register_buffers(&ring, &r, 1);

		if (ret < 0) {
			rc = fail("io_uring_register_buffers: %s", strerror(-ret));
			goto out;
		}
		registered = 1;
	}
	if (pipe(go)) {
		rc = fail("pipe: %s", strerror(errno));
		goto out;
	}

	fflush(stdout);
	if (submit(&s)) {
		rc = -1;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		rc = fail("fork: %s", strerror(errno));
		reap(&s, 1);
		goto out;
	}
	if (pid == 0) {
		close(go[1]);
		_exit(child(go[0], buf, buflen, ioff, len, off, wr, old_seed, io_seed));
	}
	close(go[0]);
	go[0] = -1;
	if (reap(&s, 0))
		rc = -1;
	inflight = s.n - s.done;
	/* The parent writes into its buffer pages, outside the range of the I/O. */
	memset(buf, 0xa5, ioff);
	memset(buf + ioff + len, 0xa5, buflen - ioff - len);
	if (!rc && reap(&s, 0))
		rc = -1;
	inflight_after = s.n - s.done;
	if (reap(&s, 1) && !rc)
		rc = -1;
	/* Let the child check its buffer now that the I/O is over. */
	if (write(go[1], "x", 1) != 1 && !rc)
		rc = fail("pipe write: %s", strerror(errno));
	close(go[1]);
	go[1] = -1;
	if (waitpid(pid, &status, 0) != pid)
		status = -1;
	if (rc)
		goto out;
	diag("%s %s %s: %zu bytes in %d I/O, %d in flight at the fork, %d after the parent wrote%s",
	     engine_name[e], wr ? "write" : "read", thp ? "THP" : "anon", len, s.n, inflight,
	     inflight_after, thp ? (huge > 0 ? ", on a huge page" : ", not on a huge page") : "");

	for (int i = 0; i < s.n; i++)
		if (s.res[i] != (long)s.len[i]) {
			rc = fail("I/O %d of %zu bytes: %ld (%s)", i, s.len[i], s.res[i],
				  s.res[i] < 0 ? strerror(-s.res[i]) : "short");
			goto out;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		rc = fail("the child saw its buffer change (status %#x)", status);
		goto out;
	}
	if (byte_diff(buf, ioff, 0xa5) >= 0 ||
	    byte_diff(buf + ioff + len, buflen - ioff - len, 0xa5) >= 0) {
		rc = fail("the parent's own writes outside the I/O were lost");
		goto out;
	}
	if (wr) {
		long d = pat_diff(buf + ioff, off, len, io_seed);

		if (d >= 0) {
			rc = fail("the parent's buffer changed at +%ld during the write", d);
			goto out;
		}
		if (pread(bdev, vbuf, len, off) != (ssize_t)len) {
			rc = fail("read back through BDEV: %s", strerror(errno));
			goto out;
		}
		d = pat_diff(vbuf, off, len, io_seed);
		if (d >= 0) {
			rc = fail("the disk at +%ld is not what the parent wrote%s", d,
				  vbuf[d] == 0xc3 ? " (the child's byte)" : "");
			goto out;
		}
		if (pread(dev, vbuf + mo, len, off) != (ssize_t)len ||
		    pat_diff(vbuf + mo, off, len, io_seed) >= 0)
			rc = fail("read back through DEV differs");
	} else {
		long d = pat_diff(buf + ioff, off, len, io_seed);

		if (d >= 0)
			rc = fail("the read did not land in the parent's buffer (+%ld is %s)", d,
				  buf[ioff + d] == 0xc3 ? "the child's" : "not the disk's");
	}
out:
	if (go[0] >= 0)
		close(go[0]);
	if (go[1] >= 0)
		close(go[1]);
	if (registered)
		io_uring_unregister_buffers(&ring);
	munmap(raw, rawlen);
	return rc;
}

static enum engine c_engine;
static int c_write, c_thp, c_slot;

static int t_case(void)
{
	if (c_engine == E_URING || c_engine == E_URING_FIXED) {
		if (!ring_ok)
			return skip("no io_uring");
	}
	if (c_engine == E_LIBAIO && !aio_ctx)
		return skip("no libaio context");
	if (c_thp && !thp_available())
		return skip("no transparent huge pages");
	return run_case(c_engine, c_write, c_thp, c_slot);
}

int main(int argc, char **argv)
{
	unsigned long long delay;
	char name[96];
	int r, slot = 0;

	tap_begin("fork_cow");
	alarm(600);
	if (argc != 3) {
		fprintf(stderr, "usage: %s DEV BDEV\n", argv[0]);
		return 2;
	}
	if (get_geom(argv[2], &g) || g.size < R_BASE + 14 * SLOT) {
		printf("not ok 1 fork_cow_setup # need a block device of at least %lu MiB: %s\n",
		       (R_BASE + 14 * SLOT) / MiB, argv[2]);
		return 1;
	}
	mo = g.dma < 64 ? 64 : g.dma;
	mo = (mo + g.dma - 1) / g.dma * g.dma;
	dev = open_direct(argv[1], O_RDWR);
	bdev = open_direct(argv[2], O_RDWR);
	vbuf = map_anon(2 * MiB + 2 * PAGE, MAP_PRIVATE);
	if (dev < 0 || bdev < 0 || !vbuf) {
		printf("not ok 1 fork_cow_setup # cannot open the devices or allocate buffers\n");
		return 1;
	}
	seed_next = (uint32_t)(time(NULL) ^ ((uint32_t)getpid() << 12)) & 0xffffff;
	if (read_sysfs_uint("/sys/module/iov_extract/parameters/delay_us", &delay) == 0)
		diag("iov_extract delay_us %llu", delay);
	r = io_setup(MAX_IOS, &aio_ctx);
	if (r < 0) {
		diag("io_setup: %s", strerror(-r));
		aio_ctx = 0;
	}
	r = io_uring_queue_init(MAX_IOS, &ring, 0);
	if (r < 0)
		diag("io_uring_queue_init: %s", strerror(-r));
	else
		ring_ok = 1;

	for (int e = E_LIBAIO; e <= E_THREAD; e++) {
		for (int thp = 0; thp < 2; thp++) {
			if (e == E_THREAD && thp)
				continue;
			for (int w = 1; w >= 0; w--) {
				c_engine = e;
				c_write = w;
				c_thp = thp;
				c_slot = slot++;
				snprintf(name, sizeof(name), "%s_%s_%s", engine_name[e],
					 w ? "write" : "read", thp ? "thp" : "anon");
				run(name, t_case);
			}
		}
	}
	if (ring_ok)
		io_uring_queue_exit(&ring);
	if (aio_ctx)
		io_destroy(aio_ctx);
	close(dev);
	close(bdev);
	run("debugfs_counters_balanced", t_debugfs_counters_balanced);
	run("vmstat_pins_balanced", t_vmstat_pins_balanced);
	return tap_end();
}
