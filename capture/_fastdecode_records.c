/* The compiled record readers: whole classic pcap records and runs of pcapng enhanced
 * packet blocks, straight into RawPackets.
 *
 * Part of capture._fastdecode (module comment in _fastdecode.c). Each stops at the first
 * record or block that is not whole, or not sound, and says so; capture/files.py and
 * capture/pcapng.py read on, and report what is wrong in their own words.
 */

#include "_fastdecode.h"

#define PCAP_RECORD_HEADER 16

typedef struct {
    PyObject_HEAD
    PyTypeObject *raw_type;
    Py_ssize_t offsets[RAW_FIELDS];
    PyObject *linktype;
    long linktype_value; /* -1 when it is no small integer */
    PyObject *origin;
    int big_endian;
    double divisor;
    Py_ssize_t max_record;
} PcapRecordReader;

static int PcapRecordReader_traverse(PcapRecordReader *self, visitproc visit, void *arg) {
    Py_VISIT(self->raw_type);
    Py_VISIT(self->linktype);
    Py_VISIT(self->origin);
    return 0;
}

static int PcapRecordReader_clear(PcapRecordReader *self) {
    Py_CLEAR(self->raw_type);
    Py_CLEAR(self->linktype);
    Py_CLEAR(self->origin);
    return 0;
}

static void PcapRecordReader_dealloc(PcapRecordReader *self) {
    PyObject_GC_UnTrack(self);
    PcapRecordReader_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int PcapRecordReader_init(PcapRecordReader *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"raw_packet_type", "big_endian", "divisor", "linktype", "origin", "max_record", NULL};
    PyTypeObject *raw_type;
    PyObject *linktype, *origin;
    int big_endian;
    double divisor;
    Py_ssize_t max_record;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$O!pdOOn:PcapRecordReader", keywords, &PyType_Type, &raw_type,
                                     &big_endian, &divisor, &linktype, &origin, &max_record)) {
        return -1;
    }
    if (self->raw_type != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "PcapRecordReader is initialised once");
        return -1;
    }
    for (int i = 0; i < RAW_FIELDS; i++) {
        if (slot_offset(raw_type, raw_fields[i], &self->offsets[i]) < 0) {
            return -1;
        }
    }
    Py_INCREF(raw_type);
    self->raw_type = raw_type;
    Py_INCREF(linktype);
    self->linktype = linktype;
    int overflow = 1;
    self->linktype_value = PyLong_Check(linktype) ? PyLong_AsLongAndOverflow(linktype, &overflow) : -1;
    if (overflow || PyErr_Occurred()) {
        PyErr_Clear();
        self->linktype_value = -1;
    }
    Py_INCREF(origin);
    self->origin = origin;
    self->big_endian = big_endian;
    self->divisor = divisor;
    self->max_record = max_record;
    return 0;
}

/* draft-ietf-opsawg-pcap section 5: seconds, fraction, captured length, original length. */
static PyObject *make_raw_packet(PcapRecordReader *self, const unsigned char *header, Py_ssize_t captured) {
    uint32_t (*word)(const unsigned char *) = self->big_endian ? be32 : le32;
    uint32_t wire = word(header + 12);
    PyObject *values[RAW_FIELDS];
    /* As Python computes `seconds + fraction / divisor`: the same two IEEE operations. */
    values[RAW_TS] = PyFloat_FromDouble((double)word(header) + (double)word(header + 4) / self->divisor);
    values[RAW_DATA] = PyBytes_FromStringAndSize((const char *)header + PCAP_RECORD_HEADER, captured);
    values[RAW_WIRE_LENGTH] =
        PyLong_FromUnsignedLong((unsigned long)((Py_ssize_t)wire > captured ? (Py_ssize_t)wire : captured));
    PyObject *made = self->raw_type->tp_alloc(self->raw_type, 0);
    if (values[RAW_TS] == NULL || values[RAW_DATA] == NULL || values[RAW_WIRE_LENGTH] == NULL || made == NULL) {
        Py_XDECREF(values[RAW_TS]);
        Py_XDECREF(values[RAW_DATA]);
        Py_XDECREF(values[RAW_WIRE_LENGTH]);
        Py_XDECREF(made);
        return NULL;
    }
    Py_INCREF(self->linktype);
    values[RAW_LINKTYPE] = self->linktype;
    Py_INCREF(self->origin);
    values[RAW_ORIGIN] = self->origin;
    for (int i = 0; i < RAW_FIELDS; i++) {
        set_slot(made, self->offsets[i], values[i]);
    }
    return made;
}

/* The same walk as `parse`, one record at a time, for the capsule. */
int api_next_record(PyObject *object, const unsigned char *buf, Py_ssize_t size, Py_ssize_t *position,
                    PcapRecord *record, Py_ssize_t *needed) {
    PcapRecordReader *self = (PcapRecordReader *)object;
    uint32_t (*word)(const unsigned char *) = self->big_endian ? be32 : le32;
    Py_ssize_t at = *position;
    if (size - at < PCAP_RECORD_HEADER) {
        *needed = PCAP_RECORD_HEADER;
        return 0;
    }
    Py_ssize_t captured = (Py_ssize_t)word(buf + at + 8);
    if (captured > self->max_record) {
        *needed = -1;
        return 0;
    }
    if (size - at - PCAP_RECORD_HEADER < captured) {
        *needed = PCAP_RECORD_HEADER + captured;
        return 0;
    }
    const unsigned char *header = buf + at;
    record->header = header;
    record->frame = header + PCAP_RECORD_HEADER;
    record->captured = captured;
    record->ts = (double)word(header) + (double)word(header + 4) / self->divisor;
    record->truncated = (Py_ssize_t)word(header + 12) > captured;
    record->linktype = self->linktype_value;
    *position = at + PCAP_RECORD_HEADER + captured;
    return 1;
}

/* The record's wire length as its RawPacket holds it: never less than what was captured. */
int64_t record_wire_length(PyObject *object, const PcapRecord *record) {
    PcapRecordReader *self = (PcapRecordReader *)object;
    int64_t wire = (int64_t)(self->big_endian ? be32 : le32)(record->header + 12);
    return wire > (int64_t)record->captured ? wire : (int64_t)record->captured;
}

PyObject *api_raw_packet(PyObject *object, const PcapRecord *record) {
    return make_raw_packet((PcapRecordReader *)object, record->header, record->captured);
}

PyDoc_STRVAR(PcapRecordReader_parse_doc,
             "parse(buffer, start, /)\n--\n\n"
             "(packets, next record's offset, bytes it needs from there, or -1 when it claims too many).\n"
             "Only whole records become packets.");

static PyObject *PcapRecordReader_parse(PcapRecordReader *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "parse takes a bytes buffer and a start offset");
        return NULL;
    }
    if (self->raw_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "PcapRecordReader was not initialised");
        return NULL;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t position = PyLong_AsSsize_t(args[1]);
    if (position == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (position < 0 || position > size) {
        PyErr_SetString(PyExc_ValueError, "start is outside the buffer");
        return NULL;
    }
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    uint32_t (*word)(const unsigned char *) = self->big_endian ? be32 : le32;
    PyObject *packets = PyList_New(0);
    if (packets == NULL) {
        return NULL;
    }
    Py_ssize_t needed;
    for (;;) {
        if (size - position < PCAP_RECORD_HEADER) {
            needed = PCAP_RECORD_HEADER;
            break;
        }
        Py_ssize_t captured = (Py_ssize_t)word(buf + position + 8);
        if (captured > self->max_record) {
            needed = -1;
            break;
        }
        if (size - position - PCAP_RECORD_HEADER < captured) {
            needed = PCAP_RECORD_HEADER + captured;
            break;
        }
        PyObject *packet = make_raw_packet(self, buf + position, captured);
        if (packet == NULL || PyList_Append(packets, packet) < 0) {
            Py_XDECREF(packet);
            Py_DECREF(packets);
            return NULL;
        }
        Py_DECREF(packet);
        position += PCAP_RECORD_HEADER + captured;
    }
    return Py_BuildValue("(Nnn)", packets, position, needed);
}

static PyMethodDef PcapRecordReader_methods[] = {
    {"parse", (PyCFunction)(void (*)(void))PcapRecordReader_parse, METH_FASTCALL, PcapRecordReader_parse_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(PcapRecordReader_doc,
             "PcapRecordReader(*, raw_packet_type, big_endian, divisor, linktype, origin, max_record)\n--\n\n"
             "Turns the whole records of a classic pcap buffer into RawPackets.");

PyTypeObject PcapRecordReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "capture._fastdecode.PcapRecordReader",
    .tp_basicsize = sizeof(PcapRecordReader),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = PcapRecordReader_doc,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)PcapRecordReader_init,
    .tp_dealloc = (destructor)PcapRecordReader_dealloc,
    .tp_traverse = (traverseproc)PcapRecordReader_traverse,
    .tp_clear = (inquiry)PcapRecordReader_clear,
    .tp_methods = PcapRecordReader_methods,
};

/* ---- pcapng enhanced packet blocks ---------------------------------------------- */

#define PCAPNG_ENHANCED_PACKET 6
#define EXACT_IN_DOUBLE (1ULL << 53)

/* Python's `offset_seconds + ticks / ticks_per_second`, to the last bit: int / int is
 * correctly rounded in Python, as the IEEE division of two exactly represented doubles is;
 * beyond 2^53 the division is left to Python's own ints. */
static PyObject *pcapng_time(uint64_t ticks, PyObject *ticks_per_second, PyObject *offset_seconds) {
    int overflow, overflow_offset;
    long long per_second = PyLong_AsLongLongAndOverflow(ticks_per_second, &overflow);
    if (per_second == -1 && PyErr_Occurred()) {
        return NULL;
    }
    long long offset = PyLong_AsLongLongAndOverflow(offset_seconds, &overflow_offset);
    if (offset == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (!overflow && !overflow_offset && per_second > 0 && (uint64_t)per_second < EXACT_IN_DOUBLE &&
        ticks < EXACT_IN_DOUBLE) {
        return PyFloat_FromDouble((double)offset + (double)ticks / (double)per_second);
    }
    PyObject *ticks_object = PyLong_FromUnsignedLongLong(ticks);
    if (ticks_object == NULL) {
        return NULL;
    }
    PyObject *seconds = PyNumber_TrueDivide(ticks_object, ticks_per_second);
    Py_DECREF(ticks_object);
    if (seconds == NULL) {
        return NULL;
    }
    PyObject *ts = PyNumber_Add(offset_seconds, seconds);
    Py_DECREF(seconds);
    return ts;
}

PyDoc_STRVAR(parse_enhanced_packets_doc,
             "parse_enhanced_packets(buffer, start, big_endian, interfaces, raw_packet_type, origin, max_block, /)\n"
             "--\n\n"
             "(packets, next block's offset, bytes it needs from there or 0 when the next block is\n"
             "not a sound enhanced packet block of a described interface: the Python reader's turn).\n"
             "`interfaces` holds (linktype, ticks per second, offset seconds) per interface id.");

/* draft-ietf-opsawg-pcapng section 4.3: type(4) length(4) interface(4) time high(4) time
 * low(4) captured(4) original(4) data, padded, options; the length again. */
static PyObject *parse_enhanced_packets(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7 || !PyBytes_Check(args[0]) || !PyList_Check(args[3]) || !PyType_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "parse_enhanced_packets: bad arguments");
        return NULL;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t position = PyLong_AsSsize_t(args[1]);
    int big_endian = PyObject_IsTrue(args[2]);
    PyObject *interfaces = args[3];
    PyTypeObject *raw_type = (PyTypeObject *)args[4];
    PyObject *origin = args[5];
    Py_ssize_t max_block = PyLong_AsSsize_t(args[6]);
    if (PyErr_Occurred() || big_endian < 0) {
        return NULL;
    }
    if (position < 0 || position > size) {
        PyErr_SetString(PyExc_ValueError, "start is outside the buffer");
        return NULL;
    }
    Py_ssize_t offsets[RAW_FIELDS];
    for (int i = 0; i < RAW_FIELDS; i++) {
        if (slot_offset(raw_type, raw_fields[i], &offsets[i]) < 0) {
            return NULL;
        }
    }
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    uint32_t (*word)(const unsigned char *) = big_endian ? be32 : le32;
    PyObject *packets = PyList_New(0);
    if (packets == NULL) {
        return NULL;
    }
    Py_ssize_t needed = 0;
    for (;;) {
        if (size - position < 8) {
            needed = 8;
            break;
        }
        const unsigned char *block = buf + position;
        Py_ssize_t total = (Py_ssize_t)word(block + 4);
        if (word(block) != PCAPNG_ENHANCED_PACKET || total < 32 || total % 4 || total > max_block) {
            break; /* another block, or one the Python reader reports */
        }
        if (size - position < total) {
            needed = total;
            break;
        }
        uint32_t interface = word(block + 8);
        if ((Py_ssize_t)interface >= PyList_GET_SIZE(interfaces)) {
            break;
        }
        PyObject *described = PyList_GET_ITEM(interfaces, interface);
        if (!PyTuple_CheckExact(described) || PyTuple_GET_SIZE(described) != 3) {
            Py_DECREF(packets);
            PyErr_SetString(PyExc_TypeError, "an interface is (linktype, ticks per second, offset seconds)");
            return NULL;
        }
        Py_ssize_t body = total - 12;
        Py_ssize_t captured = (Py_ssize_t)word(block + 20);
        if (captured > body - 20) { /* as Python's slice: no further than the block's body */
            captured = body - 20;
        }
        Py_ssize_t wire = (Py_ssize_t)word(block + 24);
        uint64_t ticks = ((uint64_t)word(block + 12) << 32) | word(block + 16);
        PyObject *values[RAW_FIELDS];
        values[RAW_TS] = pcapng_time(ticks, PyTuple_GET_ITEM(described, 1), PyTuple_GET_ITEM(described, 2));
        values[RAW_DATA] = PyBytes_FromStringAndSize((const char *)block + 28, captured);
        values[RAW_WIRE_LENGTH] = PyLong_FromSsize_t(wire > captured ? wire : captured);
        PyObject *made = raw_type->tp_alloc(raw_type, 0);
        if (values[RAW_TS] == NULL || values[RAW_DATA] == NULL || values[RAW_WIRE_LENGTH] == NULL || made == NULL) {
            Py_XDECREF(values[RAW_TS]);
            Py_XDECREF(values[RAW_DATA]);
            Py_XDECREF(values[RAW_WIRE_LENGTH]);
            Py_XDECREF(made);
            Py_DECREF(packets);
            return NULL;
        }
        values[RAW_LINKTYPE] = PyTuple_GET_ITEM(described, 0);
        Py_INCREF(values[RAW_LINKTYPE]);
        Py_INCREF(origin);
        values[RAW_ORIGIN] = origin;
        for (int i = 0; i < RAW_FIELDS; i++) {
            set_slot(made, offsets[i], values[i]);
        }
        int appended = PyList_Append(packets, made);
        Py_DECREF(made);
        if (appended < 0) {
            Py_DECREF(packets);
            return NULL;
        }
        position += total;
    }
    return Py_BuildValue("(Nnn)", packets, position, needed);
}

PyMethodDef record_functions[] = {
    {"parse_enhanced_packets", (PyCFunction)(void (*)(void))parse_enhanced_packets, METH_FASTCALL,
     parse_enhanced_packets_doc},
    {NULL, NULL, 0, NULL},
};

