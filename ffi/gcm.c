// gcm.c: AES-256-GCM for session data packets through the system's libcrypto (OpenSSL 3 or 1.1, EVP),
// a whole batch per call; and GMAC for the fast channel's link-authenticated frames, a batch per call. Built at run time by bun:ffi's cc (TinyCC), like tun.c, with no system
// headers: libcrypto is opened with dlopen, so nothing links against it and a system without it (or
// without TinyCC's libc link) falls back to node:crypto (src/session/gcm.ts).
//
// The packet format is src/session/keypair.ts's: a 16-byte header (0xC4, three zero bytes, receiver
// index u32 LE, counter u64 LE) that is the AAD, the ciphertext, a 16-byte tag; the nonce is four zero
// bytes then the counter (LE). A key schedule is made once per context; each packet only sets its nonce.

extern void *dlopen(const char *file, int mode);
extern void *dlsym(void *handle, const char *name);
extern void *memcpy(void *dst, const void *src, unsigned long n);
#define RTLD_NOW 2

typedef void CTX;
static CTX *(*ctx_new)(void);
static void (*ctx_free)(CTX *c);
static const void *(*aes_256_gcm)(void);
static int (*enc_init)(CTX *c, const void *cipher, void *engine, const unsigned char *key, const unsigned char *iv);
static int (*enc_update)(CTX *c, unsigned char *out, int *outl, const unsigned char *in, int inl);
static int (*enc_final)(CTX *c, unsigned char *out, int *outl);
static int (*dec_init)(CTX *c, const void *cipher, void *engine, const unsigned char *key, const unsigned char *iv);
static int (*dec_update)(CTX *c, unsigned char *out, int *outl, const unsigned char *in, int inl);
static int (*dec_final)(CTX *c, unsigned char *out, int *outl);
static int (*ctx_ctrl)(CTX *c, int type, int arg, void *ptr);
#define CTRL_GCM_GET_TAG 0x10
#define CTRL_GCM_SET_TAG 0x11
#define TYPE_DATA 0xc4

/* Open libcrypto at `path` (a soname); 1 when every function was found, else 0. */
int gcm_load(const char *path) {
  void *h = dlopen(path, RTLD_NOW);
  if (!h) return 0;
  ctx_new = dlsym(h, "EVP_CIPHER_CTX_new");
  ctx_free = dlsym(h, "EVP_CIPHER_CTX_free");
  aes_256_gcm = dlsym(h, "EVP_aes_256_gcm");
  enc_init = dlsym(h, "EVP_EncryptInit_ex");
  enc_update = dlsym(h, "EVP_EncryptUpdate");
  enc_final = dlsym(h, "EVP_EncryptFinal_ex");
  dec_init = dlsym(h, "EVP_DecryptInit_ex");
  dec_update = dlsym(h, "EVP_DecryptUpdate");
  dec_final = dlsym(h, "EVP_DecryptFinal_ex");
  ctx_ctrl = dlsym(h, "EVP_CIPHER_CTX_ctrl");
  return ctx_new && ctx_free && aes_256_gcm && enc_init && enc_update && enc_final && dec_init && dec_update && dec_final && ctx_ctrl ? 1 : 0;
}

/* A context holding `key` (32 bytes) for sealing (`seal` = 1) or opening; 0 on failure. */
CTX *gcm_new(const unsigned char *key, int seal) {
  CTX *c = ctx_new();
  if (!c) return 0;
  int ok = seal ? enc_init(c, aes_256_gcm(), 0, key, 0) : dec_init(c, aes_256_gcm(), 0, key, 0);
  if (ok != 1) {
    ctx_free(c);
    return 0;
  }
  return c;
}

void gcm_free(CTX *c) {
  ctx_free(c);
}

/* Seal n payloads: payload i (srcs[i], lens[i] bytes) becomes the packet at out + offs[i] (header,
   ciphertext, tag: lens[i] + 32 bytes), under counter first + i, for receiver index `receiver`.
   Returns how many were sealed (n unless libcrypto failed; the rest are left unsealed). */
int gcm_seal_batch(CTX *c, unsigned char *out, const int *offs, const double *srcs, const int *lens, int n, double receiver_d, double first) {
  unsigned int receiver = (unsigned int)receiver_d;
  unsigned char nonce[12];
  unsigned long long base = (unsigned long long)first;
  int outl;
  for (int i = 0; i < n; i++) {
    unsigned char *p = out + offs[i];
    const unsigned char *src = (const unsigned char *)(unsigned long)srcs[i];
    int len = lens[i];
    unsigned long long ctr = base + (unsigned long long)i;
    p[0] = TYPE_DATA;
    p[1] = 0;
    p[2] = 0;
    p[3] = 0;
    p[4] = receiver;
    p[5] = receiver >> 8;
    p[6] = receiver >> 16;
    p[7] = receiver >> 24;
    for (int k = 0; k < 8; k++) p[8 + k] = (unsigned char)(ctr >> (8 * k));
    nonce[0] = nonce[1] = nonce[2] = nonce[3] = 0;
    for (int k = 0; k < 8; k++) nonce[4 + k] = p[8 + k];
    if (enc_init(c, 0, 0, 0, nonce) != 1) return i;
    if (enc_update(c, 0, &outl, p, 16) != 1) return i;
    if (len > 0 && enc_update(c, p + 16, &outl, src, len) != 1) return i;
    if (enc_final(c, p + 16 + len, &outl) != 1) return i;
    if (ctx_ctrl(c, CTRL_GCM_GET_TAG, 16, p + 16 + len) != 1) return i;
  }
  return n;
}

/* Open the packet at p (len bytes, at least 32) in place: on success the plaintext is at p + 16
   (len - 32 bytes) and 1 is returned; 0 when the tag does not verify (the body is then garbage). */
int gcm_open(CTX *c, unsigned char *p, int len) {
  unsigned char nonce[12];
  int outl;
  int body = len - 32;
  if (body < 0) return 0;
  nonce[0] = nonce[1] = nonce[2] = nonce[3] = 0;
  for (int k = 0; k < 8; k++) nonce[4 + k] = p[8 + k];
  if (dec_init(c, 0, 0, 0, nonce) != 1) return 0;
  if (dec_update(c, 0, &outl, p, 16) != 1) return 0;
  if (body > 0 && dec_update(c, p + 16, &outl, p + 16, body) != 1) return 0;
  if (ctx_ctrl(c, CTRL_GCM_SET_TAG, 16, p + 16 + body) != 1) return 0;
  return dec_final(c, p + 16 + body, &outl) == 1 ? 1 : 0;
}

/* Link authentication of frames that are not session data (src/tether/linkauth.ts): GMAC, that is
   AES-256-GCM with nothing encrypted, the frame and its counter the AAD. Frame i is `head` (hlen bytes,
   shared by the batch; 0 for none) then lens[i] bytes from srcs[i], written at out + offs[i]; after it
   the counter first + i (u64 BE) and the 16-byte tag under nonce 0^4 ‖ counter (BE): hlen + lens[i] +
   24 bytes in all. Returns how many were tagged (n unless libcrypto failed). */
int gmac_tag_batch(CTX *c, unsigned char *out, const int *offs, const double *srcs, const int *lens, int n, const unsigned char *head, int hlen, double first) {
  unsigned char nonce[12], scratch[16];
  unsigned long long base = (unsigned long long)first;
  int outl;
  for (int i = 0; i < n; i++) {
    unsigned char *p = out + offs[i];
    int len = lens[i];
    if (hlen > 0) memcpy(p, head, (unsigned long)hlen);
    if (len > 0) memcpy(p + hlen, (const unsigned char *)(unsigned long)srcs[i], (unsigned long)len);
    unsigned char *q = p + hlen + len;
    unsigned long long ctr = base + (unsigned long long)i;
    for (int k = 0; k < 8; k++) q[k] = (unsigned char)(ctr >> (56 - 8 * k));
    nonce[0] = nonce[1] = nonce[2] = nonce[3] = 0;
    for (int k = 0; k < 8; k++) nonce[4 + k] = q[k];
    if (enc_init(c, 0, 0, 0, nonce) != 1) return i;
    if (enc_update(c, 0, &outl, p, hlen + len + 8) != 1) return i;
    if (enc_final(c, scratch, &outl) != 1) return i;
    if (ctx_ctrl(c, CTRL_GCM_GET_TAG, 16, q + 8) != 1) return i;
  }
  return n;
}

/* Check n link-authenticated frames in buf: frame i at offs[i], lens[i] bytes with its counter and tag
   (as gmac_tag_batch wrote them). ok[i] = 1 when its tag verifies, else 0; returns how many verified. */
int gmac_check_batch(CTX *c, unsigned char *buf, const int *offs, const int *lens, int n, unsigned char *ok) {
  unsigned char nonce[12], scratch[16];
  int outl, good = 0;
  for (int i = 0; i < n; i++) {
    unsigned char *p = buf + offs[i];
    int ad = lens[i] - 16;
    ok[i] = 0;
    if (ad < 9) continue;
    nonce[0] = nonce[1] = nonce[2] = nonce[3] = 0;
    for (int k = 0; k < 8; k++) nonce[4 + k] = p[ad - 8 + k];
    if (dec_init(c, 0, 0, 0, nonce) != 1) continue;
    if (dec_update(c, 0, &outl, p, ad) != 1) continue;
    if (ctx_ctrl(c, CTRL_GCM_SET_TAG, 16, p + ad) != 1) continue;
    if (dec_final(c, scratch, &outl) == 1) {
      ok[i] = 1;
      good++;
    }
  }
  return good;
}
