package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wdht/wdht/dht"
)

// loadState reads a state file written by saveState (or by bittorrent-dht's toJSON). It
// returns nil, and no error, when the file does not exist.
func loadState(path string) (*dht.State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, badInput("--state %q: %v", path, err)
	}
	var st dht.State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, badInput("--state %q: %v", path, err)
	}
	return &st, nil
}

// saveState writes st to path atomically: to a temporary file in the same directory,
// then renamed over path, so that a crash leaves the old file or the new one, never half.
func saveState(path string, st dht.State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	b = append(b, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}
