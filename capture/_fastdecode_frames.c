/* The compiled FrameDecoder: the common shape of a mirrored frame straight into a TcpSegment.
 *
 * Part of capture._fastdecode (module comment in _fastdecode.c). Ethernet, 802.1Q/802.1ad
 * tags, IPv4 or IPv6, TCP; VXLAN and GENEVE around the same. Anything else, and anything
 * odd, returns FALLBACK and the Python decoder (capture/decode.py) takes the frame whole.
 * Every read of the buffer is preceded by a length check against the end of the bytes that
 * belong to the layer (the same ends the Python decoder uses).
 */

#include "_fastdecode.h"

#define FALLBACK 0 /* not decoded here: the Python decoder takes the frame */
#define DECODED 1
#define FAILED (-1) /* a Python exception is set */

#define LINKTYPE_ETHERNET 1
#define ETHERNET_HEADER 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86DD
#define ETHERTYPE_TEB 0x6558 /* RFC 1701: transparent Ethernet bridging */
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPV6_FRAGMENT_HEADER 44
#define IPV6_AUTHENTICATION_HEADER 51
#define VXLAN_HEADER 8  /* RFC 7348 section 5 */
#define VXLAN_FLAG_I 0x08
#define GENEVE_HEADER 8 /* RFC 8926 section 3.4 */
/* Deeper nesting than this goes to Python (which applies max_tunnel_depth): bounds the C stack. */
#define MAX_NESTING 16

#define ADDRESS_CACHE_SIZE 4096 /* direct-mapped, so memory stays fixed */
#define TUNNEL_CACHE_SIZE 1024

static uint32_t hash_bytes(const unsigned char *p, Py_ssize_t n, uint32_t h) {
    for (Py_ssize_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u; /* FNV-1a */
    }
    return h;
}

typedef struct {
    unsigned char length; /* 0: empty; 8 (IPv4 pair) or 32 (IPv6 pair) */
    unsigned char key[32];
    PyObject *src;
    PyObject *dst;
} AddressEntry;

typedef struct {
    PyObject *parent; /* the enclosing tunnel context (a tuple), held so its address stays unique */
    PyObject *context;
    unsigned char kind; /* 1: vxlan, 2: geneve; 0: empty */
    unsigned char address_length;
    uint32_t ident;
    unsigned char addresses[32];
} TunnelEntry;

enum {
    SEG_TS,
    SEG_SRC,
    SEG_DST,
    SEG_SPORT,
    SEG_DPORT,
    SEG_SEQ,
    SEG_ACK,
    SEG_FLAGS,
    SEG_PAYLOAD,
    SEG_TRUNCATED,
    SEG_TUNNEL,
    SEG_FIELDS
};
static const char *const segment_fields[SEG_FIELDS] = {"ts",  "src",   "dst",     "sport",     "dport", "seq",
                                                       "ack", "flags", "payload", "truncated", "tunnel"};

typedef struct {
    PyObject_HEAD
    PyTypeObject *raw_type;
    PyTypeObject *segment_type;
    Py_ssize_t raw_offsets[RAW_FIELDS];
    Py_ssize_t segment_offsets[SEG_FIELDS];
    PyObject *address;   /* callable: raw address bytes -> text */
    PyObject *enter;     /* callable: (tunnel, kind, src, dst, ident) -> context tuple or a reason */
    PyObject *no_tunnel; /* () */
    PyObject *kind_names[3];
    uint8_t vxlan_ports[65536 / 8];
    uint8_t geneve_ports[65536 / 8];
    AddressEntry *addresses;
    TunnelEntry *tunnels;
} FrameDecoder;

/* What one frame's walk carries along: the Python decoder's per-frame state. */
typedef struct {
    const unsigned char *buf;
    int truncated; /* bytes are missing: only ever turns true */
    PyObject *ts;  /* borrowed from the packet */
    FastSegment *raw; /* when set, the segment goes here instead of into a TcpSegment */
} Frame;

static int decode_ethernet(FrameDecoder *self, Frame *frame, Py_ssize_t offset, Py_ssize_t end, PyObject *tunnel,
                           int depth, PyObject **segment);

static inline int port_set(const uint8_t *bits, uint32_t port) { return bits[port >> 3] & (1 << (port & 7)); }

/* Fill `bits` with the ports in `ports` (any iterable): the same membership as Python's `in`. */
static int fill_ports(uint8_t *bits, PyObject *ports) {
    memset(bits, 0, 65536 / 8);
    PyObject *iterator = PyObject_GetIter(ports);
    if (iterator == NULL) {
        return -1;
    }
    int exotic = 0;
    PyObject *item;
    while ((item = PyIter_Next(iterator)) != NULL) {
        if (PyLong_CheckExact(item) || PyBool_Check(item)) {
            int overflow;
            long port = PyLong_AsLongAndOverflow(item, &overflow);
            if (!overflow && port >= 0 && port <= 65535) {
                bits[port >> 3] |= (uint8_t)(1 << (port & 7));
            }
        } else {
            exotic = 1; /* 4789.0 == 4789: ask the collection itself, port by port */
        }
        Py_DECREF(item);
    }
    Py_DECREF(iterator);
    if (PyErr_Occurred()) {
        return -1;
    }
    if (exotic) {
        for (long port = 0; port <= 65535; port++) {
            PyObject *number = PyLong_FromLong(port);
            if (number == NULL) {
                return -1;
            }
            int found = PySequence_Contains(ports, number);
            Py_DECREF(number);
            if (found < 0) {
                return -1;
            }
            if (found) {
                bits[port >> 3] |= (uint8_t)(1 << (port & 7));
            }
        }
    }
    return 0;
}

static void clear_caches(FrameDecoder *self) {
    if (self->addresses != NULL) {
        for (int i = 0; i < ADDRESS_CACHE_SIZE; i++) {
            Py_CLEAR(self->addresses[i].src);
            Py_CLEAR(self->addresses[i].dst);
            self->addresses[i].length = 0;
        }
    }
    if (self->tunnels != NULL) {
        for (int i = 0; i < TUNNEL_CACHE_SIZE; i++) {
            Py_CLEAR(self->tunnels[i].parent);
            Py_CLEAR(self->tunnels[i].context);
            self->tunnels[i].kind = 0;
        }
    }
}

static int FrameDecoder_traverse(FrameDecoder *self, visitproc visit, void *arg) {
    /* The caches hold only strings and tuples of strings and ints: they cannot be in a cycle. */
    Py_VISIT(self->address);
    Py_VISIT(self->enter);
    Py_VISIT(self->raw_type);
    Py_VISIT(self->segment_type);
    return 0;
}

static int FrameDecoder_clear(FrameDecoder *self) {
    Py_CLEAR(self->address);
    Py_CLEAR(self->enter);
    Py_CLEAR(self->raw_type);
    Py_CLEAR(self->segment_type);
    return 0;
}

static void FrameDecoder_dealloc(FrameDecoder *self) {
    PyObject_GC_UnTrack(self);
    FrameDecoder_clear(self);
    clear_caches(self);
    PyMem_Free(self->addresses);
    PyMem_Free(self->tunnels);
    Py_CLEAR(self->no_tunnel);
    for (int i = 0; i < 3; i++) {
        Py_CLEAR(self->kind_names[i]);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int FrameDecoder_init(FrameDecoder *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"raw_packet_type", "segment_type", "vxlan_ports", "geneve_ports", "address", "enter",
                               NULL};
    PyTypeObject *raw_type, *segment_type;
    PyObject *vxlan_ports, *geneve_ports, *address, *enter;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$O!O!OOOO:FrameDecoder", keywords, &PyType_Type, &raw_type,
                                     &PyType_Type, &segment_type, &vxlan_ports, &geneve_ports, &address, &enter)) {
        return -1;
    }
    if (self->addresses != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "FrameDecoder is initialised once");
        return -1;
    }
    if (!PyCallable_Check(address) || !PyCallable_Check(enter)) {
        PyErr_SetString(PyExc_TypeError, "address and enter must be callable");
        return -1;
    }
    for (int i = 0; i < RAW_FIELDS; i++) {
        if (slot_offset(raw_type, raw_fields[i], &self->raw_offsets[i]) < 0) {
            return -1;
        }
    }
    for (int i = 0; i < SEG_FIELDS; i++) {
        if (slot_offset(segment_type, segment_fields[i], &self->segment_offsets[i]) < 0) {
            return -1;
        }
    }
    if (fill_ports(self->vxlan_ports, vxlan_ports) < 0 || fill_ports(self->geneve_ports, geneve_ports) < 0) {
        return -1;
    }
    self->no_tunnel = PyTuple_New(0);
    self->kind_names[1] = PyUnicode_InternFromString("vxlan");
    self->kind_names[2] = PyUnicode_InternFromString("geneve");
    self->addresses = PyMem_Calloc(ADDRESS_CACHE_SIZE, sizeof(AddressEntry));
    self->tunnels = PyMem_Calloc(TUNNEL_CACHE_SIZE, sizeof(TunnelEntry));
    if (self->no_tunnel == NULL || self->kind_names[1] == NULL || self->kind_names[2] == NULL ||
        self->addresses == NULL || self->tunnels == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(raw_type);
    self->raw_type = raw_type;
    Py_INCREF(segment_type);
    self->segment_type = segment_type;
    Py_INCREF(address);
    self->address = address;
    Py_INCREF(enter);
    self->enter = enter;
    return 0;
}

/* The text of an address: an IPv4 one written here, dotted decimal as inet_ntop writes it
 * (RFC 791 addresses, no leading zeros); an IPv6 one by the decoder's `address`. Every new
 * client meets this: a call into Python per address cost more than all its packets' decoding. */
static PyObject *address_text(FrameDecoder *self, const unsigned char *raw, Py_ssize_t length) {
    if (length != 4) {
        return PyObject_CallFunction(self->address, "y#", raw, length);
    }
    char text[16], *end = text;
    for (int i = 0; i < 4; i++) { /* by hand: snprintf costs more than the Python call did */
        unsigned byte = raw[i];
        if (byte >= 100) {
            *end++ = (char)('0' + byte / 100);
        }
        if (byte >= 10) {
            *end++ = (char)('0' + byte / 10 % 10);
        }
        *end++ = (char)('0' + byte % 10);
        *end++ = '.';
    }
    return PyUnicode_FromStringAndSize(text, end - text - 1);
}

/* The text of a source and destination address (4 or 16 bytes each), cached by their bytes:
 * new references. */
static int lookup_addresses(FrameDecoder *self, const unsigned char *src, const unsigned char *dst,
                            Py_ssize_t length, PyObject **src_text, PyObject **dst_text) {
    unsigned char key[32];
    memcpy(key, src, (size_t)length);
    memcpy(key + length, dst, (size_t)length);
    AddressEntry *entry = &self->addresses[hash_bytes(key, 2 * length, 2166136261u) % ADDRESS_CACHE_SIZE];
    if (entry->length != 2 * length || memcmp(entry->key, key, (size_t)(2 * length)) != 0) {
        unsigned char reversed[32];
        memcpy(reversed, dst, (size_t)length);
        memcpy(reversed + length, src, (size_t)length);
        AddressEntry *other = &self->addresses[hash_bytes(reversed, 2 * length, 2166136261u) % ADDRESS_CACHE_SIZE];
        PyObject *src_text_new, *dst_text_new;
        if (other->length == 2 * length && memcmp(other->key, reversed, (size_t)(2 * length)) == 0) {
            /* The other direction's texts: the same objects, so that the tracker's comparisons
             * of a connection's addresses are identity checks. */
            src_text_new = Py_NewRef(other->dst);
            dst_text_new = Py_NewRef(other->src);
        } else if ((src_text_new = address_text(self, src, length)) == NULL) {
            return -1;
        } else if ((dst_text_new = address_text(self, dst, length)) == NULL) {
            Py_DECREF(src_text_new);
            return -1;
        }
        Py_XSETREF(entry->src, src_text_new);
        Py_XSETREF(entry->dst, dst_text_new);
        entry->length = (unsigned char)(2 * length);
        memcpy(entry->key, key, (size_t)(2 * length));
    }
    /* New references: a callback or a finalizer may evict the entry before they are used. */
    Py_INCREF(entry->src);
    *src_text = entry->src;
    Py_INCREF(entry->dst);
    *dst_text = entry->dst;
    return 0;
}

/* The context inside a tunnel (a new reference), as the Python decoder's `_enter` makes it;
 * NULL with no exception when `_enter` refuses (too deep): the frame goes to Python. */
static PyObject *enter_tunnel(FrameDecoder *self, PyObject *parent, unsigned char kind, const unsigned char *src,
                              const unsigned char *dst, Py_ssize_t length, uint32_t ident) {
    unsigned char addresses[32];
    memcpy(addresses, src, (size_t)length);
    memcpy(addresses + length, dst, (size_t)length);
    uint32_t h = hash_bytes(addresses, 2 * length, 2166136261u ^ kind);
    h = hash_bytes((const unsigned char *)&ident, sizeof ident, h);
    h = hash_bytes((const unsigned char *)&parent, sizeof parent, h);
    TunnelEntry *entry = &self->tunnels[h % TUNNEL_CACHE_SIZE];
    if (entry->kind == kind && entry->parent == parent && entry->ident == ident &&
        entry->address_length == 2 * length && memcmp(entry->addresses, addresses, (size_t)(2 * length)) == 0) {
        Py_INCREF(entry->context);
        return entry->context;
    }
    PyObject *context = PyObject_CallFunction(self->enter, "OOy#y#k", parent, self->kind_names[kind], src, length,
                                              dst, length, (unsigned long)ident);
    if (context == NULL) {
        return NULL;
    }
    if (!PyTuple_CheckExact(context)) { /* a reason: Python will name it */
        Py_DECREF(context);
        return NULL;
    }
    Py_INCREF(parent);
    Py_XSETREF(entry->parent, parent);
    Py_INCREF(context);
    Py_XSETREF(entry->context, context);
    entry->kind = kind;
    entry->ident = ident;
    entry->address_length = (unsigned char)(2 * length);
    memcpy(entry->addresses, addresses, (size_t)(2 * length));
    return context;
}

/* RFC 9293 section 3.1: the header is at least 5 words, and all there. */
static int decode_tcp(FrameDecoder *self, Frame *frame, Py_ssize_t offset, Py_ssize_t end, const unsigned char *src,
                      const unsigned char *dst, Py_ssize_t address_length, PyObject *tunnel, PyObject **segment) {
    if (end - offset < 20) {
        return FALLBACK;
    }
    const unsigned char *tcp = frame->buf + offset;
    Py_ssize_t header_length = (Py_ssize_t)(tcp[12] >> 4) * 4;
    if (header_length < 20 || offset + header_length > end) {
        return FALLBACK;
    }
    PyObject *src_text, *dst_text;
    if (lookup_addresses(self, src, dst, address_length, &src_text, &dst_text) < 0) {
        return FAILED;
    }
    if (frame->raw != NULL) {
        FastSegment *raw = frame->raw;
        raw->src = src_text;
        raw->dst = dst_text;
        Py_INCREF(tunnel);
        raw->tunnel = tunnel;
        raw->sport = (long)be16(tcp);
        raw->dport = (long)be16(tcp + 2);
        raw->seq = be32(tcp + 4);
        raw->ack = be32(tcp + 8);
        raw->flags = tcp[13];
        raw->payload = frame->buf + offset + header_length;
        raw->payload_length = end - offset - header_length;
        raw->truncated = frame->truncated;
        return DECODED;
    }
    PyObject *values[SEG_FIELDS];
    values[SEG_SPORT] = PyLong_FromLong((long)be16(tcp));
    values[SEG_DPORT] = PyLong_FromLong((long)be16(tcp + 2));
    values[SEG_SEQ] = PyLong_FromUnsignedLong((unsigned long)be32(tcp + 4));
    values[SEG_ACK] = PyLong_FromUnsignedLong((unsigned long)be32(tcp + 8));
    values[SEG_FLAGS] = PyLong_FromLong((long)tcp[13]);
    values[SEG_PAYLOAD] =
        PyBytes_FromStringAndSize((const char *)frame->buf + offset + header_length, end - offset - header_length);
    PyObject *made = self->segment_type->tp_alloc(self->segment_type, 0);
    if (values[SEG_SPORT] == NULL || values[SEG_DPORT] == NULL || values[SEG_SEQ] == NULL ||
        values[SEG_ACK] == NULL || values[SEG_FLAGS] == NULL || values[SEG_PAYLOAD] == NULL || made == NULL) {
        for (int i = SEG_SPORT; i <= SEG_PAYLOAD; i++) {
            Py_XDECREF(values[i]);
        }
        Py_XDECREF(made);
        Py_DECREF(src_text);
        Py_DECREF(dst_text);
        return FAILED;
    }
    Py_INCREF(frame->ts);
    values[SEG_TS] = frame->ts;
    values[SEG_SRC] = src_text;
    values[SEG_DST] = dst_text;
    values[SEG_TRUNCATED] = PyBool_FromLong(frame->truncated);
    Py_INCREF(tunnel);
    values[SEG_TUNNEL] = tunnel;
    for (int i = 0; i < SEG_FIELDS; i++) {
        set_slot(made, self->segment_offsets[i], values[i]);
    }
    *segment = made;
    return DECODED;
}

static int decode_ipv4(FrameDecoder *self, Frame *frame, Py_ssize_t offset, Py_ssize_t end, PyObject *tunnel,
                       int depth, PyObject **segment);
static int decode_ipv6(FrameDecoder *self, Frame *frame, Py_ssize_t offset, Py_ssize_t end, PyObject *tunnel,
                       int depth, PyObject **segment);

/* RFC 768; VXLAN (RFC 7348) and GENEVE (RFC 8926) by destination port, as configured. */
static int decode_udp(FrameDecoder *self, Frame *frame, Py_ssize_t offset, Py_ssize_t end, const unsigned char *src,
                      const unsigned char *dst, Py_ssize_t address_length, PyObject *tunnel, int depth,
                      PyObject **segment) {
    if (offset + 8 > end) {
        return FALLBACK;
    }
    const unsigned char *udp = frame->buf + offset;
    uint32_t port = be16(udp + 2);
    Py_ssize_t length = (Py_ssize_t)be16(udp + 4);
    if (length >= 8 && offset + length < end) {
        end = offset + length; /* what follows is Ethernet padding */
    }
    Py_ssize_t payload = offset + 8;
    if (depth >= MAX_NESTING) {
        return FALLBACK;
    }
    if (port_set(self->vxlan_ports, port)) {
        if (payload + VXLAN_HEADER > end) {
            return FALLBACK;
        }
        const unsigned char *vxlan = frame->buf + payload;
        if (!(vxlan[0] & VXLAN_FLAG_I)) { /* an anomaly: Python counts it */
            return FALLBACK;
        }
        PyObject *inner = enter_tunnel(self, tunnel, 1, src, dst, address_length, be32(vxlan + 4) >> 8);
        if (inner == NULL) {
            return PyErr_Occurred() ? FAILED : FALLBACK;
        }
        int status = decode_ethernet(self, frame, payload + VXLAN_HEADER, end, inner, depth + 1, segment);
        Py_DECREF(inner);
        return status;
    }
    if (port_set(self->geneve_ports, port)) {
        if (payload + GENEVE_HEADER > end) {
            return FALLBACK;
        }
        const unsigned char *geneve = frame->buf + payload;
        if (geneve[0] >> 6) { /* an unknown version */
            return FALLBACK;
        }
        Py_ssize_t inner_offset = payload + GENEVE_HEADER + (Py_ssize_t)(geneve[0] & 0x3F) * 4; /* options skipped */
        uint32_t protocol = be16(geneve + 2);
        if (inner_offset > end ||
            (protocol != ETHERTYPE_IPV4 && protocol != ETHERTYPE_IPV6 && protocol != ETHERTYPE_TEB)) {
            return FALLBACK;
        }
        PyObject *inner = enter_tunnel(self, tunnel, 2, src, dst, address_length, be32(geneve + 4) >> 8);
        if (inner == NULL) {
            return PyErr_Occurred() ? FAILED : FALLBACK;
        }
        int status = protocol == ETHERTYPE_IPV4   ? decode_ipv4(self, frame, inner_offset, end, inner, depth + 1, segment)
                     : protocol == ETHERTYPE_IPV6 ? decode_ipv6(self, frame, inner_offset, end, inner, depth + 1, segment)
                                                  : decode_ethernet(self, frame, inner_offset, end, inner, depth + 1, segment);
        Py_DECREF(inner);
        return status;
    }
    return FALLBACK;
}

static int decode_transport(FrameDecoder *self, Frame *frame, Py_ssize_t offset, Py_ssize_t end, int protocol,
                            const unsigned char *src, const unsigned char *dst, Py_ssize_t address_length,
                            PyObject *tunnel, int depth, PyObject **segment) {
    if (protocol == IPPROTO_TCP_) {
        return decode_tcp(self, frame, offset, end, src, dst, address_length, tunnel, segment);
    }
    if (protocol == IPPROTO_UDP_) {
        return decode_udp(self, frame, offset, end, src, dst, address_length, tunnel, depth, segment);
    }
    return FALLBACK;
}

/* RFC 791 section 3.1. Options are skipped by the header length; fragments go to Python. */
static int decode_ipv4(FrameDecoder *self, Frame *frame, Py_ssize_t offset, Py_ssize_t end, PyObject *tunnel,
                       int depth, PyObject **segment) {
    if (offset + 20 > end) {
        return FALLBACK;
    }
    const unsigned char *ip = frame->buf + offset;
    if (ip[0] >> 4 != 4) {
        return FALLBACK;
    }
    Py_ssize_t header_length = (Py_ssize_t)(ip[0] & 0x0F) * 4;
    Py_ssize_t total_length = (Py_ssize_t)be16(ip + 2);
    if (header_length < 20 || total_length < header_length || offset + header_length > end) {
        return FALLBACK;
    }
    if (be16(ip + 6) & 0x3FFF) { /* more-fragments flag or a fragment offset (section 3.2) */
        return FALLBACK;
    }
    Py_ssize_t ip_end = offset + total_length;
    if (ip_end > end) {
        frame->truncated = 1;
        ip_end = end;
    }
    return decode_transport(self, frame, offset + header_length, ip_end, ip[9], ip + 12, ip + 16, 4, tunnel, depth,
                            segment);
}

/* RFC 8200 section 4: extension headers whose length is (byte 1 + 1) * 8; RFC 4302's
 * authentication header counts 4-byte words, less two. A fragment header goes to Python. */
static int decode_ipv6(FrameDecoder *self, Frame *frame, Py_ssize_t offset, Py_ssize_t end, PyObject *tunnel,
                       int depth, PyObject **segment) {
    if (offset + 40 > end) {
        return FALLBACK;
    }
    const unsigned char *ip = frame->buf + offset;
    if (ip[0] >> 4 != 6) {
        return FALLBACK;
    }
    Py_ssize_t ip_end = offset + 40 + (Py_ssize_t)be16(ip + 4);
    if (ip_end > end) {
        frame->truncated = 1;
        ip_end = end;
    }
    int next_header = ip[6];
    Py_ssize_t cursor = offset + 40;
    for (;;) {
        int current = next_header;
        if (current != 0 && current != 43 && current != 60 && current != 135 && current != 139 && current != 140 &&
            current != IPV6_AUTHENTICATION_HEADER) {
            break;
        }
        if (cursor + 8 > ip_end) {
            return FALLBACK;
        }
        next_header = frame->buf[cursor];
        Py_ssize_t length = frame->buf[cursor + 1];
        cursor += current == IPV6_AUTHENTICATION_HEADER ? (length + 2) * 4 : (length + 1) * 8;
    }
    if (cursor > ip_end || next_header == IPV6_FRAGMENT_HEADER) {
        return FALLBACK;
    }
    return decode_transport(self, frame, cursor, ip_end, next_header, ip + 8, ip + 24, 16, tunnel, depth, segment);
}

/* IEEE 802.3 Ethernet II, then any IEEE 802.1Q / 802.1ad tags (TCI, ethertype). */
static int decode_ethernet(FrameDecoder *self, Frame *frame, Py_ssize_t offset, Py_ssize_t end, PyObject *tunnel,
                           int depth, PyObject **segment) {
    if (offset + ETHERNET_HEADER > end) {
        return FALLBACK;
    }
    uint32_t ethertype = be16(frame->buf + offset + 12);
    offset += ETHERNET_HEADER;
    while (ethertype == 0x8100 || ethertype == 0x88A8 || ethertype == 0x9100) {
        if (offset + 4 > end) {
            return FALLBACK;
        }
        ethertype = be16(frame->buf + offset + 2);
        offset += 4;
    }
    if (ethertype == ETHERTYPE_IPV4) {
        return decode_ipv4(self, frame, offset, end, tunnel, depth, segment);
    }
    if (ethertype == ETHERTYPE_IPV6) {
        return decode_ipv6(self, frame, offset, end, tunnel, depth, segment);
    }
    return FALLBACK; /* 802.3 lengths, MPLS, PPPoE, Ethernet in Ethernet, not IP */
}

PyDoc_STRVAR(FrameDecoder_decode_doc,
             "decode(packet, /)\n--\n\n"
             "The packet's TcpSegment, or None when the Python decoder must take the frame.");

static PyObject *FrameDecoder_decode(FrameDecoder *self, PyObject *packet) {
    if (!Py_IS_TYPE(packet, self->raw_type)) {
        Py_RETURN_NONE;
    }
    PyObject *ts = get_slot(packet, self->raw_offsets[RAW_TS]);
    PyObject *data = get_slot(packet, self->raw_offsets[RAW_DATA]);
    PyObject *linktype = get_slot(packet, self->raw_offsets[RAW_LINKTYPE]);
    PyObject *wire_length = get_slot(packet, self->raw_offsets[RAW_WIRE_LENGTH]);
    if (ts == NULL || data == NULL || linktype == NULL || wire_length == NULL || !PyBytes_CheckExact(data) ||
        !PyLong_CheckExact(linktype) || !PyLong_CheckExact(wire_length)) {
        Py_RETURN_NONE;
    }
    int overflow;
    long link = PyLong_AsLongAndOverflow(linktype, &overflow);
    if (overflow || link != LINKTYPE_ETHERNET) {
        Py_RETURN_NONE;
    }
    Py_ssize_t end = PyBytes_GET_SIZE(data);
    long long wire = PyLong_AsLongLongAndOverflow(wire_length, &overflow);
    if (wire == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Frame frame = {
        .buf = (const unsigned char *)PyBytes_AS_STRING(data),
        .truncated = overflow > 0 || (!overflow && wire > (long long)end),
        .ts = ts,
    };
    PyObject *segment = NULL;
    /* The buffer and the time must outlive the callbacks into Python. */
    Py_INCREF(data);
    Py_INCREF(ts);
    int status = decode_ethernet(self, &frame, 0, end, self->no_tunnel, 0, &segment);
    Py_DECREF(ts);
    Py_DECREF(data);
    if (status == FAILED) {
        return NULL;
    }
    if (status == FALLBACK) {
        Py_RETURN_NONE;
    }
    return segment;
}

/* FrameDecoder.decode for a record of a buffer, into a FastSegment (the capsule's). */
int api_decode_record(PyObject *object, const PcapRecord *record, FastSegment *segment) {
    if (!Py_IS_TYPE(object, &FrameDecoderType)) {
        PyErr_SetString(PyExc_TypeError, "expected a FrameDecoder");
        return FAILED;
    }
    FrameDecoder *self = (FrameDecoder *)object;
    if (record->linktype != LINKTYPE_ETHERNET || self->raw_type == NULL) {
        return FALLBACK;
    }
    Frame frame = {.buf = record->frame, .truncated = record->truncated, .ts = Py_None, .raw = segment};
    return decode_ethernet(self, &frame, 0, record->captured, self->no_tunnel, 0, NULL);
}

/* FrameDecoder.decode of a RawPacket, into a FastSegment (the worker dispatcher's, which packs
 * the frame instead of building a segment): 1 decoded, with *record and *wire_length saying
 * what the frame was; 0 the frame goes the Python way (also when its time is not a float or
 * its wire length not a 64-bit number, which a packed frame could not carry); -1 on error.
 * The caller holds `packet`, and so its bytes, while the segment's payload is in use. */
int decode_packet_raw(PyObject *object, PyObject *packet, PcapRecord *record, int64_t *wire_length,
                      FastSegment *segment) {
    FrameDecoder *self = (FrameDecoder *)object;
    if (!Py_IS_TYPE(object, &FrameDecoderType) || self->raw_type == NULL || !Py_IS_TYPE(packet, self->raw_type)) {
        return FALLBACK;
    }
    PyObject *ts = get_slot(packet, self->raw_offsets[RAW_TS]);
    PyObject *data = get_slot(packet, self->raw_offsets[RAW_DATA]);
    PyObject *linktype = get_slot(packet, self->raw_offsets[RAW_LINKTYPE]);
    PyObject *wire = get_slot(packet, self->raw_offsets[RAW_WIRE_LENGTH]);
    if (ts == NULL || data == NULL || linktype == NULL || wire == NULL || !PyFloat_CheckExact(ts) ||
        !PyBytes_CheckExact(data) || !PyLong_CheckExact(linktype) || !PyLong_CheckExact(wire)) {
        return FALLBACK;
    }
    int overflow;
    long link = PyLong_AsLongAndOverflow(linktype, &overflow);
    if (overflow || link != LINKTYPE_ETHERNET) {
        return FALLBACK;
    }
    long long wire_value = PyLong_AsLongLongAndOverflow(wire, &overflow);
    if (overflow) {
        return FALLBACK;
    }
    if (wire_value == -1 && PyErr_Occurred()) {
        return FAILED;
    }
    Py_ssize_t end = PyBytes_GET_SIZE(data);
    *record = (PcapRecord){
        .frame = (const unsigned char *)PyBytes_AS_STRING(data),
        .captured = end,
        .ts = PyFloat_AS_DOUBLE(ts),
        .truncated = wire_value > (long long)end,
        .linktype = link,
    };
    *wire_length = (int64_t)wire_value;
    Frame frame = {.buf = record->frame, .truncated = record->truncated, .ts = Py_None, .raw = segment};
    Py_INCREF(data); /* the tunnel callbacks run Python code */
    int status = decode_ethernet(self, &frame, 0, end, self->no_tunnel, 0, NULL);
    Py_DECREF(data);
    return status;
}

PyDoc_STRVAR(FrameDecoder_set_ports_doc,
             "set_ports(vxlan_ports, geneve_ports, /)\n--\n\nThe UDP destination ports that carry VXLAN and GENEVE.");

static PyObject *FrameDecoder_set_ports(FrameDecoder *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "set_ports takes the VXLAN ports and the GENEVE ports");
        return NULL;
    }
    if (fill_ports(self->vxlan_ports, args[0]) < 0 || fill_ports(self->geneve_ports, args[1]) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(FrameDecoder_clear_caches_doc,
             "clear_caches()\n--\n\nForget the cached address texts and tunnel contexts.");

static PyObject *FrameDecoder_clear_caches(FrameDecoder *self, PyObject *Py_UNUSED(ignored)) {
    clear_caches(self);
    Py_RETURN_NONE;
}

static PyMethodDef FrameDecoder_methods[] = {
    {"decode", (PyCFunction)FrameDecoder_decode, METH_O, FrameDecoder_decode_doc},
    {"set_ports", (PyCFunction)(void (*)(void))FrameDecoder_set_ports, METH_FASTCALL, FrameDecoder_set_ports_doc},
    {"clear_caches", (PyCFunction)FrameDecoder_clear_caches, METH_NOARGS, FrameDecoder_clear_caches_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(FrameDecoder_doc,
             "FrameDecoder(*, raw_packet_type, segment_type, vxlan_ports, geneve_ports, address, enter)\n--\n\n"
             "Decodes the common shape of a frame into a segment; None hands the frame to Python.");

PyTypeObject FrameDecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "capture._fastdecode.FrameDecoder",
    .tp_basicsize = sizeof(FrameDecoder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = FrameDecoder_doc,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)FrameDecoder_init,
    .tp_dealloc = (destructor)FrameDecoder_dealloc,
    .tp_traverse = (traverseproc)FrameDecoder_traverse,
    .tp_clear = (inquiry)FrameDecoder_clear,
    .tp_methods = FrameDecoder_methods,
};

