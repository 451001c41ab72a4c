package capture

// #cgo LDFLAGS: -lX11 -lXtst
// #include <stdlib.h>
// #include "xrecord.h"
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"
)

// RecordCounter counts input exactly through the X RECORD extension (libXtst):
// every KeyPress, ButtonPress (wheel buttons counted as scrolls) and
// MotionNotify the server delivers, including synthetic XTEST input.
type RecordCounter struct {
	mu    sync.RWMutex
	r     *C.pd_rec // nil once closed
	final InputCounts
	done  chan struct{}
}

// OpenRecordCounter starts recording on the display ("" means $DISPLAY). It
// returns an error wrapping ErrNoRecord when the extension is missing.
//
// Xlib answers a lost X connection by exiting the process: close the counter
// before the X server goes away.
func OpenRecordCounter(display string) (*RecordCounter, error) {
	if display == "" {
		display = os.Getenv("DISPLAY")
	}
	cname := C.CString(display)
	defer C.free(unsafe.Pointer(cname))
	var r *C.pd_rec
	switch rc := C.pd_rec_open(cname, &r); rc {
	case 0:
	case 1:
		return nil, fmt.Errorf("record input on %q: cannot open display", display)
	case 2:
		return nil, fmt.Errorf("record input on %q: %w", display, ErrNoRecord)
	default:
		return nil, fmt.Errorf("record input on %q: cannot set up a RECORD context (code %d)", display, int(rc))
	}
	c := &RecordCounter{r: r, done: make(chan struct{})}
	go func() {
		// The loop blocks in C for the counter's lifetime.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		C.pd_rec_run(r)
		close(c.done)
	}()
	return c, nil
}

// Totals returns the counts since the counter was opened (frozen at Close).
func (c *RecordCounter) Totals() InputCounts {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.r == nil {
		return c.final
	}
	return c.totals()
}

func (c *RecordCounter) totals() InputCounts {
	var v [C.PD_NCOUNTS]C.int64_t
	C.pd_rec_totals(c.r, &v[0])
	return InputCounts{
		Keys: int64(v[C.PD_KEYS]), Clicks: int64(v[C.PD_CLICKS]), Moves: int64(v[C.PD_MOVES]),
		ScrollX: int64(v[C.PD_SCROLL_X]), ScrollY: int64(v[C.PD_SCROLL_Y]),
		DeltaX: int64(v[C.PD_DELTA_X]), DeltaY: int64(v[C.PD_DELTA_Y]),
	}
}

// Method reports MethodRecord.
func (c *RecordCounter) Method() string { return MethodRecord }

// Close stops recording and closes its X connections.
func (c *RecordCounter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.r == nil {
		return nil
	}
	C.pd_rec_stop(c.r)
	<-c.done
	c.final = c.totals()
	C.pd_rec_close(c.r)
	c.r = nil
	return nil
}
