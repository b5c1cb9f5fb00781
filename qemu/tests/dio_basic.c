// SPDX-License-Identifier: GPL-2.0
/*
 * dio_basic DEV BDEV
 *
 * Direct I/O through DEV (the character device of a disk, or any device that takes O_DIRECT)
 * checked against the same disk's block device BDEV opened O_DIRECT: round trips of 1 block
 * to 1 MiB at several disk offsets and memory offsets (aligned to the DMA alignment, not to a
 * page), vectored I/O with empty segments, the file position, the end of the disk, zero
 * lengths, buffers in every kind of memory, libaio and io_uring (with registered buffers)
 * with several I/Os in flight; then the pin accounting.
 *
 * Every byte read is compared with what was written. The expected content of the disk is
 * kept as one pattern seed per logical block.
 */
#include "common.h"

#include <libaio.h>
#include <liburing.h>

static int dev = -1, bdev = -1;
static struct geom g;
/* Memory offset aligned to the DMA alignment but not to a page ("unaligned but legal"). */
static size_t mo;
/*
 * The same for a registered (bvec) buffer: there each page is a segment, and a segment must
 * be a multiple of the logical block size too, so a 4096-byte block needs page alignment.
 */
static size_t fo;
static unsigned char *rbuf, *wbuf;
#define BUF_LEN (4 * MiB + 4 * PAGE)

/* Expected content: one seed per logical block; 0 unknown, SEED_ZERO all zeros. */
#define SEED_ZERO 0xffffffffu
static uint32_t *seeds;
static uint32_t seed_next;

static uint32_t new_seed(void)
{
	seed_next = (seed_next + 1) & 0xffffff;
	if (!seed_next)
		seed_next = 1;
	return seed_next;
}

static void mark(uint64_t off, size_t len, uint32_t seed)
{
	for (uint64_t b = off / g.lbs; b < (off + len) / g.lbs; b++)
		seeds[b] = seed;
}

/* Compares @buf, read from disk offsets [off, off + len), with the expected content. */
static int check_buf(const char *what, const unsigned char *buf, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i += g.lbs) {
		uint32_t s = seeds[(off + i) / g.lbs];
		long d;

		if (!s)
			continue;
		d = s == SEED_ZERO ? byte_diff(buf + i, g.lbs, 0) : pat_diff(buf + i, off + i, g.lbs, s);
		if (d >= 0)
			return fail("%s: wrong data at disk offset %" PRIu64 " (+%ld in block at %" PRIu64
				    ", expected %s %u)", what, off + i + d, d, off + i,
				    s == SEED_ZERO ? "zeros" : "pattern", s == SEED_ZERO ? 0 : s);
	}
	return 0;
}

/* Reads [off, off + len) through @fd into rbuf + @memoff and checks it. */
static int verify(int fd, const char *via, uint64_t off, size_t len, size_t memoff)
{
	ssize_t n;

	if (memoff + len > BUF_LEN)
		return fail("verify: %zu bytes at memory offset %zu do not fit", len, memoff);
	n = pread(fd, rbuf + memoff, len, off);
	if (n != (ssize_t)len)
		return fail("read back via %s of %zu at %" PRIu64 ": %zd (%s)", via, len, off, n,
			    n < 0 ? strerror(errno) : "short");
	return check_buf(via, rbuf + memoff, off, len);
}

/* Verifies [off, off + len) widened by one block each side, within [lo, hi). */
static int verify_around(uint64_t off, size_t len, uint64_t lo, uint64_t hi, size_t memoff)
{
	uint64_t a = off >= lo + g.lbs ? off - g.lbs : lo;
	uint64_t b = off + len + g.lbs <= hi ? off + len + g.lbs : hi;

	if (verify(bdev, "BDEV", a, b - a, 0))
		return -1;
	return verify(dev, "DEV", a, b - a, memoff);
}

/* Writes pattern @seed to [off, off + len) through @fd from @buf. */
static int write_pat(int fd, const char *via, unsigned char *buf, uint64_t off, size_t len)
{
	uint32_t s = new_seed();
	ssize_t n;

	pat_fill(buf, off, len, s);
	n = pwrite(fd, buf, len, off);
	if (n != (ssize_t)len)
		return fail("pwrite via %s of %zu at %" PRIu64 " from %p: %zd (%s)", via, len, off,
			    (void *)buf, n, n < 0 ? strerror(errno) : "short");
	mark(off, len, s);
	return 0;
}

/* ------------------------------------------------------------------ layout */

/*
 * [0, 4M) lengths and offsets; [4M, 5M) vectors; [5M, 7M) kinds of memory; [7M, 8M) file
 * position; [8M, 10M) libaio; [10M, 14M) io_uring; [14M, 16M) registered buffers; the last
 * 2 MiB the end of the disk.
 */
#define R_LEN 0
#define R_VEC (4 * MiB)
#define R_MEM (5 * MiB)
#define R_POS (7 * MiB)
#define R_AIO (8 * MiB)
#define R_URING (10 * MiB)
#define R_FIXED (14 * MiB)
#define R_END_LEN (2 * MiB)

/* ------------------------------------------------------------------ tests */

static int t_geometry(void)
{
	off_t p;

	diag("size %" PRIu64 " logical block %u dma alignment %u memory offset %zu", g.size, g.lbs,
	     g.dma, mo);
	p = lseek(dev, 0, SEEK_END);
	if (p != (off_t)g.size)
		return fail("lseek(SEEK_END) = %lld, disk size %" PRIu64, (long long)p, g.size);
	p = lseek(dev, -(off_t)g.lbs, SEEK_END);
	if (p != (off_t)(g.size - g.lbs))
		return fail("lseek(-lbs, SEEK_END) = %lld", (long long)p);
	p = lseek(dev, 4096, SEEK_SET);
	if (p != 4096)
		return fail("lseek(4096, SEEK_SET) = %lld", (long long)p);
	p = lseek(dev, g.lbs, SEEK_CUR);
	if (p != (off_t)(4096 + g.lbs))
		return fail("lseek(lbs, SEEK_CUR) = %lld", (long long)p);
	p = lseek(dev, 0, SEEK_CUR);
	if (p != (off_t)(4096 + g.lbs))
		return fail("lseek(0, SEEK_CUR) = %lld", (long long)p);
	p = lseek(dev, -(off_t)(8192 + g.lbs), SEEK_CUR);
	if (p != -1 || errno != EINVAL)
		return fail("lseek to a negative position = %lld (%s), expected EINVAL",
			    (long long)p, p < 0 ? strerror(errno) : "no error");
	if (lseek(dev, 0, SEEK_SET) != 0)
		return fail("lseek(0, SEEK_SET) failed");
	return 0;
}

/* Writes the regions through BDEV, reads them back through DEV. */
static int t_bdev_write_dev_read(void)
{
	const uint64_t regions[][2] = { { 0, 16 * MiB }, { g.size - R_END_LEN, R_END_LEN } };

	for (int r = 0; r < 2; r++) {
		for (uint64_t off = regions[r][0]; off < regions[r][0] + regions[r][1]; off += MiB)
			if (write_pat(bdev, "BDEV", wbuf, off, MiB))
				return -1;
		for (uint64_t off = regions[r][0]; off < regions[r][0] + regions[r][1]; off += MiB)
			if (verify(dev, "DEV", off, MiB, mo))
				return -1;
	}
	return 0;
}

/* Round trips of one length at several disk offsets and memory offsets. */
static int rw_len(size_t len)
{
	const uint64_t offs[] = { 0, g.lbs, 3 * g.lbs, 5 * PAGE + g.lbs, MiB + 7 * g.lbs,
				  2 * MiB, 4 * MiB - len };
	const size_t memoffs[] = { 0, mo, PAGE > g.dma ? PAGE - g.dma : 0, 5 * mo };
	const unsigned nm = sizeof(memoffs) / sizeof(memoffs[0]);

	for (unsigned i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		uint64_t off = R_LEN + offs[i];
		size_t wm = memoffs[i % nm], rm = memoffs[(i + 1) % nm];

		if (off % g.lbs || off + len > R_LEN + 4 * MiB)
			continue;
		if (write_pat(dev, "DEV", wbuf + wm, off, len))
			return -1;
		if (verify_around(off, len, R_LEN, R_LEN + 4 * MiB, rm))
			return -1;
		/* And the other way round: BDEV writes, DEV reads. */
		if (write_pat(bdev, "BDEV", wbuf + rm, off, len))
			return -1;
		if (verify(dev, "DEV", off, len, wm))
			return -1;
	}
	return 0;
}

static size_t cur_len;
static int t_rw_len(void)
{
	return rw_len(cur_len);
}

/* A vector of segments in separate mappings, with an empty segment, both ways. */
static int t_iovecs(void)
{
	unsigned char *m[4];
	struct iovec w[6], r[5];
	uint64_t off = R_VEC + g.lbs;
	size_t total = 0, got = 0;
	uint32_t s = new_seed();
	ssize_t n;
	int rc = 0;

	for (int i = 0; i < 4; i++) {
		m[i] = map_anon(256 * KiB, MAP_PRIVATE);
		if (!m[i])
			return fail("mmap: %s", strerror(errno));
	}
	w[0] = (struct iovec){ m[0] + mo, g.lbs };
	w[1] = (struct iovec){ m[1], 0 };
	w[2] = (struct iovec){ m[2] + 2 * mo, 3 * g.lbs };
	w[3] = (struct iovec){ m[3] + (PAGE > g.dma ? PAGE - g.dma : 0), 8 * g.lbs };
	w[4] = (struct iovec){ m[0] + 64 * KiB + mo, 16 * g.lbs };
	w[5] = (struct iovec){ m[1] + 64 * KiB, 0 };
	for (int i = 0; i < 6; i++) {
		pat_fill(w[i].iov_base, off + total, w[i].iov_len, s);
		total += w[i].iov_len;
	}
	n = pwritev(dev, w, 6, off);
	if (n != (ssize_t)total) {
		rc = fail("pwritev of %zu in 6 segments: %zd (%s)", total, n,
			  n < 0 ? strerror(errno) : "short");
		goto out;
	}
	mark(off, total, s);
	if (verify_around(off, total, R_VEC, R_VEC + MiB, mo)) {
		rc = -1;
		goto out;
	}

	/* Read back with another segmentation. */
	memset(m[0], 0x77, 256 * KiB);
	memset(m[2], 0x77, 256 * KiB);
	r[0] = (struct iovec){ m[2] + mo, 2 * g.lbs };
	r[1] = (struct iovec){ m[0] + 128 * KiB, 0 };
	r[2] = (struct iovec){ m[0] + 3 * mo, total - 3 * g.lbs };
	r[3] = (struct iovec){ m[2] + 128 * KiB + mo, g.lbs };
	r[4] = (struct iovec){ NULL, 0 };
	n = preadv(dev, r, 5, off);
	if (n != (ssize_t)total) {
		rc = fail("preadv of %zu in 5 segments: %zd (%s)", total, n,
			  n < 0 ? strerror(errno) : "short");
		goto out;
	}
	for (int i = 0; i < 5; i++) {
		if (check_buf("preadv segment", r[i].iov_base, off + got, r[i].iov_len)) {
			rc = -1;
			goto out;
		}
		got += r[i].iov_len;
	}
	if (byte_diff(m[0], 3 * mo, 0x77) >= 0 || byte_diff(m[2], mo, 0x77) >= 0)
		rc = fail("preadv wrote outside its segments");
out:
	for (int i = 0; i < 4; i++)
		munmap(m[i], 256 * KiB);
	return rc;
}

/* IOV_MAX segments of one block each, alternating between two buffers. */
static int t_iov_max_segments(void)
{
	const int nseg = 1024;
	struct iovec *iov = calloc(nseg, sizeof(*iov));
	size_t total = (size_t)nseg * g.lbs;
	uint64_t off = R_LEN;
	uint32_t s = new_seed();
	ssize_t n;

	if (!iov)
		return fail("calloc");
	for (int i = 0; i < nseg; i++) {
		unsigned char *b = (i & 1) ? rbuf : wbuf;

		iov[i].iov_base = b + (size_t)(i / 2) * 2 * g.lbs + mo;
		iov[i].iov_len = g.lbs;
		pat_fill(iov[i].iov_base, off + (uint64_t)i * g.lbs, g.lbs, s);
	}
	n = pwritev(dev, iov, nseg, off);
	if (n != (ssize_t)total) {
		free(iov);
		return fail("pwritev of %d segments: %zd (%s)", nseg, n,
			    n < 0 ? strerror(errno) : "short");
	}
	mark(off, total, s);
	if (verify(bdev, "BDEV", off, total, 0)) {
		free(iov);
		return -1;
	}
	for (int i = 0; i < nseg; i++)
		memset(iov[i].iov_base, 0, g.lbs);
	n = preadv(dev, iov, nseg, off);
	if (n != (ssize_t)total) {
		free(iov);
		return fail("preadv of %d segments: %zd (%s)", nseg, n,
			    n < 0 ? strerror(errno) : "short");
	}
	for (int i = 0; i < nseg; i++) {
		if (check_buf("preadv segment", iov[i].iov_base, off + (uint64_t)i * g.lbs, g.lbs)) {
			free(iov);
			return -1;
		}
	}
	free(iov);
	return 0;
}

/* read/write/readv/writev at the file position, which they advance. */
static int t_file_position(void)
{
	uint64_t p = R_POS + g.lbs;
	size_t l1 = 4 * g.lbs, l2 = 2 * g.lbs;
	uint32_t s = new_seed();
	struct iovec iov[2];
	off_t cur;
	ssize_t n;

	if (lseek(dev, p, SEEK_SET) != (off_t)p)
		return fail("lseek SEEK_SET");
	pat_fill(wbuf + mo, p, l1 + 2 * l2, s);
	n = write(dev, wbuf + mo, l1);
	if (n != (ssize_t)l1)
		return fail("write: %zd (%s)", n, n < 0 ? strerror(errno) : "short");
	cur = lseek(dev, 0, SEEK_CUR);
	if (cur != (off_t)(p + l1))
		return fail("position after write %lld, expected %" PRIu64, (long long)cur, p + l1);
	iov[0] = (struct iovec){ wbuf + mo + l1, l2 };
	iov[1] = (struct iovec){ wbuf + mo + l1 + l2, l2 };
	n = writev(dev, iov, 2);
	if (n != (ssize_t)(2 * l2))
		return fail("writev: %zd (%s)", n, n < 0 ? strerror(errno) : "short");
	mark(p, l1 + 2 * l2, s);
	cur = lseek(dev, 0, SEEK_CUR);
	if (cur != (off_t)(p + l1 + 2 * l2))
		return fail("position after writev %lld", (long long)cur);
	if (verify_around(p, l1 + 2 * l2, R_POS, R_POS + MiB, mo))
		return -1;

	if (lseek(dev, -(off_t)(l1 + 2 * l2), SEEK_CUR) != (off_t)p)
		return fail("lseek back with SEEK_CUR");
	memset(rbuf, 0, l1 + 2 * l2 + 2 * mo);
	n = read(dev, rbuf + mo, l1);
	if (n != (ssize_t)l1)
		return fail("read: %zd (%s)", n, n < 0 ? strerror(errno) : "short");
	if (check_buf("read", rbuf + mo, p, l1))
		return -1;
	iov[0] = (struct iovec){ rbuf + 2 * mo + l1, l2 };
	iov[1] = (struct iovec){ rbuf + 2 * mo + l1 + l2, l2 };
	n = readv(dev, iov, 2);
	if (n != (ssize_t)(2 * l2))
		return fail("readv: %zd (%s)", n, n < 0 ? strerror(errno) : "short");
	if (check_buf("readv", rbuf + 2 * mo + l1, p + l1, 2 * l2))
		return -1;
	cur = lseek(dev, 0, SEEK_CUR);
	if (cur != (off_t)(p + l1 + 2 * l2))
		return fail("position after readv %lld", (long long)cur);
	/* pread and pwrite leave the position alone. */
	if (pread(dev, rbuf, g.lbs, 0) != (ssize_t)g.lbs || lseek(dev, 0, SEEK_CUR) != cur)
		return fail("pread moved the file position");
	lseek(dev, 0, SEEK_SET);
	return 0;
}

static int t_eof_read(void)
{
	uint64_t end = g.size;
	struct iovec iov[2];
	ssize_t n;
	off_t cur;

	n = pread(dev, rbuf, g.lbs, end);
	if (n != 0)
		return fail("pread at the end: %zd (%s), expected 0", n, n < 0 ? strerror(errno) : "");
	n = pread(dev, rbuf, g.lbs, end + MiB);
	if (n != 0)
		return fail("pread past the end: %zd (%s), expected 0", n,
			    n < 0 ? strerror(errno) : "");
	n = pread(dev, rbuf + mo, 4 * g.lbs, end - g.lbs);
	if (n != (ssize_t)g.lbs)
		return fail("pread crossing the end by 3 blocks: %zd (%s), expected %u", n,
			    n < 0 ? strerror(errno) : "", g.lbs);
	if (check_buf("short read", rbuf + mo, end - g.lbs, g.lbs))
		return -1;
	n = pread(dev, rbuf, MiB, end - 3 * g.lbs);
	if (n != (ssize_t)(3 * g.lbs))
		return fail("1 MiB pread 3 blocks before the end: %zd (%s)", n,
			    n < 0 ? strerror(errno) : "");
	if (check_buf("short read", rbuf, end - 3 * g.lbs, 3 * g.lbs))
		return -1;
	iov[0] = (struct iovec){ rbuf + mo, 2 * g.lbs };
	iov[1] = (struct iovec){ wbuf + mo, 2 * g.lbs };
	n = preadv(dev, iov, 2, end - 3 * g.lbs);
	if (n != (ssize_t)(3 * g.lbs))
		return fail("preadv crossing the end: %zd (%s)", n, n < 0 ? strerror(errno) : "");
	if (check_buf("short preadv", rbuf + mo, end - 3 * g.lbs, 2 * g.lbs) ||
	    check_buf("short preadv", wbuf + mo, end - g.lbs, g.lbs))
		return -1;
	cur = lseek(dev, -(off_t)g.lbs, SEEK_END);
	if (cur != (off_t)(end - g.lbs))
		return fail("lseek(-lbs, SEEK_END) = %lld", (long long)cur);
	n = read(dev, rbuf, 2 * g.lbs);
	if (n != (ssize_t)g.lbs)
		return fail("read crossing the end: %zd (%s)", n, n < 0 ? strerror(errno) : "");
	n = read(dev, rbuf, 2 * g.lbs);
	if (n != 0)
		return fail("read at the end: %zd (%s), expected 0", n, n < 0 ? strerror(errno) : "");
	cur = lseek(dev, 0, SEEK_CUR);
	if (cur != (off_t)end)
		return fail("position after reading to the end %lld", (long long)cur);
	lseek(dev, 0, SEEK_SET);
	return 0;
}

static int t_eof_write(void)
{
	uint64_t end = g.size;
	uint32_t s;
	struct iovec iov[2];
	ssize_t n;

	n = pwrite(dev, wbuf, g.lbs, end);
	if (n != -1 || errno != ENOSPC)
		return fail("pwrite at the end: %zd (%s), expected ENOSPC", n,
			    n < 0 ? strerror(errno) : "no error");
	n = pwrite(dev, wbuf, g.lbs, end + MiB);
	if (n != -1 || errno != ENOSPC)
		return fail("pwrite past the end: %zd (%s), expected ENOSPC", n,
			    n < 0 ? strerror(errno) : "no error");
	if (verify(bdev, "BDEV", end - 4 * g.lbs, 4 * g.lbs, 0))
		return -1;

	s = new_seed();
	pat_fill(wbuf + mo, end - 2 * g.lbs, 4 * g.lbs, s);
	n = pwrite(dev, wbuf + mo, 4 * g.lbs, end - 2 * g.lbs);
	if (n != (ssize_t)(2 * g.lbs))
		return fail("pwrite crossing the end by 2 blocks: %zd (%s), expected %u", n,
			    n < 0 ? strerror(errno) : "", 2 * g.lbs);
	mark(end - 2 * g.lbs, 2 * g.lbs, s);
	if (verify(bdev, "BDEV", end - 4 * g.lbs, 4 * g.lbs, 0))
		return -1;

	s = new_seed();
	pat_fill(wbuf + mo, end - 3 * g.lbs, 4 * g.lbs, s);
	iov[0] = (struct iovec){ wbuf + mo, g.lbs };
	iov[1] = (struct iovec){ wbuf + mo + g.lbs, 3 * g.lbs };
	n = pwritev(dev, iov, 2, end - 3 * g.lbs);
	if (n != (ssize_t)(3 * g.lbs))
		return fail("pwritev crossing the end: %zd (%s), expected %u", n,
			    n < 0 ? strerror(errno) : "", 3 * g.lbs);
	mark(end - 3 * g.lbs, 3 * g.lbs, s);
	if (verify(bdev, "BDEV", end - 4 * g.lbs, 4 * g.lbs, 0))
		return -1;

	s = new_seed();
	pat_fill(wbuf + mo, end - g.lbs, 2 * g.lbs, s);
	if (lseek(dev, -(off_t)g.lbs, SEEK_END) != (off_t)(end - g.lbs))
		return fail("lseek(-lbs, SEEK_END)");
	n = write(dev, wbuf + mo, 2 * g.lbs);
	if (n != (ssize_t)g.lbs)
		return fail("write crossing the end: %zd (%s)", n, n < 0 ? strerror(errno) : "");
	mark(end - g.lbs, g.lbs, s);
	n = write(dev, wbuf + mo, g.lbs);
	if (n != -1 || errno != ENOSPC)
		return fail("write at the end: %zd (%s), expected ENOSPC", n,
			    n < 0 ? strerror(errno) : "no error");
	lseek(dev, 0, SEEK_SET);
	return verify(bdev, "BDEV", end - 4 * g.lbs, 4 * g.lbs, 0) ||
	       verify(dev, "DEV", end - 4 * g.lbs, 4 * g.lbs, mo);
}

static int t_zero_length(void)
{
	struct iovec iov[2] = { { wbuf + mo, 0 }, { rbuf, 0 } };
	ssize_t n;

	if ((n = pread(dev, rbuf + mo, 0, 0)) != 0)
		return fail("pread of 0 bytes: %zd (%s)", n, n < 0 ? strerror(errno) : "");
	if ((n = pwrite(dev, wbuf + mo, 0, 0)) != 0)
		return fail("pwrite of 0 bytes: %zd (%s)", n, n < 0 ? strerror(errno) : "");
	if ((n = pread(dev, NULL, 0, g.lbs)) != 0)
		return fail("pread of 0 bytes to NULL: %zd (%s)", n, n < 0 ? strerror(errno) : "");
	if ((n = pwrite(dev, NULL, 0, g.lbs)) != 0)
		return fail("pwrite of 0 bytes from NULL: %zd (%s)", n,
			    n < 0 ? strerror(errno) : "");
	if ((n = preadv(dev, iov, 0, 0)) != 0)
		return fail("preadv of no segment: %zd (%s)", n, n < 0 ? strerror(errno) : "");
	if ((n = preadv(dev, iov, 1, 0)) != 0)
		return fail("preadv of one empty segment: %zd (%s)", n,
			    n < 0 ? strerror(errno) : "");
	if ((n = pwritev(dev, iov, 2, 0)) != 0)
		return fail("pwritev of two empty segments: %zd (%s)", n,
			    n < 0 ? strerror(errno) : "");
	lseek(dev, g.lbs, SEEK_SET);
	if ((n = read(dev, rbuf, 0)) != 0 || (n = write(dev, wbuf, 0)) != 0)
		return fail("read/write of 0 bytes: %zd (%s)", n, n < 0 ? strerror(errno) : "");
	if (lseek(dev, 0, SEEK_CUR) != (off_t)g.lbs)
		return fail("zero-length read/write moved the file position");
	lseek(dev, 0, SEEK_SET);
	return verify(bdev, "BDEV", 0, 4 * g.lbs, 0);
}

/* ------------------------------------------------------------------ kinds of memory */

#define MEM_LEN (256 * KiB)

/*
 * A DEV write from @buf + memoff, checked through BDEV, then a DEV read into it of data that
 * BDEV wrote, with the bytes around the read checked untouched. @buf has @buflen bytes.
 */
static int mem_roundtrip(const char *what, unsigned char *buf, size_t buflen, uint64_t off,
			 size_t len, size_t memoff)
{
	ssize_t n;

	if (memoff + len > buflen)
		return fail("%s: buffer too small", what);
	if (write_pat(dev, "DEV", buf + memoff, off, len))
		return -1;
	if (verify(bdev, "BDEV", off, len, 0))
		return -1;
	if (write_pat(bdev, "BDEV", wbuf, off, len))
		return -1;
	memset(buf, 0x33, buflen);
	n = pread(dev, buf + memoff, len, off);
	if (n != (ssize_t)len)
		return fail("%s: pread into it: %zd (%s)", what, n, n < 0 ? strerror(errno) : "short");
	if (check_buf(what, buf + memoff, off, len))
		return -1;
	if (byte_diff(buf, memoff, 0x33) >= 0 ||
	    byte_diff(buf + memoff + len, buflen - memoff - len, 0x33) >= 0)
		return fail("%s: the read changed bytes outside its range", what);
	return 0;
}

static uint64_t mem_slot(int i)
{
	return R_MEM + (uint64_t)i * MEM_LEN;
}

static int t_mem_anon_private(void)
{
	size_t l = MEM_LEN + 2 * PAGE;
	unsigned char *b = map_anon(l, MAP_PRIVATE);
	int rc;

	if (!b)
		return fail("mmap: %s", strerror(errno));
	rc = mem_roundtrip("anonymous private", b, l, mem_slot(0), MEM_LEN, mo);
	munmap(b, l);
	return rc;
}

static int t_mem_anon_shared(void)
{
	size_t l = MEM_LEN + 2 * PAGE;
	unsigned char *b = map_anon(l, MAP_SHARED);
	int rc;

	if (!b)
		return fail("mmap: %s", strerror(errno));
	rc = mem_roundtrip("anonymous shared", b, l, mem_slot(1), MEM_LEN, mo);
	munmap(b, l);
	return rc;
}

/* A shared mapping of a shmem file; what the read put in memory is in the file. */
static int shmem_roundtrip(const char *what, int fd, uint64_t off)
{
	size_t l = MEM_LEN + 2 * PAGE;
	unsigned char *b, *t;
	ssize_t n;
	int rc;

	if (ftruncate(fd, l))
		return fail("ftruncate: %s", strerror(errno));
	b = mmap(NULL, l, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (b == MAP_FAILED)
		return fail("mmap: %s", strerror(errno));
	rc = mem_roundtrip(what, b, l, off, MEM_LEN, mo);
	if (!rc) {
		t = malloc(MEM_LEN);
		n = t ? pread(fd, t, MEM_LEN, mo) : -1;
		if (n != (ssize_t)MEM_LEN)
			rc = fail("%s: pread of the file: %zd", what, n);
		else
			rc = check_buf("the file under the mapping", t, off, MEM_LEN);
		free(t);
	}
	munmap(b, l);
	return rc;
}

static int t_mem_memfd(void)
{
	int fd = memfd_create("iovx-dio-basic", 0);
	int rc;

	if (fd < 0)
		return skip("memfd_create: %s", strerror(errno));
	rc = shmem_roundtrip("memfd", fd, mem_slot(2));
	close(fd);
	return rc;
}

static int t_mem_posix_shm(void)
{
	char name[64];
	int fd, rc;

	snprintf(name, sizeof(name), "/iovx-dio-basic-%d", getpid());
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return skip("shm_open: %s", strerror(errno));
	shm_unlink(name);
	rc = shmem_roundtrip("POSIX shm", fd, mem_slot(3));
	close(fd);
	return rc;
}

static int t_mem_thp(void)
{
	void *raw;
	size_t rawlen;
	unsigned char *b;
	long kib;
	int rc;

	if (thp_pmd_unfit())
		return skip("%s", thp_pmd_unfit());
	b = map_thp(HPAGE, &raw, &rawlen);
	if (!b)
		return fail("mmap: %s", strerror(errno));
	/* The first touch is the pin of a read: a huge page faulted in by the extraction. */
	if (write_pat(bdev, "BDEV", wbuf, mem_slot(4), MEM_LEN)) {
		munmap(raw, rawlen);
		return -1;
	}
	if (pread(dev, b + HPAGE / 2 + mo, MEM_LEN, mem_slot(4)) != (ssize_t)MEM_LEN) {
		rc = fail("pread into an untouched huge page region: %s", strerror(errno));
		goto out;
	}
	if (check_buf("read into an untouched huge page region", b + HPAGE / 2 + mo, mem_slot(4),
		      MEM_LEN)) {
		rc = -1;
		goto out;
	}
	kib = anon_huge_kib(b);
	diag("THP region: AnonHugePages %ld kB", kib);
	/* A range crossing page boundaries inside the huge page. */
	rc = mem_roundtrip("THP", b, HPAGE, mem_slot(4), MEM_LEN, HPAGE / 4 + mo);
out:
	munmap(raw, rawlen);
	return rc;
}

static const char *tmp_dir(void)
{
	const char *d = getenv("TMPDIR");

	return d && *d ? d : "/tmp";
}

/* A MAP_PRIVATE mapping of a tmpfs file: writes come from the page cache, reads land in
 * private copies and leave the file alone. */
static int t_mem_file_private(void)
{
	size_t l = MEM_LEN + 2 * PAGE;
	uint64_t off = mem_slot(5);
	uint32_t s = new_seed();
	unsigned char *b, *t = NULL;
	char path[256];
	ssize_t n;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/iovx-dio-basic-%d", tmp_dir(), getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return fail("create %s: %s", path, strerror(errno));
	unlink(path);
	/* File byte k holds the pattern of disk offset off - mo + k. */
	memset(wbuf, 0x11, l);
	pat_fill(wbuf + mo, off, MEM_LEN, s);
	if (write(fd, wbuf, l) != (ssize_t)l) {
		close(fd);
		return fail("write %s: %s", path, strerror(errno));
	}
	b = mmap(NULL, l, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (b == MAP_FAILED) {
		close(fd);
		return fail("mmap: %s", strerror(errno));
	}
	n = pwrite(dev, b + mo, MEM_LEN, off);
	if (n != (ssize_t)MEM_LEN) {
		rc = fail("pwrite from the file mapping: %zd (%s)", n, n < 0 ? strerror(errno) : "");
		goto out;
	}
	mark(off, MEM_LEN, s);
	if (verify(bdev, "BDEV", off, MEM_LEN, 0)) {
		rc = -1;
		goto out;
	}
	if (write_pat(bdev, "BDEV", wbuf, off, MEM_LEN)) {
		rc = -1;
		goto out;
	}
	n = pread(dev, b + mo, MEM_LEN, off);
	if (n != (ssize_t)MEM_LEN) {
		rc = fail("pread into the file mapping: %zd (%s)", n, n < 0 ? strerror(errno) : "");
		goto out;
	}
	if (check_buf("read into a private file mapping", b + mo, off, MEM_LEN)) {
		rc = -1;
		goto out;
	}
	t = malloc(MEM_LEN);
	if (!t || pread(fd, t, MEM_LEN, mo) != (ssize_t)MEM_LEN) {
		rc = fail("pread of the file: %s", strerror(errno));
		goto out;
	}
	if (pat_diff(t, off, MEM_LEN, s) >= 0)
		rc = fail("the read into a MAP_PRIVATE mapping changed the file");
out:
	free(t);
	munmap(b, l);
	close(fd);
	return rc;
}

/* A read-only shared mapping of a file is a valid source of a write. */
static int t_mem_readonly_source(void)
{
	size_t l = MEM_LEN + 2 * PAGE;
	uint64_t off = mem_slot(6);
	uint32_t s = new_seed();
	unsigned char *b;
	char path[256];
	ssize_t n;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/iovx-dio-basic-ro-%d", tmp_dir(), getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return fail("create %s: %s", path, strerror(errno));
	unlink(path);
	memset(wbuf, 0x22, l);
	pat_fill(wbuf + mo, off, MEM_LEN, s);
	if (write(fd, wbuf, l) != (ssize_t)l) {
		close(fd);
		return fail("write %s: %s", path, strerror(errno));
	}
	b = mmap(NULL, l, PROT_READ, MAP_SHARED, fd, 0);
	if (b == MAP_FAILED) {
		close(fd);
		return fail("mmap: %s", strerror(errno));
	}
	n = pwrite(dev, b + mo, MEM_LEN, off);
	if (n != (ssize_t)MEM_LEN)
		rc = fail("pwrite from a read-only mapping: %zd (%s)", n,
			  n < 0 ? strerror(errno) : "");
	else
		mark(off, MEM_LEN, s);
	if (!rc)
		rc = verify(bdev, "BDEV", off, MEM_LEN, 0);
	munmap(b, l);
	close(fd);
	return rc;
}

/* Never-touched anonymous memory: a write from it writes zeros, a read into it faults the
 * pages in. */
static int t_mem_untouched(void)
{
	size_t l = MEM_LEN + 2 * PAGE;
	uint64_t off = mem_slot(7);
	unsigned char *b = map_anon(l, MAP_PRIVATE), *c = map_anon(l, MAP_PRIVATE);
	ssize_t n;
	int rc = 0;

	if (!b || !c)
		return fail("mmap: %s", strerror(errno));
	n = pwrite(dev, b + mo, MEM_LEN, off);
	if (n != (ssize_t)MEM_LEN) {
		rc = fail("pwrite from untouched memory: %zd (%s)", n, n < 0 ? strerror(errno) : "");
		goto out;
	}
	mark(off, MEM_LEN, SEED_ZERO);
	if (verify(bdev, "BDEV", off, MEM_LEN, 0)) {
		rc = -1;
		goto out;
	}
	if (write_pat(bdev, "BDEV", wbuf, off, MEM_LEN)) {
		rc = -1;
		goto out;
	}
	n = pread(dev, c + mo, MEM_LEN, off);
	if (n != (ssize_t)MEM_LEN) {
		rc = fail("pread into untouched memory: %zd (%s)", n, n < 0 ? strerror(errno) : "");
		goto out;
	}
	rc = check_buf("read into untouched memory", c + mo, off, MEM_LEN);
	if (!rc && (byte_diff(c, mo, 0) >= 0 || byte_diff(c + mo + MEM_LEN, l - mo - MEM_LEN, 0) >= 0))
		rc = fail("the read into untouched memory changed bytes outside its range");
out:
	munmap(b, l);
	munmap(c, l);
	return rc;
}

static int t_mem_stack(void)
{
	unsigned char b[64 * KiB + 2 * PAGE] __attribute__((aligned(4096)));

	return mem_roundtrip("stack", b, sizeof(b), mem_slot(7) + MEM_LEN - 64 * KiB, 64 * KiB, mo);
}

/* ------------------------------------------------------------------ libaio */

#define AIO_N 8

static size_t aio_len(int i)
{
	const size_t lens[AIO_N] = { 1, 8, 7, 128, 256, 2, 64, 511 };
	size_t l = lens[i] * g.lbs;

	return l > 256 * KiB ? 256 * KiB : l;
}

static int aio_wait(io_context_t ctx, int nr, struct io_event *ev)
{
	struct timespec ts = { 60, 0 };
	int got = 0;

	while (got < nr) {
		int r = io_getevents(ctx, nr - got, nr - got, ev + got, &ts);

		if (r < 0)
			return fail("io_getevents: %s", strerror(-r));
		if (r == 0)
			return fail("io_getevents: %d of %d completions after 60 s", got, nr);
		got += r;
	}
	return 0;
}

static int t_libaio(void)
{
	io_context_t ctx = 0;
	struct iocb cb[AIO_N], *cbs[AIO_N];
	struct iovec iov[AIO_N][3];
	struct io_event ev[AIO_N];
	unsigned char *m;
	size_t slot = 256 * KiB + 2 * PAGE, ml = AIO_N * slot;
	uint32_t s[AIO_N];
	int r, rc = 0;

	m = map_anon(ml, MAP_PRIVATE);
	if (!m)
		return fail("mmap: %s", strerror(errno));
	r = io_setup(64, &ctx);
	if (r < 0) {
		munmap(m, ml);
		return fail("io_setup: %s", strerror(-r));
	}
	for (int dir = 0; dir < 2 && !rc; dir++) {
		for (int i = 0; i < AIO_N; i++) {
			unsigned char *b = m + i * slot + (i & 1 ? mo : 0);
			uint64_t off = R_AIO + (uint64_t)i * 256 * KiB;
			size_t len = aio_len(i);

			if (dir == 0) {
				s[i] = new_seed();
				pat_fill(b, off, len, s[i]);
			} else {
				memset(m + i * slot, 0x44, slot);
			}
			if (i % 3 == 2 && len >= 3 * g.lbs) {
				iov[i][0] = (struct iovec){ b, g.lbs };
				iov[i][1] = (struct iovec){ b + g.lbs, 0 };
				iov[i][2] = (struct iovec){ b + g.lbs, len - g.lbs };
				if (dir == 0)
					io_prep_pwritev(&cb[i], dev, iov[i], 3, off);
				else
					io_prep_preadv(&cb[i], dev, iov[i], 3, off);
			} else if (dir == 0) {
				io_prep_pwrite(&cb[i], dev, b, len, off);
			} else {
				io_prep_pread(&cb[i], dev, b, len, off);
			}
			cb[i].data = (void *)(uintptr_t)i;
			cbs[i] = &cb[i];
		}
		for (int done = 0; done < AIO_N;) {
			r = io_submit(ctx, AIO_N - done, cbs + done);
			if (r <= 0) {
				rc = fail("io_submit: %s", r < 0 ? strerror(-r) : "nothing submitted");
				break;
			}
			done += r;
		}
		if (rc || (rc = aio_wait(ctx, AIO_N, ev)))
			break;
		for (int k = 0; k < AIO_N && !rc; k++) {
			int i = (int)(uintptr_t)ev[k].data;
			uint64_t off = R_AIO + (uint64_t)i * 256 * KiB;
			long res = (long)ev[k].res;

			if (res != (long)aio_len(i)) {
				rc = fail("aio %s %d of %zu: res %ld (%s)", dir ? "read" : "write", i,
					  aio_len(i), res, res < 0 ? strerror(-res) : "short");
				break;
			}
			if (dir == 0) {
				mark(off, aio_len(i), s[i]);
			} else {
				unsigned char *b = m + i * slot + (i & 1 ? mo : 0);

				if (check_buf("aio read", b, off, aio_len(i)))
					rc = -1;
				else if (byte_diff(b + aio_len(i), 64, 0x44) >= 0)
					rc = fail("aio read %d wrote past its end", i);
			}
		}
		if (!rc && dir == 0) {
			for (int i = 0; i < AIO_N && !rc; i++)
				rc = verify(bdev, "BDEV", R_AIO + (uint64_t)i * 256 * KiB, aio_len(i), 0);
		}
	}
	io_destroy(ctx);
	munmap(m, ml);
	return rc;
}

/* ------------------------------------------------------------------ io_uring */

#define URING_N 32
#define URING_QD 8
#define URING_SLOT (128 * KiB)

static size_t uring_len(int i)
{
	const size_t lens[] = { 1, 2, 8, 3, 64, 16, 255, 32, 128, 5 };
	size_t l = lens[i % 10] * g.lbs;

	return l > URING_SLOT ? URING_SLOT : l;
}

/* Runs @n I/Os, at most URING_QD in flight; @prep prepares I/O i in an SQE. */
static int uring_run(struct io_uring *ring, int n, void (*prep)(struct io_uring_sqe *, int),
		     int (*done)(int i, int res))
{
	int next = 0, inflight = 0, rc = 0;

	while ((next < n || inflight) && !rc) {
		struct io_uring_cqe *cqe;
		int r;

		while (next < n && inflight < URING_QD) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

			if (!sqe)
				break;
			prep(sqe, next);
			io_uring_sqe_set_data64(sqe, next);
			next++;
			inflight++;
		}
		r = io_uring_submit(ring);
		if (r < 0)
			return fail("io_uring_submit: %s", strerror(-r));
		r = io_uring_wait_cqe(ring, &cqe);
		if (r < 0)
			return fail("io_uring_wait_cqe: %s", strerror(-r));
		rc = done((int)io_uring_cqe_get_data64(cqe), cqe->res);
		io_uring_cqe_seen(ring, cqe);
		inflight--;
	}
	/* On a failure, drain what is still in flight before the buffers go. */
	while (inflight > 0) {
		struct io_uring_cqe *cqe;

		if (io_uring_wait_cqe(ring, &cqe) < 0)
			break;
		io_uring_cqe_seen(ring, cqe);
		inflight--;
	}
	return rc;
}

static unsigned char *u_mem;
static size_t u_slot;
static uint32_t u_seed[URING_N];
static struct iovec u_iov[URING_N][2];
static int u_write;

static unsigned char *u_buf(int i)
{
	return u_mem + (size_t)i * u_slot + ((i % 3) ? mo : 0);
}

static uint64_t u_off(int i)
{
	return R_URING + (uint64_t)i * URING_SLOT;
}

static void u_prep(struct io_uring_sqe *sqe, int i)
{
	unsigned char *b = u_buf(i);
	size_t len = uring_len(i);

	if (u_write) {
		u_seed[i] = new_seed();
		pat_fill(b, u_off(i), len, u_seed[i]);
	} else {
		memset(u_mem + (size_t)i * u_slot, 0x66, u_slot);
	}
	if (i % 4 == 1 && len >= 2 * g.lbs) {
		u_iov[i][0] = (struct iovec){ b, g.lbs };
		u_iov[i][1] = (struct iovec){ b + g.lbs, len - g.lbs };
		if (u_write)
			io_uring_prep_writev(sqe, dev, u_iov[i], 2, u_off(i));
		else
			io_uring_prep_readv(sqe, dev, u_iov[i], 2, u_off(i));
	} else if (u_write) {
		io_uring_prep_write(sqe, dev, b, len, u_off(i));
	} else {
		io_uring_prep_read(sqe, dev, b, len, u_off(i));
	}
}

static int u_done(int i, int res)
{
	if (res != (int)uring_len(i))
		return fail("io_uring %s %d of %zu: res %d (%s)", u_write ? "write" : "read", i,
			    uring_len(i), res, res < 0 ? strerror(-res) : "short");
	if (u_write) {
		mark(u_off(i), uring_len(i), u_seed[i]);
		return 0;
	}
	if (check_buf("io_uring read", u_buf(i), u_off(i), uring_len(i)))
		return -1;
	if (byte_diff(u_buf(i) + uring_len(i), 64, 0x66) >= 0)
		return fail("io_uring read %d wrote past its end", i);
	return 0;
}

static int t_io_uring(void)
{
	struct io_uring ring;
	size_t ml;
	int r, rc;

	u_slot = URING_SLOT + 2 * PAGE;
	ml = URING_N * u_slot;
	u_mem = map_anon(ml, MAP_PRIVATE);
	if (!u_mem)
		return fail("mmap: %s", strerror(errno));
	r = io_uring_queue_init(URING_QD, &ring, 0);
	if (r < 0) {
		munmap(u_mem, ml);
		return skip("io_uring_queue_init: %s", strerror(-r));
	}
	u_write = 1;
	rc = uring_run(&ring, URING_N, u_prep, u_done);
	for (int i = 0; i < URING_N && !rc; i++)
		rc = verify(bdev, "BDEV", u_off(i), uring_len(i), 0);
	if (!rc) {
		u_write = 0;
		rc = uring_run(&ring, URING_N, u_prep, u_done);
	}
	io_uring_queue_exit(&ring);
	munmap(u_mem, ml);
	return rc;
}

/* Registered buffers: three kinds of memory, I/O at offsets inside them. */
#define FIXED_N 16
#define FIXED_SLOT (136 * KiB)
static struct iovec f_reg[3];

static unsigned char *f_buf(int i)
{
	return (unsigned char *)f_reg[i % 3].iov_base + (size_t)(i / 3) * FIXED_SLOT + fo;
}

static uint64_t f_off(int i)
{
	return R_FIXED + (uint64_t)i * URING_SLOT;
}

static void f_prep(struct io_uring_sqe *sqe, int i)
{
	size_t len = uring_len(i);

	if (u_write) {
		u_seed[i] = new_seed();
		pat_fill(f_buf(i), f_off(i), len, u_seed[i]);
		io_uring_prep_write_fixed(sqe, dev, f_buf(i), len, f_off(i), i % 3);
	} else {
		memset(f_buf(i) - fo, 0x55, FIXED_SLOT);
		io_uring_prep_read_fixed(sqe, dev, f_buf(i), len, f_off(i), i % 3);
	}
}

static int f_done(int i, int res)
{
	if (res != (int)uring_len(i))
		return fail("io_uring fixed %s %d of %zu: res %d (%s)", u_write ? "write" : "read", i,
			    uring_len(i), res, res < 0 ? strerror(-res) : "short");
	if (u_write) {
		mark(f_off(i), uring_len(i), u_seed[i]);
		return 0;
	}
	if (check_buf("io_uring fixed read", f_buf(i), f_off(i), uring_len(i)))
		return -1;
	if (byte_diff(f_buf(i) + uring_len(i), 64, 0x55) >= 0)
		return fail("io_uring fixed read %d wrote past its end", i);
	return 0;
}

static int t_io_uring_fixed(void)
{
	struct io_uring ring;
	size_t l = MiB + PAGE;
	void *thp_raw = NULL;
	size_t thp_rawlen = 0;
	int memfd, r, rc;

	f_reg[0].iov_base = map_anon(l, MAP_PRIVATE);
	f_reg[0].iov_len = l;
	f_reg[1].iov_base = map_thp(HPAGE, &thp_raw, &thp_rawlen);
	f_reg[1].iov_len = HPAGE;
	memfd = memfd_create("iovx-fixed", 0);
	if (memfd < 0 || ftruncate(memfd, l))
		return fail("memfd: %s", strerror(errno));
	f_reg[2].iov_base = mmap(NULL, l, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	f_reg[2].iov_len = l;
	close(memfd);
	if (!f_reg[0].iov_base || !f_reg[1].iov_base || f_reg[2].iov_base == MAP_FAILED)
		return fail("mmap: %s", strerror(errno));
	/* Registration needs the pages; fault them in. */
	for (int i = 0; i < 3; i++)
		memset(f_reg[i].iov_base, 0, f_reg[i].iov_len);
	r = io_uring_queue_init(URING_QD, &ring, 0);
	if (r < 0) {
		rc = skip("io_uring_queue_init: %s", strerror(-r));
		goto out_unmap;
	}
	r = io_uring_register_buffers(&ring, f_reg, 3);
	if (r < 0) {
		rc = fail("io_uring_register_buffers: %s", strerror(-r));
		goto out_exit;
	}
	u_write = 1;
	rc = uring_run(&ring, FIXED_N, f_prep, f_done);
	for (int i = 0; i < FIXED_N && !rc; i++)
		rc = verify(bdev, "BDEV", f_off(i), uring_len(i), 0);
	if (!rc) {
		u_write = 0;
		rc = uring_run(&ring, FIXED_N, f_prep, f_done);
	}
	/* Unregistering unpins the buffers now rather than when the ring is torn down. */
	r = io_uring_unregister_buffers(&ring);
	if (r < 0 && !rc)
		rc = fail("io_uring_unregister_buffers: %s", strerror(-r));
out_exit:
	io_uring_queue_exit(&ring);
out_unmap:
	munmap(f_reg[0].iov_base, l);
	munmap(thp_raw, thp_rawlen);
	munmap(f_reg[2].iov_base, l);
	return rc;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	static const unsigned len_blocks[] = { 1, 2, 7, 8, 9, 128, 255 };
	char name[64];

	tap_begin("dio_basic");
	alarm(600);
	if (argc != 3) {
		fprintf(stderr, "usage: %s DEV BDEV\n", argv[0]);
		return 2;
	}
	if (get_geom(argv[2], &g)) {
		printf("not ok 1 dio_basic_setup # cannot get the geometry of %s\n", argv[2]);
		return 1;
	}
	diag("DEV %s BDEV %s", argv[1], argv[2]);
	if (g.size < 32 * MiB || g.lbs < 512 || g.lbs > 4096) {
		printf("not ok 1 dio_basic_setup # need a disk of at least 32 MiB with 512..4096 "
		       "byte blocks (%" PRIu64 " bytes, %u)\n", g.size, g.lbs);
		return 1;
	}
	mo = g.dma < 64 ? 64 : g.dma;
	mo = (mo + g.dma - 1) / g.dma * g.dma;
	fo = mo > g.lbs ? mo : g.lbs;
	dev = open_direct(argv[1], O_RDWR);
	bdev = open_direct(argv[2], O_RDWR);
	rbuf = map_anon(BUF_LEN, MAP_PRIVATE);
	wbuf = map_anon(BUF_LEN, MAP_PRIVATE);
	seeds = calloc(g.size / g.lbs, sizeof(*seeds));
	if (dev < 0 || bdev < 0 || !rbuf || !wbuf || !seeds) {
		printf("not ok 1 dio_basic_setup # cannot open the devices or allocate buffers\n");
		return 1;
	}
	seed_next = (uint32_t)(time(NULL) ^ ((uint32_t)getpid() << 12)) & 0xffffff;

	run("geometry_and_lseek", t_geometry);
	run("bdev_write_dev_read", t_bdev_write_dev_read);
	for (unsigned i = 0; i < sizeof(len_blocks) / sizeof(len_blocks[0]); i++) {
		cur_len = len_blocks[i] * g.lbs;
		snprintf(name, sizeof(name), "rw_len_%zu", cur_len);
		run(name, t_rw_len);
	}
	cur_len = MiB;
	run("rw_len_1048576", t_rw_len);
	run("iovecs_with_empty_segment", t_iovecs);
	run("iov_max_segments", t_iov_max_segments);
	run("file_position", t_file_position);
	run("eof_read", t_eof_read);
	run("eof_write", t_eof_write);
	run("zero_length", t_zero_length);
	run("mem_anon_private", t_mem_anon_private);
	run("mem_anon_shared", t_mem_anon_shared);
	run("mem_memfd", t_mem_memfd);
	run("mem_posix_shm", t_mem_posix_shm);
	run("mem_thp", t_mem_thp);
	run("mem_tmpfs_file_private", t_mem_file_private);
	run("mem_readonly_file_source", t_mem_readonly_source);
	run("mem_untouched_anon", t_mem_untouched);
	run("mem_stack", t_mem_stack);
	run("libaio_8_in_flight", t_libaio);
	run("io_uring_qd8", t_io_uring);
	run("io_uring_fixed_buffers", t_io_uring_fixed);
	close(dev);
	close(bdev);
	run("debugfs_counters_balanced", t_debugfs_counters_balanced);
	run("vmstat_pins_balanced", t_vmstat_pins_balanced);
	return tap_end();
}
