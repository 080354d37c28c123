/* One direction of a TCP connection: segments in, contiguous bytes out (reassembly/tcp_stream.py).
 *
 * The waiting segments are a small array, sorted when drained (the reference sorts its dict
 * the same way); `recent` keeps at least the last `keep` delivered bytes and is cut back
 * only when it doubles, so that remembering them costs no copy per segment. */

#include "_fasttrack.h"

/* ---- byte buffers ------------------------------------------------------------------ */

unsigned char bb_empty[1];

/* Connections come and go by the thousand, and each grew its buffers (bytes to parse, a body,
 * the bytes kept for overlap checks) from nothing by doubling: a realloc and a copy per step,
 * 7 % of the tracker's instructions on the benchmark capture. The memory of freed buffers is
 * kept instead (POOL_BLOCKS blocks at most, none past POOL_LARGEST bytes: memory that was in
 * use a moment before) and handed to buffers that start. The GIL guards it. */
#define POOL_BLOCKS 512
#define POOL_SMALLEST 1024
#define POOL_LARGEST 16384

static struct {
    unsigned char *data;
    Py_ssize_t cap;
} pool[POOL_BLOCKS];
static int pooled;

int bb_append(ByteBuf *b, const unsigned char *data, Py_ssize_t len) {
    if (len <= 0) {
        return 0;
    }
    if (b->data == NULL && pooled > 0) {
        pooled--;
        b->data = pool[pooled].data;
        b->cap = pool[pooled].cap;
    }
    if (b->start + b->len + len > b->cap) {
        if (b->start > 0 && b->len + len <= b->cap && b->start >= b->len) {
            memmove(b->data, b->data + b->start, (size_t)b->len);
            b->start = 0;
        } else {
            if (b->start > 0) {
                memmove(b->data, b->data + b->start, (size_t)b->len);
                b->start = 0;
            }
            Py_ssize_t cap = b->cap < 256 ? 256 : b->cap;
            while (cap < b->len + len) {
                cap *= 2;
            }
            unsigned char *grown = PyMem_Realloc(b->data, (size_t)cap);
            if (grown == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            b->data = grown;
            b->cap = cap;
        }
    }
    memcpy(b->data + b->start + b->len, data, (size_t)len);
    b->len += len;
    return 0;
}

void bb_consume(ByteBuf *b, Py_ssize_t count) {
    if (count >= b->len) {
        b->start = b->len = 0;
    } else {
        b->start += count;
        b->len -= count;
    }
}

void bb_free(ByteBuf *b) {
    if (b->data != NULL && b->cap >= POOL_SMALLEST && b->cap <= POOL_LARGEST && pooled < POOL_BLOCKS) {
        pool[pooled].data = b->data;
        pool[pooled].cap = b->cap;
        pooled++;
    } else {
        PyMem_Free(b->data);
    }
    b->data = NULL;
    b->start = b->len = b->cap = 0;
}

void bb_shrink_if_idle(ByteBuf *b) {
    if (b->len == 0 && b->cap > 65536) {
        bb_free(b);
    }
}

/* ---- parts -------------------------------------------------------------------------- */

int parts_push(Parts *parts, Part part) {
    if (parts->count == parts->cap) {
        Py_ssize_t cap = parts->cap ? parts->cap * 2 : 4;
        Part *grown = PyMem_Realloc(parts->items, (size_t)cap * sizeof(Part));
        if (grown == NULL) {
            PyMem_Free(part.owned);
            PyErr_NoMemory();
            return -1;
        }
        parts->items = grown;
        parts->cap = cap;
    }
    parts->items[parts->count++] = part;
    return 0;
}

void parts_release(Parts *parts) {
    for (Py_ssize_t i = 0; i < parts->count; i++) {
        PyMem_Free(parts->items[i].owned);
    }
    PyMem_Free(parts->items);
    parts->items = NULL;
    parts->count = parts->cap = 0;
}

/* ---- the stream ------------------------------------------------------------------------ */

void stream_init(Stream *s, Py_ssize_t keep) {
    memset(s, 0, sizeof(*s));
    s->keep = keep;
}

void stream_free(Stream *s) {
    for (Py_ssize_t i = 0; i < s->npending; i++) {
        PyMem_Free(s->pending[i].data);
    }
    PyMem_Free(s->pending);
    s->pending = NULL;
    s->npending = s->cap_pending = 0;
    bb_free(&s->recent);
}

void stream_start(Stream *s, uint32_t isn) {
    if (!s->has_next) {
        s->has_next = s->has_initial = true;
        s->next_seq = s->initial_seq = isn + 1;
    }
}

/* What `_recent` holds: its last `keep` bytes (with keep 0, the last delivered segment). */
static void recent_view(const Stream *s, const unsigned char **data, Py_ssize_t *len) {
    Py_ssize_t n = s->recent.len;
    if (s->keep > 0 && n > s->keep) {
        *data = bb_ptr(&s->recent) + (n - s->keep);
        *len = s->keep;
    } else {
        *data = bb_ptr(&s->recent);
        *len = n;
    }
}

static int deliver(Stream *s, const unsigned char *fresh, Py_ssize_t len) {
    s->next_seq += (uint32_t)len;
    Py_ssize_t keep = s->keep;
    if (keep <= 0 || len >= keep) { /* `fresh[-keep:]`: all of it when keep is 0 */
        bb_clear(&s->recent);
        return bb_append(&s->recent, keep > 0 ? fresh + (len - keep) : fresh, keep > 0 ? keep : len);
    }
    if (s->recent.len + len > 2 * keep) {
        bb_consume(&s->recent, s->recent.len - keep);
    }
    return bb_append(&s->recent, fresh, len);
}

/* `payload` starts -offset bytes before next_seq: compare what is still remembered. */
static void check_overlap(Stream *s, int32_t offset, const unsigned char *payload, Py_ssize_t len) {
    const unsigned char *recent;
    Py_ssize_t recent_len;
    recent_view(s, &recent, &recent_len);
    long long start = (long long)recent_len + offset;
    long long skip = start < 0 ? -start : 0;
    long long stop = -(long long)offset < len ? -(long long)offset : len;
    long long count = stop - skip;
    if (count > 0 && memcmp(payload + skip, recent + start + skip, (size_t)count) != 0) {
        s->overlap_conflicts++;
    }
}

static int keep_early(Stream *s, uint32_t seq, const unsigned char *payload, Py_ssize_t len, double ts, bool has_ack,
                      uint32_t ack) {
    for (Py_ssize_t i = 0; i < s->npending; i++) {
        Pending *known = &s->pending[i];
        if (known->seq != seq) {
            continue;
        }
        Py_ssize_t common = known->len < len ? known->len : len;
        if (memcmp(known->data, payload, (size_t)common) != 0) {
            s->overlap_conflicts++;
        }
        if (len > known->len) { /* the first copy wins where both exist */
            unsigned char *grown = PyMem_Realloc(known->data, (size_t)len);
            if (grown == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            memcpy(grown + known->len, payload + known->len, (size_t)(len - known->len));
            known->data = grown;
            s->pending_bytes += len - known->len;
            known->len = len;
        }
        return 0;
    }
    if (s->npending == s->cap_pending) {
        Py_ssize_t cap = s->cap_pending ? s->cap_pending * 2 : 4;
        Pending *grown = PyMem_Realloc(s->pending, (size_t)cap * sizeof(Pending));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        s->pending = grown;
        s->cap_pending = cap;
    }
    unsigned char *copy = PyMem_Malloc((size_t)len);
    if (copy == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(copy, payload, (size_t)len);
    s->pending[s->npending++] = (Pending){seq, copy, len, ts, has_ack, ack};
    s->pending_bytes += len;
    return 0;
}

static uint32_t sort_base;

static int by_distance(const void *a, const void *b) {
    int32_t da = seq_distance(((const Pending *)a)->seq, sort_base);
    int32_t db = seq_distance(((const Pending *)b)->seq, sort_base);
    return (da > db) - (da < db);
}

static void remove_pending(Stream *s, Py_ssize_t index) {
    memmove(s->pending + index, s->pending + index + 1, (size_t)(s->npending - index - 1) * sizeof(Pending));
    s->npending--;
}

/* tcp_stream._drain_parts: each pass sorts by distance from where the stream is, and takes
 * every segment that starts at or before it, until one starts beyond. */
static int drain_parts(Stream *s, Parts *out) {
    bool progressed = true;
    while (progressed && s->npending > 0) {
        progressed = false;
        sort_base = s->next_seq;
        qsort(s->pending, (size_t)s->npending, sizeof(Pending), by_distance);
        while (s->npending > 0) {
            Pending item = s->pending[0];
            int32_t offset = seq_distance(item.seq, s->next_seq);
            if (offset > 0) {
                break;
            }
            remove_pending(s, 0);
            s->pending_bytes -= item.len;
            const unsigned char *data = item.data;
            Py_ssize_t len = item.len;
            if (offset < 0) {
                check_overlap(s, offset, data, len);
                Py_ssize_t cut = -(Py_ssize_t)offset < len ? -(Py_ssize_t)offset : len;
                data += cut;
                len -= cut;
            }
            if (len > 0) {
                if (deliver(s, data, len) < 0 ||
                    parts_push(out, (Part){data, len, item.ts, item.has_ack, item.ack, item.data}) < 0) {
                    return -1;
                }
            } else {
                PyMem_Free(item.data);
            }
            progressed = true;
        }
    }
    return 0;
}

/* tcp_stream.add_parts: `payload` must outlive the parts (the first may point into it). */
int stream_add_parts(Stream *s, uint32_t seq, const unsigned char *payload, Py_ssize_t len, double ts, bool has_ack,
                     uint32_t ack, Parts *out) {
    if (len == 0) {
        return 0;
    }
    if (s->has_next && seq == s->next_seq && s->npending == 0) {
        if (deliver(s, payload, len) < 0) {
            return -1;
        }
        return parts_push(out, (Part){payload, len, ts, has_ack, ack, NULL});
    }
    if (!s->has_next) { /* picked up mid-stream */
        s->has_next = s->has_initial = true;
        s->next_seq = s->initial_seq = seq;
    }
    int32_t offset = seq_distance(seq, s->next_seq);
    if (offset > 0) {
        return keep_early(s, seq, payload, len, ts, has_ack, ack);
    }
    if (offset < 0) {
        check_overlap(s, offset, payload, len);
        Py_ssize_t cut = -(Py_ssize_t)offset < len ? -(Py_ssize_t)offset : len;
        payload += cut;
        len -= cut;
        if (len == 0) {
            return 0;
        }
    }
    if (deliver(s, payload, len) < 0 || parts_push(out, (Part){payload, len, ts, has_ack, ack, NULL}) < 0) {
        return -1;
    }
    return s->npending ? drain_parts(s, out) : 0;
}

int stream_skip_hole(Stream *s, long long *lost, Parts *out) {
    *lost = 0;
    if (s->npending == 0 || !s->has_next) {
        return 0;
    }
    uint32_t base = s->next_seq;
    Py_ssize_t earliest = 0;
    for (Py_ssize_t i = 1; i < s->npending; i++) {
        if (seq_distance(s->pending[i].seq, base) < seq_distance(s->pending[earliest].seq, base)) {
            earliest = i;
        }
    }
    *lost = seq_distance(s->pending[earliest].seq, base);
    s->next_seq = s->pending[earliest].seq;
    bb_clear(&s->recent); /* nothing before the gap can be compared any more */
    return drain_parts(s, out);
}
