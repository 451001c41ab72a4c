// Counting input through the X RECORD extension. Only event types (and, for
// buttons, the button number; for motion, the pointer position) are read:
// key codes are never looked at or stored.
#ifndef POWDO_XRECORD_H
#define POWDO_XRECORD_H

#include <stdint.h>

enum {
	PD_KEYS, PD_CLICKS, PD_MOVES, PD_SCROLL_X, PD_SCROLL_Y, PD_DELTA_X, PD_DELTA_Y, PD_NCOUNTS
};

typedef struct pd_rec pd_rec;

// pd_rec_open returns 0 and *out on success; 1 when the display cannot be
// opened, 2 when the server lacks RECORD, 3 when the context cannot be set up.
int pd_rec_open(const char *display, pd_rec **out);
// pd_rec_run processes recorded events until pd_rec_stop is called.
void pd_rec_run(pd_rec *r);
void pd_rec_stop(pd_rec *r);
// pd_rec_close frees everything; call only after pd_rec_run has returned.
void pd_rec_close(pd_rec *r);
void pd_rec_totals(pd_rec *r, int64_t out[PD_NCOUNTS]);

#endif
