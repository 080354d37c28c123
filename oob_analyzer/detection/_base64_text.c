/* decode_base64 in C: the decoders' hottest loop, same results as the Python reference.
 *
 * oob_analyzer/detection/decoders.py keeps `python_decode_base64` as the reference, and
 * tests/detection/test_base64_text.py holds the two to the same output on the corpus and on
 * generated text. The Python version runs a regex over the text and a Python callback per
 * token (a bearer JWT's header value cost 17 us, each of its decoded variants 10 us); this
 * is one pass over the characters.
 *
 * What it does, as the reference does:
 * - a text shorter than 8 characters, or in one case only (str.islower / str.isupper), is
 *   returned as it is;
 * - a token is what `[A-Za-z0-9+_-][A-Za-z0-9+/_-]{7,}={0,2}` matches, leftmost first;
 * - a token is replaced by its decoding when it mixes upper- and lower-case letters, its
 *   length without `=` is not 1 modulo 4, and it decodes (base64 or base64url, padding
 *   ignored) to UTF-8 text of which at least 90 % are printable characters or \r \n \t.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_base64_bits.h"

#define MIN_TOKEN 8

/* The value of each ASCII base64 or base64url character, -1 for the others (`=` is not part of
 * a token's body): '+' and '-' are 62, '/' and '_' 63. */
static const signed char SEXTETS[128] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62,
    -1, 62, -1, 63, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1, -1, 0,
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
    23, 24, 25, -1, -1, -1, -1, 63, -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38,
    39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
};

static int sextet(Py_UCS4 c)
{
    return c < 128 ? SEXTETS[c] : -1;
}

/* A token never starts with '/' (in a path, "/SGVsbG8..." is a separator and then the token). */
static int starts_token(Py_UCS4 c)
{
    return c != '/' && sextet(c) >= 0;
}

static int mixes_cases(int kind, const void *data, Py_ssize_t start, Py_ssize_t end)
{
    int upper = 0, lower = 0;
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        upper |= (c >= 'A' && c <= 'Z');
        lower |= (c >= 'a' && c <= 'z');
        if (upper && lower)
            return 1; /* the rest cannot change the answer */
    }
    return 0;
}

/* The share test of the reference: printable characters (or \r \n \t) at least 90 %. */
static int mostly_printable(PyObject *text)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    int ascii = PyUnicode_IS_ASCII(text);
    Py_ssize_t printable = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        /* str.isprintable of an ASCII character: ' ' to '~', no look-up in the database */
        int shown = ascii ? (c >= ' ' && c <= '~') : Py_UNICODE_ISPRINTABLE(c);
        if (shown || c == '\r' || c == '\n' || c == '\t')
            printable++;
    }
    return length > 0 && !((double)printable < 0.9 * (double)length);
}

/* Whether bytes are UTF-8 as Python's strict decoder takes it (RFC 3629, the Unicode
 * standard's table 3-7): no overlong form, no surrogate, nothing past U+10FFFF. Asked first
 * because most tokens that fail decode to random bytes, and a failed PyUnicode_DecodeUTF8
 * builds a UnicodeDecodeError only to have it cleared (a JWT's signature, in every variant
 * of a bearer header, cost more than decoding its claims). The decoder still has the last
 * word: this may only never refuse what it takes (test_base64_text tries every edge). */
static int valid_utf8(const unsigned char *bytes, Py_ssize_t size)
{
    Py_ssize_t at = 0;
    while (at < size) {
        unsigned char lead = bytes[at];
        if (lead < 0x80) {
            at++;
            continue;
        }
        Py_ssize_t count;
        unsigned char low = 0x80, high = 0xBF; /* the range of the byte after the lead */
        if (lead >= 0xC2 && lead <= 0xDF) {
            count = 1;
        } else if (lead >= 0xE0 && lead <= 0xEF) {
            count = 2;
            if (lead == 0xE0)
                low = 0xA0; /* overlong below */
            else if (lead == 0xED)
                high = 0x9F; /* surrogates above */
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            count = 3;
            if (lead == 0xF0)
                low = 0x90; /* overlong below */
            else if (lead == 0xF4)
                high = 0x8F; /* past U+10FFFF above */
        } else {
            return 0; /* a continuation byte, C0, C1 or F5 to FF as a lead */
        }
        if (at + count >= size) /* cut short */
            return 0;
        if (bytes[at + 1] < low || bytes[at + 1] > high)
            return 0;
        for (Py_ssize_t next = 2; next <= count; next++) {
            if (bytes[at + next] < 0x80 || bytes[at + next] > 0xBF)
                return 0;
        }
        at += count + 1;
    }
    return 1;
}

/* The text a token stands for (a new reference), or NULL without an exception to keep it. */
static PyObject *token_text(int kind, const void *data, Py_ssize_t start, Py_ssize_t body_end)
{
    Py_ssize_t length = body_end - start;
    if (length % 4 == 1 || !mixes_cases(kind, data, start, body_end))
        return NULL;
    Py_ssize_t size = length * 6 / 8;
    unsigned char small[512];
    unsigned char *raw = size <= (Py_ssize_t)sizeof(small) ? small : PyMem_Malloc((size_t)size);
    if (raw == NULL) {
        PyErr_Clear();
        return NULL;
    }
    Py_ssize_t written = sextets_to_bytes(kind, data, start, body_end, sextet, raw);
    PyObject *text = valid_utf8(raw, written) ? PyUnicode_DecodeUTF8((const char *)raw, written, NULL) : NULL;
    if (raw != small)
        PyMem_Free(raw);
    if (text == NULL) {
        PyErr_Clear(); /* not UTF-8: not text, so the token stays */
        return NULL;
    }
    if (!mostly_printable(text)) {
        Py_DECREF(text);
        return NULL;
    }
    return text;
}

static int one_case_only(PyObject *text)
{
    /* An ASCII upper- and lower-case letter both make str.islower and str.isupper false: the
     * texts that reach here with a token in them, and no method call for them. */
    if (mixes_cases(PyUnicode_KIND(text), PyUnicode_DATA(text), 0, PyUnicode_GET_LENGTH(text)))
        return 0;
    PyObject *lower = PyObject_CallMethod(text, "islower", NULL);
    if (lower == NULL)
        return -1;
    int result = PyObject_IsTrue(lower);
    Py_DECREF(lower);
    if (result != 0)
        return result;
    PyObject *upper = PyObject_CallMethod(text, "isupper", NULL);
    if (upper == NULL)
        return -1;
    result = PyObject_IsTrue(upper);
    Py_DECREF(upper);
    return result;
}

/* Appends text[start:end] and then `piece` (when not NULL) to `pieces`; -1 on error. */
static int append_pieces(PyObject *pieces, PyObject *text, Py_ssize_t start, Py_ssize_t end, PyObject *piece)
{
    if (end > start) {
        PyObject *between = PyUnicode_Substring(text, start, end);
        if (between == NULL)
            return -1;
        int failed = PyList_Append(pieces, between);
        Py_DECREF(between);
        if (failed)
            return -1;
    }
    return piece == NULL ? 0 : PyList_Append(pieces, piece);
}

static PyObject *joined(PyObject *pieces, PyObject *text, Py_ssize_t last)
{
    if (append_pieces(pieces, text, last, PyUnicode_GET_LENGTH(text), NULL) < 0)
        return NULL;
    PyObject *empty = PyUnicode_New(0, 0);
    if (empty == NULL)
        return NULL;
    PyObject *result = PyUnicode_Join(empty, pieces);
    Py_DECREF(empty);
    return result;
}

static PyObject *decode_base64(PyObject *module, PyObject *text)
{
    (void)module;
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "decode_base64() takes a str, not %.100s", Py_TYPE(text)->tp_name);
        return NULL;
    }
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    if (length < MIN_TOKEN)
        return Py_NewRef(text);
    int single_case = one_case_only(text);
    if (single_case != 0)
        return single_case < 0 ? NULL : Py_NewRef(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *pieces = NULL;
    Py_ssize_t last = 0;
    Py_ssize_t i = 0;
    while (i < length) {
        if (!starts_token(PyUnicode_READ(kind, data, i))) {
            i++;
            continue;
        }
        Py_ssize_t body_end = i + 1;
        while (body_end < length && sextet(PyUnicode_READ(kind, data, body_end)) >= 0)
            body_end++;
        if (body_end - i < MIN_TOKEN) {
            i = body_end; /* a later start inside this run has a shorter run: no token either */
            continue;
        }
        Py_ssize_t end = body_end;
        while (end < length && end - body_end < 2 && PyUnicode_READ(kind, data, end) == '=')
            end++;
        PyObject *decoded = token_text(kind, data, i, body_end);
        if (decoded != NULL) {
            if (pieces == NULL && (pieces = PyList_New(0)) == NULL) {
                Py_DECREF(decoded);
                return NULL;
            }
            int failed = append_pieces(pieces, text, last, i, decoded);
            Py_DECREF(decoded);
            if (failed) {
                Py_DECREF(pieces);
                return NULL;
            }
            last = end;
        }
        i = end;
    }
    if (pieces == NULL)
        return Py_NewRef(text);
    PyObject *result = joined(pieces, text, last);
    Py_DECREF(pieces);
    return result;
}

static PyMethodDef methods[] = {
    {"decode_base64", decode_base64, METH_O,
     "Base64 or base64url tokens that decode to readable text, replaced by that text."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "oob_analyzer.detection._base64_text",
    "decode_base64 in C (decoders.python_decode_base64 is the reference).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__base64_text(void)
{
    return PyModule_Create(&module);
}
