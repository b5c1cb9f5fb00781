// SPDX-License-Identifier: GPL-2.0
/*
 * bufbench: direct I/O from one buffer of a chosen kind of memory, on two or more targets in
 * turn, for scripts/bench (fio cannot place its buffers in huge pages).
 *
 *   bufbench -c CASE -k KIND -o read|write -s BYTES [-n IOS] [-r REPS] [-w WARMUP]
 *            [-S SPAN] [-t SECONDS] NAME:ENGINE:PATH...
 *
 * KIND, the memory of the one buffer all targets use:
 *   base     anonymous, MADV_NOHUGEPAGE: 4 KiB pages
 *   thp      anonymous, 2 MiB aligned, MADV_HUGEPAGE: transparent huge pages
 *   hugetlb  MAP_HUGETLB | MAP_HUGE_2MB (pages reserved in /proc/sys/vm/nr_hugepages)
 * The buffer spans whole 2 MiB units (at least one), 2 MiB aligned, and is written before use.
 *
 * ENGINE, how a target does one I/O of BYTES:
 *   psync   pread()/pwrite() on PATH opened with O_DIRECT
 *   fixed   io_uring IORING_OP_READ_FIXED/WRITE_FIXED, queue depth 1, on PATH opened with
 *           O_DIRECT, from the buffer registered with IORING_REGISTER_BUFFERS
 *   pt      the IOVX_IOC_PT ioctl (rust/uapi/iovx.h) on PATH, the Rust mapping
 *   ptk     the same with IOVX_PT_F_KERNEL_MAP (the kernel's blk_rq_map_user_iov())
 *
 * The I/Os go one after the other through the first SPAN bytes of each target (default
 * 32 MiB, less if the device is smaller), wrapping around. Each target first runs WARMUP I/Os
 * untimed; then, REPS times, each target runs IOS I/Os timed as one sample, the targets in an
 * order that rotates with the repetition. Before the warm-up and after the last sample the
 * buffer's backing is read from /proc/self/smaps (the VMA of the buffer: Size, Rss,
 * AnonHugePages, Private_Hugetlb, KernelPageSize) and checked against KIND:
 *
 *   BENCH-BACKING case=C kind=K when=before|after ok=1|0 vma_kib=.. rss_kib=..
 *                 anon_huge_kib=.. hugetlb_kib=.. kernel_page_kib=.. [why=...]
 *
 * If the check before fails, nothing is measured (the line says why). Each sample:
 *
 *   BENCH-BUF case=C kind=K op=O size=BYTES rep=R dev=NAME engine=E ios=N ns=NS mbps=M
 *
 * with ns the time of the N I/Os on CLOCK_MONOTONIC and mbps = N * BYTES / ns * 1000.
 * With -t, a sample is not IOS I/Os but as many as SECONDS take (scripts/bench --trace runs
 * one target this way while the host logs what the guest executes).
 * Errors: "BENCH-ERROR bufbench ..." and exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../rust/uapi/iovx.h"

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#endif

#define MiB (1024UL * 1024UL)
#define HPAGE (2 * MiB)
#define MAX_TARGETS 8

enum engine { E_PSYNC, E_FIXED, E_PT, E_PTK };
static const char *const engine_names[] = { "psync", "fixed", "pt", "ptk" };

struct target {
	const char *name, *path;
	enum engine engine;
	int fd;
	uint64_t span, off;
	struct io_uring ring;
};

static const char *case_name = "?", *kind = "base";
static int do_write;
static size_t size;
static char *buf;
static size_t buf_len;

static void die(const char *fmt, const char *a, const char *b)
{
	printf("BENCH-ERROR bufbench case=%s: ", case_name);
	printf(fmt, a, b);
	printf("\n");
	fflush(stdout);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* The buffer: whole 2 MiB units at a 2 MiB boundary, of the kind asked for, every page written. */
static void make_buffer(void)
{
	char *p;

	buf_len = (size + HPAGE - 1) / HPAGE * HPAGE;
	if (!strcmp(kind, "hugetlb")) {
		p = mmap(NULL, buf_len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
		if (p == MAP_FAILED)
			die("mmap MAP_HUGETLB: %s%s (no huge pages reserved?)", strerror(errno), "");
		buf = p;
	} else {
		/* Over-allocate, then cut to the 2 MiB aligned part: one VMA, exactly the buffer. */
		size_t len = buf_len + HPAGE;
		uintptr_t a;

		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			die("mmap: %s%s", strerror(errno), "");
		a = ((uintptr_t)p + HPAGE - 1) & ~(HPAGE - 1);
		if (a > (uintptr_t)p)
			munmap(p, a - (uintptr_t)p);
		if ((uintptr_t)p + len > a + buf_len)
			munmap((char *)a + buf_len, (uintptr_t)p + len - (a + buf_len));
		buf = (char *)a;
		if (madvise(buf, buf_len, !strcmp(kind, "base") ? MADV_NOHUGEPAGE : MADV_HUGEPAGE))
			die("madvise: %s%s", strerror(errno), "");
	}
	for (size_t i = 0; i < buf_len; i += 4096)
		memset(buf + i, (int)(0x11 + (i >> 12)), 4096);
}

/* The PMD size of transparent huge pages (hpage_pmd_size), 0 if unknown. */
static unsigned long pmd_bytes(void)
{
	unsigned long v = 0;
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "r");

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

/*
 * KiB of the buffer in anonymous large folios of HPAGE each, mapped by page table entries (the
 * transparent huge pages of one size, hugepages-2048kB, where a PMD is larger than HPAGE: 512 MiB
 * with 64 KiB pages): every HPAGE unit of the buffer is counted if its first page is the head of
 * a compound page, the others its tails, and all of them THP (/proc/self/pagemap, then
 * /proc/kpageflags: KPF_COMPOUND_HEAD 15, KPF_COMPOUND_TAIL 16, KPF_THP 22). -1 if unreadable.
 */
static long pte_thp_kib(void)
{
	const long pg = sysconf(_SC_PAGESIZE);
	const size_t per = HPAGE / pg;
	int pm = open("/proc/self/pagemap", O_RDONLY), kf = open("/proc/kpageflags", O_RDONLY);
	long kib = 0;

	if (pm < 0 || kf < 0) {
		kib = -1;
		goto out;
	}
	for (size_t u = 0; u < buf_len / HPAGE; u++) {
		int ok = 1;

		for (size_t i = 0; i < per && ok; i++) {
			uint64_t e, fl;
			uintptr_t va = (uintptr_t)buf + u * HPAGE + i * pg;

			if (pread(pm, &e, 8, va / pg * 8) != 8 || !(e >> 63) ||
			    pread(kf, &fl, 8, (e & ((1ULL << 55) - 1)) * 8) != 8) {
				ok = 0;
				break;
			}
			ok = (fl >> 22 & 1) && (i ? (fl >> 16 & 1) : (fl >> 15 & 1));
		}
		if (ok)
			kib += HPAGE / 1024;
	}
out:
	if (pm >= 0)
		close(pm);
	if (kf >= 0)
		close(kf);
	return kib;
}

/* Read the buffer's VMA from /proc/self/smaps and check it against the kind; 1 if right. */
static int check_backing(const char *when)
{
	unsigned long lo = 0, hi = 0, v, vma = 0, rss = 0, ahp = 0, htlb = 0, kps = 0;
	int in = 0, found = 0, ok = 1;
	char line[512], why[128] = "";
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		die("/proc/self/smaps: %s%s", strerror(errno), "");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = lo <= (uintptr_t)buf && (uintptr_t)buf < hi;
			if (in) {
				found = 1;
				vma = (hi - lo) / 1024;
			}
			continue;
		}
		if (!in)
			continue;
		if (sscanf(line, "Rss: %lu kB", &v) == 1)
			rss = v;
		else if (sscanf(line, "AnonHugePages: %lu kB", &v) == 1)
			ahp = v;
		else if (sscanf(line, "Private_Hugetlb: %lu kB", &v) == 1)
			htlb += v;
		else if (sscanf(line, "Shared_Hugetlb: %lu kB", &v) == 1)
			htlb += v;
		else if (sscanf(line, "KernelPageSize: %lu kB", &v) == 1)
			kps = v;
	}
	fclose(f);
	unsigned long want = buf_len / 1024;
	const unsigned long pg_kib = sysconf(_SC_PAGESIZE) / 1024;
	/* Where a PMD is larger than the buffer's units, THP means PTE-mapped 2 MiB folios. */
	const int pte_thp = pmd_bytes() > HPAGE;
	long ptk = 0;

	if (pte_thp && !strcmp(kind, "thp")) {
		ptk = pte_thp_kib();
		if (ptk > 0)
			ahp = ptk;
	}

	if (!found) {
		ok = 0;
		snprintf(why, sizeof(why), "no_vma");
	} else if (vma != want) {
		ok = 0;
		snprintf(why, sizeof(why), "vma_is_not_the_buffer");
	} else if (!strcmp(kind, "base")) {
		if (ahp || htlb || kps != pg_kib || rss < want) {
			ok = 0;
			snprintf(why, sizeof(why), "want_%lu_kB_of_%lu_kB_pages", want, pg_kib);
		}
	} else if (!strcmp(kind, "thp")) {
		if (ahp < want || kps != pg_kib) {
			ok = 0;
			snprintf(why, sizeof(why), pte_thp ? "want_%lu_kB_in_2048_kB_folios" :
				 "want_AnonHugePages_%lu_kB", want);
		}
	} else if (!strcmp(kind, "hugetlb")) {
		if (htlb < want || kps != 2048) {
			ok = 0;
			snprintf(why, sizeof(why), "want_Private_Hugetlb_%lu_kB_KernelPageSize_2048", want);
		}
	}
	printf("BENCH-BACKING case=%s kind=%s when=%s ok=%d vma_kib=%lu rss_kib=%lu anon_huge_kib=%lu"
	       " hugetlb_kib=%lu kernel_page_kib=%lu thp_map=%s%s%s\n",
	       case_name, kind, when, ok, vma, rss, ahp, htlb, kps, pte_thp ? "pte" : "pmd",
	       *why ? " why=" : "", why);
	fflush(stdout);
	return ok;
}

static void open_target(struct target *t)
{
	uint64_t dsize = 0;

	t->fd = open(t->path, (t->engine == E_PT || t->engine == E_PTK ? O_RDWR : O_RDWR | O_DIRECT));
	if (t->fd < 0)
		die("open %s: %s", t->path, strerror(errno));
	if (ioctl(t->fd, BLKGETSIZE64, &dsize) == 0 && dsize && dsize < t->span)
		t->span = dsize / size * size;
	if (t->span < size)
		die("%s: smaller than one I/O%s", t->path, "");
	if (t->engine == E_FIXED) {
		struct iovec iov = { buf, buf_len };
		int r = io_uring_queue_init(4, &t->ring, 0);

		if (r)
			die("io_uring_queue_init: %s%s", strerror(-r), "");
		r = io_uring_register_buffers(&t->ring, &iov, 1);
		if (r)
			die("IORING_REGISTER_BUFFERS: %s%s", strerror(-r), "");
	}
}

static void one_io(struct target *t)
{
	ssize_t r;

	switch (t->engine) {
	case E_PSYNC:
		r = do_write ? pwrite(t->fd, buf, size, t->off) : pread(t->fd, buf, size, t->off);
		if (r != (ssize_t)size)
			die("%s: %s", t->path, r < 0 ? strerror(errno) : "short transfer");
		break;
	case E_FIXED: {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
		struct io_uring_cqe *cqe;

		if (do_write)
			io_uring_prep_write_fixed(sqe, t->fd, buf, size, t->off, 0);
		else
			io_uring_prep_read_fixed(sqe, t->fd, buf, size, t->off, 0);
		r = io_uring_submit_and_wait(&t->ring, 1);
		if (r != 1)
			die("%s: io_uring_submit_and_wait: %s", t->path, strerror(-r));
		if (io_uring_peek_cqe(&t->ring, &cqe))
			die("%s: no completion%s", t->path, "");
		r = cqe->res;
		io_uring_cqe_seen(&t->ring, cqe);
		if (r != (ssize_t)size)
			die("%s: %s", t->path, r < 0 ? strerror(-r) : "short transfer");
		break;
	}
	case E_PT:
	case E_PTK: {
		struct iovx_pt_cmd c = {
			.opcode = do_write ? IOVX_PT_WRITE : IOVX_PT_READ,
			.flags = t->engine == E_PTK ? IOVX_PT_F_KERNEL_MAP : 0,
			.sector = t->off >> 9,
			.addr = (uintptr_t)buf,
			.len = (uint32_t)size,
		};

		if (ioctl(t->fd, IOVX_IOC_PT, &c))
			die("%s: IOVX_IOC_PT: %s", t->path, strerror(errno));
		if (c.result != IOVX_PT_SC_SUCCESS)
			die("%s: IOVX_IOC_PT status %s", t->path, c.result == 0x80 ? "LBA range" : "not success");
		break;
	}
	}
	t->off += size;
	if (t->off + size > t->span)
		t->off = 0;
}

int main(int argc, char **argv)
{
	struct target tg[MAX_TARGETS];
	unsigned long ios = 100, warm = 0, reps = 3, secs = 0;
	uint64_t span = 32 * MiB;
	int nt = 0, c;

	while ((c = getopt(argc, argv, "c:k:o:s:n:r:w:S:t:")) != -1) {
		switch (c) {
		case 'c': case_name = optarg; break;
		case 'k': kind = optarg; break;
		case 'o': do_write = !strcmp(optarg, "write"); break;
		case 's': size = strtoul(optarg, NULL, 0); break;
		case 'n': ios = strtoul(optarg, NULL, 0); break;
		case 'r': reps = strtoul(optarg, NULL, 0); break;
		case 'w': warm = strtoul(optarg, NULL, 0); break;
		case 'S': span = strtoull(optarg, NULL, 0); break;
		case 't': secs = strtoul(optarg, NULL, 0); break;
		default: return 2;
		}
	}
	if (!size || size % 4096 || !ios || !reps || optind >= argc ||
	    (strcmp(kind, "base") && strcmp(kind, "thp") && strcmp(kind, "hugetlb"))) {
		fprintf(stderr, "usage: bufbench -c CASE -k base|thp|hugetlb -o read|write -s BYTES"
				" [-n IOS] [-r REPS] [-w WARMUP] [-S SPAN] [-t SECONDS] NAME:ENGINE:PATH...\n");
		return 2;
	}
	make_buffer();
	for (; optind < argc && nt < MAX_TARGETS; optind++, nt++) {
		char *a = strdup(argv[optind]), *e = strchr(a, ':'), *p = e ? strchr(e + 1, ':') : NULL;
		int k;

		if (!p)
			die("bad target %s%s", argv[optind], "");
		*e++ = 0;
		*p++ = 0;
		for (k = 0; k < 4 && strcmp(e, engine_names[k]); k++)
			;
		if (k == 4)
			die("bad engine %s%s", e, "");
		tg[nt] = (struct target){ .name = a, .path = p, .engine = k, .span = span };
		open_target(&tg[nt]);
	}
	if (!check_backing("before"))
		return 1;
	for (int i = 0; i < nt; i++)
		for (unsigned long j = 0; j < warm; j++)
			one_io(&tg[i]);
	for (unsigned long r = 1; r <= reps; r++) {
		for (int k = 0; k < nt; k++) {
			struct target *t = &tg[(r - 1 + k) % nt];
			uint64_t t0 = now_ns(), dt;
			unsigned long n = 0;

			if (secs) {
				do {
					one_io(t);
					n++;
				} while (now_ns() - t0 < secs * 1000000000ull);
			} else {
				for (; n < ios; n++)
					one_io(t);
			}
			dt = now_ns() - t0;
			printf("BENCH-BUF case=%s kind=%s op=%s size=%zu rep=%lu dev=%s engine=%s ios=%lu"
			       " ns=%llu mbps=%.2f\n",
			       case_name, kind, do_write ? "write" : "read", size, r, t->name,
			       engine_names[t->engine], n, (unsigned long long)dt,
			       dt ? (double)n * size * 1000.0 / dt : 0.0);
			fflush(stdout);
		}
	}
	return check_backing("after") ? 0 : 1;
}
