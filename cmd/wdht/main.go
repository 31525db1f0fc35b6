package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/krpc"
)

// Exit codes.
const (
	exitOK     = 0 // success
	exitFailed = 1 // the operation failed: no node answered, timeout, nothing stored
	exitUsage  = 2 // usage error or bad input
)

// logEnv is the environment variable that sets the log level.
const logEnv = "WDHT_LOG"

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		// After the first signal, restore the default handling so a second one kills.
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		cancel(&interrupted{s})
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// interrupted is the cause of run's context when a signal (SIGINT, SIGTERM) stops the
// program. A client command it stops exits with 128 plus the signal's number (130 for
// SIGINT), as a shell reports a command a signal killed; wdht node shuts down and exits 0.
type interrupted struct{ sig os.Signal }

func (e *interrupted) Error() string { return "interrupted (" + e.sig.String() + ")" }

// code is the exit status: 128 plus the signal's number.
func (e *interrupted) code() int {
	if s, ok := e.sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 128 + int(syscall.SIGINT)
}

// env is what a command runs with.
type env struct {
	stdout, stderr io.Writer
	stdoutTTY      bool // stdout is a terminal: a value printed raw gets a final newline
	stderrTTY      bool // stderr is a terminal: progress lines are welcome
	log            hclog.Logger
	// logErr is why WDHT_LOG is invalid, for a command that sets its log level itself
	// (--log-level): it reports logErr only when the flag is not given.
	logErr error
}

// command is one subcommand of wdht.
type command struct {
	name  string
	short string // one line for the command list
	help  string // the full help text: synopsis, description, flags
	// flags returns the command's flag set (for tests that check the docs against it).
	flags func() *flag.FlagSet
	run   func(ctx context.Context, e *env, args []string) error
	// logFlag says that the command takes --log-level, which overrides WDHT_LOG.
	logFlag bool
}

// commands returns wdht's subcommands in the order usage lists them.
func commands() []*command {
	return []*command{nodeCommand(), pingCommand(), lookupCommand(), announceCommand(),
		putCommand(), getCommand(), sampleCommand(), versionCommand()}
}

// run is the whole program: it parses args (without the program name), runs the command
// and returns the exit code. ctx ends the command early (main cancels it on SIGINT and
// SIGTERM).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	outTTY, tty := isTerminal(stdout), isTerminal(stderr)
	stdout, stderr = &lockedWriter{w: stdout}, &lockedWriter{w: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return exitUsage
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		return runHelp(args, stdout, stderr)
	case "--version", "-version":
		if len(args) != 0 {
			fmt.Fprintf(stderr, "wdht: %s takes no arguments\n", name)
			return exitUsage
		}
		fmt.Fprintf(stdout, "wdht %s\n", version())
		return exitOK
	}
	cmd := findCommand(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "wdht: unknown command %q\nRun 'wdht help' for usage.\n", name)
		return exitUsage
	}
	log, logErr := newLogger(stderr)
	if logErr != nil && !cmd.logFlag {
		fmt.Fprintf(stderr, "wdht: %v\n", logErr)
		return exitUsage
	}
	if logErr != nil {
		log = loggerAt(stderr, hclog.Warn) // until the command reports logErr or overrides it
	}
	e := &env{stdout: stdout, stderr: stderr, stdoutTTY: outTTY, stderrTTY: tty, log: log, logErr: logErr}
	err := cmd.run(ctx, e, args)
	if ie, ok := errors.AsType[*interrupted](context.Cause(ctx)); ok && cmd.name != "node" {
		err = ie
	}
	return report(stdout, stderr, cmd, args, err)
}

// findCommand returns the command called name, or nil.
func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// runHelp runs "wdht help [COMMAND]".
func runHelp(args []string, stdout, stderr io.Writer) int {
	switch len(args) {
	case 0:
		fmt.Fprint(stdout, usage())
		return exitOK
	case 1:
		if args[0] == "help" {
			fmt.Fprint(stdout, usage())
			return exitOK
		}
		if c := findCommand(args[0]); c != nil {
			fmt.Fprint(stdout, c.help)
			return exitOK
		}
		fmt.Fprintf(stderr, "wdht: help: unknown command %q\nRun 'wdht help' for usage.\n", args[0])
	default:
		fmt.Fprintf(stderr, "wdht: help: want at most one command, got %d arguments\n", len(args))
	}
	return exitUsage
}

// usage returns the top-level usage text.
func usage() string {
	var b strings.Builder
	b.WriteString(`wdht is a BitTorrent DHT node and client: the mainline DHT (UDP), the
WebTorrent DHT (WebRTC) and a bridge between them.

Usage:

	wdht <command> [flags] [arguments]

Commands:

`)
	for _, c := range commands() {
		fmt.Fprintf(&b, "\t%-9s %s\n", c.name, c.short)
	}
	fmt.Fprintf(&b, "\t%-9s %s\n", "help", "print usage; 'wdht help <command>' prints a command's flags")
	b.WriteString(`
Flags may come before or after the arguments; "--" ends the flags.
Run 'wdht help <command>' (or 'wdht <command> -h') for a command's flags.

Client commands run over UDP, or with --transport webrtc over WebRTC.

The environment variable WDHT_LOG sets the level of the logs written to stderr:
trace, debug, info, warn (the default), error or off.

Exit status: 0 success, 1 the operation failed (no node answered, timeout,
nothing stored), 2 usage error or bad input, 130 a client command stopped by
SIGINT.
`)
	return b.String()
}

// report prints err, if any, and returns the exit code it means. With --json among
// args, the error also goes to stdout as a JSON object (see jsonError).
func report(stdout, stderr io.Writer, cmd *command, args []string, err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, cmd.help)
		return exitOK
	}
	fmt.Fprintf(stderr, "wdht: %s: %v\n", cmd.name, err)
	code := exitFailed
	ue, usage := errors.AsType[*usageError](err)
	if usage {
		if ue.showUsage {
			fmt.Fprintf(stderr, "Run 'wdht help %s' for usage.\n", cmd.name)
		}
		code = exitUsage
	}
	if ie, ok := errors.AsType[*interrupted](err); ok {
		code = ie.code()
	}
	if jsonOutput(cmd, args) {
		je := jsonError{Command: cmd.name, Error: err.Error(), Exit: code, Usage: usage}
		if ne, ok := errors.AsType[*dht.NodeError](err); ok {
			je.Node = ne.Addr.String()
		} else if a, ok := errors.AsType[*answered](err); ok {
			je.Node = a.name
		}
		if ke, ok := errors.AsType[*krpc.Error](err); ok {
			je.KRPCCode, je.KRPCMessage = ke.Code, ke.Msg
		}
		json.NewEncoder(stdout).Encode(je)
	}
	return code
}

// jsonError is how a command run with --json reports an error on stdout, after anything
// it printed before failing, as one JSON object; the error goes to stderr as text too.
type jsonError struct {
	Command string `json:"command"`
	Error   string `json:"error"`
	Exit    int    `json:"exit"`            // the exit status
	Usage   bool   `json:"usage,omitempty"` // a usage error or bad input (exit 2)
	// Node, KRPCCode and KRPCMessage describe a KRPC error a remote node answered with.
	Node        string `json:"node,omitempty"`
	KRPCCode    int    `json:"krpc_code,omitempty"`
	KRPCMessage string `json:"krpc_message,omitempty"`
}

// jsonOutput reports whether args give the command's --json flag. A bad flag or argument
// later in args does not hide one given before it.
func jsonOutput(cmd *command, args []string) bool {
	if cmd.flags == nil {
		return false
	}
	fs := cmd.flags()
	if fs.Lookup("json") == nil {
		return false
	}
	parseArgs(fs, args) // its error was the command's to report
	on, _ := strconv.ParseBool(fs.Lookup("json").Value.String())
	return on
}

// usageError is a usage error or bad input: exit status 2.
type usageError struct {
	err       error
	showUsage bool // point at the command's help
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// badInput returns a usage error for a bad argument or flag value.
func badInput(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// badUsage returns a usage error that points at the command's help: wrong number of
// arguments, unknown flag.
func badUsage(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...), showUsage: true}
}

// newLogger returns the logger for the level named by WDHT_LOG (Warn when unset).
func newLogger(w io.Writer) (hclog.Logger, error) {
	level := hclog.Warn
	if s, ok := os.LookupEnv(logEnv); ok && s != "" {
		if level = hclog.LevelFromString(s); level == hclog.NoLevel {
			return nil, fmt.Errorf("%s=%q: %s", logEnv, s, logLevels)
		}
	}
	return loggerAt(w, level), nil
}

// logLevels says which log levels there are, in errors.
const logLevels = "want trace, debug, info, warn, error or off"

// loggerAt returns a logger writing to w at level.
func loggerAt(w io.Writer, level hclog.Level) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "wdht", Level: level, Output: w})
}

// setLogLevel applies a command's --log-level (when not empty) over WDHT_LOG, and
// reports an invalid WDHT_LOG when the flag does not override it.
func (e *env) setLogLevel(s string) error {
	if s == "" {
		if e.logErr != nil {
			return badInput("%v", e.logErr)
		}
		return nil
	}
	level := hclog.LevelFromString(s)
	if level == hclog.NoLevel {
		return badInput("--log-level %q: %s", s, logLevels)
	}
	e.log = loggerAt(e.stderr, level)
	return nil
}

// version returns the module version and VCS revision wdht was built from (see
// versionString in version.go), or "dev".
func version() string { return versionString() }

// versionCommand is "wdht version".
func versionCommand() *command {
	return &command{
		name:  "version",
		short: "print wdht's version",
		help: `Usage: wdht version

Version prints the module version wdht was built from ("dev" when unknown) and,
when the build stamped it, the VCS revision ("+" its first 12 hex digits, then
".dirty" if the tree had changes), from the binary's build information.
`,
		flags: func() *flag.FlagSet { return newFlagSet("version") },
		run: func(ctx context.Context, e *env, args []string) error {
			pos, err := parseArgs(newFlagSet("version"), args)
			if err != nil {
				return err
			}
			if len(pos) > 0 {
				return badUsage("want no arguments, got %q", pos)
			}
			fmt.Fprintf(e.stdout, "wdht %s\n", version())
			return nil
		},
	}
}

// lockedWriter serializes writes: the node's logger and the command write to stderr from
// different goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
