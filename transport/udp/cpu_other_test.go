//go:build !unix

package udp_test

import "time"

func cpuTime() time.Duration { return -1 }
