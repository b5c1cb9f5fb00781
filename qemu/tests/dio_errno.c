// SPDX-License-Identifier: GPL-2.0
/*
 * dio_errno DEV BDEV
 *
 * Bad input to direct I/O through DEV, each checked for its exact errno: buffers at NULL,
 * unmapped, kernel or PROT_NONE addresses (EFAULT), a read-only mapping as the destination
 * of a read (EFAULT), a fault in the middle of a buffer (EFAULT or a short transfer of what
 * precedes it), a misaligned offset, length or memory, also inside a vector (EINVAL), more
 * than IOV_MAX segments (EINVAL), segment lengths that overflow ssize_t (EINVAL), zero
 * lengths (0); RWF_NOWAIT beyond one bio (EAGAIN, as on BDEV); the same through libaio and
 * io_uring (with registered buffers).
 *
 * After each case: a failed write changed nothing on the disk, a write/read round trip
 * through DEV still works, and the pins are balanced.
 */
#include "common.h"

#include <libaio.h>
#include <liburing.h>

static int dev = -1, bdev = -1;
static struct geom g;
static size_t mo;
/* The memory offset for a registered buffer, whose pages are segments (see dio_basic). */
static size_t fo;
static unsigned char *rbuf, *wbuf;
#define BUF_LEN (2 * MiB)

/* The target of the bad I/O, holding pattern t_seed; the round trips go to R_RT. */
#define R_T (20 * MiB)
#define T_LEN (256 * KiB)
#define R_RT (21 * MiB)
static uint32_t t_seed, seed_next;
static unsigned rt_count;

static uint32_t new_seed(void)
{
	seed_next = (seed_next + 1) & 0xffffff;
	if (!seed_next)
		seed_next = 1;
	return seed_next;
}

static const char *ename(int e)
{
	const char *n = e ? strerrorname_np(e) : "no error";

	return n ? n : "?";
}

/* The result of a call that must fail with @want. */
static int want_err(const char *what, ssize_t n, int err, int want)
{
	if (n == -1 && err == want)
		return 0;
	if (n < 0)
		return fail("%s: %s, expected %s", what, ename(err), ename(want));
	return fail("%s: returned %zd, expected %s", what, n, ename(want));
}

#define EXPECT_ERR(what, call, want)                                      \
	do {                                                              \
		ssize_t n_;                                               \
		errno = 0;                                                \
		n_ = (call);                                              \
		if (want_err(what, n_, errno, want))                      \
			return -1;                                        \
	} while (0)

/* Like EXPECT_ERR, as an expression: 0 or -1. */
#define CHECK_ERR(what, call, want)                                       \
	({                                                                \
		ssize_t n_;                                               \
		errno = 0;                                                \
		n_ = (call);                                              \
		want_err(what, n_, errno, want);                          \
	})

#define EXPECT_RET(what, call, want)                                                    \
	do {                                                                            \
		ssize_t n_;                                                             \
		errno = 0;                                                              \
		n_ = (call);                                                            \
		if (n_ != (ssize_t)(want))                                              \
			return fail("%s: returned %zd (%s), expected %zd", what, n_,    \
				    n_ < 0 ? ename(errno) : "no error", (ssize_t)(want)); \
	} while (0)

/* The target still holds its pattern (through BDEV). */
static int target_intact(void)
{
	long d;

	if (pread(bdev, rbuf, T_LEN, R_T) != (ssize_t)T_LEN)
		return fail("read of the target through BDEV: %s", strerror(errno));
	d = pat_diff(rbuf, R_T, T_LEN, t_seed);
	if (d >= 0)
		return fail("the disk changed at offset %" PRIu64 " after a failed I/O",
			    (uint64_t)R_T + d);
	return 0;
}

static int fill_target(void)
{
	t_seed = new_seed();
	pat_fill(wbuf, R_T, T_LEN, t_seed);
	if (pwrite(bdev, wbuf, T_LEN, R_T) != (ssize_t)T_LEN)
		return fail("write of the target through BDEV: %s", strerror(errno));
	return 0;
}

/* A write and a read of 8 blocks through DEV, checked both ways. */
static int round_trip(void)
{
	uint64_t off = R_RT + (uint64_t)(rt_count++ % 64) * 8 * g.lbs;
	size_t len = 8 * g.lbs;
	uint32_t s = new_seed();
	ssize_t n;

	pat_fill(wbuf + mo, off, len, s);
	n = pwrite(dev, wbuf + mo, len, off);
	if (n != (ssize_t)len)
		return fail("round trip: pwrite: %zd (%s)", n, n < 0 ? ename(errno) : "short");
	memset(rbuf, 0, len + 2 * mo);
	n = pread(dev, rbuf + mo, len, off);
	if (n != (ssize_t)len)
		return fail("round trip: pread: %zd (%s)", n, n < 0 ? ename(errno) : "short");
	if (pat_diff(rbuf + mo, off, len, s) >= 0)
		return fail("round trip: DEV read back other data");
	n = pread(bdev, rbuf, len, off);
	if (n != (ssize_t)len || pat_diff(rbuf, off, len, s) >= 0)
		return fail("round trip: BDEV read back other data");
	return 0;
}

/* Runs a case, then the checks that follow every case. */
static void run_case(const char *name, int (*fn)(void))
{
	int rc;

	t_why[0] = '\0';
	rc = fn();
	if (rc == 0 || rc == 1) {
		char why[sizeof(t_why)];
		int r;

		memcpy(why, t_why, sizeof(why));
		r = target_intact();
		if (!r)
			r = round_trip();
		if (!r)
			r = check_vmstat_pins_quiet(1) < 0 ? -1 : 0;
		if (r)
			rc = r;
		else
			memcpy(t_why, why, sizeof(why));
	}
	report(name, rc);
	/* The next case starts from a known target whatever happened. */
	if (rc < 0)
		fill_target();
}

/* ------------------------------------------------------------------ cases */

static int t_null_buffer(void)
{
	void *null = opaque_ptr(NULL);

	EXPECT_ERR("pread to NULL", pread(dev, null, g.lbs, R_T), EFAULT);
	EXPECT_ERR("pwrite from NULL", pwrite(dev, null, g.lbs, R_T), EFAULT);
	EXPECT_ERR("pread of 64 KiB to NULL", pread(dev, null, 64 * KiB, R_T), EFAULT);
	EXPECT_ERR("pwrite of 64 KiB from NULL", pwrite(dev, null, 64 * KiB, R_T), EFAULT);
	return 0;
}

static int t_unmapped_buffer(void)
{
	unsigned char *b = map_anon(64 * KiB, MAP_PRIVATE);

	if (!b)
		return fail("mmap: %s", strerror(errno));
	munmap(b, 64 * KiB);
	EXPECT_ERR("pread to unmapped memory", pread(dev, b, g.lbs, R_T), EFAULT);
	EXPECT_ERR("pwrite from unmapped memory", pwrite(dev, b, g.lbs, R_T), EFAULT);
	EXPECT_ERR("pread of 64 KiB to unmapped memory", pread(dev, b, 64 * KiB, R_T), EFAULT);
	return 0;
}

static int t_kernel_address(void)
{
	void *k = opaque_ptr((void *)0xffff888000000000UL);

	EXPECT_ERR("pread to a kernel address", pread(dev, k, g.lbs, R_T), EFAULT);
	EXPECT_ERR("pwrite from a kernel address", pwrite(dev, k, g.lbs, R_T), EFAULT);
	k = opaque_ptr((void *)0xffffffff81000000UL);
	EXPECT_ERR("pread to the kernel text", pread(dev, k, g.lbs, R_T), EFAULT);
	EXPECT_ERR("pwrite from the kernel text", pwrite(dev, k, g.lbs, R_T), EFAULT);
	return 0;
}

static int t_prot_none(void)
{
	unsigned char *b = mmap(NULL, 64 * KiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int rc = 0;

	if (b == MAP_FAILED)
		return fail("mmap: %s", strerror(errno));
	if (CHECK_ERR("pread to PROT_NONE", pread(dev, b, g.lbs, R_T), EFAULT))
		rc = -1;
	if (!rc && CHECK_ERR("pwrite from PROT_NONE", pwrite(dev, b, g.lbs, R_T), EFAULT))
		rc = -1;
	munmap(b, 64 * KiB);
	return rc;
}

/* A read-only mapping cannot take a read (anonymous and file-backed); it can source a write. */
static int t_readonly_destination(void)
{
	unsigned char *b = mmap(NULL, 64 * KiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *f;
	char path[256];
	int fd, rc = 0;

	if (b == MAP_FAILED)
		return fail("mmap: %s", strerror(errno));
	if (CHECK_ERR("pread to a read-only anonymous mapping", pread(dev, b, g.lbs, R_T),
		      EFAULT))
		rc = -1;
	else if (byte_diff(b, 64 * KiB, 0) >= 0)
		rc = fail("the failed read changed read-only memory");
	munmap(b, 64 * KiB);
	if (rc)
		return rc;

	snprintf(path, sizeof(path), "/tmp/iovx-dio-errno-%d", getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return fail("create %s: %s", path, strerror(errno));
	unlink(path);
	memset(wbuf, 0x5c, 64 * KiB);
	if (write(fd, wbuf, 64 * KiB) != (ssize_t)(64 * KiB)) {
		close(fd);
		return fail("write %s: %s", path, strerror(errno));
	}
	f = mmap(NULL, 64 * KiB, PROT_READ, MAP_SHARED, fd, 0);
	if (f == MAP_FAILED) {
		close(fd);
		return fail("mmap: %s", strerror(errno));
	}
	if (CHECK_ERR("pread to a read-only file mapping", pread(dev, f + mo, 4 * g.lbs, R_T),
		      EFAULT))
		rc = -1;
	else if (byte_diff(f, 64 * KiB, 0x5c) >= 0)
		rc = fail("the failed read changed the file");
	/* The same mapping is a valid source. */
	if (!rc) {
		uint64_t off = R_RT + 64 * 8 * g.lbs;
		ssize_t n = pwrite(dev, f + mo, 4 * g.lbs, off);

		if (n != (ssize_t)(4 * g.lbs))
			rc = fail("pwrite from a read-only file mapping: %zd (%s)", n,
				  n < 0 ? ename(errno) : "short");
		else if (pread(bdev, rbuf, 4 * g.lbs, off) != (ssize_t)(4 * g.lbs) ||
			 byte_diff(rbuf, 4 * g.lbs, 0x5c) >= 0)
			rc = fail("the write from a read-only file mapping wrote other data");
	}
	munmap(f, 64 * KiB);
	close(fd);
	return rc;
}

/*
 * A buffer of 4 pages whose third is PROT_NONE: the I/O fails with EFAULT or transfers a
 * prefix of whole blocks that ends at the hole at the latest; what it transferred is right
 * and nothing beyond it changed.
 */
static int t_fault_mid_buffer(void)
{
	unsigned char *b = map_anon(4 * PAGE, MAP_PRIVATE);
	size_t len = 4 * PAGE;
	uint32_t s;
	ssize_t n;
	int rc = 0;

	if (!b)
		return fail("mmap: %s", strerror(errno));
	memset(b, 0x99, 4 * PAGE);
	mprotect(b + 2 * PAGE, PAGE, PROT_NONE);

	/* Read: the target's pattern lands in the first two pages at most. */
	errno = 0;
	n = pread(dev, b, len, R_T);
	if (n == -1 && errno != EFAULT) {
		rc = fail("pread over a hole: %s, expected EFAULT or a short read", ename(errno));
	} else if (n >= 0 && (n > (ssize_t)(2 * PAGE) || n % g.lbs)) {
		rc = fail("pread over a hole at 8 KiB returned %zd", n);
	} else if (n > 0 && pat_diff(b, R_T, n, t_seed) >= 0) {
		rc = fail("pread over a hole: the %zd bytes it read are wrong", n);
	} else if (byte_diff(b + 3 * PAGE, PAGE, 0x99) >= 0) {
		rc = fail("pread over a hole wrote past the hole");
	}
	if (rc)
		goto out;
	diag("read over a hole: %zd (%s)", n, n < 0 ? ename(errno) : "short");

	/* Write: a new pattern in the first two pages; the disk past what was written unchanged. */
	s = new_seed();
	pat_fill(b, R_T, 2 * PAGE, s);
	errno = 0;
	n = pwrite(dev, b, len, R_T);
	if (n == -1 && errno != EFAULT) {
		rc = fail("pwrite over a hole: %s, expected EFAULT or a short write", ename(errno));
	} else if (n >= 0 && (n > (ssize_t)(2 * PAGE) || n % g.lbs)) {
		rc = fail("pwrite over a hole at 8 KiB returned %zd", n);
	} else {
		size_t w = n > 0 ? n : 0;

		if (pread(bdev, rbuf, T_LEN, R_T) != (ssize_t)T_LEN)
			rc = fail("read back through BDEV: %s", strerror(errno));
		else if (w && pat_diff(rbuf, R_T, w, s) >= 0)
			rc = fail("pwrite over a hole: the %zu bytes it wrote are wrong", w);
		else if (pat_diff(rbuf + w, R_T + w, T_LEN - w, t_seed) >= 0)
			rc = fail("pwrite over a hole changed the disk past the %zu bytes it wrote", w);
		diag("write over a hole: %zd (%s)", n, n < 0 ? ename(errno) : "short");
		if (w)
			fill_target();
	}
out:
	munmap(b, 4 * PAGE);
	return rc;
}

static int t_misaligned_offset(void)
{
	const uint64_t offs[] = { 1, g.lbs / 2, g.lbs - 1, g.lbs + 8 };

	for (unsigned i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		char what[96];

		snprintf(what, sizeof(what), "pread at target + %" PRIu64, offs[i]);
		EXPECT_ERR(what, pread(dev, rbuf + mo, g.lbs, R_T + offs[i]), EINVAL);
		snprintf(what, sizeof(what), "pwrite at target + %" PRIu64, offs[i]);
		EXPECT_ERR(what, pwrite(dev, wbuf + mo, g.lbs, R_T + offs[i]), EINVAL);
	}
	if (g.lbs > 512) {
		EXPECT_ERR("pread at 512 on a larger block", pread(dev, rbuf, g.lbs, R_T + 512), EINVAL);
		EXPECT_ERR("pwrite at 512 on a larger block", pwrite(dev, wbuf, g.lbs, R_T + 512),
			   EINVAL);
	}
	return 0;
}

static int t_misaligned_length(void)
{
	const size_t lens[] = { 1, g.lbs / 2, g.lbs - 1, g.lbs + 1, 2 * g.lbs - 8, 64 * KiB + 4 };

	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char what[96];

		memset(rbuf, 0xab, lens[i] + 2 * mo);
		snprintf(what, sizeof(what), "pread of %zu bytes", lens[i]);
		EXPECT_ERR(what, pread(dev, rbuf + mo, lens[i], R_T), EINVAL);
		if (byte_diff(rbuf, lens[i] + 2 * mo, 0xab) >= 0)
			return fail("the failed %s wrote to memory", what);
		snprintf(what, sizeof(what), "pwrite of %zu bytes", lens[i]);
		EXPECT_ERR(what, pwrite(dev, wbuf + mo, lens[i], R_T), EINVAL);
	}
	return 0;
}

static int t_misaligned_memory(void)
{
	size_t offs[3];
	unsigned n = 0;

	if (g.dma <= 1)
		return skip("the device takes any memory alignment");
	offs[n++] = 1;
	if (g.dma / 2 > 1)
		offs[n++] = g.dma / 2;
	if (g.dma > 8)
		offs[n++] = mo + 8;
	for (unsigned i = 0; i < n; i++) {
		char what[96];

		memset(rbuf, 0xcd, 2 * g.lbs + 2 * mo);
		snprintf(what, sizeof(what), "pread to memory at +%zu", offs[i]);
		EXPECT_ERR(what, pread(dev, rbuf + offs[i], g.lbs, R_T), EINVAL);
		if (byte_diff(rbuf, 2 * g.lbs + 2 * mo, 0xcd) >= 0)
			return fail("the failed %s wrote to memory", what);
		snprintf(what, sizeof(what), "pwrite from memory at +%zu", offs[i]);
		EXPECT_ERR(what, pwrite(dev, wbuf + offs[i], g.lbs, R_T), EINVAL);
		snprintf(what, sizeof(what), "pwrite of 64 KiB from memory at +%zu", offs[i]);
		EXPECT_ERR(what, pwrite(dev, wbuf + offs[i], 64 * KiB, R_T), EINVAL);
	}
	return 0;
}

/* Every segment of a vector follows the rules, not only the total. */
static int t_misaligned_segments(void)
{
	struct iovec v[3];

	v[0] = (struct iovec){ rbuf + mo, g.lbs / 2 };
	v[1] = (struct iovec){ rbuf + 4 * g.lbs, g.lbs / 2 };
	EXPECT_ERR("preadv of two half blocks", preadv(dev, v, 2, R_T), EINVAL);
	v[0].iov_base = wbuf + mo;
	v[1].iov_base = wbuf + 4 * g.lbs;
	EXPECT_ERR("pwritev of two half blocks", pwritev(dev, v, 2, R_T), EINVAL);
	if (g.dma > 1) {
		v[0] = (struct iovec){ rbuf + mo, g.lbs };
		v[1] = (struct iovec){ rbuf + 4 * g.lbs + 1, g.lbs };
		v[2] = (struct iovec){ rbuf + 8 * g.lbs, g.lbs };
		EXPECT_ERR("preadv with a misaligned second segment", preadv(dev, v, 3, R_T), EINVAL);
		v[0].iov_base = wbuf + mo;
		v[1].iov_base = wbuf + 4 * g.lbs + 1;
		v[2].iov_base = wbuf + 8 * g.lbs;
		EXPECT_ERR("pwritev with a misaligned second segment", pwritev(dev, v, 3, R_T),
			   EINVAL);
	}
	return 0;
}

static int t_iov_max_plus_one(void)
{
	struct iovec *v = calloc(1025, sizeof(*v));
	int rc = 0;

	if (!v)
		return fail("calloc");
	for (int i = 0; i < 1025; i++)
		v[i] = (struct iovec){ rbuf + (size_t)(i % 16) * g.lbs, g.lbs };
	if (CHECK_ERR("preadv of 1025 segments", preadv(dev, v, 1025, R_T), EINVAL))
		rc = -1;
	for (int i = 0; i < 1025 && !rc; i++)
		v[i].iov_base = wbuf + (size_t)(i % 16) * g.lbs;
	if (!rc && CHECK_ERR("pwritev of 1025 segments", pwritev(dev, v, 1025, R_T), EINVAL))
		rc = -1;
	for (int i = 0; i < 1025 && !rc; i++)
		v[i].iov_len = 0;
	if (!rc && CHECK_ERR("preadv of 1025 empty segments", preadv(dev, v, 1025, R_T),
			     EINVAL))
		rc = -1;
	free(v);
	return rc;
}

/* Segment lengths whose sum does not fit in ssize_t. */
static int t_iov_len_overflow(void)
{
	struct iovec v[2];

	v[0] = (struct iovec){ rbuf + mo, g.lbs };
	v[1] = (struct iovec){ rbuf + mo, (size_t)SSIZE_MAX + 1 };
	EXPECT_ERR("preadv of lbs + (SSIZE_MAX + 1)", preadv(dev, v, 2, R_T), EINVAL);
	v[0].iov_base = v[1].iov_base = wbuf + mo;
	EXPECT_ERR("pwritev of lbs + (SSIZE_MAX + 1)", pwritev(dev, v, 2, R_T), EINVAL);
	v[1].iov_len = SIZE_MAX - g.lbs + 1;
	EXPECT_ERR("pwritev whose lengths sum to 2^64", pwritev(dev, v, 2, R_T), EINVAL);
	v[0].iov_len = (size_t)SSIZE_MAX + 1;
	EXPECT_ERR("pwritev of one segment of SSIZE_MAX + 1", pwritev(dev, v, 1, R_T), EINVAL);
	EXPECT_ERR("preadv of one segment of SSIZE_MAX + 1", preadv(dev, v, 1, R_T), EINVAL);
	return 0;
}

static int t_zero_length(void)
{
	struct iovec v[2] = { { rbuf + mo, 0 }, { NULL, 0 } };

	EXPECT_RET("pread of 0 bytes", pread(dev, rbuf + mo, 0, R_T), 0);
	EXPECT_RET("pwrite of 0 bytes", pwrite(dev, wbuf + mo, 0, R_T), 0);
	EXPECT_RET("pread of 0 bytes to NULL", pread(dev, NULL, 0, R_T), 0);
	EXPECT_RET("pwrite of 0 bytes from NULL", pwrite(dev, NULL, 0, R_T), 0);
	EXPECT_RET("preadv of no segment", preadv(dev, v, 0, R_T), 0);
	EXPECT_RET("preadv of two empty segments", preadv(dev, v, 2, R_T), 0);
	EXPECT_RET("pwritev of two empty segments", pwritev(dev, v, 2, R_T), 0);
	return 0;
}

/*
 * RWF_NOWAIT (IOCB_NOWAIT): a transfer that fits in one bio is done; one that needs more fails
 * with EAGAIN and does nothing, as on the block device. "More" is 512 segments of one block, all
 * in the same page: a segment never merges with one that ends elsewhere in its page, so both
 * paths need 512 bio segments, more than BIO_MAX_VECS, whatever the page size and however the
 * memory is backed (contiguous pages, huge pages and folios would merge into fewer).
 */
#define NOWAIT_SEGS 512

static int t_nowait(void)
{
	static struct iovec many[NOWAIT_SEGS];
	int i;
	const size_t big = 2 * MiB;
	unsigned char *b = map_anon(big + g.lbs, MAP_PRIVATE);
	uint64_t off = R_RT + 512 * KiB;
	size_t len = 8 * g.lbs;
	uint32_t s = new_seed();
	struct iovec v;
	int fd, rc = 0;

	if (!b)
		return fail("mmap of %zu bytes failed", big + g.lbs);
	pat_fill(b, off, len, s);
	v = (struct iovec){ b, len };
	errno = 0;
	if (pwritev2(dev, &v, 1, off, RWF_NOWAIT) != (ssize_t)len) {
		rc = fail("pwritev2 RWF_NOWAIT of 8 blocks: %s", ename(errno));
		goto out;
	}
	memset(b, 0, len);
	if (preadv2(dev, &v, 1, off, RWF_NOWAIT) != (ssize_t)len) {
		rc = fail("preadv2 RWF_NOWAIT of 8 blocks: %s", ename(errno));
		goto out;
	}
	if (pat_diff(b, off, len, s) >= 0) {
		rc = fail("preadv2 RWF_NOWAIT read back other data");
		goto out;
	}
	/* Over the target, which run_case() then checks is intact. */
	pat_fill(b, R_T, g.lbs, new_seed());
	for (i = 0; i < NOWAIT_SEGS; i++)
		many[i] = (struct iovec){ b, g.lbs };
	for (fd = 0; fd < 2 && !rc; fd++) {
		int f = fd ? bdev : dev;
		const char *w = fd ? "BDEV" : "DEV";
		char what[96];

		snprintf(what, sizeof(what), "pwritev2 RWF_NOWAIT of %d segments through %s",
			 NOWAIT_SEGS, w);
		if (CHECK_ERR(what, pwritev2(f, many, NOWAIT_SEGS, R_T, RWF_NOWAIT), EAGAIN))
			rc = -1;
		snprintf(what, sizeof(what), "preadv2 RWF_NOWAIT of %d segments through %s",
			 NOWAIT_SEGS, w);
		if (!rc && CHECK_ERR(what, preadv2(f, many, NOWAIT_SEGS, R_T, RWF_NOWAIT), EAGAIN))
			rc = -1;
	}
out:
	munmap(b, big + g.lbs);
	return rc;
}

/* ------------------------------------------------------------------ async */

static io_context_t aio_ctx;

/* One libaio I/O; its result, from io_submit or from the completion, as a negative errno or
 * a count. */
static long aio_one(int write, void *buf, size_t len, uint64_t off)
{
	struct iocb cb, *cbs[1] = { &cb };
	struct io_event ev;
	struct timespec ts = { 60, 0 };
	int r;

	if (write)
		io_prep_pwrite(&cb, dev, buf, len, off);
	else
		io_prep_pread(&cb, dev, buf, len, off);
	r = io_submit(aio_ctx, 1, cbs);
	if (r < 0)
		return r;
	if (r != 1)
		return -1000;
	r = io_getevents(aio_ctx, 1, 1, &ev, &ts);
	if (r != 1)
		return -1001;
	return (long)ev.res;
}

static int async_res(const char *what, long res, long want)
{
	if (res == want)
		return 0;
	if (res == -1000 || res == -1001)
		return fail("%s: %s", what, res == -1000 ? "io_submit took nothing" : "no completion");
	return fail("%s: %ld (%s), expected %ld (%s)", what, res, res < 0 ? ename(-res) : "count",
		    want, want < 0 ? ename(-want) : "count");
}

#define EXPECT_ASYNC(what, call, want)                    \
	do {                                              \
		if (async_res(what, (call), (want)))      \
			return -1;                        \
	} while (0)

static int t_libaio_errors(void)
{
	void *k = opaque_ptr((void *)0xffff888000000000UL);

	if (!aio_ctx)
		return skip("no aio context");
	EXPECT_ASYNC("aio read to NULL", aio_one(0, opaque_ptr(NULL), g.lbs, R_T), -EFAULT);
	EXPECT_ASYNC("aio write from NULL", aio_one(1, opaque_ptr(NULL), g.lbs, R_T), -EFAULT);
	EXPECT_ASYNC("aio read to a kernel address", aio_one(0, k, g.lbs, R_T), -EFAULT);
	EXPECT_ASYNC("aio read at a misaligned offset", aio_one(0, rbuf + mo, g.lbs, R_T + 1),
		     -EINVAL);
	EXPECT_ASYNC("aio write of a misaligned length", aio_one(1, wbuf + mo, g.lbs + 1, R_T),
		     -EINVAL);
	if (g.dma > 1) {
		EXPECT_ASYNC("aio read to misaligned memory", aio_one(0, rbuf + 1, g.lbs, R_T),
			     -EINVAL);
		EXPECT_ASYNC("aio write from misaligned memory", aio_one(1, wbuf + 1, g.lbs, R_T),
			     -EINVAL);
	}
	EXPECT_ASYNC("aio read at the end", aio_one(0, rbuf + mo, g.lbs, g.size), 0);
	EXPECT_ASYNC("aio write at the end", aio_one(1, wbuf + mo, g.lbs, g.size), -ENOSPC);
	EXPECT_ASYNC("aio read crossing the end", aio_one(0, rbuf + mo, 2 * g.lbs, g.size - g.lbs),
		     g.lbs);
	EXPECT_ASYNC("aio read of 0 bytes", aio_one(0, rbuf + mo, 0, R_T), 0);
	return 0;
}

static struct io_uring ring;
static int ring_ok;
static struct iovec reg;

static long uring_one(int op, void *buf, size_t len, uint64_t off);

/*
 * An asynchronous read, then write, of one page that starts a block before the end of the
 * first page of a buffer whose second page is PROT_NONE: EFAULT, or a short transfer of whole
 * blocks from the first page; what it moved is right and nothing else changed. (Up to a page
 * of one user buffer is first taken in one extraction, which stops at the hole; the general
 * way then takes the transfer from the start.)
 */
static int page_over_hole(const char *how, long (*one)(int, void *, size_t, uint64_t))
{
	size_t lead = g.lbs < PAGE ? g.lbs : 512;
	unsigned char *b, *p;
	uint32_t s;
	long res;
	int rc = 0;

	if (lead % g.dma)
		return skip("a block before a page's end is not aligned to %u", g.dma);
	b = map_anon(2 * PAGE, MAP_PRIVATE);
	if (!b)
		return fail("mmap: %s", strerror(errno));
	memset(b, 0x99, PAGE);
	mprotect(b + PAGE, PAGE, PROT_NONE);
	p = b + PAGE - lead;

	res = one(0, p, PAGE, R_T);
	if (res != -EFAULT && (res <= 0 || res % g.lbs || (size_t)res > lead))
		rc = fail("%s read of a page over a hole: %ld, expected EFAULT or at most %zu bytes",
			  how, res, lead);
	else if (res > 0 && pat_diff(p, R_T, res, t_seed) >= 0)
		rc = fail("%s read over a hole: the %ld bytes it read are wrong", how, res);
	else if (byte_diff(b, PAGE - lead, 0x99) >= 0)
		rc = fail("%s read over a hole wrote before its buffer", how);
	if (rc)
		goto out;
	diag("%s read of a page over a hole: %ld", how, res);

	s = new_seed();
	pat_fill(p, R_T, lead, s);
	res = one(1, p, PAGE, R_T);
	if (res != -EFAULT && (res <= 0 || res % g.lbs || (size_t)res > lead)) {
		rc = fail("%s write of a page over a hole: %ld, expected EFAULT or at most %zu bytes",
			  how, res, lead);
	} else {
		size_t w = res > 0 ? res : 0;

		if (pread(bdev, rbuf, T_LEN, R_T) != (ssize_t)T_LEN)
			rc = fail("read back through BDEV: %s", strerror(errno));
		else if (w && pat_diff(rbuf, R_T, w, s) >= 0)
			rc = fail("%s write over a hole: the %zu bytes it wrote are wrong", how, w);
		else if (pat_diff(rbuf + w, R_T + w, T_LEN - w, t_seed) >= 0)
			rc = fail("%s write over a hole changed the disk past its %zu bytes", how, w);
		diag("%s write of a page over a hole: %ld", how, res);
		if (w && fill_target())
			rc = -1;
	}
out:
	munmap(b, 2 * PAGE);
	return rc;
}

static int t_libaio_page_over_hole(void)
{
	if (!aio_ctx)
		return skip("no aio context");
	return page_over_hole("aio", aio_one);
}

static int t_io_uring_page_over_hole(void)
{
	if (!ring_ok)
		return skip("no io_uring");
	return page_over_hole("io_uring", uring_one);
}

static long uring_one(int op, void *buf, size_t len, uint64_t off)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	struct io_uring_cqe *cqe;
	long res;
	int r;

	if (!sqe)
		return -1000;
	switch (op) {
	case 0: io_uring_prep_read(sqe, dev, buf, len, off); break;
	case 1: io_uring_prep_write(sqe, dev, buf, len, off); break;
	case 2: io_uring_prep_read_fixed(sqe, dev, buf, len, off, 0); break;
	default: io_uring_prep_write_fixed(sqe, dev, buf, len, off, 0); break;
	}
	r = io_uring_submit(&ring);
	if (r != 1)
		return -1000;
	if (io_uring_wait_cqe(&ring, &cqe) < 0)
		return -1001;
	res = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	return res;
}

static int io_uring_errors(unsigned char *rb)
{
	void *k = opaque_ptr((void *)0xffff888000000000UL);

	EXPECT_ASYNC("io_uring read to NULL", uring_one(0, opaque_ptr(NULL), g.lbs, R_T), -EFAULT);
	EXPECT_ASYNC("io_uring write from NULL", uring_one(1, opaque_ptr(NULL), g.lbs, R_T), -EFAULT);
	EXPECT_ASYNC("io_uring read to a kernel address", uring_one(0, k, g.lbs, R_T), -EFAULT);
	EXPECT_ASYNC("io_uring read at a misaligned offset",
		     uring_one(0, rbuf + mo, g.lbs, R_T + 1), -EINVAL);
	EXPECT_ASYNC("io_uring write of a misaligned length",
		     uring_one(1, wbuf + mo, g.lbs + 1, R_T), -EINVAL);
	if (g.dma > 1)
		EXPECT_ASYNC("io_uring read to misaligned memory", uring_one(0, rbuf + 1, g.lbs, R_T),
			     -EINVAL);
	EXPECT_ASYNC("io_uring read at the end", uring_one(0, rbuf + mo, g.lbs, g.size), 0);
	EXPECT_ASYNC("io_uring write at the end", uring_one(1, wbuf + mo, g.lbs, g.size), -ENOSPC);
	if (!rb)
		return 0;
	/* Registered buffers: the same rules on their bvec, and the bounds of the buffer. */
	if (g.dma > 1) {
		EXPECT_ASYNC("io_uring fixed read to misaligned memory",
			     uring_one(2, rb + 1, g.lbs, R_T), -EINVAL);
		EXPECT_ASYNC("io_uring fixed write from misaligned memory",
			     uring_one(3, rb + 1, g.lbs, R_T), -EINVAL);
	}
	EXPECT_ASYNC("io_uring fixed read at a misaligned offset",
		     uring_one(2, rb + fo, g.lbs, R_T + g.lbs / 2), -EINVAL);
	EXPECT_ASYNC("io_uring fixed write of a misaligned length",
		     uring_one(3, rb + fo, g.lbs - 1, R_T), -EINVAL);
	EXPECT_ASYNC("io_uring fixed read past the registered buffer",
		     uring_one(2, rb + reg.iov_len - g.lbs, 2 * g.lbs, R_T), -EFAULT);
	EXPECT_ASYNC("io_uring fixed write at the end", uring_one(3, rb + fo, g.lbs, g.size),
		     -ENOSPC);
	/* And a good one. */
	pat_fill(rb + fo, R_T, g.lbs, t_seed);
	EXPECT_ASYNC("io_uring fixed write of the target's own data",
		     uring_one(3, rb + fo, g.lbs, R_T), g.lbs);
	memset(rb, 0, 2 * g.lbs + fo);
	EXPECT_ASYNC("io_uring fixed read", uring_one(2, rb + fo, g.lbs, R_T), g.lbs);
	if (pat_diff(rb + fo, R_T, g.lbs, t_seed) >= 0)
		return fail("io_uring fixed read: wrong data");
	return 0;
}

static int t_io_uring_errors(void)
{
	int r, rc;

	if (!ring_ok)
		return skip("no io_uring");
	reg.iov_len = 64 * KiB;
	reg.iov_base = map_anon(reg.iov_len, MAP_PRIVATE);
	if (!reg.iov_base)
		return fail("mmap: %s", strerror(errno));
	memset(reg.iov_base, 0, reg.iov_len);
	r = io_uring_register_buffers(&ring, &reg, 1);
	if (r < 0) {
		diag("io_uring_register_buffers: %s", strerror(-r));
		rc = io_uring_errors(NULL);
	} else {
		rc = io_uring_errors(reg.iov_base);
		/* Unpin the registered buffer before the pins are counted. */
		io_uring_unregister_buffers(&ring);
	}
	munmap(reg.iov_base, reg.iov_len);
	return rc;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	int r;

	tap_begin("dio_errno");
	alarm(600);
	if (argc != 3) {
		fprintf(stderr, "usage: %s DEV BDEV\n", argv[0]);
		return 2;
	}
	if (get_geom(argv[2], &g) || g.size < 32 * MiB) {
		printf("not ok 1 dio_errno_setup # need a block device of at least 32 MiB: %s\n",
		       argv[2]);
		return 1;
	}
	mo = g.dma < 64 ? 64 : g.dma;
	mo = (mo + g.dma - 1) / g.dma * g.dma;
	fo = mo > g.lbs ? mo : g.lbs;
	dev = open_direct(argv[1], O_RDWR);
	bdev = open_direct(argv[2], O_RDWR);
	rbuf = map_anon(BUF_LEN, MAP_PRIVATE);
	wbuf = map_anon(BUF_LEN, MAP_PRIVATE);
	if (dev < 0 || bdev < 0 || !rbuf || !wbuf) {
		printf("not ok 1 dio_errno_setup # cannot open the devices or allocate buffers\n");
		return 1;
	}
	diag("DEV %s BDEV %s: size %" PRIu64 " logical block %u dma alignment %u", argv[1], argv[2],
	     g.size, g.lbs, g.dma);
	seed_next = (uint32_t)(time(NULL) ^ ((uint32_t)getpid() << 12)) & 0xffffff;
	if (fill_target()) {
		printf("not ok 1 dio_errno_setup # %s\n", t_why);
		return 1;
	}

	run_case("null_buffer", t_null_buffer);
	run_case("unmapped_buffer", t_unmapped_buffer);
	run_case("kernel_address", t_kernel_address);
	run_case("prot_none_buffer", t_prot_none);
	run_case("readonly_mapping_as_read_destination", t_readonly_destination);
	run_case("fault_in_the_middle_of_a_buffer", t_fault_mid_buffer);
	run_case("misaligned_offset", t_misaligned_offset);
	run_case("misaligned_length", t_misaligned_length);
	run_case("misaligned_memory", t_misaligned_memory);
	run_case("misaligned_segments", t_misaligned_segments);
	run_case("iov_max_plus_one", t_iov_max_plus_one);
	run_case("iov_len_overflow", t_iov_len_overflow);
	run_case("zero_length", t_zero_length);
	run_case("nowait", t_nowait);

	r = io_setup(8, &aio_ctx);
	if (r < 0) {
		diag("io_setup: %s", strerror(-r));
		aio_ctx = 0;
	}
	run_case("libaio_errors", t_libaio_errors);
	run_case("libaio_page_over_hole", t_libaio_page_over_hole);
	if (aio_ctx)
		io_destroy(aio_ctx);

	r = io_uring_queue_init(4, &ring, 0);
	if (r < 0) {
		diag("io_uring_queue_init: %s", strerror(-r));
	} else {
		ring_ok = 1;
	}
	run_case("io_uring_errors", t_io_uring_errors);
	run_case("io_uring_page_over_hole", t_io_uring_page_over_hole);
	if (ring_ok)
		io_uring_queue_exit(&ring);
	close(dev);
	close(bdev);
	run("debugfs_counters_balanced", t_debugfs_counters_balanced);
	run("vmstat_pins_balanced", t_vmstat_pins_balanced);
	return tap_end();
}
