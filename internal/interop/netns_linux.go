package interop

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// RerunInNetns runs this program again, with the same arguments, standard streams and
// environment plus env=1, in a new network namespace whose only interface is lo (up):
// WebRTC gathers candidates on every interface, and there only 127.0.0.1 is left, for
// our side and the JS's alike. It returns the exit status of that run, or an error saying
// why it cannot be done here (it needs root, unshare and ip). The caller checks env
// first, to run its real work in the namespace.
func RerunInNetns(env string) (code int, err error) {
	if os.Geteuid() != 0 {
		return 0, errors.New("a network namespace needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return 0, fmt.Errorf("a network namespace needs unshare: %w", err)
	}
	ip := ""
	for _, p := range []string{"ip", "/usr/sbin/ip", "/sbin/ip"} {
		if ip, err = exec.LookPath(p); err == nil {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("a network namespace needs ip: %w", err)
	}
	if out, err := exec.Command(unshare, "-n", "--", ip, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("unshare -n: %v: %s", err, out)
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	args := append([]string{"-n", "--", "sh", "-c", ip + ` link set lo up && exec "$@"`, "sh", exe}, os.Args[1:]...)
	cmd := exec.Command(unshare, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), env+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, err
}
