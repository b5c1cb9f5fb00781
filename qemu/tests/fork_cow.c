// SPDX-License-Identifier: GPL-2.0
/*
 * fork_cow DEV BDEV pin|legacy
 *
 * Direct I/O in flight across fork(), with the pages of the I/O taken as iov_extract's
 * extract_legacy parameter says, which must agree with the last argument:
 *
 *  - pin (extract_legacy=N): the pages are pinned (FOLL_PIN). fork() sees the pin
 *    (folio_maybe_dma_pinned()) and gives the child copies of those pages at once; the parent
 *    keeps the pages of the I/O. A read lands in the parent's buffer, never in the child's,
 *    whose copy holds what the buffer held at the fork; a write sends what the parent's buffer
 *    holds when the device transfers it (with delay_us, at completion: the parent's writes
 *    after the fork included) and nothing the child wrote.
 *
 *  - legacy (extract_legacy=Y): the pages are referenced (FOLL_GET), as before the
 *    iov_iter_extract_pages() series. fork() shares them with the child, write-protected in
 *    both. When the parent then writes anywhere in one of those pages (here: into the bytes of
 *    those pages that are outside the I/O), its copy-on-write fault finds the extra reference of the I/O and
 *    gives the parent a new page: a read then lands in the page the child still maps (the
 *    child sees the data, the parent has lost it in that page), and a write sends what the page
 *    held before the fork, not what the parent's buffer holds. On 6.12 the child cannot write
 *    into the page under I/O either: its own copy-on-write fault also sees the extra reference
 *    and copies, so what the child writes never reaches the disk in either mode.
 *    In this mode each case expects that corruption and fails if it does not see it.
 *
 * io_uring's registered buffers are pinned by io_uring itself (long-term FOLL_PIN at
 * registration) and reach the device as BVEC iterators of those pages, which are listed, not
 * taken again: the legacy mode cannot change them, and those cases expect the pinned result in
 * both modes.
 *
 * Every case requires the I/O to be in flight at the fork: the pages of the I/O are held
 * (the module's debugfs counters of pages taken and not released have moved by at least the
 * pages of the I/O, in the mode expected) before the fork, and no I/O has completed after the
 * fork and after the parent's writes (io_getevents with a zero timeout, io_uring_peek_cqe, the
 * thread's flag). iov_extract must run with a completion delay (delay_us) for that.
 *
 * The I/O is submitted with libaio, io_uring, io_uring with a registered buffer, or from a
 * thread blocked in pread/pwrite, into anonymous memory, a transparent huge page, or a buffer
 * on the stack.
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
/* The legacy mode: pages referenced, not pinned. */
static int legacy;

static uint32_t new_seed(void)
{
	seed_next = (seed_next + 1) & 0xffffff;
	if (!seed_next)
		seed_next = 1;
	return seed_next;
}

#define R_BASE (24 * MiB)
#define SLOT (2 * MiB)
#define STACK_BUF (64 * KiB)
/* Bytes at the start of a write's range that the parent writes over after the fork. */
#define MODLEN (8 * KiB)

enum engine { E_LIBAIO, E_URING, E_URING_FIXED, E_THREAD };
static const char *const engine_name[] = { "libaio", "io_uring", "io_uring_fixed", "thread" };
enum mem { M_ANON, M_THP, M_STACK };
static const char *const mem_name[] = { "anon", "thp", "stack" };

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

/* Pages of the module taken and not yet released, per mode. */
struct held {
	long long pinned, referenced, listed;
};

static int held_pages(struct held *h)
{
	unsigned long long a, b;

	if (debugfs_get("pinned", &a) || debugfs_get("unpinned", &b))
		return -1;
	h->pinned = (long long)(a - b);
	if (debugfs_get("referenced", &a) || debugfs_get("unreferenced", &b))
		return -1;
	h->referenced = (long long)(a - b);
	if (debugfs_get("listed", &a) || debugfs_get("unlisted", &b))
		return -1;
	h->listed = (long long)(a - b);
	return 0;
}

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
 * Per page of the buffer that holds bytes of the I/O range [ioff, ioff + len): whether those
 * bytes are the pattern of @a, of @b, or neither. Counts them in @na, @nb, @nother.
 */
static void classify(const unsigned char *buf, size_t ioff, size_t len, uint64_t off,
		     uint32_t a, uint32_t b, int *na, int *nb, int *nother)
{
	uintptr_t base = (uintptr_t)buf;

	*na = *nb = *nother = 0;
	for (size_t at = ioff; at < ioff + len;) {
		size_t end = ((base + at) / PAGE + 1) * PAGE - base;

		if (end > ioff + len)
			end = ioff + len;
		if (pat_diff(buf + at, off + (at - ioff), end - at, a) < 0)
			(*na)++;
		else if (pat_diff(buf + at, off + (at - ioff), end - at, b) < 0)
			(*nb)++;
		else
			(*nother)++;
		at = end;
	}
}

/*
 * The child of a read: waits for the parent's I/O to be over, then says what its copy of the
 * buffer holds: exit 0 if it is what the buffer held at the fork (the old contents in the I/O
 * range, 0x5a around it), 2 if the read's data landed in some of its pages (the rest old),
 * 1 for anything else.
 */
static int child_read(int go, unsigned char *buf, size_t buflen, size_t ioff, size_t len,
		      uint64_t off, uint32_t old_seed, uint32_t io_seed)
{
	int nold, nio, nother;
	char c;

	if (read(go, &c, 1) != 1)
		return child_fail("lost the parent");
	if (byte_diff(buf, ioff, 0x5a) >= 0 || byte_diff(buf + ioff + len, buflen - ioff - len, 0x5a) >= 0)
		return child_fail("the bytes around the read are not those of the fork");
	classify(buf, ioff, len, off, old_seed, io_seed, &nold, &nio, &nother);
	if (nother)
		return child_fail("%d pages of the read range are neither old nor the read's", nother);
	if (nio) {
		printf("# child: the read's data is in %d of its %d pages\n", nio, nio + nold);
		fflush(stdout);
		return 2;
	}
	return 0;
}

/* The child of a write: writes over its whole buffer at once, then waits for the parent. */
static int child_write(int go, unsigned char *buf, size_t buflen)
{
	char c;

	memset(buf, 0xc3, buflen);
	if (read(go, &c, 1) != 1)
		return child_fail("lost the parent");
	return 0;
}

/* Pages spanned by the I/O of @s. */
static long io_pages(const struct io_set *s)
{
	long n = 0;

	for (int i = 0; i < s->n; i++) {
		uintptr_t a = (uintptr_t)s->buf[i];

		n += (long)((a + s->len[i] + PAGE - 1) / PAGE - a / PAGE);
	}
	return n;
}

static int run_case(enum engine e, int wr, enum mem m, int slot)
{
	unsigned char stackbuf[STACK_BUF] __attribute__((aligned(4096)));
	void *raw = NULL;
	size_t rawlen = 0, buflen, ioff = mo, len, lo, hi;
	unsigned char *buf;
	uint64_t off = R_BASE + (uint64_t)slot * SLOT;
	uint32_t io_seed = new_seed(), old_seed = new_seed(), mod_seed = new_seed();
	struct io_set s = { .e = e, .write = wr };
	int go[2] = { -1, -1 }, status = -1, rc = 0, registered = 0;
	/* Whether this case can show the legacy corruption: not with io_uring's own pins. */
	int expect_corruption = legacy && e != E_URING_FIXED;
	struct held h0, h1;
	long huge = -1, npages, t0, fork_ms = -1;
	pid_t pid;

	if (m == M_THP) {
		buflen = HPAGE;
		buf = map_thp(HPAGE, &raw, &rawlen);
		/*
		 * Within one bio, so that io_uring submits it inline (before the fork), and small
		 * enough for the parent's copy-on-write faults over it in the legacy mode to end
		 * well within the completion delay.
		 */
		len = 128 * KiB;
	} else {
		buflen = m == M_STACK ? STACK_BUF : 64 * KiB;
		if (m == M_STACK) {
			buf = stackbuf;
		} else {
			buf = raw = map_anon(buflen, MAP_PRIVATE);
			rawlen = buflen;
		}
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
	if (m == M_THP)
		huge = anon_huge_kib(buf);

	/* A thread runs one pread/pwrite: the whole I/O is in flight at once. */
	s.n = e == E_LIBAIO ? 8 : e == E_URING_FIXED ? 4 : 1;
	for (int i = 0, done = 0; i < s.n; i++) {
		size_t l = i == s.n - 1 ? len - done : len / s.n / g.lbs * g.lbs;

		s.buf[i] = buf + ioff + done;
		s.len[i] = l;
		s.off[i] = off + done;
		done += l;
	}
	npages = io_pages(&s);
	/* The pages that hold the I/O range (the buffer starts on a page). */
	lo = ioff / PAGE * PAGE;
	hi = (ioff + len + PAGE - 1) / PAGE * PAGE;
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
	if (held_pages(&h0)) {
		rc = fail("no counters in " IOVX_DEBUGFS);
		goto out;
	}

	fflush(stdout);
	if (submit(&s)) {
		rc = -1;
		goto out;
	}
	/*
	 * The I/O holds its pages, in the mode expected, before the fork (a thread may take a
	 * moment to get there).
	 */
	for (int tries = 0;; tries++) {
		if (held_pages(&h1)) {
			rc = fail("no counters in " IOVX_DEBUGFS);
			reap(&s, 1);
			goto out;
		}
		if (tries == 100 ||
		    (e == E_URING_FIXED ? h1.listed - h0.listed
					: legacy ? h1.referenced - h0.referenced : h1.pinned - h0.pinned) >= npages)
			break;
		sleep_ms(10);
	}
	{
		long long p = h1.pinned - h0.pinned, r = h1.referenced - h0.referenced,
			  l = h1.listed - h0.listed;
		long long got = e == E_URING_FIXED ? l : legacy ? r : p;
		long long other = e == E_URING_FIXED ? p + r : legacy ? p : r;

		if (got < npages || other != 0) {
			rc = fail("before the fork the I/O holds %lld pinned, %lld referenced, %lld listed pages, not %ld %s",
				  p, r, l, npages,
				  e == E_URING_FIXED ? "listed" : legacy ? "referenced" : "pinned");
			reap(&s, 1);
			goto out;
		}
	}
	if (reap(&s, 0) || s.done) {
		rc = rc ? rc : fail("%d of %d I/O completed before the fork: delay_us too short", s.done, s.n);
		reap(&s, 1);
		goto out;
	}
	t0 = now_ms();
	pid = fork();
	if (pid > 0)
		fork_ms = now_ms() - t0;
	if (pid < 0) {
		rc = fail("fork: %s", strerror(errno));
		reap(&s, 1);
		goto out;
	}
	if (pid == 0) {
		close(go[1]);
		_exit(wr ? child_write(go[0], buf, buflen)
			 : child_read(go[0], buf, buflen, ioff, len, off, old_seed, io_seed));
	}
	close(go[0]);
	go[0] = -1;
	if (reap(&s, 0) || s.done) {
		rc = rc ? rc : fail("%d of %d I/O completed during the fork (%ld ms): delay_us too short", s.done, s.n,
				    fork_ms);
		goto wait;
	}
	/*
	 * The parent writes into its buffer: around the I/O (the bytes of its pages outside it), and
	 * for a write, over the first MODLEN bytes of the I/O range too (few pages, so that the
	 * copy-on-write faults of the legacy mode end well within the delay).
	 */
	memset(buf + lo, 0xa5, ioff - lo);
	memset(buf + ioff + len, 0xa5, hi - ioff - len);
	if (wr)
		pat_fill(buf + ioff, off, MODLEN, mod_seed);
	if (reap(&s, 0) || s.done) {
		rc = rc ? rc : fail("%d of %d I/O completed before the parent wrote: delay_us too short", s.done, s.n);
		goto wait;
	}
wait:
	if (reap(&s, 1) && !rc)
		rc = -1;
	/* Let the child look at its buffer now that the I/O is over. */
	if (write(go[1], "x", 1) != 1 && !rc)
		rc = fail("pipe write: %s", strerror(errno));
	close(go[1]);
	go[1] = -1;
	if (waitpid(pid, &status, 0) != pid)
		status = -1;
	if (rc)
		goto out;
	diag("%s %s %s (%s): %zu bytes in %d I/O, %ld pages held at the fork (%ld ms), in flight until the parent wrote%s",
	     engine_name[e], wr ? "write" : "read", mem_name[m], legacy ? "legacy" : "pin", len,
	     s.n, npages, fork_ms, m == M_THP ? (huge > 0 ? ", on a huge page" : ", NOT on a huge page") : "");

	for (int i = 0; i < s.n; i++)
		if (s.res[i] != (long)s.len[i]) {
			rc = fail("I/O %d of %zu bytes: %ld (%s)", i, s.len[i], s.res[i],
				  s.res[i] < 0 ? strerror(-s.res[i]) : "short");
			goto out;
		}
	if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 2)) {
		rc = fail("the child failed (status %#x)", status);
		goto out;
	}
	if (byte_diff(buf + lo, ioff - lo, 0xa5) >= 0 ||
	    byte_diff(buf + ioff + len, hi - ioff - len, 0xa5) >= 0 ||
	    byte_diff(buf, lo, 0x5a) >= 0 || byte_diff(buf + hi, buflen - hi, 0x5a) >= 0) {
		rc = fail("the parent's own writes around the I/O were lost");
		goto out;
	}
	if (wr) {
		long d = -1, dc, dio;

		if (pat_diff(buf + ioff, off, MODLEN, mod_seed) >= 0 ||
		    pat_diff(buf + ioff + MODLEN, off + MODLEN, len - MODLEN, io_seed) >= 0) {
			rc = fail("the parent's buffer is not what it wrote");
			goto out;
		}
		if (pread(bdev, vbuf, len, off) != (ssize_t)len) {
			rc = fail("read back through BDEV: %s", strerror(errno));
			goto out;
		}
		/* Eight bytes of 0xc3 in a row: the child's (no pattern word is that). */
		dc = -1;
		for (size_t i = 0; i + 8 <= len && dc < 0; i += 8)
			if (byte_diff(vbuf + i, 8, 0xc3) < 0)
				dc = (long)i;
		if (dc >= 0) {
			/* What the child wrote reached the disk: the corruption of the write. */
			if (!expect_corruption)
				rc = fail("the child's bytes reached the disk at +%ld", dc);
			else
				diag("corruption seen: the child's bytes reached the disk at +%ld", dc);
			goto out;
		}
		/* Where the disk differs from what the parent's buffer holds. */
		for (size_t i = 0; i < len && d < 0; i++)
			if (vbuf[i] != buf[ioff + i])
				d = (long)i;
		dio = pat_diff(vbuf, off, len, io_seed);
		if (!expect_corruption) {
			if (d >= 0)
				rc = fail("the disk at +%ld is not what the parent's buffer held (%s)", d,
					  dio < 0 ? "it is what it held before the fork" : "nor before the fork");
		} else if (d < 0) {
			rc = fail("no corruption: the disk holds what the parent's buffer holds, as with pins");
		} else if (dio >= 0) {
			rc = fail("the disk at +%ld is neither the parent's data before nor after the fork", dio);
		} else {
			diag("corruption seen: the disk holds what the buffer held before the fork, not what the parent's buffer holds");
		}
	} else {
		int nio, nold, nother, child_got = WEXITSTATUS(status) == 2;

		classify(buf, ioff, len, off, io_seed, old_seed, &nio, &nold, &nother);
		if (nother) {
			rc = fail("%d pages of the parent's read range are neither the read's nor old", nother);
		} else if (!expect_corruption) {
			if (nold || child_got)
				rc = fail("%d of %d pages of the read did not land in the parent's buffer%s",
					  nold, nio + nold, child_got ? "; the child's copy got the data" : "");
		} else if (!nold || !child_got) {
			rc = fail("no corruption: the parent %s the data in every page, the child %s",
				  nold ? "lost" : "got", child_got ? "saw it" : "did not see it");
		} else {
			diag("corruption seen: the parent lost the read in %d of %d pages (those it wrote into after the fork), the child's copy got it",
			     nold, nio + nold);
		}
	}
out:
	if (go[0] >= 0)
		close(go[0]);
	if (go[1] >= 0)
		close(go[1]);
	if (registered)
		io_uring_unregister_buffers(&ring);
	if (raw)
		munmap(raw, rawlen);
	return rc;
}

static enum engine c_engine;
static int c_write, c_slot;
static enum mem c_mem;

static int t_case(void)
{
	if (c_engine == E_URING || c_engine == E_URING_FIXED) {
		if (!ring_ok)
			return skip("no io_uring");
	}
	if (c_engine == E_LIBAIO && !aio_ctx)
		return skip("no libaio context");
	if (c_mem == M_THP && thp_pmd_unfit())
		return skip("%s", thp_pmd_unfit());
	return run_case(c_engine, c_write, c_mem, c_slot);
}

int main(int argc, char **argv)
{
	unsigned long long delay;
	char name[96], param[8] = "";
	int r, slot = 0;
	FILE *f;

	tap_begin("fork_cow");
	alarm(600);
	if (argc != 4 || (strcmp(argv[3], "pin") && strcmp(argv[3], "legacy"))) {
		fprintf(stderr, "usage: %s DEV BDEV pin|legacy\n", argv[0]);
		return 2;
	}
	legacy = !strcmp(argv[3], "legacy");
	snprintf(t_prefix, sizeof(t_prefix), "fork_cow_%s_", argv[3]);
	f = fopen("/sys/module/iov_extract/parameters/extract_legacy", "r");
	if (!f || !fgets(param, sizeof(param), f) || (param[0] == 'Y') != legacy) {
		printf("not ok 1 %ssetup # extract_legacy is %s, not %s\n", t_prefix,
		       param[0] ? (param[0] == 'Y' ? "Y" : "N") : "missing", legacy ? "Y" : "N");
		return 1;
	}
	fclose(f);
	if (get_geom(argv[2], &g) || g.size < R_BASE + 16 * SLOT) {
		printf("not ok 1 %ssetup # need a block device of at least %lu MiB: %s\n", t_prefix,
		       (R_BASE + 16 * SLOT) / MiB, argv[2]);
		return 1;
	}
	mo = g.dma < 64 ? 64 : g.dma;
	mo = (mo + g.dma - 1) / g.dma * g.dma;
	dev = open_direct(argv[1], O_RDWR);
	bdev = open_direct(argv[2], O_RDWR);
	vbuf = map_anon(2 * MiB + 2 * PAGE, MAP_PRIVATE);
	if (dev < 0 || bdev < 0 || !vbuf) {
		printf("not ok 1 %ssetup # cannot open the devices or allocate buffers\n", t_prefix);
		return 1;
	}
	seed_next = (uint32_t)(time(NULL) ^ ((uint32_t)getpid() << 12)) & 0xffffff;
	if (read_sysfs_uint("/sys/module/iov_extract/parameters/delay_us", &delay) == 0)
		diag("iov_extract delay_us %llu, extract_legacy %s", delay, legacy ? "Y" : "N");
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
		for (int m = M_ANON; m <= M_STACK; m++) {
			if (m == M_STACK && e == E_URING_FIXED)
				continue;
			for (int w = 1; w >= 0; w--) {
				c_engine = e;
				c_write = w;
				c_mem = m;
				c_slot = slot++ % 16;
				snprintf(name, sizeof(name), "%s_%s_%s", engine_name[e],
					 w ? "write" : "read", mem_name[m]);
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
