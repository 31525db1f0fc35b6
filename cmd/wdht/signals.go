package main

import "fmt"

// reloadNode is what SIGHUP does: it saves the state file (with --state) and loads the
// TLS certificate and key again (with --tls-cert), then prints
//
//	RELOADED state=<saved|error|off> cert=<reloaded|error|off>
//
// Connections stay open: open WebSockets and data channels keep going, and only later
// TLS handshakes see the new certificate. A certificate that fails to load leaves the
// previous one in use.
func reloadNode(e *env, f *nodeFlags, n *nodes, sf *stateFile, sig *signalling) {
	state, cert := "off", "off"
	if f.state != "" {
		state = "saved"
		if err := saveState(f.state, n.state(*sf)); err != nil {
			e.log.Warn("SIGHUP: cannot save state", "file", f.state, "error", err)
			state = "error"
		}
	}
	if sig != nil && sig.srv != nil && sig.certFile != "" {
		cert = "reloaded"
		if err := sig.srv.ReloadCertificate(); err != nil {
			e.log.Warn("SIGHUP: cannot reload the TLS certificate, keeping the previous one", "error", err)
			cert = "error"
		}
	}
	e.log.Info("SIGHUP", "state", state, "cert", cert)
	fmt.Fprintf(e.stdout, "RELOADED state=%s cert=%s\n", state, cert)
}
