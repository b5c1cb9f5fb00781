// SPDX-License-Identifier: GPL-2.0
/*
 * passthrough: the IOVX_IOC_PT ioctl of /dev/iovxN and the IOVX_URING_CMD_PT io_uring command of
 * /dev/iovx_ngN (rust/uapi/iovx.h).
 *
 * Usage: passthrough BDEV [NGDEV]
 *        passthrough --busy BDEV NGDEV MODULE_NAME
 *        passthrough --faults OPS SEED BDEV NGDEV
 *        passthrough --seglimit N BDEV NGDEV
 *
 * With NGDEV, every case below runs a second time through io_uring (IORING_OP_URING_CMD on a
 * ring with 128-byte entries and 32-byte completions; the command waits for nothing, the
 * program waits for its completion), and then: many commands in flight at once, checked byte
 * for byte; a write on a read-only open (EBADF); a ring without 128-byte entries (EOPNOTSUPP);
 * commands ended but not reaped hold no tag (an O_DIRECT read from the submitting thread gets
 * one).
 * --busy (run on a disk that completes requests late): while commands are in flight the module
 * cannot be unloaded (delete_module fails with EWOULDBLOCK), and they complete with the right
 * data; bounced reads are copied back by the submitting task (untouched until it reaps them,
 * with IORING_SETUP_DEFER_TASKRUN) while it is busy elsewhere; one whose buffer is unmapped
 * before its completion ends with EFAULT and writes nothing; a submitter that exits (_exit,
 * SIGKILL, _exit from a thread) with bounced reads in flight ends, its ring goes (the module's
 * reference count comes back) and the pins balance.
 * --seglimit N (run on a disk of max_segments N): the limit holds for segments counted after
 * merging: N + 1 pieces that cannot share a segment are EINVAL with both mappings, N of them and
 * 1 MiB of a hugetlb page (N segments of 64 KiB) map.
 *
 * Every passthrough read and write is checked byte for byte against the block device read or
 * written with O_DIRECT, for aligned, misaligned and vectored buffers, with the Rust mapping,
 * the Rust mapping forced to bounce, and the kernel's blk_rq_map_user_iov(); each bad input
 * gives the same errno (and status) with the Rust and the kernel mapping; a bounced request
 * pins no page; 1 MiB of a hugetlb page or a transparent huge page maps into one segment per
 * max_segment_size of the queue with both mappings, pinning and unpinning each page once; and
 * the pins balance at the end.
 */
#include "common.h"
#include "../../rust/uapi/iovx.h"

#include <liburing.h>
#include <pthread.h>
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static const char *bdev;
static int fd, dfd;
/* Through io_uring on ngfd instead of the ioctl on fd. */
static int via_uring, ngfd = -1;
static struct io_uring ring;
static struct geom g;
/* Sectors used: 16 MiB into the disk, 2 MiB of them. */
static const uint64_t base_sector = (16 * MiB) >> 9;
static uint32_t seed = 0x5eed;

/* Queues command @c on @r for @nfd, with @tag as its user data. */
static int uring_queue(struct io_uring *r, int nfd, const struct iovx_pt_cmd *c, uint64_t tag)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(r);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, nfd, NULL, 0, 0);
	sqe->cmd_op = IOVX_URING_CMD_PT;
	memcpy(sqe->cmd, c, sizeof(*c));
	io_uring_sqe_set_data64(sqe, tag);
	return 0;
}

/* Waits for one completion: its res, tag and big_cqe[0]. */
static int uring_reap(struct io_uring *r, uint64_t *tag, uint64_t *extra)
{
	struct io_uring_cqe *cqe;
	int e = io_uring_wait_cqe(r, &cqe);

	if (e)
		return e;
	e = cqe->res;
	*tag = io_uring_cqe_get_data64(cqe);
	*extra = cqe->big_cqe[0];
	io_uring_cqe_seen(r, cqe);
	return e;
}

/* What the ioctl writes back, from a completion's big_cqe[0]. */
static void uring_out(struct iovx_pt_cmd *c, uint64_t extra)
{
	c->result = (uint32_t)extra;
	c->mapping = (extra >> 32) & 0xff;
	c->segments = extra >> 40;
}

static int pt(int opcode, unsigned flags, uint64_t sector, const void *addr, unsigned len,
	      struct iovx_pt_cmd *out)
{
	struct iovx_pt_cmd c = {
		.opcode = opcode,
		.flags = flags,
		.sector = sector,
		.addr = (uintptr_t)addr,
		.len = len,
		.result = 0xdeadbeef,
	};
	int r;

	if (via_uring) {
		static uint64_t next_tag = 1000;
		uint64_t want = next_tag++, tag = 0, extra = 0;
		int tries = 0, e;

		r = uring_queue(&ring, ngfd, &c, want);
		/*
		 * io_uring_enter() may fail to take the entry (an allocation failing under fault
		 * injection): the entry is still in the ring, so submit again until it is taken, or
		 * it would run with a later call.
		 */
		while (!r && (e = io_uring_submit(&ring)) != 1) {
			if ((e < 0 && e != -EAGAIN && e != -ENOMEM && e != -EINTR) || ++tries > 10000) {
				printf("# io_uring_submit: %s\n", e < 0 ? strerror(-e) : "nothing taken");
				exit(2);
			}
		}
		/* Our completion, by its tag. */
		while (!r && tag != want) {
			r = uring_reap(&ring, &tag, &extra);
			if (tag != want && r != -EINTR) {
				printf("# a completion of another command (tag %llu)\n",
				       (unsigned long long)tag);
				exit(2);
			}
			if (r == -EINTR && tag != want)
				r = 0;
		}
		if (out) {
			*out = c;
			uring_out(out, extra);
		}
		return r < 0 ? r : 0;
	}
	r = ioctl(fd, IOVX_IOC_PT, &c);

	if (out)
		*out = c;
	return r < 0 ? -errno : 0;
}

/* The three ways of mapping a command's data. */
static const struct {
	const char *name;
	unsigned flags;
} maps[] = {
	{ "rust", 0 },
	{ "rust_bounce", IOVX_PT_F_BOUNCE },
	{ "kernel", IOVX_PT_F_KERNEL_MAP },
};

static int t_identify(void)
{
	struct iovx_pt_identify id[3];
	struct iovx_pt_cmd c;
	void *buf = map_anon(PAGE, MAP_PRIVATE);

	for (int m = 0; m < 3; m++) {
		memset(buf, 0xa5, PAGE);
		int r = pt(IOVX_PT_IDENTIFY, maps[m].flags, 0, buf, PAGE, &c);

		if (r)
			return fail("%s: identify: %s", maps[m].name, strerror(-r));
		if (c.result != sizeof(id[m]))
			return fail("%s: identify returned %u bytes", maps[m].name, c.result);
		memcpy(&id[m], buf, sizeof(id[m]));
		if (byte_diff((char *)buf + sizeof(id[m]), PAGE - sizeof(id[m]), 0) >= 0)
			return fail("%s: the rest of the page is not zeroed", maps[m].name);
		if (memcmp(id[m].magic, "IOVXDISK", 8))
			return fail("%s: bad magic", maps[m].name);
		if (id[m].capacity_sectors != g.size >> 9 || id[m].logical_block_size != g.lbs ||
		    id[m].dma_alignment + 1 != g.dma)
			return fail("%s: identify says %llu sectors, %u-byte blocks, align %u; the disk %llu, %u, %u",
				    maps[m].name, (unsigned long long)id[m].capacity_sectors,
				    id[m].logical_block_size, id[m].dma_alignment + 1,
				    (unsigned long long)g.size >> 9, g.lbs, g.dma);
		if (m && memcmp(&id[m], &id[0], sizeof(id[0])))
			return fail("%s: identify differs from the rust mapping's", maps[m].name);
	}
	diag("identify: %llu sectors, lbs %u, max_hw_sectors %u, max_segments %u, align %u",
	     (unsigned long long)id[0].capacity_sectors, id[0].logical_block_size,
	     id[0].max_hw_sectors, id[0].max_segments, id[0].dma_alignment + 1);
	munmap(buf, PAGE);
	return 0;
}

/* A buffer shape: one buffer at an offset into an anonymous mapping, or an iovec array. */
struct shape {
	const char *name;
	size_t off;		/* offset of the (first) buffer in its mapping */
	size_t len;		/* total bytes */
	int nvec;		/* 0: one buffer; else that many pieces of len/nvec bytes */
	size_t gap;		/* bytes between the pieces */
	unsigned expect_rust;	/* IOVX_PT_MAP_* of the rust mapping */
};

static const struct shape shapes[] = {
	{ "aligned_4k", 0, 4 * KiB, 0, 0, IOVX_PT_MAP_PINNED },
	{ "aligned_64k", 0, 64 * KiB, 0, 0, IOVX_PT_MAP_PINNED },
	{ "aligned_1m", 0, 1 * MiB, 0, 0, IOVX_PT_MAP_PINNED },
	{ "aligned_512_in_page", 512, 8 * KiB, 0, 0, IOVX_PT_MAP_PINNED },
	{ "misaligned_8", 8, 16 * KiB, 0, 0, IOVX_PT_MAP_BOUNCED },
	{ "misaligned_1", 1, 4 * KiB, 0, 0, IOVX_PT_MAP_BOUNCED },
	{ "vec_aligned", 0, 64 * KiB, 8, 4096 + 512, IOVX_PT_MAP_PINNED },
	{ "vec_misaligned", 3, 32 * KiB, 4, 100, IOVX_PT_MAP_BOUNCED },
};

/* Runs one command over the shape's memory in @area (the data at @data, len bytes). */
static int pt_shape(int opcode, unsigned flags, const struct shape *s, char *area,
		    struct iovx_pt_cmd *c)
{
	if (!s->nvec)
		return pt(opcode, flags, base_sector, area + s->off, s->len, c);
	struct iovec iov[16];
	size_t piece = s->len / s->nvec;

	for (int i = 0; i < s->nvec; i++) {
		iov[i].iov_base = area + s->off + i * (piece + s->gap);
		iov[i].iov_len = piece;
	}
	return pt(opcode, flags | IOVX_PT_F_VEC, base_sector, iov, s->nvec, c);
}

/* Copies between the shape's pieces in @area and the flat buffer @flat. */
static void gather(const struct shape *s, char *area, char *flat, int to_flat)
{
	int n = s->nvec ? s->nvec : 1;
	size_t piece = s->len / n;

	for (int i = 0; i < n; i++) {
		char *p = area + s->off + i * (piece + s->gap);

		if (to_flat)
			memcpy(flat + i * piece, p, piece);
		else
			memcpy(p, flat + i * piece, piece);
	}
}

static int shape_case(const struct shape *s, int m)
{
	size_t span = s->off + s->len + 16 * (s->gap + 1) + PAGE;
	char *area = map_anon(span, MAP_PRIVATE), *flat, *check;
	struct iovx_pt_cmd c;
	long long acq0 = 0, acq1 = 0;
	unsigned expect = m == 2 ? IOVX_PT_MAP_KERNEL :
			  m == 1 ? IOVX_PT_MAP_BOUNCED : s->expect_rust;
	int r;

	if (posix_memalign((void **)&flat, PAGE, s->len) ||
	    posix_memalign((void **)&check, PAGE, s->len))
		return fail("no memory");
	/* Write through the ioctl, read back with O_DIRECT. */
	seed++;
	pat_fill(flat, 0, s->len, seed);
	gather(s, area, flat, 0);
	stat_refresh();
	vmstat_get("nr_foll_pin_acquired", &acq0);
	r = pt_shape(IOVX_PT_WRITE, maps[m].flags, s, area, &c);
	stat_refresh();
	vmstat_get("nr_foll_pin_acquired", &acq1);
	if (r)
		return fail("write: %s (status %#x)", strerror(-r), c.result);
	if (c.mapping != expect)
		return fail("write mapped as %u, expected %u", c.mapping, expect);
	if (expect == IOVX_PT_MAP_BOUNCED && acq1 != acq0)
		return fail("a bounced write pinned %lld pages", acq1 - acq0);
	if (pread(dfd, check, s->len, base_sector << 9) != (ssize_t)s->len)
		return fail("pread: %s", strerror(errno));
	if (memcmp(check, flat, s->len)) {
		long d = pat_diff(check, 0, s->len, seed);
		return fail("O_DIRECT read after the passthrough write differs at byte %ld", d);
	}
	/* Write with O_DIRECT, read through the ioctl. */
	seed++;
	pat_fill(check, 0, s->len, seed);
	if (pwrite(dfd, check, s->len, base_sector << 9) != (ssize_t)s->len)
		return fail("pwrite: %s", strerror(errno));
	memset(area, 0x5a, span);
	stat_refresh();
	vmstat_get("nr_foll_pin_acquired", &acq0);
	r = pt_shape(IOVX_PT_READ, maps[m].flags, s, area, &c);
	stat_refresh();
	vmstat_get("nr_foll_pin_acquired", &acq1);
	if (r)
		return fail("read: %s (status %#x)", strerror(-r), c.result);
	if (c.mapping != expect)
		return fail("read mapped as %u, expected %u", c.mapping, expect);
	if (expect == IOVX_PT_MAP_BOUNCED && acq1 != acq0)
		return fail("a bounced read pinned %lld pages", acq1 - acq0);
	gather(s, area, flat, 1);
	if (memcmp(flat, check, s->len)) {
		long d = pat_diff(flat, 0, s->len, seed);
		return fail("passthrough read differs from the O_DIRECT write at byte %ld", d);
	}
	/* Nothing around the pieces was written. */
	if (s->off && byte_diff(area, s->off, 0x5a) >= 0)
		return fail("the read wrote before the buffer");
	if (s->nvec && s->gap && byte_diff(area + s->off + s->len / s->nvec, s->gap, 0x5a) >= 0)
		return fail("the read wrote into the gap between pieces");
	free(flat);
	free(check);
	munmap(area, span);
	return 0;
}

/*
 * Huge-page buffers: 1 MiB at the start of a 2 MiB hugetlb page or transparent huge page. Their
 * pages follow one another in memory, so a mapping takes one segment per max_segment_size of the
 * queue (64 KiB by default), not one per page, with the Rust mapping as with the kernel's
 * (bio_add_hw_page()); each command pins every page once and unpins it once.
 */
enum huge_kind { HUGE_HUGETLB, HUGE_THP };
static const char *const huge_name[] = { "hugetlb", "thp" };
static long hugetlb_saved = -1;

/* The queue's max_segment_size, from sysfs; 0 if it cannot be read. */
static unsigned long long queue_seg_size(void)
{
	unsigned long long v = 0;
	char path[256];
	struct stat st;

	if (stat(bdev, &st))
		return 0;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/max_segment_size",
		 major(st.st_rdev), minor(st.st_rdev));
	return read_sysfs_uint(path, &v) ? 0 : v;
}

/* At least @n 2 MiB hugetlb pages reserved, the count before kept to restore it at the end. */
static void hugetlb_reserve(long n)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r+");
	long before;

	if (!f)
		return;
	if (fscanf(f, "%ld", &before) == 1 && before < n) {
		if (hugetlb_saved < 0)
			hugetlb_saved = before;
		rewind(f);
		fprintf(f, "%ld\n", n);
	}
	fclose(f);
}

static void hugetlb_restore(void)
{
	FILE *f;

	if (hugetlb_saved < 0)
		return;
	f = fopen("/proc/sys/vm/nr_hugepages", "w");
	if (f) {
		fprintf(f, "%ld\n", hugetlb_saved);
		fclose(f);
	}
	hugetlb_saved = -1;
}

/*
 * A 2 MiB huge page of @k, faulted in: its start in *@buf, what to munmap in *@raw and *@rawlen.
 * 1 (skip, reason set) if the system gives none.
 */
static int huge_get(enum huge_kind k, char **buf, void **raw, size_t *rawlen)
{
	long kib;

	if (k == HUGE_HUGETLB) {
		hugetlb_reserve(2);
		*buf = mmap(NULL, HPAGE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (*buf == MAP_FAILED)
			return skip("no 2 MiB hugetlb page (mmap MAP_HUGETLB: %s)", strerror(errno));
		*raw = *buf;
		*rawlen = HPAGE;
		memset(*buf, 0x11, HPAGE);
		return 0;
	}
	if (thp_pmd_unfit())
		return skip("%s", thp_pmd_unfit());
	*buf = map_thp(HPAGE, raw, rawlen);
	if (!*buf)
		return fail("mmap: %s", strerror(errno));
	memset(*buf, 0x11, HPAGE);
	kib = anon_huge_kib(*buf);
	if (kib < (long)(HPAGE / KiB)) {
		munmap(*raw, *rawlen);
		return skip("AnonHugePages %ld kB, not %lu", kib, HPAGE / KiB);
	}
	return 0;
}

/* nr_foll_pin_acquired and nr_foll_pin_released now. */
static void pins_now(long long *acq, long long *rel)
{
	stat_refresh();
	vmstat_get("nr_foll_pin_acquired", acq);
	vmstat_get("nr_foll_pin_released", rel);
}

/* One command of @len bytes from @buf, checked for its mapping, segments and pins. */
static int huge_cmd(int opcode, int m, char *buf, size_t len, unsigned segs)
{
	unsigned expect = m == 2 ? IOVX_PT_MAP_KERNEL : IOVX_PT_MAP_PINNED;
	long long a0 = 0, r0 = 0, a1 = 0, r1 = 0;
	const char *what = opcode == IOVX_PT_READ ? "read" : "write";
	struct iovx_pt_cmd c;
	int r;

	pins_now(&a0, &r0);
	r = pt(opcode, maps[m].flags, base_sector, buf, len, &c);
	pins_now(&a1, &r1);
	if (r)
		return fail("%s: %s (status %#x)", what, strerror(-r), c.result);
	if (c.mapping != expect)
		return fail("%s mapped as %u, expected %u", what, c.mapping, expect);
	if (c.segments != segs)
		return fail("%s: %u segments for %zu pages, expected %u", what, c.segments,
			    len / PAGE, segs);
	if (a1 - a0 != (long long)(len / PAGE) || r1 - r0 != a1 - a0)
		return fail("%s: %lld pages pinned, %lld unpinned, expected %zu", what, a1 - a0,
			    r1 - r0, len / PAGE);
	return 0;
}

static int huge_case(enum huge_kind k, int m)
{
	const size_t len = 1 * MiB;
	unsigned long long mss = queue_seg_size();
	char *buf = NULL, *check;
	void *raw = NULL;
	size_t rawlen = 0;
	unsigned segs;
	int r;

	if (!mss)
		return fail("no max_segment_size in sysfs for %s", bdev);
	segs = (len + mss - 1) / mss;
	r = huge_get(k, &buf, &raw, &rawlen);
	if (r)
		return r;
	if (posix_memalign((void **)&check, PAGE, len)) {
		munmap(raw, rawlen);
		return fail("no memory");
	}
	/* Write through the ioctl, read back with O_DIRECT. */
	seed++;
	pat_fill(buf, 0, len, seed);
	r = huge_cmd(IOVX_PT_WRITE, m, buf, len, segs);
	if (!r && pread(dfd, check, len, base_sector << 9) != (ssize_t)len)
		r = fail("pread: %s", strerror(errno));
	if (!r && memcmp(check, buf, len))
		r = fail("O_DIRECT read after the passthrough write differs at byte %ld",
			 pat_diff(check, 0, len, seed));
	/* Write with O_DIRECT, read through the ioctl. */
	seed++;
	pat_fill(check, 0, len, seed);
	if (!r && pwrite(dfd, check, len, base_sector << 9) != (ssize_t)len)
		r = fail("pwrite: %s", strerror(errno));
	if (!r) {
		memset(buf, 0x5a, HPAGE);
		r = huge_cmd(IOVX_PT_READ, m, buf, len, segs);
	}
	if (!r && memcmp(buf, check, len))
		r = fail("passthrough read differs from the O_DIRECT write at byte %ld",
			 pat_diff(buf, 0, len, seed));
	if (!r && byte_diff(buf + len, HPAGE - len, 0x5a) >= 0)
		r = fail("the read wrote past the buffer");
	if (!r)
		diag("%s %s: %zu pages in %u segments of up to %llu bytes", huge_name[k], maps[m].name,
		     len / PAGE, segs, mss);
	free(check);
	munmap(raw, rawlen);
	return r;
}

/*
 * --seglimit N (a disk of max_segments N, N + 1 pieces of a page fitting in the 1 MiB of a
 * request): the segments counted after merging meet the limit. A 1 MiB hugetlb buffer (one
 * segment per max_segment_size, at most N) maps with both mappings; N + 1 pieces of user memory
 * that cannot share a segment (each the middle half of a page of its own) are
 * EINVAL with both, nothing left pinned; N of them map into N segments, the bytes right.
 */
static unsigned seg_limit;

static int t_seglimit_pieces(void)
{
	const unsigned n = seg_limit + 1;
	size_t span = n * PAGE;
	char *area = map_anon(span, MAP_PRIVATE);
	struct iovec *iov = calloc(n, sizeof(*iov));
	long long a0 = 0, r0 = 0, a1 = 0, r1 = 0;
	struct iovx_pt_cmd c;
	int r = 0;

	if (!area || !iov)
		return fail("no memory");
	if (n * PAGE / 2 > 1 * MiB)
		return fail("max_segments %u: %u pieces do not fit in a request", seg_limit, n);
	memset(area, 0x5a, span);
	for (unsigned i = 0; i < n; i++) {
		iov[i].iov_base = area + i * PAGE + PAGE / 4;
		iov[i].iov_len = PAGE / 2;
	}
	for (int m = 0; m < 3 && !r; m += 2) {
		pins_now(&a0, &r0);
		int e = pt(IOVX_PT_READ, maps[m].flags | IOVX_PT_F_VEC, base_sector, iov, n, &c);
		pins_now(&a1, &r1);
		if (e != -EINVAL)
			r = fail("%s: %u pieces for %u segments gave %s, not EINVAL", maps[m].name,
				 n, seg_limit, strerror(-e));
		else if (a1 - a0 != r1 - r0)
			r = fail("%s: %lld pinned, %lld unpinned", maps[m].name, a1 - a0, r1 - r0);
	}
	for (int m = 0; m < 3 && !r; m += 2) {
		seed++;
		pat_fill(area, 0, span, seed);
		if (pwrite(dfd, area, (n - 1) * PAGE / 2, base_sector << 9) !=
		    (ssize_t)((n - 1) * PAGE / 2)) {
			r = fail("pwrite: %s", strerror(errno));
			break;
		}
		memset(area, 0x5a, span);
		int e = pt(IOVX_PT_READ, maps[m].flags | IOVX_PT_F_VEC, base_sector, iov, n - 1, &c);
		if (e)
			r = fail("%s: %u pieces: %s", maps[m].name, n - 1, strerror(-e));
		else if (m == 0 && c.segments != n - 1)
			r = fail("%u pieces in %u segments", n - 1, c.segments);
		for (unsigned i = 0; i + 1 < n && !r; i++)
			if (pat_diff(iov[i].iov_base, i * PAGE / 2, PAGE / 2, seed) >= 0)
				r = fail("%s: piece %u read wrong bytes", maps[m].name, i);
	}
	free(iov);
	munmap(area, span);
	return r;
}

static int t_seglimit_hugetlb(void)
{
	unsigned long long mss = queue_seg_size();

	if (!mss || (1 * MiB + mss - 1) / mss > seg_limit)
		return skip("max_segment_size %llu: 1 MiB takes more than %u segments", mss,
			    seg_limit);
	int r = huge_case(HUGE_HUGETLB, 0);

	return r ? r : huge_case(HUGE_HUGETLB, 2);
}

/* A bad input: its errno (and status, if it reaches the device) must be the same for all. */
struct bad {
	const char *name;
	int opcode;
	int want;		/* -errno */
	int status;		/* expected result, or -1 if not checked */
};

static char *ro_page, *none_page, *rw;
static const char *ngdev_path;

static int bad_call(const char *name, unsigned flags, struct iovx_pt_cmd *c)
{
	static struct iovec many[UIO_MAXIOV + 1];

	if (!strcmp(name, "bad_address_read"))
		return pt(IOVX_PT_READ, flags, base_sector, none_page, PAGE, c);
	if (!strcmp(name, "bad_address_write"))
		return pt(IOVX_PT_WRITE, flags, base_sector, none_page, PAGE, c);
	if (!strcmp(name, "bad_address_misaligned_write"))
		return pt(IOVX_PT_WRITE, flags, base_sector, none_page + 8, 512, c);
	if (!strcmp(name, "readonly_buffer_read"))
		return pt(IOVX_PT_READ, flags, base_sector, ro_page, PAGE, c);
	if (!strcmp(name, "readonly_misaligned_read"))
		return pt(IOVX_PT_READ, flags, base_sector, ro_page + 8, 512, c);
	if (!strcmp(name, "too_many_segments")) {
		for (int i = 0; i <= UIO_MAXIOV; i++) {
			many[i].iov_base = rw + (i % 64) * 512;
			many[i].iov_len = 512;
		}
		return pt(IOVX_PT_READ, flags | IOVX_PT_F_VEC, base_sector, many, UIO_MAXIOV + 1, c);
	}
	if (!strcmp(name, "too_many_bytes"))
		return pt(IOVX_PT_READ, flags, base_sector, rw, 2 * MiB, c);
	if (!strcmp(name, "zero_length"))
		return pt(IOVX_PT_READ, flags, base_sector, rw, 0, c);
	if (!strcmp(name, "zero_length_vec"))
		return pt(IOVX_PT_WRITE, flags | IOVX_PT_F_VEC, base_sector, many, 0, c);
	if (!strcmp(name, "not_block_multiple"))
		return pt(IOVX_PT_READ, flags, base_sector, rw, 1000, c);
	if (!strcmp(name, "not_block_multiple_write"))
		return pt(IOVX_PT_WRITE, flags, base_sector, rw, 4096 + 100, c);
	if (!strcmp(name, "beyond_the_end"))
		return pt(IOVX_PT_READ, flags, (g.size >> 9) - 1, rw, 4096, c);
	if (!strcmp(name, "beyond_the_end_write"))
		return pt(IOVX_PT_WRITE, flags, g.size >> 9, rw, 4096, c);
	if (!strcmp(name, "unknown_opcode"))
		return pt(0x7f, flags, 0, rw, 4096, c);
	if (!strcmp(name, "unknown_flag"))
		return pt(IOVX_PT_IDENTIFY, flags | 0x100, 0, rw, 4096, c);
	return -ENOSYS;
}

static const struct bad bads[] = {
	{ "bad_address_read", IOVX_PT_READ, -EFAULT, -1 },
	{ "bad_address_write", IOVX_PT_WRITE, -EFAULT, -1 },
	{ "bad_address_misaligned_write", IOVX_PT_WRITE, -EFAULT, -1 },
	{ "readonly_buffer_read", IOVX_PT_READ, -EFAULT, -1 },
	{ "readonly_misaligned_read", IOVX_PT_READ, -EFAULT, IOVX_PT_SC_SUCCESS },
	{ "too_many_segments", IOVX_PT_READ, -EINVAL, -1 },
	{ "too_many_bytes", IOVX_PT_READ, -EINVAL, -1 },
	{ "zero_length", IOVX_PT_READ, -EINVAL, -1 },
	{ "zero_length_vec", IOVX_PT_WRITE, -EINVAL, -1 },
	{ "not_block_multiple", IOVX_PT_READ, -EINVAL, IOVX_PT_SC_INVALID_FIELD },
	{ "not_block_multiple_write", IOVX_PT_WRITE, -EINVAL, -1 },
	{ "beyond_the_end", IOVX_PT_READ, -EINVAL, IOVX_PT_SC_LBA_RANGE },
	{ "beyond_the_end_write", IOVX_PT_WRITE, -EINVAL, IOVX_PT_SC_LBA_RANGE },
	{ "unknown_opcode", 0x7f, -EOPNOTSUPP, IOVX_PT_SC_INVALID_OPCODE },
	{ "unknown_flag", IOVX_PT_IDENTIFY, -EINVAL, -1 },
};

static int bad_case(const struct bad *b)
{
	int got[3];
	unsigned status[3];

	for (int m = 0; m < 3; m++) {
		struct iovx_pt_cmd c = { 0 };

		got[m] = bad_call(b->name, maps[m].flags, &c);
		status[m] = c.result;
		if (got[m] != b->want)
			return fail("%s mapping: %s, expected %s", maps[m].name,
				    got[m] ? strerror(-got[m]) : "success", strerror(-b->want));
		if (b->status >= 0 && c.result != (unsigned)b->status)
			return fail("%s mapping: status %#x, expected %#x", maps[m].name, c.result,
				    b->status);
	}
	if (b->status >= 0 && (status[0] != status[2] || status[1] != status[2]))
		return fail("statuses differ: %#x %#x %#x", status[0], status[1], status[2]);
	return 0;
}

static int t_readonly_open(void)
{
	int ro = open(bdev, O_RDONLY);
	struct iovx_pt_cmd c = { .opcode = IOVX_PT_WRITE, .sector = base_sector,
				 .addr = (uintptr_t)rw, .len = 4096 };

	if (ro < 0)
		return fail("open: %s", strerror(errno));
	if (ioctl(ro, IOVX_IOC_PT, &c) == 0 || errno != EBADF)
		return fail("a write on a read-only open: %s, expected EBADF",
			    strerror(errno));
	c.opcode = IOVX_PT_READ;
	if (ioctl(ro, IOVX_IOC_PT, &c))
		return fail("a read on a read-only open: %s", strerror(errno));
	close(ro);
	return 0;
}

/* Many commands in flight at once, reads and writes with the three mappings, checked against
 * O_DIRECT. */
#define MANY 48
/*
 * The buffer of command i in an area of commands of len bytes each, a page apart: every third
 * one 8 bytes into its slot (a misaligned buffer, which the mappings bounce).
 */
static char *many_buf(char *area, int i, size_t len)
{
	return area + i * (len + PAGE) + (i % 3 == 1 ? 8 : 0);
}

/*
 * For writes, fills the buffer of command i of n with the pattern of s + i; for reads, the whole
 * area with 0x5a.
 */
static void many_fill(char *area, int n, size_t len, bool writes, uint32_t s)
{
	if (!writes) {
		memset(area, 0x5a, n * (len + PAGE));
		return;
	}
	for (int i = 0; i < n; i++)
		pat_fill(many_buf(area, i, len), 0, len, s + i);
}

static int t_uring_many(void)
{
	size_t len = 8 * KiB;
	char *area = map_anon(MANY * (len + PAGE), MAP_PRIVATE), *check;
	unsigned done = 0;

	if (posix_memalign((void **)&check, PAGE, MANY * len))
		return fail("no memory");
	/* Writes: command i writes len bytes at sector base + i * len / 512. */
	for (int pass = 0; pass < 2; pass++) {
		int opcode = pass ? IOVX_PT_READ : IOVX_PT_WRITE;

		seed++;
		many_fill(area, MANY, len, !pass, seed);
		for (int i = 0; i < MANY; i++) {
			struct iovx_pt_cmd c = {
				.opcode = opcode,
				.flags = maps[i % 3].flags,
				.sector = base_sector + i * (len >> 9),
				.addr = (uintptr_t)many_buf(area, i, len),
				.len = len,
			};

			if (uring_queue(&ring, ngfd, &c, i))
				return fail("no room in the ring");
		}
		if (io_uring_submit(&ring) != MANY)
			return fail("io_uring_submit did not take %d commands", MANY);
		for (int i = 0; i < MANY; i++) {
			uint64_t tag, extra;
			int r = uring_reap(&ring, &tag, &extra);

			if (r < 0)
				return fail("command %llu: %s", (unsigned long long)tag, strerror(-r));
			done |= 1;
		}
		if (!pass) {
			if (pread(dfd, check, MANY * len, base_sector << 9) != (ssize_t)(MANY * len))
				return fail("pread: %s", strerror(errno));
			for (int i = 0; i < MANY; i++) {
				long d = pat_diff(check + i * len, 0, len, seed + i);

				if (d >= 0)
					return fail("write %d (%s) differs at byte %ld", i,
						    maps[i % 3].name, d);
			}
		} else {
			for (int i = 0; i < MANY; i++) {
				char *p = many_buf(area, i, len);

				if (memcmp(p, check + i * len, len))
					return fail("read %d (%s) differs from the O_DIRECT read", i,
						    maps[i % 3].name);
			}
		}
	}
	free(check);
	munmap(area, MANY * (len + PAGE));
	return done ? 0 : fail("nothing completed");
}

static int t_uring_readonly_open(void)
{
	struct io_uring r;
	struct iovx_pt_cmd c = { .opcode = IOVX_PT_WRITE, .sector = base_sector,
				 .addr = (uintptr_t)rw, .len = 4096 };
	uint64_t tag, extra;
	int ro = open(ngdev_path, O_RDONLY), e;

	if (ro < 0)
		return fail("open: %s", strerror(errno));
	if (io_uring_queue_init(4, &r, IORING_SETUP_SQE128 | IORING_SETUP_CQE32))
		return fail("io_uring_queue_init");
	uring_queue(&r, ro, &c, 0);
	io_uring_submit(&r);
	e = uring_reap(&r, &tag, &extra);
	if (e != -EBADF)
		return fail("a write on a read-only open: %s, expected EBADF", strerror(-e));
	c.opcode = IOVX_PT_READ;
	uring_queue(&r, ro, &c, 0);
	io_uring_submit(&r);
	e = uring_reap(&r, &tag, &extra);
	if (e)
		return fail("a read on a read-only open: %s", strerror(-e));
	io_uring_queue_exit(&r);
	close(ro);
	return 0;
}

/* A ring with 64-byte entries has no room for the command: EOPNOTSUPP, as NVMe answers. */
static int t_uring_small_sqe(void)
{
	struct io_uring r;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int e;

	if (io_uring_queue_init(4, &r, 0))
		return fail("io_uring_queue_init");
	sqe = io_uring_get_sqe(&r);
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, ngfd, NULL, 0, 0);
	sqe->cmd_op = IOVX_URING_CMD_PT;
	io_uring_submit(&r);
	if (io_uring_wait_cqe(&r, &cqe))
		return fail("io_uring_wait_cqe");
	e = cqe->res;
	io_uring_cqe_seen(&r, cqe);
	io_uring_queue_exit(&r);
	if (e != -EOPNOTSUPP)
		return fail("got %s, expected EOPNOTSUPP", e < 0 ? strerror(-e) : "success");
	return 0;
}

/*
 * On a disk that completes late: commands in flight keep the module (delete_module() fails
 * with EWOULDBLOCK) and complete with the right data; once they are done it could go.
 */
static const char *module_name;
static int t_uring_busy_module(void)
{
	enum { N = 16 };
	size_t len = 4 * KiB;
	char *area = map_anon(N * (len + PAGE), MAP_PRIVATE), *check;
	int refused = 0;

	if (posix_memalign((void **)&check, PAGE, N * len))
		return fail("no memory");
	seed++;
	pat_fill(check, 0, N * len, seed);
	if (pwrite(dfd, check, N * len, base_sector << 9) != (ssize_t)(N * len))
		return fail("pwrite: %s", strerror(errno));
	memset(area, 0x5a, N * (len + PAGE));
	/* Only the io_uring device stays open: it alone must keep the module. */
	close(dfd);
	close(fd);
	dfd = fd = -1;
	for (int i = 0; i < N; i++) {
		struct iovx_pt_cmd c = {
			.opcode = IOVX_PT_READ,
			.flags = maps[i % 3].flags,
			.sector = base_sector + i * (len >> 9),
			.addr = (uintptr_t)many_buf(area, i, len),
			.len = len,
		};

		uring_queue(&ring, ngfd, &c, i);
	}
	if (io_uring_submit(&ring) != N)
		return fail("io_uring_submit");
	if (syscall(SYS_delete_module, module_name, O_NONBLOCK) == 0)
		return fail("the module was unloaded with commands in flight");
	if (errno != EWOULDBLOCK)
		return fail("delete_module: %s, expected EWOULDBLOCK", strerror(errno));
	refused = 1;
	for (int i = 0; i < N; i++) {
		uint64_t tag, extra;
		int r = uring_reap(&ring, &tag, &extra);

		if (r < 0)
			return fail("command %llu: %s", (unsigned long long)tag, strerror(-r));
		if (tag >= N)
			return fail("bad tag %llu", (unsigned long long)tag);
	}
	for (int i = 0; i < N; i++) {
		char *p = many_buf(area, i, len);

		if (memcmp(p, check + i * len, len))
			return fail("read %d (%s) differs from the O_DIRECT write", i, maps[i % 3].name);
	}
	free(check);
	munmap(area, N * (len + PAGE));
	return refused ? 0 : fail("not refused");
}

/*
 * A ring whose task work runs only when the task asks for completions
 * (IORING_SETUP_DEFER_TASKRUN): what the completion of a command does in the submitting task
 * happens inside io_uring_wait_cqe(), and nothing of it before.
 */
static int deferred_ring(struct io_uring *r)
{
	return io_uring_queue_init(8, r, IORING_SETUP_SQE128 | IORING_SETUP_CQE32 |
				   IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

/*
 * Bounced reads (forced, and misaligned) complete with the right bytes while the submitter is
 * busy elsewhere (spinning in user space past the disk's delay), and are copied back by the
 * submitting task itself: with a deferred task-work ring, the buffer is untouched until the
 * task reaps the completions.
 */
static int t_uring_copy_back_in_submitter(void)
{
	enum { N = 4 };
	size_t len = 8 * KiB;
	char *area = map_anon(N * (len + PAGE), MAP_PRIVATE), *check;
	struct io_uring r;
	volatile unsigned long spin = 0;
	uint64_t t0;
	int d;

	if (!area || posix_memalign((void **)&check, PAGE, N * len))
		return fail("no memory");
	if (deferred_ring(&r))
		return fail("io_uring_queue_init with IORING_SETUP_DEFER_TASKRUN");
	seed++;
	pat_fill(check, 0, N * len, seed);
	/* uring_busy_module closed the program's own files. */
	d = open_direct(bdev, O_RDWR);
	if (d < 0 || pwrite(d, check, N * len, base_sector << 9) != (ssize_t)(N * len))
		return fail("pwrite: %s", strerror(errno));
	close(d);
	memset(area, 0x5a, N * (len + PAGE));
	for (int i = 0; i < N; i++) {
		struct iovx_pt_cmd c = {
			.opcode = IOVX_PT_READ,
			.flags = i % 2 ? 0 : IOVX_PT_F_BOUNCE,
			.sector = base_sector + i * (len >> 9),
			.addr = (uintptr_t)(area + i * (len + PAGE) + (i % 2 ? 8 : 0)),
			.len = len,
		};

		uring_queue(&r, ngfd, &c, i);
	}
	if (io_uring_submit(&r) != N)
		return fail("io_uring_submit");
	/* Busy in user space well past the disk's delay: the requests end meanwhile. */
	t0 = mono_ms();
	while (mono_ms() - t0 < 1000)
		spin++;
	for (size_t k = 0; k < N * (len + PAGE); k++)
		if ((unsigned char)area[k] != 0x5a)
			return fail("byte %zu written before the submitter reaped its completions "
				    "(the copy back ran outside the submitting task)", k);
	for (int i = 0; i < N; i++) {
		uint64_t tag, extra;
		int e = uring_reap(&r, &tag, &extra);

		if (e || (uint32_t)extra != IOVX_PT_SC_SUCCESS)
			return fail("command %llu: %d (%s), status %#x", (unsigned long long)tag, e,
				    strerror(-e), (uint32_t)extra);
		if (((extra >> 32) & 0xff) != IOVX_PT_MAP_BOUNCED)
			return fail("command %llu was not bounced", (unsigned long long)tag);
	}
	for (int i = 0; i < N; i++) {
		char *p = area + i * (len + PAGE) + (i % 2 ? 8 : 0);

		if (memcmp(p, check + i * len, len))
			return fail("read %d differs from the O_DIRECT write", i);
	}
	io_uring_queue_exit(&r);
	free(check);
	munmap(area, N * (len + PAGE));
	return 0;
}

/*
 * A bounced read whose buffer is unmapped while the request is in flight (after it was
 * mapped, before its completion is reaped) ends with EFAULT, and nothing is written around
 * it: the pages before and after the buffer keep their bytes.
 */
static int t_uring_munmap_before_reap(void)
{
	size_t len = 2 * PAGE;
	char *area = map_anon(len + 2 * PAGE, MAP_PRIVATE);
	struct io_uring r;
	struct iovx_pt_cmd c = {
		.opcode = IOVX_PT_READ,
		.flags = IOVX_PT_F_BOUNCE,
		.sector = base_sector,
		.len = len,
	};
	uint64_t tag, extra;
	int e;

	if (!area)
		return fail("no memory");
	if (deferred_ring(&r))
		return fail("io_uring_queue_init with IORING_SETUP_DEFER_TASKRUN");
	memset(area, 0x33, len + 2 * PAGE);
	c.addr = (uintptr_t)(area + PAGE);
	uring_queue(&r, ngfd, &c, 7);
	if (io_uring_submit(&r) != 1)
		return fail("io_uring_submit");
	/* Mapped (at submission) well before the disk's delay is over. */
	usleep(50 * 1000);
	if (munmap(area + PAGE, len))
		return fail("munmap: %s", strerror(errno));
	e = uring_reap(&r, &tag, &extra);
	if (((extra >> 32) & 0xff) != IOVX_PT_MAP_BOUNCED)
		return fail("the read was not mapped as a bounce before the munmap (%d)", e);
	if (e != -EFAULT)
		return fail("completion %d (%s), expected EFAULT", e, e < 0 ? strerror(-e) : "");
	for (size_t k = 0; k < PAGE; k++)
		if ((unsigned char)area[k] != 0x33 || (unsigned char)area[len + PAGE + k] != 0x33)
			return fail("a byte next to the unmapped buffer was written");
	io_uring_queue_exit(&r);
	munmap(area, PAGE);
	munmap(area + PAGE + len, PAGE);
	return 0;
}

/* Sums the driver tags of the hardware queues of the disk of bdev (/sys/block/NAME/mq). */
static int disk_tags(void)
{
	const char *name = strrchr(bdev, '/') ? strrchr(bdev, '/') + 1 : bdev;
	int total = 0;

	for (int q = 0; q < 64; q++) {
		char path[256], buf[32] = "";
		int f;

		snprintf(path, sizeof(path), "/sys/block/%s/mq/%d/nr_tags", name, q);
		f = open(path, O_RDONLY);
		if (f < 0)
			break;
		if (read(f, buf, sizeof(buf) - 1) > 0)
			total += atoi(buf);
		close(f);
	}
	return total;
}

/*
 * Makes the I/O scheduler of the disk of bdev "none" (a block read then takes a driver tag
 * as it is made, and RWF_NOWAIT fails at once without one), saving the one selected in
 * @saved (empty if it was "none" already). 0 on success.
 */
static int disk_sched_none(char *saved, size_t size)
{
	const char *name = strrchr(bdev, '/') ? strrchr(bdev, '/') + 1 : bdev;
	char path[256], buf[256] = "", *l, *r;
	int f, ok;

	saved[0] = 0;
	snprintf(path, sizeof(path), "/sys/block/%s/queue/scheduler", name);
	f = open(path, O_RDWR);
	if (f < 0)
		return -1;
	if (read(f, buf, sizeof(buf) - 1) <= 0 || !(l = strchr(buf, '[')) || !(r = strchr(l, ']'))) {
		close(f);
		return -1;
	}
	*r = 0;
	if (!strcmp(l + 1, "none")) {
		close(f);
		return 0;
	}
	snprintf(saved, size, "%s", l + 1);
	ok = pwrite(f, "none", 4, 0) == 4;
	close(f);
	return ok ? 0 : -1;
}

/* Gives the disk of bdev back the scheduler disk_sched_none() saved. */
static void disk_sched_restore(const char *saved)
{
	const char *name = strrchr(bdev, '/') ? strrchr(bdev, '/') + 1 : bdev;
	char path[256];
	int f;

	if (!saved[0])
		return;
	snprintf(path, sizeof(path), "/sys/block/%s/queue/scheduler", name);
	f = open(path, O_WRONLY);
	if (f >= 0) {
		if (pwrite(f, saved, strlen(saved), 0) < 0)
			printf("# restoring the scheduler %s: %s\n", saved, strerror(errno));
		close(f);
	}
}

static void on_alarm(int sig)
{
	(void)sig;
}

/*
 * Commands that ended but were not reaped hold no tag: on a deferred task-work ring, more
 * reads than the disk has tags are submitted and left unreaped (their completions, which run
 * as task work of this thread, cannot run until it waits for them); the thread then reads the
 * disk with O_DIRECT. That read must get a tag: first without waiting (RWF_NOWAIT, retried
 * for 2 s while requests still in flight end), then blocking under alarm(). Were a command's
 * request kept until its task work, every tag would stay taken, the RWF_NOWAIT read would fail
 * with EAGAIN for ever and a blocking read sleep for ever (uninterruptibly, in the tag wait).
 * The thread and io_uring's workers run on one CPU, whose hardware queue they all use. Then
 * every command is reaped and checked byte for byte.
 */
static int t_uring_unreaped_hold_no_tag(void)
{
	const size_t len = 4 * KiB;
	int tags = disk_tags(), n, e, err = 0;
	char *area, *check, *one;
	struct io_uring r;
	struct io_uring_params prm = {
		.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQE32 | IORING_SETUP_SINGLE_ISSUER |
			 IORING_SETUP_DEFER_TASKRUN,
	};
	struct sigaction sa = { .sa_handler = on_alarm }, old_sa;
	struct iovec iov;
	char sched[64];
	long long acq0 = 0, acq = 0;
	cpu_set_t cpus, old_cpus;
	uint64_t t0;
	ssize_t got = -1;
	unsigned reaped = 0;

	if (tags <= 0)
		return fail("no /sys/block/.../mq/*/nr_tags for %s", bdev);
	n = tags + 16;
	area = map_anon(n * len, MAP_PRIVATE);
	if (!area || posix_memalign((void **)&check, PAGE, n * len) ||
	    posix_memalign((void **)&one, PAGE, len))
		return fail("no memory");
	/* The blocks read, written first through the block device. */
	seed++;
	for (int i = 0; i < n; i++)
		pat_fill(check + i * len, 0, len, seed + i);
	if (pwrite(dfd, check, n * len, base_sector << 9) != (ssize_t)(n * len))
		return fail("pwrite: %s", strerror(errno));
	memset(area, 0x5a, n * len);
	if (sched_getaffinity(0, sizeof(old_cpus), &old_cpus))
		return fail("sched_getaffinity: %s", strerror(errno));
	CPU_ZERO(&cpus);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &cpus);
	if (sched_setaffinity(0, sizeof(cpus), &cpus))
		return fail("sched_setaffinity: %s", strerror(errno));
	e = io_uring_queue_init_params(n, &r, &prm);
	if (e)
		return fail("io_uring_queue_init_params with IORING_SETUP_DEFER_TASKRUN: %s",
			    strerror(-e));
	e = io_uring_register_iowq_aff(&r, sizeof(cpus), &cpus);
	if (e)
		return fail("io_uring_register_iowq_aff: %s", strerror(-e));
	if (disk_sched_none(sched, sizeof(sched))) {
		disk_sched_restore(sched);
		return skip("cannot make the I/O scheduler of %s none", bdev);
	}
	if (sched[0])
		diag("scheduler %s of %s set to none for the case", sched, bdev);
	if (vmstat_get("nr_foll_pin_acquired", &acq0)) {
		disk_sched_restore(sched);
		return skip("no nr_foll_pin_acquired in /proc/vmstat");
	}
	for (int i = 0; i < n; i++) {
		struct iovx_pt_cmd c = {
			.opcode = IOVX_PT_READ,
			.sector = base_sector + i * (len >> 9),
			.addr = (uintptr_t)(area + i * len),
			.len = len,
		};

		if (uring_queue(&r, ngfd, &c, i)) {
			disk_sched_restore(sched);
			return fail("no room in the ring");
		}
	}
	if ((e = io_uring_submit(&r)) != n) {
		disk_sched_restore(sched);
		return fail("io_uring_submit took %d of %d commands", e, n);
	}
	/*
	 * Wait until as many commands as the disk has tags are mapped (each pins its page with
	 * its request allocated), or no more are for half a second (the rest wait for a tag of
	 * the one hardware queue of this CPU): commands issued by io_uring's workers may not
	 * have run yet, and a read made before they take the tags would prove nothing.
	 */
	t0 = mono_ms();
	for (long long last = -1, still = 0; mono_ms() - t0 < 10000 && still < 50; last = acq) {
		if (vmstat_get("nr_foll_pin_acquired", &acq) || acq - acq0 >= tags)
			break;
		still = acq == last ? still + 1 : 0;
		usleep(10 * 1000);
	}
	diag("%lld of %d commands mapped before the read", acq - acq0, n);
	/* Not reaped: a read of the disk from this thread, first without waiting for a tag. */
	iov.iov_base = one;
	iov.iov_len = len;
	t0 = mono_ms();
	while ((got = preadv2(dfd, &iov, 1, base_sector << 9, RWF_NOWAIT)) < 0 &&
	       errno == EAGAIN && mono_ms() - t0 < 2000)
		usleep(10 * 1000);
	if (got != (ssize_t)len) {
		err = fail("with %d commands ended but not reaped (%d tags), a RWF_NOWAIT O_DIRECT "
			   "read gives %zd (%s) for 2 s: their requests hold the tags", n, tags,
			   got, got < 0 ? strerror(errno) : "short");
	} else {
		/* And blocking, the real case, under an alarm (which cannot end a tag wait). */
		sigaction(SIGALRM, &sa, &old_sa);
		alarm(20);
		got = pread(dfd, one, len, base_sector << 9);
		e = errno;
		alarm(0);
		sigaction(SIGALRM, &old_sa, NULL);
		if (got != (ssize_t)len)
			err = fail("O_DIRECT read with the commands unreaped: %zd (%s)", got,
				   got < 0 ? strerror(e) : "short");
		else if (memcmp(one, check, len))
			err = fail("O_DIRECT read with the commands unreaped: wrong bytes");
	}
	/* Reaped now (which also ends the test without leaving requests behind if it failed). */
	for (int i = 0; i < n; i++) {
		uint64_t tag, extra;
		int rr = uring_reap(&r, &tag, &extra);

		if (rr < 0 && !err)
			err = fail("command %llu: %s", (unsigned long long)tag, strerror(-rr));
		else if (rr >= 0)
			reaped++;
	}
	io_uring_queue_exit(&r);
	sched_setaffinity(0, sizeof(old_cpus), &old_cpus);
	if (!err && reaped != (unsigned)n)
		err = fail("%u of %d commands completed", reaped, n);
	for (int i = 0; !err && i < n; i++)
		if (memcmp(area + i * len, check + i * len, len))
			err = fail("read %d differs from the O_DIRECT write", i);
	free(one);
	free(check);
	munmap(area, n * len);
	disk_sched_restore(sched);
	return err;
}

/*
 * The last other wait channel seen of an io_uring worker, how many workers were seen, and in how
 * many looks.
 */
static char worker_wchan[64];
static int workers_seen, worker_looks;

/*
 * Counts the io_uring workers of this process (threads named iou-wrk-*) that sleep waiting for
 * a tag of a queue (their wchan is blk_mq_get_tag).
 */
static int workers_waiting_for_tag(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int waiting = 0;

	if (!d)
		return 0;
	worker_looks++;
	while ((e = readdir(d))) {
		char path[320], comm[64] = "", wchan[64] = "";
		int f;
		ssize_t k;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = open(path, O_RDONLY);
		if (f < 0)
			continue;
		k = read(f, comm, sizeof(comm) - 1);
		close(f);
		if (k <= 0 || strncmp(comm, "iou-wrk-", 8))
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/wchan", e->d_name);
		f = open(path, O_RDONLY);
		if (f < 0)
			continue;
		k = read(f, wchan, sizeof(wchan) - 1);
		close(f);
		workers_seen++;
		if (k > 0 && !strncmp(wchan, "blk_mq_get_tag", 14))
			waiting++;
		else if (k > 0 && strcmp(wchan, "0"))
			memcpy(worker_wchan, wchan, sizeof(wchan));
	}
	closedir(d);
	return waiting;
}

/*
 * --retry (run on a disk with few tags, one hardware queue, that completes requests late):
 * io_uring issues a command first without blocking (IO_URING_F_NONBLOCK); its request is then
 * allocated without waiting for a tag (BLK_MQ_REQ_NOWAIT) and, none being free, the command
 * answers EAGAIN so that io_uring's worker issues it again, blocking. RETRY_PER_TAG times as
 * many writes as the disk has tags, then as many reads, the three mappings in turn, are
 * submitted in one io_uring_enter() each: the first take every tag, the others find none.
 * Every command must complete successfully (none with EAGAIN) with the bytes of the block
 * device read with O_DIRECT (or written by it); io_uring_submit() returns before the commands
 * waited for tags (a submission that waited would sleep once a round of tags, RETRY_PER_TAG - 1
 * times or more: more than half of that fails); the whole takes at least as many of the disk's
 * delays as commands per tag; and the pins balance. io_uring's workers sleeping for a tag
 * (their wchan) are reported.
 */
#define RETRY_PER_TAG 8
static int t_uring_nonblock_retry(void)
{
	const size_t len = 8 * KiB;
	int tags = disk_tags(), n, e, err = 0;
	unsigned long long delay_us = 0;
	char *area, *check, sched[64];
	struct io_uring r;

	if (tags <= 0)
		return fail("no /sys/block/.../mq/*/nr_tags for %s", bdev);
	if (read_sysfs_uint("/sys/module/iov_extract/parameters/delay_us", &delay_us) ||
	    delay_us < 20000)
		return fail("the disk has no completion delay of 20 ms or more (%llu us)", delay_us);
	n = RETRY_PER_TAG * tags;
	if (n > 1024)
		return skip("%d tags: too many for the case (reload with queue_depth=4)", tags);
	area = map_anon(n * (len + PAGE), MAP_PRIVATE);
	if (!area || posix_memalign((void **)&check, PAGE, n * len))
		return fail("no memory");
	e = io_uring_queue_init(n, &r, IORING_SETUP_SQE128 | IORING_SETUP_CQE32);
	if (e)
		return fail("io_uring_queue_init: %s", strerror(-e));
	if (disk_sched_none(sched, sizeof(sched))) {
		disk_sched_restore(sched);
		return skip("cannot make the I/O scheduler of %s none", bdev);
	}
	if (sched[0])
		diag("scheduler %s of %s set to none for the case", sched, bdev);
	for (int pass = 0; pass < 2 && !err; pass++) {
		int opcode = pass ? IOVX_PT_READ : IOVX_PT_WRITE, waiting = 0, eagain = 0;
		unsigned reaped = 0, ready;
		uint64_t t0, ms, submit_ms;
		struct rusage ru0, ru1;
		long slept;

		workers_seen = 0;
		worker_looks = 0;
		worker_wchan[0] = 0;
		seed++;
		many_fill(area, n, len, !pass, seed);
		for (int i = 0; i < n; i++) {
			struct iovx_pt_cmd c = {
				.opcode = opcode,
				.flags = maps[i % 3].flags,
				.sector = base_sector + i * (len >> 9),
				.addr = (uintptr_t)many_buf(area, i, len),
				.len = len,
			};

			if (uring_queue(&r, ngfd, &c, i)) {
				err = fail("no room in the ring");
				break;
			}
		}
		if (err)
			break;
		getrusage(RUSAGE_THREAD, &ru0);
		t0 = mono_ms();
		if ((e = io_uring_submit(&r)) != n) {
			err = fail("io_uring_submit took %d of %d commands", e, n);
			break;
		}
		submit_ms = mono_ms() - t0;
		getrusage(RUSAGE_THREAD, &ru1);
		slept = ru1.ru_nvcsw - ru0.ru_nvcsw;
		ready = io_uring_cq_ready(&r);
		/* Reaped as they come; meanwhile, the workers waiting for a tag. */
		while (reaped < (unsigned)n && mono_ms() - t0 < 60000) {
			struct io_uring_cqe *cqe;

			if (io_uring_peek_cqe(&r, &cqe)) {
				int w = workers_waiting_for_tag();

				waiting = w > waiting ? w : waiting;
				usleep(2000);
				continue;
			}
			if (cqe->res == -EAGAIN)
				eagain++;
			if (cqe->res < 0 && !err)
				err = fail("%s %llu: %s", pass ? "read" : "write",
					   (unsigned long long)cqe->user_data, strerror(-cqe->res));
			else if (cqe->res >= 0 && (uint32_t)cqe->big_cqe[0] != IOVX_PT_SC_SUCCESS &&
				 !err)
				err = fail("%s %llu: status %#x", pass ? "read" : "write",
					   (unsigned long long)cqe->user_data,
					   (uint32_t)cqe->big_cqe[0]);
			reaped++;
			io_uring_cqe_seen(&r, cqe);
		}
		ms = mono_ms() - t0;
		diag("%s: %d commands, %d tags: submitted in %llu ms (%ld sleeps), %u ready at once "
		     "after the submission, %d workers at most seen waiting for a tag (%d sightings "
		     "of a worker in %d looks), %llu ms (delay %llu ms)",
		     pass ? "reads" : "writes", n, tags, (unsigned long long)submit_ms, slept, ready,
		     waiting, workers_seen, worker_looks, (unsigned long long)ms, delay_us / 1000);
		if (eagain)
			diag("%d commands ended with EAGAIN: not issued again", eagain);
		if (reaped != (unsigned)n) {
			err = fail("%u of %d commands completed in 60 s", reaped, n);
			break;
		}
		if (err)
			break;
		/*
		 * Submitted without waiting for tags: a submission that waited for them itself
		 * would sleep for each round of them, a round a delay, as many rounds as there are
		 * commands per tag but the first (7): the submitting thread's voluntary context
		 * switches (a sleep; a preemption is involuntary) must stay at half of that or
		 * below (one that did not wait sleeps only by chance, for memory say). Its time
		 * and the commands complete when it returned are only reported: on a host that
		 * runs the guest slowly a submission that did not wait took 694 ms and 845 ms
		 * for 32 commands (none and 26 of them complete when it returned). The workers'
		 * wait channel is only reported: sampling it every 2 ms may miss them on such a
		 * host.
		 */
		if (!waiting)
			diag("no io_uring worker seen waiting for a tag (last other wait channel: %s)",
			     worker_wchan[0] ? worker_wchan : "none");
		if (slept > (RETRY_PER_TAG - 1) / 2)
			err = fail("io_uring_submit() slept %ld times in %llu ms (%u of %d commands "
				   "complete when it returned): the submission waited for tags",
				   slept, (unsigned long long)submit_ms, ready, n);
		else if (ms < (unsigned long long)RETRY_PER_TAG * (delay_us / 1000))
			err = fail("%d commands on %d tags took %llu ms, less than %d delays of %llu ms",
				   n, tags, (unsigned long long)ms, RETRY_PER_TAG, delay_us / 1000);
		else if (!pass) {
			if (pread(dfd, check, n * len, base_sector << 9) != (ssize_t)(n * len))
				err = fail("pread: %s", strerror(errno));
			for (int i = 0; !err && i < n; i++) {
				long d = pat_diff(check + i * len, 0, len, seed + i);

				if (d >= 0)
					err = fail("write %d (%s) differs at byte %ld", i,
						   maps[i % 3].name, d);
			}
		} else {
			for (int i = 0; !err && i < n; i++) {
				char *p = many_buf(area, i, len);

				if (memcmp(p, check + i * len, len))
					err = fail("read %d (%s) differs from the O_DIRECT read", i,
						   maps[i % 3].name);
			}
		}
	}
	io_uring_queue_exit(&r);
	disk_sched_restore(sched);
	free(check);
	munmap(area, n * (len + PAGE));
	return err ? err : check_vmstat_pins_quiet(0);
}

/* The module's reference count (/sys/module/NAME/refcnt), or -1. */
static long module_refcnt(void)
{
	char path[256], buf[32] = "";
	int f;
	long v = -1;

	snprintf(path, sizeof(path), "/sys/module/%s/refcnt", module_name);
	f = open(path, O_RDONLY);
	if (f >= 0) {
		if (read(f, buf, sizeof(buf) - 1) > 0)
			v = strtol(buf, NULL, 10);
		close(f);
	}
	return v;
}

/* How a submitter with bounced reads in flight goes. */
enum exit_how { EXIT_AFTER_SUBMIT, EXIT_KILLED, EXIT_FROM_THREAD };
#define EXIT_N 32
static int exit_pipe[2];

/* Submits EXIT_N bounced reads on a ring of its own; 0 once they are all taken. */
static int exit_submit(void)
{
	size_t len = 4 * KiB;
	char *area = map_anon(EXIT_N * (len + PAGE), MAP_PRIVATE);
	struct io_uring r;
	int nfd = open(ngdev_path, O_RDWR);

	if (!area || nfd < 0 || io_uring_queue_init(64, &r, IORING_SETUP_SQE128 | IORING_SETUP_CQE32))
		return -1;
	for (int i = 0; i < EXIT_N; i++) {
		struct iovx_pt_cmd c = {
			.opcode = IOVX_PT_READ,
			.flags = i % 2 ? 0 : IOVX_PT_F_BOUNCE,
			.sector = base_sector + i * (len >> 9),
			.addr = (uintptr_t)(area + i * (len + PAGE) + (i % 2 ? 8 : 0)),
			.len = len,
		};

		uring_queue(&r, nfd, &c, i);
	}
	return io_uring_submit(&r) == EXIT_N ? 0 : -1;
}

static void *exit_thread(void *arg)
{
	(void)arg;
	_exit(exit_submit() ? 3 : 0);
	return NULL;
}

/*
 * A submitter that exits (_exit right after submitting, killed by SIGKILL, or _exit from a
 * thread that submitted) with bounced reads in flight on a disk that completes them late:
 * the exit ends (no hang), the ring goes (the module's reference count comes back to what it
 * was: no command, file or request left), and the pins balance.
 */
static int exit_in_flight(enum exit_how how)
{
	long before = module_refcnt(), now = -1;
	int status;
	pid_t pid;
	uint64_t t0;

	if (pipe(exit_pipe))
		return fail("pipe");
	pid = fork();
	if (pid < 0)
		return fail("fork");
	if (!pid) {
		char b = 1;

		if (how == EXIT_FROM_THREAD) {
			pthread_t th;

			if (pthread_create(&th, NULL, exit_thread, NULL))
				_exit(3);
			for (;;)
				pause();
		}
		if (exit_submit())
			_exit(3);
		if (how == EXIT_AFTER_SUBMIT)
			_exit(0);
		if (write(exit_pipe[1], &b, 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	if (how == EXIT_KILLED) {
		char b;

		if (read(exit_pipe[0], &b, 1) != 1)
			return fail("the child did not submit");
		kill(pid, SIGKILL);
	}
	close(exit_pipe[0]);
	close(exit_pipe[1]);
	t0 = mono_ms();
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (mono_ms() - t0 > 30000) {
			kill(pid, SIGKILL);
			return fail("the submitter did not exit within 30 s");
		}
		usleep(10 * 1000);
	}
	if (how == EXIT_KILLED ? !WIFSIGNALED(status) : !WIFEXITED(status) || WEXITSTATUS(status))
		return fail("the submitter failed (status %#x)", status);
	/* The ring is torn down by a worker after the exit: wait for the references to go. */
	t0 = mono_ms();
	while ((now = module_refcnt()) != before && mono_ms() - t0 < 30000)
		usleep(20 * 1000);
	if (now != before)
		return fail("module refcnt %ld after the exit, %ld before", now, before);
	return check_vmstat_pins_quiet(0);
}

static int t_uring_exit_after_submit(void) { return exit_in_flight(EXIT_AFTER_SUBMIT); }
static int t_uring_exit_killed(void) { return exit_in_flight(EXIT_KILLED); }
static int t_uring_exit_from_thread(void) { return exit_in_flight(EXIT_FROM_THREAD); }

/* --faults: see the top. */
static int mif_fd = -1;
static void make_it_fail(int on)
{
	if (mif_fd < 0)
		mif_fd = open("/proc/thread-self/make-it-fail", O_WRONLY);
	if (mif_fd < 0 || pwrite(mif_fd, on ? "1" : "0", 1, 0) != 1) {
		printf("# make-it-fail: %s\n", strerror(errno));
		exit(2);
	}
}

static int fault_ops = 40;
static uint32_t fault_seed = 1;

static int allowed_failure(int r)
{
	return r == -ENOMEM || r == -EIO || r == -EAGAIN || r == -ECANCELED || r == -EINTR;
}

static int t_faults(void)
{
	enum { BLOCKS = 64 };		/* 4 KiB blocks of the area */
	const size_t blk = 4 * KiB, max = 16 * KiB;
	uint32_t model[BLOCKS];		/* the seed of each block's pattern */
	char *area = map_anon(max + PAGE, MAP_PRIVATE), *check;
	uint64_t x = fault_seed;
	int failures = 0, errs[4] = { 0 };

	if (posix_memalign((void **)&check, PAGE, BLOCKS * blk))
		return fail("no memory");
	for (int b = 0; b < BLOCKS; b++) {
		model[b] = fault_seed * 1000 + b;
		pat_fill(check + b * blk, 0, blk, model[b]);
	}
	if (pwrite(dfd, check, BLOCKS * blk, base_sector << 9) != (ssize_t)(BLOCKS * blk))
		return fail("pwrite: %s", strerror(errno));
	for (int i = 0; i < fault_ops; i++) {
		x = mix64(x + i);
		int write = x & 1, m = (x >> 1) % 3, uring = (x >> 3) & 1, mis = (x >> 4) & 1;
		int nb = 1 + (x >> 8) % (max / blk), b0 = (x >> 16) % (BLOCKS - nb + 1);
		char *buf = area + (mis ? 8 : 0);
		struct iovx_pt_cmd c;
		int r;

		if (write)
			for (int b = 0; b < nb; b++)
				pat_fill(buf + b * blk, 0, blk, fault_seed * 7919 + i * 64 + b);
		else
			memset(area, 0x5a, max + PAGE);
		via_uring = uring && ngfd >= 0;
		make_it_fail(1);
		r = pt(write ? IOVX_PT_WRITE : IOVX_PT_READ, maps[m].flags,
		       base_sector + b0 * (blk >> 9), buf, nb * blk, &c);
		make_it_fail(0);
		via_uring = 0;
		if (r && !allowed_failure(r))
			return fail("op %d (%s %s%s, %d blocks): %s", i, write ? "write" : "read",
				    uring ? "uring " : "", maps[m].name, nb, strerror(-r));
		if (r) {
			failures++;
			errs[-r == ENOMEM ? 0 : -r == EIO ? 1 : -r == EAGAIN ? 2 : 3]++;
		}
		if (write) {
			for (int b = 0; b < nb; b++)
				model[b0 + b] = fault_seed * 7919 + i * 64 + b;
			/* A failed write: old or new data; make it the new with O_DIRECT. */
			if (r) {
				for (int b = 0; b < nb; b++)
					pat_fill(check + b * blk, 0, blk, model[b0 + b]);
				if (pwrite(dfd, check, nb * blk, (base_sector << 9) + b0 * blk) !=
				    (ssize_t)(nb * blk))
					return fail("pwrite: %s", strerror(errno));
			}
		} else if (!r) {
			for (int b = 0; b < nb; b++) {
				long d = pat_diff(buf + b * blk, 0, blk, model[b0 + b]);

				if (d >= 0)
					return fail("op %d (read %s%s): block %d differs at byte %ld", i,
						    uring ? "uring " : "", maps[m].name, b0 + b, d);
			}
		}
	}
	if (pread(dfd, check, BLOCKS * blk, base_sector << 9) != (ssize_t)(BLOCKS * blk))
		return fail("pread: %s", strerror(errno));
	for (int b = 0; b < BLOCKS; b++)
		if (pat_diff(check + b * blk, 0, blk, model[b]) >= 0)
			return fail("block %d does not hold the data last written", b);
	diag("%d of %d commands failed as allowed (ENOMEM %d, EIO %d, EAGAIN %d, other %d)",
	     failures, fault_ops, errs[0], errs[1], errs[2], errs[3]);
	free(check);
	munmap(area, max + PAGE);
	return 0;
}

static void run_cases(const char *prefix)
{
	char name[128];

	snprintf(name, sizeof(name), "%sidentify", prefix);
	run(name, t_identify);
	for (unsigned s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		for (int m = 0; m < 3; m++) {
			snprintf(name, sizeof(name), "%s%s_%s", prefix, shapes[s].name, maps[m].name);
			t_why[0] = '\0';
			report(name, shape_case(&shapes[s], m));
		}
	}
	for (int k = HUGE_HUGETLB; k <= HUGE_THP; k++) {
		for (int m = 0; m < 3; m += 2) {
			snprintf(name, sizeof(name), "%s%s_1m_%s", prefix, huge_name[k], maps[m].name);
			t_why[0] = '\0';
			report(name, huge_case(k, m));
		}
	}
	for (unsigned b = 0; b < sizeof(bads) / sizeof(bads[0]); b++) {
		snprintf(name, sizeof(name), "%serrno_%s", prefix, bads[b].name);
		t_why[0] = '\0';
		report(name, bad_case(&bads[b]));
	}
}

int main(int argc, char **argv)
{
	int busy = argc > 1 && !strcmp(argv[1], "--busy");
	int faults = argc > 3 && !strcmp(argv[1], "--faults");
	int retry = argc > 1 && !strcmp(argv[1], "--retry");
	int seglimit = argc > 2 && !strcmp(argv[1], "--seglimit");

	if (busy || retry) {
		argv++;
		argc--;
	}
	if (seglimit) {
		seg_limit = (unsigned)atoi(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (faults) {
		fault_ops = atoi(argv[2]);
		fault_seed = (uint32_t)strtoul(argv[3], NULL, 0);
		argv += 3;
		argc -= 3;
	}
	tap_begin("passthrough");
	bdev = argc > 1 ? argv[1] : "/dev/iovx0";
	ngdev_path = argc > 2 ? argv[2] : NULL;
	module_name = argc > 3 ? argv[3] : "iov_extract";
	if (get_geom(bdev, &g))
		return 1;
	fd = open(bdev, O_RDWR);
	dfd = open_direct(bdev, O_RDWR);
	if (fd < 0 || dfd < 0)
		return 1;
	ro_page = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	none_page = mmap(NULL, 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rw = map_anon(2 * MiB + PAGE, MAP_PRIVATE);
	if (ngdev_path) {
		ngfd = open(ngdev_path, O_RDWR);
		if (ngfd < 0 ||
		    io_uring_queue_init(64, &ring, IORING_SETUP_SQE128 | IORING_SETUP_CQE32)) {
			printf("# %s: %s\n", ngdev_path, strerror(errno));
			return 1;
		}
	}
	if (faults) {
		char *name = getenv("PT_FAULTS_NAME");

		run(name ? name : "faults", t_faults);
	} else if (seglimit) {
		run("seglimit_pieces", t_seglimit_pieces);
		run("seglimit_hugetlb_1m", t_seglimit_hugetlb);
	} else if (retry) {
		run("uring_nonblock_retry_without_tag", t_uring_nonblock_retry);
	} else if (busy) {
		run("uring_busy_module", t_uring_busy_module);
		run("uring_copy_back_in_submitter", t_uring_copy_back_in_submitter);
		run("uring_munmap_before_reap", t_uring_munmap_before_reap);
		run("uring_exit_after_submit", t_uring_exit_after_submit);
		run("uring_exit_killed", t_uring_exit_killed);
		run("uring_exit_from_thread", t_uring_exit_from_thread);
	} else {
		run_cases("");
		run("readonly_open", t_readonly_open);
		if (ngdev_path) {
			via_uring = 1;
			run_cases("uring_");
			via_uring = 0;
			run("uring_many_in_flight", t_uring_many);
			run("uring_readonly_open", t_uring_readonly_open);
			run("uring_small_sqe", t_uring_small_sqe);
			run("uring_unreaped_hold_no_tag", t_uring_unreaped_hold_no_tag);
		}
	}
	if (ngdev_path) {
		io_uring_queue_exit(&ring);
		close(ngfd);
	}
	hugetlb_restore();
	run("vmstat_pins_balanced", t_vmstat_pins_balanced);
	run("debugfs_counters_balanced", t_debugfs_counters_balanced);
	return tap_end();
}
