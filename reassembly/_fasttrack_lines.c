/* Lines of HTTP/1.x (RFC 9112): start lines, the end of a head, header fields, and where to
 * pick up again after garbage. Each function is the exact equivalent of a regular
 * expression or a bytes operation of reassembly/http_*.py and connections.py, named in
 * its comment; the patterns have no ambiguity left once written out, so no backtracking. */

#include "_fasttrack.h"

/* RFC 9110 section 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 * "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        return true;
    }
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool is_ascii_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

bool is_str_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0;
}

static inline bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* _VERSION.fullmatch: HTTP/\d\.\d */
static bool is_version(const unsigned char *p, Py_ssize_t len) {
    return len == 8 && memcmp(p, "HTTP/", 5) == 0 && is_digit(p[5]) && p[6] == '.' && is_digit(p[7]);
}

/* http_request.split_request_line */
bool split_request_line(const unsigned char *line, Py_ssize_t len, RequestLine *out) {
    memset(out, 0, sizeof(*out));
    Py_ssize_t method_end = 0;
    while (method_end < len && is_tchar(line[method_end])) {
        method_end++;
    }
    if (method_end == 0 || (method_end < len && line[method_end] != ' ')) {
        return false;
    }
    out->method = line;
    out->method_len = method_end;
    Py_ssize_t start = method_end, end = len; /* rest.strip(b" ") */
    while (start < end && line[start] == ' ') {
        start++;
    }
    while (end > start && line[end - 1] == ' ') {
        end--;
    }
    Py_ssize_t space = end - 1; /* rest.rpartition(b" ") */
    while (space >= start && line[space] != ' ') {
        space--;
    }
    if (space >= start && end - (space + 1) >= 4 && memcmp(line + space + 1, "HTTP", 4) == 0) {
        out->version = line + space + 1;
        out->version_len = end - (space + 1);
        out->invalid_version = !is_version(out->version, out->version_len);
        end = space;
        while (end > start && line[end - 1] == ' ') {
            end--;
        }
    } else {
        /* _HTTP09_METHOD.fullmatch: [A-Z][A-Z0-9_-]* */
        bool http09 = line[0] >= 'A' && line[0] <= 'Z';
        for (Py_ssize_t i = 1; http09 && i < method_end; i++) {
            unsigned char c = line[i];
            http09 = (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '-';
        }
        if (!http09) {
            return false;
        }
        out->http09 = true;
    }
    out->target = line + start;
    out->target_len = end - start;
    if (out->target_len == 0) {
        out->missing_target = true;
    } else {
        out->space_in_target = memchr(out->target, ' ', (size_t)out->target_len) != NULL;
    }
    return true;
}

/* http_response._STATUS_LINE.fullmatch: (HTTP/\d\.\d) +(\d{3})(?: (.*))? with DOTALL */
bool match_status_line(const unsigned char *line, Py_ssize_t len, StatusLine *out) {
    if (len < 8 || !is_version(line, 8)) {
        return false;
    }
    Py_ssize_t i = 8;
    if (i >= len || line[i] != ' ') {
        return false;
    }
    while (i < len && line[i] == ' ') {
        i++;
    }
    if (len - i < 3 || !is_digit(line[i]) || !is_digit(line[i + 1]) || !is_digit(line[i + 2])) {
        return false;
    }
    out->version = line;
    out->status = (line[i] - '0') * 100 + (line[i + 1] - '0') * 10 + (line[i + 2] - '0');
    i += 3;
    if (i == len) {
        out->reason = line + i;
        out->reason_len = 0;
        return true;
    }
    if (line[i] != ' ') {
        return false;
    }
    out->reason = line + i + 1;
    out->reason_len = len - i - 1;
    return true;
}

/* http_message._HEAD_END.search: \r?\n\r?\n, leftmost. `*bare_lf`: whether a line of the
 * head before it, or the terminator itself, ends in a bare "\n" (every newline of the head is
 * met on the way, so the head need not be walked again for it). */
bool find_head_end(const unsigned char *buf, Py_ssize_t len, Py_ssize_t *start, Py_ssize_t *end, bool *bare_lf) {
    const unsigned char *p = buf, *stop = buf + len;
    bool bare = false;
    while (p < stop) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(stop - p));
        if (nl == NULL) {
            return false;
        }
        Py_ssize_t at = nl - buf;
        bool after_cr = at > 0 && buf[at - 1] == '\r';
        Py_ssize_t begin = after_cr ? at - 1 : at;
        if (at + 1 < len && buf[at + 1] == '\n') {
            *start = begin;
            *end = at + 2;
            *bare_lf = true; /* the terminator is not \r\n\r\n */
            return true;
        }
        if (at + 2 < len && buf[at + 1] == '\r' && buf[at + 2] == '\n') {
            *start = begin;
            *end = at + 3;
            *bare_lf = bare || !after_cr;
            return true;
        }
        bare |= !after_cr;
        p = nl + 1;
    }
    return false;
}

/* At `i`: " " [^\r\n ]+ " HTTP/" \d "." \d "\r"? followed by the end or "\n" (the tail of
 * http_request._RESYNC_POINT, with `$` in multi-line mode). */
static bool request_line_tail(const unsigned char *buf, Py_ssize_t len, Py_ssize_t i) {
    if (i >= len || buf[i] != ' ') {
        return false;
    }
    Py_ssize_t j = i + 1;
    while (j < len && buf[j] != '\r' && buf[j] != '\n' && buf[j] != ' ') {
        j++;
    }
    if (j == i + 1 || len - j < 9 || buf[j] != ' ' || !is_version(buf + j + 1, 8)) {
        return false;
    }
    j += 9;
    if (j == len || buf[j] == '\n') {
        return true;
    }
    return buf[j] == '\r' && (j + 1 == len || buf[j + 1] == '\n');
}

static const char *const registered_methods[] = {"GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "CONNECT",
                                                 "TRACE"};

/* http_request._RESYNC_POINT.search(buffer, 1): a request line at a line start, or one with a
 * registered method anywhere. */
Py_ssize_t find_request_resync(const unsigned char *buf, Py_ssize_t len) {
    for (Py_ssize_t i = 1; i < len; i++) {
        if (buf[i - 1] == '\n' && is_tchar(buf[i])) {
            Py_ssize_t j = i;
            while (j < len && is_tchar(buf[j])) {
                j++;
            }
            if (request_line_tail(buf, len, j)) {
                return i;
            }
        }
        if (strchr("GPHDOCT", buf[i]) == NULL || buf[i] == 0) {
            continue;
        }
        for (size_t m = 0; m < sizeof(registered_methods) / sizeof(*registered_methods); m++) {
            Py_ssize_t n = (Py_ssize_t)strlen(registered_methods[m]);
            if (len - i >= n && memcmp(buf + i, registered_methods[m], (size_t)n) == 0 &&
                request_line_tail(buf, len, i + n)) {
                return i;
            }
        }
    }
    return -1;
}

/* http_response._RESYNC_POINT.search(buffer, 1): HTTP/\d\.\d \d{3}[^\r\n]*\r?\n anywhere. */
Py_ssize_t find_response_resync(const unsigned char *buf, Py_ssize_t len) {
    for (Py_ssize_t i = 1; i + 13 <= len; i++) {
        const unsigned char *found = memchr(buf + i, 'H', (size_t)(len - i));
        if (found == NULL) {
            return -1;
        }
        i = found - buf;
        if (len - i < 13 || !is_version(buf + i, 8) || buf[i + 8] != ' ' || !is_digit(buf[i + 9]) ||
            !is_digit(buf[i + 10]) || !is_digit(buf[i + 11])) {
            continue;
        }
        Py_ssize_t j = i + 12;
        while (j < len && buf[j] != '\r' && buf[j] != '\n') {
            j++;
        }
        if (j < len && (buf[j] == '\n' || (j + 1 < len && buf[j + 1] == '\n'))) {
            return i;
        }
    }
    return -1;
}

/* connections._LOOKS_LIKE_REQUEST.match: [tchar]+ " " [^\r\n]* " HTTP/" \d "." \d "\r"? "\n" */
bool looks_like_request(const unsigned char *buf, Py_ssize_t len) {
    Py_ssize_t i = 0;
    while (i < len && is_tchar(buf[i])) {
        i++;
    }
    if (i == 0 || i >= len || buf[i] != ' ') {
        return false;
    }
    Py_ssize_t from = i + 1, end = from;
    while (end < len && buf[end] != '\r' && buf[end] != '\n') {
        end++;
    }
    /* [^\r\n]* gives back until " HTTP/d.d" ends right at the line end. */
    if (end >= len || end - 9 < from || buf[end - 9] != ' ' || !is_version(buf + end - 8, 8)) {
        return false;
    }
    return buf[end] == '\n' || (end + 1 < len && buf[end + 1] == '\n');
}

/* connections._LOOKS_LIKE_RESPONSE.match: HTTP/\d\.\d \d{3} */
bool looks_like_response(const unsigned char *buf, Py_ssize_t len) {
    return len >= 12 && is_version(buf, 8) && buf[8] == ' ' && is_digit(buf[9]) && is_digit(buf[10]) &&
           is_digit(buf[11]);
}

PyObject *header_value(PyObject *headers, const char *name, Py_ssize_t name_len) {
    Py_ssize_t n = PyTuple_GET_SIZE(headers);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *field = PyTuple_GET_ITEM(headers, i);
        PyObject *key = PyTuple_GET_ITEM(field, 0);
        if (PyUnicode_GET_LENGTH(key) != name_len || PyUnicode_KIND(key) != PyUnicode_1BYTE_KIND) {
            continue;
        }
        const unsigned char *k = PyUnicode_1BYTE_DATA(key);
        Py_ssize_t j = 0;
        while (j < name_len && (unsigned char)Py_TOLOWER(k[j]) == (unsigned char)name[j]) {
            j++;
        }
        if (j == name_len) {
            return PyTuple_GET_ITEM(field, 1);
        }
    }
    return NULL;
}

/* Short texts recur in every message (field names, "HTTP/1.1", "GET", a Host, a server's
 * name): each is decoded once and shared, from a direct-mapped cache of fixed size (str is
 * immutable, so sharing is invisible). */
#define TEXT_CACHE_SIZE 1024
#define TEXT_CACHE_LONGEST 24

typedef struct {
    unsigned char length;
    unsigned char bytes[TEXT_CACHE_LONGEST];
    PyObject *text;
} CachedText;

static CachedText text_cache[TEXT_CACHE_SIZE];

PyObject *latin1(const unsigned char *p, Py_ssize_t len) {
    if (len == 0 || len > TEXT_CACHE_LONGEST) {
        return PyUnicode_DecodeLatin1((const char *)p, len, NULL);
    }
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < len; i++) {
        h = (h ^ p[i]) * 16777619u; /* FNV-1a */
    }
    CachedText *entry = &text_cache[h % TEXT_CACHE_SIZE];
    if (entry->text != NULL && entry->length == len && memcmp(entry->bytes, p, (size_t)len) == 0) {
        return Py_NewRef(entry->text);
    }
    PyObject *text = PyUnicode_DecodeLatin1((const char *)p, len, NULL);
    if (text != NULL) {
        Py_XSETREF(entry->text, Py_NewRef(text));
        entry->length = (unsigned char)len;
        memcpy(entry->bytes, p, (size_t)len);
    }
    return text;
}

/* The fields of one head while they are read: a tuple is built once their number is known
 * (no list grown and copied). Heads of up to FIELDS_ON_STACK fields need no allocation. */
#define FIELDS_ON_STACK 64

typedef struct {
    PyObject **items;
    Py_ssize_t count, cap;
    PyObject *on_stack[FIELDS_ON_STACK];
} Fields;

static int fields_push(Fields *f, PyObject *field) {
    if (f->count == f->cap) {
        Py_ssize_t cap = f->cap * 2;
        PyObject **grown = PyMem_Malloc((size_t)cap * sizeof(PyObject *));
        if (grown == NULL) {
            Py_DECREF(field);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(grown, f->items, (size_t)f->count * sizeof(PyObject *));
        if (f->items != f->on_stack) {
            PyMem_Free(f->items);
        }
        f->items = grown;
        f->cap = cap;
    }
    f->items[f->count++] = field;
    return 0;
}

static void fields_free(Fields *f, bool release) {
    for (Py_ssize_t i = 0; release && i < f->count; i++) {
        Py_DECREF(f->items[i]);
    }
    if (f->items != f->on_stack) {
        PyMem_Free(f->items);
    }
}

/* The fields as a tuple (they are moved into it), or NULL; `f` is freed either way. */
static PyObject *fields_take(Fields *f) {
    PyObject *tuple = PyTuple_New(f->count);
    if (tuple != NULL) {
        memcpy(((PyTupleObject *)tuple)->ob_item, f->items, (size_t)f->count * sizeof(PyObject *));
    }
    fields_free(f, tuple == NULL);
    return untracked(tuple);
}

/* Whole fields recur even more than their texts (a client's User-Agent and Accept-Language,
 * a server's Content-Type): a line that parsed with no anomaly is kept with the (name, value)
 * tuple it gave, and the same bytes give the same tuple again (a tuple of str is immutable,
 * so sharing it is invisible). Direct-mapped, of fixed size, as the text cache. */
#define FIELD_CACHE_SIZE 2048
#define FIELD_CACHE_LONGEST 160

typedef struct {
    uint16_t length;
    unsigned char bytes[FIELD_CACHE_LONGEST];
    PyObject *field;
} CachedField;

static CachedField field_cache[FIELD_CACHE_SIZE];

static CachedField *field_slot(const unsigned char *line, Py_ssize_t len) {
    uint64_t h = (uint64_t)len * 0x9E3779B97F4A7C15u, word = 0;
    Py_ssize_t i = 0;
    for (; i + 8 <= len; i += 8) { /* a word at a time: lines are long, and a miss is only a miss */
        memcpy(&word, line + i, 8);
        h = (h ^ word) * 0x100000001B3u;
        h ^= h >> 29;
    }
    if (i < len) { /* the rest: the last 8 bytes when there are that many (fixed-size loads) */
        if (len >= 8) {
            memcpy(&word, line + len - 8, 8);
        } else {
            for (; i < len; i++) {
                word = word << 8 | line[i];
            }
        }
    }
    h = (h ^ word) * 0x9E3779B97F4A7C15u;
    h ^= h >> 32; /* a product's low bits hold only its factors' low bits: bring the high ones down */
    h *= 0xFF51AFD7ED558CCDu;
    return &field_cache[(h ^ (h >> 32)) % FIELD_CACHE_SIZE];
}

/* The last field with ` value` appended: RFC 9112 section 5.2, a fold becomes a space. */
static int fold_into_last(Fields *fields, const unsigned char *line, Py_ssize_t len) {
    if (fields->count == 0) {
        return 0;
    }
    Py_ssize_t start = 0, end = len;
    while (start < end && is_ascii_space(line[start])) {
        start++;
    }
    while (end > start && is_ascii_space(line[end - 1])) {
        end--;
    }
    PyObject *last = fields->items[fields->count - 1];
    PyObject *tail = latin1(line + start, end - start);
    PyObject *value = tail == NULL ? NULL : PyUnicode_FromFormat("%U %U", PyTuple_GET_ITEM(last, 1), tail);
    Py_XDECREF(tail);
    if (value == NULL) {
        return -1;
    }
    PyObject *field = untracked(PyTuple_Pack(2, PyTuple_GET_ITEM(last, 0), value));
    Py_DECREF(value);
    if (field == NULL) {
        return -1;
    }
    fields->items[fields->count - 1] = field;
    Py_DECREF(last);
    return 0;
}

static int parse_header_line(const unsigned char *line, Py_ssize_t len, Fields *fields, PyObject *anomalies) {
    if (len > 0 && line[len - 1] == '\r') {
        len--;
    }
    if (len > 0 && (line[0] == ' ' || line[0] == '\t')) {
        if (PyList_Append(anomalies, strings[S_OBS_FOLD]) < 0) {
            return -1;
        }
        return fold_into_last(fields, line, len);
    }
    CachedField *cached = len > 0 && len <= FIELD_CACHE_LONGEST ? field_slot(line, len) : NULL;
    if (cached != NULL && cached->length == len && memcmp(cached->bytes, line, (size_t)len) == 0) {
        return fields_push(fields, Py_NewRef(cached->field));
    }
    const unsigned char *colon = memchr(line, ':', (size_t)len);
    if (colon == NULL) {
        return PyList_Append(anomalies, strings[S_HEADER_WITHOUT_COLON]);
    }
    Py_ssize_t name_end = colon - line, name_start = 0;
    if (name_end > 0 && is_ascii_space(line[name_end - 1])) {
        if (PyList_Append(anomalies, strings[S_WHITESPACE_BEFORE_COLON]) < 0) {
            return -1;
        }
        cached = NULL; /* only lines that name no anomaly are kept */
        while (name_end > 0 && is_ascii_space(line[name_end - 1])) {
            name_end--;
        }
    }
    while (name_start < name_end && is_ascii_space(line[name_start])) {
        name_start++;
    }
    Py_ssize_t value_start = colon - line + 1, value_end = len;
    while (value_start < value_end && (line[value_start] == ' ' || line[value_start] == '\t')) {
        value_start++;
    }
    while (value_end > value_start && (line[value_end - 1] == ' ' || line[value_end - 1] == '\t')) {
        value_end--;
    }
    PyObject *name = latin1(line + name_start, name_end - name_start);
    PyObject *value = name == NULL ? NULL : latin1(line + value_start, value_end - value_start);
    PyObject *field = value == NULL ? NULL : untracked(PyTuple_Pack(2, name, value));
    Py_XDECREF(name);
    Py_XDECREF(value);
    if (field == NULL) {
        return -1;
    }
    if (cached != NULL) {
        Py_XSETREF(cached->field, Py_NewRef(field));
        cached->length = (uint16_t)len;
        memcpy(cached->bytes, line, (size_t)len);
    }
    return fields_push(fields, field);
}

/* http_message._parse_header_lines over the lines of `lines` split at "\n" (all of them, or
 * all but the last when `stop_before_last`, as _partial_head does). A new tuple. */
PyObject *parse_header_lines(const unsigned char *lines, Py_ssize_t len, bool stop_before_last, PyObject *anomalies) {
    Fields fields;
    fields.items = fields.on_stack;
    fields.count = 0;
    fields.cap = FIELDS_ON_STACK;
    const unsigned char *p = lines, *stop = lines + len;
    while (true) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(stop - p));
        if (nl == NULL && stop_before_last) {
            break;
        }
        const unsigned char *line_end = nl == NULL ? stop : nl;
        if (parse_header_line(p, line_end - p, &fields, anomalies) < 0) {
            fields_free(&fields, true);
            return NULL;
        }
        if (nl == NULL) {
            break;
        }
        p = nl + 1;
    }
    return fields_take(&fields);
}
