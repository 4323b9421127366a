/* A 64-bit checksum of a journal frame (GTJ3): tells a whole frame from a torn or damaged one.
 *
 * Not a cryptographic hash (the hash chain, computed at ingest, is the tamper evidence): it
 * only has to catch a frame cut short, zero-filled or with flipped bytes, and to cost little
 * at every flush.  Four independent lanes take 8 bytes each per 32-byte stripe (a multiply,
 * a rotation and a multiply per word, so the lanes run in parallel), then the lanes, the
 * trailing words and bytes and the length are folded and the result is mixed so that every
 * input bit reaches every output bit.  tests/test_journal_frames.py holds it to a pure-Python
 * transcription and checks that single flipped bits and cuts change it.
 */
#ifndef GRIDTAPE_SUM64_H
#define GRIDTAPE_SUM64_H

#include <stdint.h>
#include <string.h>

#define GT_S_K1 0x9E3779B97F4A7C15ULL /* 2^64 / golden ratio, odd */
#define GT_S_K2 0xD6E8FEB86659FD93ULL
#define GT_S_K3 0xA0761D6478BD642FULL
#define GT_S_K4 0xE7037ED1A0B428DBULL

static inline uint64_t gt_s_rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t gt_s_word(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8); /* little-endian hosts */
    return v;
}

static inline uint64_t gt_s_lane(uint64_t acc, uint64_t w) {
    return gt_s_rotl(acc + w * GT_S_K2, 29) * GT_S_K1;
}

static inline uint64_t gt_s_mix(uint64_t h) {
    h ^= h >> 32;
    h *= GT_S_K3;
    h ^= h >> 29;
    h *= GT_S_K4;
    h ^= h >> 32;
    return h;
}

static uint64_t gt_sum64(const uint8_t *p, size_t n) {
    uint64_t a = GT_S_K1, b = GT_S_K2, c = GT_S_K3, d = GT_S_K4, h;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a = gt_s_lane(a, gt_s_word(p + i));
        b = gt_s_lane(b, gt_s_word(p + i + 8));
        c = gt_s_lane(c, gt_s_word(p + i + 16));
        d = gt_s_lane(d, gt_s_word(p + i + 24));
    }
    h = gt_s_rotl(a, 1) + gt_s_rotl(b, 7) + gt_s_rotl(c, 12) + gt_s_rotl(d, 18);
    h ^= (uint64_t)n * GT_S_K3;
    for (; i + 8 <= n; i += 8) h = gt_s_lane(h, gt_s_word(p + i));
    for (; i < n; i++) h = gt_s_lane(h, (uint64_t)p[i] + 0x100ULL * (uint64_t)(i & 7));
    return gt_s_mix(h);
}

#endif
