package main

import "os"

// notifyReload returns a channel nothing arrives on: js/wasm has no signals.
func notifyReload() (<-chan os.Signal, func()) {
	return nil, func() {}
}
