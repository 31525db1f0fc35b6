package webrtc_test

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"os"
	"testing"

	"github.com/wdht/wdht/internal/testenv"
	"github.com/wdht/wdht/transport/webrtc"
)

// TestCertificateReload checks that the signalling server loads its certificate again
// when the files change (without being asked), keeps the previous one while the new
// files do not load, and counts both in Stats; and that it counts requests by kind and
// status.
func TestCertificateReload(t *testing.T) {
	cert, key, _ := testenv.SelfSigned(t)
	cert2, key2, _ := testenv.SelfSigned(t)
	b := newTransport(t, "b", nil)
	srv, addr := serve(t, b, &webrtc.ServerConfig{CertFile: cert, KeyFile: key})
	served := func() []byte {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Raw
	}
	der := func(path string) []byte {
		b, _ := os.ReadFile(path)
		block, _ := pem.Decode(b)
		return block.Bytes
	}
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	first := der(cert)
	if !bytes.Equal(served(), first) {
		t.Fatal("not serving the first certificate")
	}
	// The new certificate with the old key: does not load, the old pair stays.
	copyFile(cert2, cert)
	if !bytes.Equal(served(), first) {
		t.Error("while the files do not match, the first certificate is not served")
	}
	if st := srv.Stats(); st.CertReloadErrors != 1 || st.CertReloads != 0 {
		t.Errorf("after a mismatched pair: %+v, want one reload error", st)
	}
	copyFile(key2, key)
	if !bytes.Equal(served(), der(cert2)) {
		t.Error("the changed files were not loaded")
	}
	if st := srv.Stats(); st.CertReloads != 1 {
		t.Errorf("after the change: %+v, want one reload", st)
	}
	if err := srv.ReloadCertificate(); err != nil || srv.Stats().CertReloads != 2 {
		t.Errorf("ReloadCertificate: %v, %+v", err, srv.Stats())
	}

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, m := range []string{http.MethodOptions, http.MethodGet, http.MethodGet} {
		req, _ := http.NewRequest(m, "https://"+addr+"/", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	hc.CloseIdleConnections()
	want := []webrtc.RequestCount{{Kind: "options", Status: 204, Count: 1}, {Kind: "other", Status: 405, Count: 2}}
	if got := srv.Stats().Requests; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("requests %+v, want %+v", got, want)
	}
}
