/* PointInspector: the decoded variants of a request point that a detector may find
 * something in; for nearly every point of benign traffic, none.
 *
 * Where it sits: oob_analyzer/detection/engine.py asks `suspect_variants(point)` before its
 * Python detector loop. None means that loop would find nothing in any variant, so the engine
 * returns [] at once; a list holds the variants not proven clean, in decoding order, and the
 * Python detectors run over those alone (a variant left out is one in which none of them can
 * find anything, so the findings and their order are the same). So the Python detectors stay
 * the only reference for every finding, and this code only has to be sound, never complete:
 * whenever it is unsure (a Log4j lookup, a redirect-looking value, an anomaly point, any
 * detector verdict) it keeps the variant. tests/detection/test_point_inspector.py holds it to
 * that over the corpus, generated traffic and hypothesis input.
 *
 * What it repeats of the Python path, in order:
 * - the inert early returns (`_INERT`, `needs_no_decoding`, `_ALWAYS_INSPECTED`);
 * - `decoded_variants`: the same decoders in the same order, breadth first, with the same
 *   depth and variant limits and the same dedupe. Each decoder runs only when its own
 *   trigger is in the text (without it, it returns the text unchanged): that keeps nearly
 *   every point away from decoding. The JS escapes and the shell-noise half of
 *   strip_comments, the ones benign values trigger most after base64, are done here; every
 *   other decoder is the Python callable of `decoders._DECODERS`, exact by construction;
 * - per variant `normalize_for_matching` (ASCII in C, anything else by the Python function);
 * - per normalized variant, every default detector's verdict: libinjection SQLi (with the
 *   prose-fingerprint filter) and XSS called straight from the wrapper's shared object, the
 *   signature database's `scan` with a C callback collecting rule ids, and conservative
 *   supersets of the Log4Shell and open-redirect triggers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>

typedef int (*sqli_function)(const char *text, size_t length, char fingerprint[]);
typedef int (*xss_function)(const char *text, size_t length);

#define DECODER_COUNT 8
#define FINGERPRINT_BYTES 8
#define INERT_MAX_CHARS 12
/* The ASCII characters and digits of detectors._SQL_SIGNAL (its regex holds a star-slash). */
static const unsigned char SQL_SIGNAL[128] = {
    ['-'] = 1, ['\''] = 1, ['"'] = 1, ['`'] = 1, [';'] = 1, ['('] = 1, [')'] = 1, ['='] = 1, ['<'] = 1,
    ['>'] = 1, ['|'] = 1, ['&'] = 1, ['#'] = 1, ['*'] = 1, ['/'] = 1, ['@'] = 1, ['!'] = 1, ['~'] = 1,
    ['^'] = 1, ['%'] = 1, ['+'] = 1, ['\\'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
    ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
};

/* A bit per decoder of `decoders._DECODERS`, in its order: set when the decoder's trigger is in
 * a text. A decoder whose bit is clear returns the text unchanged (its own early return). */
enum {
    GATE_PERCENT = 1 << 0,         /* percent_decode: '%' or '+' */
    GATE_PERCENT_UNICODE = 1 << 1, /* decode_percent_unicode: "%u" or "%U" */
    GATE_JS = 1 << 2,              /* decode_js_escapes: '\\' */
    GATE_HTML = 1 << 3,            /* decode_html_entities: '&' */
    GATE_OVERLONG = 1 << 4,        /* decode_overlong_utf8: U+00C0 or U+00C1 */
    GATE_BASE64 = 1 << 5,          /* decode_base64: 8+ characters with A-Z and a-z in them */
    GATE_COMMENTS = 1 << 6,        /* strip_comments: "/ *" "--" '#' '$' '\'' '"' '\\' */
    GATE_TAGS = 1 << 7,            /* strip_interleaved_tags: '<' */
};
enum { DECODE_JS_ESCAPES = 2, STRIP_COMMENTS = 6 }; /* the indexes of the decoders done in C */

/* What a point's kind decides: worked out once per kind object (a handful exist, the same
 * interned strings point after point). */
typedef struct {
    int anomaly;       /* ProtocolAnomalyDetector's kind: every variant goes to Python */
    int header;        /* in _ALWAYS_INSPECTED: never inert */
    int tokenizers;    /* SQLi and XSS judge this kind (not name, json_key, anomaly, xml) */
    int redirect_kind; /* OpenRedirectDetector.kinds holds this kind */
} KindFacts;

typedef struct {
    PyObject_HEAD
    PyObject *decoders;      /* tuple of the DECODER_COUNT Python decoders, in order */
    PyObject *normalize;     /* decoders.normalize_for_matching, for non-ASCII text */
    PyObject *scan;          /* the signature database's `scan`, or None */
    PyObject *matching_rules; /* SignatureDetector._matching_rules (no hyperscan), or None */
    PyObject *rule_kinds;    /* per rule: (kinds or None, skip_kinds) */
    PyObject *collect;       /* the C match handler given to `scan` */
    PyObject *last_kind;     /* the kind of the last point, and what it decides */
    KindFacts last_kind_facts;
    void *library;           /* dlopen handle of libinjection's shared object */
    sqli_function sqli;
    xss_function xss;
    int max_depth;
    Py_ssize_t max_variants;
} PointInspector;

/* --- decoders --------------------------------------------------------------------------- */

static unsigned int decoder_gates(PyObject *text)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    unsigned int gates = 0;
    int upper = 0, lower = 0;
    Py_UCS4 previous = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= 'a' && c <= 'z') {
            lower = 1;
            if (c == 'u' && previous == '%')
                gates |= GATE_PERCENT_UNICODE;
        } else if (c >= 'A' && c <= 'Z') {
            upper = 1;
            if (c == 'U' && previous == '%')
                gates |= GATE_PERCENT_UNICODE;
        } else if (c == '%' || c == '+') {
            gates |= GATE_PERCENT;
        } else if (c == '\\') {
            gates |= GATE_JS | GATE_COMMENTS;
        } else if (c == '&') {
            gates |= GATE_HTML;
        } else if (c == 0xC0 || c == 0xC1) {
            gates |= GATE_OVERLONG;
        } else if (c == '#' || c == '$' || c == '\'' || c == '"') {
            gates |= GATE_COMMENTS;
        } else if ((c == '*' && previous == '/') || (c == '-' && previous == '-')) {
            gates |= GATE_COMMENTS;
        } else if (c == '<') {
            gates |= GATE_TAGS;
        }
        previous = c;
    }
    if (length >= 8 && upper && lower)
        gates |= GATE_BASE64;
    return gates;
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
    Py_ssize_t i = 0;
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
static PyObject *decoded_variants(PointInspector *self, PyObject *value)
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

/* `normalize_for_matching(text)`: lower case without NUL, as a new reference. */
static PyObject *normalized(PointInspector *self, PyObject *text)
{
    if (!PyUnicode_IS_ASCII(text))
        return PyObject_CallOneArg(self->normalize, text); /* str.lower's Unicode rules */
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    const Py_UCS1 *chars = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t kept = 0;
    int changes = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        kept += chars[i] != 0;
        changes |= chars[i] == 0 || (chars[i] >= 'A' && chars[i] <= 'Z');
    }
    if (!changes)
        return Py_NewRef(text);
    PyObject *lowered = PyUnicode_New(kept, 127);
    if (lowered == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(lowered);
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS1 c = chars[i];
        if (c != 0)
            *out++ = (c >= 'A' && c <= 'Z') ? (Py_UCS1)(c + ('a' - 'A')) : c;
    }
    return lowered;
}

/* --- what the detectors look at ----------------------------------------------------------- */

/* What a point's kind and name decide, once per point. */
typedef struct {
    PyObject *kind;
    KindFacts of_kind;
    int sqli; /* SQLi judges this point (a tokenizer kind, not a media-type header) */
} PointFacts;

static int equals_ascii(PyObject *text, const char *ascii)
{
    return PyUnicode_CompareWithASCIIString(text, ascii) == 0;
}

static KindFacts kind_facts_of(PyObject *kind)
{
    KindFacts facts;
    facts.anomaly = equals_ascii(kind, "anomaly");
    facts.header = equals_ascii(kind, "header");
    facts.tokenizers = !(equals_ascii(kind, "name") || equals_ascii(kind, "json_key") || facts.anomaly ||
                         equals_ascii(kind, "xml"));
    facts.redirect_kind = equals_ascii(kind, "query") || equals_ascii(kind, "body.form") ||
                          equals_ascii(kind, "json") || equals_ascii(kind, "multipart");
    return facts;
}

static const KindFacts *kind_facts(PointInspector *self, PyObject *kind)
{
    if (kind != self->last_kind) {
        self->last_kind_facts = kind_facts_of(kind);
        Py_XSETREF(self->last_kind, Py_NewRef(kind));
    }
    return &self->last_kind_facts;
}

/* `_MEDIA_TYPE_HEADERS`: media ranges such as `text/ *` read as SQL comments to libinjection. */
static int media_type_header(PyObject *name)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(name);
    if (length != 13 && length != 19 && length != 22)
        return 0;
    return equals_ascii(name, "header.accept") || equals_ascii(name, "header.content-type") ||
           equals_ascii(name, "header.accept-encoding");
}

static void point_facts(PyObject *kind, const KindFacts *of_kind, PyObject *name, PointFacts *facts)
{
    facts->kind = kind;
    facts->of_kind = *of_kind;
    facts->sqli = of_kind->tokenizers && !media_type_header(name);
}

/* What the detectors' own pre-checks look for in a normalized variant, in one pass. */
typedef struct {
    int lookup;      /* "${": Log4ShellDetector looks further */
    int markup;      /* '<' or '=': XssDetector asks libinjection */
    int sql_signal;  /* `_SQL_SIGNAL` may match: an ASCII signal character or digit, or any
                        non-ASCII character (`\d` matches every Unicode decimal digit) */
} VariantFacts;

static void variant_facts(PyObject *text, VariantFacts *facts)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_UCS4 previous = 0;
    facts->lookup = facts->markup = facts->sql_signal = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c > 127 || SQL_SIGNAL[c])
            facts->sql_signal = 1;
        if (c == '<' || c == '=')
            facts->markup = 1;
        if (c == '{' && previous == '$')
            facts->lookup = 1;
        previous = c;
    }
}

static int starts_with_at(PyObject *text, Py_ssize_t at, const char *ascii)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    for (Py_ssize_t i = 0; ascii[i] != '\0'; i++) {
        if (at + i >= length || PyUnicode_READ(kind, data, at + i) != (Py_UCS4)(unsigned char)ascii[i])
            return 0;
    }
    return 1;
}

static Py_ssize_t skip_blanks(PyObject *text, Py_ssize_t at)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    while (at < length && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, at)))
        at++;
    return at;
}

/* `OpenRedirectDetector._OFF_SITE.match`, written out (`\s` is str.isspace, as here):
 *   \s*(?:[/\\]\s*[/\\]|https?:\s*(?:[/\\]\s*\\|\\)|https?://[^/?#]*@|(?:java|vb)script:)
 * Its name test is left to Python: a value that matches defers whatever the name. */
static int may_leave_site(PyObject *text)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
#define AT(index) ((index) < length ? PyUnicode_READ(kind, data, (index)) : 0)
#define SLASH(c) ((c) == '/' || (c) == '\\')
    Py_ssize_t at = skip_blanks(text, 0);
    if (SLASH(AT(at)))
        return SLASH(AT(skip_blanks(text, at + 1)));
    if (starts_with_at(text, at, "javascript:") || starts_with_at(text, at, "vbscript:"))
        return 1;
    if (!starts_with_at(text, at, "http"))
        return 0;
    at += 4;
    if (AT(at) == 's')
        at++;
    if (AT(at) != ':')
        return 0;
    at++;
    Py_ssize_t after = skip_blanks(text, at);
    if (AT(after) == '\\' || (AT(after) == '/' && AT(skip_blanks(text, after + 1)) == '\\'))
        return 1;
    if (AT(at) != '/' || AT(at + 1) != '/')
        return 0;
    for (Py_ssize_t i = at + 2; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '@')
            return 1;
        if (c == '/' || c == '?' || c == '#')
            return 0;
    }
    return 0;
#undef SLASH
#undef AT
}

/* `_PROSE_FINGERPRINT.fullmatch`: `[n&ov]+`, `[1n]c` or `sE.*`. */
static int prose_fingerprint(const char *fingerprint)
{
    size_t length = strlen(fingerprint);
    if (length >= 2 && fingerprint[0] == 's' && fingerprint[1] == 'E')
        return 1;
    if (length == 2 && (fingerprint[0] == '1' || fingerprint[0] == 'n') && fingerprint[1] == 'c')
        return 1;
    if (length == 0)
        return 0;
    for (size_t i = 0; i < length; i++) {
        if (!strchr("n&ov", fingerprint[i]))
            return 0;
    }
    return 1;
}

/* 1 when a rule of `matched` (list of rule indexes) applies to the point's kind, -1 on error. */
static int any_rule_applies(PointInspector *self, PyObject *matched, PyObject *kind)
{
    Py_ssize_t rules = PyTuple_GET_SIZE(self->rule_kinds);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(matched); i++) {
        Py_ssize_t index = PyLong_AsSsize_t(PyList_GET_ITEM(matched, i));
        if (index == -1 && PyErr_Occurred())
            return -1;
        if (index < 0 || index >= rules)
            return 1; /* not a rule this inspector knows: not proven clean */
        PyObject *limits = PyTuple_GET_ITEM(self->rule_kinds, index);
        PyObject *kinds = PyTuple_GET_ITEM(limits, 0);
        int allowed = kinds == Py_None ? 1 : PySequence_Contains(kinds, kind);
        int skipped = PySequence_Contains(PyTuple_GET_ITEM(limits, 1), kind);
        if (allowed < 0 || skipped < 0)
            return -1;
        if (allowed && !skipped)
            return 1;
    }
    return 0;
}

/* 1 when some signature rule matches `text` (as `encoded`, its UTF-8) and applies to `kind`. */
static int signature_matches(PointInspector *self, PyObject *text, PyObject *encoded, PyObject *kind)
{
    PyObject *matched;
    if (self->scan != Py_None) {
        matched = PyList_New(0);
        if (matched == NULL)
            return -1;
        PyObject *flags = PyLong_FromLong(0);
        if (flags == NULL) {
            Py_DECREF(matched);
            return -1;
        }
        /* Positional, as Database.scan(data, match_event_handler, flags, context). */
        PyObject *arguments[] = {encoded, self->collect, flags, matched};
        PyObject *result = PyObject_Vectorcall(self->scan, arguments, 4, NULL);
        Py_DECREF(flags);
        if (result == NULL) {
            Py_DECREF(matched);
            return -1;
        }
        Py_DECREF(result);
    } else if (self->matching_rules != Py_None) {
        matched = PyObject_CallOneArg(self->matching_rules, text);
        if (matched == NULL)
            return -1;
        if (!PyList_Check(matched)) {
            Py_DECREF(matched);
            PyErr_SetString(PyExc_TypeError, "matching_rules returned something other than a list");
            return -1;
        }
    } else {
        return 0;
    }
    int applies = PyList_GET_SIZE(matched) == 0 ? 0 : any_rule_applies(self, matched, kind);
    Py_DECREF(matched);
    return applies;
}

/* 1 when a default detector may find something in the normalized variant `text`, 0 when none
 * can, -1 on error. */
static int may_find(PointInspector *self, PyObject *text, const PointFacts *point)
{
    VariantFacts facts;
    variant_facts(text, &facts);
    if (facts.lookup)
        return 1; /* Log4ShellDetector: its lookups are left to Python */
    if (point->of_kind.redirect_kind && may_leave_site(text))
        return 1; /* OpenRedirectDetector: the name test and the exact match are left to Python */
    PyObject *encoded = PyUnicode_IS_ASCII(text)
                            ? PyBytes_FromStringAndSize((const char *)PyUnicode_1BYTE_DATA(text),
                                                        PyUnicode_GET_LENGTH(text))
                            : PyUnicode_AsEncodedString(text, "utf-8", "replace");
    if (encoded == NULL)
        return -1;
    const char *bytes = PyBytes_AS_STRING(encoded);
    size_t size = (size_t)PyBytes_GET_SIZE(encoded);
    int found = 0;
    if (point->sqli && PyUnicode_GET_LENGTH(text) >= 3 && facts.sql_signal) {
        char fingerprint[FINGERPRINT_BYTES] = {0};
        if (self->sqli(bytes, size, fingerprint)) {
            fingerprint[FINGERPRINT_BYTES - 1] = '\0';
            found = !prose_fingerprint(fingerprint);
        }
    }
    if (!found && point->of_kind.tokenizers && facts.markup)
        found = self->xss(bytes, size) != 0;
    if (!found)
        found = signature_matches(self, text, encoded, point->kind);
    Py_DECREF(encoded);
    return found;
}

/* --- the inert early returns ---------------------------------------------------------------- */

/* `_INERT.fullmatch(value)`: at most 12 of A-Z a-z 0-9 _ . - */
static int inert(PyObject *value)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(value);
    if (length > INERT_MAX_CHARS || !PyUnicode_IS_ASCII(value))
        return 0;
    const Py_UCS1 *chars = PyUnicode_1BYTE_DATA(value);
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS1 c = chars[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* 1 when the normalized `text` is clean for every detector, 0 when not proven, -1 on error. */
static int variant_is_clean(PointInspector *self, PyObject *variant, const PointFacts *facts)
{
    PyObject *text = normalized(self, variant);
    if (text == NULL)
        return -1;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "normalize returned something other than a str");
        Py_DECREF(text);
        return -1;
    }
    int found = may_find(self, text, facts);
    Py_DECREF(text);
    return found < 0 ? -1 : !found;
}

/* The variants of the point that a detector may find something in (a new list, in the order
 * of decoded_variants), None when there is none, NULL on error. */
static PyObject *point_suspects(PointInspector *self, PyObject *name, PyObject *value, PyObject *kind)
{
    const KindFacts *of_kind = kind_facts(self, kind);
    if (of_kind->anomaly)
        return decoded_variants(self, value); /* ProtocolAnomalyDetector's points: all to Python */
    int is_inert = !of_kind->header && inert(value);
    if (is_inert && decoder_gates(value) == 0)
        Py_RETURN_NONE;
    PyObject *variants = decoded_variants(self, value);
    if (variants == NULL)
        return NULL;
    if (is_inert && PyList_GET_SIZE(variants) == 1) {
        Py_DECREF(variants);
        Py_RETURN_NONE;
    }
    PointFacts facts;
    point_facts(kind, of_kind, name, &facts);
    PyObject *suspects = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(variants); i++) {
        PyObject *variant = PyList_GET_ITEM(variants, i);
        int clean = variant_is_clean(self, variant, &facts);
        if (clean == 1)
            continue;
        if (clean < 0 || (suspects == NULL && (suspects = PyList_New(0)) == NULL) ||
            PyList_Append(suspects, variant) < 0) {
            Py_XDECREF(suspects);
            Py_DECREF(variants);
            return NULL;
        }
    }
    Py_DECREF(variants);
    if (suspects == NULL)
        Py_RETURN_NONE;
    return suspects;
}

/* --- the type -------------------------------------------------------------------------------- */

static PyObject *suspect_variants(PointInspector *self, PyObject *point)
{
    if (!PyTuple_Check(point) || PyTuple_GET_SIZE(point) != 3) {
        PyErr_SetString(PyExc_TypeError, "suspect_variants() takes a RequestPoint (name, value, kind)");
        return NULL;
    }
    PyObject *name = PyTuple_GET_ITEM(point, 0);
    PyObject *value = PyTuple_GET_ITEM(point, 1);
    PyObject *kind = PyTuple_GET_ITEM(point, 2);
    if (!PyUnicode_Check(name) || !PyUnicode_Check(value) || !PyUnicode_Check(kind)) {
        PyErr_SetString(PyExc_TypeError, "a RequestPoint's name, value and kind are str");
        return NULL;
    }
    return point_suspects(self, name, value, kind);
}

static PyObject *variants_of(PointInspector *self, PyObject *value)
{
    if (!PyUnicode_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "decoded_variants() takes a str");
        return NULL;
    }
    return decoded_variants(self, value);
}

/* Database.scan's match handler: (id, from, to, flags, context) appends id to context. */
static PyObject *collect_rule(PyObject *module, PyObject *const *arguments, Py_ssize_t count)
{
    (void)module;
    if (count != 5 || !PyList_Check(arguments[4])) {
        PyErr_SetString(PyExc_TypeError, "collect_rule(id, from, to, flags, matched: list)");
        return NULL;
    }
    if (PyList_Append(arguments[4], arguments[0]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef collect_rule_method = {"collect_rule", (PyCFunction)(void (*)(void))collect_rule,
                                          METH_FASTCALL, "Appends a matched rule id to the context list."};

static int check_rule_kinds(PyObject *rule_kinds)
{
    if (!PyTuple_Check(rule_kinds))
        goto wrong;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(rule_kinds); i++) {
        PyObject *limits = PyTuple_GET_ITEM(rule_kinds, i);
        if (!PyTuple_Check(limits) || PyTuple_GET_SIZE(limits) != 2 ||
            !(PyTuple_GET_ITEM(limits, 0) == Py_None || PyAnySet_Check(PyTuple_GET_ITEM(limits, 0))) ||
            !PyAnySet_Check(PyTuple_GET_ITEM(limits, 1)))
            goto wrong;
    }
    return 0;
wrong:
    PyErr_SetString(PyExc_TypeError, "rule_kinds: a tuple of (frozenset or None, frozenset) per rule");
    return -1;
}

static int PointInspector_init(PointInspector *self, PyObject *args, PyObject *kwds)
{
    static char *keywords[] = {"decoders", "normalize", "libinjection_path", "scan", "matching_rules",
                               "rule_kinds", "max_depth", "max_variants", NULL};
    PyObject *decoders, *normalize, *path, *scan, *matching_rules, *rule_kinds;
    int max_depth;
    Py_ssize_t max_variants;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "$O!OUOOO!in", keywords, &PyTuple_Type, &decoders, &normalize,
                                     &path, &scan, &matching_rules, &PyTuple_Type, &rule_kinds, &max_depth,
                                     &max_variants))
        return -1;
    if (PyTuple_GET_SIZE(decoders) != DECODER_COUNT) {
        PyErr_Format(PyExc_ValueError, "decoders: the %d of decoders._DECODERS, in order", DECODER_COUNT);
        return -1;
    }
    if (check_rule_kinds(rule_kinds) < 0)
        return -1;
    if (max_variants < 1 || max_depth < 0) {
        PyErr_SetString(PyExc_ValueError, "max_variants must be at least 1 and max_depth not negative");
        return -1;
    }
    const char *library_path = PyUnicode_AsUTF8(path);
    if (library_path == NULL)
        return -1;
    void *library = dlopen(library_path, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        PyErr_Format(PyExc_OSError, "cannot open libinjection's library: %s", dlerror());
        return -1;
    }
    void *sqli = dlsym(library, "libinjection_sqli");
    void *xss = dlsym(library, "libinjection_xss");
    if (sqli == NULL || xss == NULL) {
        dlclose(library);
        PyErr_SetString(PyExc_OSError, "libinjection's library exports no libinjection_sqli/libinjection_xss");
        return -1;
    }
    PyObject *collect = PyCFunction_New(&collect_rule_method, NULL);
    if (collect == NULL) {
        dlclose(library);
        return -1;
    }
    if (self->library != NULL)
        dlclose(self->library);
    self->library = library;
    /* Function pointers from dlsym: POSIX guarantees the conversion through the object pointer. */
    *(void **)(&self->sqli) = sqli;
    *(void **)(&self->xss) = xss;
    Py_XSETREF(self->collect, collect);
    Py_XSETREF(self->decoders, Py_NewRef(decoders));
    Py_XSETREF(self->normalize, Py_NewRef(normalize));
    Py_XSETREF(self->scan, Py_NewRef(scan));
    Py_XSETREF(self->matching_rules, Py_NewRef(matching_rules));
    Py_XSETREF(self->rule_kinds, Py_NewRef(rule_kinds));
    self->max_depth = max_depth;
    self->max_variants = max_variants;
    return 0;
}

static int PointInspector_traverse(PointInspector *self, visitproc visit, void *arg)
{
    Py_VISIT(self->decoders);
    Py_VISIT(self->normalize);
    Py_VISIT(self->scan);
    Py_VISIT(self->matching_rules);
    Py_VISIT(self->rule_kinds);
    Py_VISIT(self->collect);
    return 0;
}

static int PointInspector_clear(PointInspector *self)
{
    Py_CLEAR(self->decoders);
    Py_CLEAR(self->normalize);
    Py_CLEAR(self->scan);
    Py_CLEAR(self->matching_rules);
    Py_CLEAR(self->rule_kinds);
    Py_CLEAR(self->collect);
    Py_CLEAR(self->last_kind);
    return 0;
}

static void PointInspector_dealloc(PointInspector *self)
{
    PyObject_GC_UnTrack(self);
    PointInspector_clear(self);
    if (self->library != NULL)
        dlclose(self->library);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *ready(PointInspector *self)
{
    if (self->decoders == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "PointInspector.__init__ was not called");
        return NULL;
    }
    return (PyObject *)self;
}

static PyObject *PointInspector_suspect_variants(PyObject *self, PyObject *point)
{
    return ready((PointInspector *)self) == NULL ? NULL : suspect_variants((PointInspector *)self, point);
}

static PyObject *PointInspector_decoded_variants(PyObject *self, PyObject *value)
{
    return ready((PointInspector *)self) == NULL ? NULL : variants_of((PointInspector *)self, value);
}

static PyMethodDef PointInspector_methods[] = {
    {"suspect_variants", PointInspector_suspect_variants, METH_O,
     "The decoded variants of the point a detector may find something in, in order; None: none."},
    {"decoded_variants", PointInspector_decoded_variants, METH_O,
     "decoders.decoded_variants(value), as the inspector computes it."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PointInspectorType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "oob_analyzer.detection._inspect.PointInspector",
    .tp_basicsize = sizeof(PointInspector),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Proves request points clean for the default detectors, or defers to the Python path.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)PointInspector_init,
    .tp_dealloc = (destructor)PointInspector_dealloc,
    .tp_traverse = (traverseproc)PointInspector_traverse,
    .tp_clear = (inquiry)PointInspector_clear,
    .tp_methods = PointInspector_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "oob_analyzer.detection._inspect",
    "The clean-or-defer fast path of DetectionEngine._inspect_point.", -1, NULL,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__inspect(void)
{
    if (PyType_Ready(&PointInspectorType) < 0)
        return NULL;
    PyObject *created = PyModule_Create(&module);
    if (created == NULL)
        return NULL;
    if (PyModule_AddObjectRef(created, "PointInspector", (PyObject *)&PointInspectorType) < 0) {
        Py_DECREF(created);
        return NULL;
    }
    return created;
}
