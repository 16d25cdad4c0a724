/*
 * groupings.h — internal entry to the groupings parser for callers that
 * already hold parsed JSON (DaCapo configs).
 */
#ifndef LB_GROUPINGS_H
#define LB_GROUPINGS_H

#include <json-c/json.h>

#include "core/util.h"

/* Append groups from a parsed `[["name", [ids…]], …]` value; `where` is its
 * JSON path for messages (e.g. "config.groupings"). */
int lb__groupings_add_json_object(lb_groupings *g, json_object *arr, const char *where,
                                  lb_error *err);

#endif /* LB_GROUPINGS_H */
