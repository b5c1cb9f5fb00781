// SPDX-License-Identifier: GPL-2.0
/*
 * random_io [options]: a seeded random workload on one iovx disk, checked against a model.
 *
 *   --dev PATH      direct-I/O device (default /dev/iovx_dio0)
 *   --bdev PATH     the same disk's block device, used with O_DIRECT (default /dev/iovx0)
 *   --gup PATH      the gup_test-compatible device (default /dev/iovx_gup)
 *   --seed N        the seed (default: from the clock; always printed)
 *   --ops N         number of operations (default 1000)
 *   --secs N        run for N seconds instead (the operations are still counted)
 *   --region MiB    size of the disk region used, from offset 0 (default 16)
 *   --phase N       operations per phase: at each phase boundary the whole region is read and
 *                   compared with the model, and the pin counters checked (default 250)
 *   --paths LIST    comma-separated kinds of operation (default all): psync (pread/pwrite and
 *                   vectored on the direct-I/O device), bdev (the same on the block device),
 *                   libaio, uring, fixed (io_uring with registered buffers), discard, zeroout,
 *                   fsync, gup, fork, unmap, threads
 *   --faults        fault-injection mode: the calls that start I/O run with make-it-fail set
 *                   (/proc/thread-self/make-it-fail), and an I/O may end short or with ENOMEM,
 *                   EIO or EAGAIN, an io_uring one also with ECANCELED (io_uring's answer
 *                   when it cannot make a worker); the range a failed write covered then holds
 *                   old or new data, per sector
 *   --strict        with --faults: no I/O may fail or end short all the same
 *   --replay        no search for a shortest failing prefix (used by that search itself)
 *   --name NAME     prefix of the result lines (default random_io)
 *
 * The model keeps, for each 512-byte sector of the region, the set of contents it may hold:
 * zeroes or the pattern of a write's seed (common.h). A write adds its seed to the sectors it
 * covers when it starts; when it ends in full with no other I/O in flight over a sector, the
 * sector holds exactly that seed. A failed or short write leaves both contents allowed. A read
 * must find, in every sector, one of the allowed contents; with no other I/O in flight there,
 * that content is then the only one allowed. Every I/O's result must be one of those allowed.
 *
 * On a mismatch the program prints the seed and the operation, then replays shorter prefixes
 * of the same seed (each ending with a full read of the region) and prints the shortest one
 * that still fails.
 */
#include "common.h"

#include <libaio.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------ options */

enum {
	P_PSYNC, P_BDEV, P_LIBAIO, P_URING, P_FIXED, P_DISCARD, P_ZEROOUT, P_FSYNC, P_GUP, P_FORK,
	P_UNMAP, P_THREADS, P_N
};
static const char *const path_names[P_N] = {
	"psync", "bdev", "libaio", "uring", "fixed", "discard", "zeroout", "fsync", "gup", "fork",
	"unmap", "threads",
};
static const unsigned path_weight[P_N] = { 20, 20, 12, 12, 8, 3, 3, 3, 4, 3, 3, 3 };

static const char *o_dev = "/dev/iovx_dio0", *o_bdev = "/dev/iovx0", *o_gup = "/dev/iovx_gup";
static const char *o_name = "random_io";
static uint64_t o_seed, o_ops = 1000, o_secs, o_phase = 250;
static uint64_t o_region = 16 * MiB;
static int o_faults, o_strict, o_replay, o_trace;
static unsigned o_paths = (1u << P_N) - 1;

/* ------------------------------------------------------------------ random numbers */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ULL;
	return mix64(r->s);
}

static uint64_t rnd_below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

/* ------------------------------------------------------------------ statistics */

static atomic_ullong st_ops, st_ios, st_bytes, st_short, st_full;
static atomic_ullong st_err[160];
static atomic_int failed_flag;
static char fail_msg[1024];
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t cur_op;

static void failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failure(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&fail_lock);
	if (!failed_flag) {
		va_start(ap, fmt);
		vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
		va_end(ap);
		failed_flag = 1;
		printf("# MISMATCH at operation %" PRIu64 " (seed %" PRIu64 "): %s\n", cur_op, o_seed,
		       fail_msg);
	}
	pthread_mutex_unlock(&fail_lock);
}

/* ------------------------------------------------------------------ the model */

#define SEC 512u
#define NSET 8
#define ANY 0xff	/* more contents than the set holds: anything allowed */

struct sector {
	uint32_t s[NSET];	/* allowed contents: 0 zeroes, else a pattern seed */
	uint8_t n;		/* how many, or ANY */
	uint8_t inflight;	/* I/Os in flight over this sector */
	/* An I/O ended while another was in flight here: until none is, which content is the
	 * last one is not known, and the set does not shrink. */
	uint8_t mixed;
};

static struct sector *model;
static uint64_t nsec;
static pthread_mutex_t model_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint seed_ctr;

static uint32_t new_seed(void)
{
	uint32_t s;

	do
		s = (atomic_fetch_add(&seed_ctr, 1) + (uint32_t)o_seed) & 0xffffff;
	while (!s);
	return s;
}

static void set_add(struct sector *m, uint32_t s)
{
	if (m->n == ANY)
		return;
	for (int i = 0; i < m->n; i++)
		if (m->s[i] == s)
			return;
	if (m->n == NSET) {
		m->n = ANY;
		return;
	}
	m->s[m->n++] = s;
}

static void set_one(struct sector *m, uint32_t s)
{
	m->s[0] = s;
	m->n = 1;
}

/* One I/O over @m ends. */
static void end_one(struct sector *m)
{
	if (m->inflight > 1)
		m->mixed = 1;
	if (!--m->inflight)
		m->mixed = 0;
}

/* An I/O over [off, off + len) starts; a write of seed @s (0 for zeroes) adds it. */
static void m_begin(uint64_t off, uint64_t len, int write, uint32_t s)
{
	pthread_mutex_lock(&model_lock);
	for (uint64_t i = off / SEC; i < (off + len) / SEC; i++) {
		model[i].inflight++;
		if (write)
			set_add(&model[i], s);
	}
	pthread_mutex_unlock(&model_lock);
}

/* A write ends: in full (@done bytes == len) it leaves only its seed where nothing else is in
 * flight; else both contents stay allowed. */
static void m_end_write(uint64_t off, uint64_t len, uint32_t s, int full)
{
	pthread_mutex_lock(&model_lock);
	for (uint64_t i = off / SEC; i < (off + len) / SEC; i++) {
		if (full && model[i].inflight == 1 && !model[i].mixed)
			set_one(&model[i], s);
		end_one(&model[i]);
	}
	pthread_mutex_unlock(&model_lock);
}

static int sector_is(const unsigned char *p, uint64_t off, uint32_t s)
{
	return s ? pat_diff(p, off, SEC, s) < 0 : byte_diff(p, SEC, 0) < 0;
}

/* A read ends: the first @valid bytes of @buf (read from @off) are checked. */
static int m_end_read(const char *what, uint64_t off, uint64_t len, const unsigned char *buf,
		      uint64_t valid)
{
	int rc = 0;

	pthread_mutex_lock(&model_lock);
	for (uint64_t i = off / SEC, k = 0; i < (off + len) / SEC; i++, k++) {
		struct sector *m = &model[i];
		int hit = -1;

		if ((k + 1) * SEC <= valid && m->n != ANY && !rc) {
			for (int j = 0; j < m->n; j++)
				if (sector_is(buf + k * SEC, i * SEC, m->s[j])) {
					hit = j;
					break;
				}
			if (hit < 0) {
				char exp[128] = "";
				size_t e = 0;

				for (int j = 0; j < m->n && e < sizeof(exp) - 12; j++)
					e += snprintf(exp + e, sizeof(exp) - e, " %u", m->s[j]);
				pthread_mutex_unlock(&model_lock);
				failure("%s: sector at disk offset %" PRIu64
					" holds none of the allowed contents (seeds:%s; 0 = zeroes); "
					"first bytes %02x %02x %02x %02x",
					what, i * SEC, exp, buf[k * SEC], buf[k * SEC + 1],
					buf[k * SEC + 2], buf[k * SEC + 3]);
				pthread_mutex_lock(&model_lock);
				rc = -1;
			} else if (m->inflight == 1 && !m->mixed) {
				set_one(m, m->s[hit]);
			}
		}
		end_one(m);
	}
	pthread_mutex_unlock(&model_lock);
	return rc;
}

/* ------------------------------------------------------------------ faults */

static __thread int mif_fd = -1;

static void faults(int on)
{
	if (!o_faults)
		return;
	if (mif_fd < 0) {
		mif_fd = open("/proc/thread-self/make-it-fail", O_WRONLY);
		if (mif_fd < 0) {
			printf("# /proc/thread-self/make-it-fail: %s\n", strerror(errno));
			exit(2);
		}
	}
	if (pwrite(mif_fd, on ? "1" : "0", 1, 0) != 1) {
		printf("# make-it-fail: %s\n", strerror(errno));
		exit(2);
	}
}

/* ------------------------------------------------------------------ buffers */

enum { A_ANON, A_THP, A_SHARED, A_FILE, A_N };
static const char *const arena_names[A_N] = { "anon", "thp", "shared", "file" };
#define SLOTS 8
#define SLOT (512 * KiB)
#define ARENA (SLOTS * SLOT)
#define MAXLEN (256 * KiB)
static unsigned char *arena[A_N];

static int map_arenas(void)
{
	void *raw;
	size_t rawlen;
	char path[64];
	int fd;

	arena[A_ANON] = map_anon(ARENA, MAP_PRIVATE);
	arena[A_THP] = map_thp(ARENA, &raw, &rawlen);
	arena[A_SHARED] = map_anon(ARENA, MAP_SHARED);
	snprintf(path, sizeof(path), "/tmp/random_io.%d", getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, ARENA) < 0)
		return -1;
	unlink(path);
	arena[A_FILE] = mmap(NULL, ARENA, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (arena[A_FILE] == MAP_FAILED)
		arena[A_FILE] = NULL;
	for (int i = 0; i < A_N; i++) {
		if (!arena[i])
			return -1;
		memset(arena[i], 0x5a, ARENA);
	}
	return 0;
}

/* ------------------------------------------------------------------ I/O description */

struct io {
	int write;
	int fd;			/* dev or bdev */
	uint64_t off, len;
	uint32_t seed;
	unsigned char *buf;	/* the slot: segments lie at buf + seg_off[i] */
	int nseg;
	struct iovec iov[7];
	int dsync;
	int fixed_idx;		/* registered buffer index, or -1 */
	const char *how;
};

static int dev = -1, bdev = -1, gupfd = -1;

static const char *fdname(int fd)
{
	return fd == dev ? "dev" : "bdev";
}

/*
 * A random I/O in slot @slot of arena @a: direction, device, range (512-byte aligned, 512 bytes
 * to 256 KiB, within [lo, hi)), memory offset, and @maxseg segments at most (odd counts).
 */
static void io_pick(struct rng *r, struct io *io, int a, int slot, int maxseg, uint64_t lo,
		    uint64_t hi, int fd)
{
	uint64_t room = (hi - lo) / SEC;
	uint64_t secs = 1 + rnd_below(r, rnd_below(r, 4) ? 16 : MAXLEN / SEC);
	size_t mo = rnd_below(r, 4) ? 0 : SEC * rnd_below(r, 8);
	unsigned char *p;

	if (secs > room)
		secs = room;
	memset(io, 0, sizeof(*io));
	io->write = rnd_below(r, 2);
	io->fd = fd >= 0 ? fd : (rnd_below(r, 2) ? dev : bdev);
	io->off = lo + SEC * rnd_below(r, room - secs + 1);
	io->len = secs * SEC;
	io->buf = arena[a] + slot * SLOT;
	io->fixed_idx = -1;
	io->nseg = 1;
	if (maxseg > 1 && rnd_below(r, 3) == 0) {
		io->nseg = 1 + 2 * rnd_below(r, (maxseg + 1) / 2);
		if ((uint64_t)io->nseg > secs)
			io->nseg = secs % 2 ? secs : secs - 1;
	}
	/* Segments: whole sectors each, with a gap of one sector between them. */
	p = io->buf + mo;
	for (int i = 0, left = secs; i < io->nseg; i++) {
		int n = i == io->nseg - 1 ? left : 1 + rnd_below(r, left - (io->nseg - 1 - i));

		io->iov[i].iov_base = p;
		io->iov[i].iov_len = (size_t)n * SEC;
		p += (size_t)n * SEC + SEC;
		left -= n;
	}
	io->dsync = io->write && rnd_below(r, 4) == 0;
}

/* Fills a write's segments with its pattern and starts it in the model. */
static void io_start(struct io *io)
{
	if (io->write) {
		uint64_t at = io->off;

		io->seed = new_seed();
		for (int i = 0; i < io->nseg; i++) {
			pat_fill(io->iov[i].iov_base, at, io->iov[i].iov_len, io->seed);
			at += io->iov[i].iov_len;
		}
	} else {
		for (int i = 0; i < io->nseg; i++)
			memset(io->iov[i].iov_base, 0xa5, io->iov[i].iov_len);
	}
	m_begin(io->off, io->len, io->write, io->seed);
}

static void count_result(long res, uint64_t len)
{
	st_ios++;
	if (res >= 0) {
		st_bytes += res;
		if ((uint64_t)res == len)
			st_full++;
		else
			st_short++;
	} else if (-res < 160) {
		st_err[-res]++;
	}
}

/* Whether result @res of an I/O of @len bytes is allowed; @efault: EFAULT is. */
static int allowed(long res, uint64_t len, int efault)
{
	if (res >= 0 && (uint64_t)res == len)
		return 1;
	if (!o_faults || o_strict)
		return efault && (res == -EFAULT || (res >= 0 && (uint64_t)res < len));
	if (res >= 0)
		return (uint64_t)res < len;
	return res == -ENOMEM || res == -EIO || res == -EAGAIN || (efault && res == -EFAULT);
}

static __thread unsigned char *gather;

/* Ends an I/O with result @res: checks the result, then the data read or the model. */
static int io_end(struct io *io, long res, int efault, int check_data)
{
	int rc = 0;

	count_result(res, io->len);
	if (o_trace)
		printf("# op %" PRIu64 ": %s %s via %s off %" PRIu64 " len %" PRIu64 " nseg %d seed %u"
		       " buf %p: %ld\n", cur_op, io->how, io->write ? "write" : "read", fdname(io->fd),
		       io->off, io->len, io->nseg, io->seed, (void *)io->iov[0].iov_base, res);
	/* io_uring cancels a request it cannot hand to a worker (none could be made): with
	 * faults, ECANCELED is allowed there. */
	if (!allowed(res, io->len, efault) &&
	    !(res == -ECANCELED && o_faults && !o_strict && !strncmp(io->how, "io_uring", 8))) {
		failure("%s %s of %" PRIu64 " bytes at %" PRIu64 " (%d segment(s)): result %ld%s%s",
			io->how, io->write ? "write" : "read", io->len, io->off, io->nseg, res,
			res < 0 ? " " : "", res < 0 ? strerror(-res) : "");
		rc = -1;
	}
	if (io->write) {
		m_end_write(io->off, io->len, io->seed, res >= 0 && (uint64_t)res == io->len);
		return rc;
	}
	if (!gather)
		gather = malloc(MAXLEN);
	if (check_data && res > 0) {
		uint64_t at = 0;

		for (int i = 0; i < io->nseg; i++) {
			memcpy(gather + at, io->iov[i].iov_base, io->iov[i].iov_len);
			at += io->iov[i].iov_len;
		}
	}
	if (m_end_read(io->how, io->off, io->len, gather,
		       check_data && res > 0 ? (uint64_t)res : 0))
		rc = -1;
	return rc;
}

/* A synchronous I/O: pread/pwrite, preadv/pwritev or pwritev2(RWF_DSYNC). */
static int io_sync(struct io *io)
{
	long res;

	io_start(io);
	faults(1);
	if (io->dsync)
		res = pwritev2(io->fd, io->iov, io->nseg, io->off, RWF_DSYNC);
	else if (io->nseg > 1)
		res = io->write ? pwritev(io->fd, io->iov, io->nseg, io->off)
				: preadv(io->fd, io->iov, io->nseg, io->off);
	else
		res = io->write ? pwrite(io->fd, io->iov[0].iov_base, io->len, io->off)
				: pread(io->fd, io->iov[0].iov_base, io->len, io->off);
	if (res < 0)
		res = -errno;
	faults(0);
	io->how = io->dsync ? "pwritev2(RWF_DSYNC)" : io->nseg > 1 ? "preadv/pwritev" : "pread/pwrite";
	return io_end(io, res, 0, 1);
}

/* ------------------------------------------------------------------ whole-region checks */

/* Reads the whole region through @fd (no faults) and compares it with the model. */
static int verify_region(int fd)
{
	unsigned char *b = arena[A_ANON];

	for (uint64_t off = 0; off < o_region; off += MAXLEN) {
		uint64_t len = o_region - off < MAXLEN ? o_region - off : MAXLEN;
		ssize_t n;

		m_begin(off, len, 0, 0);
		n = pread(fd, b, len, off);
		if (n != (ssize_t)len) {
			m_end_read("verify", off, len, b, 0);
			failure("verify: pread of %" PRIu64 " at %" PRIu64 " via %s: %zd (%s)", len, off,
				fdname(fd), n, n < 0 ? strerror(errno) : "short");
			return -1;
		}
		if (m_end_read(fd == dev ? "verify via dev" : "verify via bdev", off, len, b, len))
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ io_uring and libaio */

static struct io_uring ring;
static int ring_ok, fixed_registered;
static io_context_t aio_ctx;
static int aio_ok;

static int register_fixed(void)
{
	struct iovec v[3] = {
		{ arena[A_ANON], ARENA }, { arena[A_THP], ARENA }, { arena[A_SHARED], ARENA },
	};
	int rc;

	if (fixed_registered)
		return 0;
	rc = io_uring_register_buffers(&ring, v, 3);
	if (rc)
		return rc;
	fixed_registered = 1;
	return 0;
}

static void unregister_fixed(void)
{
	if (fixed_registered)
		io_uring_unregister_buffers(&ring);
	fixed_registered = 0;
}

/* io_uring_submit of @n entries: faults only around the first attempt. */
static int uring_submit_all(int n)
{
	int done = 0, rc, tries = 0;

	faults(1);
	rc = io_uring_submit(&ring);
	faults(0);
	for (;;) {
		if (rc > 0)
			done += rc;
		else if (rc < 0 && rc != -EAGAIN && rc != -ENOMEM && rc != -EINTR)
			return rc;
		if (rc < 0 && o_faults && !o_strict)
			st_err[-rc < 160 ? -rc : 0]++;
		if (done >= n)
			return 0;
		if (++tries > 1000)
			return -EBUSY;
		rc = io_uring_submit(&ring);
	}
}

/* @n I/Os through io_uring (with registered buffers if @fixed). */
static int op_uring(struct rng *r, int fixed, int forking)
{
	struct io ios[SLOTS];
	int n = 1 + rnd_below(r, SLOTS), rc = 0;
	pid_t child = -1;

	if (fixed && register_fixed())
		fixed = 0;
	for (int i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		/* Forking: only private memory, which the child's writes do not reach. */
		int a = forking ? (rnd_below(r, 2) ? A_ANON : A_THP)
				: fixed ? (int)rnd_below(r, 3) : (int)rnd_below(r, A_N);
		struct io *io = &ios[i];

		io_pick(r, io, a, i, fixed ? 1 : 7, 0, o_region, -1);
		io_start(io);
		io->how = fixed ? "io_uring fixed" : forking ? "io_uring across fork" : "io_uring";
		if (fixed) {
			io->fixed_idx = a;
			if (io->write)
				io_uring_prep_write_fixed(sqe, io->fd, io->iov[0].iov_base, io->len,
							  io->off, a);
			else
				io_uring_prep_read_fixed(sqe, io->fd, io->iov[0].iov_base, io->len,
							 io->off, a);
		} else if (io->write) {
			io_uring_prep_writev(sqe, io->fd, io->iov, io->nseg, io->off);
			if (io->dsync)
				sqe->rw_flags = RWF_DSYNC;
		} else {
			io_uring_prep_readv(sqe, io->fd, io->iov, io->nseg, io->off);
		}
		io_uring_sqe_set_data(sqe, io);
	}
	rc = uring_submit_all(n);
	if (rc) {
		failure("io_uring_submit: %s", strerror(-rc));
		return -1;
	}
	if (forking) {
		child = fork();
		if (child == 0) {
			/* The child writes all over its copy of the private buffers. */
			memset(arena[A_ANON], 0xc3, ARENA);
			memset(arena[A_THP], 0xc3, ARENA);
			_exit(0);
		}
	}
	for (int i = 0; i < n; i++) {
		struct io_uring_cqe *cqe;
		int w = io_uring_wait_cqe(&ring, &cqe);

		if (w) {
			failure("io_uring_wait_cqe: %s", strerror(-w));
			return -1;
		}
		if (io_end(io_uring_cqe_get_data(cqe), cqe->res, 0, 1))
			rc = -1;
		io_uring_cqe_seen(&ring, cqe);
	}
	if (child > 0)
		waitpid(child, NULL, 0);
	return rc;
}

static int op_libaio(struct rng *r)
{
	struct io ios[SLOTS];
	struct iocb cbs[SLOTS], *cbp[SLOTS];
	struct io_event ev[SLOTS];
	int n = 1 + rnd_below(r, SLOTS), rc = 0, sub = 0, nsub = 0;

	for (int i = 0; i < n; i++) {
		struct io *io = &ios[i];

		io_pick(r, io, rnd_below(r, A_N), i, 7, 0, o_region, -1);
		io_start(io);
		io->how = "libaio";
		if (io->nseg > 1) {
			if (io->write)
				io_prep_pwritev(&cbs[i], io->fd, io->iov, io->nseg, io->off);
			else
				io_prep_preadv(&cbs[i], io->fd, io->iov, io->nseg, io->off);
		} else if (io->write) {
			io_prep_pwrite(&cbs[i], io->fd, io->iov[0].iov_base, io->len, io->off);
		} else {
			io_prep_pread(&cbs[i], io->fd, io->iov[0].iov_base, io->len, io->off);
		}
		if (io->dsync)
			cbs[i].aio_rw_flags = RWF_DSYNC;
		cbs[i].data = io;
		cbp[i] = &cbs[i];
	}
	faults(1);
	while (sub < n) {
		int s = io_submit(aio_ctx, n - sub, cbp + sub);

		if (s > 0) {
			sub += s;
			nsub += s;
			continue;
		}
		/* Not submitted: the I/O was refused as a whole, with this error. */
		if (s == 0)
			s = -EAGAIN;
		faults(0);
		if (io_end(&ios[sub], s, 0, 0))
			rc = -1;
		sub++;
		faults(1);
	}
	faults(0);
	for (int got = 0; got < nsub;) {
		int k = io_getevents(aio_ctx, 1, SLOTS, ev, NULL);

		if (k < 0) {
			if (k == -EINTR)
				continue;
			failure("io_getevents: %s", strerror(-k));
			return -1;
		}
		for (int i = 0; i < k; i++)
			if (io_end(ev[i].data, (long)ev[i].res, 0, 1))
				rc = -1;
		got += k;
	}
	return rc;
}

/* ------------------------------------------------------------------ other operations */

/* Discard or write-zeroes of a random range through the block device's ioctls. */
static int op_zero(struct rng *r, int discard)
{
	struct io io;
	uint64_t range[2];
	long res;

	io_pick(r, &io, A_ANON, 0, 1, 0, o_region, bdev);
	io.write = 1;
	io.seed = 0;
	m_begin(io.off, io.len, 1, 0);
	range[0] = io.off;
	range[1] = io.len;
	faults(1);
	res = ioctl(bdev, discard ? BLKDISCARD : BLKZEROOUT, range);
	res = res < 0 ? -errno : (long)io.len;
	faults(0);
	io.how = discard ? "BLKDISCARD" : "BLKZEROOUT";
	io.nseg = 1;
	return io_end(&io, res, 0, 0);
}

static int op_fsync(void)
{
	long res;

	faults(1);
	res = fsync(bdev) ? -errno : 0;
	faults(0);
	count_result(res, 0);
	if (!allowed(res, 0, 0)) {
		failure("fsync of the block device: %ld (%s)", res, strerror(-res));
		return -1;
	}
	return 0;
}

/* mm/gup_test.h (6.12): the ABI /dev/iovx_gup serves. */
struct gup_test {
	__u64 get_delta_usec;
	__u64 put_delta_usec;
	__u64 addr;
	__u64 size;
	__u32 nr_pages_per_call;
	__u32 gup_flags;
	__u32 test_flags;
	__u32 which_pages[8];
};
#define GUP_FAST_BENCHMARK _IOWR('g', 1, struct gup_test)
#define PIN_FAST_BENCHMARK _IOWR('g', 2, struct gup_test)
#define GUP_BASIC_TEST _IOWR('g', 4, struct gup_test)
#define PIN_BASIC_TEST _IOWR('g', 5, struct gup_test)

/* A gup_test ioctl on a slot of some arena: succeeds (or ENOMEM with faults), data unchanged. */
static int op_gup(struct rng *r)
{
	static const unsigned long cmds[] = { GUP_FAST_BENCHMARK, PIN_FAST_BENCHMARK,
					      GUP_BASIC_TEST, PIN_BASIC_TEST };
	static const char *const names[] = { "GUP_FAST_BENCHMARK", "PIN_FAST_BENCHMARK",
					     "GUP_BASIC_TEST", "PIN_BASIC_TEST" };
	int c = rnd_below(r, 4), a = rnd_below(r, A_N), slot = rnd_below(r, SLOTS);
	unsigned char *p = arena[a] + slot * SLOT;
	/* At most 64 pages, and no more than a slot holds (8 pages of 64 KiB). */
	uint64_t len = PAGE * (1 + rnd_below(r, SLOT / PAGE < 64 ? SLOT / PAGE : 64));
	uint32_t s = new_seed();
	struct gup_test g = { 0 };
	long res;

	if (gupfd < 0)
		return 0;
	pat_fill(p, 0, len, s);
	g.addr = (uintptr_t)p;
	g.size = len;
	g.nr_pages_per_call = 1 + rnd_below(r, 64);
	g.gup_flags = rnd_below(r, 2) ? 1 /* FOLL_WRITE */ : 0;
	faults(1);
	res = ioctl(gupfd, cmds[c], &g) ? -errno : 0;
	faults(0);
	count_result(res, 0);
	if (!allowed(res, 0, 0)) {
		failure("%s on %" PRIu64 " bytes of %s memory: %ld (%s)", names[c], len,
			arena_names[a], res, strerror(-res));
		return -1;
	}
	if (pat_diff(p, 0, len, s) >= 0) {
		failure("%s changed the %s buffer", names[c], arena_names[a]);
		return -1;
	}
	return 0;
}

/*
 * io_uring I/O on a buffer of its own that is unmapped (or made inaccessible) as soon as the
 * I/O is submitted: the I/O ends in full, short or with EFAULT, and never touches other memory.
 * A read's data is checked when the buffer was only protected and the read is whole.
 */
static int op_unmap(struct rng *r)
{
	struct io io;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	unsigned char *m = map_anon(SLOT, MAP_PRIVATE);
	unsigned char *save = arena[A_ANON];
	int unmap = rnd_below(r, 2), rc;

	if (!m)
		return 0;
	arena[A_ANON] = m;
	io_pick(r, &io, A_ANON, 0, 7, 0, o_region, -1);
	arena[A_ANON] = save;
	io_start(&io);
	io.how = unmap ? "io_uring then munmap" : "io_uring then mprotect";
	sqe = io_uring_get_sqe(&ring);
	if (io.write)
		io_uring_prep_writev(sqe, io.fd, io.iov, io.nseg, io.off);
	else
		io_uring_prep_readv(sqe, io.fd, io.iov, io.nseg, io.off);
	rc = uring_submit_all(1);
	if (rc) {
		failure("io_uring_submit: %s", strerror(-rc));
		return -1;
	}
	if (unmap)
		munmap(m, SLOT);
	else
		mprotect(m, SLOT, PROT_NONE);
	rc = io_uring_wait_cqe(&ring, &cqe);
	if (rc) {
		failure("io_uring_wait_cqe: %s", strerror(-rc));
		return -1;
	}
	if (!unmap)
		mprotect(m, SLOT, PROT_READ | PROT_WRITE);
	rc = io_end(&io, cqe->res, 1, !unmap);
	io_uring_cqe_seen(&ring, cqe);
	if (!unmap)
		munmap(m, SLOT);
	return rc;
}

/* Several threads of synchronous I/O at once, on disjoint or overlapping ranges. */
struct thr {
	pthread_t t;
	struct rng r;
	int idx, a, nthr, overlap;
	uint64_t lo, hi;
	int rc;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;

	for (int i = 0; i < 8 && !failed_flag; i++) {
		struct io io;

		io_pick(&t->r, &io, t->a, t->idx, 7, t->lo, t->hi, -1);
		if (io_sync(&io))
			t->rc = -1;
	}
	if (mif_fd >= 0) {
		close(mif_fd);
		mif_fd = -1;
	}
	return NULL;
}

static int op_threads(struct rng *r)
{
	struct thr t[4];
	int n = 2 + rnd_below(r, 3), overlap = rnd_below(r, 2), rc = 0;
	uint64_t win = 1 * MiB < o_region ? 1 * MiB : o_region;
	uint64_t base = SEC * rnd_below(r, (o_region - win) / SEC + 1);

	for (int i = 0; i < n; i++) {
		t[i].r.s = rnd(r);
		t[i].idx = i;
		t[i].a = rnd_below(r, A_N);
		t[i].rc = 0;
		if (overlap) {
			t[i].lo = base;
			t[i].hi = base + win;
		} else {
			t[i].lo = o_region / n * i / SEC * SEC;
			t[i].hi = o_region / n * (i + 1) / SEC * SEC;
		}
		if (pthread_create(&t[i].t, NULL, thr_main, &t[i])) {
			n = i;
			break;
		}
	}
	for (int i = 0; i < n; i++) {
		pthread_join(t[i].t, NULL);
		rc |= t[i].rc;
	}
	return rc;
}

/* ------------------------------------------------------------------ phases */

/* The module's page counters balance (pinned/unpinned, referenced/unreferenced,
 * listed/unlisted) as they did at the start; sampled for up to 5 s. */
static const char *const pairs[][2] = {
	{ "pinned", "unpinned" },
	{ "referenced", "unreferenced" },
	{ "listed", "unlisted" },
};
static long long counters_at_start[3];

static void counters_start(void)
{
	unsigned long long a, b;

	for (int i = 0; i < 3; i++)
		if (!debugfs_get(pairs[i][0], &a) && !debugfs_get(pairs[i][1], &b))
			counters_at_start[i] = (long long)(a - b);
}

static int counters_balanced(void)
{
	unsigned long long a = 0, b = 0;

	for (int i = 0; i < 3; i++) {
		for (int tries = 0; tries < 50; tries++) {
			if (debugfs_get(pairs[i][0], &a) || debugfs_get(pairs[i][1], &b))
				break;
			if ((long long)(a - b) == counters_at_start[i])
				break;
			sleep_ms(100);
		}
		if ((long long)(a - b) != counters_at_start[i]) {
			failure("module counters: %s %llu, %s %llu (difference %lld at the start)",
				pairs[i][0], a, pairs[i][1], b, counters_at_start[i]);
			return -1;
		}
	}
	return 0;
}

static long long pins_at_start;

static int pins_balanced(void)
{
	long long acq = 0, rel = 0;

	unregister_fixed();
	/* Pins taken since the start are all released (sampled for up to 5 s: a release can
	 * trail a completion). Relative to the start, so that a replay of a prefix is judged
	 * on its own even after an earlier run leaked. */
	for (int i = 0; i < 50; i++) {
		stat_refresh();
		if (vmstat_get("nr_foll_pin_acquired", &acq) || vmstat_get("nr_foll_pin_released", &rel))
			return 0;
		if (acq - rel == pins_at_start)
			break;
		sleep_ms(100);
	}
	if (acq - rel != pins_at_start) {
		failure("pins: nr_foll_pin_acquired - nr_foll_pin_released is %lld, %lld at the start",
			acq - rel, pins_at_start);
		return -1;
	}
	return counters_balanced();
}

/* Operation @i of the sequence. */
static int one_op(struct rng *r)
{
	unsigned total = 0, x;
	int p = 0;

	for (int i = 0; i < P_N; i++)
		if (o_paths & (1u << i))
			total += path_weight[i];
	x = rnd_below(r, total);
	for (p = 0; p < P_N; p++) {
		if (!(o_paths & (1u << p)))
			continue;
		if (x < path_weight[p])
			break;
		x -= path_weight[p];
	}
	switch (p) {
	case P_PSYNC:
	case P_BDEV: {
		struct io io;

		io_pick(r, &io, rnd_below(r, A_N), 0, 7, 0, o_region, p == P_PSYNC ? dev : bdev);
		return io_sync(&io);
	}
	case P_LIBAIO:
		return aio_ok ? op_libaio(r) : 0;
	case P_URING:
		return ring_ok ? op_uring(r, 0, 0) : 0;
	case P_FIXED:
		return ring_ok ? op_uring(r, 1, 0) : 0;
	case P_DISCARD:
		return op_zero(r, 1);
	case P_ZEROOUT:
		return op_zero(r, 0);
	case P_FSYNC:
		return op_fsync();
	case P_GUP:
		return op_gup(r);
	case P_FORK:
		return ring_ok ? op_uring(r, 0, 1) : 0;
	case P_UNMAP:
		return ring_ok ? op_unmap(r) : 0;
	default:
		return op_threads(r);
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The sequence of seed o_seed: returns 0, or -1 at the first failure. */
static int workload(void)
{
	struct rng r = { o_seed };
	double t0 = now();
	uint64_t range[2] = { 0, o_region };

	/* The region starts zeroed. */
	if (ioctl(bdev, BLKZEROOUT, range)) {
		failure("BLKZEROOUT of the region: %s", strerror(errno));
		return -1;
	}
	for (uint64_t i = 0; i < nsec; i++) {
		set_one(&model[i], 0);
		model[i].inflight = 0;
		model[i].mixed = 0;
	}
	for (cur_op = 1;; cur_op++) {
		if (o_secs ? now() - t0 >= o_secs : cur_op > o_ops)
			break;
		st_ops++;
		if (one_op(&r) || failed_flag)
			return -1;
		if (cur_op % o_phase == 0) {
			if (verify_region(rnd_below(&r, 2) ? dev : bdev) || pins_balanced())
				return -1;
			if (o_secs && cur_op % (o_phase * 4) == 0)
				printf("# %" PRIu64 " operations, %.0f s\n", cur_op, now() - t0);
		}
	}
	cur_op--;
	/* The end: the region reads back as the model says, through both devices, pins balanced. */
	if (verify_region(dev) || verify_region(bdev) || pins_balanced())
		return -1;
	return 0;
}

/* Replays prefixes of the sequence in child processes: the shortest that fails. */
static void shortest_prefix(uint64_t failed_at)
{
	uint64_t lo = 1, hi = failed_at;
	char exe[PATH_MAX];
	ssize_t l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (l <= 0)
		return;
	exe[l] = 0;
	printf("# looking for the shortest failing prefix of seed %" PRIu64 " (at most %" PRIu64
	       " operations)\n", o_seed, failed_at);
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		int fails = 0;

		for (int tries = 0; tries < 2 && !fails; tries++) {
			char seed[32], ops[32], region[32];
			pid_t pid;
			int st;

			snprintf(seed, sizeof(seed), "%" PRIu64, o_seed);
			snprintf(ops, sizeof(ops), "%" PRIu64, mid);
			snprintf(region, sizeof(region), "%" PRIu64, o_region / MiB);
			fflush(stdout);
			pid = fork();
			if (pid == 0) {
				int nul = open("/dev/null", O_WRONLY);
				char paths[256] = "";

				for (int i = 0; i < P_N; i++)
					if (o_paths & (1u << i))
						snprintf(paths + strlen(paths), sizeof(paths) - strlen(paths),
							 "%s%s", paths[0] ? "," : "", path_names[i]);
				dup2(nul, 1);
				execl(exe, exe, "--replay", "--seed", seed, "--ops", ops, "--region", region,
				      "--paths", paths, "--dev", o_dev, "--bdev", o_bdev, "--gup", o_gup,
				      o_faults ? "--faults" : "--replay", NULL);
				_exit(2);
			}
			waitpid(pid, &st, 0);
			fails = WIFEXITED(st) && WEXITSTATUS(st) == 1;
		}
		if (fails)
			hi = mid;
		else
			lo = mid + 1;
	}
	printf("# shortest failing prefix: seed %" PRIu64 ", %" PRIu64 " operations "
	       "(replay: random_io --seed %" PRIu64 " --ops %" PRIu64 " --region %" PRIu64 ")\n",
	       o_seed, hi, o_seed, hi, o_region / MiB);
}

static void usage(void)
{
	fprintf(stderr, "usage: random_io [--dev P] [--bdev P] [--gup P] [--seed N] [--ops N] "
			"[--secs N] [--region MiB] [--phase N] [--paths LIST] [--faults] [--strict] "
			"[--replay] [--name NAME]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	char prefix[64];
	int rc, pins;

	o_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--faults")) {
			o_faults = 1;
			continue;
		}
		if (!strcmp(a, "--strict")) {
			o_strict = 1;
			continue;
		}
		if (!strcmp(a, "--replay")) {
			o_replay = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--dev"))
			o_dev = v;
		else if (!strcmp(a, "--bdev"))
			o_bdev = v;
		else if (!strcmp(a, "--gup"))
			o_gup = v;
		else if (!strcmp(a, "--name"))
			o_name = v;
		else if (!strcmp(a, "--seed"))
			o_seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--ops"))
			o_ops = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--secs"))
			o_secs = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--region"))
			o_region = strtoull(v, NULL, 0) * MiB;
		else if (!strcmp(a, "--phase"))
			o_phase = strtoull(v, NULL, 0) ?: 1;
		else if (!strcmp(a, "--paths")) {
			char *s = strdup(v), *tok, *save;

			o_paths = 0;
			for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				int k;

				for (k = 0; k < P_N && strcmp(tok, path_names[k]); k++)
					;
				if (k == P_N)
					usage();
				o_paths |= 1u << k;
			}
			free(s);
		} else
			usage();
	}
	if (!o_paths || o_region < MiB)
		usage();
	o_trace = getenv("RANDOM_IO_TRACE") != NULL;
	tap_begin(o_name);
	snprintf(prefix, sizeof(prefix), "%s_", o_name);
	printf("# %s: seed %" PRIu64 ", %s%" PRIu64 "%s, region %" PRIu64 " MiB, faults %s\n", o_name,
	       o_seed, o_secs ? "" : "", o_secs ? o_secs : o_ops, o_secs ? " s" : " operations",
	       o_region / MiB, o_faults ? (o_strict ? "on (strict)" : "on") : "off");

	dev = open_direct(o_dev, O_RDWR);
	bdev = open_direct(o_bdev, O_RDWR);
	gupfd = open(o_gup, O_RDWR);
	if (dev < 0 || bdev < 0) {
		report("setup", fail("cannot open %s or %s", o_dev, o_bdev));
		return 1;
	}
	nsec = o_region / SEC;
	model = calloc(nsec, sizeof(*model));
	if (!model || map_arenas()) {
		report("setup", fail("out of memory"));
		return 1;
	}
	ring_ok = io_uring_queue_init(16, &ring, 0) == 0;
	aio_ok = io_setup(16, &aio_ctx) == 0;
	if (!ring_ok || !aio_ok)
		printf("# io_uring %s, libaio %s\n", ring_ok ? "ok" : "unavailable",
		       aio_ok ? "ok" : "unavailable");

	{
		long long acq = 0, rel = 0;

		stat_refresh();
		if (!vmstat_get("nr_foll_pin_acquired", &acq) && !vmstat_get("nr_foll_pin_released", &rel))
			pins_at_start = acq - rel;
		counters_start();
	}
	rc = workload();
	unregister_fixed();
	{
		char errs[1024] = "";
		size_t e = 0;

		for (int i = 0; i < 160; i++)
			if (st_err[i])
				e += snprintf(errs + e, sizeof(errs) - e, " %s %llu",
					      i ? strerrorname_np(i) : "other", (unsigned long long)st_err[i]);
		printf("# %s: seed %" PRIu64 ": %" PRIu64 " operations, %llu I/Os (%llu full, %llu short), "
		       "%llu MiB; errors:%s\n", o_name, o_seed, cur_op, (unsigned long long)st_ios,
		       (unsigned long long)st_full, (unsigned long long)st_short,
		       (unsigned long long)(st_bytes / MiB), errs[0] ? errs : " none");
	}
	if (rc) {
		t_why[0] = 0;
		report("workload", fail("seed %" PRIu64 ", operation %" PRIu64 ": %s", o_seed, cur_op,
					fail_msg));
		if (!o_replay)
			shortest_prefix(cur_op);
		return 1;
	}
	report("workload", 0);
	if (o_replay)
		return 0;
	/* The kernel's pin counters balance as a whole, as the runner checks them. */
	t_why[0] = 0;
	pins = check_vmstat_pins();
	report("pins_balanced", pins);
	return pins < 0 ? 1 : 0;
}
