/* Heads of HTTP/1.x messages (reassembly/http_message.py `_parse_head`, `_partial_head`,
 * `_resync`, `_content_length_framing`, and the start lines of http_request.py and
 * http_response.py, response pairing included): bytes of a head in, a message object out.
 * The object is the event itself, built once with the head's fields; the body's fields are
 * filled in when it ends (_fasttrack_http.c). */

#include "_fasttrack_http.h"

PyObject *new_anomaly(Parser *p, PyObject *name, PyObject *detail) {
    PyObject *values[ANOM_FIELDS];
    values[ANOM_TS] = PyFloat_FromDouble(p->last_ts);
    if (values[ANOM_TS] == NULL) {
        Py_DECREF(detail);
        return NULL;
    }
    Py_INCREF(p->flow);
    values[ANOM_FLOW] = p->flow;
    Py_INCREF(name);
    values[ANOM_NAME] = name;
    values[ANOM_DETAIL] = detail;
    return make_object(&p->types->anomaly, values);
}

/* The request line read as a start line: None (false) when it is none, or, after garbage or
 * a gap, when it is not unmistakable (a method and a well-formed version; spaces in the
 * target still count). */
static bool request_line(Parser *p, const unsigned char *line, Py_ssize_t len, RequestLine *parsed) {
    if (!split_request_line(line, len, parsed)) {
        return false;
    }
    return !(p->resyncing && (parsed->version == NULL || parsed->invalid_version || parsed->missing_target));
}

bool is_start_line(Parser *p, const unsigned char *line, Py_ssize_t len) {
    if (p->is_response) {
        StatusLine status;
        return match_status_line(line, len, &status);
    }
    RequestLine parsed;
    return request_line(p, line, len, &parsed);
}

static PyObject *new_message(Parser *p, const Kind *kind, PyObject **values) {
    values[MSG_TS] = PyFloat_FromDouble(p->message_ts);
    values[MSG_HEADERS] = PyTuple_New(0);
    values[MSG_BODY] = PyBytes_FromStringAndSize(NULL, 0);
    values[MSG_BODY_LENGTH] = PyLong_FromLong(0);
    values[MSG_COMPLETE] = Py_NewRef(Py_True);
    values[MSG_ANOMALIES] = PyTuple_New(0);
    values[MSG_DECODED_BODY] = Py_NewRef(Py_None);
    values[MSG_INDEX] = PyLong_FromLongLong(p->count);
    values[MSG_FLOW] = Py_NewRef(p->flow);
    for (int i = 0; i < kind->count; i++) {
        if (values[i] == NULL) {
            for (int j = 0; j < kind->count; j++) {
                Py_XDECREF(values[j]);
            }
            return NULL;
        }
    }
    return make_object(kind, values);
}

/* An empty list for a new message's anomalies: the last message's, emptied, when the parser
 * is its only holder (its names went into that message's tuple when it finished), else new. */
static PyObject *fresh_anomalies(Parser *p) {
    PyObject *list = p->anomalies;
    if (list == NULL || Py_REFCNT(list) != 1) {
        return PyList_New(0);
    }
    if (PyList_GET_SIZE(list) > 0 && PyList_SetSlice(list, 0, PyList_GET_SIZE(list), NULL) < 0) {
        return NULL;
    }
    return Py_NewRef(list);
}

static PyObject *parse_request_start(Parser *p, const unsigned char *line, Py_ssize_t len) {
    RequestLine parsed;
    if (!request_line(p, line, len, &parsed)) {
        return Py_NewRef(Py_None);
    }
    PyObject *anomalies = fresh_anomalies(p);
    if (anomalies == NULL) {
        return NULL;
    }
    int failed = 0;
    if (parsed.invalid_version) {
        failed |= PyList_Append(anomalies, strings[S_INVALID_HTTP_VERSION]);
    } else if (parsed.http09) {
        failed |= PyList_Append(anomalies, strings[S_HTTP09_REQUEST_LINE]);
    }
    if (parsed.missing_target) {
        failed |= PyList_Append(anomalies, strings[S_MISSING_TARGET]);
    } else if (parsed.space_in_target) {
        failed |= PyList_Append(anomalies, strings[S_SPACE_IN_TARGET]);
    }
    PyObject *values[REQ_FIELDS] = {NULL};
    values[REQ_METHOD] = latin1(parsed.method, parsed.method_len);
    values[REQ_TARGET] = PyUnicode_DecodeLatin1((const char *)parsed.target, parsed.target_len, NULL);
    values[MSG_VERSION] = parsed.version ? latin1(parsed.version, parsed.version_len) : Py_NewRef(strings[S_HTTP09]);
    PyObject *message = new_message(p, &p->types->request, values);
    if (message == NULL || failed) {
        Py_XDECREF(message);
        Py_DECREF(anomalies);
        return NULL;
    }
    Py_XSETREF(p->anomalies, anomalies);
    return message;
}

/* http_response._answers_an_unseen_request */
static bool answers_an_unseen_request(Parser *p) {
    Unanswered *oldest = &p->unanswered[p->un_head];
    if (!p->has_ack || !oldest->has_end_seq) {
        return false;
    }
    uint32_t ahead = oldest->end_seq - p->ack;
    return ahead > 0 && ahead < (1u << 31);
}

void unanswered_pop(Parser *p) {
    Py_DECREF(p->unanswered[p->un_head].request);
    p->un_head = (p->un_head + 1) % p->un_cap;
    p->un_count--;
}

/* http_response._skip_requests_answered_in_a_gap */
static void skip_requests_answered_in_a_gap(Parser *p) {
    p->after_gap = false;
    while (p->un_count > 1) {
        Unanswered *next = &p->unanswered[(p->un_head + 1) % p->un_cap];
        bool answered_later;
        if (p->has_ack && next->has_end_seq) {
            uint32_t ahead = next->end_seq - p->ack;
            answered_later = !(ahead > 0 && ahead < (1u << 31));
        } else {
            answered_later = next->completed_at <= p->message_ts;
        }
        if (!answered_later) {
            break;
        }
        unanswered_pop(p);
        p->requests_unanswered_after_gap++;
    }
}

static PyObject *parse_status_start(Parser *p, const unsigned char *line, Py_ssize_t len) {
    StatusLine parsed;
    if (!match_status_line(line, len, &parsed)) {
        return Py_NewRef(Py_None);
    }
    bool informational = parsed.status >= 100 && parsed.status < 200 && parsed.status != 101;
    if (p->after_gap && !informational) {
        skip_requests_answered_in_a_gap(p);
    }
    PyObject *anomalies = fresh_anomalies(p);
    if (anomalies == NULL) {
        return NULL;
    }
    PyObject *request = Py_None;
    int failed = 0;
    if (p->un_count == 0) {
        request = Py_None;
    } else if (answers_an_unseen_request(p)) {
        failed |= PyList_Append(anomalies, strings[S_RESPONSE_TO_UNSEEN_REQUEST]);
    } else {
        request = p->unanswered[p->un_head].request;
    }
    Py_INCREF(request);
    if (request != Py_None && !informational) {
        unanswered_pop(p);
    }
    if (request == Py_None && !informational && PyList_GET_SIZE(anomalies) == 0) {
        failed |= PyList_Append(anomalies, strings[S_RESPONSE_WITHOUT_REQUEST]);
    }
    PyObject *values[RESP_FIELDS] = {NULL};
    values[RESP_STATUS] = PyLong_FromLong(parsed.status);
    values[RESP_REASON] = latin1(parsed.reason, parsed.reason_len);
    values[RESP_REQUEST] = request;
    values[MSG_VERSION] = latin1(parsed.version, 8);
    PyObject *message = new_message(p, &p->types->response, values);
    if (message == NULL || failed) {
        Py_XDECREF(message);
        Py_DECREF(anomalies);
        return NULL;
    }
    Py_XSETREF(p->anomalies, anomalies);
    return message;
}

/* `_parse_start_line`: the message (its head fields but headers still empty) with
 * p->anomalies set to the line's, None when the line is no start line, NULL on error. */
PyObject *parse_start_line(Parser *p, const unsigned char *line, Py_ssize_t len) {
    if (len > 0 && line[len - 1] == '\r') {
        len--;
    }
    return p->is_response ? parse_status_start(p, line, len) : parse_request_start(p, line, len);
}

static PyObject *shortened_repr(const unsigned char *line, Py_ssize_t len) {
    PyObject *data = len <= 40 ? PyBytes_FromStringAndSize((const char *)line, len) : NULL;
    if (len > 40) {
        data = PyBytes_FromStringAndSize(NULL, 43);
        if (data != NULL) {
            memcpy(PyBytes_AS_STRING(data), line, 40);
            memcpy(PyBytes_AS_STRING(data) + 40, "...", 3);
        }
    }
    if (data == NULL) {
        return NULL;
    }
    PyObject *text = PyObject_Repr(data);
    Py_DECREF(data);
    return text;
}

/* http_message._discard: `detail` (a str or NULL for none) is stolen. */
Step discard(Parser *p, PyObject *name, Py_ssize_t count, PyObject *detail, PyObject **out) {
    bb_consume(&p->buffer, count);
    p->message_ts = p->last_ts;
    PyObject *text = detail == NULL ? PyUnicode_FromFormat("%zd bytes discarded", count)
                                    : PyUnicode_FromFormat("%zd bytes discarded%U", count, detail);
    Py_XDECREF(detail);
    if (text == NULL) {
        return STEP_ERROR;
    }
    *out = new_anomaly(p, name, text);
    return *out == NULL ? STEP_ERROR : STEP_EVENT;
}

/* http_message._resync: skip bytes that start no message, up to the next line that does. */
static Step resync(Parser *p, const unsigned char *bad_line, Py_ssize_t bad_len, PyObject **out) {
    const unsigned char *buf = bb_ptr(&p->buffer);
    Py_ssize_t len = p->buffer.len;
    Py_ssize_t found = p->is_response ? find_response_resync(buf, len) : find_request_resync(buf, len);
    Py_ssize_t count;
    if (found < 0) {
        count = len;
        while (count > 0 && buf[count - 1] != '\n') {
            count--;
        }
        if (count == 0) {
            if (len <= p->max_head_bytes) {
                return STEP_NEED_DATA;
            }
            count = len;
        }
    } else {
        count = found;
    }
    PyObject *shown = shortened_repr(bad_line, bad_len);
    PyObject *detail = shown == NULL ? NULL : PyUnicode_FromFormat(", starting %U", shown);
    Py_XDECREF(shown);
    if (detail == NULL) {
        return STEP_ERROR;
    }
    PyObject *name = strings[p->is_response ? S_GARBAGE_BEFORE_RESPONSE : S_GARBAGE_BEFORE_REQUEST];
    return discard(p, name, count, detail, out);
}

/* `message`'s headers, as `_fill` does; its ts and index, which `_fill` sets too, are the
 * ones new_message gave it (neither message_ts nor count changes in between). */
static int fill_head(Parser *p, PyObject *message, PyObject *headers) {
    replace_slot(message, p->types->request.offsets[MSG_HEADERS], headers);
    return 0;
}

/* http_message._parse_head */
Step parse_head(Parser *p, PyObject **out) {
    ByteBuf *b = &p->buffer;
    Py_ssize_t skip = 0;
    const unsigned char *buf = bb_ptr(b);
    while (skip < b->len && (buf[skip] == '\n' || (buf[skip] == '\r' && skip + 1 < b->len && buf[skip + 1] == '\n'))) {
        skip += buf[skip] == '\n' ? 1 : 2; /* RFC 9112 section 2.2: ignore empty lines */
    }
    bb_consume(b, skip);
    buf = bb_ptr(b);
    if (p->resyncing && b->len > 0) {
        const unsigned char *nl = memchr(buf, '\n', (size_t)b->len);
        if (nl != NULL) {
            Py_ssize_t line_len = nl - buf;
            Py_ssize_t bare = line_len > 0 && buf[line_len - 1] == '\r' ? line_len - 1 : line_len;
            if (!is_start_line(p, buf, bare)) {
                return resync(p, buf, line_len, out);
            }
        }
    }
    Py_ssize_t head_len, head_end;
    bool bare_lf;
    if (!find_head_end(buf, b->len, &head_len, &head_end, &bare_lf)) {
        if (b->len > p->max_head_bytes) {
            return discard(p, strings[S_HEADER_TOO_LONG], b->len, NULL, out);
        }
        return STEP_NEED_DATA;
    }
    const unsigned char *first_nl = memchr(buf, '\n', (size_t)head_len);
    Py_ssize_t first_len = first_nl == NULL ? head_len : first_nl - buf;
    PyObject *message = parse_start_line(p, buf, first_len);
    if (message == NULL) {
        return STEP_ERROR;
    }
    if (message == Py_None) {
        Py_DECREF(message);
        return resync(p, buf, first_len, out);
    }
    p->resyncing = false;
    if (bare_lf && PyList_Append(p->anomalies, strings[S_BARE_LF]) < 0) {
        Py_DECREF(message);
        return STEP_ERROR;
    }
    PyObject *headers = first_nl == NULL ? PyTuple_New(0)
                                         : parse_header_lines(first_nl + 1, buf + head_len - first_nl - 1, false,
                                                              p->anomalies);
    bb_consume(b, head_end);
    if (headers == NULL || fill_head(p, message, headers) < 0) {
        Py_DECREF(message);
        return STEP_ERROR;
    }
    return start_body(p, message, out);
}

/* http_message._partial_head: a head cut by a gap after its start line, with the fields
 * that did arrive; NULL with no error when there is none. */
PyObject *partial_head(Parser *p) {
    const unsigned char *buf = bb_ptr(&p->buffer);
    Py_ssize_t len = p->buffer.len, start = 0;
    while (start < len && (buf[start] == '\r' || buf[start] == '\n')) {
        start++;
    }
    const unsigned char *first_nl = memchr(buf + start, '\n', (size_t)(len - start));
    if (first_nl == NULL) {
        return NULL;
    }
    PyObject *message = parse_start_line(p, buf + start, first_nl - (buf + start));
    if (message == NULL || message == Py_None) {
        Py_XDECREF(message);
        return NULL;
    }
    PyObject *headers = parse_header_lines(first_nl + 1, buf + len - first_nl - 1, true, p->anomalies);
    bb_clear(&p->buffer);
    if (headers == NULL || fill_head(p, message, headers) < 0) {
        Py_DECREF(message);
        return NULL;
    }
    return message;
}

/* ---- framing (RFC 9112 section 6.3) ------------------------------------------------- */

static void str_strip(const unsigned char **p, Py_ssize_t *len) {
    while (*len > 0 && is_str_space((*p)[0])) {
        (*p)++;
        (*len)--;
    }
    while (*len > 0 && is_str_space((*p)[*len - 1])) {
        (*len)--;
    }
}

static bool equals_lower(const unsigned char *p, Py_ssize_t len, const char *word) {
    Py_ssize_t n = (Py_ssize_t)strlen(word);
    if (len != n) {
        return false;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((unsigned char)Py_TOLOWER(p[i]) != (unsigned char)word[i]) {
            return false;
        }
    }
    return true;
}

/* Inline, the length first: most fields of a head are neither name asked for. */
static inline bool is_field(PyObject *field, const char *name, Py_ssize_t name_len) {
    PyObject *key = PyTuple_GET_ITEM(field, 0);
    return PyUnicode_GET_LENGTH(key) == name_len && PyUnicode_KIND(key) == PyUnicode_1BYTE_KIND &&
           equals_lower(PyUnicode_1BYTE_DATA(key), name_len, name);
}

static const unsigned char *text_of(PyObject *value, Py_ssize_t *len) {
    *len = PyUnicode_GET_LENGTH(value);
    return PyUnicode_1BYTE_DATA(value);
}

/* The value's last comma-separated coding is "chunked" (codings[-1] == "chunked"). */
static bool ends_chunked(PyObject *value) {
    Py_ssize_t len;
    const unsigned char *text = text_of(value, &len);
    Py_ssize_t start = len;
    while (start > 0 && text[start - 1] != ',') {
        start--;
    }
    const unsigned char *coding = text + start;
    Py_ssize_t coding_len = len - start;
    str_strip(&coding, &coding_len);
    return equals_lower(coding, coding_len, "chunked");
}

/* `int(first)` where first = the first value's text before any comma, stripped, when it is
 * digits (at most 18 of them, past leading zeros); -1 otherwise. */
static long long content_length_value(PyObject *value) {
    Py_ssize_t len;
    const unsigned char *text = text_of(value, &len);
    const unsigned char *comma = memchr(text, ',', (size_t)len);
    if (comma != NULL) {
        len = comma - text;
    }
    str_strip(&text, &len);
    if (len == 0) {
        return -1;
    }
    long long number = 0;
    int significant = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return -1;
        }
        significant += significant > 0 || text[i] != '0';
        if (significant > MAX_LENGTH_DIGITS) {
            return -1;
        }
        number = number * 10 + (text[i] - '0');
    }
    return number;
}

static bool same_stripped(PyObject *a, PyObject *b) {
    Py_ssize_t la, lb;
    const unsigned char *ta = text_of(a, &la), *tb = text_of(b, &lb);
    str_strip(&ta, &la);
    str_strip(&tb, &lb);
    return la == lb && memcmp(ta, tb, (size_t)la) == 0;
}

/* http_message._content_length_framing: a length, FRAMING_CHUNKED, or FRAMING_NONE; -2 on error. */
long long content_length_framing(Parser *p, PyObject *headers) {
    PyObject *last_te = NULL, *first_cl = NULL;
    bool multiple = false;
    Py_ssize_t n = PyTuple_GET_SIZE(headers);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *field = PyTuple_GET_ITEM(headers, i);
        if (is_field(field, "transfer-encoding", 17)) {
            last_te = PyTuple_GET_ITEM(field, 1);
        } else if (is_field(field, "content-length", 14)) {
            PyObject *value = PyTuple_GET_ITEM(field, 1);
            if (first_cl == NULL) {
                first_cl = value;
            } else if (!same_stripped(first_cl, value)) {
                multiple = true;
            }
        }
    }
    if (last_te != NULL) {
        if (first_cl != NULL && PyList_Append(p->anomalies, strings[S_CONTENT_LENGTH_AND_CHUNKED]) < 0) {
            return -2;
        }
        if (ends_chunked(last_te)) { /* RFC 9112 section 6.3 rule 4 */
            return FRAMING_CHUNKED;
        }
        return PyList_Append(p->anomalies, strings[S_UNKNOWN_TRANSFER_ENCODING]) < 0 ? -2 : FRAMING_NONE;
    }
    if (first_cl == NULL) {
        return FRAMING_NONE;
    }
    Py_ssize_t len;
    const unsigned char *text = text_of(first_cl, &len);
    if ((multiple || memchr(text, ',', (size_t)len) != NULL) &&
        PyList_Append(p->anomalies, strings[S_MULTIPLE_CONTENT_LENGTH]) < 0) {
        return -2;
    }
    long long length = content_length_value(first_cl);
    if (length < 0) {
        return PyList_Append(p->anomalies, strings[S_INVALID_CONTENT_LENGTH]) < 0 ? -2 : FRAMING_NONE;
    }
    return length;
}

static bool method_is(PyObject *request, const Types *types, const char *method) {
    PyObject *value = get_slot(request, types->request.offsets[REQ_METHOD]);
    return PyUnicode_Check(value) && str_equals_ascii(value, method);
}

bool request_method_is(PyObject *request, const Types *types, const char *method) {
    return method_is(request, types, method);
}

/* `_body_framing` of a request or response head; -2 on error. */
long long body_framing(Parser *p, PyObject *message) {
    PyObject *headers = get_slot(message, p->types->request.offsets[MSG_HEADERS]);
    if (!p->is_response) {
        long long framing = content_length_framing(p, headers);
        return framing == FRAMING_NONE ? 0 : framing; /* RFC 9112 section 6.3 rule 7 */
    }
    const Types *types = p->types;
    PyObject *request = get_slot(message, types->response.offsets[RESP_REQUEST]);
    long status = PyLong_AsLong(get_slot(message, types->response.offsets[RESP_STATUS]));
    bool has_request = request != Py_None;
    if (status == 101) {
        return FRAMING_TUNNEL;
    }
    if (has_request && method_is(request, types, "CONNECT") && status >= 200 && status < 300) {
        return 0;
    }
    if ((has_request && method_is(request, types, "HEAD")) || (status >= 100 && status < 200) || status == 204 ||
        status == 304) {
        return 0;
    }
    long long framing = content_length_framing(p, headers);
    return framing == FRAMING_NONE ? FRAMING_UNTIL_CLOSE : framing;
}
