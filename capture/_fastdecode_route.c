/* The worker dispatcher's compiled path (oob_analyzer/workers/run.py): frames, not segments,
 * cross to the worker processes.
 *
 * Part of capture._fastdecode (module comment in _fastdecode.c).
 *
 * - route_packet: in the dispatcher, a RawPacket's frame decoded as FrameDecoder.decode does
 *   (same code, no segment built), its flow's worker chosen by the symmetric hash of
 *   oob_analyzer/workers/flows.py `worker_for` (the same Python hashes of the same address
 *   texts and tunnel context, summed with Python's integers, Python's modulo), and the frame
 *   packed into that worker's buffer. A frame the compiled decoder hands back (a fragment,
 *   GRE, anything odd) is not packed: the dispatcher decodes it in Python, as before.
 * - route_records: the same for the whole records of a plain pcap's buffer, building no
 *   RawPacket (the dispatcher's record path for a capture file).
 * - unpack_frames: in the worker, the packed frames back as RawPackets, equal to the ones the
 *   dispatcher read, for the worker's own decoder and tracker (`packet_feed`).
 *
 * A packed frame, in this machine's byte order (the buffers never leave it): the time (a
 * double), the wire length, the link type and the captured length (64-bit each), the frame.
 */

#include "_fastdecode.h"

/* PackedFrame: in _fastdecode_api.h, for the compiled tracker's `feed_frames` too. */

/* worker_for: (hash(src) + hash(dst) + sport + dport + hash(tunnel)) % workers, in Python's
 * integers (no overflow) and with Python's modulo (never negative). */
static int worker_of(const FastSegment *segment, Py_ssize_t workers, Py_ssize_t *index) {
    Py_hash_t src = PyObject_Hash(segment->src);
    Py_hash_t dst = src == -1 ? -1 : PyObject_Hash(segment->dst);
    Py_hash_t tunnel = dst == -1 ? -1 : PyObject_Hash(segment->tunnel);
    if (tunnel == -1) {
        return -1;
    }
    __int128 sum = (__int128)src + dst + tunnel + segment->sport + segment->dport;
    __int128 remainder = sum % workers;
    *index = (Py_ssize_t)(remainder < 0 ? remainder + workers : remainder);
    return 0;
}

static int append_frame(PyObject *buffer, const PcapRecord *record, int64_t wire_length) {
    PackedFrame header = {
        .ts = record->ts,
        .wire_length = wire_length,
        .linktype = record->linktype,
        .captured = record->captured,
    };
    Py_ssize_t at = PyByteArray_GET_SIZE(buffer);
    Py_ssize_t size = at + (Py_ssize_t)sizeof header + record->captured;
    /* Grown by a factor of two, then set to its size (bytearray keeps the room): its own
     * growth by an eighth copied the whole buffer every few frames, 1.35k of the 2.8k
     * instructions a packet here (callgrind). */
    if (size >= ((PyByteArrayObject *)buffer)->ob_alloc && PyByteArray_Resize(buffer, 2 * size) < 0) {
        return -1;
    }
    if (PyByteArray_Resize(buffer, size) < 0) {
        return -1;
    }
    char *into = PyByteArray_AS_STRING(buffer) + at;
    memcpy(into, &header, sizeof header);
    memcpy(into + sizeof header, record->frame, (size_t)record->captured);
    return 0;
}

PyDoc_STRVAR(route_packet_doc,
             "route_packet(frame_decoder, packet, buffers, /)\n--\n\n"
             "The index of the worker that owns the packet's flow, its frame packed into buffers[index]\n"
             "(a bytearray per worker); -1 when the Python decoder must take the frame.");

static PyObject *route_packet(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyList_CheckExact(args[2]) || PyList_GET_SIZE(args[2]) == 0) {
        PyErr_SetString(PyExc_TypeError, "route_packet takes a FrameDecoder, a packet and a non-empty list");
        return NULL;
    }
    PyObject *buffers = args[2];
    PcapRecord record;
    int64_t wire_length;
    FastSegment segment;
    int status = decode_packet_raw(args[0], args[1], &record, &wire_length, &segment);
    if (status < 0) {
        return NULL;
    }
    if (status == 0) {
        return PyLong_FromLong(-1);
    }
    Py_ssize_t index;
    int failed = worker_of(&segment, PyList_GET_SIZE(buffers), &index);
    Py_DECREF(segment.src);
    Py_DECREF(segment.dst);
    Py_DECREF(segment.tunnel);
    if (failed) {
        return NULL;
    }
    PyObject *buffer = PyList_GET_ITEM(buffers, index);
    if (!PyByteArray_CheckExact(buffer)) {
        PyErr_SetString(PyExc_TypeError, "route_packet's buffers must be bytearrays");
        return NULL;
    }
    if (append_frame(buffer, &record, wire_length) < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(index);
}

/* One more frame for worker `index`: counts[index] + 1, in the list the dispatcher reads. */
static int count_frame(PyObject *counts, Py_ssize_t index, Py_ssize_t *count) {
    Py_ssize_t now = PyLong_AsSsize_t(PyList_GET_ITEM(counts, index));
    if (now == -1 && PyErr_Occurred()) {
        return -1;
    }
    PyObject *raised = PyLong_FromSsize_t(now + 1);
    if (raised == NULL) {
        return -1;
    }
    PyList_SetItem(counts, index, raised); /* steals; the list is checked to be long enough */
    *count = now + 1;
    return 0;
}

PyDoc_STRVAR(route_records_doc,
             "route_records(reader, buffer, start, frame_decoder, buffers, counts, batch_limit, /)\n--\n\n"
             "route_packet over the whole pcap records of `buffer` (a PcapRecordReader's) from `start`,\n"
             "building no packet: each frame packed into buffers[index] and counts[index] raised.\n"
             "Returns (offset, needed, records, captured bytes, stop), having stopped at\n"
             "- the end of the whole records: stop None, `needed` as PcapRecordReader.parse says;\n"
             "- a worker whose count reached batch_limit: stop is its index;\n"
             "- a frame the Python decoder must take: stop is its RawPacket (counted, offset past it).");

static PyObject *route_records(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7 || !PyObject_TypeCheck(args[0], &PcapRecordReaderType) || !PyBytes_Check(args[1]) ||
        !PyList_CheckExact(args[4]) || !PyList_CheckExact(args[5]) || PyList_GET_SIZE(args[4]) == 0 ||
        PyList_GET_SIZE(args[5]) != PyList_GET_SIZE(args[4])) {
        PyErr_SetString(PyExc_TypeError, "route_records takes a PcapRecordReader, bytes, a start, a FrameDecoder, "
                                         "a non-empty list of bytearrays, a list of counts as long, a batch limit");
        return NULL;
    }
    PyObject *reader = args[0], *decoder = args[3], *buffers = args[4], *counts = args[5];
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[1]);
    Py_ssize_t position = PyLong_AsSsize_t(args[2]);
    Py_ssize_t limit = PyLong_AsSsize_t(args[6]);
    if ((position == -1 || limit == -1) && PyErr_Occurred()) {
        return NULL;
    }
    if (position < 0 || position > size) {
        PyErr_SetString(PyExc_ValueError, "start is outside the buffer");
        return NULL;
    }
    Py_ssize_t workers = PyList_GET_SIZE(buffers), records = 0, bytes = 0, needed = 0;
    PyObject *stop = NULL;
    Py_INCREF(args[1]); /* the tunnel callbacks run Python code; the frames point into these bytes */
    PcapRecord record;
    while (stop == NULL && api_next_record(reader, buf, size, &position, &record, &needed)) {
        records += 1;
        bytes += record.captured;
        FastSegment segment;
        int status = api_decode_record(decoder, &record, &segment);
        if (status < 0) {
            goto failed;
        }
        if (status == 0) {
            stop = api_raw_packet(reader, &record);
            if (stop == NULL) {
                goto failed;
            }
            break;
        }
        Py_ssize_t index, count;
        int failed = worker_of(&segment, workers, &index);
        Py_DECREF(segment.src);
        Py_DECREF(segment.dst);
        Py_DECREF(segment.tunnel);
        if (failed) {
            goto failed;
        }
        PyObject *buffer = PyList_GET_ITEM(buffers, index);
        if (!PyByteArray_CheckExact(buffer)) {
            PyErr_SetString(PyExc_TypeError, "route_records's buffers must be bytearrays");
            goto failed;
        }
        if (append_frame(buffer, &record, record_wire_length(reader, &record)) < 0 ||
            count_frame(counts, index, &count) < 0) {
            goto failed;
        }
        if (count >= limit) {
            stop = PyLong_FromSsize_t(index);
            if (stop == NULL) {
                goto failed;
            }
        }
    }
    Py_DECREF(args[1]);
    if (stop == NULL) {
        Py_INCREF(Py_None);
        stop = Py_None;
    } else {
        needed = 0;
    }
    return Py_BuildValue("(nnnnN)", position, needed, records, bytes, stop);
failed:
    Py_DECREF(args[1]);
    return NULL;
}

static PyObject *unpacked_packet(PyTypeObject *type, const Py_ssize_t *offsets, const PackedFrame *header,
                                 const char *frame, PyObject *origin) {
    PyObject *values[RAW_FIELDS];
    values[RAW_TS] = PyFloat_FromDouble(header->ts);
    values[RAW_DATA] = PyBytes_FromStringAndSize(frame, (Py_ssize_t)header->captured);
    values[RAW_LINKTYPE] = PyLong_FromLongLong(header->linktype);
    values[RAW_WIRE_LENGTH] = PyLong_FromLongLong(header->wire_length);
    PyObject *made = type->tp_alloc(type, 0);
    if (values[RAW_TS] == NULL || values[RAW_DATA] == NULL || values[RAW_LINKTYPE] == NULL ||
        values[RAW_WIRE_LENGTH] == NULL || made == NULL) {
        for (int i = RAW_TS; i <= RAW_WIRE_LENGTH; i++) {
            Py_XDECREF(values[i]);
        }
        Py_XDECREF(made);
        return NULL;
    }
    Py_INCREF(origin);
    values[RAW_ORIGIN] = origin;
    for (int i = 0; i < RAW_FIELDS; i++) {
        set_slot(made, offsets[i], values[i]);
    }
    return made;
}

PyDoc_STRVAR(unpack_frames_doc,
             "unpack_frames(buffer, raw_packet_type, origin, /)\n--\n\n"
             "The frames route_packet packed into `buffer`, as RawPackets (with `origin`).");

static PyObject *unpack_frames(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyType_Check(args[1]) || !PyUnicode_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "unpack_frames takes a buffer, the RawPacket type and an origin");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[1];
    Py_ssize_t offsets[RAW_FIELDS];
    for (int i = 0; i < RAW_FIELDS; i++) {
        if (slot_offset(type, raw_fields[i], &offsets[i]) < 0) {
            return NULL;
        }
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *packets = PyList_New(0);
    const char *at = view.buf, *end = (const char *)view.buf + view.len;
    while (packets != NULL && at < end) {
        PackedFrame header = {.captured = -1};
        if (end - at >= (Py_ssize_t)sizeof header) {
            memcpy(&header, at, sizeof header);
        }
        if (header.captured < 0 || header.captured > end - at - (Py_ssize_t)sizeof header) {
            PyErr_SetString(PyExc_ValueError, "unpack_frames: a packed frame is cut short");
            Py_CLEAR(packets);
            break;
        }
        PyObject *packet = unpacked_packet(type, offsets, &header, at + sizeof header, args[2]);
        if (packet == NULL || PyList_Append(packets, packet) < 0) {
            Py_XDECREF(packet);
            Py_CLEAR(packets);
            break;
        }
        Py_DECREF(packet);
        at += sizeof header + (size_t)header.captured;
    }
    PyBuffer_Release(&view);
    return packets;
}

PyMethodDef route_functions[] = {
    {"route_packet", (PyCFunction)(void (*)(void))route_packet, METH_FASTCALL, route_packet_doc},
    {"route_records", (PyCFunction)(void (*)(void))route_records, METH_FASTCALL, route_records_doc},
    {"unpack_frames", (PyCFunction)(void (*)(void))unpack_frames, METH_FASTCALL, unpack_frames_doc},
    {NULL, NULL, 0, NULL},
};
