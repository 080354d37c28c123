/* The compiled ConnectionTracker type (reassembly/connections.py `ConnectionTracker`):
 * finding each segment's connection, opening, evicting and closing connections, and the
 * public face reassembly/tracker.py wraps. */

#include "_fasttrack_conn.h"

#define LATE_SEGMENT_WINDOW 60.0 /* connections._LATE_SEGMENT_WINDOW */
#define RST_WINDOW (1u << 16)

static const char *const stat_names[STAT_COUNT] = {
#define STAT_NAME(name) #name,
    STATS(STAT_NAME)
#undef STAT_NAME
};

static const char *const flow_fields[] = {"client", "client_port", "server", "server_port", "tunnel"};
static const char *const request_fields[] = {"ts",   "flow",     "version",      "headers", "body",   "body_length",
                                             "complete", "anomalies", "decoded_body", "index",   "method", "target"};
static const char *const response_fields[] = {"ts",        "flow",      "version",      "headers", "body",
                                              "body_length", "complete", "anomalies",    "decoded_body",
                                              "index",     "status",    "reason",       "request"};
static const char *const anomaly_fields[] = {"ts", "flow", "name", "detail"};
static const char *const switch_fields[] = {"ts", "flow", "protocol", "target", "confirmed"};
static const char *const segment_fields[] = {"ts",  "src",   "dst",     "sport",     "dport", "seq",
                                             "ack", "flags", "payload", "truncated", "tunnel"};

/* ---- reading a segment -------------------------------------------------------------------- */

static int as_seq(PyObject *value, uint32_t *out) {
    int overflow = 1;
    long long number = PyLong_Check(value) ? PyLong_AsLongLongAndOverflow(value, &overflow) : -1;
    if (overflow || number < 0 || number >> 32) {
        PyErr_SetString(PyExc_ValueError, "TCP sequence and acknowledgement numbers are 32-bit (0 to 2**32 - 1)");
        return -1;
    }
    *out = (uint32_t)number;
    return 0;
}

int read_segment(Tracker *t, PyObject *object, Segment *seg) {
    const Kind *kind = &t->types.segment;
    if (!PyObject_TypeCheck(object, kind->type)) {
        PyErr_Format(PyExc_TypeError, "expected a TcpSegment, not %.100s", Py_TYPE(object)->tp_name);
        return -1;
    }
    PyObject *payload = get_slot(object, kind->offsets[SEG_PAYLOAD]);
    if (payload == NULL || !PyBytes_Check(payload)) {
        PyErr_SetString(PyExc_TypeError, "TcpSegment.payload must be bytes");
        return -1;
    }
    seg->ts = PyFloat_AsDouble(get_slot(object, kind->offsets[SEG_TS]));
    seg->src = get_slot(object, kind->offsets[SEG_SRC]);
    seg->dst = get_slot(object, kind->offsets[SEG_DST]);
    seg->tunnel = get_slot(object, kind->offsets[SEG_TUNNEL]);
    seg->sport = PyLong_AsLong(get_slot(object, kind->offsets[SEG_SPORT]));
    seg->dport = PyLong_AsLong(get_slot(object, kind->offsets[SEG_DPORT]));
    seg->flags = (int)PyLong_AsLong(get_slot(object, kind->offsets[SEG_FLAGS]));
    seg->payload = (const unsigned char *)PyBytes_AS_STRING(payload);
    seg->len = PyBytes_GET_SIZE(payload);
    int truncated = PyObject_IsTrue(get_slot(object, kind->offsets[SEG_TRUNCATED]));
    seg->truncated = truncated > 0;
    if (PyErr_Occurred() || truncated < 0 || seg->src == NULL || seg->dst == NULL || seg->tunnel == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "TcpSegment has unset fields");
        }
        return -1;
    }
    return as_seq(get_slot(object, kind->offsets[SEG_SEQ]), &seg->seq) < 0 ||
                   as_seq(get_slot(object, kind->offsets[SEG_ACK]), &seg->ack) < 0
               ? -1
               : 0;
}

/* ---- the table of connections --------------------------------------------------------------- */

static int close_connection(Tracker *t, Connection *c, StatId reason) {
    table_remove(&t->connections, &c->entry);
    int failed = connection_close(t, c, reason);
    connection_free(c);
    return failed;
}

static int evict_idle(Tracker *t, double now) {
    /* Looked at a few times per idle timeout, not per segment. */
    t->next_idle_check = now + t->idle_timeout / 16;
    double deadline = now - t->idle_timeout;
    while (t->connections.oldest != NULL) {
        Connection *oldest = (Connection *)t->connections.oldest;
        if (oldest->last_ts >= deadline) {
            break;
        }
        if (close_connection(t, oldest, STAT_connections_evicted_idle) < 0) {
            return -1;
        }
    }
    return 0;
}

static int make_room(Tracker *t) {
    while (t->connections.count >= t->max_flows && t->connections.oldest != NULL) {
        if (close_connection(t, (Connection *)t->connections.oldest, STAT_connections_evicted_table_full) < 0) {
            return -1;
        }
    }
    return 0;
}

static int remember_closed(Tracker *t, const Key *key, double ts) {
    bool failed;
    Closed *closed = (Closed *)table_find(&t->closed, key, &failed);
    if (failed) {
        return -1;
    }
    if (closed != NULL) {
        closed->closed_at = ts;
        table_touch(&t->closed, &closed->entry);
    } else {
        closed = PyMem_Calloc(1, sizeof(Closed));
        if (closed == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        closed->closed_at = ts;
        if (table_insert(&t->closed, &closed->entry, key) < 0) {
            PyMem_Free(closed);
            return -1;
        }
    }
    while (t->closed.count > t->max_flows) {
        Entry *oldest = t->closed.oldest;
        table_remove(&t->closed, oldest);
        PyMem_Free(oldest);
    }
    return 0;
}

/* connections._is_late_for_closed: 1 late, 0 not, -1 error. */
static int is_late_for_closed(Tracker *t, const Key *key, const Segment *seg) {
    bool failed;
    Closed *closed = (Closed *)table_find(&t->closed, key, &failed);
    if (failed) {
        return -1;
    }
    if (closed == NULL) {
        return 0;
    }
    if (seg->flags & TCP_SYN || seg->ts - closed->closed_at > LATE_SEGMENT_WINDOW) {
        table_remove(&t->closed, &closed->entry); /* a new connection on the same ports */
        PyMem_Free(closed);
        return 0;
    }
    return 1;
}

/* ---- a segment ---------------------------------------------------------------------------------- */

static bool is_new_connection(const Connection *c, const Segment *seg) {
    if (!(seg->flags & TCP_SYN) || seg->flags & TCP_ACK) {
        return false;
    }
    return c->client.stream.has_next && c->client.stream.next_seq != seg->seq + 1;
}

static bool finished(const Direction *d) {
    const Stream *s = &d->stream;
    return d->has_fin && (!s->has_next || s->next_seq == d->fin_seq) && s->npending == 0;
}

static bool both_finished(const Connection *c) {
    if (!finished(&c->client)) {
        return false;
    }
    /* One-sided mirror: the server's direction was never seen, so its FIN never will be. */
    return (!c->server.seen && !c->server.stream.has_next) || finished(&c->server);
}

static bool rst_in_window(const Connection *c, bool from_client, const Segment *seg) {
    const Stream *s = from_client ? &c->client.stream : &c->server.stream;
    return !s->has_next || (uint32_t)(seg->seq - s->next_seq) <= RST_WINDOW;
}

/* 1 from the client, 0 not, -1 error. */
static int from_client(const Connection *c, const Segment *seg) {
    if (seg->sport != c->client_port) {
        return 0;
    }
    return seg->src == c->client_addr ? 1 : PyObject_RichCompareBool(seg->src, c->client_addr, Py_EQ);
}

static int note_bare_ack(Tracker *t, Connection *c, const Segment *seg) {
    c->last_ts = seg->ts;
    table_touch(&t->connections, &c->entry);
    if (seg->flags & TCP_ACK) {
        int client = from_client(c, seg);
        if (client < 0) {
            return -1;
        }
        note_ack(t, client ? &c->server : &c->client, seg->ack);
    }
    return 0;
}

/* The connection `seg` belongs to, opened if need be; NULL with no error when none. */
static Connection *find_or_open(Tracker *t, const Key *key, const Segment *seg, Connection *found, bool *done) {
    *done = false;
    Connection *c = found;
    if (c != NULL && is_new_connection(c, seg)) {
        if (close_connection(t, c, STAT_connections_reused) < 0) {
            return NULL;
        }
        c = NULL;
    }
    if (c != NULL) {
        table_touch(&t->connections, &c->entry);
        return c;
    }
    int late = is_late_for_closed(t, key, seg);
    if (late != 0) {
        if (late > 0) {
            count_stat(t, STAT_segments_after_close, 1);
        }
        *done = late > 0;
        return NULL;
    }
    c = connection_open(t, seg);
    if (c == NULL) {
        *done = !PyErr_Occurred();
        return NULL;
    }
    if (make_room(t) < 0 || table_insert(&t->connections, &c->entry, key) < 0) {
        connection_free(c);
        return NULL;
    }
    return c;
}

int tracker_receive(Tracker *t, const Segment *seg) {
    if (seg->ts >= t->next_idle_check && evict_idle(t, seg->ts) < 0) {
        return -1;
    }
    Key key;
    bool failed;
    if (key_of(&key, seg->tunnel, seg->src, seg->sport, seg->dst, seg->dport) < 0) {
        return -1;
    }
    Connection *c = (Connection *)table_find(&t->connections, &key, &failed);
    if (failed) {
        return -1;
    }
    if (c != NULL && seg->len == 0 && !(seg->flags & (TCP_SYN | TCP_FIN | TCP_RST))) {
        return note_bare_ack(t, c, seg); /* a third of real traffic: kept cheap */
    }
    bool done;
    c = find_or_open(t, &key, seg, c, &done);
    if (c == NULL) {
        return done ? 0 : -1;
    }
    c->last_ts = seg->ts;
    int client = from_client(c, seg);
    if (client < 0) {
        return -1;
    }
    if (seg->flags & TCP_ACK) {
        Direction *acked = client ? &c->server : &c->client;
        if (!acked->has_acked || seg->ack != acked->acked) { /* most segments repeat the last one */
            note_ack(t, acked, seg->ack);
        }
    }
    int result;
    if (client) {
        result = connection_receive(t, c, &c->client, seg);
        result = result < 0 ? -1 : connection_release_held(t, c, false);
    } else if (seg->len && (c->held_count || answers_unseen_bytes(c, seg))) {
        result = connection_hold(t, c, seg); /* behind the held ones: the server's segments keep their order */
    } else {
        result = connection_receive(t, c, &c->server, seg);
    }
    if (result < 0) {
        return -1;
    }
    if (seg->flags & TCP_RST && !rst_in_window(c, client, seg)) {
        /* RFC 5961 section 3.2: a reset is believed only in the window. */
        count_stat(t, STAT_resets_out_of_window, 1);
        return emit_anomaly(t, c, seg->ts, strings[S_RST_OUT_OF_WINDOW], seg->seq);
    }
    if (seg->flags & TCP_RST || both_finished(c)) {
        Key kept = c->entry.key; /* the table releases its references when the connection goes */
        Py_INCREF(kept.tunnel);
        Py_INCREF(kept.addr_a);
        Py_INCREF(kept.addr_b);
        result = close_connection(t, c, STAT_connections_closed);
        if (result == 0) {
            result = remember_closed(t, &kept, seg->ts);
        }
        Py_DECREF(kept.tunnel);
        Py_DECREF(kept.addr_a);
        Py_DECREF(kept.addr_b);
    }
    return result;
}

/* ---- the type ------------------------------------------------------------------------------------- */

static PyObject *take_output(Tracker *t, int failed) {
    PyObject *out = t->out;
    t->out = NULL;
    if (failed) {
        Py_XDECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *tracker_receive_segment(Tracker *t, PyObject *object) {
    if (t->out != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ConnectionTracker is not reentrant");
        return NULL;
    }
    Segment seg;
    if (read_segment(t, object, &seg) < 0) {
        return NULL;
    }
    if ((t->out = PyList_New(0)) == NULL) {
        return NULL;
    }
    Py_INCREF(object); /* the payload is read in place */
    int failed = tracker_receive(t, &seg);
    Py_DECREF(object);
    return take_output(t, failed);
}

/* ---- packets in: the capture decoder's segments straight in ------------------------------ */

/* A callable `feed(packet) -> events`: the compiled frame decoder first, the full decoder for
 * the frames it hands back, then the tracker; no Python frame per packet in between. */
typedef struct {
    PyObject_HEAD
    Tracker *tracker;
    PyObject *fast_decode; /* or None */
    PyObject *decode;
    vectorcallfunc vectorcall;
} PacketFeed;

static PyObject *feed_call(PacketFeed *feed, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "feed() takes one packet");
        return NULL;
    }
    PyObject *segment = NULL;
    if (feed->fast_decode != Py_None) {
        segment = PyObject_CallOneArg(feed->fast_decode, args[0]);
        if (segment == NULL) {
            return NULL;
        }
    }
    if (segment == NULL || segment == Py_None) {
        Py_XDECREF(segment);
        segment = PyObject_CallOneArg(feed->decode, args[0]);
        if (segment == NULL) {
            return NULL;
        }
    }
    if (segment == Py_None) {
        Py_DECREF(segment);
        return PyList_New(0);
    }
    PyObject *events = tracker_receive_segment(feed->tracker, segment);
    Py_DECREF(segment);
    return events;
}

static void feed_dealloc(PacketFeed *feed) {
    Py_CLEAR(feed->tracker);
    Py_CLEAR(feed->fast_decode);
    Py_CLEAR(feed->decode);
    Py_TYPE(feed)->tp_free((PyObject *)feed);
}

static PyTypeObject PacketFeedType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "reassembly._fasttrack.PacketFeed",
    .tp_basicsize = sizeof(PacketFeed),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "feed(packet) -> the events the packet's segment completes.",
    .tp_vectorcall_offset = offsetof(PacketFeed, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_dealloc = (destructor)feed_dealloc,
};

static PyObject *tracker_packet_feed(Tracker *t, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "packet_feed(fast_decode, decode)");
        return NULL;
    }
    if (PyType_Ready(&PacketFeedType) < 0) {
        return NULL;
    }
    PacketFeed *feed = PyObject_New(PacketFeed, &PacketFeedType);
    if (feed == NULL) {
        return NULL;
    }
    feed->tracker = (Tracker *)Py_NewRef(t);
    feed->fast_decode = Py_NewRef(args[0]);
    feed->decode = Py_NewRef(args[1]);
    feed->vectorcall = (vectorcallfunc)feed_call;
    return (PyObject *)feed;
}

static PyObject *tracker_close_all(Tracker *t, PyObject *Py_UNUSED(ignored)) {
    if (t->out != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ConnectionTracker is not reentrant");
        return NULL;
    }
    if ((t->out = PyList_New(0)) == NULL) {
        return NULL;
    }
    int failed = 0;
    while (!failed && t->connections.oldest != NULL) {
        failed = close_connection(t, (Connection *)t->connections.oldest, STAT_connections_open_at_end);
    }
    return take_output(t, failed);
}

static PyObject *tracker_stats(Tracker *t, PyObject *Py_UNUSED(ignored)) {
    PyObject *counts = PyDict_New();
    if (counts == NULL) {
        return NULL;
    }
    for (int i = 0; i < t->stats_touched; i++) {
        int id = t->stat_order[i];
        PyObject *value = PyLong_FromLongLong(t->stats[id]);
        if (value == NULL || PyDict_SetItemString(counts, stat_names[id], value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(counts);
            return NULL;
        }
        Py_DECREF(value);
    }
    PyObject *counter = PyObject_CallOneArg(t->types.counter, counts);
    Py_DECREF(counts);
    return counter;
}

static PyObject *tracker_capture_loss(Tracker *t, PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue("(LLLL)", t->ack_events, t->ack_bytes, t->gap_events, t->gap_bytes);
}

static PyObject *tracker_tracked(Tracker *t, void *Py_UNUSED(closure)) {
    return PyLong_FromSsize_t(t->connections.count);
}

static PyObject *tracker_pending(Tracker *t, void *Py_UNUSED(closure)) {
    return PyLong_FromLongLong(t->pending_total);
}

static int limit(PyObject *limits, const char *name, long long *out) {
    PyObject *value = PyObject_GetAttrString(limits, name);
    if (value == NULL) {
        return -1;
    }
    *out = PyLong_AsLongLong(value);
    Py_DECREF(value);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

static int read_limits(Tracker *t, PyObject *limits) {
    PyObject *idle = PyObject_GetAttrString(limits, "idle_timeout");
    if (idle == NULL) {
        return -1;
    }
    t->idle_timeout = PyFloat_AsDouble(idle);
    Py_DECREF(idle);
    if (PyErr_Occurred() || limit(limits, "max_flows", &t->max_flows) < 0 ||
        limit(limits, "max_pending_bytes_per_direction", &t->max_pending_per_direction) < 0 ||
        limit(limits, "max_pending_bytes_total", &t->max_pending_total) < 0 ||
        limit(limits, "overlap_check_bytes", &t->overlap_check_bytes) < 0 ||
        limit(limits, "max_head_bytes", &t->max_head_bytes) < 0 ||
        limit(limits, "body_inspection_bytes", &t->body_inspection_bytes) < 0) {
        return -1;
    }
    if (t->overlap_check_bytes < 0 || t->body_inspection_bytes < 0) {
        PyErr_SetString(PyExc_ValueError, "overlap_check_bytes and body_inspection_bytes must not be negative");
        return -1;
    }
    return 0;
}

static int tracker_init(Tracker *t, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"limits", "flow_type", "request_type", "response_type", "anomaly_type",
                               "switch_type", "segment_type", "decode_body", "counter_type", NULL};
    PyObject *limits, *flow, *request, *response, *anomaly, *protocol_switch, *segment, *decode_body, *counter;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OOOOOOOOO", keywords, &limits, &flow, &request, &response,
                                     &anomaly, &protocol_switch, &segment, &decode_body, &counter)) {
        return -1;
    }
    if (t->types.limits != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ConnectionTracker is already initialised");
        return -1;
    }
    Types *types = &t->types;
    if (kind_init(&types->flow, flow, flow_fields, FLOW_FIELDS) < 0 ||
        kind_init(&types->request, request, request_fields, REQ_FIELDS) < 0 ||
        kind_init(&types->response, response, response_fields, RESP_FIELDS) < 0 ||
        kind_init(&types->anomaly, anomaly, anomaly_fields, ANOM_FIELDS) < 0 ||
        kind_init(&types->protocol_switch, protocol_switch, switch_fields, SW_FIELDS) < 0 ||
        kind_init(&types->segment, segment, segment_fields, SEG_FIELDS) < 0 || read_limits(t, limits) < 0) {
        return -1;
    }
    /* Requests and responses share their message fields' slots (both inherit HttpMessage's). */
    if (memcmp(types->request.offsets, types->response.offsets, MSG_COMMON * sizeof(Py_ssize_t)) != 0) {
        PyErr_SetString(PyExc_TypeError, "HttpRequest and HttpResponse must share HttpMessage's slots");
        return -1;
    }
    types->decode_body = Py_NewRef(decode_body);
    types->counter = Py_NewRef(counter);
    types->limits = Py_NewRef(limits);
    t->next_idle_check = -Py_HUGE_VAL;
    return 0;
}

static void tracker_dealloc(Tracker *t) {
    while (t->connections.oldest != NULL) {
        Connection *c = (Connection *)t->connections.oldest;
        table_remove(&t->connections, &c->entry);
        connection_free(c);
    }
    while (t->closed.oldest != NULL) {
        Entry *oldest = t->closed.oldest;
        table_remove(&t->closed, oldest);
        PyMem_Free(oldest);
    }
    table_free(&t->connections);
    table_free(&t->closed);
    Py_CLEAR(t->out);
    types_clear(&t->types);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyMethodDef tracker_methods[] = {
    {"receive_segment", (PyCFunction)tracker_receive_segment, METH_O, "The events this segment completes."},
    {"close_all", (PyCFunction)tracker_close_all, METH_NOARGS, "End of input: every message still in progress."},
    {"feed_records", (PyCFunction)(void (*)(void))tracker_feed_records, METH_FASTCALL, feed_records_doc},
    {"feed_frames", (PyCFunction)(void (*)(void))tracker_feed_frames, METH_FASTCALL, feed_frames_doc},
    {"packet_feed", (PyCFunction)(void (*)(void))tracker_packet_feed, METH_FASTCALL,
     "packet_feed(fast_decode, decode): a callable from packet to events, decoding and tracking in one call."},
    {"stats", (PyCFunction)tracker_stats, METH_NOARGS, "A Counter of what the tracker counted, by reason."},
    {"capture_loss", (PyCFunction)tracker_capture_loss, METH_NOARGS,
     "(ack_events, ack_bytes, gap_events, gap_bytes) so far."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef tracker_getset[] = {
    {"tracked_connections", (getter)tracker_tracked, NULL, "Connections tracked now.", NULL},
    {"pending_bytes", (getter)tracker_pending, NULL, "Out-of-order and held bytes, over every connection.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject CompiledTrackerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "reassembly._fasttrack.ConnectionTracker",
    .tp_basicsize = sizeof(Tracker),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Every TCP connection's HTTP/1.x messages: the compiled twin of reassembly.connections.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)tracker_init,
    .tp_dealloc = (destructor)tracker_dealloc,
    .tp_methods = tracker_methods,
    .tp_getset = tracker_getset,
};
