package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"testing"

	"github.com/wdht/wdht/dht"
)

// --max-peers-per-source and --max-items-per-source reach the stores; 0 (the default)
// leaves the library's default, a hundredth of the store.
func TestStoreQuotaFlags(t *testing.T) {
	for _, tc := range []struct {
		args         []string
		peers, items int
	}{
		{[]string{"--max-peers-per-source", "2", "--max-items-per-source", "3"}, 2, 3},
		{[]string{"--max-peers", "500", "--max-items", "400"}, 5, 4},
	} {
		var o opsFlags
		fs := flag.NewFlagSet("node", flag.ContinueOnError)
		o.define(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := o.check(); err != nil {
			t.Fatal(err)
		}
		ps, is, err := o.stores()
		if err != nil {
			t.Fatal(err)
		}
		src := netip.MustParseAddr("198.51.100.1")
		for i := range 10 {
			ps.Add(dht.RandomID(), netip.AddrPortFrom(src, uint16(1000+i)))
		}
		if _, n := ps.Len(); n != tc.peers {
			t.Errorf("%v: one source stored %d peers, want %d", tc.args, n, tc.peers)
		}
		stored := 0
		for i := range 10 {
			it, _ := dht.NewImmutableItem(fmt.Sprint(i))
			if err := is.PutFrom(it, nil, src); err == nil {
				stored++
			} else if !errors.Is(err, dht.ErrSourceQuota) {
				t.Fatal(err)
			}
		}
		if stored != tc.items {
			t.Errorf("%v: one source stored %d items, want %d", tc.args, stored, tc.items)
		}
	}
}
