/* uaccess.h: reading the program's memory without ever crashing it.
 *
 * A hook that looks at an argument (a destination address, a msghdr, a control buffer, an
 * option value) reads memory the program chose.  libc passes such pointers to the kernel,
 * which answers EFAULT for a bad one; the shim must answer the same, never SIGSEGV.
 * shim_copy_in copies the bytes into the hook's own memory (which is then what the kernel
 * is given, so another thread cannot change what was checked) after making sure every page
 * they touch can be read: a page is probed once with a system call that reads it and
 * reports EFAULT (futex FUTEX_CMP_REQUEUE, no side effect), then remembered per thread until
 * the process unmaps or re-protects memory (munmap/mremap/mprotect bump a generation). */
#ifndef PVD_UACCESS_H
#define PVD_UACCESS_H

#include <stddef.h>

/* Copy n bytes from the program's src to dst.  0, or -1 with errno EFAULT (nothing read). */
int shim_copy_in(void *dst, const void *src, size_t n);
/* 1 when [p, p+n) can be read now, else 0 (errno EFAULT). */
int shim_readable(const void *p, size_t n);
/* Copy n bytes from dst (the shim's) to the program's p.  0, or -1 with errno EFAULT when a page
 * of [p, p+n) cannot be written (nothing copied; a probed byte of an earlier page may hold
 * garbage).  Each page is probed by the kernel writing one byte to it (getrandom). */
int shim_copy_out(void *p, const void *src, size_t n);
/* The program changed its mappings: forget every page known to be readable. */
void shim_mappings_changed(void);

#endif
