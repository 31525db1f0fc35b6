package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wdht/wdht/dht"
)

// stateFile is what a node's --state file holds: the state of its mainline (UDP) node,
// of its WebRTC node, or of both.
//
// A UDP-only node writes its dht.State alone, as earlier versions did (and as
// bittorrent-dht's toJSON does):
//
//	{"id":"<40 hex>","nodes":[{"id":"<40 hex>","host":"1.2.3.4","port":6881}, ...]}
//
// A node running WebRTC writes both, each a dht.State (a WebRTC node's lists the
// signalling servers it can bootstrap from, entries without "id"):
//
//	{"mainline":{"id":...,"nodes":[...]},"web":{"id":...,"nodes":[{"host":"example.com","port":16881}]}}
//
// Either form loads into any node: a single dht.State is the mainline node's. The part
// of a node that does not run is kept as it was loaded.
type stateFile struct {
	Mainline *dht.State `json:"mainline,omitempty"`
	Web      *dht.State `json:"web,omitempty"`
	// dual says the file is (or is to be written) in the two-node form.
	dual bool
}

// loadState reads a state file written by saveState (or by bittorrent-dht's toJSON). It
// returns nil, and no error, when the file does not exist or is empty.
func loadState(path string) (*stateFile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, badInput("--state %q: %v", path, err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil // an empty file (created for us, or by a crash of an old version): start fresh
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, badInput("--state %q: %v", path, err)
	}
	_, m := keys["mainline"]
	_, w := keys["web"]
	if !m && !w {
		var st dht.State
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, badInput("--state %q: %v", path, err)
		}
		return &stateFile{Mainline: &st}, nil
	}
	sf := &stateFile{dual: true}
	for _, part := range []struct {
		name string
		dst  **dht.State
	}{{"mainline", &sf.Mainline}, {"web", &sf.Web}} {
		name, dst := part.name, part.dst
		raw, ok := keys[name]
		if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			continue
		}
		var st dht.State
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, badInput("--state %q: %s: %v", path, name, err)
		}
		*dst = &st
	}
	return sf, nil
}

// marshal returns the file's contents: the mainline state alone, or both.
func (sf *stateFile) marshal() ([]byte, error) {
	if !sf.dual && sf.Web == nil {
		st := sf.Mainline
		if st == nil {
			st = &dht.State{}
		}
		return json.Marshal(st)
	}
	return json.Marshal(sf)
}

// saveState writes sf to path atomically: to a temporary file in the same directory,
// then renamed over path, so that a crash leaves the old file or the new one, never half.
func saveState(path string, sf *stateFile) error {
	b, err := sf.marshal()
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
