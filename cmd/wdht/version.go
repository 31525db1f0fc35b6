package main

import (
	"runtime/debug"
	"strings"
)

// buildVersion returns what debug.ReadBuildInfo says wdht was built from: the module
// version ("dev" when unknown: a build outside a module version, such as go run or go
// test), the VCS revision ("" when the build did not stamp it) and whether the working
// tree had changes.
func buildVersion() (version, revision string, modified bool) {
	version = "dev"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version, "", false
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return version, revision, modified
}

// versionString is the version wdht reports (wdht version, the LISTENING line): the
// module version, and when the build stamped a revision that the version does not
// already name (a pseudo-version does), "+" and its first 12 hex digits, then ".dirty"
// for a modified tree: "v1.2.0", "v0.0.0-20261205101500-0123456789ab+dirty",
// "dev+0123456789ab.dirty".
func versionString() string {
	v, rev, modified := buildVersion()
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" || strings.Contains(v, rev) {
		return v
	}
	v += "+" + rev
	if modified {
		v += ".dirty"
	}
	return v
}
