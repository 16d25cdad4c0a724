/*
 * materialize.h — what other modules need to know of the writer: how an
 * output it has not finished marks itself in its attributes.
 */
#ifndef LB_MATERIALIZE_H
#define LB_MATERIALIZE_H

#include <json-c/json.h>

/* The writer's provenance attribute and its "unfinished" key: an output
 * carries {"labelbin": {..., "complete": false}} from its first metadata
 * write until the run that finishes it removes the key. */
#define LB__PROVENANCE_KEY "labelbin"
#define LB__COMPLETE_KEY "complete"

/* 1 when the attributes (a dataset's user attributes, may be NULL) mark an
 * unfinished output, else 0. */
int lb__attrs_incomplete(json_object *attrs);

#endif /* LB_MATERIALIZE_H */
