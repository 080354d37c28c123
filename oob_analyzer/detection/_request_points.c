/* The point builders of a header field (its value, each cookie), a path and a urlencoded text
 * (query string, form body), and percent_decode, in C.
 *
 * points.python_header_points, points.python_path_points, request_point.python_urlencoded_points
 * and decoders.percent_decode are the reference and the fallback
 * when this is not built; tests/detection/test_compiled_request_points.py holds them to the same
 * output. The claims of a JWT (points._add_jwt_points, body_points.jwt_claims) are found and
 * decoded here too; their JSON is parsed by the scanner json.loads uses and walked by
 * body_points.add_json_points, both passed in by the caller, so the document and its points
 * are those of the reference by construction.
 */
#include "_base64_bits.h"
#include "_points.h"

#define MAX_PERCENT_ROUNDS 3 /* decoders._MAX_PERCENT_ROUNDS */

/* Interned once at import: the names and kinds every call uses. */
static PyObject *str_cookie, *str_content_length, *str_cookie_prefix, *str_header_prefix, *str_header_kind,
    *str_jwt_marker, *str_jwt_suffix, *str_jwt_kind, *str_plus, *str_space, *str_path_kind, *str_path_segment_kind,
    *str_name_kind;

/* 1 when `text` holds `ch`, 0 when not, -1 on error. */
static int holds_char(PyObject *text, Py_UCS4 ch)
{
    Py_ssize_t found = PyUnicode_FindChar(text, ch, 0, PyUnicode_GET_LENGTH(text), 1);
    return found == -2 ? -1 : found >= 0;
}

static int hex_value(Py_UCS4 ch)
{
    if (ch >= '0' && ch <= '9')
        return (int)(ch - '0');
    if (ch >= 'a' && ch <= 'f')
        return (int)(ch - 'a' + 10);
    if (ch >= 'A' && ch <= 'F')
        return (int)(ch - 'A' + 10);
    return -1;
}

/* decoders._unquote_latin1: `%XX` to the character of that byte; a stray `%` stays. */
static PyObject *unquote_latin1(PyObject *text)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_UCS4 *decoded = PyMem_Malloc((size_t)(length > 0 ? length : 1) * sizeof(Py_UCS4));
    if (decoded == NULL)
        return PyErr_NoMemory();
    Py_ssize_t size = 0;
    for (Py_ssize_t index = 0; index < length;) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, index);
        if (ch == '%' && index + 2 < length) {
            int high = hex_value(PyUnicode_READ(kind, data, index + 1));
            int low = high < 0 ? -1 : hex_value(PyUnicode_READ(kind, data, index + 2));
            if (low >= 0) {
                decoded[size++] = (Py_UCS4)(high * 16 + low);
                index += 3;
                continue;
            }
        }
        decoded[size++] = ch;
        index++;
    }
    /* The narrowest kind that holds the characters, as every str is. */
    PyObject *result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, decoded, size);
    PyMem_Free(decoded);
    return result;
}

/* decoders._utf8_if_possible: the text's Latin-1 bytes read as UTF-8, or the text itself. */
static PyObject *utf8_if_possible(PyObject *text)
{
    /* A str wider than one byte per character holds one above U+00FF: Latin-1 cannot encode
     * it. An ASCII one decodes to itself. */
    if (PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND || PyUnicode_IS_ASCII(text))
        return Py_NewRef(text);
    PyObject *decoded =
        PyUnicode_DecodeUTF8((const char *)PyUnicode_1BYTE_DATA(text), PyUnicode_GET_LENGTH(text), "strict");
    if (decoded == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        return Py_NewRef(text);
    }
    return decoded;
}

/* Whether a percent-decoding round has work: a `%`, or a `+` while it still means a space. */
static int round_needed(PyObject *text, int plus_is_space)
{
    int percent = holds_char(text, '%');
    if (percent != 0 || !plus_is_space)
        return percent;
    return holds_char(text, '+');
}

/* decoders.percent_decode, round for round. */
static PyObject *percent_decode_text(PyObject *text, int plus_is_space)
{
    PyObject *current = Py_NewRef(text);
    for (int round = 0; round < MAX_PERCENT_ROUNDS; round++) {
        int needed = round_needed(current, plus_is_space);
        if (needed <= 0) {
            if (needed < 0)
                Py_CLEAR(current);
            break;
        }
        if (plus_is_space) {
            PyObject *spaced = PyUnicode_Replace(current, str_plus, str_space, -1);
            Py_DECREF(current);
            if (spaced == NULL)
                return NULL;
            current = spaced;
        }
        int percent = holds_char(current, '%');
        PyObject *decoded = NULL;
        if (percent > 0) {
            PyObject *unquoted = unquote_latin1(current);
            if (unquoted != NULL) {
                decoded = utf8_if_possible(unquoted);
                Py_DECREF(unquoted);
            }
        } else if (percent == 0) {
            decoded = Py_NewRef(current);
        }
        if (decoded == NULL) {
            Py_DECREF(current);
            return NULL;
        }
        plus_is_space = 0; /* a literal '+' that was %2B must stay a '+' */
        int same = PyUnicode_Compare(decoded, current) == 0;
        if (same) {
            Py_DECREF(decoded);
            break;
        }
        Py_SETREF(current, decoded);
    }
    return current;
}

static PyObject *percent_decode(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "percent_decode() takes a str and plus_is_space");
        return NULL;
    }
    int plus_is_space = PyObject_IsTrue(args[1]);
    if (plus_is_space < 0)
        return NULL;
    return percent_decode_text(args[0], plus_is_space);
}

/* --- the claims of a JWT: points._add_jwt_points and body_points.jwt_claims, in C ------------ */

/* What the claims of a token need from Python, bound by the caller (points.py): the JSON
 * scanner json.loads ends in, and the walk that makes the points of a document. */
typedef struct {
    PyObject *scan_json;       /* body_points._SCAN_JSON: (text, start) -> (document, end) */
    PyObject *add_json_points; /* body_points.add_json_points(points, prefix, document, kind) */
} ClaimTools;

/* A character of points._JWT's class `[A-Za-z0-9_-]`, or its base64url value: -1 when not. */
static int jwt_sextet(Py_UCS4 ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return (int)(ch - 'A');
    if (ch >= 'a' && ch <= 'z')
        return (int)(ch - 'a') + 26;
    if (ch >= '0' && ch <= '9')
        return (int)(ch - '0') + 52;
    if (ch == '-')
        return 62;
    if (ch == '_')
        return 63;
    return -1;
}

static Py_ssize_t jwt_run_end(int kind, const void *data, Py_ssize_t length, Py_ssize_t at)
{
    while (at < length && jwt_sextet(PyUnicode_READ(kind, data, at)) >= 0)
        at++;
    return at;
}

/* `eyJ[A-Za-z0-9_-]{2,}\.` at text[at:]: its '.' in *dot. The run before the '.' is taken
 * whole: the class holds no '.', so no shorter run can be followed by one (no backtracking). */
static int jwt_segment_at(int kind, const void *data, Py_ssize_t length, Py_ssize_t at, Py_ssize_t *dot)
{
    if (at + 3 > length || PyUnicode_READ(kind, data, at) != 'e' || PyUnicode_READ(kind, data, at + 1) != 'y' ||
        PyUnicode_READ(kind, data, at + 2) != 'J')
        return 0;
    Py_ssize_t end = jwt_run_end(kind, data, length, at + 3);
    if (end - (at + 3) < 2 || end >= length || PyUnicode_READ(kind, data, end) != '.')
        return 0;
    *dot = end;
    return 1;
}

/* The UTF-8 text of text[start:end], a base64url segment, as jwt_claims decodes it: NULL
 * without an exception when it has none.
 * - binascii.a2b_base64 of the segment, '-' and '_' read as '+' and '/', padded with '=' to
 *   a multiple of 4: every character is of the alphabet, so it decodes them all, ignoring
 *   the trailing bits, and refuses a length of 1 modulo 4;
 * - json.detect_encoding of those bytes is always "utf-8": the segment starts with "eyJ",
 *   whose bytes are '{' '"' (no BOM, no NUL among the first two);
 * - decoded with "surrogatepass", a UnicodeDecodeError (a ValueError) being no claims. */
static PyObject *segment_text(int kind, const void *data, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t length = end - start;
    if (length % 4 == 1)
        return NULL;
    unsigned char small[512];
    Py_ssize_t size = length * 6 / 8;
    unsigned char *raw = size <= (Py_ssize_t)sizeof(small) ? small : PyMem_Malloc((size_t)size);
    if (raw == NULL)
        return PyErr_NoMemory();
    Py_ssize_t written = sextets_to_bytes(kind, data, start, end, jwt_sextet, raw);
    PyObject *text = PyUnicode_DecodeUTF8((const char *)raw, written, "surrogatepass");
    if (raw != small)
        PyMem_Free(raw);
    if (text == NULL && PyErr_ExceptionMatches(PyExc_ValueError))
        PyErr_Clear();
    return text;
}

/* body_points._json_document(text) for a text starting with '{' (no BOM, no leading blank):
 * the document (a new reference), or NULL without an exception when jwt_claims finds none
 * (StopIteration, ValueError, RecursionError, or more than blanks after the value). */
static PyObject *json_document(const ClaimTools *tools, PyObject *text)
{
    PyObject *start = PyLong_FromLong(0);
    if (start == NULL)
        return NULL;
    PyObject *arguments[] = {text, start};
    PyObject *scanned = PyObject_Vectorcall(tools->scan_json, arguments, 2, NULL);
    Py_DECREF(start);
    if (scanned == NULL) {
        if (PyErr_ExceptionMatches(PyExc_StopIteration) || PyErr_ExceptionMatches(PyExc_ValueError) ||
            PyErr_ExceptionMatches(PyExc_RecursionError))
            PyErr_Clear();
        return NULL;
    }
    if (!PyTuple_Check(scanned) || PyTuple_GET_SIZE(scanned) != 2 || !PyLong_Check(PyTuple_GET_ITEM(scanned, 1))) {
        Py_DECREF(scanned);
        PyErr_SetString(PyExc_TypeError, "the JSON scanner returns (document, end)");
        return NULL;
    }
    Py_ssize_t end = PyLong_AsSsize_t(PyTuple_GET_ITEM(scanned, 1));
    if (end == -1 && PyErr_Occurred()) {
        Py_DECREF(scanned);
        return NULL;
    }
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    for (Py_ssize_t at = end < 0 ? 0 : end; at < length; at++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, at);
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
            Py_DECREF(scanned); /* data after the JSON value: no claims */
            return NULL;
        }
    }
    PyObject *document = Py_NewRef(PyTuple_GET_ITEM(scanned, 0));
    Py_DECREF(scanned);
    return document;
}

/* The points of the claims of the token whose payload segment is value[start:end], if any. */
static int add_claims(const ClaimTools *tools, PyObject *points, PyObject *claims_prefix, PyObject *value,
                      Py_ssize_t start, Py_ssize_t end)
{
    PyObject *text = segment_text(PyUnicode_KIND(value), PyUnicode_DATA(value), start, end);
    if (text == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *document = json_document(tools, text);
    Py_DECREF(text);
    if (document == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *arguments[] = {points, claims_prefix, document, str_jwt_kind};
    PyObject *result = PyObject_Vectorcall(tools->add_json_points, arguments, 4, NULL);
    Py_DECREF(document);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

/* points._add_jwt_points(points, prefix, value): the claims of every token points._JWT finds,
 * `eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`, leftmost first, each match
 * taken whole (findall), named `<prefix>.jwt.<claim>`. */
static int add_jwt_points(const ClaimTools *tools, PyObject *points, PyObject *prefix, PyObject *value)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(value);
    Py_ssize_t at = PyUnicode_Find(value, str_jwt_marker, 0, length, 1);
    if (at == -2)
        return -1;
    if (at < 0)
        return 0; /* no "eyJ", what every token starts with */
    int kind = PyUnicode_KIND(value);
    const void *data = PyUnicode_DATA(value);
    PyObject *claims_prefix = NULL;
    int failed = 0;
    while (at < length && !failed) {
        Py_ssize_t first_dot, second_dot;
        if (!jwt_segment_at(kind, data, length, at, &first_dot) ||
            !jwt_segment_at(kind, data, length, first_dot + 1, &second_dot)) {
            at++;
            continue;
        }
        if (claims_prefix == NULL)
            claims_prefix = PyUnicode_Concat(prefix, str_jwt_suffix);
        failed = claims_prefix == NULL || add_claims(tools, points, claims_prefix, value, first_dot + 1, second_dot) < 0;
        at = jwt_run_end(kind, data, length, second_dot + 1); /* past the signature: the match's end */
    }
    Py_XDECREF(claims_prefix);
    return failed ? -1 : 0;
}

/* The value of a cookie, percent-decoded when it holds `%` or `+`, bounded. */
static PyObject *cookie_value(PyObject *value)
{
    int encoded = round_needed(value, 1);
    if (encoded < 0)
        return NULL;
    PyObject *decoded = encoded ? percent_decode_text(value, 1) : Py_NewRef(value);
    if (decoded == NULL || PyUnicode_GET_LENGTH(decoded) <= MAX_POINT_CHARS)
        return decoded;
    Py_SETREF(decoded, bounded(decoded));
    return decoded;
}

/* One `name=value` pair of a Cookie header, header_value[first:last] (already stripped): its
 * point and its JWT claims. Read in place: no str is made of the pair itself. */
static int add_cookie_pair(PyObject *points, PyTypeObject *point_type, const ClaimTools *tools,
                           PyObject *header_value, Py_ssize_t first, Py_ssize_t last)
{
    Py_ssize_t equals = PyUnicode_FindChar(header_value, '=', first, last, 1);
    if (equals == -2)
        return -1;
    if (last == first || (equals == first && last - first == 1))
        return 0; /* no name and no value */
    PyObject *name = PyUnicode_Substring(header_value, first, equals < 0 ? last : equals);
    PyObject *value = equals < 0 ? PyUnicode_New(0, 0) : PyUnicode_Substring(header_value, equals + 1, last);
    PyObject *prefix = name == NULL ? NULL : PyUnicode_Concat(str_cookie_prefix, name);
    int failed = -1;
    if (prefix != NULL && value != NULL &&
        append_point(points, point_type, Py_NewRef(prefix), cookie_value(value), str_cookie) == 0)
        failed = add_jwt_points(tools, points, prefix, value);
    Py_XDECREF(name);
    Py_XDECREF(value);
    Py_XDECREF(prefix);
    return failed;
}

/* points._cookie_points: split on ';', strip each pair (str.strip's whitespace), one point each. */
static PyObject *cookie_points(PyTypeObject *point_type, const ClaimTools *tools, PyObject *header_value)
{
    PyObject *points = PyList_New(0);
    if (points == NULL)
        return NULL;
    Py_ssize_t length = PyUnicode_GET_LENGTH(header_value);
    int kind = PyUnicode_KIND(header_value);
    const void *data = PyUnicode_DATA(header_value);
    Py_ssize_t start = 0;
    while (start <= length) {
        Py_ssize_t end = start;
        while (end < length && PyUnicode_READ(kind, data, end) != ';')
            end++;
        Py_ssize_t first = start, last = end;
        while (first < last && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, first)))
            first++;
        while (last > first && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, last - 1)))
            last--;
        if (add_cookie_pair(points, point_type, tools, header_value, first, last) < 0) {
            Py_DECREF(points);
            return NULL;
        }
        start = end + 1;
    }
    return points;
}

/* str.lower, without a method call for the ASCII names nearly every header has. */
static PyObject *lower_name(PyObject *name)
{
    if (!PyUnicode_IS_ASCII(name))
        return PyObject_CallMethod(name, "lower", NULL);
    Py_ssize_t length = PyUnicode_GET_LENGTH(name);
    const Py_UCS1 *chars = PyUnicode_1BYTE_DATA(name);
    Py_ssize_t index = 0;
    while (index < length && !(chars[index] >= 'A' && chars[index] <= 'Z'))
        index++;
    if (index == length)
        return Py_NewRef(name);
    PyObject *lowered = PyUnicode_New(length, 127);
    if (lowered == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(lowered);
    for (Py_ssize_t at = 0; at < length; at++)
        out[at] = (chars[at] >= 'A' && chars[at] <= 'Z') ? (Py_UCS1)(chars[at] + ('a' - 'A')) : chars[at];
    return lowered;
}

static PyObject *field_points(PyTypeObject *point_type, const ClaimTools *tools, PyObject *name, PyObject *value)
{
    int is_cookie = PyUnicode_Compare(name, str_cookie) == 0;
    if (is_cookie)
        return cookie_points(point_type, tools, value);
    PyObject *points = PyList_New(0);
    if (points == NULL || PyUnicode_Compare(name, str_content_length) == 0)
        return points; /* a structural header: no attacker-chosen text */
    PyObject *prefix = PyUnicode_Concat(str_header_prefix, name);
    int failed = prefix == NULL ||
                 append_point(points, point_type, Py_NewRef(prefix), bounded(value), str_header_kind) < 0 ||
                 add_jwt_points(tools, points, prefix, value) < 0;
    Py_XDECREF(prefix);
    if (failed)
        Py_CLEAR(points);
    return points;
}

static PyObject *header_points(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "header_points() takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *point_type = args[0], *raw_name = args[3], *value = args[4];
    ClaimTools tools = {args[1], args[2]};
    if (!PyType_Check(point_type) || !PyType_IsSubtype((PyTypeObject *)point_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "header_points() takes a tuple type first");
        return NULL;
    }
    if (!PyCallable_Check(tools.scan_json) || !PyCallable_Check(tools.add_json_points) ||
        !PyUnicode_Check(raw_name) || !PyUnicode_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "header_points() takes two callables, then a str name and value");
        return NULL;
    }
    PyObject *name = lower_name(raw_name);
    if (name == NULL)
        return NULL;
    PyObject *points = field_points((PyTypeObject *)point_type, &tools, name, value);
    Py_DECREF(name);
    return points;
}

/* The non-empty segments of a path between '/': how many, and the length of the first. */
static Py_ssize_t count_segments(int kind, const void *data, Py_ssize_t length, Py_ssize_t *first_length)
{
    Py_ssize_t count = 0, start = 0;
    *first_length = 0;
    for (Py_ssize_t index = 0; index <= length; index++) {
        if (index < length && PyUnicode_READ(kind, data, index) != '/')
            continue;
        if (index > start && count++ == 0)
            *first_length = index - start;
        start = index + 1;
    }
    return count;
}

/* One segment's point, `path.<index>`, percent-decoded (without '+') when it holds '%'. */
static int add_segment_point(PyObject *points, PyTypeObject *point_type, PyObject *segment, Py_ssize_t index)
{
    int percent = holds_char(segment, '%');
    if (percent < 0)
        return -1;
    PyObject *decoded = percent ? percent_decode_text(segment, 0) : Py_NewRef(segment);
    if (decoded != NULL && PyUnicode_GET_LENGTH(decoded) > MAX_POINT_CHARS)
        Py_SETREF(decoded, bounded(decoded));
    return append_point(points, point_type, PyUnicode_FromFormat("path.%zd", index), decoded, str_path_segment_kind);
}

/* points.python_path_points: the whole path, then each segment when there is more than the one. */
static PyObject *path_points(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyType_Check(args[0]) || !PyType_IsSubtype((PyTypeObject *)args[0], &PyTuple_Type) ||
        !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "path_points() takes a tuple type and a str path");
        return NULL;
    }
    PyTypeObject *point_type = (PyTypeObject *)args[0];
    PyObject *path = args[1];
    PyObject *points = PyList_New(0);
    if (points == NULL)
        return NULL;
    PyObject *decoded = percent_decode_text(path, 0);
    if (decoded != NULL)
        Py_SETREF(decoded, bounded(decoded));
    if (append_point(points, point_type, Py_NewRef(str_path_kind), decoded, str_path_kind) < 0) {
        Py_DECREF(points);
        return NULL;
    }
    Py_ssize_t length = PyUnicode_GET_LENGTH(path), first_length;
    int kind = PyUnicode_KIND(path);
    const void *data = PyUnicode_DATA(path);
    Py_ssize_t count = count_segments(kind, data, length, &first_length);
    if (!(count > 1 || (count == 1 && first_length + 1 < length)))
        return points;
    Py_ssize_t start = 0, index = 0;
    for (Py_ssize_t at = 0; at <= length; at++) {
        if (at < length && PyUnicode_READ(kind, data, at) != '/')
            continue;
        if (at > start) {
            PyObject *segment = PyUnicode_Substring(path, start, at);
            int failed = segment == NULL || add_segment_point(points, point_type, segment, index++) < 0;
            Py_XDECREF(segment);
            if (failed) {
                Py_DECREF(points);
                return NULL;
            }
        }
        start = at + 1;
    }
    return points;
}

static int is_name_char(Py_UCS4 ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
           ch == '.' || ch == '-';
}

/* request_point._PLAIN_NAME.fullmatch: `[A-Za-z0-9_.-]{1,64}(?:\[[A-Za-z0-9_.-]{0,64}\])*`.
 * A run of name characters can only end at '[', ']' or the end, so matching the longest run
 * is all the backtracking the regex could do. */
static int is_plain_name(PyObject *name)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(name), at = 0, run;
    int kind = PyUnicode_KIND(name);
    const void *data = PyUnicode_DATA(name);
    for (run = 0; at < length && is_name_char(PyUnicode_READ(kind, data, at)); at++)
        run++;
    if (run < 1 || run > 64)
        return 0;
    while (at < length) {
        if (PyUnicode_READ(kind, data, at) != '[')
            return 0;
        for (run = 0, at++; at < length && is_name_char(PyUnicode_READ(kind, data, at)); at++)
            run++;
        if (run > 64 || at >= length || PyUnicode_READ(kind, data, at) != ']')
            return 0;
        at++;
    }
    return 1;
}

/* percent_decode(text) when it holds '%' or '+', else the text itself. */
static PyObject *decoded_part(PyObject *text)
{
    int encoded = round_needed(text, 1);
    if (encoded < 0)
        return NULL;
    return encoded ? percent_decode_text(text, 1) : Py_NewRef(text);
}

/* One non-empty `name=value` (or bare `name`) of a urlencoded text; sets *odd for an odd name. */
static int add_pair_points(PyObject *points, PyTypeObject *point_type, PyObject *prefix, PyObject *pair, int *odd)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(pair);
    Py_ssize_t equals = PyUnicode_FindChar(pair, '=', 0, length, 1);
    if (equals == -2)
        return -1;
    PyObject *raw_name = PyUnicode_Substring(pair, 0, equals < 0 ? length : equals);
    PyObject *name = raw_name == NULL ? NULL : decoded_part(raw_name);
    Py_XDECREF(raw_name);
    if (name == NULL)
        return -1;
    int failed;
    if (equals < 0) { /* a bare `?payload` is a value with no name */
        failed = append_point(points, point_type, Py_NewRef(prefix), bounded(name), prefix);
        Py_DECREF(name);
        return failed;
    }
    PyObject *raw_value = PyUnicode_Substring(pair, equals + 1, length);
    PyObject *value = raw_value == NULL ? NULL : decoded_part(raw_value);
    Py_XDECREF(raw_value);
    if (value != NULL && PyUnicode_GET_LENGTH(value) > MAX_POINT_CHARS)
        Py_SETREF(value, bounded(value));
    PyObject *point_name = PyUnicode_FromFormat("%U.%U", prefix, name);
    failed = append_point(points, point_type, Py_XNewRef(point_name), value, prefix);
    if (!failed && !is_plain_name(name)) {
        *odd = 1;
        failed = append_point(points, point_type, Py_NewRef(point_name), bounded(name), str_name_kind);
    }
    Py_XDECREF(point_name);
    Py_DECREF(name);
    return failed;
}

/* request_point.python_urlencoded_points: one point per pair, odd names too, and the whole
 * text when an '&' or '=' may belong to the payload. */
static PyObject *urlencoded_points(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 || !PyType_Check(args[0]) || !PyType_IsSubtype((PyTypeObject *)args[0], &PyTuple_Type) ||
        !PyUnicode_Check(args[1]) || !PyUnicode_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "urlencoded_points() takes a tuple type, a str prefix and a str text");
        return NULL;
    }
    PyTypeObject *point_type = (PyTypeObject *)args[0];
    PyObject *prefix = args[1], *text = args[2];
    PyObject *points = PyList_New(0);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    if (points == NULL || length == 0)
        return points;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    int odd = 0;
    for (Py_ssize_t start = 0; start <= length;) {
        Py_ssize_t end = start;
        while (end < length && PyUnicode_READ(kind, data, end) != '&')
            end++;
        if (end == start) {
            odd = 1;
        } else {
            PyObject *pair = PyUnicode_Substring(text, start, end);
            int failed = pair == NULL || add_pair_points(points, point_type, prefix, pair, &odd) < 0;
            Py_XDECREF(pair);
            if (failed) {
                Py_DECREF(points);
                return NULL;
            }
        }
        start = end + 1;
    }
    if (odd) { /* an '&' or '=' that may belong to the payload: the whole string is a point too */
        PyObject *decoded = percent_decode_text(text, 1);
        if (decoded != NULL)
            Py_SETREF(decoded, bounded(decoded));
        if (append_point(points, point_type, Py_NewRef(prefix), decoded, prefix) < 0)
            Py_CLEAR(points);
    }
    return points;
}

static PyMethodDef methods[] = {
    {"urlencoded_points", (PyCFunction)(void (*)(void))urlencoded_points, METH_FASTCALL,
     "urlencoded_points(point_type, prefix, text): the points of a query string or form body."},
    {"path_points", (PyCFunction)(void (*)(void))path_points, METH_FASTCALL,
     "path_points(point_type, path): the points of a path, all of it and each segment."},
    {"header_points", (PyCFunction)(void (*)(void))header_points, METH_FASTCALL,
     "header_points(point_type, scan_json, add_json_points, raw_name, value): the points of one header field."},
    {"percent_decode", (PyCFunction)(void (*)(void))percent_decode, METH_FASTCALL,
     "percent_decode(text, plus_is_space): decoders.percent_decode in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "oob_analyzer.detection._request_points",
    "header_points and percent_decode in C (points.python_header_points and decoders.percent_decode are "
    "the reference).",
    -1, methods, NULL, NULL, NULL, NULL,
};

static int intern(PyObject **slot, const char *text)
{
    *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC PyInit__request_points(void)
{
    if (intern(&str_cookie, "cookie") < 0 || intern(&str_content_length, "content-length") < 0 ||
        intern(&str_cookie_prefix, "cookie.") < 0 || intern(&str_header_prefix, "header.") < 0 ||
        intern(&str_header_kind, "header") < 0 || intern(&str_jwt_marker, "eyJ") < 0 ||
        intern(&str_jwt_suffix, ".jwt") < 0 || intern(&str_jwt_kind, "jwt") < 0 ||
        intern(&str_plus, "+") < 0 || intern(&str_space, " ") < 0 || intern(&str_path_kind, "path") < 0 ||
        intern(&str_path_segment_kind, "path_segment") < 0 || intern(&str_name_kind, "name") < 0)
        return NULL;
    return PyModule_Create(&module);
}
