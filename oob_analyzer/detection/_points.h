/* What the compiled point builders share (_json_points.c, _request_points.c): the bound on a
 * point's value and the making of a point, as request_point.py does them. */

#ifndef OOB_DETECTION_POINTS_H
#define OOB_DETECTION_POINTS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define MAX_POINT_CHARS 8192 /* request_point.MAX_POINT_CHARS */
#define EDGE_CHARS (MAX_POINT_CHARS / 2)

/* request_point.bounded: the text itself, or its head and tail joined by a newline. */
static inline PyObject *bounded(PyObject *text)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    if (length <= MAX_POINT_CHARS)
        return Py_NewRef(text);
    PyObject *head = PyUnicode_Substring(text, 0, EDGE_CHARS);
    PyObject *tail = PyUnicode_Substring(text, length - EDGE_CHARS, length);
    PyObject *result = NULL;
    if (head != NULL && tail != NULL)
        result = PyUnicode_FromFormat("%U\n%U", head, tail);
    Py_XDECREF(head);
    Py_XDECREF(tail);
    return result;
}

/* Append point_type(name, value, kind) to `points`; steals `name` and `value` (even on failure). */
static inline int append_point(PyObject *points, PyTypeObject *point_type, PyObject *name, PyObject *value,
                               PyObject *kind)
{
    if (name == NULL || value == NULL) {
        Py_XDECREF(name);
        Py_XDECREF(value);
        return -1;
    }
    /* tuple.__new__(point_type, (name, value, kind)): the NamedTuple without its Python __new__. */
    PyObject *point = point_type->tp_alloc(point_type, 3);
    if (point == NULL) {
        Py_DECREF(name);
        Py_DECREF(value);
        return -1;
    }
    PyTuple_SET_ITEM(point, 0, name);
    PyTuple_SET_ITEM(point, 1, value);
    PyTuple_SET_ITEM(point, 2, Py_NewRef(kind));
    int failed = PyList_Append(points, point);
    Py_DECREF(point);
    return failed;
}

#endif
