// tun.c: open a Linux TUN device and move packets in batches. Built at run time by bun:ffi's cc
// (TinyCC). It includes no system headers, so it builds where libc headers are not installed
// (a Raspberry Pi, a router): the few prototypes and constants it needs are declared here.

extern int open(const char *path, int flags, ...);
extern int ioctl(int fd, unsigned long request, ...);
extern long read(int fd, void *buf, unsigned long count);
extern long write(int fd, const void *buf, unsigned long count);
extern int close(int fd);
extern int *__errno_location(void);
struct iovec { void *base; unsigned long len; };
extern long writev(int fd, const struct iovec *iov, int iovcnt);
extern void *memmove(void *dst, const void *src, unsigned long n);
extern void *memcpy(void *dst, const void *src, unsigned long n);

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
#define IFF_VNET_HDR 0x4000
#define POLLIN      0x001
#define EAGAIN      11
#define EINTR       4

/* Open /dev/net/tun as interface `name` (no packet info header, non-blocking; with `vnet`, every
   packet read or written starts with a 10-byte virtio-net header, which lets tun_write_gro hand the
   kernel coalesced TCP segments). Returns the fd, or -errno. The kernel's name goes to out_name. */
int tun_open(const char *name, char *out_name, int vnet) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -*__errno_location();
  struct ifreq_flags ifr;
  for (int i = 0; i < (int)sizeof(ifr); i++) ((char *)&ifr)[i] = 0;
  for (int i = 0; i < 15 && name[i]; i++) ifr.name[i] = name[i];
  ifr.flags = IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = *__errno_location();
    close(fd);
    return -e;
  }
  for (int i = 0; i < 16; i++) out_name[i] = ifr.name[i];
  return fd;
}

/* Wait up to timeout_ms for the device to be readable: 1 when it is, 0 on time-out (or a signal), or
   -errno. */
static int wait_readable(int fd, int timeout_ms) {
  struct pollfd p;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  int r = poll(&p, 1, timeout_ms);
  if (r < 0) return *__errno_location() == EINTR ? 0 : -*__errno_location();
  return r > 0;
}

/* Wait up to timeout_ms for the device to be readable, then drain up to `max` packets into `buf`,
   packet i at buf + i*stride with its length in lens[i]. Returns the count (0 on time-out), or -errno. */
int tun_read_batch(int fd, unsigned char *buf, int stride, int *lens, int max, int timeout_ms) {
  int r = wait_readable(fd, timeout_ms);
  if (r <= 0) return r;
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

/* ── Writing with GRO: consecutive segments of one TCP stream go to the kernel as one large packet ──
   (virtio-net header: GSO TCPv4/TCPv6, checksum left partial), so its TCP stack takes one packet, and
   sends one ACK, where there were up to 64. The rules follow Linux's own GRO: same addresses, ports,
   TTL/hop limit and TCP options; contiguous sequence numbers; the same ACK number; only ACK (and PSH on
   the last) set; every segment as long as the first, except a shorter last one. */

struct vnet_hdr { unsigned char flags, gso_type; unsigned short hdr_len, gso_size, csum_start, csum_offset; };
#define VNET_HDR_LEN 10
#define VNET_F_NEEDS_CSUM 1
#define VNET_GSO_TCPV4 1
#define VNET_GSO_TCPV6 4
#define GRO_MAX 65535

static unsigned int be16(const unsigned char *p) { return ((unsigned int)p[0] << 8) | p[1]; }
static unsigned int be32(const unsigned char *p) { return ((unsigned int)p[0] << 24) | ((unsigned int)p[1] << 16) | ((unsigned int)p[2] << 8) | p[3]; }
static void put16(unsigned char *p, unsigned int v) { p[0] = (v >> 8) & 0xff; p[1] = v & 0xff; }
static int same(const unsigned char *a, const unsigned char *b, int n) { for (int i = 0; i < n; i++) if (a[i] != b[i]) return 0; return 1; }
static unsigned int sum16(const unsigned char *p, int n, unsigned int acc) {
  for (int i = 0; i + 1 < n; i += 2) acc += ((unsigned int)p[i] << 8) | p[i + 1];
  if (n & 1) acc += (unsigned int)p[n - 1] << 8;
  return acc;
}
static unsigned int fold(unsigned int acc) { while (acc > 0xffff) acc = (acc & 0xffff) + (acc >> 16); return acc; }

/* The IP header length of a TCP packet GRO may merge (IPv4 without options or fragments, IPv6 with
   TCP as the next header), or 0. */
static int tcp_iphlen(const unsigned char *p, int len) {
  if (len < 40) return 0;
  if ((p[0] >> 4) == 4) {
    if (p[0] != 0x45 || p[9] != 6 || (be16(p + 6) & 0x3fff) != 0 || be16(p + 2) != (unsigned int)len) return 0;
    return 20;
  }
  if ((p[0] >> 4) == 6 && len >= 60 && p[6] == 6 && be16(p + 4) + 40 == (unsigned int)len) return 40;
  return 0;
}

/* Whether q (its IP header ihl, TCP header thl) continues the run that starts at p, whose payloads so
   far add up to `have` bytes of `mss` each. */
static int continues(const unsigned char *p, const unsigned char *q, int ihl, int thl, int qlen, int have, int mss) {
  const unsigned char *pt = p + ihl, *qt = q + ihl;
  if (ihl == 20) {
    if (!same(p + 12, q + 12, 8) || p[1] != q[1] || p[8] != q[8] || (p[6] & 0x40) != (q[6] & 0x40)) return 0;
  } else {
    if (!same(p + 8, q + 8, 32) || !same(p, q, 4) || p[7] != q[7]) return 0;
  }
  if (((qt[12] >> 4) * 4) != thl || !same(pt, qt, 4) || !same(pt + 8, qt + 8, 4)) return 0; /* ports, ACK number */
  if ((qt[13] & ~0x08) != 0x10) return 0;                                                 /* ACK, maybe PSH */
  if (!same(pt + 20, qt + 20, thl - 20)) return 0;                                          /* options */
  int plen = qlen - ihl - thl;
  if (plen <= 0 || plen > mss) return 0;
  return be32(qt + 4) == be32(pt + 4) + (unsigned int)have;
}


/* Write one packet to a vnet TUN, after a zero virtio-net header (nothing to offload). Returns 0, or
   -errno. */
int tun_write_vnet(int fd, const unsigned char *pkt, int len) {
  static const unsigned char zero[VNET_HDR_LEN] = { 0 };
  struct iovec iov[2];
  iov[0].base = (void *)zero; iov[0].len = VNET_HDR_LEN;
  iov[1].base = (void *)pkt; iov[1].len = (unsigned long)len;
  return writev(fd, iov, 2) < 0 ? -*__errno_location() : 0;
}

/* Write n packets (packet i at base + offs[i], lens[i] bytes) to a vnet TUN, coalescing TCP runs in
   `scratch` (GRO_MAX + VNET_HDR_LEN bytes). Returns how many packets the device refused. */
int tun_write_gro(int fd, const unsigned char *base, const int *offs, const int *lens, int n, unsigned char *scratch) {
  int dropped = 0;
  int i = 0;
  while (i < n) {
    const unsigned char *p = base + offs[i];
    int len = lens[i];
    int ihl = tcp_iphlen(p, len);
    int thl = ihl ? (p[ihl + 12] >> 4) * 4 : 0;
    int mss = ihl ? len - ihl - thl : 0;
    int j = i + 1;
    if (ihl && thl >= 20 && mss > 0 && (p[ihl + 13] & ~0x08) == 0x10 && (p[ihl + 13] & 0x08) == 0) {
      int have = mss, total = len;
      while (j < n) {
        const unsigned char *q = base + offs[j];
        int qlen = lens[j];
        if (tcp_iphlen(q, qlen) != ihl || total + qlen - ihl - thl > GRO_MAX || !continues(p, q, ihl, thl, qlen, have, mss)) break;
        have += qlen - ihl - thl;
        total += qlen - ihl - thl;
        j++;
        if ((q[ihl + 13] & 0x08) || qlen - ihl - thl < mss) break; /* PSH or a short segment ends a run */
      }
    }
    if (j - i < 2) {
      dropped += tun_write_vnet(fd, p, len) < 0;
      i++;
      continue;
    }
    /* Build: vnet header, the first packet's headers, every payload. */
    /* libc's memcpy: TinyCC does not optimise, and its byte loop here cost ~1 µs a packet (most of the
       writer thread's time under a TCP load). */
    unsigned char *out = scratch + VNET_HDR_LEN;
    memcpy(out, p, (unsigned long)(ihl + thl));
    int off = ihl + thl;
    int psh = 0;
    for (int m = i; m < j; m++) {
      const unsigned char *q = base + offs[m];
      int plen = lens[m] - ihl - thl;
      memcpy(out + off, q + ihl + thl, (unsigned long)plen);
      off += plen;
      psh |= q[ihl + 13] & 0x08;
    }
    out[ihl + 13] |= psh;
    int tcplen = off - ihl;
    unsigned int pseudo;
    if (ihl == 20) {
      put16(out + 2, off);
      out[10] = 0; out[11] = 0;
      put16(out + 10, (~fold(sum16(out, 20, 0))) & 0xffff);
      pseudo = sum16(out + 12, 8, 6 + tcplen);
    } else {
      put16(out + 4, tcplen);
      pseudo = sum16(out + 8, 32, 6 + tcplen);
    }
    put16(out + ihl + 16, fold(pseudo)); /* partial checksum: the pseudo-header's, not complemented */
    struct vnet_hdr *h = (struct vnet_hdr *)scratch;
    h->flags = VNET_F_NEEDS_CSUM;
    h->gso_type = ihl == 20 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6;
    h->hdr_len = (unsigned short)(ihl + thl);
    h->gso_size = (unsigned short)mss;
    h->csum_start = (unsigned short)ihl;
    h->csum_offset = 16;
    if (write(fd, scratch, (unsigned long)(VNET_HDR_LEN + off)) < 0) dropped += j - i;
    i = j;
  }
  return dropped;
}

/* ── Reading with TSO/USO: the kernel hands one large TCP (or UDP) segment with a virtio-net header ──
   telling how to cut it (gso_size bytes of payload each); we cut it into packets the size the kernel
   would have sent, each with its own IP/TCP (UDP) header and full checksums, as the NIC would. A packet
   whose checksum the kernel left partial (NEEDS_CSUM) gets it completed. Same rules as the kernel's
   software GSO (and upstream wireguard-go's tun/offload_linux.go gsoSplit): IPv4 IDs count up, TCP
   sequence numbers advance by gso_size, FIN and PSH stay on the last piece only. */

#define TUNSETOFFLOAD 0x400454d0UL /* _IOW('T', 208, unsigned int) */
#define TUN_F_CSUM 0x01
#define TUN_F_TSO4 0x02
#define TUN_F_TSO6 0x04
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#define VNET_GSO_NONE 0
#define VNET_GSO_UDP_L4 5
#define VNET_GSO_ECN 0x80
/* Read only while this many slots are free: a 64 KB segment cut at an MSS of 512 fills 128. */
#define TSO_MIN_SLOTS 128

/* Ask the kernel for large segments: TSO for IPv4 and IPv6, and USO where the kernel has it (6.2+);
   want_uso < 0 turns every offload off again. Returns the flags in force, or -errno (the device then
   hands over plain packets). */
int tun_offload(int fd, int want_uso) {
  unsigned long f = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
  if (want_uso < 0) return ioctl(fd, TUNSETOFFLOAD, 0UL) == 0 ? 0 : -*__errno_location();
  if (want_uso && ioctl(fd, TUNSETOFFLOAD, f | TUN_F_USO4 | TUN_F_USO6) == 0) return (int)(f | TUN_F_USO4 | TUN_F_USO6);
  if (ioctl(fd, TUNSETOFFLOAD, f) == 0) return (int)f;
  return -*__errno_location();
}

/* The one's-complement sum of n bytes (16-bit words in memory order) added to acc, unfolded: words
   are summed in the machine's (little-endian) order and swapped once, in fold_net. */
static unsigned long long csum_add(const unsigned char *p, int n, unsigned long long acc) {
  /* Unaligned 32-bit loads are fine on x86_64 and aarch64, the only targets here; TinyCC calls out for
     memcpy, which made this loop 20 times slower. */
  const unsigned int *w = (const unsigned int *)p;
  while (n >= 32) {
    acc += (unsigned long long)w[0] + w[1] + w[2] + w[3];
    acc += (unsigned long long)w[4] + w[5] + w[6] + w[7];
    w += 8; n -= 32;
  }
  while (n >= 4) { acc += *w++; n -= 4; }
  p = (const unsigned char *)w;
  if (n >= 2) { acc += (unsigned int)p[0] | ((unsigned int)p[1] << 8); p += 2; n -= 2; }
  if (n) acc += p[0];
  return acc;
}
/* Fold to 16 bits, as the number whose big-endian bytes are the sum's bytes in memory. */
static unsigned int fold_net(unsigned long long acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return (unsigned int)(((acc & 0xff) << 8) | (acc >> 8));
}
/* A 16-bit big-endian value as the memory-order word csum_add would have summed. */
static unsigned long long word_le(unsigned int v) { return ((v & 0xff) << 8) | ((v >> 8) & 0xff); }

/* The pseudo-header's sum (unfolded) for `len` transport bytes of protocol `proto` in the IP packet at
   p (ihl 40: IPv6, else IPv4). */
static unsigned long long pseudo_sum(const unsigned char *p, int ihl, int proto, int len) {
  unsigned long long acc = ihl == 40 && (p[0] >> 4) == 6 ? csum_add(p + 8, 32, 0) : csum_add(p + 12, 8, 0);
  return acc + word_le((unsigned int)proto) + word_le((unsigned int)len);
}

/* Cut the GSO packet at pkt (len bytes, vnet header h) into packets written from out_first on: packet
   k at out_first + k*stride + VNET_HDR_LEN (the reader skips the header's room), at most `room`. The
   source may be the first slot itself: packets are written last to first, so none overwrites bytes one
   written later still needs (stride > header + gso_size). Sets lens; returns the count, 0 to drop. */
static int gso_split(unsigned char *pkt, int len, const struct vnet_hdr *h, unsigned char *out_first, int stride, int *lens, int room) {
  int v6 = (pkt[0] >> 4) == 6;
  int ihl = h->csum_start;
  int gso = h->gso_size;
  int type = h->gso_type & ~VNET_GSO_ECN;
  int tcp = type == VNET_GSO_TCPV4 || type == VNET_GSO_TCPV6;
  if (!tcp && type != VNET_GSO_UDP_L4) return 0;
  if (gso == 0 || (v6 ? ihl != 40 : (ihl < 20 || ihl != (pkt[0] & 15) * 4)) || ihl + 20 > len) return 0;
  int thl = tcp ? (pkt[ihl + 12] >> 4) * 4 : 8;
  int hl = ihl + thl;
  if ((tcp && thl < 20) || hl >= len || hl + gso + VNET_HDR_LEN > stride) return 0;
  int n = (len - hl + gso - 1) / gso;
  if (n > room) return 0;
  unsigned char hdr[120]; /* the original headers: IP (at most 60 here) and TCP (at most 60) */
  memcpy(hdr, pkt, (unsigned long)hl);
  unsigned int seq0 = tcp ? be32(hdr + ihl + 4) : 0;
  unsigned int id0 = be16(hdr + 4);
  int proto = tcp ? 6 : 17;
  for (int k = n - 1; k >= 0; k--) {
    int off = hl + k * gso;
    int plen = len - off < gso ? len - off : gso;
    unsigned char *o = out_first + (long)k * stride + VNET_HDR_LEN;
    memmove(o + hl, pkt + off, (unsigned long)plen);
    memcpy(o, hdr, (unsigned long)hl);
    int total = hl + plen;
    if (!v6) {
      put16(o + 2, (unsigned int)total);
      put16(o + 4, (id0 + (unsigned int)k) & 0xffff);
      o[10] = 0; o[11] = 0;
      put16(o + 10, ~fold_net(csum_add(o, ihl, 0)) & 0xffff);
    } else {
      put16(o + 4, (unsigned int)(total - 40));
    }
    unsigned char *t = o + ihl;
    if (tcp) {
      unsigned int seq = seq0 + (unsigned int)k * (unsigned int)gso;
      t[4] = seq >> 24; t[5] = (seq >> 16) & 0xff; t[6] = (seq >> 8) & 0xff; t[7] = seq & 0xff;
      if (k != n - 1) t[13] &= ~0x09; /* FIN and PSH only on the last piece */
      t[16] = 0; t[17] = 0;
      put16(t + 16, ~fold_net(csum_add(t, thl + plen, pseudo_sum(o, ihl, proto, thl + plen))) & 0xffff);
    } else {
      put16(t + 4, (unsigned int)(8 + plen));
      t[6] = 0; t[7] = 0;
      unsigned int c = ~fold_net(csum_add(t, 8 + plen, pseudo_sum(o, ihl, proto, 8 + plen))) & 0xffff;
      put16(t + 6, c == 0 ? 0xffff : c);
    }
    lens[k] = VNET_HDR_LEN + total;
  }
  return n;
}

/* Complete a checksum the kernel left partial: the sum from csum_start to the end, seeded with what
   sits in the checksum field (the pseudo-header's sum), stored complemented. */
static int finish_csum(unsigned char *pkt, int len, const struct vnet_hdr *h) {
  int at = h->csum_start + h->csum_offset;
  if (h->csum_start >= len || at + 2 > len) return 0;
  unsigned long long seed = word_le(be16(pkt + at));
  pkt[at] = 0; pkt[at + 1] = 0;
  put16(pkt + at, ~fold_net(csum_add(pkt + h->csum_start, len - h->csum_start, seed)) & 0xffff);
  return 1;
}

/* One read from a vnet TUN at `at` (`got` bytes: header, packet) made into packets in place: packet k
   in the slot at at + k*stride, lens[k] its length with the header's room. A large segment is cut (and
   counted in segs[0]); a partial checksum is completed. Returns the packets made (at most `room`); 0
   drops the read (counted in segs[1]). */
int tun_split(unsigned char *at, int got, int stride, int *lens, int room, int *segs) {
  if (got < VNET_HDR_LEN + 20 || room < 1) { segs[1]++; return 0; }
  struct vnet_hdr h;
  memcpy(&h, at, VNET_HDR_LEN);
  unsigned char *pkt = at + VNET_HDR_LEN;
  int len = got - VNET_HDR_LEN;
  if ((h.gso_type & ~VNET_GSO_ECN) != VNET_GSO_NONE) {
    int k = gso_split(pkt, len, &h, at, stride, lens, room);
    segs[k > 0 ? 0 : 1]++;
    return k;
  }
  if (((h.flags & VNET_F_NEEDS_CSUM) && !finish_csum(pkt, len, &h)) || got > stride) { segs[1]++; return 0; }
  lens[0] = got;
  return 1;
}

/* tun_read_batch for a vnet TUN with offloads on: a read may return a large segment, cut into packets
   in place (each slot keeps the header's room before its packet, as a plain vnet read does). Reads go
   on while a whole 64 KB segment's pieces still fit. Returns packets (0 on time-out) or -errno. */
int tun_read_tso(int fd, unsigned char *buf, int stride, int *lens, int max, int timeout_ms, int *segs) {
  int r = wait_readable(fd, timeout_ms);
  if (r <= 0) return r;
  int n = 0;
  while ((long)(max - n) * stride >= GRO_MAX + VNET_HDR_LEN && max - n >= TSO_MIN_SLOTS) {
    unsigned char *at = buf + (long)n * stride;
    long got = read(fd, at, (unsigned long)((long)(max - n) * stride));
    if (got < 0) {
      int e = *__errno_location();
      if (e == EAGAIN || e == EINTR || n > 0) break;
      return -e;
    }
    n += tun_split(at, (int)got, stride, lens + n, max - n, segs);
  }
  return n;
}

int tun_close(int fd) {
  return close(fd) < 0 ? -*__errno_location() : 0;
}
