// SPDX-License-Identifier: GPL-2.0
/*
 * Out-of-line wrappers for static inline kernel functions; see shim.h.
 */
#include <linux/uio.h>
#include <linux/mm.h>
#include <linux/highmem.h>
#include <linux/page-flags.h>
#include <linux/uaccess.h>
#include <linux/fs.h>
#include <linux/mman.h>
#include <linux/debugfs.h>
#include <kunit/test.h>

#include "shim.h"

void iovx_iov_iter_ubuf(struct iov_iter *i, unsigned int direction,
			void __user *buf, size_t count)
{
	iov_iter_ubuf(i, direction, buf, count);
}

size_t iovx_iov_iter_count(const struct iov_iter *i)
{
	return iov_iter_count(i);
}

u8 iovx_iov_iter_type(const struct iov_iter *i)
{
	return iov_iter_type(i);
}

bool iovx_iov_iter_is_source(const struct iov_iter *i)
{
	return i->data_source == ITER_SOURCE;
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

void iovx_get_page(struct page *page)
{
	get_page(page);
}

void iovx_put_page(struct page *page)
{
	put_page(page);
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

void *iovx_page_address(struct page *page)
{
	return page_address(page);
}

struct page *iovx_virt_to_page(const void *addr)
{
	if (is_vmalloc_or_module_addr(addr))
		return vmalloc_to_page(addr);
	return virt_to_page(addr);
}

unsigned long iovx_page_size(void)
{
	return PAGE_SIZE;
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

unsigned long iovx_kunit_vm_mmap(struct kunit *test, unsigned long len,
				 bool read, bool write)
{
	unsigned long prot = (read ? PROT_READ : 0) | (write ? PROT_WRITE : 0);

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
