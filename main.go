// Command pow.do is the worker's desktop tracker: a Wails window over the engine.
package main

import (
	"embed"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/wailsapp/wails/v2"
	"github.com/wailsapp/wails/v2/pkg/options"
	"github.com/wailsapp/wails/v2/pkg/options/assetserver"
	"github.com/wailsapp/wails/v2/pkg/options/linux"

	"pow.do/app"
)

//go:embed all:frontend/dist
var assets embed.FS

//go:embed build/appicon.png
var icon []byte

func main() {
	if err := run(); err != nil {
		slog.Error("pow.do", "err", err)
		os.Exit(1)
	}
}

func run() error {
	dir, err := dataDir(os.Getenv, os.UserHomeDir)
	if err != nil {
		return err
	}
	engine, err := newEngine(dir)
	if err != nil {
		return fmt.Errorf("start engine in %s: %w", dir, err)
	}
	a := app.New(engine, os.Args[1:])
	return wails.Run(&options.App{
		Title:     "pow.do",
		Width:     1280,
		Height:    800,
		MinWidth:  960,
		MinHeight: 640,
		AssetServer: &assetserver.Options{
			Assets: assets,
		},
		BackgroundColour: &options.RGBA{R: 248, G: 249, B: 251, A: 255},
		OnStartup:        a.OnStartup,
		OnShutdown:       a.OnShutdown,
		ErrorFormatter:   app.FormatError,
		SingleInstanceLock: &options.SingleInstanceLock{
			UniqueId:               "do.pow.tracker",
			OnSecondInstanceLaunch: app.SecondInstanceHandler(a),
		},
		Linux: &linux.Options{
			Icon:        icon,
			ProgramName: "pow.do",
		},
		Bind: []any{a},
	})
}

// dataDir is where the engine keeps its state: $POWDO_DATA_DIR, else
// $XDG_DATA_HOME/pow.do, else ~/.local/share/pow.do.
func dataDir(getenv func(string) string, home func() (string, error)) (string, error) {
	if d := getenv("POWDO_DATA_DIR"); d != "" {
		return filepath.Abs(d)
	}
	if d := getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "pow.do"), nil
	}
	h, err := home()
	if err != nil {
		return "", fmt.Errorf("find the data directory: set POWDO_DATA_DIR: %w", err)
	}
	return filepath.Join(h, ".local", "share", "pow.do"), nil
}
