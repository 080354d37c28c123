/* The decoders of the PointInspector: decoders.decoded_variants, gated by each decoder's trigger.
 *
 * Same decoders in the same order, breadth first, same depth and variant limits, same dedupe.
 * Each decoder runs only when its own trigger is in the text (without it, it returns the text
 * unchanged). The JS escapes and the shell-noise half of strip_comments are done here, held
 * to their Python versions by tests/detection/test_point_inspector.py; every other decoder is
 * the Python callable of `decoders._DECODERS`, exact by construction.
 */
#include "_inspect.h"

/* The gates a character opens by itself (the pairs "%u", "/ *" and "--" and the letters of the
 * base64 gate are worked out in the loops below): one table look-up per character. */
enum { LETTER_LOWER = 1 << 8, LETTER_UPPER = 1 << 9, PAIR_FIRST = 1 << 10 };

static unsigned int char_gates(Py_UCS4 c)
{
    if (c >= 'a' && c <= 'z')
        return LETTER_LOWER;
    if (c >= 'A' && c <= 'Z')
        return LETTER_UPPER;
    switch (c) {
    case '%':
    case '+':
        return GATE_PERCENT;
    case '\\':
        return GATE_JS | GATE_COMMENTS;
    case '&':
        return GATE_HTML;
    case 0xC0:
    case 0xC1:
        return GATE_OVERLONG;
    case '#':
    case '$':
    case '\'':
    case '"':
        return GATE_COMMENTS;
    case '<':
        return GATE_TAGS;
    default:
        return 0;
    }
}

static unsigned short ONE_BYTE_GATES[256];

void decode_init(void)
{
    for (Py_UCS4 c = 0; c < 256; c++)
        ONE_BYTE_GATES[c] = (unsigned short)(char_gates(c) | (c == '%' || c == '/' || c == '-' ? PAIR_FIRST : 0));
}

/* The pairs: "%u" or "%U", "/ *", "--" (the second character at `c`, the first at `previous`). */
static unsigned int pair_gates(Py_UCS4 previous, Py_UCS4 c)
{
    if (previous == '%' && (c == 'u' || c == 'U'))
        return GATE_PERCENT_UNICODE;
    if ((previous == '/' && c == '*') || (previous == '-' && c == '-'))
        return GATE_COMMENTS;
    return 0;
}

static unsigned int gates_of_letters(unsigned int gates, Py_ssize_t length)
{
    if (length >= 8 && (gates & LETTER_LOWER) && (gates & LETTER_UPPER))
        gates |= GATE_BASE64;
    return gates & ~(unsigned int)(LETTER_LOWER | LETTER_UPPER | PAIR_FIRST);
}

unsigned int decoder_gates(PyObject *text)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    unsigned int gates = 0;
    if (PyUnicode_KIND(text) == PyUnicode_1BYTE_KIND) {
        /* Most texts: a table look-up per character, the pairs checked only after their first
         * character ('%', '/', '-': PAIR_FIRST in the table), which opens no gate of its own
         * but GATE_PERCENT. */
        const Py_UCS1 *chars = PyUnicode_1BYTE_DATA(text);
        for (Py_ssize_t i = 0; i < length; i++) {
            unsigned int of_c = ONE_BYTE_GATES[chars[i]];
            gates |= of_c;
            if ((of_c & PAIR_FIRST) && i + 1 < length)
                gates |= pair_gates(chars[i], chars[i + 1]);
        }
        return gates_of_letters(gates, length);
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_UCS4 previous = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        gates |= char_gates(c) | pair_gates(previous, c);
        previous = c;
    }
    return gates_of_letters(gates, length);
}

/* Two decoders in C, held to their Python versions by the variants test (decoders.py has
 * the patterns): they are the ones benign JSON and header values trigger most after base64. */

static int hex_value(Py_UCS4 c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a') + 10;
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A') + 10;
    return -1;
}

/* The code of `count` hex digits at text[at:], or -1 when one is not a hex digit (or is past the end). */
static long hex_code(int kind, const void *data, Py_ssize_t length, Py_ssize_t at, Py_ssize_t count)
{
    long code = 0;
    for (Py_ssize_t i = at; i < at + count; i++) {
        int digit = i < length ? hex_value(PyUnicode_READ(kind, data, i)) : -1;
        if (digit < 0)
            return -1;
        code = code * 16 + digit;
    }
    return code;
}

/* A UCS4 copy of the text being rewritten: never longer than the text (each rewrite shortens). */
typedef struct {
    Py_UCS4 *chars;
    Py_ssize_t length;
} Rewritten;

static int rewrite_start(Rewritten *out, Py_ssize_t length)
{
    out->length = 0;
    out->chars = PyMem_Malloc((size_t)(length > 0 ? length : 1) * sizeof(Py_UCS4));
    if (out->chars == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static PyObject *rewrite_finish(Rewritten *out)
{
    PyObject *text = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out->chars, out->length);
    PyMem_Free(out->chars);
    return text;
}

/* decode_js_escapes: `\\(?:u\{([0-9a-fA-F]{1,6})\}|u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2}))` to
 * chr(code), or left as it is when the code is past U+10FFFF. */
static PyObject *decode_js_escapes(PyObject *text)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Rewritten out;
    if (rewrite_start(&out, length) < 0)
        return NULL;
    Py_ssize_t i = 0;
    while (i < length) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        Py_UCS4 next = i + 1 < length ? PyUnicode_READ(kind, data, i + 1) : 0;
        long code = -1;
        Py_ssize_t end = i;
        if (c == '\\' && next == 'u' && i + 2 < length && PyUnicode_READ(kind, data, i + 2) == '{') {
            Py_ssize_t digits = 0;
            while (digits < 6 && i + 3 + digits < length && hex_value(PyUnicode_READ(kind, data, i + 3 + digits)) >= 0)
                digits++;
            if (digits > 0 && i + 3 + digits < length && PyUnicode_READ(kind, data, i + 3 + digits) == '}') {
                code = hex_code(kind, data, length, i + 3, digits);
                end = i + 4 + digits;
            }
        } else if (c == '\\' && next == 'u') {
            code = hex_code(kind, data, length, i + 2, 4);
            end = i + 6;
        } else if (c == '\\' && next == 'x') {
            code = hex_code(kind, data, length, i + 2, 2);
            end = i + 4;
        }
        if (code < 0) {
            out.chars[out.length++] = c;
            i++;
        } else if (code > 0x10FFFF) {
            while (i < end)
                out.chars[out.length++] = PyUnicode_READ(kind, data, i++);
        } else {
            out.chars[out.length++] = (Py_UCS4)code;
            i = end;
        }
    }
    return rewrite_finish(&out);
}

static int ascii_lower(Py_UCS4 c)
{
    return c >= 'a' && c <= 'z';
}

/* The end of `_SHELL_NOISE`'s match at text[at], or `at` when there is none:
 * `\$\{?IFS\}?(?:\$\d)?|\\(?=[a-z])|'(?<=[a-z]')(?=[a-z])|"(?<=[a-z]")(?=[a-z])|\$@` */
static Py_ssize_t shell_noise_end(int kind, const void *data, Py_ssize_t length, Py_ssize_t at)
{
#define AT(index) ((index) >= 0 && (index) < length ? PyUnicode_READ(kind, data, (index)) : 0)
    Py_UCS4 c = AT(at);
    if (c == '$') {
        Py_ssize_t end = at + 1;
        if (AT(end) == '{')
            end++;
        if (AT(end) == 'I' && AT(end + 1) == 'F' && AT(end + 2) == 'S') {
            end += 3;
            if (AT(end) == '}')
                end++;
            if (AT(end) == '$' && end + 1 < length && Py_UNICODE_ISDECIMAL(AT(end + 1)))
                end += 2;
            return end;
        }
        return AT(at + 1) == '@' ? at + 2 : at;
    }
    if (c == '\\')
        return ascii_lower(AT(at + 1)) ? at + 1 : at;
    if (c == '\'' || c == '"')
        return at > 0 && ascii_lower(AT(at - 1)) && ascii_lower(AT(at + 1)) ? at + 1 : at;
    return at;
#undef AT
}

/* strip_comments's second half, `_SHELL_NOISE.sub(" " if "IFS" in text else "", text)`, for a
 * text without the SQL comment triggers ("/ *", "--", '#'). */
static PyObject *strip_shell_noise(PyObject *text)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t first = 0;
    for (; first < length; first++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, first);
        /* what every match starts with */
        if ((c == '$' || c == '\\' || c == '\'' || c == '"') && shell_noise_end(kind, data, length, first) != first)
            break;
    }
    if (first == length)
        return Py_NewRef(text); /* no match: `sub` returns the text as it is */
    int blank = 0;
    for (Py_ssize_t i = 0; i + 2 < length; i++) {
        if (PyUnicode_READ(kind, data, i) == 'I' && PyUnicode_READ(kind, data, i + 1) == 'F' &&
            PyUnicode_READ(kind, data, i + 2) == 'S') {
            blank = 1;
            break;
        }
    }
    Rewritten out;
    if (rewrite_start(&out, length) < 0)
        return NULL;
    for (Py_ssize_t i = 0; i < first; i++)
        out.chars[out.length++] = PyUnicode_READ(kind, data, i);
    Py_ssize_t i = first;
    while (i < length) {
        Py_ssize_t end = shell_noise_end(kind, data, length, i);
        if (end == i) {
            out.chars[out.length++] = PyUnicode_READ(kind, data, i);
            i++;
        } else {
            if (blank)
                out.chars[out.length++] = ' ';
            i = end;
        }
    }
    return rewrite_finish(&out);
}

/* Whether strip_comments's first half (`_SQL_COMMENT`) has anything to look at. */
static int has_sql_comment_trigger(PyObject *text)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_UCS4 previous = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '#' || (c == '*' && previous == '/') || (c == '-' && previous == '-'))
            return 1;
        previous = c;
    }
    return 0;
}

/* Decoder `index` of `decoders._DECODERS` applied to `text` (a new reference). */
static PyObject *apply_decoder(PointInspector *self, int index, PyObject *text)
{
    if (index == DECODE_JS_ESCAPES)
        return decode_js_escapes(text);
    if (index == STRIP_COMMENTS && !has_sql_comment_trigger(text))
        return strip_shell_noise(text);
    return PyObject_CallOneArg(PyTuple_GET_ITEM(self->decoders, index), text);
}

/* 1 when `text` equals an item of `variants`, 0 when not, -1 on error. */
static int already_found(PyObject *variants, PyObject *text)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(variants); i++) {
        int equal = PyUnicode_Compare(PyList_GET_ITEM(variants, i), text);
        if (equal == 0)
            return 1;
        if (equal == -1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

/* Applies the gated decoders to `text`; appends what is new to `variants` and `next`.
 * 1: the variant limit is reached, 0: go on, -1: error. */
static int decode_once(PointInspector *self, PyObject *text, PyObject *variants, PyObject *next)
{
    unsigned int gates = decoder_gates(text);
    for (int index = 0; gates != 0 && index < DECODER_COUNT; index++) {
        if (!(gates & (1u << index)))
            continue;
        PyObject *decoded = apply_decoder(self, index, text);
        if (decoded == NULL)
            return -1;
        if (!PyUnicode_Check(decoded)) {
            PyErr_SetString(PyExc_TypeError, "a decoder returned something other than a str");
            Py_DECREF(decoded);
            return -1;
        }
        int seen = PyUnicode_Compare(decoded, text) == 0 ? 1 : already_found(variants, decoded);
        if (seen == 0 && (PyList_Append(variants, decoded) < 0 || PyList_Append(next, decoded) < 0))
            seen = -1;
        Py_DECREF(decoded);
        if (seen < 0)
            return -1;
        if (seen == 0 && PyList_GET_SIZE(variants) >= self->max_variants)
            return 1;
    }
    return 0;
}

/* `decoders.decoded_variants(value)`: a new list, or NULL on error. */
PyObject *decoded_variants(PointInspector *self, PyObject *value)
{
    PyObject *variants = PyList_New(1);
    PyObject *frontier = PyList_New(1);
    if (variants == NULL || frontier == NULL)
        goto error;
    PyList_SET_ITEM(variants, 0, Py_NewRef(value));
    PyList_SET_ITEM(frontier, 0, Py_NewRef(value));
    for (int depth = 0; depth < self->max_depth; depth++) {
        PyObject *next = PyList_New(0);
        if (next == NULL)
            goto error;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(frontier); i++) {
            int full = decode_once(self, PyList_GET_ITEM(frontier, i), variants, next);
            if (full != 0) {
                Py_DECREF(next);
                if (full < 0)
                    goto error;
                Py_DECREF(frontier);
                return variants;
            }
        }
        Py_SETREF(frontier, next);
        if (PyList_GET_SIZE(frontier) == 0)
            break;
    }
    Py_DECREF(frontier);
    return variants;
error:
    Py_XDECREF(variants);
    Py_XDECREF(frontier);
    return NULL;
}
