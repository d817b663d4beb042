/*  gateway_quality: the broker's presence-quality counters (stats.quality:
    transitions by reason, flaps suppressed by grace, timeout lateness,
    users forced offline by account status, refused events by reason) as
    Prometheus text, appended to GET /metrics. Stateless; any thread. */
#ifndef GATEWAY_QUALITY_H_INCLUDED
#define GATEWAY_QUALITY_H_INCLUDED

#include <stddef.h>
#include <stdio.h>

//  Write the metrics found in a broker `stats` reply (msgpack) to out.
//  Missing parts are skipped. Returns 0, or -1 when the reply has no
//  `quality` map (nothing written).
int gw_quality_render(const void *stats, size_t len, FILE *out);

#endif
