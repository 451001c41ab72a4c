#include "xrecord.h"

#include <X11/Xlib.h>
#include <X11/Xproto.h>
#include <X11/extensions/record.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pd_rec {
	Display *ctrl; // issues RECORD requests
	Display *data; // receives the recorded protocol stream
	XRecordContext ctx;
	int wake[2]; // self-pipe: pd_rec_stop wakes the poll loop
	int64_t counts[PD_NCOUNTS]; // updated with atomics, read from Go
	int have_pos;                // pointer position seen (loop thread only)
	int last_x, last_y;
};

static void add(pd_rec *r, int i, int64_t n) {
	__atomic_add_fetch(&r->counts[i], n, __ATOMIC_RELAXED);
}

static void on_data(XPointer closure, XRecordInterceptData *d) {
	pd_rec *r = (pd_rec *)closure;
	// A device event is one 32-byte xEvent.
	if (d->category == XRecordFromServer && d->data != NULL && d->data_len * 4 >= 32) {
		const unsigned char *ev = d->data;
		switch (ev[0] & 0x7f) {
		case KeyPress:
			add(r, PD_KEYS, 1);
			break;
		case ButtonPress:
			switch (ev[1]) {
			case 4: case 5: add(r, PD_SCROLL_Y, 1); break;
			case 6: case 7: add(r, PD_SCROLL_X, 1); break;
			default: add(r, PD_CLICKS, 1); break;
			}
			break;
		case MotionNotify: {
			int16_t x, y; // rootX, rootY of xEvent.u.keyButtonPointer
			memcpy(&x, ev + 20, 2);
			memcpy(&y, ev + 22, 2);
			add(r, PD_MOVES, 1);
			if (r->have_pos) {
				add(r, PD_DELTA_X, abs(x - r->last_x));
				add(r, PD_DELTA_Y, abs(y - r->last_y));
			}
			r->have_pos = 1;
			r->last_x = x;
			r->last_y = y;
			break;
		}
		}
	}
	XRecordFreeData(d);
}

int pd_rec_open(const char *display, pd_rec **out) {
	pd_rec *r = calloc(1, sizeof *r);
	if (r == NULL) return 3;
	r->wake[0] = r->wake[1] = -1;
	r->ctrl = XOpenDisplay(display);
	r->data = XOpenDisplay(display);
	if (r->ctrl == NULL || r->data == NULL) {
		pd_rec_close(r);
		return 1;
	}
	int op, ev, er, major = 0, minor = 0;
	// XQueryExtension first: XRecordQueryVersion prints to stderr when absent.
	if (!XQueryExtension(r->ctrl, "RECORD", &op, &ev, &er) || !XRecordQueryVersion(r->ctrl, &major, &minor)) {
		pd_rec_close(r);
		return 2;
	}
	XRecordRange *rr = XRecordAllocRange();
	if (rr == NULL) {
		pd_rec_close(r);
		return 3;
	}
	rr->device_events.first = KeyPress;
	rr->device_events.last = MotionNotify;
	XRecordClientSpec clients = XRecordAllClients;
	r->ctx = XRecordCreateContext(r->ctrl, 0, &clients, 1, &rr, 1);
	XFree(rr);
	if (r->ctx == 0) {
		pd_rec_close(r);
		return 3;
	}
	XSync(r->ctrl, False);
	if (pipe(r->wake) != 0 || !XRecordEnableContextAsync(r->data, r->ctx, on_data, (XPointer)r)) {
		pd_rec_close(r);
		return 3;
	}
	XFlush(r->data);
	fcntl(r->wake[0], F_SETFD, FD_CLOEXEC);
	fcntl(r->wake[1], F_SETFD, FD_CLOEXEC);
	*out = r;
	return 0;
}

void pd_rec_run(pd_rec *r) {
	struct pollfd fds[2] = {
		{.fd = ConnectionNumber(r->data), .events = POLLIN},
		{.fd = r->wake[0], .events = POLLIN},
	};
	for (;;) {
		XRecordProcessReplies(r->data); // handles whatever is buffered, never blocks
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR) continue;
			return;
		}
		if (fds[1].revents != 0) return;
		if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) return;
	}
}

void pd_rec_stop(pd_rec *r) {
	ssize_t n;
	do {
		n = write(r->wake[1], "x", 1);
	} while (n < 0 && errno == EINTR);
}

void pd_rec_close(pd_rec *r) {
	if (r == NULL) return;
	if (r->ctrl != NULL && r->ctx != 0) {
		// Disable on the control connection first: the server does not answer
		// the data connection's other requests while its context is enabled.
		XRecordDisableContext(r->ctrl, r->ctx);
		XRecordFreeContext(r->ctrl, r->ctx);
		XSync(r->ctrl, False);
	}
	if (r->data != NULL) XCloseDisplay(r->data);
	if (r->ctrl != NULL) XCloseDisplay(r->ctrl);
	if (r->wake[0] >= 0) close(r->wake[0]);
	if (r->wake[1] >= 0) close(r->wake[1]);
	free(r);
}

void pd_rec_totals(pd_rec *r, int64_t out[PD_NCOUNTS]) {
	for (int i = 0; i < PD_NCOUNTS; i++) out[i] = __atomic_load_n(&r->counts[i], __ATOMIC_RELAXED);
}
