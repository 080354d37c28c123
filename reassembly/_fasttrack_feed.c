/* Capture records straight in: `ConnectionTracker.feed_records` walks the whole records of a
 * classic pcap buffer, decodes each frame and tracks its segment, all through the C face of
 * capture._fastdecode (capture/_fastdecode_api.h), so that no RawPacket, TcpSegment or
 * Python call is made per packet. A frame the compiled decoder hands back goes the Python
 * way, as `RequestStream.feed` would take it: built as a RawPacket and given to `decode`.
 * The events come out in one list per buffer, in the order the packet-by-packet path gives. */

#include "_fasttrack_conn.h"

#include "_fastdecode_api.h"

static const FastDecodeApi *api;

static int load_api(void) {
    if (api == NULL) {
        api = PyCapsule_Import(FASTDECODE_API_CAPSULE, 0);
        if (api == NULL) {
            return -1;
        }
        if (api->version != FASTDECODE_API_VERSION) {
            api = NULL;
            PyErr_SetString(PyExc_ImportError, "capture._fastdecode has another C API version");
            return -1;
        }
    }
    return 0;
}

/* The record's segment tracked, its events appended to t->out. A frame the compiled decoder
 * hands back is built as a RawPacket: by `reader` (a PcapRecordReader) when given, else by
 * calling `packet_at` with the start and end of the packed frame at `offset`. */
static int track_record(Tracker *t, PyObject *reader, PyObject *packet_at, Py_ssize_t offset, PyObject *decoder,
                        PyObject *decode, const PcapRecord *record) {
    FastSegment fast;
    int decoded = api->decode_record(decoder, record, &fast);
    if (decoded < 0) {
        return -1;
    }
    if (decoded) {
        Segment seg = {
            .ts = record->ts,
            .src = fast.src,
            .dst = fast.dst,
            .tunnel = fast.tunnel,
            .sport = fast.sport,
            .dport = fast.dport,
            .seq = fast.seq,
            .ack = fast.ack,
            .flags = fast.flags,
            .payload = fast.payload,
            .len = fast.payload_length,
            .truncated = fast.truncated != 0,
        };
        int failed = tracker_receive(t, &seg);
        Py_DECREF(fast.src);
        Py_DECREF(fast.dst);
        Py_DECREF(fast.tunnel);
        return failed;
    }
    PyObject *packet = NULL;
    if (reader != NULL) {
        packet = api->raw_packet(reader, record);
    } else { /* a packed frame: its header at `offset`, its bytes after it */
        PyObject *range = Py_BuildValue("(nn)", offset, offset + (Py_ssize_t)sizeof(PackedFrame) + record->captured);
        packet = range == NULL ? NULL : PyObject_Call(packet_at, range, NULL);
        Py_XDECREF(range);
    }
    PyObject *segment = packet == NULL ? NULL : PyObject_CallOneArg(decode, packet);
    Py_XDECREF(packet);
    if (segment == NULL) {
        return -1;
    }
    int failed = 0;
    if (segment != Py_None) {
        Segment seg;
        failed = read_segment(t, segment, &seg) < 0 || tracker_receive(t, &seg) < 0 ? -1 : 0;
    }
    Py_DECREF(segment);
    return failed;
}

/* A mark, (index of the first event, latest timestamp): built directly, as Py_BuildValue
 * would parse its format string for every packet that gives events. */
static PyObject *new_mark(Py_ssize_t index, double latest) {
    PyObject *first = PyLong_FromSsize_t(index);
    PyObject *ts = first == NULL ? NULL : PyFloat_FromDouble(latest);
    PyObject *mark = ts == NULL ? NULL : PyTuple_New(2);
    if (mark == NULL) {
        Py_XDECREF(first);
        Py_XDECREF(ts);
        return NULL;
    }
    PyTuple_SET_ITEM(mark, 0, first);
    PyTuple_SET_ITEM(mark, 1, ts);
    return untracked(mark);
}

/* A feed's run of events: every event goes to t->out; `marks` says where each packet that gave
 * events starts there, with the latest capture time since the previous such packet (what the
 * packet-by-packet path would have expired waiting hits by, before that packet's events). */
typedef struct {
    PyObject *marks;
    double latest;
    bool timed; /* a packet came since the last mark: `latest` is its time */
} EventRunState;

/* Whether a feed may start: the tracker is not feeding already, capture's C API is loaded. */
static int feed_ready(Tracker *t) {
    if (t->out != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ConnectionTracker is not reentrant");
        return -1;
    }
    return load_api();
}

/* One list for the whole feed (every packet's events appended in turn, as the packet-by-packet
 * path would hand them out) and one for its marks. */
static int run_start(Tracker *t, EventRunState *run) {
    run->latest = 0.0;
    run->timed = false;
    if ((t->out = PyList_New(0)) == NULL) {
        return -1;
    }
    if ((run->marks = PyList_New(0)) == NULL) {
        Py_CLEAR(t->out);
        return -1;
    }
    return 0;
}

/* The record tracked (see track_record), and marked when it gave events. */
static int run_track(Tracker *t, EventRunState *run, PyObject *reader, PyObject *packet_at, Py_ssize_t offset,
                     PyObject *decoder, PyObject *decode, const PcapRecord *record) {
    run->latest = run->timed && run->latest > record->ts ? run->latest : record->ts;
    run->timed = true;
    Py_ssize_t before = PyList_GET_SIZE(t->out);
    if (track_record(t, reader, packet_at, offset, decoder, decode, record) < 0) {
        return -1;
    }
    if (PyList_GET_SIZE(t->out) == before) {
        return 0;
    }
    PyObject *mark = new_mark(before, run->latest);
    int failed = mark == NULL || PyList_Append(run->marks, mark) < 0;
    Py_XDECREF(mark);
    run->timed = false;
    return failed ? -1 : 0;
}

/* The end of a feed: 0 with its events (t->out, handed over) in *events and the latest time of
 * the packets after the last mark (or None) in *trailing, new references, run->marks kept for
 * the caller; -1 when it `failed` or memory ran out, with all of them released. */
static int run_end(Tracker *t, EventRunState *run, int failed, PyObject **events, PyObject **trailing) {
    *events = t->out;
    t->out = NULL;
    *trailing = failed ? NULL : run->timed ? PyFloat_FromDouble(run->latest) : Py_NewRef(Py_None);
    if (*trailing == NULL) {
        Py_CLEAR(*events);
        Py_CLEAR(run->marks);
        return -1;
    }
    return 0;
}

const char feed_records_doc[] =
    "feed_records(buffer, start, reader, decoder, decode, /)\n--\n\n"
    "Track the whole pcap records of `buffer` from `start` (a PcapRecordReader's buffer; frames\n"
    "decoded by the compiled FrameDecoder `decoder`, or by `decode` when it hands them back).\n"
    "Returns (their events in order, the next record's offset, the bytes it needs or -1 as\n"
    "PcapRecordReader.parse says, packets, bytes captured, marks, trailing). marks: for each packet\n"
    "that gave events, (the index of its first event, the latest timestamp of the packets since the\n"
    "previous such packet, its own included); trailing: the latest timestamp of the packets after\n"
    "the last such packet, or None when there are none.";

PyObject *tracker_feed_records(Tracker *t, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "feed_records(buffer, start, reader, decoder, decode)");
        return NULL;
    }
    if (feed_ready(t) < 0) {
        return NULL;
    }
    PyObject *buffer = args[0], *reader = args[2], *decoder = args[3], *decode = args[4];
    Py_ssize_t size = PyBytes_GET_SIZE(buffer);
    Py_ssize_t position = PyLong_AsSsize_t(args[1]);
    if (position == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (position < 0 || position > size) {
        PyErr_SetString(PyExc_ValueError, "start is outside the buffer");
        return NULL;
    }
    EventRunState run;
    if (run_start(t, &run) < 0) {
        return NULL;
    }
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(buffer);
    Py_ssize_t needed = 0, packets = 0, captured = 0;
    PcapRecord record;
    Py_INCREF(buffer); /* the records are read in place, across calls into Python */
    int failed = 0;
    while (!failed && api->next_record(reader, buf, size, &position, &record, &needed)) {
        packets++;
        captured += record.captured;
        failed = run_track(t, &run, reader, NULL, 0, decoder, decode, &record) < 0;
    }
    Py_DECREF(buffer);
    PyObject *events, *trailing;
    if (run_end(t, &run, failed, &events, &trailing) < 0) {
        return NULL;
    }
    return Py_BuildValue("(NnnnnNN)", events, position, needed, packets, captured, run.marks, trailing);
}

const char feed_frames_doc[] =
    "feed_frames(frames, decoder, decode, packet_at, /)\n--\n\n"
    "Track every frame the worker dispatcher packed into `frames` (capture._fastdecode's\n"
    "route_records/route_packet), as feed_records tracks pcap records: decoded by the compiled\n"
    "FrameDecoder `decoder`; a frame it hands back is built as a RawPacket by `packet_at(start,\n"
    "end)` (where its packed header starts, where its bytes end) and given to `decode`. Returns\n"
    "(their events in order, frames, the last frame's timestamp or None, marks, trailing), marks\n"
    "and trailing as feed_records gives them.";

PyObject *tracker_feed_frames(Tracker *t, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "feed_frames(frames, decoder, decode, packet_at)");
        return NULL;
    }
    if (feed_ready(t) < 0) {
        return NULL;
    }
    PyObject *decoder = args[1], *decode = args[2], *packet_at = args[3];
    Py_buffer view; /* held to the end: a bytearray cannot be resized under the frames read */
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    EventRunState run;
    if (run_start(t, &run) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *buf = view.buf;
    Py_ssize_t size = view.len, position = 0, frames = 0;
    double last = 0.0;
    int failed = 0;
    while (!failed && position < size) {
        PackedFrame header = {.captured = -1};
        if (size - position >= (Py_ssize_t)sizeof header) {
            memcpy(&header, buf + position, sizeof header);
        }
        if (header.captured < 0 || header.captured > size - position - (Py_ssize_t)sizeof header) {
            PyErr_SetString(PyExc_ValueError, "feed_frames: a packed frame is cut short");
            failed = 1;
            break;
        }
        PcapRecord record = {
            .header = NULL,
            .frame = buf + position + sizeof header,
            .captured = (Py_ssize_t)header.captured,
            .ts = header.ts,
            .truncated = header.wire_length > header.captured,
            .linktype = (long)header.linktype,
        };
        frames++;
        last = header.ts;
        failed = run_track(t, &run, NULL, packet_at, position, decoder, decode, &record) < 0;
        position += (Py_ssize_t)sizeof header + (Py_ssize_t)header.captured;
    }
    PyBuffer_Release(&view);
    PyObject *events, *trailing;
    if (run_end(t, &run, failed, &events, &trailing) < 0) {
        return NULL;
    }
    PyObject *last_ts = frames ? PyFloat_FromDouble(last) : Py_NewRef(Py_None);
    if (last_ts == NULL) {
        Py_DECREF(events);
        Py_DECREF(trailing);
        Py_DECREF(run.marks);
        return NULL;
    }
    return Py_BuildValue("(NnNNN)", events, frames, last_ts, run.marks, trailing);
}
