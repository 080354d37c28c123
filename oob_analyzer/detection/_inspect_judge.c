/* The verdicts of the default detectors on one decoded variant, as "may find" or "cannot".
 *
 * Each check is the detector's own pre-check and verdict (SqlInjectionDetector,
 * XssDetector, SignatureDetector) or a superset of it (Log4ShellDetector,
 * OpenRedirectDetector): never "cannot" where the Python detector finds something.
 */
#include "_inspect.h"

/* The ASCII characters and digits of detectors._SQL_SIGNAL (its regex holds a star-slash). */
static const unsigned char SQL_SIGNAL[128] = {
    ['-'] = 1, ['\''] = 1, ['"'] = 1, ['`'] = 1, [';'] = 1, ['('] = 1, [')'] = 1, ['='] = 1, ['<'] = 1,
    ['>'] = 1, ['|'] = 1, ['&'] = 1, ['#'] = 1, ['*'] = 1, ['/'] = 1, ['@'] = 1, ['!'] = 1, ['~'] = 1,
    ['^'] = 1, ['%'] = 1, ['+'] = 1, ['\\'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
    ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
};

/* str.lower of each one-byte character (U+0000 to U+00FF), as str.lower itself gives it at
 * import; `one_byte_lower_ready` is 0 if some character lowers to anything but one one-byte
 * character, and then every non-ASCII text goes to the Python function. */
static Py_UCS1 ONE_BYTE_LOWER[256];
static int one_byte_lower_ready;

/* Per ASCII character: its lower case, and the facts of `variant_facts` it bears (one table
 * look-up each in `ascii_normalized`). FACT_DOLLAR >> 1 is FACT_BRACE: "${" is a '{' right after
 * a '$'. */
enum { FACT_SQL_SIGNAL = 1, FACT_MARKUP = 2, FACT_BRACE = 4, FACT_DOLLAR = 8 };
static unsigned char ASCII_LOWER[128];
static unsigned char ASCII_FACTS[128];

static void ascii_tables_init(void)
{
    for (unsigned char c = 0; c < 128; c++) {
        ASCII_LOWER[c] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
        unsigned char lower = ASCII_LOWER[c];
        ASCII_FACTS[c] = (unsigned char)((SQL_SIGNAL[lower] ? FACT_SQL_SIGNAL : 0) |
                                         (lower == '<' || lower == '=' ? FACT_MARKUP : 0) |
                                         (lower == '{' ? FACT_BRACE : 0) | (lower == '$' ? FACT_DOLLAR : 0));
    }
}

int judge_init(void)
{
    ascii_tables_init();
    one_byte_lower_ready = 0;
    for (Py_UCS4 c = 0; c < 256; c++) {
        PyObject *character = PyUnicode_FromOrdinal((int)c);
        if (character == NULL)
            return -1;
        PyObject *lowered = PyObject_CallMethod(character, "lower", NULL);
        Py_DECREF(character);
        if (lowered == NULL)
            return -1;
        int one = PyUnicode_GET_LENGTH(lowered) == 1 && PyUnicode_READ_CHAR(lowered, 0) < 256;
        if (one)
            ONE_BYTE_LOWER[c] = (Py_UCS1)PyUnicode_READ_CHAR(lowered, 0);
        Py_DECREF(lowered);
        if (!one)
            return 0;
    }
    one_byte_lower_ready = 1;
    return 0;
}

/* `normalize_for_matching(text)` of a non-ASCII text, as a new reference: for one-byte text
 * (Latin-1) each character through the table, NUL dropped; any other by the Python function
 * (str.lower's Unicode rules). ASCII variants are normalized by `ascii_normalized` below. */
static PyObject *normalized(PointInspector *self, PyObject *text)
{
    if (PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND || !one_byte_lower_ready)
        return PyObject_CallOneArg(self->normalize, text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    const Py_UCS1 *chars = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t kept = 0;
    Py_UCS1 widest = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS1 c = ONE_BYTE_LOWER[chars[i]];
        kept += chars[i] != 0;
        widest = c > widest ? c : widest;
    }
    PyObject *lowered = PyUnicode_New(kept, widest);
    if (lowered == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(lowered);
    for (Py_ssize_t i = 0; i < length; i++) {
        if (chars[i] != 0)
            *out++ = ONE_BYTE_LOWER[chars[i]];
    }
    return lowered;
}

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

const KindFacts *kind_facts(PointInspector *self, PyObject *kind)
{
    for (int i = 0; i < KIND_SLOTS; i++) {
        if (self->known_kinds[i].kind == kind)
            return &self->known_kinds[i].facts;
    }
    int slot = self->next_kind_slot;
    self->next_kind_slot = (slot + 1) % KIND_SLOTS;
    self->known_kinds[slot].facts = kind_facts_of(kind);
    Py_XSETREF(self->known_kinds[slot].kind, Py_NewRef(kind));
    return &self->known_kinds[slot].facts;
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

void point_facts(PyObject *kind, const KindFacts *of_kind, PyObject *name, PointFacts *facts)
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

/* A text's characters as PyUnicode_READ reads them: a str's, or the bytes of an ASCII text
 * read as one-byte characters. */
typedef struct {
    int kind;
    const void *data;
    Py_ssize_t length;
} Chars;

static Chars chars_of(PyObject *text)
{
    Chars chars = {PyUnicode_KIND(text), PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text)};
    return chars;
}

static int starts_with_at(const Chars *text, Py_ssize_t at, const char *ascii)
{
    for (Py_ssize_t i = 0; ascii[i] != '\0'; i++) {
        if (at + i >= text->length ||
            PyUnicode_READ(text->kind, text->data, at + i) != (Py_UCS4)(unsigned char)ascii[i])
            return 0;
    }
    return 1;
}

static Py_ssize_t skip_blanks(const Chars *text, Py_ssize_t at)
{
    while (at < text->length && Py_UNICODE_ISSPACE(PyUnicode_READ(text->kind, text->data, at)))
        at++;
    return at;
}

/* `OpenRedirectDetector._OFF_SITE.match`, written out (`\s` is str.isspace, as here):
 *   \s*(?:[/\\]\s*[/\\]|https?:\s*(?:[/\\]\s*\\|\\)|https?://[^/?#]*@|(?:java|vb)script:)
 * Its name test is left to Python: a value that matches defers whatever the name. */
static int may_leave_site(const Chars *text)
{
    Py_ssize_t length = text->length;
    int kind = text->kind;
    const void *data = text->data;
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
        /* Database.scan(data, match_event_handler): the handler appends to self->matched. */
        matched = self->matched;
        if (PyList_GET_SIZE(matched) != 0) { /* left by a scan that raised: not this one's */
            if (PyList_SetSlice(matched, 0, PyList_GET_SIZE(matched), NULL) < 0)
                return -1;
        }
        PyObject *arguments[] = {encoded, self->collect};
        PyObject *result = PyObject_Vectorcall(self->scan, arguments, 2, NULL);
        if (result == NULL)
            return -1;
        Py_DECREF(result);
        Py_INCREF(matched);
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
    if (matched == self->matched && PyList_GET_SIZE(matched) != 0 &&
        PyList_SetSlice(matched, 0, PyList_GET_SIZE(matched), NULL) < 0)
        applies = -1;
    Py_DECREF(matched);
    return applies;
}

/* 1 when a default detector may find something in a normalized variant, 0 when none can,
 * -1 on error: `text` is its characters, `encoded` its UTF-8; `as_str` the normalized str, or
 * NULL when it is ASCII and made here only if the Python rules need it. */
static int may_find(PointInspector *self, const Chars *text, PyObject *as_str, PyObject *encoded,
                    const VariantFacts *facts, const PointFacts *point)
{
    if (facts->lookup)
        return 1; /* Log4ShellDetector: its lookups are left to Python */
    if (point->of_kind.redirect_kind && may_leave_site(text))
        return 1; /* OpenRedirectDetector: the name test and the exact match are left to Python */
    const char *bytes = PyBytes_AS_STRING(encoded);
    size_t size = (size_t)PyBytes_GET_SIZE(encoded);
    if (point->sqli && text->length >= 3 && facts->sql_signal) {
        char fingerprint[FINGERPRINT_BYTES] = {0};
        if (self->sqli(bytes, size, fingerprint)) {
            fingerprint[FINGERPRINT_BYTES - 1] = '\0';
            if (!prose_fingerprint(fingerprint))
                return 1;
        }
    }
    if (point->of_kind.tokenizers && facts->markup && self->xss(bytes, size) != 0)
        return 1;
    if (as_str != NULL)
        return signature_matches(self, as_str, encoded, point->kind);
    if (self->scan == Py_None && self->matching_rules == Py_None)
        return 0;
    PyObject *made = self->scan == Py_None ? PyUnicode_DecodeASCII(bytes, (Py_ssize_t)size, NULL) : NULL;
    if (made == NULL && PyErr_Occurred())
        return -1;
    int found = signature_matches(self, made, encoded, point->kind);
    Py_XDECREF(made);
    return found;
}

/* `normalize_for_matching(variant)` of an ASCII variant, made straight into the bytes that
 * libinjection and hyperscan read (ASCII: its UTF-8), with the facts of the normalized text,
 * in one pass: lower case, NUL dropped. */
static PyObject *ascii_normalized(PyObject *variant, VariantFacts *facts)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(variant);
    const Py_UCS1 *chars = PyUnicode_1BYTE_DATA(variant);
    PyObject *encoded = PyBytes_FromStringAndSize(NULL, length);
    if (encoded == NULL)
        return NULL;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(encoded);
    Py_ssize_t kept = 0;
    unsigned int seen = 0, lookups = 0, after_dollar = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        unsigned char c = chars[i];
        if (c == 0)
            continue; /* dropped: the characters either side are neighbours for "${" */
        unsigned int facts_of_c = ASCII_FACTS[c];
        out[kept++] = ASCII_LOWER[c];
        seen |= facts_of_c;
        lookups |= facts_of_c & after_dollar; /* FACT_BRACE right after a '$' */
        after_dollar = (facts_of_c & FACT_DOLLAR) >> 1;
    }
    if (kept < length && _PyBytes_Resize(&encoded, kept) < 0)
        return NULL;
    facts->sql_signal = (seen & FACT_SQL_SIGNAL) != 0;
    facts->markup = (seen & FACT_MARKUP) != 0;
    facts->lookup = lookups != 0;
    return encoded;
}

/* 1 when the normalized `variant` is clean for every detector, 0 when not proven, -1 on error. */
int variant_is_clean(PointInspector *self, PyObject *variant, const PointFacts *facts)
{
    VariantFacts of_text;
    int found;
    if (PyUnicode_IS_ASCII(variant)) {
        PyObject *encoded = ascii_normalized(variant, &of_text);
        if (encoded == NULL)
            return -1;
        Chars text = {PyUnicode_1BYTE_KIND, PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded)};
        found = may_find(self, &text, NULL, encoded, &of_text, facts);
        Py_DECREF(encoded);
        return found < 0 ? -1 : !found;
    }
    PyObject *text = normalized(self, variant);
    if (text == NULL)
        return -1;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "normalize returned something other than a str");
        Py_DECREF(text);
        return -1;
    }
    variant_facts(text, &of_text);
    PyObject *encoded = PyUnicode_IS_ASCII(text) ? PyBytes_FromStringAndSize((const char *)PyUnicode_1BYTE_DATA(text),
                                                                              PyUnicode_GET_LENGTH(text))
                                                 : PyUnicode_AsEncodedString(text, "utf-8", "replace");
    if (encoded == NULL) {
        Py_DECREF(text);
        return -1;
    }
    Chars chars = chars_of(text);
    found = may_find(self, &chars, text, encoded, &of_text, facts);
    Py_DECREF(encoded);
    Py_DECREF(text);
    return found < 0 ? -1 : !found;
}
