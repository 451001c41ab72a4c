package capture

import (
	"io"
	"log"
	"os"
	"testing"

	"github.com/jezek/xgb"
)

func TestMain(m *testing.M) {
	// xgb logs every missing ~/.Xauthority and every connection closed by a
	// test's Xvfb going away; none of it is a test failure.
	xgb.Logger = log.New(io.Discard, "", 0)
	os.Exit(m.Run())
}
