package webrtc

import (
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/pion/logging"
)

// pionLogs bridges pion's logging to hclog: logging.LoggerFactory, one sub-logger per pion
// scope ("ice", "dtls", "sctp", ...). pion is chatty: it logs every ICE state change at
// Info, and warnings and errors for things that are routine here (a check before the
// peer's candidates arrived, streams torn down by Close, a peer that went away), so its
// levels are lowered one step: Error to Warn, Warn and Info to Debug, Debug to Trace. The
// transport logs what matters (connections failing, opening, closing) itself.
type pionLogs struct{ log hclog.Logger }

var _ logging.LoggerFactory = pionLogs{}

// NewLogger implements logging.LoggerFactory.
func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.Named(scope)}
}

type pionLogger struct{ log hclog.Logger }

func (l pionLogger) Trace(msg string) { l.log.Trace(msg) }
func (l pionLogger) Tracef(format string, args ...any) {
	if l.log.IsTrace() {
		l.log.Trace(fmt.Sprintf(format, args...))
	}
}
func (l pionLogger) Debug(msg string) { l.log.Trace(msg) }
func (l pionLogger) Debugf(format string, args ...any) {
	if l.log.IsTrace() {
		l.log.Trace(fmt.Sprintf(format, args...))
	}
}
func (l pionLogger) Info(msg string) { l.log.Debug(msg) }
func (l pionLogger) Infof(format string, args ...any) {
	if l.log.IsDebug() {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}
func (l pionLogger) Warn(msg string) { l.log.Debug(msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	if l.log.IsDebug() {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}
func (l pionLogger) Error(msg string) { l.log.Warn(msg) }
func (l pionLogger) Errorf(format string, args ...any) {
	if l.log.IsWarn() {
		l.log.Warn(fmt.Sprintf(format, args...))
	}
}
