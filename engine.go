package main

import (
	"time"

	"pow.do/app/engineapi"
)

// newEngine builds the engine the window drives, keeping its state under dataDir.
//
// This is the preview engine: it changes state and records nothing, and the window
// says so. The engine's author replaces this file with one that builds the real engine.
var newEngine = func(dataDir string) (engineapi.Engine, error) {
	return engineapi.NewMemory(time.Now), nil
}
