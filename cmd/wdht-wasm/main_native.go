//go:build !js

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "wdht-wasm runs in a web page: build it with GOOS=js GOARCH=wasm go build ./cmd/wdht-wasm")
	os.Exit(2)
}
