/* The production kernel boundary: plain libc calls, errors as -errno. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <upmd/kops.h>

/* The call's result, or -errno; the call is evaluated exactly once. */
#define NEG_ERRNO(call)                                                        \
	({                                                                     \
		__typeof__(call) r_ = (call);                                  \
		r_ < 0 ? (__typeof__(call))-errno : r_;                        \
	})

static int k_open(void *ctx, const char *path, int flags)
{
	(void)ctx;
	return NEG_ERRNO(open(path, flags | O_CLOEXEC));
}

static int k_close(void *ctx, int fd)
{
	(void)ctx;
	return NEG_ERRNO(close(fd));
}

static int k_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	(void)ctx;
	return NEG_ERRNO(ioctl(fd, req, arg));
}

static int k_mmap(void *ctx, void *addr, size_t len, int prot, int flags, int fd, off_t off,
		  void **out)
{
	void *p = mmap(addr, len, prot, flags, fd, off);

	(void)ctx;
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

static int k_munmap(void *ctx, void *addr, size_t len)
{
	(void)ctx;
	return NEG_ERRNO(munmap(addr, len));
}

static ssize_t k_pread(void *ctx, int fd, void *buf, size_t n, off_t off)
{
	(void)ctx;
	return NEG_ERRNO(pread(fd, buf, n, off));
}

static ssize_t k_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
	(void)ctx;
	return NEG_ERRNO(pwrite(fd, buf, n, off));
}

static ssize_t k_read(void *ctx, int fd, void *buf, size_t n)
{
	(void)ctx;
	return NEG_ERRNO(read(fd, buf, n));
}

static ssize_t k_write(void *ctx, int fd, const void *buf, size_t n)
{
	(void)ctx;
	return NEG_ERRNO(write(fd, buf, n));
}

static int k_eventfd(void *ctx, unsigned int initval, int flags)
{
	(void)ctx;
	return NEG_ERRNO(eventfd(initval, flags | EFD_CLOEXEC));
}

static ssize_t k_readlink(void *ctx, const char *path, char *buf, size_t len)
{
	ssize_t n;

	(void)ctx;
	if (len == 0)
		return -EINVAL;
	n = readlink(path, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

static int k_listdir(void *ctx, const char *path, int (*cb)(const char *, void *), void *arg)
{
	struct dirent *de;
	DIR *d;
	int rc = 0;

	(void)ctx;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rc = cb(de->d_name, arg);
		if (rc)
			break;
	}
	closedir(d);
	return rc;
}

static int k_access(void *ctx, const char *path, int mode)
{
	(void)ctx;
	return NEG_ERRNO(access(path, mode));
}

const struct upmd_kops upmd_kops_libc = {
	.name = "libc",
	.open = k_open,
	.close = k_close,
	.ioctl = k_ioctl,
	.mmap = k_mmap,
	.munmap = k_munmap,
	.pread = k_pread,
	.pwrite = k_pwrite,
	.read = k_read,
	.write = k_write,
	.eventfd = k_eventfd,
	.readlink = k_readlink,
	.listdir = k_listdir,
	.access = k_access,
};

struct upmd_kernel upmd_kernel = { .ops = &upmd_kops_libc, .ctx = NULL };

void upmd_kops_set(const struct upmd_kops *ops, void *ctx)
{
	upmd_kernel.ops = ops ? ops : &upmd_kops_libc;
	upmd_kernel.ctx = ops ? ctx : NULL;
}

ssize_t upmd_k_read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	if (len == 0)
		return -EINVAL;
	fd = upmd_k_open(path, O_RDONLY);
	if (fd < 0)
		return fd;
	n = upmd_k_read(fd, buf, len - 1);
	upmd_k_close(fd);
	if (n < 0)
		return n;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return n;
}

ssize_t upmd_k_write_file(const char *path, const char *s)
{
	ssize_t n;
	int fd;

	fd = upmd_k_open(path, O_WRONLY);
	if (fd < 0)
		return fd;
	n = upmd_k_write(fd, s, strlen(s));
	upmd_k_close(fd);
	return n;
}
