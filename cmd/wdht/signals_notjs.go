//go:build !js

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyReload returns the channel SIGHUP arrives on while a node runs (SIGHUP no longer
// kills the process), and the function that restores its default handling.
func notifyReload() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}
