/* The engine <-> stack-init record format (wire.h): decoding and encoding of records. Plain C
 * with no I/O and no allocation, compiled into both stack-init and the engine, so both ends
 * share one decoder. */
#include "wire.h"

#include <string.h>

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void wire_reader_init(struct wire_reader *r, const void *body, size_t len) {
  r->p = body;
  r->end = r->p + len;
}

int wire_next(struct wire_reader *r, uint16_t *tag, const unsigned char **val, uint32_t *len) {
  size_t left = (size_t)(r->end - r->p);
  if (left == 0) return 0;
  if (left < 6) return -1;
  *tag = (uint16_t)(r->p[0] | r->p[1] << 8);
  *len = get32(r->p + 2);
  if (*len > left - 6) return -1; /* never compared as p + len: that could wrap */
  *val = r->p + 6;
  r->p += 6 + (size_t)*len;
  return 1;
}

int wire_u32(const unsigned char *val, uint32_t len, uint32_t *out) {
  if (len != 4) return -1;
  *out = get32(val);
  return 0;
}

int wire_u64(const unsigned char *val, uint32_t len, uint64_t *out) {
  if (len != 8) return -1;
  *out = (uint64_t)get32(val) | (uint64_t)get32(val + 4) << 32;
  return 0;
}

int wire_put(unsigned char *buf, size_t cap, size_t *used, uint16_t tag, const void *val,
             uint32_t len) {
  if (*used > cap || cap - *used < 6 || cap - *used - 6 < len) return -1;
  unsigned char *p = buf + *used;
  p[0] = (unsigned char)tag;
  p[1] = (unsigned char)(tag >> 8);
  for (int i = 0; i < 4; i++) p[2 + i] = (unsigned char)(len >> (8 * i));
  if (len) memcpy(p + 6, val, len);
  *used += 6 + (size_t)len;
  return 0;
}
