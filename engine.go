package main

import (
	"pow.do/app/engine"
	"pow.do/app/engineapi"
)

// newEngine builds the engine the window drives, keeping its state under dataDir: the
// real tracker (app/engine) on this desktop's X display.
var newEngine = func(dataDir string) (engineapi.Engine, error) {
	return engine.New(engine.Config{DataDir: dataDir})
}
