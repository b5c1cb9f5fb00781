// SPDX-License-Identifier: GPL-2.0
/*
 * Out-of-line wrappers for static inline kernel functions; see shim.h.
 */
#include <linux/uio.h>
#include <linux/mm.h>
#include <linux/highmem.h>
#include <linux/page-flags.h>
#include <linux/pagemap.h>
#include <linux/folio_queue.h>
#include <linux/xarray.h>
#include <linux/uaccess.h>
#include <linux/fs.h>
#include <linux/mman.h>
#include <linux/debugfs.h>
#include <linux/blkdev.h>
#include <linux/blk-mq.h>
#include <linux/bio.h>
#include <linux/workqueue.h>
#include <linux/kthread.h>
#include <linux/sched/mm.h>
#include <linux/io_uring/cmd.h>
#include <linux/miscdevice.h>
#include <linux/slab.h>
#include <linux/completion.h>
#include <linux/mmap_lock.h>
#include <linux/mmdebug.h>
#include <linux/ktime.h>
#include <linux/sched.h>
#include <linux/swap.h>
#include <linux/pagevec.h>
#include <linux/cpu.h>
#include <linux/vmstat.h>
#include <linux/rcupdate.h>
#include <linux/wait_bit.h>
#include <xen/xen.h>
#ifdef IOVX_KUNIT
#include <kunit/test.h>
#include <linux/moduleparam.h>
#endif

#include "shim.h"

void iovx_iov_iter_ubuf(struct iov_iter *i, unsigned int direction,
			void __user *buf, size_t count)
{
	iov_iter_ubuf(i, direction, buf, count);
}

unsigned long iovx_iov_iter_nr_segs(const struct iov_iter *i)
{
	switch (iov_iter_type(i)) {
	case ITER_UBUF:
		return 1;
	case ITER_IOVEC:
	case ITER_KVEC:
	case ITER_BVEC:
		return i->nr_segs;
	default:
		return 0;
	}
}

bool iovx_iov_iter_extract_will_pin(const struct iov_iter *i)
{
	return iov_iter_extract_will_pin(i);
}

size_t iovx_copy_to_iter(const void *addr, size_t bytes, struct iov_iter *i)
{
	return copy_to_iter(addr, bytes, i);
}

size_t iovx_copy_from_iter(void *addr, size_t bytes, struct iov_iter *i)
{
	return copy_from_iter(addr, bytes, i);
}

/*
 * Folios held in an XArray or a folio queue, for ITER_XARRAY and ITER_FOLIOQ iterators
 * (include/linux/gfp.h, include/linux/highmem.h, include/linux/xarray.h,
 * include/linux/folio_queue.h).
 */
struct folio *iovx_folio_alloc(unsigned int order)
{
	if (order > MAX_PAGE_ORDER)
		return NULL;
	return folio_alloc(GFP_KERNEL | __GFP_ZERO | __GFP_NOWARN | __GFP_RETRY_MAYFAIL, order);
}

void iovx_folio_put(struct folio *folio)
{
	folio_put(folio);
}

size_t iovx_folio_size(struct folio *folio)
{
	return folio_size(folio);
}

void iovx_memcpy_to_folio(struct folio *folio, size_t off, const u8 *from, size_t len)
{
	memcpy_to_folio(folio, off, (const char *)from, len);
}

void iovx_memcpy_from_folio(u8 *to, struct folio *folio, size_t off, size_t len)
{
	memcpy_from_folio((char *)to, folio, off, len);
}

void iovx_xa_init(struct xarray *xa)
{
	xa_init(xa);
}

/*
 * Stores @folio at the indices of its pages from @index (aligned to its size), as one
 * multi-index entry for a large folio, as the page cache does (__filemap_add_folio()).
 */
int iovx_xa_store_folio(struct xarray *xa, unsigned long index, struct folio *folio)
{
	XA_STATE_ORDER(xas, xa, index, folio_order(folio));

	if (!IS_ENABLED(CONFIG_XARRAY_MULTI) && folio_order(folio))
		return -EINVAL;
	if (index & (folio_nr_pages(folio) - 1))
		return -EINVAL;
	do {
		xas_lock(&xas);
		xas_store(&xas, folio);
		xas_unlock(&xas);
	} while (xas_nomem(&xas, GFP_KERNEL));
	return xas_error(&xas);
}

unsigned int iovx_max_page_order(void)
{
	return MAX_PAGE_ORDER;
}

struct folio_queue *iovx_folioq_alloc(void)
{
	struct folio_queue *fq = kzalloc(sizeof(*fq), GFP_KERNEL);

	if (fq)
		folioq_init(fq, 0);
	return fq;
}

void iovx_folioq_free(struct folio_queue *fq)
{
	kfree(fq);
}

/* Appends @folio, returning its slot, or -ENOSPC when the segment is full. */
int iovx_folioq_append(struct folio_queue *fq, struct folio *folio)
{
	if (folioq_full(fq))
		return -ENOSPC;
	return folioq_append(fq, folio);
}

void iovx_folioq_chain(struct folio_queue *prev, struct folio_queue *next)
{
	prev->next = next;
	next->prev = prev;
}

unsigned int iovx_extract_allow_p2pdma(void)
{
	return (__force unsigned int)ITER_ALLOW_P2PDMA;
}

void iovx_put_page(struct page *page)
{
	put_page(page);
}

static void iovx_folio_set_dirty(struct folio *folio)
{
	if (folio_test_dirty(folio))
		return;
	folio_lock(folio);
	folio_mark_dirty(folio);
	folio_unlock(folio);
}

/*
 * A segment of a bio of bio.rs covers a physically contiguous run of pages (bio.rs's # Invariants
 * of Bio): the pages of one folio, or of adjacent folios, as bio_iov_add_folio() makes them.
 * Each page of each segment holds one pin (BIO_PAGE_PINNED) or one reference of the bio, so a
 * folio holds as many as the pages of it that the segments cover, counted once per segment: a
 * page in two segments (two iovecs in one page) holds two. The walks below go folio by folio,
 * a run of pieces in one folio being one folio to dirty and that many pins to drop, as
 * __bio_release_pages() does.
 */

/*
 * The walk: calls @fn(folio, n, arg) for each piece of a segment that lies in one folio, n being
 * the pages of the folio the piece covers, with consecutive pieces in the same folio given as
 * one (n added up); returns the pages, counted once per segment that covers them. As
 * bio_for_each_folio_all(), with a segment within one page (the usual
 * segment of base pages) taken without looking at the folio's size. @fn may drop the folio's
 * last pin: the walk does not touch a folio after handing it on (a later segment that comes
 * back to it holds pins of its own).
 */
static __always_inline unsigned long
iovx_bio_walk_folios(struct bio *bio, void (*fn)(struct folio *, unsigned long, void *), void *arg)
{
	struct folio *folio = NULL;
	unsigned long n = 0, total = 0;
	unsigned short i;

	for (i = 0; i < bio->bi_vcnt; i++) {
		const struct bio_vec *bv = &bio->bi_io_vec[i];
		struct page *page = bv->bv_page + bv->bv_offset / PAGE_SIZE;
		size_t off = bv->bv_offset % PAGE_SIZE, len = bv->bv_len;

		if (likely(len && off + len <= PAGE_SIZE)) {
			/* Within one page: one page of its folio. */
			struct folio *f = page_folio(page);

			if (f != folio) {
				if (folio)
					fn(folio, n, arg);
				folio = f;
				n = 0;
			}
			n++;
			total++;
			continue;
		}
		while (len) {
			struct folio *f = page_folio(page);
			unsigned long k;
			size_t bytes;

			if (off + len <= PAGE_SIZE) {
				k = 1;
				bytes = len;
			} else {
				unsigned long left = folio_nr_pages(f) - folio_page_idx(f, page);

				k = min_t(unsigned long, DIV_ROUND_UP(off + len, PAGE_SIZE), left);
				bytes = min_t(size_t, len, k * PAGE_SIZE - off);
			}
			if (f != folio) {
				if (folio)
					fn(folio, n, arg);
				folio = f;
				n = 0;
			}
			n += k;
			total += k;
			len -= bytes;
			page += k;
			off = 0;
		}
	}
	if (folio)
		fn(folio, n, arg);
	return total;
}

static __always_inline void iovx_folio_dirty_fn(struct folio *folio, unsigned long n, void *arg)
{
	iovx_folio_set_dirty(folio);
}

/*
 * bio_set_pages_dirty(), skipping folios that are dirty already: most I/O buffers are, and
 * locking them for nothing costs more than the test. A folio cleaned between this test and the
 * end of the read is found clean by bio_check_pages_dirty(), which dirties it again.
 */
void iovx_bio_set_pages_dirty(struct bio *bio)
{
	iovx_bio_walk_folios(bio, iovx_folio_dirty_fn, NULL);
}

struct iovx_release {
	bool pinned, mark_dirty;
};

/*
 * put_page() @n times over: an fsdax folio whose count falls to one wakes the waiters of
 * ext4/xfs_break_layouts() (put_devmap_managed_folio_refs()), as in put_page() and
 * gup_put_folio(); folio_put_refs() alone would not.
 */
static __always_inline void iovx_folio_put_refs(struct folio *folio, unsigned long n)
{
	if (!put_devmap_managed_folio_refs(folio, n))
		folio_put_refs(folio, n);
}

/* Drops @n pins or references of @folio, dirtying it first if asked. */
static __always_inline void iovx_folio_release_fn(struct folio *folio, unsigned long n,
						  void *arg)
{
	const struct iovx_release *r = arg;

	if (r->mark_dirty)
		iovx_folio_set_dirty(folio);
	if (r->pinned)
		unpin_user_folio(folio, n);
	else
		iovx_folio_put_refs(folio, n);
}

/*
 * Releases every page of a bio of bio.rs folio by folio: unpin_user_folio(folio, n) for pinned
 * pages, iovx_folio_put_refs(folio, n) for referenced ones, where n is the pages of the folio
 * that the segments cover.
 */
static __always_inline unsigned long iovx_bio_release_folios(struct bio *bio, bool pinned,
							     bool mark_dirty)
{
	struct iovx_release r = { .pinned = pinned, .mark_dirty = mark_dirty };

	return iovx_bio_walk_folios(bio, iovx_folio_release_fn, &r);
}

/*
 * __bio_release_pages() for a bio of bio.rs, with a folio that is dirty already left as it is:
 * its lock is taken to dirty it only if it is clean. The data is in the folio once the I/O is
 * over, so a folio still dirty then is written back with it by whoever cleans it later;
 * bio_check_pages_dirty() relies on the same. Anonymous memory, the usual buffer of direct I/O,
 * stays dirty after its first read, so the folio lock is then taken once rather than on every
 * read. Returns the pages released (pins dropped).
 */
unsigned long iovx_bio_release_pages(struct bio *bio, bool mark_dirty)
{
	return iovx_bio_release_folios(bio, true, mark_dirty);
}

/*
 * The pages of a bio of bio.rs that holds page references (the legacy FOLL_GET mode, one
 * reference per page of each segment): put per folio, after dirtying the folios that are clean
 * if @mark_dirty. Process context when @mark_dirty (folio locks); any context otherwise.
 * Returns the references put.
 */
unsigned long iovx_bio_put_pages(struct bio *bio, bool mark_dirty)
{
	return iovx_bio_release_folios(bio, false, mark_dirty);
}

/*
 * bio_check_pages_dirty() for the read bios of bio.rs, pinned (BIO_PAGE_PINNED) or referenced
 * (no flag: 6.12 has no BIO_PAGE_REFFED), whose folios were dirtied before submission
 * (iovx_bio_set_pages_dirty()). A folio found clean at completion was cleaned while the read
 * was in flight (writeback of a shared file mapping): the data the device wrote into it would
 * be lost, so it is dirtied again, which takes the folio lock, from a worker, as the block
 * layer's own bio_dirty_fn() does. The block layer's worker cannot be used: it unpins, and a
 * referenced page must be put. Returns the number of clean folios found (0: the pages were
 * released here and the bio put), and in *@pages the pages of the bio (pins or references).
 */
static void iovx_redirty_fn(struct work_struct *work);
static DECLARE_WORK(iovx_redirty_work, iovx_redirty_fn);
static DEFINE_SPINLOCK(iovx_redirty_lock);
static struct bio *iovx_redirty_list;

static void iovx_bio_release_any(struct bio *bio, bool mark_dirty)
{
	if (bio_flagged(bio, BIO_PAGE_PINNED))
		iovx_bio_release_pages(bio, mark_dirty);
	else
		iovx_bio_put_pages(bio, mark_dirty);
	bio_put(bio);
}

static void iovx_redirty_fn(struct work_struct *work)
{
	struct bio *bio, *next;

	spin_lock_irq(&iovx_redirty_lock);
	next = iovx_redirty_list;
	iovx_redirty_list = NULL;
	spin_unlock_irq(&iovx_redirty_lock);

	while ((bio = next) != NULL) {
		next = bio->bi_private;
		iovx_bio_release_any(bio, true);
	}
}

static __always_inline void iovx_folio_count_clean_fn(struct folio *folio, unsigned long n,
						      void *arg)
{
	if (!folio_test_dirty(folio))
		(*(unsigned int *)arg)++;
}

unsigned int iovx_bio_check_pages_dirty(struct bio *bio, unsigned long *pages)
{
	unsigned int clean = 0;
	unsigned long flags;

	*pages = iovx_bio_walk_folios(bio, iovx_folio_count_clean_fn, &clean);
	if (!clean) {
		iovx_bio_release_any(bio, false);
		return 0;
	}
	spin_lock_irqsave(&iovx_redirty_lock, flags);
	bio->bi_private = iovx_redirty_list;
	iovx_redirty_list = bio;
	spin_unlock_irqrestore(&iovx_redirty_lock, flags);
	schedule_work(&iovx_redirty_work);
	return clean;
}

/* Waits until every bio handed to the re-dirtying worker so far has been released. */
void iovx_bio_flush_redirty(void)
{
	flush_work(&iovx_redirty_work);
}

/*
 * Pages pinned with FOLL_PIN since boot (/proc/vmstat nr_foll_pin_acquired), exactly: the
 * global count plus the per-CPU deltas not folded into it yet (global_node_page_state() alone
 * lags by up to the per-CPU thresholds).
 */
unsigned long iovx_foll_pin_acquired(void)
{
	long x = 0;
	int nid, cpu;

	for_each_online_node(nid) {
		struct pglist_data *pgdat = NODE_DATA(nid);

		x += atomic_long_read(&pgdat->vm_stat[NR_FOLL_PIN_ACQUIRED]);
		for_each_online_cpu(cpu)
			x += per_cpu_ptr(pgdat->per_cpu_nodestats, cpu)
				     ->vm_node_stat_diff[NR_FOLL_PIN_ACQUIRED];
	}
	return x;
}

#ifdef IOVX_KUNIT
/*
 * lru_add_drain() on this CPU: __folio_batch_release() of an empty batch drains the CPU's folio
 * batches first (lru_add_drain() and lru_add_drain_all() themselves are not exported).
 */
static void iovx_drain_fn(struct work_struct *work)
{
	struct folio_batch fb;

	folio_batch_init(&fb);
	__folio_batch_release(&fb);
}

/* Empties every CPU's folio batches, whose references on new folios come and go. */
void iovx_lru_add_drain_all(void)
{
	int cpu;

	cpus_read_lock();
	for_each_online_cpu(cpu) {
		struct work_struct w;

		INIT_WORK_ONSTACK(&w, iovx_drain_fn);
		queue_work_on(cpu, system_wq, &w);
		flush_work(&w);
		destroy_work_on_stack(&w);
	}
	cpus_read_unlock();
}
#endif

/* The large-folio pin count (_pincount), or -1 for a small folio, which has none. */
int iovx_page_folio_pincount(struct page *page)
{
	struct folio *folio = page_folio(page);

	if (!folio_test_large(folio))
		return -1;
	return atomic_read(&folio->_pincount);
}

/* The order of the page's folio (0 for a small folio, 9 for a PMD-sized THP on x86-64). */
unsigned int iovx_page_folio_order(struct page *page)
{
	return folio_order(page_folio(page));
}

/*
 * A whole page is copied or cleared with the architecture's page routines, as zram does for its
 * pages: on x86-64 these are "rep movsq" / "rep stosq" where the CPU does fast strings, where
 * memcpy() without FSRM is a loop of 64-bit moves. Only the data: not copy_highpage(), which on
 * arm64 also copies the source's MTE tags to the destination (and marks it tagged) and resets
 * its KASAN tag in page->flags, state that belongs to each page's owner (a user page of a
 * PROT_MTE mapping written to the disk must not give its tags to the page a later read fills).
 */
void iovx_copy_page(struct page *dst, size_t dst_off, struct page *src,
		    size_t src_off, size_t len)
{
	if (len == PAGE_SIZE && !dst_off && !src_off) {
		void *to = kmap_local_page(dst);
		void *from = kmap_local_page(src);

		copy_page(to, from);
		kunmap_local(from);
		kunmap_local(to);
	} else {
		memcpy_page(dst, dst_off, src, src_off, len);
	}
}

void iovx_zero_page(struct page *page, size_t off, size_t len)
{
	if (len == PAGE_SIZE && !off)
		clear_highpage(page);
	else
		memzero_page(page, off, len);
}

/*
 * Puts one reference of each of @n pages, dirtying them first if @dirty: a run of pages of one
 * folio is one folio to dirty and that many references to put (iovx_folio_put_refs()), as
 * unpin_user_pages() groups the pins of a folio.
 */
void iovx_put_pages(struct page **pages, unsigned long n, bool dirty)
{
	unsigned long i, j;

	for (i = 0; i < n; i = j) {
		struct folio *folio = page_folio(pages[i]);

		for (j = i + 1; j < n && page_folio(pages[j]) == folio; j++)
			;
		if (dirty)
			set_page_dirty_lock(pages[i]);
		iovx_folio_put_refs(folio, j - i);
	}
}

/*
 * With CONFIG_DEBUG_VM, what unpin_user_pages() checks first (sanity_check_pinned_pages() of
 * mm/gup.c, static there): a pinned anonymous page stays exclusive to its process until freed
 * (for a large non-hugetlb folio, the page or the folio's first page is marked so).
 */
static void iovx_check_pinned_pages(struct page **pages, unsigned long n)
{
	unsigned long i;

	if (!IS_ENABLED(CONFIG_DEBUG_VM))
		return;
	for (i = 0; i < n; i++) {
		struct page *page = pages[i];
		struct folio *folio = page_folio(page);

		if (is_zero_page(page) || !folio_test_anon(folio))
			continue;
		if (!folio_test_large(folio) || folio_test_hugetlb(folio))
			VM_BUG_ON_PAGE(!PageAnonExclusive(&folio->page), page);
		else
			VM_BUG_ON_PAGE(!PageAnonExclusive(&folio->page) && !PageAnonExclusive(page),
				       page);
	}
}

/*
 * unpin_user_pages_dirty_lock(): drops one pin of each of @n pages, dirtying their folios first
 * if @dirty. The pages of a large folio that follow one another in @pages as they follow one
 * another in the folio (as GUP records the pages of a PMD or of a PTE-mapped large folio) are
 * counted by comparing their pointers, without looking up each one's folio as
 * unpin_user_pages() does; other pages of the same folio right after them join the run as
 * there. A small folio is one pin per entry.
 */
void iovx_unpin_pages(struct page **pages, unsigned long n, bool dirty)
{
	unsigned long i, j;

	iovx_check_pinned_pages(pages, n);
	for (i = 0; i < n; i = j) {
		struct page *page = pages[i];
		struct folio *folio = page_folio(page);

		j = i + 1;
		if (folio_test_large(folio)) {
			unsigned long end = i + folio_nr_pages(folio) - folio_page_idx(folio, page);

			end = min(end, n);
			while (j < end && pages[j] == nth_page(page, j - i))
				j++;
			while (j < n && page_folio(pages[j]) == folio)
				j++;
		}
		if (dirty)
			iovx_folio_set_dirty(folio);
		unpin_user_folio(folio, j - i);
	}
}

int iovx_page_ref_count(struct page *page)
{
	return folio_ref_count(page_folio(page));
}

bool iovx_page_maybe_dma_pinned(struct page *page)
{
	return folio_maybe_dma_pinned(page_folio(page));
}

bool iovx_page_dirty(struct page *page)
{
	return folio_test_dirty(page_folio(page));
}

bool iovx_page_test_clear_dirty(struct page *page)
{
	return folio_test_clear_dirty(page_folio(page));
}

void *iovx_kmap_local_page(struct page *page)
{
	return kmap_local_page(page);
}

void iovx_kunmap_local(const void *addr)
{
	kunmap_local(addr);
}

bool iovx_access_ok(unsigned long addr, size_t len)
{
	return access_ok((const void __user *)addr, len);
}

size_t iovx_max_rw_count(void)
{
	return MAX_RW_COUNT;
}

struct dentry *iovx_debugfs_create_dir(const char *name)
{
	return debugfs_create_dir(name, NULL);
}

void iovx_debugfs_create_u64(const char *name, struct dentry *parent,
			     u64 *value)
{
	debugfs_create_u64(name, 0444, parent, value);
}

void iovx_debugfs_remove(struct dentry *dentry)
{
	debugfs_remove(dentry);
}

#ifdef IOVX_KUNIT
/* KUnit helpers: built into iov_extract_kunit.ko only (shim_kunit.c). */

/* mm_alloc() and arch_pick_mmap_layout() are exported for KUnit tests only. */
MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);

/*
 * Gives the kernel thread that runs a KUnit case an address space of its own, as
 * kunit_vm_mmap() would, but with the reference counts of a process after exec: the
 * thread's mm holds one mm_users reference, which holds the one mm_count reference of
 * mm_alloc(), and active_mm holds none. The thread exits with its mm still attached;
 * do_exit() -> exit_mm() then puts the last user and the mm is freed.
 *
 * kunit_attach_mm() of 6.12 keeps the mm_count reference that kthread_use_mm() takes for
 * active_mm; nothing drops it (only kthread_unuse_mm() would), so every case that maps
 * user memory through it leaks its mm_struct, pgd and per-CPU counters after exit_mmap()
 * has freed the mappings. kunit_vm_mmap() attaches nothing when the thread already has
 * an mm.
 */
static int iovx_kunit_attach_mm(void)
{
	struct mm_struct *mm;

	if (current->mm)
		return 0;
	mm = mm_alloc();
	if (!mm)
		return -ENOMEM;
	mm->task_size = TASK_SIZE;
	arch_pick_mmap_layout(mm, &current->signal->rlim[RLIMIT_STACK]);
	kthread_use_mm(mm);
	/* current->mm's user reference keeps the mm alive from here on. */
	mmdrop(mm);
	return 0;
}

unsigned long iovx_kunit_vm_mmap(struct kunit *test, unsigned long len,
				 bool read, bool write)
{
	unsigned long prot = (read ? PROT_READ : 0) | (write ? PROT_WRITE : 0);
	int err = iovx_kunit_attach_mm();

	if (err)
		return (unsigned long)err;
	return kunit_vm_mmap(test, NULL, 0, len, prot, MAP_PRIVATE, 0);
}

void iovx_kunit_fail(struct kunit *test, const char *file, int line,
		     const char *msg)
{
	KUNIT_FAIL(test, "%s:%d: %s", file, line, msg);
}

void iovx_kunit_skip(struct kunit *test, const char *msg)
{
	kunit_mark_skipped(test, "%s", msg);
}

/*
 * full=1 (the guest runner's soak mode, or qemu/run --full): the long cases at their full size,
 * such as a sweep failing every fault injection point in turn instead of a sample of them.
 */
static bool full;
module_param(full, bool, 0444);
MODULE_PARM_DESC(full, "Run the long cases at their full size, e.g. every fault point of a sweep (default N)");

bool iovx_kunit_full(void)
{
	return READ_ONCE(full);
}

/*
 * Makes the @n-th fault injection point reached by the current task fail (0: none), as
 * /proc/self/fail-nth does; gives the points left before that one (0 once it was reached), or
 * -1 without CONFIG_FAULT_INJECTION.
 */
int iovx_kunit_fail_nth(unsigned int n)
{
#ifdef CONFIG_FAULT_INJECTION
	unsigned int left = READ_ONCE(current->fail_nth);

	WRITE_ONCE(current->fail_nth, n);
	return left;
#else
	return -1;
#endif
}
#endif /* IOVX_KUNIT */

/*
 * The features of a RAM disk: a write cache with FUA, which the driver sees as flush requests
 * (blk-mq, which adds I/O statistics and REQ_NOWAIT itself); or, bio-based, no write cache (the
 * block layer completes flushes and drops FUA, as for brd), REQ_NOWAIT bios, and I/O statistics
 * kept by iovx_bio_acct_start() and iovx_bio_acct_end() while they are on.
 */
void iovx_queue_limits_features(struct queue_limits *lim, bool bio_based)
{
	if (bio_based)
		lim->features |= BLK_FEAT_NOWAIT | BLK_FEAT_IO_STAT;
	else
		lim->features |= BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA;
}

/*
 * The start of the I/O statistics of a bio of a bio-based disk whose queue keeps them
 * (BLK_FEAT_IO_STAT, tested by the caller); gives the start time.
 */
unsigned long iovx_bio_acct_start(struct bio *bio)
{
	return bio_start_io_acct(bio);
}

/* The read-side section a bio-based disk's driver is called in (blk-mq calls queue_rq in one). */
void iovx_rcu_read_lock(void)
{
	rcu_read_lock();
}

void iovx_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

/* The end of the I/O of @bio started with iovx_bio_acct_start(), before it is ended. */
void iovx_bio_acct_end(struct bio *bio, unsigned long start)
{
	bio_end_io_acct(bio, start);
}

void *iovx_rq_pdu(struct request *rq)
{
	return blk_mq_rq_to_pdu(rq);
}

struct request *iovx_rq_from_pdu(void *pdu)
{
	return blk_mq_rq_from_pdu(pdu);
}

/*
 * One single-page segment at a time, as rq_for_each_segment() walks them. For a bio with data,
 * the piece of the current (possibly multi-page) segment up to the next page boundary is worked
 * out here as bio_iter_iovec() and bio_advance_iter_single() do, without their generic macros.
 */
bool iovx_rq_iter_next(struct req_iterator *it, struct bio_vec *bv)
{
	while (it->bio) {
		if (it->iter.bi_size) {
			if (!bio_no_advance_iter(it->bio)) {
				const struct bio_vec *v = &it->bio->bi_io_vec[it->iter.bi_idx];
				unsigned int done = it->iter.bi_bvec_done;
				unsigned int off, len;

				/* A segment within one page, not started: taken whole. */
				if (!done && v->bv_len <= it->iter.bi_size &&
				    v->bv_offset + v->bv_len <= PAGE_SIZE) {
					*bv = *v;
					it->iter.bi_idx++;
					it->iter.bi_size -= v->bv_len;
					it->iter.bi_sector += v->bv_len >> SECTOR_SHIFT;
					return true;
				}
				off = v->bv_offset + done;
				len = min3(it->iter.bi_size, v->bv_len - done,
					   (unsigned int)(PAGE_SIZE - offset_in_page(off)));
				bv->bv_page = nth_page(v->bv_page, off >> PAGE_SHIFT);
				bv->bv_offset = offset_in_page(off);
				bv->bv_len = len;
				done += len;
				if (done == v->bv_len) {
					it->iter.bi_idx++;
					done = 0;
				}
				it->iter.bi_bvec_done = done;
				it->iter.bi_size -= len;
				it->iter.bi_sector += len >> SECTOR_SHIFT;
				return true;
			}
			*bv = bio_iter_iovec(it->bio, it->iter);
			bio_advance_iter_single(it->bio, &it->iter, bv->bv_len);
			return true;
		}
		it->bio = it->bio->bi_next;
		if (it->bio)
			it->iter = it->bio->bi_iter;
	}
	return false;
}

u8 iovx_errno_to_blk_status(int err)
{
	return (__force u8)errno_to_blk_status(err);
}

struct gendisk *iovx_blk_mq_alloc_disk(struct blk_mq_tag_set *set,
				       struct queue_limits *lim,
				       void *queuedata)
{
	return blk_mq_alloc_disk(set, lim, queuedata);
}

/* A bio-based disk (its fops->submit_bio serves the bios), @queuedata on its queue. */
struct gendisk *iovx_blk_alloc_disk(struct queue_limits *lim, void *queuedata)
{
	struct gendisk *disk = blk_alloc_disk(lim, NUMA_NO_NODE);

	if (!IS_ERR(disk))
		disk->queue->queuedata = queuedata;
	return disk;
}

void iovx_delayed_work_init(struct delayed_work *dw,
			    void (*fn)(struct work_struct *))
{
	INIT_DELAYED_WORK(dw, fn);
}

struct delayed_work *iovx_to_delayed_work(struct work_struct *w)
{
	return to_delayed_work(w);
}

/* A bio on the caller's storage, as block/fops.c keeps one on its stack for small sync I/O. */
void iovx_bio_init_inline(struct bio *bio, struct bio_vec *vecs, unsigned short nr_vecs,
			  struct block_device *bdev, bool write, u64 sector)
{
	bio_init(bio, bdev, vecs, nr_vecs,
		 write ? REQ_OP_WRITE | REQ_SYNC | REQ_IDLE : REQ_OP_READ);
	bio->bi_iter.bi_sector = sector;
}

struct iovx_misc {
	struct miscdevice misc;
	void *data;
};

void iovx_file_set_private(struct file *file, void *data)
{
	file->private_data = data;
}

/* misc_open() leaves the miscdevice in file->private_data. */
void *iovx_file_data(struct file *file)
{
	struct miscdevice *misc = file->private_data;

	return container_of(misc, struct iovx_misc, misc)->data;
}

void *iovx_misc_register(const char *name, const struct file_operations *fops,
			 void *data)
{
	struct iovx_misc *m;
	int err;

	m = kzalloc(sizeof(*m), GFP_KERNEL);
	if (!m)
		return ERR_PTR(-ENOMEM);
	m->misc.minor = MISC_DYNAMIC_MINOR;
	m->misc.name = kstrdup_const(name, GFP_KERNEL);
	m->misc.fops = fops;
	m->misc.mode = 0600;
	m->data = data;
	if (!m->misc.name) {
		kfree(m);
		return ERR_PTR(-ENOMEM);
	}
	err = misc_register(&m->misc);
	if (err) {
		kfree_const(m->misc.name);
		kfree(m);
		return ERR_PTR(err);
	}
	return &m->misc;
}

void iovx_misc_deregister(void *misc)
{
	struct iovx_misc *m = container_of(misc, struct iovx_misc, misc);

	misc_deregister(&m->misc);
	kfree_const(m->misc.name);
	kfree(m);
}

void iovx_file_allow_odirect(struct file *file)
{
	file->f_mode |= FMODE_CAN_ODIRECT | FMODE_NOWAIT;
}

static_assert(IOVX_IOCB_NOWAIT == IOCB_NOWAIT);
static_assert(IOVX_BLK_FEAT_IO_STAT == (__force unsigned int)BLK_FEAT_IO_STAT);

void iovx_init_completion(struct completion *c)
{
	init_completion(c);
}

int iovx_mmap_read_lock_killable(void)
{
	return mmap_read_lock_killable(current->mm);
}

void iovx_mmap_read_unlock(void)
{
	mmap_read_unlock(current->mm);
}

bool iovx_page_longterm_pinnable(struct page *page)
{
	return folio_is_longterm_pinnable(page_folio(page));
}

void iovx_dump_page(struct page *page, const char *reason)
{
	dump_page(page, reason);
}

void iovx_warn(const char *msg)
{
	WARN(1, "%s", msg);
}

s64 iovx_ktime_us(void)
{
	return ktime_to_us(ktime_get());
}

bool iovx_current_has_mm(void)
{
	return current->mm != NULL;
}

/* The blk-mq disk and the RAM disk. */

/*
 * The workqueue of a disk with delayed completions: unbound (the work is a copy, not tied to a
 * CPU) and able to make progress under memory pressure (it completes I/O), as the block layer's
 * own kblockd.
 */
struct workqueue_struct *iovx_alloc_workqueue(const char *name)
{
	return alloc_workqueue("%s", WQ_UNBOUND | WQ_MEM_RECLAIM, 0, name);
}

void iovx_queue_delayed_work(struct workqueue_struct *wq, struct delayed_work *dw,
			     u64 delay_us)
{
	queue_delayed_work(wq, dw, usecs_to_jiffies(delay_us));
}

void iovx_memcpy_from_page(u8 *to, struct page *page, size_t off, size_t len)
{
	memcpy_from_page((char *)to, page, off, len);
}

void iovx_memcpy_to_page(struct page *page, size_t off, const u8 *from, size_t len)
{
	memcpy_to_page(page, off, (const char *)from, len);
}

/* queue_rq's answer for "busy, dispatch this request again later": blk-mq keeps it. */
u8 iovx_blk_sts_resource(void)
{
	return (__force u8)BLK_STS_RESOURCE;
}

/* Extraction, GUP, bios and direct I/O. */
void iovx_might_sleep(void)
{
	might_sleep();
}

unsigned long iovx_totalram_pages(void)
{
	return totalram_pages();
}

void iovx_debugfs_create_atomic(const char *name, struct dentry *parent,
				atomic_t *value)
{
	debugfs_create_atomic_t(name, 0600, parent, value);
}

/* The size of a disk in 512-byte sectors (get_capacity()). */
u64 iovx_get_capacity(struct gendisk *disk)
{
	return get_capacity(disk);
}

/*
 * Passthrough requests (passthrough.rs) and the ioctl gate of a disk (blk.rs).
 *
 * The gate lets block_device_operations.ioctl reach a disk's driver data only while the disk's
 * owner has not started to delete it, and lets the owner delete it from within such a call: the
 * owner publishes the gate in disk->private_data; an ioctl enters under RCU (taking a reference)
 * or finds NULL. A passthrough request in flight without a caller waiting for it takes a hold.
 * Closing the gate unpublishes it, waits for an RCU grace period (no new entry or hold after it)
 * and for the holds to go, then drops the owner's reference: if an ioctl is still inside (one of
 * which may be the very call that closes it), the last one to leave runs the teardown.
 */
struct iovx_gate {
	atomic_t refs;		/* 1 for the owner until it closes the gate, 1 per ioctl inside */
	atomic_t holds;		/* requests in flight */
	void *data;
	void (*teardown)(void *ctx);
	void *ctx;
};

void *iovx_gate_new(void *data, void (*teardown)(void *ctx))
{
	struct iovx_gate *g = kmalloc(sizeof(*g), GFP_KERNEL);

	if (g) {
		atomic_set(&g->refs, 1);
		atomic_set(&g->holds, 0);
		g->data = data;
		g->teardown = teardown;
		g->ctx = NULL;
	}
	return g;
}

/* What the teardown gets; set by the owner before it may close the gate. */
void iovx_gate_arm(void *gate, void *ctx)
{
	((struct iovx_gate *)gate)->ctx = ctx;
}

void iovx_gate_open(struct gendisk *disk, void *gate)
{
	rcu_assign_pointer(disk->private_data, gate);
}

void *iovx_gate_enter(struct gendisk *disk)
{
	struct iovx_gate *g;

	rcu_read_lock();
	g = rcu_dereference(disk->private_data);
	if (g && !atomic_inc_not_zero(&g->refs))
		g = NULL;
	rcu_read_unlock();
	return g;
}

void *iovx_gate_data(void *gate)
{
	return ((struct iovx_gate *)gate)->data;
}

/* The gate and the teardown to run when the last reference goes. */
static void iovx_gate_put(struct iovx_gate *g)
{
	void (*teardown)(void *ctx) = g->teardown;
	void *ctx = g->ctx;

	if (!atomic_dec_and_test(&g->refs))
		return;
	kfree(g);
	if (ctx)
		teardown(ctx);
}

void iovx_gate_exit(void *gate)
{
	iovx_gate_put(gate);
}

/* A hold on the open gate of @disk, or NULL if it is closed (or closing). */
void *iovx_gate_hold(struct gendisk *disk)
{
	struct iovx_gate *g;

	rcu_read_lock();
	g = rcu_dereference(disk->private_data);
	if (g)
		atomic_inc(&g->holds);
	rcu_read_unlock();
	return g;
}

void iovx_gate_unhold(void *gate)
{
	struct iovx_gate *g = gate;

	/* wake_up_var() only hashes the address: g may be freed by then. */
	if (atomic_dec_and_test(&g->holds))
		wake_up_var(&g->holds);
}

/*
 * Closes the gate. True if the caller is to run the teardown now (no ioctl inside); otherwise
 * the last ioctl to leave runs it, and the gate is no longer the caller's.
 */
bool iovx_gate_close(struct gendisk *disk, void *gate)
{
	struct iovx_gate *g = gate;

	rcu_assign_pointer(disk->private_data, NULL);
	synchronize_rcu();
	wait_var_event(&g->holds, !atomic_read(&g->holds));
	if (!atomic_dec_and_test(&g->refs))
		return false;
	kfree(g);
	return true;
}

/*
 * A passthrough request; with @nowait, ERR_PTR(-EAGAIN) rather than a wait for a free tag;
 * ERR_PTR(-EOPNOTSUPP) on a bio-based disk.
 */
struct request *iovx_pt_alloc(struct gendisk *disk, bool out, bool nowait)
{
	/* A bio-based disk has no requests. */
	if (!queue_is_mq(disk->queue))
		return ERR_PTR(-EOPNOTSUPP);
	return blk_mq_alloc_request(disk->queue, out ? REQ_OP_DRV_OUT : REQ_OP_DRV_IN,
				    nowait ? BLK_MQ_REQ_NOWAIT : 0);
}

void iovx_pt_free(struct request *rq)
{
	rq->bio = rq->biotail = NULL;
	blk_mq_free_request(rq);
}

/* The limits of @disk's queue a passthrough mapping must meet, read at once. */
void iovx_pt_limits(struct gendisk *disk, u32 *max_bytes, u32 *max_segments, u64 *align,
		    u64 *virt_boundary, u32 *lbs)
{
	struct request_queue *q = disk->queue;

	*max_bytes = queue_max_hw_sectors(q) << SECTOR_SHIFT;
	*max_segments = queue_max_segments(q);
	*align = blk_lim_dma_alignment_and_pad(&q->limits);
	*virt_boundary = queue_virt_boundary(q);
	*lbs = queue_logical_block_size(q);
}

/*
 * The plan of a passthrough mapping of @iter into @rq, blk_rq_map_user_iov()'s tests in one
 * call: -EINVAL for no bytes or more than a request of the queue takes; otherwise
 * IOVX_PT_PLAN_BOUNCE if @bounce, or if @check and the memory does not meet the queue's DMA
 * alignment or (user memory) its virtual boundary; with IOVX_PT_PLAN_P2P if the queue takes
 * P2P DMA; and the queue's segment limit in *@max_segments. @check is false for an array
 * iterator without a segment, whose first segment iov_iter_alignment() would read.
 */
int iovx_pt_map_plan(struct request *rq, const struct iov_iter *iter, bool bounce, bool check,
		     u32 *max_segments)
{
	struct request_queue *q = rq->q;
	size_t len = iov_iter_count(iter);
	unsigned long vb = queue_virt_boundary(q);
	int plan = 0;

	if (!len || len > ((size_t)queue_max_hw_sectors(q) << SECTOR_SHIFT))
		return -EINVAL;
	*max_segments = queue_max_segments(q);
	if (bounce ||
	    (check && ((iov_iter_alignment(iter) & blk_lim_dma_alignment_and_pad(&q->limits)) ||
		       (vb && user_backed_iter(iter) && (iov_iter_gap_alignment(iter) & vb)))))
		plan |= IOVX_PT_PLAN_BOUNCE;
	if (blk_queue_pci_p2pdma(q))
		plan |= IOVX_PT_PLAN_P2P;
	return plan;
}

/*
 * blk_rq_map_bio_alloc() for a request without REQ_ALLOC_CACHE (an ioctl's): a bio of
 * bio_kmalloc() with its vectors inline, freed by iovx_pt_bio_free(), never bio_put().
 */
struct bio *iovx_pt_bio_alloc(struct request *rq, unsigned short nr_vecs)
{
	struct bio *bio = bio_kmalloc(nr_vecs, GFP_KERNEL);

	if (!bio)
		return NULL;
	bio_init(bio, NULL, bio->bi_inline_vecs, nr_vecs, rq->cmd_flags);
	return bio;
}

/* What bi_private of a bio made by iovx_pt_bio_init_inline() points to. */
static const char iovx_pt_inline_mark;

/*
 * A passthrough bio in memory of the caller's (the request's driver data), with @nr_vecs
 * segments at @vecs: bio_init() as iovx_pt_bio_alloc() does, marked (bi_private, which the
 * block layer leaves to a passthrough bio's owner) so that iovx_pt_bio_free() does not free it.
 */
void iovx_pt_bio_init_inline(struct request *rq, struct bio *bio, struct bio_vec *vecs,
			     unsigned short nr_vecs)
{
	bio_init(bio, NULL, vecs, nr_vecs, rq->cmd_flags);
	bio->bi_private = (void *)&iovx_pt_inline_mark;
}

/*
 * blk_mq_map_bio_put() for a bio of iovx_pt_bio_alloc(); one of iovx_pt_bio_init_inline() is
 * only uninitialised.
 */
void iovx_pt_bio_free(struct bio *bio)
{
	bool inline_bio = bio->bi_private == &iovx_pt_inline_mark;

	bio_uninit(bio);
	if (!inline_bio)
		kfree(bio);
}

/* __bio_add_page(), one page per segment, refused when the bio is full: for bounce pages. */
bool iovx_pt_bio_add(struct bio *bio, struct page *page, u32 len, u32 off)
{
	if (bio->bi_vcnt >= bio->bi_max_vecs)
		return false;
	__bio_add_page(bio, page, len, off);
	return true;
}

/*
 * Whether @next is the page of memory after @page, physically and as a struct page (so that a
 * segment over both is walked by bio_for_each_folio_all() and folio_page_idx()), in the same
 * pgmap for device memory. As bvec_try_merge_page(), never across folios under KMSAN (which
 * forbids merging the memory of two allocations; pages of one folio may share a segment, as in
 * bio_iov_add_folio(), through the fast path of iovx_bio_add_pages()). In a Xen domain, where
 * pages that follow one another in guest memory need not in machine memory (the kernel asks
 * xen_biovec_phys_mergeable()), never.
 */
static __always_inline bool iovx_page_follows(struct page *page, struct page *next)
{
	return !IS_ENABLED(CONFIG_KMSAN) && !(IS_ENABLED(CONFIG_XEN) && xen_domain()) &&
	       page + 1 == next &&
	       page_to_pfn(page) + 1 == page_to_pfn(next) &&
	       zone_device_pages_have_same_pgmap(page, next);
}

/*
 * bvec_try_merge_hw_page() of 6.12 (block/bio.c, with bvec_try_merge_page()), which is not
 * exported: whether @len bytes at @off of @page may extend segment @bv of a request whose queue
 * has segment boundary @mask and segment size @mss. They must start at the byte after the
 * segment's last, physically, in the same pgmap for device memory; stay with it within one
 * seg_boundary_mask window and within max_segment_size; and, unless they lie in the segment's
 * last page (*@same_page), be in the struct page after the segment's last one (so that a walk of
 * the segment by struct page pointer, as bio_for_each_folio_all() and iovx_bio_walk_folios()
 * make it, finds them): iovx_page_follows() above, which also keeps them apart under KMSAN and
 * in a Xen domain.
 *
 * The same tests in another order, the cheapest first: a piece that starts at byte @off > 0 of
 * its page follows the segment physically exactly when it is the segment's last page and the
 * segment ends at byte @off of it (the same page); one that starts at byte 0, exactly when the
 * segment ends at the end of a page whose frame is the one before @page's; the kernel's test for
 * the latter adds that @page is the struct page after the segment's last, tested here first.
 */
static __always_inline bool iovx_pt_try_merge(const struct bio_vec *bv, struct page *page,
					      unsigned int len, unsigned int off,
					      unsigned long mask, unsigned int mss,
					      bool *same_page)
{
	size_t bv_end = (size_t)bv->bv_offset + bv->bv_len;

	if (off) {
		if (bv_end % PAGE_SIZE != off || bv->bv_page + (bv_end - 1) / PAGE_SIZE != page)
			return false;
		*same_page = true;
	} else {
		if (bv_end % PAGE_SIZE ||
		    !iovx_page_follows(bv->bv_page + bv_end / PAGE_SIZE - 1, page))
			return false;
		*same_page = false;
	}
	if ((bvec_phys(bv) | mask) != ((page_to_phys(page) + off + len - 1) | mask))
		return false;
	return len <= mss - bv->bv_len;
}

/* bvec_gap_to_prev() of block/blk.h, which modules do not see. */
static inline bool iovx_pt_gap_to_prev(const struct queue_limits *lim, const struct bio_vec *bprv,
				       unsigned int offset)
{
	return lim->virt_boundary_mask &&
	       ((offset & lim->virt_boundary_mask) ||
		((bprv->bv_offset + bprv->bv_len) & lim->virt_boundary_mask));
}

/*
 * The pages of a batch, byte @off of the first page to byte @off + @len of the last, added to
 * @bio of a passthrough request @rq as bio_map_user_iov() adds them with bio_add_hw_page(): each
 * page's piece joins the bio's last segment if iovx_pt_try_merge() allows, or starts a segment
 * of its own if the bio then has at most @max_segs segments (and room for it), no more bytes than
 * a request of the queue takes, and no gap at the queue's virtual boundary after the last
 * segment (bvec_gap_to_prev()). All or nothing: -EINVAL, with the bio as it was and the pages
 * still the caller's, if a piece fits nowhere.
 *
 * A piece that lands in the page the last segment ends in (*same_page: the first page of a batch
 * whose memory goes on from where the last batch's ended in that page, e.g. two iovecs in one
 * page) holds a pin (@pinned) or a listing of its own, but the segment covers that page once and
 * its release drops one pin for it: the batch's extra pin is dropped here, as bio_map_user_iov()
 * drops it (bio_release_page()). Returns the number of such pages (0 or 1): a page pinned twice
 * is still unpinned twice, once here and once with the bio. Only the first piece of a batch can
 * be one (the others start a page at its first byte, after a whole page); a later one that would
 * be starts a segment of its own, which holds its pin.
 */
int iovx_pt_bio_add_pages(struct request *rq, struct bio *bio, struct page *const *pages,
			  unsigned int n, size_t off, size_t len, unsigned int max_segs, bool pinned)
{
	struct request_queue *q = rq->q;
	unsigned short vcnt = bio->bi_vcnt;
	unsigned int last_len = vcnt ? bio->bi_io_vec[vcnt - 1].bv_len : 0;
	unsigned int size = bio->bi_iter.bi_size;
	/*
	 * In bytes, kept below U32_MAX by a page, so that no segment's bv_offset + bv_len can wrap
	 * (the RAM disk's queues take at most 1 MiB a request).
	 */
	unsigned int max_size = min_t(size_t, (size_t)queue_max_hw_sectors(q) << SECTOR_SHIFT,
				      UINT_MAX - (PAGE_SIZE - 1));
	unsigned int limit = min_t(unsigned int, bio->bi_max_vecs, max_segs);
	unsigned long mask = queue_segment_boundary(q);
	unsigned int mss = queue_max_segment_size(q);
	int dup = 0;
	unsigned int i;

	for (i = 0; i < n && len; i++) {
		struct page *page = pages[i];
		unsigned int bytes = min_t(size_t, len, PAGE_SIZE - off);
		struct bio_vec *bv = bio->bi_vcnt ? &bio->bi_io_vec[bio->bi_vcnt - 1] : NULL;
		bool same_page = false;

		if (bytes > max_size - bio->bi_iter.bi_size)
			goto undo;
		if (bv && iovx_pt_try_merge(bv, page, bytes, off, mask, mss, &same_page) &&
		    (!same_page || !i)) {
			bv->bv_len += bytes;
			dup += same_page;
		} else {
			if (bio->bi_vcnt >= limit || (bv && iovx_pt_gap_to_prev(&q->limits, bv, off)))
				goto undo;
			bvec_set_page(&bio->bi_io_vec[bio->bi_vcnt++], page, bytes, off);
		}
		bio->bi_iter.bi_size += bytes;
		len -= bytes;
		off = 0;
	}
	if (dup && pinned)
		unpin_user_page(pages[0]);
	return dup;
undo:
	/* Segments past @vcnt are unused again; the last one gets its length back. */
	bio->bi_vcnt = vcnt;
	if (vcnt)
		bio->bi_io_vec[vcnt - 1].bv_len = last_len;
	bio->bi_iter.bi_size = size;
	return -EINVAL;
}

struct bio *iovx_pt_head(struct request *rq)
{
	return rq->bio;
}

int iovx_pt_execute(struct request *rq)
{
	return blk_status_to_errno(blk_execute_rq(rq, false));
}

int iovx_pt_map_user_c(struct request *rq, struct iov_iter *iter)
{
	return blk_rq_map_user_iov(rq->q, rq, NULL, iter, GFP_KERNEL);
}

/*
 * The request no longer carries the bios of a mapping that is being released: a request whose
 * mapping failed half-way, or was unmapped before it ran, may be mapped again or executed
 * without data, never with the freed bios (blk_rq_map_user_iov() clears rq->bio likewise).
 */
void iovx_pt_rq_forget_bios(struct request *rq)
{
	rq->bio = NULL;
	rq->biotail = NULL;
	rq->__data_len = 0;
	rq->nr_phys_segments = 0;
}

int iovx_pt_unmap_user_c(struct bio *bio)
{
	return blk_rq_unmap_user(bio);
}

bool iovx_pt_bio_pinned(struct bio *bio)
{
	return bio_flagged(bio, BIO_PAGE_PINNED);
}

u64 iovx_iov_iter_alignment(const struct iov_iter *i)
{
	return iov_iter_alignment(i);
}

u64 iovx_iov_iter_gap_alignment(const struct iov_iter *i)
{
	return iov_iter_gap_alignment(i);
}

unsigned int iovx_iov_iter_npages(const struct iov_iter *i, unsigned int max)
{
	return iov_iter_npages(i, max);
}

size_t iovx_copy_page_from_iter(struct page *page, size_t off, size_t len,
				struct iov_iter *i)
{
	return copy_page_from_iter(page, off, len, i);
}

size_t iovx_copy_page_to_iter(struct page *page, size_t off, size_t len,
			      struct iov_iter *i)
{
	return copy_page_to_iter(page, off, len, i);
}

struct page *iovx_bounce_page_alloc(bool zero)
{
	return alloc_page(GFP_KERNEL | (zero ? __GFP_ZERO : 0));
}

void iovx_bounce_page_free(struct page *page)
{
	__free_page(page);
}

u32 iovx_rq_op(struct request *rq)
{
	return req_op(rq);
}

bool iovx_blk_open_write(unsigned int mode)
{
	return (__force blk_mode_t)mode & BLK_OPEN_WRITE;
}

/*
 * Segments of the bios of bio.rs: pages added as runs (bio_iov_add_folio()), the segments of a
 * BVEC iterator taken as they are (bio_iov_bvec_set()), and the pages a bio holds.
 */

/*
 * Adds the @n pages of a batch, byte @off of the first page to byte @off + @len of the run, to
 * @bio, whose size stays within U32_MAX, if the segments they make fit in the bio's room
 * (bi_max_vecs - bi_vcnt); returns false, with the bio as it was, if they do not. The pages go
 * in runs of pages that follow one another in memory: a run joins the last segment if that
 * ends at the end of a page and the run's first page, from its first byte, follows it; else it
 * starts a segment of its own. A page already in a segment is never the page after it, so a
 * page taken twice (two iovecs in one page) stays in two segments.
 *
 * Within a run, a page that is the next struct page and lies in the folio of the page that
 * started the run, before that folio's end, follows it physically too: a folio is one
 * physically contiguous block of pages, of one pgmap, and where the memory map is virtually
 * contiguous (not SPARSEMEM without SPARSEMEM_VMEMMAP) the struct pages of a folio are
 * consecutive, so the next struct page is the folio's next page; only the pointer is compared,
 * without the page's pfn or pgmap. Past the folio's end, or where the memory map has gaps
 * (a folio spanning memory sections has no consecutive struct pages there),
 * iovx_page_follows() decides.
 *
 * Runs are kept within a segment size the block layer can walk: the caller keeps the bio's size
 * at most U32_MAX - (PAGE_SIZE - 1), so that bv_offset + bv_len (a segment's offset is within
 * its first page) never passes U32_MAX; a segment that would is refused here too.
 */
bool iovx_bio_add_pages(struct bio *bio, struct page *const *pages, unsigned int n, size_t off,
			size_t len)
{
	unsigned short vcnt = bio->bi_vcnt;
	struct bio_vec *bv = vcnt ? &bio->bi_io_vec[vcnt - 1] : NULL;
	unsigned int last_len = bv ? bv->bv_len : 0, size = bio->bi_iter.bi_size;
	const bool memmap_gaps = IS_ENABLED(CONFIG_SPARSEMEM) &&
				 !IS_ENABLED(CONFIG_SPARSEMEM_VMEMMAP);
	unsigned int i, j;

	/* A bio over an iterator's segments (no segments of its own) takes nothing. */
	if (!bio->bi_max_vecs)
		return false;

	/* One page into an empty bio (a small direct I/O): its first segment, as it is. */
	if (n == 1 && !vcnt && len && off + len <= PAGE_SIZE) {
		bvec_set_page(&bio->bi_io_vec[0], pages[0], len, off);
		bio->bi_vcnt = 1;
		bio->bi_iter.bi_size += len;
		return true;
	}

	for (i = 0; i < n && len; i = j) {
		struct page *first = pages[i];
		/*
		 * Pages from @first to the end of its folio, looked up once the next page is the
		 * next struct page: base pages rarely are, and pay for no folio lookup.
		 */
		unsigned long in_folio = 0;
		size_t bytes;

		for (j = i + 1; j < n; j++) {
			if (pages[j] != pages[j - 1] + 1)
				break;
			if (!in_folio) {
				struct folio *folio = page_folio(first);

				in_folio = folio_nr_pages(folio) - folio_page_idx(folio, first);
			}
			if (j - i < in_folio && !memmap_gaps)
				continue;
			if (!iovx_page_follows(pages[j - 1], pages[j]))
				break;
		}
		bytes = min_t(size_t, len, (size_t)(j - i) * PAGE_SIZE - off);
		/* Runs are as long as they go: only the first may continue the last segment. */
		if (!i && bv && !off && !(((size_t)bv->bv_offset + bv->bv_len) & ~PAGE_MASK) &&
		    (size_t)bv->bv_offset + bv->bv_len + bytes <= U32_MAX &&
		    iovx_page_follows(bv->bv_page +
				      ((size_t)bv->bv_offset + bv->bv_len) / PAGE_SIZE - 1,
				      first)) {
			bv->bv_len += bytes;
		} else {
			if (unlikely(bio->bi_vcnt >= bio->bi_max_vecs || off + bytes > U32_MAX)) {
				/*
				 * No room (or a segment the block layer could not walk): the bio
				 * as it was (the slots past bi_vcnt are unused).
				 */
				bio->bi_vcnt = vcnt;
				if (vcnt)
					bio->bi_io_vec[vcnt - 1].bv_len = last_len;
				bio->bi_iter.bi_size = size;
				return false;
			}
			bv = &bio->bi_io_vec[bio->bi_vcnt++];
			bvec_set_page(bv, first, bytes, off);
		}
		bio->bi_iter.bi_size += bytes;
		len -= bytes;
		off = 0;
	}
	return true;
}

/* Pages a segment touches (0 for an empty one). */
static inline unsigned long iovx_bvec_pages(const struct bio_vec *bv)
{
	if (!bv->bv_len)
		return 0;
	return (bv->bv_offset + bv->bv_len - 1) / PAGE_SIZE - bv->bv_offset / PAGE_SIZE + 1;
}

/*
 * The walk of iovx_bio_bvec_set() over several segments, or one that ends where its segment
 * does: @len (not 0, at most the iterator's count and UINT_MAX) bytes of the BVEC iterator
 * @iter into @bio, a bio without segments or data of its own, as iovx_bio_bvec_set() says.
 */
static noinline size_t iovx_bio_bvec_walk(struct bio *bio, struct iov_iter *iter, size_t len,
					  unsigned long addr_mask, unsigned long len_mask,
					  unsigned long *pages)
{
	const struct bio_vec *bv = iter->bvec;
	size_t skip = iter->iov_offset, left, end = 0;
	unsigned long segs = 0, n_pages = 0;

	for (left = len; left; segs++) {
		size_t n;

		if (segs >= USHRT_MAX || segs >= iter->nr_segs || bv[segs].bv_len <= skip)
			return 0;
		n = min_t(size_t, left, bv[segs].bv_len - skip);
		if (((bv[segs].bv_offset + skip) & addr_mask) || (n & len_mask))
			return 0;
		n_pages += iovx_bvec_pages(&bv[segs]);
		left -= n;
		end = skip + n;
		skip = 0;
	}
	bio->bi_io_vec = (struct bio_vec *)bv;
	bio->bi_vcnt = segs;
	bio->bi_iter.bi_bvec_done = iter->iov_offset;
	bio->bi_iter.bi_size = len;
	bio_set_flag(bio, BIO_CLONED);
	/*
	 * The last segment taken is finished, and the iterator moves past it and past the empty
	 * segments after it, as iov_iter_bvec_advance() does; or it stays in it.
	 */
	if (end == bv[segs - 1].bv_len) {
		unsigned long next = segs;

		while (next < iter->nr_segs && !bv[next].bv_len)
			next++;
		iter->bvec = bv + next;
		iter->nr_segs -= next;
		iter->iov_offset = 0;
	} else {
		iter->bvec = bv + segs - 1;
		iter->nr_segs -= segs - 1;
		iter->iov_offset = end;
	}
	iter->count -= len;
	*pages = n_pages;
	return len;
}

/*
 * bio_iov_bvec_set() for a bio of bio.rs allocated without segments of its own
 * (bi_max_vecs 0): the bio takes the next @len bytes (at most what is left) of the BVEC
 * iterator @iter, borrowing its segment array as it is (BIO_CLONED: the array is neither
 * merged into nor freed), with bi_vcnt the segments that hold those bytes; the iterator
 * advances past them (as iov_iter_bvec_advance() does, in the same walk). Every byte range
 * taken from a segment must start on @addr_mask + 1 and be a multiple of @len_mask + 1 long
 * (iov_iter_is_aligned() of what is taken). *@pages is set to the pages of those segments, as
 * listed_pages() of bio.rs counts them at release. Returns the bytes taken, or 0 with nothing done if @len is
 * 0, the bio has segments of its own or data, a segment to take is empty or misaligned, or
 * more segments than bi_vcnt can count would be needed.
 */
size_t iovx_bio_bvec_set(struct bio *bio, struct iov_iter *iter, size_t len,
			 unsigned long addr_mask, unsigned long len_mask, unsigned long *pages)
{
	const struct bio_vec *bv = iter->bvec;
	size_t skip = iter->iov_offset;

	len = min(len, iov_iter_count(iter));
	if (!len || len > UINT_MAX || bio->bi_max_vecs || bio->bi_vcnt || bio->bi_iter.bi_size ||
	    !iov_iter_is_bvec(iter) || !iter->nr_segs)
		return 0;
	/*
	 * The bytes lie within the first segment, which goes on past them (an I/O from a
	 * registered buffer of huge pages, which io_uring keeps as one segment per huge page):
	 * that segment alone, and the iterator stays in it. Otherwise the walk.
	 */
	if (len >= bv->bv_len || skip >= bv->bv_len - len)
		return iovx_bio_bvec_walk(bio, iter, len, addr_mask, len_mask, pages);
	if (((bv->bv_offset + skip) & addr_mask) || (len & len_mask))
		return 0;
	bio->bi_io_vec = (struct bio_vec *)bv;
	bio->bi_vcnt = 1;
	bio->bi_iter.bi_bvec_done = skip;
	bio->bi_iter.bi_size = len;
	bio_set_flag(bio, BIO_CLONED);
	iter->iov_offset = skip + len;
	iter->count -= len;
	*pages = iovx_bvec_pages(bv);
	return len;
}

/*
 * Block devices opened by path (bdev.rs): an exclusive open for reading and writing, the
 * device's limits, and the holder operations that tell the holder its device is gone.
 *
 * The holder is an atomic_t of the opener's, set to 1 by mark_dead; bd_holder_lock is held
 * when mark_dead is called, and bd_end_claim() clears bd_holder_ops under it, so mark_dead
 * never sees a holder that has been released (bdev_fput() ends the claim before it returns).
 */
static void iovx_bdev_mark_dead(struct block_device *bdev, bool surprise)
{
	atomic_t *dead = bdev->bd_holder;

	atomic_set(dead, 1);
	pr_warn("iov_extract: %pg is gone%s; its direct-I/O device fails new I/O with ENODEV\n",
		bdev, surprise ? " (surprise removal)" : "");
	/* Last: once unlocked, the holder may be released and the module unloaded. */
	mutex_unlock(&bdev->bd_holder_lock);
}

static const struct blk_holder_ops iovx_bdev_holder_ops = {
	.mark_dead = iovx_bdev_mark_dead,
};

struct file *iovx_bdev_open(const char *path, atomic_t *holder)
{
	return bdev_file_open_by_path(path, BLK_OPEN_READ | BLK_OPEN_WRITE | BLK_OPEN_EXCL,
				      holder, &iovx_bdev_holder_ops);
}

void iovx_bdev_close(struct file *file)
{
	bdev_fput(file);
}

struct block_device *iovx_bdev_of(struct file *file)
{
	return file_bdev(file);
}

void iovx_bdev_limits(struct block_device *bdev, u32 *lbs, u32 *dma_mask, u64 *sectors,
		      u32 *max_hw_sectors, u32 *max_segments, u32 *max_segment_size)
{
	struct request_queue *q = bdev_get_queue(bdev);

	*lbs = bdev_logical_block_size(bdev);
	*dma_mask = bdev_dma_alignment(bdev);
	*sectors = bdev_nr_sectors(bdev);
	*max_hw_sectors = queue_max_hw_sectors(q);
	*max_segments = queue_max_segments(q);
	*max_segment_size = queue_max_segment_size(q);
}

u64 iovx_bdev_nr_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

/*
 * The bios of a held block device in flight (bdev.rs): counted before submit_bio() and uncounted
 * as the very last action of their end_io, so that the holder waits for them all before it
 * releases the device. The uncounting runs under rcu_read_lock(), and the waiter calls
 * synchronize_rcu() once the count is zero, so that it returns only after every end_io has left
 * this function; wake_up_var() does not touch the counter, which may be freed by then.
 */
void iovx_bdev_bio_get(atomic_t *inflight)
{
	atomic_inc(inflight);
}

void iovx_bdev_bio_put(atomic_t *inflight)
{
	rcu_read_lock();
	if (atomic_dec_and_test(inflight))
		wake_up_var(inflight);
	rcu_read_unlock();
}

void iovx_bdev_wait_idle(atomic_t *inflight)
{
	wait_var_event(inflight, !atomic_read(inflight));
	synchronize_rcu();
}

void iovx_atomic_init(atomic_t *v)
{
	atomic_set(v, 0);
}

int iovx_atomic_read(const atomic_t *v)
{
	return atomic_read(v);
}

/*
 * Passthrough, second part: requests run without waiting (passthrough.rs, submit_async()), the
 * mm of their submitter, and KUnit access to a disk's ioctl without an open file.
 *
 * A request run by iovx_pt_execute_nowait() ends in whatever context the driver ends it
 * (interrupt, softirq, a worker); its end_io only records the status and queues the request's
 * completion on the module's own workqueue, where the pages are released (which may sleep; it
 * never copies to user memory: submit_async() refuses such requests). The request is not freed by the block layer
 * (RQ_END_IO_NONE): the completion frees it. Module exit waits for every such request to be
 * completed and then destroys the workqueue, so that no worker runs the module's code after.
 */
struct iovx_pt_async {
	struct work_struct work;
	void (*complete)(void *ctx, int error);
	void *ctx;
	int error;
	struct workqueue_struct *wq;
};

static struct workqueue_struct *iovx_pt_wq;
static DEFINE_MUTEX(iovx_pt_wq_lock);
static atomic_t iovx_pt_inflight = ATOMIC_INIT(0);

static void iovx_pt_async_work(struct work_struct *work)
{
	struct iovx_pt_async *a = container_of(work, struct iovx_pt_async, work);

	a->complete(a->ctx, a->error);
	kfree(a);
	if (atomic_dec_and_test(&iovx_pt_inflight))
		wake_up_var(&iovx_pt_inflight);
}

static enum rq_end_io_ret iovx_pt_end_io(struct request *rq, blk_status_t err)
{
	struct iovx_pt_async *a = rq->end_io_data;

	a->error = blk_status_to_errno(err);
	queue_work(a->wq, &a->work);
	return RQ_END_IO_NONE;
}

int iovx_pt_execute_nowait(struct request *rq, void (*complete)(void *ctx, int error),
			   void *ctx)
{
	struct iovx_pt_async *a;

	a = kmalloc(sizeof(*a), GFP_KERNEL);
	if (!a)
		return -ENOMEM;
	mutex_lock(&iovx_pt_wq_lock);
	if (!iovx_pt_wq)
		iovx_pt_wq = alloc_workqueue("iovx_pt", WQ_UNBOUND | WQ_MEM_RECLAIM, 0);
	if (!iovx_pt_wq) {
		mutex_unlock(&iovx_pt_wq_lock);
		kfree(a);
		return -ENOMEM;
	}
	/*
	 * Counted under the lock, with the workqueue it completes on: iovx_pt_async_exit()
	 * destroys a workqueue only under the lock with none in flight.
	 */
	a->wq = iovx_pt_wq;
	atomic_inc(&iovx_pt_inflight);
	mutex_unlock(&iovx_pt_wq_lock);
	INIT_WORK(&a->work, iovx_pt_async_work);
	a->complete = complete;
	a->ctx = ctx;
	a->error = 0;
	rq->end_io = iovx_pt_end_io;
	rq->end_io_data = a;
	blk_execute_rq_nowait(rq, false);
	return 0;
}

/* Requests run without waiting and not completed yet. */
int iovx_pt_async_inflight(void)
{
	return atomic_read(&iovx_pt_inflight);
}

/*
 * Waits for every request in flight to be completed, then destroys the workqueue (a later
 * submission makes a new one). Returns at once from a completion (it would wait for itself).
 */
void iovx_pt_async_exit(void)
{
	struct work_struct *work = current_work();

	if (work && work->func == iovx_pt_async_work)
		return;
	for (;;) {
		wait_var_event(&iovx_pt_inflight, !atomic_read(&iovx_pt_inflight));
		mutex_lock(&iovx_pt_wq_lock);
		if (!atomic_read(&iovx_pt_inflight))
			break;
		mutex_unlock(&iovx_pt_wq_lock);
	}
	if (iovx_pt_wq)
		destroy_workqueue(iovx_pt_wq);
	iovx_pt_wq = NULL;
	mutex_unlock(&iovx_pt_wq_lock);
}

struct mm_struct *iovx_mm_grab_current(void)
{
	struct mm_struct *mm = current->mm;

	if (mm)
		mmgrab(mm);
	return mm;
}

void iovx_mm_drop(struct mm_struct *mm)
{
	mmdrop(mm);
}

/*
 * Passthrough requests of io_uring commands (passthrough.rs, submit_uring()), as NVMe's
 * generic character devices run theirs (nvme_uring_cmd_end_io()): end_io, in whatever context
 * the driver ends the request, calls @end (which records the status and the driver's command,
 * takes the request's bios and lets the disk go), returns RQ_END_IO_FREE (the block layer
 * frees the request at once: its tag and the queue's usage count never wait for the submitting
 * task) and queues the completion as task work of the submitting task
 * (io_uring_cmd_do_in_task_lazy()). The completion runs there, in process context with the
 * submitter's address space (or with IO_URING_F_TASK_DEAD while the task exits or in
 * io_uring's fallback worker), releases the bios and their pages and answers the command with
 * the issue flags it is given.
 */
struct iovx_pt_uring_pdu {
	void (*end)(void *ctx, int error);
	void (*complete)(void *ctx, struct io_uring_cmd *ioucmd, unsigned int issue_flags);
	void *ctx;
};

static struct iovx_pt_uring_pdu *iovx_pt_uring_pdu(struct io_uring_cmd *ioucmd)
{
	BUILD_BUG_ON(sizeof(struct iovx_pt_uring_pdu) > sizeof(ioucmd->pdu));
	return (struct iovx_pt_uring_pdu *)&ioucmd->pdu;
}

static void iovx_pt_uring_task_cb(struct io_uring_cmd *ioucmd, unsigned int issue_flags)
{
	struct iovx_pt_uring_pdu *pdu = iovx_pt_uring_pdu(ioucmd);

	pdu->complete(pdu->ctx, ioucmd, issue_flags);
}

static enum rq_end_io_ret iovx_pt_uring_end_io(struct request *rq, blk_status_t err)
{
	struct io_uring_cmd *ioucmd = rq->end_io_data;
	struct iovx_pt_uring_pdu *pdu = iovx_pt_uring_pdu(ioucmd);

	pdu->end(pdu->ctx, blk_status_to_errno(err));
	io_uring_cmd_do_in_task_lazy(ioucmd, iovx_pt_uring_task_cb);
	return RQ_END_IO_FREE;
}

void iovx_pt_execute_uring(struct request *rq, struct io_uring_cmd *ioucmd,
			   void (*end)(void *ctx, int error),
			   void (*complete)(void *ctx, struct io_uring_cmd *ioucmd,
					    unsigned int issue_flags),
			   void *ctx)
{
	struct iovx_pt_uring_pdu *pdu = iovx_pt_uring_pdu(ioucmd);

	pdu->end = end;
	pdu->complete = complete;
	pdu->ctx = ctx;
	rq->end_io = iovx_pt_uring_end_io;
	rq->end_io_data = ioucmd;
	blk_execute_rq_nowait(rq, false);
}

/* Whether the current task's address space is @mm. */
bool iovx_mm_is_current(struct mm_struct *mm)
{
	return current->mm == mm;
}

/* The answer of a command from its task work: with the issue flags the task work was given. */
void iovx_uring_cmd_done_in_task(struct io_uring_cmd *ioucmd, int res, u64 res2,
				 unsigned int issue_flags)
{
	io_uring_cmd_done(ioucmd, res, res2, issue_flags);
}

bool iovx_uring_flags_task_dead(unsigned int flags)
{
	return flags & IO_URING_F_TASK_DEAD;
}

/* Whether a bio of blk_rq_map_user_iov() is a copy (bio_copy_user_iov()) of the memory. */
bool iovx_pt_bio_is_copy(struct bio *bio)
{
	return bio->bi_private;
}

/* io_uring commands (uring_cmd.rs). */
u32 iovx_uring_cmd_op(struct io_uring_cmd *ioucmd)
{
	return READ_ONCE(ioucmd->cmd_op);
}

/* Copies the payload of the command's submission entry into @buf (80 bytes of room). */
unsigned int iovx_uring_cmd_payload(struct io_uring_cmd *ioucmd, u8 *buf, unsigned int flags)
{
	unsigned int n = (flags & IO_URING_F_SQE128) ? 80 : 16;

	memcpy(buf, io_uring_sqe_cmd(ioucmd->sqe), n);
	return n;
}

struct file *iovx_uring_cmd_file(struct io_uring_cmd *ioucmd)
{
	return ioucmd->file;
}

bool iovx_uring_cmd_file_writable(struct io_uring_cmd *ioucmd)
{
	return ioucmd->file->f_mode & FMODE_WRITE;
}

void iovx_uring_cmd_done(struct io_uring_cmd *ioucmd, int res, u64 res2)
{
	io_uring_cmd_done(ioucmd, res, res2, IO_URING_F_UNLOCKED);
}

bool iovx_uring_flags_nonblock(unsigned int flags)
{
	return flags & IO_URING_F_NONBLOCK;
}

bool iovx_uring_flags_sqe128(unsigned int flags)
{
	return flags & IO_URING_F_SQE128;
}

bool iovx_queue_p2pdma(struct gendisk *disk)
{
	return blk_queue_pci_p2pdma(disk->queue);
}

/* KUnit access to a disk's ioctl without an open file. */
#ifdef IOVX_KUNIT
struct gendisk *iovx_kunit_disk_get(struct gendisk *disk)
{
	get_device(disk_to_dev(disk));
	return disk;
}

void iovx_kunit_disk_put(struct gendisk *disk)
{
	put_disk(disk);
}

int iovx_kunit_disk_ioctl(struct gendisk *disk, unsigned int cmd, unsigned long arg)
{
	return disk->fops->ioctl(disk->part0, BLK_OPEN_READ, cmd, arg);
}
#endif /* IOVX_KUNIT */
