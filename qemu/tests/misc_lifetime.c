// SPDX-License-Identifier: GPL-2.0
/*
 * misc_lifetime DEV GUP [MODULE]
 *
 * The lifetime of the misc devices of MODULE (default iov_extract) while their files are open:
 * DEV is a direct-I/O device (/dev/iovx_dio0), GUP the gup_test device (/dev/iovx_gup).
 *
 * Each open file holds a reference to the module, which owns the devices' file_operations
 * tables: the module's reference count grows by one per open file (not per descriptor), an
 * unload is refused while a file is open (delete_module() fails with EWOULDBLOCK, or EBUSY),
 * and both devices keep working after the refusal. A file held only by another process (a
 * forked child, after the parent closed its own descriptors) still holds the module, until the
 * child exits. When the program ends, every file is closed and the module's count is back to
 * where it was: the caller unloads the module and loads it again.
 */
#include "common.h"

#include <stddef.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* mm/gup_test.h (not a UAPI header): the ABI that /dev/iovx_gup serves. */
struct gup_test {
	uint64_t get_delta_usec;
	uint64_t put_delta_usec;
	uint64_t addr;
	uint64_t size;
	uint32_t nr_pages_per_call;
	uint32_t gup_flags;
	uint32_t test_flags;
	uint32_t which_pages[8];
};
#define PIN_BASIC_TEST _IOWR('g', 5, struct gup_test)

static const char *dev_path, *gup_path, *module = "iov_extract";
static int dev = -1, gup = -1;
static long base;

/* The module's reference count (/sys/module/NAME/refcnt), or -1. */
static long refcnt(void)
{
	unsigned long long v;
	char path[256];

	snprintf(path, sizeof(path), "/sys/module/%s/refcnt", module);
	return read_sysfs_uint(path, &v) ? -1 : (long)v;
}

static int want_refcnt(long want, const char *when)
{
	long r = refcnt();

	diag("%s: refcnt %ld", when, r);
	if (r != want)
		return fail("%s: refcnt %ld, expected %ld", when, r, want);
	return 0;
}

/* delete_module() must fail because the module is in use, and leave it live. */
static int unload_refused(const char *when)
{
	char path[256], state[32] = "";
	FILE *f;
	long r = syscall(SYS_delete_module, module, O_NONBLOCK);
	int err = errno;

	if (r == 0)
		return fail("%s: the module was unloaded with a file open", when);
	if (err != EWOULDBLOCK && err != EBUSY)
		return fail("%s: delete_module: %s, expected EWOULDBLOCK or EBUSY", when,
			    strerror(err));
	snprintf(path, sizeof(path), "/sys/module/%s/initstate", module);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%31s", state) != 1 || strcmp(state, "live")) {
		if (f)
			fclose(f);
		return fail("%s: module state '%s' after the refused unload", when, state);
	}
	fclose(f);
	diag("%s: delete_module: %s", when, strerror(err));
	return 0;
}

/* A write and read back of 64 KiB through DEV. */
static int dio_round_trip(int fd)
{
	const size_t len = 64 * KiB;
	const off_t off = 24 * MiB;
	unsigned char *w = NULL, *r = NULL;
	int ret = 0;
	long d;

	if (posix_memalign((void **)&w, PAGE, len) || posix_memalign((void **)&r, PAGE, len))
		return fail("posix_memalign failed");
	pat_fill(w, off, len, 0x1f0e);
	memset(r, 0, len);
	if (pwrite(fd, w, len, off) != (ssize_t)len)
		ret = fail("pwrite: %s", strerror(errno));
	else if (pread(fd, r, len, off) != (ssize_t)len)
		ret = fail("pread: %s", strerror(errno));
	else if ((d = pat_diff(r, off, len, 0x1f0e)) >= 0)
		ret = fail("byte %ld read back differs", d);
	free(w);
	free(r);
	return ret;
}

/*
 * PIN_BASIC_TEST on four pages through GUP; the structure comes back whole, with its trailing
 * padding (4 bytes) as it went in.
 */
static int gup_pin(int fd)
{
	unsigned char raw[sizeof(struct gup_test)];
	struct gup_test *g = (struct gup_test *)raw;
	const size_t len = 4 * PAGE;
	size_t tail = offsetof(struct gup_test, which_pages) + sizeof(g->which_pages);
	void *buf = map_anon(len, MAP_PRIVATE);

	if (!buf)
		return fail("mmap failed");
	memset(buf, 0x5a, len);
	memset(raw, 0xa5, sizeof(raw));
	memset(g, 0, tail);
	g->addr = (uintptr_t)buf;
	g->size = len;
	g->nr_pages_per_call = 4;
	if (ioctl(fd, PIN_BASIC_TEST, g)) {
		munmap(buf, len);
		return fail("PIN_BASIC_TEST: %s", strerror(errno));
	}
	munmap(buf, len);
	if (g->size != len)
		return fail("PIN_BASIC_TEST covered %" PRIu64 " bytes of %zu", g->size, len);
	if (sizeof(raw) != 80 || byte_diff(raw + tail, sizeof(raw) - tail, 0xa5) >= 0)
		return fail("the padding of struct gup_test (%zu bytes at %zu) came back changed",
			    sizeof(raw) - tail, tail);
	return 0;
}

static int t_open_counts_files(void)
{
	int d;

	base = refcnt();
	if (base < 0)
		return skip("no /sys/module/%s/refcnt", module);
	dev = open_direct(dev_path, O_RDWR);
	gup = open(gup_path, O_RDWR);
	if (dev < 0 || gup < 0)
		return fail("cannot open %s or %s: %s", dev_path, gup_path, strerror(errno));
	if (want_refcnt(base + 2, "two files open"))
		return -1;
	/* A second descriptor of the same file is not another file. */
	d = dup(dev);
	if (d < 0)
		return fail("dup: %s", strerror(errno));
	if (want_refcnt(base + 2, "a descriptor duplicated")) {
		close(d);
		return -1;
	}
	close(d);
	return 0;
}

static int t_unload_refused_while_open(void)
{
	return unload_refused("files open");
}

static int t_dio_after_refused_unload(void)
{
	return dio_round_trip(dev);
}

static int t_gup_after_refused_unload(void)
{
	return gup_pin(gup);
}

/* The parent closes its descriptors; a child keeps the files and uses them. */
static int t_child_holds_files(void)
{
	int go[2], done[2];
	char c;
	pid_t pid;
	int status, ret;

	if (pipe(go) || pipe(done))
		return fail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		return fail("fork: %s", strerror(errno));
	if (pid == 0) {
		int rc;

		close(go[1]);
		close(done[0]);
		/* Wait until the parent has closed its descriptors. */
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		rc = dio_round_trip(dev) || gup_pin(gup);
		if (rc)
			printf("# child: %s\n", t_why);
		c = rc ? 'x' : 'k';
		if (write(done[1], &c, 1) != 1)
			_exit(2);
		/* Hold the files until the parent closes the pipe. */
		while (read(go[0], &c, 1) > 0)
			;
		_exit(rc);
	}
	close(go[0]);
	close(done[1]);
	close(dev);
	close(gup);
	dev = gup = -1;
	ret = want_refcnt(base + 2, "files held by the child only");
	if (!ret)
		ret = unload_refused("files held by the child only");
	c = 'g';
	if (write(go[1], &c, 1) != 1 && !ret)
		ret = fail("write to the child: %s", strerror(errno));
	if (read(done[0], &c, 1) != 1 || c != 'k') {
		if (!ret)
			ret = fail("the child's I/O on the held files failed");
	}
	close(go[1]);
	close(done[0]);
	if (waitpid(pid, &status, 0) != pid && !ret)
		ret = fail("waitpid: %s", strerror(errno));
	/* The child's files were released before it was reaped. */
	if (!ret)
		ret = want_refcnt(base, "the child exited");
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s DEV GUP [MODULE]\n", argv[0]);
		return 2;
	}
	dev_path = argv[1];
	gup_path = argv[2];
	if (argc == 4)
		module = argv[3];
	tap_begin("misc_lifetime");
	run("open_counts_files", t_open_counts_files);
	if (dev < 0 || gup < 0)
		return tap_end();
	run("unload_refused_while_open", t_unload_refused_while_open);
	run("dio_after_refused_unload", t_dio_after_refused_unload);
	run("gup_after_refused_unload", t_gup_after_refused_unload);
	run("child_holds_files", t_child_holds_files);
	run("pins_balanced", t_vmstat_pins_balanced);
	return tap_end();
}
