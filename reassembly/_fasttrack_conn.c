/* One connection's bytes and events (reassembly/connections.py from `_open` to `_emit`):
 * each direction's segments ordered and parsed, responses kept behind their requests,
 * holes given up on by the limits, and the events appended to the tracker's output in the
 * reference's order. */

#include "_fasttrack_conn.h"

#define MAX_ACK_ADVANCE (1u << 30) /* connections._MAX_ACK_ADVANCE */
#define HALF_SEQ (1ll << 31)

/* ---- counting --------------------------------------------------------------------------- */

static void account(Tracker *t, Connection *c, long long delta) {
    c->pending_bytes += delta;
    t->pending_total += delta;
}

static void count_unseen(Tracker *t, long long unseen) {
    if (unseen > 0) {
        t->gap_events++;
        t->gap_bytes += unseen;
    }
}

/* capture_loss.acknowledged_unseen; `most` < 0 for no bound. */
static long long acknowledged_unseen(bool has_acked, uint32_t acked, bool has_start, uint32_t start, long long most) {
    if (!has_acked || !has_start) {
        return 0;
    }
    long long unseen = seq_distance(acked, start);
    if (most >= 0 && most < unseen) {
        unseen = most;
    }
    return unseen > 0 ? unseen : 0;
}

void note_ack(Tracker *t, Direction *acked, uint32_t ack) {
    if (!acked->has_acked) { /* the first acknowledgement is only where counting starts */
        acked->has_acked = true;
        acked->acked = ack;
        return;
    }
    uint32_t advance = ack - acked->acked;
    if (advance > 0 && advance < MAX_ACK_ADVANCE) {
        acked->acked = ack;
        t->ack_events++;
        t->ack_bytes += advance;
    }
}

/* ---- opening ----------------------------------------------------------------------------- */

static void direction_free(Direction *d) {
    stream_free(&d->stream);
    parser_free(&d->parser);
}

void connection_free(Connection *c) {
    direction_free(&c->client);
    direction_free(&c->server);
    Py_CLEAR(c->flow);
    Py_CLEAR(c->client_addr);
    for (Py_ssize_t i = 0; i < c->held_count; i++) {
        PyMem_Free((void *)c->held[i].payload);
    }
    PyMem_Free(c->held);
    PyMem_Free(c);
}

static PyObject *new_flow(Tracker *t, PyObject *client, long client_port, PyObject *server, long server_port,
                          PyObject *tunnel) {
    PyObject *values[FLOW_FIELDS];
    values[FLOW_CLIENT] = Py_NewRef(client);
    values[FLOW_CLIENT_PORT] = PyLong_FromLong(client_port);
    values[FLOW_SERVER] = Py_NewRef(server);
    values[FLOW_SERVER_PORT] = PyLong_FromLong(server_port);
    values[FLOW_TUNNEL] = Py_NewRef(tunnel);
    if (values[FLOW_CLIENT_PORT] == NULL || values[FLOW_SERVER_PORT] == NULL) {
        for (int i = 0; i < FLOW_FIELDS; i++) {
            Py_XDECREF(values[i]);
        }
        return NULL;
    }
    return make_object(&t->types.flow, values);
}

/* connections._open: a new connection, or NULL (with no error set when the segment cannot
 * open one: counted as segment_before_connection_known). */
Connection *connection_open(Tracker *t, const Segment *seg) {
    bool client_is_source, midstream;
    if (seg->flags & TCP_SYN) {
        client_is_source = !(seg->flags & TCP_ACK);
        midstream = false;
    } else if (looks_like_request(seg->payload, seg->len)) {
        client_is_source = midstream = true;
    } else if (looks_like_response(seg->payload, seg->len)) {
        client_is_source = false;
        midstream = true;
    } else {
        count_stat(t, STAT_segment_before_connection_known, 1);
        return NULL;
    }
    PyObject *flow = client_is_source ? new_flow(t, seg->src, seg->sport, seg->dst, seg->dport, seg->tunnel)
                                      : new_flow(t, seg->dst, seg->dport, seg->src, seg->sport, seg->tunnel);
    if (flow == NULL) {
        return NULL;
    }
    Connection *c = PyMem_Calloc(1, sizeof(Connection));
    if (c == NULL) {
        Py_DECREF(flow);
        PyErr_NoMemory();
        return NULL;
    }
    c->flow = flow;
    c->client_addr = Py_NewRef(client_is_source ? seg->src : seg->dst);
    c->client_port = client_is_source ? seg->sport : seg->dport;
    c->last_ts = seg->ts;
    c->from_handshake = !midstream;
    c->early_expected = -1;
    stream_init(&c->client.stream, (Py_ssize_t)t->overlap_check_bytes);
    stream_init(&c->server.stream, (Py_ssize_t)t->overlap_check_bytes);
    if (parser_init(&c->client.parser, &t->types, flow, false, midstream, t->max_head_bytes,
                    t->body_inspection_bytes) < 0 ||
        parser_init(&c->server.parser, &t->types, flow, true, midstream, t->max_head_bytes,
                    t->body_inspection_bytes) < 0) {
        connection_free(c);
        return NULL;
    }
    count_stat(t, STAT_connections, 1);
    if (midstream) {
        count_stat(t, STAT_connections_picked_up_midstream, 1);
    }
    return c;
}

/* ---- events ------------------------------------------------------------------------------- */

static long long index_of(Tracker *t, PyObject *request) {
    return PyLong_AsLongLong(get_slot(request, t->types.request.offsets[MSG_INDEX]));
}

/* connections._emit: steals `event`. */
static int emit(Tracker *t, Connection *c, PyObject *event) {
    int failed = PyList_Append(t->out, event);
    if (Py_IS_TYPE(event, t->types.response.type)) {
        PyObject *request = get_slot(event, t->types.response.offsets[RESP_REQUEST]);
        long status = PyLong_AsLong(get_slot(event, t->types.response.offsets[RESP_STATUS]));
        if (request == Py_None && status >= 200) {
            count_stat(t, STAT_responses_without_request, 1);
        }
    } else if (Py_IS_TYPE(event, t->types.protocol_switch.type)) {
        bool confirmed = get_slot(event, t->types.protocol_switch.offsets[SW_CONFIRMED]) == Py_True;
        count_stat(t, confirmed ? STAT_protocol_switches_confirmed : STAT_protocol_switches_inferred, 1);
        if (confirmed) {
            parser_switch_protocol(&c->client.parser);
        }
    }
    Py_DECREF(event);
    return failed;
}

int emit_anomaly(Tracker *t, Connection *c, double ts, PyObject *name, uint32_t seq) {
    PyObject *values[ANOM_FIELDS];
    values[ANOM_TS] = PyFloat_FromDouble(ts);
    values[ANOM_DETAIL] = PyUnicode_FromFormat("seq %lu", (unsigned long)seq);
    if (values[ANOM_TS] == NULL || values[ANOM_DETAIL] == NULL) {
        Py_XDECREF(values[ANOM_TS]);
        Py_XDECREF(values[ANOM_DETAIL]);
        return -1;
    }
    values[ANOM_FLOW] = Py_NewRef(c->flow);
    values[ANOM_NAME] = Py_NewRef(name);
    PyObject *anomaly = make_object(&t->types.anomaly, values);
    if (anomaly == NULL) {
        return -1;
    }
    int failed = PyList_Append(t->out, anomaly);
    Py_DECREF(anomaly);
    return failed;
}

/* connections._announce: the server side learns of a request, and the client sequence
 * number just past it. */
static int announce(Tracker *t, Connection *c, PyObject *request) {
    long long index = index_of(t, request);
    if (index == c->early_expected) {
        return 0;
    }
    Stream *client = &c->client.stream;
    uint32_t end_seq = client->initial_seq + (uint32_t)c->client.parser.last_end_offset;
    return parser_expect(&c->server.parser, request, c->last_ts, client->has_initial, end_seq);
}

static int drain(Tracker *t, Connection *c, Direction *d) {
    while (true) {
        PyObject *event;
        Step result = parser_next_event(&d->parser, &event);
        if (result == STEP_ERROR) {
            return -1;
        }
        if (result == STEP_NEED_DATA) {
            return 0;
        }
        if (Py_IS_TYPE(event, t->types.request.type) && announce(t, c, event) < 0) {
            Py_DECREF(event);
            return -1;
        }
        if (emit(t, c, event) < 0) {
            return -1;
        }
    }
}

/* connections._announce_request_in_progress: a server may answer before the request's body
 * is done (413, 401, 100 Continue); pair its response with the request whose head was read. */
static int announce_request_in_progress(Tracker *t, Connection *c) {
    PyObject *head = parser_in_progress(&c->client.parser);
    if (head == NULL || c->server.parser.un_count != 0) {
        return 0;
    }
    long long index = index_of(t, head);
    if (index == c->early_expected) {
        return 0;
    }
    c->early_expected = index;
    return parser_expect(&c->server.parser, head, c->last_ts, false, 0);
}

/* ---- bytes ---------------------------------------------------------------------------------- */

static int deliver(Tracker *t, Connection *c, Direction *d, const Part *part) {
    if (!d->delivered) {
        d->delivered = true;
        /* Only a stream seen from its first byte can tell that it is not HTTP (RFC 9112
         * section 2.2 allows a leading CRLF). */
        unsigned char first = part->data[0];
        if (d == &c->client && c->from_handshake && !(is_tchar(first) || first == '\r' || first == '\n')) {
            count_stat(t, STAT_connections_not_http, 1);
            parser_switch_protocol(&c->client.parser);
            parser_switch_protocol(&c->server.parser);
        }
    }
    return parser_receive_data(&d->parser, part->data, part->len, part->ts, part->has_ack, part->ack);
}

static int deliver_parts(Tracker *t, Connection *c, Direction *d, Parts *parts) {
    for (Py_ssize_t i = 0; i < parts->count; i++) {
        if (deliver(t, c, d, &parts->items[i]) < 0 || drain(t, c, d) < 0) {
            return -1;
        }
    }
    return 0;
}

static int skip_hole(Tracker *t, Connection *c, Direction *d, StatId reason) {
    Stream *s = &d->stream;
    long long before = s->pending_bytes;
    bool has_start = s->has_next;
    uint32_t hole_start = s->next_seq;
    long long lost;
    Parts parts = {0};
    int failed = stream_skip_hole(s, &lost, &parts);
    if (!failed) {
        count_unseen(t, acknowledged_unseen(d->has_acked, d->acked, has_start, hole_start, lost));
        account(t, c, s->pending_bytes - before);
        count_stat(t, reason, 1);
        count_stat(t, STAT_bytes_lost_in_gaps, lost);
        double ts = parts.count ? parts.items[0].ts : c->last_ts;
        failed = parser_receive_gap(&d->parser, lost, ts) < 0 || drain(t, c, d) < 0;
    }
    if (!failed) {
        d->delivered = true; /* bytes after a gap start anywhere: they cannot tell "not HTTP" */
        failed = deliver_parts(t, c, d, &parts);
    }
    parts_release(&parts);
    return failed ? -1 : 0;
}

static int enforce_buffer_limits(Tracker *t, Connection *c, Direction *d) {
    while (d->stream.pending_bytes > t->max_pending_per_direction) {
        if (skip_hole(t, c, d, STAT_gaps_forced_by_flow_buffer_limit) < 0) {
            return -1;
        }
    }
    while (t->pending_total > t->max_pending_total && d->stream.npending) {
        if (skip_hole(t, c, d, STAT_gaps_forced_by_total_buffer_limit) < 0) {
            return -1;
        }
    }
    return 0;
}

static int receive_payload(Tracker *t, Connection *c, Direction *d, const Segment *seg) {
    Stream *s = &d->stream;
    d->seen = true;
    if (d == &c->server && announce_request_in_progress(t, c) < 0) {
        return -1;
    }
    long long before = s->pending_bytes;
    bool has_ack = (seg->flags & TCP_ACK) != 0;
    Parts parts = {0};
    int failed = stream_add_parts(s, seg->seq, seg->payload, seg->len, seg->ts, has_ack, seg->ack, &parts);
    if (!failed && s->overlap_conflicts > d->conflicts_reported) { /* named before the message it is in */
        d->conflicts_reported = s->overlap_conflicts;
        count_stat(t, STAT_overlap_conflicts, 1);
        failed = emit_anomaly(t, c, seg->ts, strings[S_OVERLAP_CONFLICT], seg->seq);
    }
    /* Part by part: bytes drained from the reorder buffer keep their own segment's
     * acknowledgement, which pairing relies on. */
    if (!failed) {
        failed = deliver_parts(t, c, d, &parts);
    }
    parts_release(&parts);
    if (failed) {
        return -1;
    }
    if (s->pending_bytes != before) {
        account(t, c, s->pending_bytes - before);
        if (enforce_buffer_limits(t, c, d) < 0) {
            return -1;
        }
    }
    if (d->gap_after_truncated && s->npending && skip_hole(t, c, d, STAT_gaps_after_truncated_segment) < 0) {
        return -1;
    }
    d->gap_after_truncated = seg->truncated;
    return 0;
}

int connection_receive(Tracker *t, Connection *c, Direction *d, const Segment *seg) {
    if (seg->flags & TCP_SYN) {
        stream_start(&d->stream, seg->seq);
    }
    if (seg->len && receive_payload(t, c, d, seg) < 0) {
        return -1;
    }
    if (seg->flags & TCP_FIN) {
        d->has_fin = true;
        d->fin_seq = seg->seq + (uint32_t)seg->len;
    }
    return 0;
}

/* ---- keeping responses behind their requests ------------------------------------------------ */

/* connections._answers_unseen_bytes: asked of a new server segment, and of the first held one
 * each time client bytes arrive (released once they cover its acknowledgement). */
bool answers_unseen_bytes(const Connection *c, const Segment *seg) {
    if (!(seg->flags & TCP_ACK) || !c->client.stream.has_next) {
        return false;
    }
    long long ahead = seq_distance(seg->ack, c->client.stream.next_seq);
    /* A FIN takes a sequence number too; a server acking it has seen no byte beyond it. */
    ahead -= c->client.has_fin;
    return ahead > 0 && ahead < HALF_SEQ;
}

int connection_release_held(Tracker *t, Connection *c, bool force) {
    while (c->held_count && (force || !answers_unseen_bytes(c, &c->held[0]))) {
        Segment seg = c->held[0];
        memmove(c->held, c->held + 1, (size_t)(c->held_count - 1) * sizeof(Segment));
        c->held_count--;
        c->held_bytes -= seg.len;
        account(t, c, -seg.len);
        int failed = connection_receive(t, c, &c->server, &seg);
        PyMem_Free((void *)seg.payload);
        if (failed) {
            return -1;
        }
    }
    return 0;
}

int connection_hold(Tracker *t, Connection *c, const Segment *seg) {
    if (c->held_count == c->held_cap) {
        Py_ssize_t cap = c->held_cap ? c->held_cap * 2 : 4;
        Segment *grown = PyMem_Realloc(c->held, (size_t)cap * sizeof(Segment));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->held = grown;
        c->held_cap = cap;
    }
    unsigned char *copy = PyMem_Malloc((size_t)seg->len);
    if (copy == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(copy, seg->payload, (size_t)seg->len);
    Segment kept = *seg;
    kept.payload = copy;
    kept.src = kept.dst = kept.tunnel = NULL; /* not needed past this point, and not owned */
    c->held[c->held_count++] = kept;
    c->held_bytes += seg->len;
    account(t, c, seg->len);
    if (c->held_bytes > t->max_pending_per_direction || t->pending_total > t->max_pending_total) {
        count_stat(t, STAT_responses_released_before_their_request, 1);
        return connection_release_held(t, c, true);
    }
    return 0;
}

/* ---- closing ---------------------------------------------------------------------------------- */

/* Bytes acknowledged beyond the last one seen (a FIN's own sequence number is no byte). */
static long long acknowledged_past_the_end(const Direction *d) {
    const Stream *s = &d->stream;
    if (!d->has_fin || !s->has_next) {
        return acknowledged_unseen(d->has_acked, d->acked, s->has_next, s->next_seq, -1);
    }
    return acknowledged_unseen(d->has_acked, d->acked, true, s->next_seq, (uint32_t)(d->fin_seq - s->next_seq));
}

static int finish_direction(Tracker *t, Connection *c, Direction *d) {
    if (drain(t, c, d) < 0) {
        return -1;
    }
    PyObject *unfinished;
    if (parser_close(&d->parser, &unfinished) < 0) {
        return -1;
    }
    if (unfinished != NULL && emit(t, c, unfinished) < 0) {
        return -1;
    }
    PyObject *queued; /* what finishing the message queued: a ProtocolSwitch inside a tunnel */
    while ((queued = parser_take_queued(&d->parser)) != NULL) {
        if (emit(t, c, queued) < 0) {
            return -1;
        }
    }
    return 0;
}

/* connections._close, once the connection is out of the table. */
int connection_close(Tracker *t, Connection *c, StatId reason) {
    count_stat(t, reason, 1);
    while (c->client.stream.npending) {
        if (skip_hole(t, c, &c->client, STAT_gaps_at_close) < 0) {
            return -1;
        }
    }
    if (connection_release_held(t, c, true) < 0) {
        return -1;
    }
    while (c->server.stream.npending) {
        if (skip_hole(t, c, &c->server, STAT_gaps_at_close) < 0) {
            return -1;
        }
    }
    count_unseen(t, acknowledged_past_the_end(&c->client));
    count_unseen(t, acknowledged_past_the_end(&c->server));
    if (finish_direction(t, c, &c->client) < 0 || finish_direction(t, c, &c->server) < 0) {
        return -1;
    }
    t->pending_total -= c->pending_bytes;
    Parser *client = &c->client.parser, *server = &c->server.parser;
    if (client->tunnel_bytes) {
        count_stat(t, STAT_bytes_not_parsed_after_protocol_switch, client->tunnel_bytes);
    }
    if (server->tunnel_bytes) {
        count_stat(t, STAT_bytes_not_parsed_after_protocol_switch, server->tunnel_bytes);
    }
    if (server->forgotten_requests) {
        count_stat(t, STAT_requests_forgotten_unanswered_limit, server->forgotten_requests);
    }
    if (server->requests_unanswered_after_gap) {
        count_stat(t, STAT_requests_whose_response_was_lost, server->requests_unanswered_after_gap);
    }
    return 0;
}
