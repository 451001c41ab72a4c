package capture

import (
	"fmt"
	"log/slog"
	"math/bits"
	"sync"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/screensaver"
	"github.com/jezek/xgb/xproto"
)

// DefaultPollInterval is how often PollCounter samples the input state.
const DefaultPollInterval = 100 * time.Millisecond

// PollCounter estimates input counts where RECORD is not available, by
// sampling every interval:
//
//   - Moves: +1 for each sample where the pointer moved; DeltaX/DeltaY sum the
//     distance between samples. Approximate: many motion events between two
//     samples count once, and a move that returns to its start is missed.
//   - Clicks, scrolls: a button seen pressed now but not at the previous
//     sample. Approximate: a click shorter than the interval is missed.
//   - Keys: keys seen pressed now but not at the previous sample (only the
//     number of newly pressed keys is kept, never which). Approximate: a tap
//     shorter than the interval is missed, so when the screen saver's idle
//     time shows input happened since the last sample and nothing else
//     explains it, one key press is counted.
type PollCounter struct {
	conn     *xgb.Conn
	root     xproto.Window
	interval time.Duration
	hasIdle  bool

	mu     sync.Mutex
	totals InputCounts

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// OpenPollCounter starts sampling the display ("" means $DISPLAY) every
// interval (0 means DefaultPollInterval).
func OpenPollCounter(display string, interval time.Duration) (*PollCounter, error) {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	conn, err := xgb.NewConnDisplay(display)
	if err != nil {
		return nil, fmt.Errorf("poll input on %q: %w", display, err)
	}
	p := &PollCounter{
		conn:     conn,
		root:     xproto.Setup(conn).DefaultScreen(conn).Root,
		interval: interval,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if p.hasIdle, err = enableExtension(conn, "MIT-SCREEN-SAVER"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("poll input on %q: %w", display, err)
	}
	first, err := p.sample()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("poll input on %q: %w", display, err)
	}
	go p.loop(first)
	return p, nil
}

type inputSample struct {
	at     time.Time
	x, y   int16
	mask   uint16
	keys   [32]byte
	idle   time.Duration
	idleOK bool
}

func (p *PollCounter) sample() (inputSample, error) {
	s := inputSample{at: time.Now()}
	ptr, err := xproto.QueryPointer(p.conn, p.root).Reply()
	if err != nil {
		return s, fmt.Errorf("query pointer: %w", err)
	}
	s.x, s.y, s.mask = ptr.RootX, ptr.RootY, ptr.Mask
	km, err := xproto.QueryKeymap(p.conn).Reply()
	if err != nil {
		return s, fmt.Errorf("query keymap: %w", err)
	}
	copy(s.keys[:], km.Keys)
	if p.hasIdle {
		if info, err := screensaver.QueryInfo(p.conn, xproto.Drawable(p.root)).Reply(); err == nil {
			s.idle, s.idleOK = time.Duration(info.MsSinceUserInput)*time.Millisecond, true
		}
	}
	return s, nil
}

func (p *PollCounter) loop(prev inputSample) {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		cur, err := p.sample()
		if err != nil {
			slog.Warn("input polling stopped", "err", err)
			return
		}
		d := diffSamples(prev, cur)
		p.mu.Lock()
		p.totals = addCounts(p.totals, d)
		p.mu.Unlock()
		prev = cur
	}
}

// Button masks of the core protocol: Button1Mask is 1<<8 … Button5Mask 1<<12.
const (
	clickButtons  = xproto.ButtonMask1 | xproto.ButtonMask2 | xproto.ButtonMask3
	scrollButtons = xproto.ButtonMask4 | xproto.ButtonMask5
)

// diffSamples turns two consecutive samples into counts.
func diffSamples(prev, cur inputSample) InputCounts {
	var d InputCounts
	if cur.x != prev.x || cur.y != prev.y {
		d.Moves = 1
		d.DeltaX = abs64(int64(cur.x) - int64(prev.x))
		d.DeltaY = abs64(int64(cur.y) - int64(prev.y))
	}
	pressed := cur.mask &^ prev.mask
	d.Clicks = int64(bits.OnesCount16(pressed & clickButtons))
	d.ScrollY = int64(bits.OnesCount16(pressed & scrollButtons))
	for i := range cur.keys {
		d.Keys += int64(bits.OnesCount8(cur.keys[i] &^ prev.keys[i]))
	}
	// Input happened after the previous sample if the idle time is shorter
	// than the time between samples.
	if cur.idleOK && cur.idle < cur.at.Sub(prev.at) && !d.Any() {
		d.Keys = 1
	}
	return d
}

func addCounts(a, b InputCounts) InputCounts {
	return InputCounts{
		Keys: a.Keys + b.Keys, Clicks: a.Clicks + b.Clicks, Moves: a.Moves + b.Moves,
		ScrollX: a.ScrollX + b.ScrollX, ScrollY: a.ScrollY + b.ScrollY,
		DeltaX: a.DeltaX + b.DeltaX, DeltaY: a.DeltaY + b.DeltaY,
	}
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// Totals returns the estimated counts since the counter was opened.
func (p *PollCounter) Totals() InputCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.totals
}

// Method reports MethodPoll.
func (p *PollCounter) Method() string { return MethodPoll }

// Close stops sampling and closes the X connection.
func (p *PollCounter) Close() error {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.conn.Close()
	})
	return nil
}
