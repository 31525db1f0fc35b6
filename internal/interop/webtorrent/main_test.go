//go:build linux

package webtorrent_test

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// netnsEnv is set in the test binary re-executed inside the network namespace.
const netnsEnv = "WDHT_TEST_NETNS"

// TestMain re-executes the test binary in a new network namespace whose only interface
// is lo, so that every ICE candidate, ours and theirs, is 127.0.0.1. Without root or
// unshare the tests run here and skip (fail under CI).
func TestMain(m *testing.M) {
	if os.Getenv(netnsEnv) == "" {
		if code, ok := inNetns(); ok {
			os.Exit(code)
		}
	}
	goleak.VerifyTestMain(m)
}

// inNetns runs this binary, with the same arguments, under `unshare -n` with lo up, and
// returns its exit status; ok is false when that is not possible here.
func inNetns() (code int, ok bool) {
	if os.Geteuid() != 0 {
		return 0, false
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return 0, false
	}
	ip := ""
	for _, p := range []string{"ip", "/usr/sbin/ip", "/sbin/ip"} {
		if ip, err = exec.LookPath(p); err == nil {
			break
		}
	}
	if err != nil {
		return 0, false
	}
	if exec.Command(unshare, "-n", "--", ip, "link", "set", "lo", "up").Run() != nil {
		return 0, false
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, false
	}
	args := append([]string{"-n", "--", "sh", "-c", ip + ` link set lo up && exec "$@"`, "sh", exe}, os.Args[1:]...)
	cmd := exec.Command(unshare, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, true
	case errors.As(err, &ee):
		return ee.ExitCode(), true
	}
	os.Stderr.WriteString("webtorrent: running in a network namespace: " + err.Error() + "\n")
	return 2, true
}
