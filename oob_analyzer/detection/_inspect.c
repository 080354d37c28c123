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
 * The decoding is in _inspect_decode.c, the detectors' verdicts in _inspect_judge.c, the
 * engine's loops over points and header fields (`judge_part`, `judge_points`,
 * `judge_headers`, with the verdict caches) in _inspect_loops.c; this file holds the type and the point-level early
 * returns.
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
#include "_inspect.h"

#include <dlfcn.h>

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

/* The variants of the point that a detector may find something in (a new list, in the order
 * of decoded_variants), None when there is none, NULL on error. */
PyObject *point_suspects(PointInspector *self, PyObject *name, PyObject *value, PyObject *kind)
{
    const KindFacts *of_kind = kind_facts(self, kind);
    if (of_kind->anomaly)
        return decoded_variants(self, value); /* ProtocolAnomalyDetector's points: all to Python */
    int is_inert = !of_kind->header && inert(value);
    unsigned int gates = decoder_gates(value);
    if (is_inert && gates == 0)
        Py_RETURN_NONE;
    PointFacts facts;
    point_facts(kind, of_kind, name, &facts);
    if (gates == 0) {
        /* No decoder changes the value: decoded_variants would be [value], judged alone
         * here without the lists of a decoding. */
        int clean = variant_is_clean(self, value, &facts);
        if (clean < 0)
            return NULL;
        if (clean)
            Py_RETURN_NONE;
        PyObject *suspects = PyList_New(1);
        if (suspects != NULL)
            PyList_SET_ITEM(suspects, 0, Py_NewRef(value));
        return suspects;
    }
    PyObject *variants = decoded_variants(self, value);
    if (variants == NULL)
        return NULL;
    if (is_inert && PyList_GET_SIZE(variants) == 1) {
        Py_DECREF(variants);
        Py_RETURN_NONE;
    }
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

/* Database.scan's match handler, bound to the inspector's `matched` list: (id, from, to,
 * flags, context) appends id to that list. Bound, it needs no context: `scan` is called with
 * two arguments, which its argument parsing reads faster than four. */
static PyObject *collect_rule(PyObject *matched, PyObject *const *arguments, Py_ssize_t count)
{
    if (count != 5 || !PyList_Check(matched)) {
        PyErr_SetString(PyExc_TypeError, "collect_rule(id, from, to, flags, context), bound to a list");
        return NULL;
    }
    if (PyList_Append(matched, arguments[0]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef collect_rule_method = {"collect_rule", (PyCFunction)(void (*)(void))collect_rule,
                                          METH_FASTCALL, "Appends a matched rule id to the list it is bound to."};

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
    PyObject *matched = PyList_New(0);
    PyObject *collect = matched == NULL ? NULL : PyCFunction_New(&collect_rule_method, matched);
    if (collect == NULL) {
        Py_XDECREF(matched);
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
    Py_XSETREF(self->matched, matched);
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
    Py_VISIT(self->matched);
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
    Py_CLEAR(self->matched);
    for (int i = 0; i < KIND_SLOTS; i++)
        Py_CLEAR(self->known_kinds[i].kind);
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

static PyObject *PointInspector_judge_points(PyObject *self, PyObject *const *arguments, Py_ssize_t count)
{
    return ready((PointInspector *)self) == NULL ? NULL : judge_points((PointInspector *)self, arguments, count);
}

static PyObject *PointInspector_judge_part(PyObject *self, PyObject *const *arguments, Py_ssize_t count)
{
    return ready((PointInspector *)self) == NULL ? NULL : judge_part((PointInspector *)self, arguments, count);
}

static PyObject *PointInspector_judge_headers(PyObject *self, PyObject *const *arguments, Py_ssize_t count)
{
    return ready((PointInspector *)self) == NULL ? NULL : judge_headers((PointInspector *)self, arguments, count);
}

static PyMethodDef PointInspector_methods[] = {
    {"judge_points", (PyCFunction)(void (*)(void))PointInspector_judge_points, METH_FASTCALL,
     "judge_points(points, cache, inspect_suspects): the findings of the points, in order, through the cache."},
    {"judge_part", (PyCFunction)(void (*)(void))PointInspector_judge_part, METH_FASTCALL,
     "judge_part(part, text, points_of, part_cache, point_cache, inspect_suspects): the findings of the "
     "points of the path or query, through the caches."},
    {"judge_headers", (PyCFunction)(void (*)(void))PointInspector_judge_headers, METH_FASTCALL,
     "judge_headers(headers, header_cache, point_cache, header_points, inspect_suspects): the findings of "
     "the header fields, in order, through the caches."},
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
    decode_init();
    if (loops_init() < 0 || judge_init() < 0 || PyType_Ready(&PointInspectorType) < 0)
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
