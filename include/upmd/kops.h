/* The kernel boundary: every device/IOMMU system call upmd makes goes through this table. */
#ifndef UPMD_KOPS_H
#define UPMD_KOPS_H

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Operations on /dev/iommu, /dev/vfio/..., vfio cdevs, their regions and
 * interrupts, and the sysfs PCI tree. Production uses libc
 * (upmd_kops_libc); tests and the embedded demo install the in-process
 * model (upmd_model_kops()). Hugepage memory itself is ordinary process
 * memory and does not go through here.
 *
 * Convention: every operation returns >= 0 on success and -errno on
 * failure (never -1 with errno), so callers propagate errors unchanged.
 * @ctx is the pointer registered with the table.
 */
struct upmd_kops {
	const char *name;
	int (*open)(void *ctx, const char *path, int flags);
	int (*close)(void *ctx, int fd);
	/* @arg is the ioctl's pointer argument (or an integer cast to one). */
	int (*ioctl)(void *ctx, int fd, unsigned long req, void *arg);
	/* Maps a region of @fd; on success stores the address in *out. */
	int (*mmap)(void *ctx, void *addr, size_t len, int prot, int flags, int fd,
		    off_t off, void **out);
	int (*munmap)(void *ctx, void *addr, size_t len);
	ssize_t (*pread)(void *ctx, int fd, void *buf, size_t n, off_t off);
	ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t n, off_t off);
	ssize_t (*read)(void *ctx, int fd, void *buf, size_t n);
	ssize_t (*write)(void *ctx, int fd, const void *buf, size_t n);
	int (*eventfd)(void *ctx, unsigned int initval, int flags);
	/* readlink(2), result NUL-terminated; returns its length. */
	ssize_t (*readlink)(void *ctx, const char *path, char *buf, size_t len);
	/* Calls @cb for each entry of a directory (not "." or ".."); a non-zero
	 * return from @cb stops the walk and is returned. */
	int (*listdir)(void *ctx, const char *path,
		       int (*cb)(const char *name, void *arg), void *arg);
	/* access(2). */
	int (*access)(void *ctx, const char *path, int mode);
};

/** The libc implementation (the default). */
extern const struct upmd_kops upmd_kops_libc;

/** The table in force and its context. Set before upmd_eal_init(). */
struct upmd_kernel {
	const struct upmd_kops *ops;
	void *ctx;
};
extern struct upmd_kernel upmd_kernel;

/**
 * Install a kernel boundary. Not thread-safe: call before upmd_eal_init()
 * or after upmd_eal_cleanup(). NULL @ops restores libc.
 */
void upmd_kops_set(const struct upmd_kops *ops, void *ctx);

static inline int upmd_k_open(const char *path, int flags)
{ return upmd_kernel.ops->open(upmd_kernel.ctx, path, flags); }
static inline int upmd_k_close(int fd)
{ return upmd_kernel.ops->close(upmd_kernel.ctx, fd); }
static inline int upmd_k_ioctl(int fd, unsigned long req, void *arg)
{ return upmd_kernel.ops->ioctl(upmd_kernel.ctx, fd, req, arg); }
static inline int upmd_k_mmap(void *addr, size_t len, int prot, int flags, int fd,
			      off_t off, void **out)
{ return upmd_kernel.ops->mmap(upmd_kernel.ctx, addr, len, prot, flags, fd, off, out); }
static inline int upmd_k_munmap(void *addr, size_t len)
{ return upmd_kernel.ops->munmap(upmd_kernel.ctx, addr, len); }
static inline ssize_t upmd_k_pread(int fd, void *buf, size_t n, off_t off)
{ return upmd_kernel.ops->pread(upmd_kernel.ctx, fd, buf, n, off); }
static inline ssize_t upmd_k_pwrite(int fd, const void *buf, size_t n, off_t off)
{ return upmd_kernel.ops->pwrite(upmd_kernel.ctx, fd, buf, n, off); }
static inline ssize_t upmd_k_read(int fd, void *buf, size_t n)
{ return upmd_kernel.ops->read(upmd_kernel.ctx, fd, buf, n); }
static inline ssize_t upmd_k_write(int fd, const void *buf, size_t n)
{ return upmd_kernel.ops->write(upmd_kernel.ctx, fd, buf, n); }
static inline int upmd_k_eventfd(unsigned int initval, int flags)
{ return upmd_kernel.ops->eventfd(upmd_kernel.ctx, initval, flags); }
static inline ssize_t upmd_k_readlink(const char *path, char *buf, size_t len)
{ return upmd_kernel.ops->readlink(upmd_kernel.ctx, path, buf, len); }
static inline int upmd_k_listdir(const char *path, int (*cb)(const char *, void *), void *arg)
{ return upmd_kernel.ops->listdir(upmd_kernel.ctx, path, cb, arg); }
static inline int upmd_k_access(const char *path, int mode)
{ return upmd_kernel.ops->access(upmd_kernel.ctx, path, mode); }

/**
 * Helpers over the table: read a whole small file (sysfs attribute) into
 * @buf, NUL-terminated, trailing newline stripped; write a string to one.
 * @return bytes read/written, or -errno.
 */
ssize_t upmd_k_read_file(const char *path, char *buf, size_t len);
ssize_t upmd_k_write_file(const char *path, const char *s);

#ifdef __cplusplus
}
#endif
#endif /* UPMD_KOPS_H */
