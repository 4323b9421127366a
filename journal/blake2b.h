/* BLAKE2b (RFC 7693), unkeyed, digest of 1..64 bytes, streaming.
 *
 * Written for gridtape's journal from the RFC's description: the hash chain hashes a few
 * hundred bytes per event, so calling it from C (no Python object per hash) is what makes
 * a flush cheap.  tests/test_journal_frames.py checks it against hashlib.blake2b.
 */
#ifndef GRIDTAPE_BLAKE2B_H
#define GRIDTAPE_BLAKE2B_H

#include <stdint.h>
#include <string.h>

typedef struct {
    uint64_t h[8];
    uint64_t t0, t1;       /* bytes compressed so far (128-bit counter) */
    uint8_t buf[128];      /* the block not yet compressed (kept until more data or final) */
    size_t len;            /* bytes in buf */
    size_t outlen;
} gt_b2b;

static const uint64_t GT_B2B_IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

static const uint8_t GT_B2B_SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

static inline uint64_t gt_rotr64(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

static inline uint64_t gt_load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);  /* little-endian hosts (x86-64, aarch64) */
    return v;
}

#define GT_B2B_G(a, b, c, d, x, y)          \
    do {                                    \
        v[a] = v[a] + v[b] + (x);           \
        v[d] = gt_rotr64(v[d] ^ v[a], 32);  \
        v[c] = v[c] + v[d];                 \
        v[b] = gt_rotr64(v[b] ^ v[c], 24);  \
        v[a] = v[a] + v[b] + (y);           \
        v[d] = gt_rotr64(v[d] ^ v[a], 16);  \
        v[c] = v[c] + v[d];                 \
        v[b] = gt_rotr64(v[b] ^ v[c], 63);  \
    } while (0)

#define GT_B2B_ROUND(r)                                                       \
    do {                                                                      \
        GT_B2B_G(0, 4, 8, 12, m[GT_B2B_SIGMA[r][0]], m[GT_B2B_SIGMA[r][1]]);   \
        GT_B2B_G(1, 5, 9, 13, m[GT_B2B_SIGMA[r][2]], m[GT_B2B_SIGMA[r][3]]);   \
        GT_B2B_G(2, 6, 10, 14, m[GT_B2B_SIGMA[r][4]], m[GT_B2B_SIGMA[r][5]]);  \
        GT_B2B_G(3, 7, 11, 15, m[GT_B2B_SIGMA[r][6]], m[GT_B2B_SIGMA[r][7]]);  \
        GT_B2B_G(0, 5, 10, 15, m[GT_B2B_SIGMA[r][8]], m[GT_B2B_SIGMA[r][9]]);  \
        GT_B2B_G(1, 6, 11, 12, m[GT_B2B_SIGMA[r][10]], m[GT_B2B_SIGMA[r][11]]); \
        GT_B2B_G(2, 7, 8, 13, m[GT_B2B_SIGMA[r][12]], m[GT_B2B_SIGMA[r][13]]);  \
        GT_B2B_G(3, 4, 9, 14, m[GT_B2B_SIGMA[r][14]], m[GT_B2B_SIGMA[r][15]]);  \
    } while (0)

static void gt_b2b_compress(gt_b2b *s, const uint8_t *block, int last) {
    uint64_t m[16], v[16];
    int i;
    for (i = 0; i < 16; i++) m[i] = gt_load64(block + 8 * i);
    for (i = 0; i < 8; i++) {
        v[i] = s->h[i];
        v[i + 8] = GT_B2B_IV[i];
    }
    v[12] ^= s->t0;
    v[13] ^= s->t1;
    if (last) v[14] = ~v[14];
    /* the rounds written out: constant message indices let the compiler keep v and m in registers */
    GT_B2B_ROUND(0); GT_B2B_ROUND(1); GT_B2B_ROUND(2); GT_B2B_ROUND(3);
    GT_B2B_ROUND(4); GT_B2B_ROUND(5); GT_B2B_ROUND(6); GT_B2B_ROUND(7);
    GT_B2B_ROUND(8); GT_B2B_ROUND(9); GT_B2B_ROUND(10); GT_B2B_ROUND(11);
    for (i = 0; i < 8; i++) s->h[i] ^= v[i] ^ v[i + 8];
}

static inline void gt_b2b_count(gt_b2b *s, uint64_t n) {
    s->t0 += n;
    if (s->t0 < n) s->t1++;
}

static void gt_b2b_init(gt_b2b *s, size_t outlen) {
    int i;
    for (i = 0; i < 8; i++) s->h[i] = GT_B2B_IV[i];
    s->h[0] ^= 0x01010000ULL ^ (uint64_t)outlen;  /* depth 1, fanout 1, no key */
    s->t0 = s->t1 = 0;
    s->len = 0;
    s->outlen = outlen;
}

static void gt_b2b_update(gt_b2b *s, const uint8_t *in, size_t n) {
    while (n > 0) {
        if (s->len == 128) {  /* a full block is compressed only once more data follows */
            gt_b2b_count(s, 128);
            gt_b2b_compress(s, s->buf, 0);
            s->len = 0;
        }
        size_t take = 128 - s->len;
        if (take > n) take = n;
        memcpy(s->buf + s->len, in, take);
        s->len += take;
        in += take;
        n -= take;
    }
}

static void gt_b2b_final(gt_b2b *s, uint8_t *out) {
    int i;
    gt_b2b_count(s, s->len);
    memset(s->buf + s->len, 0, 128 - s->len);
    gt_b2b_compress(s, s->buf, 1);
    for (i = 0; i < (int)s->outlen; i++) out[i] = (uint8_t)(s->h[i >> 3] >> (8 * (i & 7)));
}

#endif
