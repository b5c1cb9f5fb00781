// SPDX-License-Identifier: GPL-2.0
/*
 * thp_dio: direct I/O through the Rust path (DEV, /dev/iovx_dioN) into and from buffers of
 * base pages, transparent huge pages and hugetlb pages, checked against the block device
 * (BDEV, /dev/iovxN, the kernel's own O_DIRECT path), and the same I/O timed on both.
 *
 *   thp_dio check DEV BDEV             correctness, one result line per kind and case
 *   thp_dio bench DEV BDEV [N [ROUNDS]] pread/pwrite of 64 KiB, 256 KiB and 1 MiB, best of
 *                                       ROUNDS (3) x N (100) I/Os per row, on each device
 *
 * check, per kind of buffer (two 2 MiB folios, the second right after the first in the
 * address space): a write from a range that starts 512 bytes into a page of the first folio
 * and ends inside the second (partial folios at both ends, straddling the two) reaches the disk
 * byte for byte; a read into that range brings the disk's bytes and leaves the bytes around it
 * alone; a preadv() whose first two iovecs lie in one page (the same folio, the same page,
 * pinned twice in one I/O) and whose third lies in the other folio; an io_uring
 * READ_FIXED/WRITE_FIXED pair on the buffer registered (a BVEC iterator, whose segments the
 * kernel coalesces per huge page); and the kernel's pin counts balanced after them. A kind the
 * system cannot give (no THP, no hugetlb pages) is skipped, saying why.
 *
 * bench prints, per row, the nanoseconds per I/O on each device and their ratio (C/Rust: above
 * 1 when the Rust path is faster), with the buffer kind and the AnonHugePages or hugetlb pages
 * that backed it. Under `qemu/run --icount` the guest's clock counts instructions.
 */
#include "common.h"
#include <liburing.h>

#define BUF (2 * HPAGE)

enum kind { K_BASE, K_THP, K_HUGETLB, NR_KINDS };
static const char *const kind_name[NR_KINDS] = { "base", "thp", "hugetlb" };

static int dev = -1, bdev = -1;
static struct geom g;
static unsigned char *cbuf; /* base pages, for the block device's side of a check */

struct buf {
	unsigned char *p; /* BUF bytes, 2 MiB aligned */
	void *raw;
	size_t rawlen;
	long huge_kib; /* AnonHugePages (THP) or hugetlb bytes / 1024 backing it */
};

/* Whether the THP setting lets madvise() ask for huge pages. */
static int thp_madvise_ok(void)
{
	char s[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (!f)
		return 0;
	if (!fgets(s, sizeof(s), f))
		s[0] = '\0';
	fclose(f);
	return !strstr(s, "[never]");
}

/* Sets vm.nr_hugepages to @n (at least); returns the value before, or -1. */
static long hugetlb_reserve(long n)
{
	long before = -1, now = -1;
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r+");

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &before) != 1)
		before = -1;
	if (before >= 0 && before < n) {
		rewind(f);
		fprintf(f, "%ld\n", n);
		fflush(f);
		rewind(f);
		if (fscanf(f, "%ld", &now) != 1)
			now = -1;
	}
	fclose(f);
	return before;
}

static void hugetlb_restore(long n)
{
	FILE *f;

	if (n < 0)
		return;
	f = fopen("/proc/sys/vm/nr_hugepages", "w");
	if (f) {
		fprintf(f, "%ld\n", n);
		fclose(f);
	}
}

/* Maps and faults in a buffer of @k; 1 (with the reason set) if the system cannot give one. */
static int buf_get(enum kind k, struct buf *b)
{
	memset(b, 0, sizeof(*b));
	switch (k) {
	case K_BASE:
		b->p = map_anon(BUF, MAP_PRIVATE);
		if (!b->p)
			return fail("mmap: %s", strerror(errno));
		b->raw = b->p;
		b->rawlen = BUF;
		madvise(b->p, BUF, MADV_NOHUGEPAGE);
		memset(b->p, 0x11, BUF);
		b->huge_kib = anon_huge_kib(b->p);
		if (b->huge_kib > 0)
			return fail("MADV_NOHUGEPAGE buffer backed by %ld kB of huge pages", b->huge_kib);
		return 0;
	case K_THP:
		if (!thp_madvise_ok())
			return skip("transparent huge pages are off");
		if (thp_pmd_unfit())
			return skip("%s", thp_pmd_unfit());
		b->p = map_thp(BUF, &b->raw, &b->rawlen);
		if (!b->p)
			return fail("mmap: %s", strerror(errno));
		memset(b->p, 0x11, BUF);
		b->huge_kib = anon_huge_kib(b->p);
		if (b->huge_kib < (long)(BUF / KiB)) {
			munmap(b->raw, b->rawlen);
			b->raw = NULL;
			return skip("AnonHugePages %ld kB, not %lu", b->huge_kib, BUF / KiB);
		}
		return 0;
	case K_HUGETLB:
		b->p = mmap(NULL, BUF, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (b->p == MAP_FAILED) {
			b->p = NULL;
			return skip("no hugetlb pages (mmap MAP_HUGETLB: %s)", strerror(errno));
		}
		b->raw = b->p;
		b->rawlen = BUF;
		memset(b->p, 0x11, BUF);
		b->huge_kib = BUF / KiB;
		return 0;
	default:
		return fail("no such kind");
	}
}

static void buf_put(struct buf *b)
{
	if (b->raw)
		munmap(b->raw, b->rawlen);
	b->raw = NULL;
}

/* ------------------------------------------------------------------ check */

static enum kind ck;
static struct buf cb;
static int cb_rc;
static char cb_why[sizeof(t_why)];

/* The range of the check: 512 bytes into a page of the first folio, into the second. */
#define R_OFF (HPAGE - 512 * KiB + 512)
#define R_LEN (1 * MiB)
#define D_OFF (4 * MiB) /* where on the disk */

static int need_buf(void)
{
	if (cb_rc == 1)
		return skip("%s", cb_why);
	if (cb_rc)
		return fail("%s", cb_why);
	return 0;
}

static int pio(int fd, int write, void *p, size_t len, uint64_t off, const char *what)
{
	ssize_t n = write ? pwrite(fd, p, len, off) : pread(fd, p, len, off);

	if (n != (ssize_t)len)
		return fail("%s: %zd of %zu bytes: %s", what, n, len, n < 0 ? strerror(errno) : "");
	return 0;
}

/* A write through DEV from the range reaches the disk byte for byte. */
static int t_write(void)
{
	uint32_t s = 0x1000 + ck;
	long d;
	int rc;

	if ((rc = need_buf()))
		return rc;
	pat_fill(cb.p + R_OFF, D_OFF, R_LEN, s);
	if (pio(dev, 1, cb.p + R_OFF, R_LEN, D_OFF, "pwrite DEV"))
		return -1;
	if (pio(bdev, 0, cbuf, R_LEN, D_OFF, "pread BDEV"))
		return -1;
	d = pat_diff(cbuf, D_OFF, R_LEN, s);
	if (d >= 0)
		return fail("the disk differs at byte %ld of the write", d);
	return 0;
}

/* A read through DEV into the range brings the disk's bytes and nothing around them. */
static int t_read(void)
{
	uint32_t s = 0x2000 + ck;
	long d;
	int rc;

	if ((rc = need_buf()))
		return rc;
	pat_fill(cbuf, D_OFF, R_LEN, s);
	if (pio(bdev, 1, cbuf, R_LEN, D_OFF, "pwrite BDEV"))
		return -1;
	memset(cb.p, 0x5a, BUF);
	if (pio(dev, 0, cb.p + R_OFF, R_LEN, D_OFF, "pread DEV"))
		return -1;
	d = pat_diff(cb.p + R_OFF, D_OFF, R_LEN, s);
	if (d >= 0)
		return fail("byte %ld of the read differs from the disk", d);
	if ((d = byte_diff(cb.p, R_OFF, 0x5a)) >= 0 ||
	    (d = byte_diff(cb.p + R_OFF + R_LEN, BUF - R_OFF - R_LEN, 0x5a)) >= 0)
		return fail("the read wrote outside its range (byte %ld of a side)", d);
	return 0;
}

/* preadv(): two iovecs in one page of the first folio, one in the second folio. */
static int t_readv_same_folio(void)
{
	struct iovec iov[3] = {
		{ cb.p + 5 * PAGE + 512, 1024 },
		{ cb.p + 5 * PAGE + 1536, 2560 + 64 * KiB },
		{ cb.p + HPAGE + 3 * PAGE + 512, 12 * KiB },
	};
	size_t total = 0, at = 0;
	uint32_t s = 0x3000 + ck;
	int rc;

	if ((rc = need_buf()))
		return rc;
	for (int i = 0; i < 3; i++)
		total += iov[i].iov_len;
	pat_fill(cbuf, D_OFF, total, s);
	if (pio(bdev, 1, cbuf, total, D_OFF, "pwrite BDEV"))
		return -1;
	memset(cb.p, 0x5a, BUF);
	if (preadv(dev, iov, 3, D_OFF) != (ssize_t)total)
		return fail("preadv DEV: %s", strerror(errno));
	for (int i = 0; i < 3; i++) {
		long d = pat_diff(iov[i].iov_base, D_OFF + at, iov[i].iov_len, s);

		if (d >= 0)
			return fail("iovec %d differs from the disk at byte %ld", i, d);
		at += iov[i].iov_len;
	}
	if (byte_diff(cb.p + 5 * PAGE, 512, 0x5a) >= 0)
		return fail("the read wrote before its first iovec");
	return 0;
}

/* io_uring WRITE_FIXED then READ_FIXED on the buffer registered whole. */
static int t_uring_fixed(void)
{
	struct io_uring ring;
	struct iovec reg = { cb.p, BUF };
	uint32_t s = 0x4000 + ck;
	int rc = 0, r;
	long d;

	if ((rc = need_buf()))
		return rc;
	r = io_uring_queue_init(4, &ring, 0);
	if (r)
		return skip("io_uring_queue_init: %s", strerror(-r));
	r = io_uring_register_buffers(&ring, &reg, 1);
	if (r) {
		io_uring_queue_exit(&ring);
		return fail("io_uring_register_buffers: %s", strerror(-r));
	}
	for (int w = 1; w >= 0 && !rc; w--) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct io_uring_cqe *cqe;

		if (w) {
			pat_fill(cb.p + R_OFF, D_OFF, R_LEN, s);
			io_uring_prep_write_fixed(sqe, dev, cb.p + R_OFF, R_LEN, D_OFF, 0);
		} else {
			memset(cb.p, 0x5a, BUF);
			io_uring_prep_read_fixed(sqe, dev, cb.p + R_OFF, R_LEN, D_OFF, 0);
		}
		r = io_uring_submit(&ring);
		if (r != 1) {
			rc = fail("io_uring_submit: %s", strerror(-r));
			break;
		}
		r = io_uring_wait_cqe(&ring, &cqe);
		if (r) {
			rc = fail("io_uring_wait_cqe: %s", strerror(-r));
			break;
		}
		if (cqe->res != (int)R_LEN)
			rc = fail("%s: %d", w ? "WRITE_FIXED" : "READ_FIXED", cqe->res);
		io_uring_cqe_seen(&ring, cqe);
		if (rc)
			break;
		if (w) {
			if (pio(bdev, 0, cbuf, R_LEN, D_OFF, "pread BDEV"))
				rc = -1;
			else if ((d = pat_diff(cbuf, D_OFF, R_LEN, s)) >= 0)
				rc = fail("WRITE_FIXED: the disk differs at byte %ld", d);
		} else if ((d = pat_diff(cb.p + R_OFF, D_OFF, R_LEN, s)) >= 0) {
			rc = fail("READ_FIXED: byte %ld differs from the disk", d);
		} else if (byte_diff(cb.p, R_OFF, 0x5a) >= 0 ||
			   byte_diff(cb.p + R_OFF + R_LEN, BUF - R_OFF - R_LEN, 0x5a) >= 0) {
			rc = fail("READ_FIXED wrote outside its range");
		}
	}
	io_uring_unregister_buffers(&ring);
	io_uring_queue_exit(&ring);
	return rc;
}

static int check(void)
{
	long hugetlb_before = hugetlb_reserve(4);
	char name[64];

	for (ck = 0; ck < NR_KINDS; ck++) {
		t_why[0] = '\0';
		cb_rc = buf_get(ck, &cb);
		snprintf(cb_why, sizeof(cb_why), "%s", t_why);
		if (cb_rc == 0)
			diag("%s buffer: %ld kB of huge pages", kind_name[ck], cb.huge_kib);
		snprintf(name, sizeof(name), "%s_write", kind_name[ck]);
		run(name, t_write);
		snprintf(name, sizeof(name), "%s_read", kind_name[ck]);
		run(name, t_read);
		snprintf(name, sizeof(name), "%s_readv_same_folio", kind_name[ck]);
		run(name, t_readv_same_folio);
		snprintf(name, sizeof(name), "%s_uring_fixed", kind_name[ck]);
		run(name, t_uring_fixed);
		buf_put(&cb);
	}
	hugetlb_restore(hugetlb_before);
	run("pins_balanced", t_vmstat_pins_balanced);
	return tap_end();
}

/* ------------------------------------------------------------------ bench */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Nanoseconds per I/O of @n I/Os of @len bytes on @fd, from @p, each at the next offset. */
static int64_t timed(int fd, int write, unsigned char *p, size_t len, int n)
{
	uint64_t t0 = now_ns();

	for (int i = 0; i < n; i++) {
		uint64_t off = (uint64_t)(i % 16) * len;

		if ((write ? pwrite(fd, p, len, off) : pread(fd, p, len, off)) != (ssize_t)len)
			return -1;
	}
	return (int64_t)((now_ns() - t0) / n);
}

static int bench(int n, int rounds)
{
	static const size_t sizes[] = { 64 * KiB, 256 * KiB, 1 * MiB };
	long hugetlb_before = hugetlb_reserve(4);
	int rc = 0;

	printf("# kind op size rust_ns c_ns c/rust huge_kB\n");
	for (int k = 0; k < NR_KINDS; k++) {
		struct buf b;
		int r = buf_get(k, &b);

		if (r) {
			printf("# %s: %s\n", kind_name[k], t_why);
			buf_put(&b);
			continue;
		}
		for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
			for (int w = 0; w <= 1; w++) {
				int64_t best[2] = { INT64_MAX, INT64_MAX };
				/* The buffer starts at a huge page: the I/O lies in one folio. */
				unsigned char *p = b.p;

				for (int rd = 0; rd < rounds; rd++) {
					for (int side = 0; side < 2; side++) {
						int64_t t = timed(side ? bdev : dev, w, p, sizes[si], n);

						if (t < 0) {
							printf("# %s %s %zu: I/O failed: %s\n", kind_name[k],
							       w ? "write" : "read", sizes[si], strerror(errno));
							rc = 1;
							goto next;
						}
						if (t < best[side])
							best[side] = t;
					}
				}
				printf("# %s %s %zu %" PRId64 " %" PRId64 " %.3f %ld\n", kind_name[k],
				       w ? "write" : "read", sizes[si], best[0], best[1],
				       (double)best[1] / (double)best[0], anon_huge_kib(b.p) > 0 ?
				       anon_huge_kib(b.p) : b.huge_kib);
next:;
			}
		}
		buf_put(&b);
	}
	hugetlb_restore(hugetlb_before);
	return rc;
}

int main(int argc, char **argv)
{
	int is_bench;

	if (argc < 4 || (strcmp(argv[1], "check") && strcmp(argv[1], "bench"))) {
		fprintf(stderr, "usage: %s check|bench DEV BDEV [N [ROUNDS]]\n", argv[0]);
		return 2;
	}
	is_bench = !strcmp(argv[1], "bench");
	tap_begin("thp_dio");
	alarm(is_bench ? 3000 : 300);
	if (get_geom(argv[3], &g) || g.size < 8 * MiB) {
		printf("not ok %d thp_dio_setup # cannot get the geometry of %s, or under 8 MiB\n",
		       t_num + 1, argv[3]);
		return 1;
	}
	dev = open_direct(argv[2], O_RDWR);
	bdev = open_direct(argv[3], O_RDWR);
	cbuf = map_anon(BUF, MAP_PRIVATE);
	if (dev < 0 || bdev < 0 || !cbuf) {
		printf("not ok %d thp_dio_setup # cannot open the devices or map a buffer\n",
		       t_num + 1);
		return 1;
	}
	madvise(cbuf, BUF, MADV_NOHUGEPAGE);
	if (is_bench)
		return bench(argc > 4 ? atoi(argv[4]) : 100, argc > 5 ? atoi(argv[5]) : 3);
	return check();
}
