package capture

import (
	"fmt"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// enableExtension makes extension requests usable on c, like the generated
// Init functions (screensaver.Init, xinerama.Init, …) but without their
// writes to xgb's process-wide event/error constructor maps: those writes
// race with every other connection's reader goroutine, which reads the same
// maps without a lock whenever any event arrives (a data race the race
// detector reports, and a possible "concurrent map read and map write"
// crash). The extensions used here define no events we select and no errors
// of their own, so the constructors are not needed.
func enableExtension(c *xgb.Conn, name string) (bool, error) {
	rep, err := xproto.QueryExtension(c, uint16(len(name)), name).Reply()
	if err != nil {
		return false, fmt.Errorf("query extension %s: %w", name, err)
	}
	if !rep.Present {
		return false, nil
	}
	c.ExtLock.Lock()
	c.Extensions[name] = rep.MajorOpcode
	c.ExtLock.Unlock()
	return true, nil
}
