package capture

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

type fakeActivity struct {
	w   Window
	err error
}

func (f fakeActivity) ActiveWindow() (Window, error)    { return f.w, f.err }
func (f fakeActivity) IdleTime() (time.Duration, error) { return 0, nil }

type fakeScreen struct {
	calls int
	err   error
}

func (f *fakeScreen) Capture(context.Context) ([]Shot, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return []Shot{{Display: 0, JPEG: []byte{0xff, 0xd8}}}, nil
}

func TestCaptureExclusionRules(t *testing.T) {
	keepass := Window{App: "KeePassXC", Class: "KeePassXC", Instance: "keepassxc", Comm: "keepassxc", Title: "db"}
	noClass := Window{App: "signal-desktop", Comm: "signal-desktop"}
	for _, tc := range []struct {
		name     string
		act      Activity
		excluded []string
		skip     string // expected reason, "" = captured
		err      bool
	}{
		{"class, any case", fakeActivity{w: keepass}, []string{"KEEPASSXC"}, "excluded app: KeePassXC", false},
		{"instance", fakeActivity{w: keepass}, []string{" keepassxc "}, "excluded app: KeePassXC", false},
		{"comm when no class", fakeActivity{w: noClass}, []string{"signal-desktop"}, "excluded app: signal-desktop", false},
		{"other app", fakeActivity{w: keepass}, []string{"firefox", ""}, "", false},
		{"substring is not a match", fakeActivity{w: keepass}, []string{"keepass"}, "", false},
		{"no exclusions", fakeActivity{w: keepass}, nil, "", false},
		{"nothing focused", fakeActivity{err: fmt.Errorf("x: %w", ErrNoActiveWindow)}, []string{"keepassxc"}, "", false},
		{"window unknown with exclusions", fakeActivity{err: errors.New("connection lost")}, []string{"keepassxc"}, "", true},
		{"window unknown without exclusions", fakeActivity{err: errors.New("connection lost")}, nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &fakeScreen{}
			res, err := Capture(context.Background(), s, tc.act, tc.excluded)
			if tc.err {
				if err == nil || s.calls != 0 {
					t.Fatalf("err %v, screen calls %d: want an error and no capture", err, s.calls)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.skip != "" {
				if res.Skipped == nil || res.Skipped.Reason != tc.skip || len(res.Shots) != 0 || s.calls != 0 {
					t.Fatalf("skipped %+v shots %d calls %d, want reason %q and no pixels", res.Skipped, len(res.Shots), s.calls, tc.skip)
				}
				return
			}
			if res.Skipped != nil || len(res.Shots) != 1 || s.calls != 1 {
				t.Fatalf("skipped %+v shots %d calls %d, want a capture", res.Skipped, len(res.Shots), s.calls)
			}
		})
	}
}

func TestCaptureWithoutActivityRefusesExclusions(t *testing.T) {
	s := &fakeScreen{}
	if _, err := Capture(context.Background(), s, nil, []string{"keepassxc"}); err == nil || s.calls != 0 {
		t.Fatalf("err %v calls %d: exclusions were not enforceable, yet no error", err, s.calls)
	}
}

func TestCaptureWrapsScreenError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Capture(context.Background(), &fakeScreen{err: boom}, nil, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want wrapped boom", err)
	}
}
