package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockName is the file whose lock keeps two trackers (window and headless) off one data
// directory: both would resume the same session and seal the same segments.
const LockName = "tracker.lock"

// ErrLocked means another tracker process uses the data directory.
var ErrLocked = errors.New("another pow.do tracker is using this data directory")

// lockDir takes the data directory's lock; release it with the returned file's Close.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, LockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

// Busy reports whether a tracker process holds dir's lock right now.
func Busy(dir string) bool {
	f, err := lockDir(dir)
	if err != nil {
		return errors.Is(err, ErrLocked)
	}
	f.Close()
	return false
}
