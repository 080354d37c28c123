/* The HTTP/1.x state machine of one direction (reassembly/http_message.py and the hooks of
 * http_request.py and http_response.py): bytes and gaps in, messages, anomalies and protocol
 * switches out, in the reference's order. Heads are read by _fasttrack_head.c. */

#include "_fasttrack_http.h"

#define UNANSWERED_LIMIT 1000 /* http_response._UNANSWERED_LIMIT */

/* ---- the queue of events ready to hand out ------------------------------------------- */

static int queue_push(EventQueue *q, PyObject *event) {
    if (q->count == q->cap) {
        Py_ssize_t cap = q->cap ? q->cap * 2 : 4;
        PyObject **grown = PyMem_Malloc((size_t)cap * sizeof(PyObject *));
        if (grown == NULL) {
            Py_DECREF(event);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < q->count; i++) {
            grown[i] = q->items[(q->head + i) % q->cap];
        }
        PyMem_Free(q->items);
        q->items = grown;
        q->head = 0;
        q->cap = cap;
    }
    q->items[(q->head + q->count) % q->cap] = event;
    q->count++;
    return 0;
}

static PyObject *queue_pop(EventQueue *q) {
    PyObject *event = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    return event;
}

static void queue_free(EventQueue *q) {
    while (q->count) {
        Py_DECREF(queue_pop(q));
    }
    PyMem_Free(q->items);
    q->items = NULL;
    q->cap = q->head = 0;
}

/* ---- set-up --------------------------------------------------------------------------- */

int parser_init(Parser *p, const Types *types, PyObject *flow, bool is_response, bool midstream,
                long long max_head_bytes, long long body_inspection_bytes) {
    memset(p, 0, sizeof(*p));
    p->types = types;
    p->max_head_bytes = max_head_bytes;
    p->body_inspection_bytes = body_inspection_bytes;
    p->is_response = is_response;
    p->flow = Py_NewRef(flow);
    p->resyncing = midstream;
    p->state = ST_HEAD;
    p->body_kept_whole = true;
    p->anomalies = PyList_New(0);
    return p->anomalies == NULL ? -1 : 0;
}

void parser_free(Parser *p) {
    Py_CLEAR(p->flow);
    Py_CLEAR(p->head);
    Py_CLEAR(p->anomalies);
    Py_CLEAR(p->switch_asked);
    bb_free(&p->buffer);
    bb_free(&p->body);
    queue_free(&p->ready);
    while (p->un_count) {
        unanswered_pop(p);
    }
    PyMem_Free(p->unanswered);
    p->unanswered = NULL;
}

int parser_expect(Parser *p, PyObject *request, double completed_at, bool has_end_seq, uint32_t end_seq) {
    if (p->un_count >= UNANSWERED_LIMIT) {
        unanswered_pop(p);
        p->forgotten_requests++;
    }
    if (p->un_count == p->un_cap) {
        Py_ssize_t cap = p->un_cap ? p->un_cap * 2 : 4;
        Unanswered *grown = PyMem_Malloc((size_t)cap * sizeof(Unanswered));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < p->un_count; i++) {
            grown[i] = p->unanswered[(p->un_head + i) % p->un_cap];
        }
        PyMem_Free(p->unanswered);
        p->unanswered = grown;
        p->un_head = 0;
        p->un_cap = cap;
    }
    p->unanswered[(p->un_head + p->un_count) % p->un_cap] =
        (Unanswered){Py_NewRef(request), completed_at, has_end_seq, end_seq};
    p->un_count++;
    return 0;
}

/* ---- public face ------------------------------------------------------------------------ */

static bool all_ascii_space(const ByteBuf *b) {
    const unsigned char *data = bb_ptr(b);
    for (Py_ssize_t i = 0; i < b->len; i++) {
        if (!is_ascii_space(data[i])) {
            return false;
        }
    }
    return true;
}

int parser_receive_data(Parser *p, const unsigned char *data, Py_ssize_t len, double ts, bool has_ack, uint32_t ack) {
    if (p->is_response && has_ack) {
        p->has_ack = true;
        p->ack = ack;
    }
    p->received += len;
    if (p->state == ST_TUNNEL) {
        p->tunnel_bytes += len;
        return 0;
    }
    if (p->state == ST_HEAD && all_ascii_space(&p->buffer)) {
        p->message_ts = ts;
    }
    p->last_ts = ts;
    return bb_append(&p->buffer, data, len);
}

PyObject *parser_in_progress(Parser *p) {
    p->head_handed_out = p->head != NULL;
    return p->head;
}

bool parser_switch_protocol(Parser *p) {
    Py_CLEAR(p->switch_asked);
    if (p->state == ST_TUNNEL) {
        return false;
    }
    p->state = ST_TUNNEL;
    p->tunnel_bytes += p->buffer.len;
    bb_clear(&p->buffer);
    bb_shrink_if_idle(&p->buffer);
    return true;
}

int append_anomaly(Parser *p, StringId name) { return PyList_Append(p->anomalies, strings[name]); }

bool has_tcp_gap(Parser *p) {
    Py_ssize_t n = PyList_GET_SIZE(p->anomalies);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyList_GET_ITEM(p->anomalies, i) == strings[S_TCP_GAP]) {
            return true;
        }
    }
    return false;
}

/* ---- finishing a message ------------------------------------------------------------------ */

static PyObject *switch_event(Parser *p, double ts, PyObject *asked, bool confirmed) {
    PyObject *values[SW_FIELDS] = {NULL};
    values[SW_TS] = PyFloat_FromDouble(ts);
    values[SW_FLOW] = Py_NewRef(p->flow);
    if (asked == NULL) {
        values[SW_PROTOCOL] = Py_NewRef(strings[S_UNKNOWN]);
        values[SW_TARGET] = Py_NewRef(strings[S_EMPTY]);
    } else {
        values[SW_PROTOCOL] = PyObject_GetAttr(asked, strings[S_SWITCH_PROTOCOL]);
        values[SW_TARGET] = Py_NewRef(get_slot(asked, p->types->request.offsets[REQ_TARGET]));
    }
    values[SW_CONFIRMED] = Py_NewRef(confirmed ? Py_True : Py_False);
    if (values[SW_TS] == NULL || values[SW_PROTOCOL] == NULL) {
        for (int i = 0; i < SW_FIELDS; i++) {
            Py_XDECREF(values[i]);
        }
        return NULL;
    }
    return make_object(&p->types->protocol_switch, values);
}

static int after_request(Parser *p, PyObject *message) {
    const Types *types = p->types;
    PyObject *headers = get_slot(message, types->request.offsets[MSG_HEADERS]);
    PyObject *version = get_slot(message, types->request.offsets[MSG_VERSION]);
    if (request_method_is(message, types, "CONNECT") || header_value(headers, "upgrade", 7) != NULL ||
        str_equals_ascii(version, "HTTP/2.0")) {
        Py_XSETREF(p->switch_asked, Py_NewRef(message));
    }
    return 0;
}

static int after_response(Parser *p, PyObject *message) {
    const Types *types = p->types;
    PyObject *request = get_slot(message, types->response.offsets[RESP_REQUEST]);
    long status = PyLong_AsLong(get_slot(message, types->response.offsets[RESP_STATUS]));
    if (request != Py_None && request_method_is(request, types, "CONNECT") && status >= 200 && status < 300) {
        /* Plain HTTP through the tunnel is still parsed (a proxy's clients do this); TLS is not. */
        Py_XSETREF(p->switch_asked, Py_NewRef(request));
        p->switch_confirmed = true;
    }
    if (p->state == ST_TUNNEL) {
        double ts = PyFloat_AsDouble(get_slot(message, types->response.offsets[MSG_TS]));
        PyObject *event = switch_event(p, ts, request == Py_None ? NULL : request, true);
        if (event == NULL || queue_push(&p->ready, event) < 0) {
            return -1;
        }
    }
    return 0;
}

/* `_filled`: the head with its body's fields, in place while the parser is its only
 * holder, else a copy. Steals every value. */
PyObject *filled(Parser *p, PyObject *head, PyObject **values, const int *fields, int count) {
    const Kind *kind = p->is_response ? &p->types->response : &p->types->request;
    PyObject *message = p->head_handed_out ? copy_object(kind, head) : Py_NewRef(head);
    if (message == NULL) {
        for (int i = 0; i < count; i++) {
            Py_DECREF(values[i]);
        }
        return NULL;
    }
    for (int i = 0; i < count; i++) {
        replace_slot(message, kind->offsets[fields[i]], values[i]);
    }
    return message;
}

static PyObject *decoded_body(Parser *p, PyObject *body, bool complete) {
    if (!complete || !p->body_kept_whole || PyBytes_GET_SIZE(body) == 0) {
        return Py_NewRef(Py_None);
    }
    PyObject *headers = get_slot(p->head, p->types->request.offsets[MSG_HEADERS]);
    PyObject *coding = header_value(headers, "content-encoding", 16);
    if (coding == NULL) {
        return Py_NewRef(Py_None);
    }
    return PyObject_CallFunctionObjArgs(p->types->decode_body, coding, body, p->types->limits, p->anomalies, NULL);
}

/* http_message._finish: a new reference, or NULL on error. */
static PyObject *finish(Parser *p, bool complete) {
    /* Its index too, in the reference: the one the head got, as p->count changes only here. */
    static const int fields[] = {MSG_BODY, MSG_BODY_LENGTH, MSG_COMPLETE, MSG_ANOMALIES, MSG_DECODED_BODY};
    PyObject *values[5];
    values[0] = PyBytes_FromStringAndSize((const char *)bb_ptr(&p->body), p->body.len);
    if (values[0] == NULL) {
        return NULL;
    }
    values[4] = decoded_body(p, values[0], complete);
    values[1] = PyLong_FromLongLong(p->body_length);
    values[2] = Py_NewRef(complete ? Py_True : Py_False);
    values[3] = untracked(PyList_AsTuple(p->anomalies));
    if (values[1] == NULL || values[3] == NULL || values[4] == NULL) {
        for (int i = 0; i < 5; i++) {
            Py_XDECREF(values[i]);
        }
        return NULL;
    }
    PyObject *message = filled(p, p->head, values, fields, 5);
    if (message == NULL) {
        return NULL;
    }
    p->count++;
    p->last_end_offset = p->received - p->buffer.len;
    Py_CLEAR(p->head);
    bb_clear(&p->body);
    bb_shrink_if_idle(&p->body);
    if (p->state != ST_TUNNEL) {
        p->state = ST_HEAD;
    }
    p->message_ts = p->last_ts; /* what is left in the buffer came with the last data */
    int failed = p->is_response ? after_response(p, message) : after_request(p, message);
    if (failed) {
        Py_DECREF(message);
        return NULL;
    }
    return message;
}

Step finished(Parser *p, bool complete, PyObject **out) {
    *out = finish(p, complete);
    return *out == NULL ? STEP_ERROR : STEP_EVENT;
}

/* finish(False) after naming why, and resynchronise after it. */
Step cut_short(Parser *p, StringId anomaly, PyObject **out) {
    if (append_anomaly(p, anomaly) < 0) {
        return STEP_ERROR;
    }
    p->resyncing = true;
    return finished(p, false, out);
}

/* ---- protocol switches --------------------------------------------------------------------- */

/* `_looks_like_message_start`: 1 yes, 0 no, -1 too short to tell. */
static int looks_like_message_start(Parser *p, const unsigned char *head, Py_ssize_t len) {
    if (p->is_response) {
        if (len >= 5 && memcmp(head, "HTTP/", 5) == 0) {
            return 1;
        }
        return len < 5 && memcmp(head, "HTTP/", (size_t)len) == 0 ? -1 : 0;
    }
    if (len >= 4 && memcmp(head, "PRI ", 4) == 0) {
        return 0; /* RFC 9113 section 3.4: the connection preface starts "PRI * HTTP/2.0" */
    }
    Py_ssize_t i = 0;
    while (i < len && is_tchar(head[i])) {
        i++;
    }
    if (i > 0 && i < len && head[i] == ' ') {
        return 1;
    }
    if ((i == len && len > 0) || (len < 4 && memcmp(head, "PRI ", (size_t)len) == 0)) {
        return -1;
    }
    return 0;
}

/* `_pending_event`: after CONNECT/Upgrade, another message means HTTP/1 goes on; anything
 * else is the new protocol. STEP_NONE when there is nothing to say. */
static Step pending_event(Parser *p, PyObject **out) {
    PyObject *asked = p->switch_asked;
    if (asked == NULL) {
        return STEP_NONE;
    }
    PyObject *version = get_slot(asked, p->types->request.offsets[MSG_VERSION]);
    if (!str_equals_ascii(version, "HTTP/2.0")) {
        const unsigned char *head = bb_ptr(&p->buffer);
        Py_ssize_t len = p->buffer.len < 64 ? p->buffer.len : 64;
        while (len > 0 && (head[0] == '\r' || head[0] == '\n')) {
            head++;
            len--;
        }
        if (len == 0) {
            return STEP_NONE;
        }
        int verdict = looks_like_message_start(p, head, len);
        if (verdict < 0 && p->buffer.len <= p->max_head_bytes) {
            return STEP_NEED_DATA; /* undecided, but no longer than a head may be long */
        }
        if (verdict > 0) {
            Py_CLEAR(p->switch_asked);
            return STEP_NONE;
        }
    }
    bool confirmed = p->switch_confirmed;
    Py_INCREF(asked);
    parser_switch_protocol(p);
    *out = switch_event(p, p->last_ts, asked, confirmed);
    Py_DECREF(asked);
    return *out == NULL ? STEP_ERROR : STEP_EVENT;
}

/* ---- the machine ------------------------------------------------------------------------------ */

static Step step(Parser *p, PyObject **out) {
    switch (p->state) {
        case ST_HEAD: {
            Step pending = pending_event(p, out);
            return pending != STEP_NONE ? pending : parse_head(p, out);
        }
        case ST_BODY:
            return read_body(p, out);
        case ST_CHUNK_SIZE:
            return read_chunk_size(p, out);
        case ST_CHUNK_DATA:
            return read_chunk_data(p);
        case ST_CHUNK_DATA_END:
            return read_chunk_data_end(p, out);
        case ST_TRAILERS:
            return read_trailers(p, out);
        case ST_UNTIL_CLOSE:
            return take_body(p, p->buffer.len) < 0 ? STEP_ERROR : STEP_NEED_DATA;
        case ST_TUNNEL:
            break;
    }
    p->tunnel_bytes += p->buffer.len;
    bb_clear(&p->buffer);
    return STEP_NEED_DATA;
}

Step parser_next_event(Parser *p, PyObject **event) {
    if (p->ready.count) {
        *event = queue_pop(&p->ready);
        return STEP_EVENT;
    }
    if (p->buffer.len == 0 && p->state != ST_TRAILERS && p->switch_asked == NULL) {
        bb_shrink_if_idle(&p->buffer);
        return STEP_NEED_DATA; /* the common case: everything received was consumed */
    }
    while (true) {
        Step result = step(p, event);
        if (result != STEP_NONE) {
            return result;
        }
    }
}

static int drain_into_ready(Parser *p) {
    while (true) {
        PyObject *event = NULL;
        Step result = step(p, &event);
        if (result == STEP_ERROR) {
            return -1;
        }
        if (result == STEP_NEED_DATA) {
            return 0;
        }
        if (result == STEP_EVENT && queue_push(&p->ready, event) < 0) {
            return -1;
        }
    }
}

/* ---- losing bytes ------------------------------------------------------------------------------ */

/* `_gap_between_messages`: a gap with no message in progress, or inside a head. */
static int gap_between_messages(Parser *p, long long size) {
    PyObject *partial = partial_head(p);
    if (partial == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (partial != NULL) {
        Py_XSETREF(p->head, partial);
        p->body_length = 0;
        if (append_anomaly(p, S_TCP_GAP) < 0) {
            return -1;
        }
        PyObject *message = finish(p, false);
        if (message == NULL || queue_push(&p->ready, message) < 0) {
            return -1;
        }
    }
    Py_ssize_t lost = p->buffer.len;
    bb_clear(&p->buffer);
    PyObject *detail = lost ? PyUnicode_FromFormat("%lld bytes missing, %zd bytes of a message head dropped", size, lost)
                            : PyUnicode_FromFormat("%lld bytes missing", size);
    if (detail == NULL) {
        return -1;
    }
    PyObject *anomaly = new_anomaly(p, strings[S_TCP_GAP], detail);
    if (anomaly == NULL || queue_push(&p->ready, anomaly) < 0) {
        return -1;
    }
    p->resyncing = true;
    return 0;
}

int parser_receive_gap(Parser *p, long long size, double ts) {
    if (p->is_response) {
        p->after_gap = true;
        p->has_ack = false; /* what was acknowledged before the gap says nothing of what follows */
    }
    if (drain_into_ready(p) < 0) {
        return -1;
    }
    p->received += size;
    p->last_ts = ts;
    if (p->state == ST_TUNNEL) {
        p->tunnel_bytes += size;
        return 0;
    }
    if (p->head == NULL) {
        return gap_between_messages(p, size);
    }
    if (p->state == ST_BODY && size < p->remaining) {
        p->remaining -= size;
        return count_lost_body(p, size);
    }
    if (p->state == ST_UNTIL_CLOSE) {
        return count_lost_body(p, size);
    }
    p->body_length += p->state == ST_BODY ? p->remaining : size;
    if (append_anomaly(p, S_TCP_GAP) < 0) {
        return -1;
    }
    PyObject *message = finish(p, false);
    if (message == NULL || queue_push(&p->ready, message) < 0) {
        return -1;
    }
    p->resyncing = true; /* what follows the gap starts anywhere */
    return 0;
}

/* `take_queued`, one at a time: an event queued and not handed out (a new reference), or NULL. */
PyObject *parser_take_queued(Parser *p) {
    return p->ready.count ? queue_pop(&p->ready) : NULL;
}

int parser_close(Parser *p, PyObject **message) {
    *message = NULL;
    if (p->head == NULL) {
        return 0;
    }
    if (p->state == ST_UNTIL_CLOSE) {
        *message = finish(p, !has_tcp_gap(p));
    } else {
        if (append_anomaly(p, S_MESSAGE_INCOMPLETE) < 0) {
            return -1;
        }
        *message = finish(p, false);
    }
    return *message == NULL ? -1 : 0;
}
