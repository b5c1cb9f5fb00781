// SPDX-License-Identifier: GPL-2.0
/*
 * memcpy_bw [BUFFER_MIB [BLOCK_KIB [SECONDS [REPS]]]]
 *
 * Memory-copy bandwidth baseline for the RAM disk figures, in the two patterns of a RAM disk's
 * large-block I/O: "read" copies BLOCK_KIB blocks taken one after the other from a BUFFER_MIB
 * buffer (the disk) into one BLOCK_KIB buffer (the reader's), "write" the other way round; over
 * and over for SECONDS, REPS times, with the C library's memcpy() and the ways the kernel copies
 * memory (memcpy(), copy_page() and the user copies): on x86-64 a loop of 64-bit moves unrolled
 * four times (memcpy_orig), "rep movsq" and "rep movsb" (with ERMS/FSRM); on arm64 a loop of
 * 64-bit load and store pairs (ldp/stp). Each repetition of each pattern and method prints one
 * line
 *
 *   BENCH-MEMCPY rep=N pattern=P method=M buffer_mib=B block_kib=K bytes=BYTES ns=NS gbps=G
 *
 * where bytes counts the bytes copied (each read once and written once) and gbps is
 * bytes / ns (10^9 bytes per second). Defaults: 64 MiB, 1024 KiB, 1 s, 5 repetitions.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	/* Fault every page in before timing anything. */
	memset(p, 0x5a, len);
	return p;
}

static void copy_libc(void *d, const void *s, size_t n)
{
	memcpy(d, s, n);
}

#if defined(__x86_64__)
/* n: a multiple of 32 */
static void copy_movq(void *d, const void *s, size_t n)
{
	__asm__ volatile("1:\n\t"
			 "movq 0(%1), %%r8\n\t"
			 "movq 8(%1), %%r9\n\t"
			 "movq 16(%1), %%r10\n\t"
			 "movq 24(%1), %%r11\n\t"
			 "movq %%r8, 0(%0)\n\t"
			 "movq %%r9, 8(%0)\n\t"
			 "movq %%r10, 16(%0)\n\t"
			 "movq %%r11, 24(%0)\n\t"
			 "leaq 32(%1), %1\n\t"
			 "leaq 32(%0), %0\n\t"
			 "subq $32, %2\n\t"
			 "jnz 1b"
			 : "+r"(d), "+r"(s), "+r"(n)
			 :
			 : "r8", "r9", "r10", "r11", "memory", "cc");
}

static void copy_movsb(void *d, const void *s, size_t n)
{
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

static void copy_movsq(void *d, const void *s, size_t n)
{
	n /= 8;
	__asm__ volatile("rep movsq" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

static const struct {
	const char *name;
	void (*copy)(void *d, const void *s, size_t n);
} methods[] = {
	{ "memcpy", copy_libc },
	{ "movq-loop", copy_movq },
	{ "movsq", copy_movsq },
	{ "movsb", copy_movsb },
};
#elif defined(__aarch64__)
/*
 * n: a multiple of 32. Pairs of 64-bit loads and stores, as arm64's copy_page() and memcpy()
 * (which use the same instructions, copy_page() 128 bytes per iteration).
 */
static void copy_ldp_stp(void *d, const void *s, size_t n)
{
	__asm__ volatile("1:\n\t"
			 "ldp x8, x9, [%1]\n\t"
			 "ldp x10, x11, [%1, #16]\n\t"
			 "stp x8, x9, [%0]\n\t"
			 "stp x10, x11, [%0, #16]\n\t"
			 "add %1, %1, #32\n\t"
			 "add %0, %0, #32\n\t"
			 "subs %2, %2, #32\n\t"
			 "b.ne 1b"
			 : "+r"(d), "+r"(s), "+r"(n)
			 :
			 : "x8", "x9", "x10", "x11", "memory", "cc");
}

static const struct {
	const char *name;
	void (*copy)(void *d, const void *s, size_t n);
} methods[] = {
	{ "memcpy", copy_libc },
	{ "ldp-stp", copy_ldp_stp },
};
#else
#error "memcpy_bw: x86-64 or arm64"
#endif

int main(int argc, char **argv)
{
	size_t buf_mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 64;
	size_t blk_kib = argc > 2 ? strtoul(argv[2], NULL, 0) : 1024;
	double secs = argc > 3 ? strtod(argv[3], NULL) : 1.0;
	int reps = argc > 4 ? atoi(argv[4]) : 5;
	size_t len = buf_mib << 20, blk = blk_kib << 10;
	unsigned char *disk, *user;
	unsigned long sum = 0;

	if (!len || !blk || blk > len || len % blk || blk % 32 || secs <= 0 || reps < 1) {
		fprintf(stderr, "usage: memcpy_bw [BUFFER_MIB [BLOCK_KIB [SECONDS [REPS]]]]\n");
		return 2;
	}
	disk = map(len);
	user = map(blk);
	for (size_t i = 0; i < len; i += 4096)
		disk[i] = (unsigned char)(i >> 12);

	/* One untimed pass each way to warm up the caches and the TLB. */
	for (size_t off = 0; off < len; off += blk)
		memcpy(user, disk + off, blk);
	for (size_t off = 0; off < len; off += blk)
		memcpy(disk + off, user, blk);

	/* Repetitions outermost, so that a slow phase of the machine hits every method. */
	for (int r = 1; r <= reps; r++) {
		for (int write = 0; write < 2; write++) {
			for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
				uint64_t budget = (uint64_t)(secs * 1e9), t0 = now_ns(), t1;
				uint64_t bytes = 0;
				size_t off = 0;

				/* Block after block through the disk buffer, until the time is up. */
				do {
					if (write)
						methods[m].copy(disk + off, user, blk);
					else
						methods[m].copy(user, disk + off, blk);
					/* The copy must happen: both buffers escape here. */
					__asm__ volatile("" : : "r"(disk), "r"(user) : "memory");
					bytes += blk;
					off = (off + blk) % len;
					t1 = now_ns();
				} while (t1 - t0 < budget);
				printf("BENCH-MEMCPY rep=%d pattern=%s method=%s buffer_mib=%zu block_kib=%zu bytes=%llu ns=%llu gbps=%.3f\n",
				       r, write ? "write" : "read", methods[m].name, buf_mib, blk_kib,
				       (unsigned long long)bytes, (unsigned long long)(t1 - t0),
				       (double)bytes / (double)(t1 - t0));
				fflush(stdout);
			}
		}
	}
	for (size_t i = 0; i < len; i += 4096)
		sum += disk[i];
	for (size_t i = 0; i < blk; i += 4096)
		sum += user[i];
	/* A checksum of the copy, so that none of it is dead code. */
	printf("BENCH-INFO memcpy checksum %lu\n", sum);
	return 0;
}
