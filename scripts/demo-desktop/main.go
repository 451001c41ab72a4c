// Command demo-desktop gives the headless demo tracker something to record: it starts
// Xvfb with one focused, titled window and moves the pointer every few seconds (XTEST),
// prints "DISPLAY=:N" once ready, and stops the X server on SIGINT/SIGTERM.
// scripts/demo.sh runs it when there is no real display.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"pow.do/e2e"
)

func main() {
	title := flag.String("title", "pow.do demo: writing the quarterly report", "title of the focused window")
	logDir := flag.String("log-dir", os.TempDir(), "directory for the Xvfb log")
	every := flag.Duration("input-every", 3*time.Second, "pointer move interval (0: no input, the worker looks idle)")
	flag.Parse()
	x, err := e2e.StartXvfb(*logDir, *title, *every)
	if err != nil {
		slog.Error("demo desktop", "err", err)
		os.Exit(1)
	}
	defer x.Close()
	fmt.Printf("DISPLAY=%s\n", x.Display)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
