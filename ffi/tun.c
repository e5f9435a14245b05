// tun.c: open a Linux TUN device and move packets in batches. Built at run time by bun:ffi's cc
// (TinyCC). It includes no system headers, so it builds where libc headers are not installed
// (a Raspberry Pi, a router): the few prototypes and constants it needs are declared here.

extern int open(const char *path, int flags, ...);
extern int ioctl(int fd, unsigned long request, ...);
extern long read(int fd, void *buf, unsigned long count);
extern long write(int fd, const void *buf, unsigned long count);
extern int close(int fd);
extern int *__errno_location(void);

struct pollfd { int fd; short events; short revents; };
extern int poll(struct pollfd *fds, unsigned long nfds, int timeout);

/* struct ifreq: 16-byte name, then a union whose first member we use as the flags (40 bytes total). */
struct ifreq_flags { char name[16]; short flags; char pad[22]; };

#define O_RDWR      02
#define O_NONBLOCK  04000
#define O_CLOEXEC   02000000
#define TUNSETIFF   0x400454caUL   /* _IOW('T', 202, int), the same on x86_64 and aarch64 */
#define IFF_TUN     0x0001
#define IFF_NO_PI   0x1000
#define POLLIN      0x001
#define EAGAIN      11
#define EINTR       4

/* Open /dev/net/tun as interface `name` (no packet info header, non-blocking).
   Returns the fd, or -errno. The kernel's chosen name is copied to out_name (16 bytes). */
int tun_open(const char *name, char *out_name) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -*__errno_location();
  struct ifreq_flags ifr;
  for (int i = 0; i < (int)sizeof(ifr); i++) ((char *)&ifr)[i] = 0;
  for (int i = 0; i < 15 && name[i]; i++) ifr.name[i] = name[i];
  ifr.flags = IFF_TUN | IFF_NO_PI;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = *__errno_location();
    close(fd);
    return -e;
  }
  for (int i = 0; i < 16; i++) out_name[i] = ifr.name[i];
  return fd;
}

/* Wait up to timeout_ms for the device to be readable, then drain up to `max` packets into `buf`,
   packet i at buf + i*stride with its length in lens[i]. Returns the count (0 on time-out), or -errno. */
int tun_read_batch(int fd, unsigned char *buf, int stride, int *lens, int max, int timeout_ms) {
  struct pollfd p;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  int r = poll(&p, 1, timeout_ms);
  if (r < 0) return *__errno_location() == EINTR ? 0 : -*__errno_location();
  if (r == 0) return 0;
  int n = 0;
  while (n < max) {
    long got = read(fd, buf + (long)n * stride, (unsigned long)stride);
    if (got < 0) {
      int e = *__errno_location();
      if (e == EAGAIN || e == EINTR || n > 0) break;
      return -e;
    }
    lens[n++] = (int)got;
  }
  return n;
}

/* Write one packet. Returns bytes written, or -errno (-EAGAIN when the device queue is full). */
int tun_write(int fd, const unsigned char *buf, int len) {
  long r = write(fd, buf, (unsigned long)len);
  return r < 0 ? -*__errno_location() : (int)r;
}

int tun_close(int fd) {
  return close(fd) < 0 ? -*__errno_location() : 0;
}
